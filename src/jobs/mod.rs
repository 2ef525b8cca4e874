//! Jobs: long-running, cancellable, single-runner work that the commands and the scheduler share.

pub mod archive;
pub mod backup;

/// A PostgreSQL error as one line: the server's message (with its detail) or the client error.
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => {
            let mut text = e.to_string();
            let mut next = std::error::Error::source(e);
            while let Some(cause) = next {
                let part = cause.to_string();
                if !text.ends_with(&part) {
                    text = format!("{text}: {part}");
                }
                next = cause.source();
            }
            text
        }
    }
}
