//! Error chains rendered one way, for main's last word, logs and error messages alike.

use std::error::Error;

/// The error and each of its causes, outermost first.
pub fn chain<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(e), |c| (*c).source())
}

/// The whole chain on one line, causes joined with ": ". A cause whose text the line already
/// ends with is skipped: io::Error and tokio-postgres repeat their inner error in their own
/// Display, and a message that says the same thing twice reads like two problems.
pub fn render(e: &(dyn Error + 'static)) -> String {
    let mut text = String::new();
    for cause in chain(e) {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !part.is_empty() && !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
    }
    text
}

/// A PostgreSQL error as one line: the server's message (with its detail), or the client
/// error with its causes.
pub fn pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => render(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct E {
        text: &'static str,
        #[source]
        source: Option<Box<E>>,
    }

    fn e(text: &'static str, source: Option<E>) -> E {
        E {
            text,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn renders_every_cause_once() {
        let inner = e("connection refused", None);
        let echo = e("io error: connection refused", Some(inner));
        let outer = e("connecting to db1", Some(echo));
        assert_eq!(render(&outer), "connecting to db1: io error: connection refused");
        assert_eq!(chain(&outer).count(), 3);
    }

    #[test]
    fn anyhow_context_renders_like_its_alternate_form_without_repeats() {
        let err = anyhow::Error::new(e("disk full", None)).context("writing /tmp/x");
        assert_eq!(render(err.as_ref()), format!("{err:#}"));
    }
}
