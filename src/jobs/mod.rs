//! Jobs: long-running, cancellable, single-runner work that the commands and the scheduler share.

pub mod archive;
pub mod backup;

/// A PostgreSQL error as one line (see `errors::pg`).
pub use crate::errors::pg as pg_error;
