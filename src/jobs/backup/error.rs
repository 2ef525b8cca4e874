//! Why a backup (or a verify, prune, restore) failed: one line that names the thing and the fix.

use std::path::PathBuf;

use crate::db::child_service::ChildServiceError;
use crate::db::ConnectError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no backup destination: pass --dest DIR (or s3://BUCKET/PREFIX) or set dest in the [backup] section of the config file")]
    NoDest,
    #[error("{0}")]
    Options(String),
    #[error("{0}")]
    PgBin(#[from] super::pgbin::PgBinError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("database {database}: {what} failed: {message}")]
    Query {
        database: String,
        what: &'static str,
        message: String,
    },
    #[error(
        "database {database}: another backup is running ({holder}); two backups of one database never run at once"
    )]
    Busy { database: String, holder: String },
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Tool {
        program: String,
        status: String,
        stderr: String,
    },
    /// Too few free connections on the server for `--jobs` (see `slots.rs`).
    #[error("{0}")]
    Slots(String),
    #[error("backup {id}: {message}")]
    Corrupt { id: String, message: String },
    /// None of the identities given is one of the backup's recipients.
    #[error("backup {id} is encrypted to {recipients}; none of them matches a key in --identity {identity}: pass the identity file of one of these recipients")]
    WrongKey {
        id: String,
        recipients: String,
        identity: String,
    },
    /// An encrypted backup and no key to read it with.
    #[error(
        "backup {id} is encrypted (age, to {recipients}): pass --identity FILE with the secret key of one of them"
    )]
    NeedsKey { id: String, recipients: String },
    #[error("no backup {0} in the destination; `dbtool backups list` shows the ids")]
    NotFound(String),
    /// Object storage refused or failed a request (after retries).
    #[error("{url}: {message}")]
    Remote { url: String, message: String },
    /// The encrypted key's sslpassword cannot reach pg_dump/pg_restore/psql.
    #[error(transparent)]
    ChildService(#[from] crate::db::child_service::ChildServiceError),
    #[error("cancelled")]
    Cancelled,
}

impl BackupError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BackupError {
        let path = path.into();
        move |source| BackupError::Io { action, path, source }
    }

    /// A mistake in what the user asked for (exit 3) rather than a failed backup (exit 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            BackupError::NoDest
                | BackupError::Options(_)
                | BackupError::NotFound(_)
                | BackupError::WrongKey { .. }
                | BackupError::NeedsKey { .. }
                | BackupError::ChildService(ChildServiceError::Unrepresentable | ChildServiceError::TooLong)
        )
    }
}
