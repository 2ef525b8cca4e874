//! Jobs that change data: idempotent, cancellable, single-runner (archive; backup lives beside it).

pub mod archive;

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
