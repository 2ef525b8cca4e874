//! Talking to PostgreSQL: libpq-compatible connection parameters, TLS, session settings, rows.

pub mod connect;
pub mod conninfo;
pub mod job_runs;
pub mod migrate;
pub mod pgpass;
pub mod row;
pub mod tls;

pub use connect::{connect, ConnectError, SessionSettings};
pub use conninfo::{ConnInfoError, ConnParams, Env, MapEnv, ProcessEnv, SslMode};
