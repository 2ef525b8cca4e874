//! Talking to PostgreSQL: libpq-compatible connection parameters, TLS, session settings, rows.

pub mod child_service;
pub mod client_cert;
mod client_key;
pub mod column;
pub mod connect;
pub mod connect_error;
pub mod conninfo;
pub mod job_runs;
pub mod lock;
pub mod migrate;
pub mod pgpass;
pub mod pool;
pub mod redis;
pub mod row;
pub mod session;
mod target;
pub mod tls;
mod tls_stream;
pub mod version;

pub use column::{ColumnError, Columns};
pub use connect::{connect, connect_session, SessionSettings};
pub use connect_error::ConnectError;
pub use conninfo::{ConnInfoError, ConnParams, Env, MapEnv, ProcessEnv, SslMode};
pub use session::{Pooler, Session};
pub use target::{Endpoint, NotSql, Target, TargetKind};
pub use version::{server_version, ServerVersion, VersionError};
