//! The server's version, read one way for every command: the number picks query variants and
//! pg_dump, the text goes in reports and manifests.

use tokio_postgres::Client;

use super::row::{rows_from_messages, Row, RowError};
use super::Session;

const SQL: &str = include_str!("../../queries/server_version.sql");

/// `server_version_num` and `server_version` of one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    /// e.g. 150014 for 15.14.
    pub num: u32,
    /// e.g. "15.14 (Debian 15.14-1.pgdg120+1)".
    pub text: String,
}

/// Why the version could not be read. Never a silent 0: a 0 would pick the oldest query
/// variants and any pg_dump, and claim the server is older than every version it is not.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("reading the server version: {}", crate::errors::pg(.0))]
    Query(tokio_postgres::Error),
    #[error("reading the server version: the server returned no row")]
    NoRow,
    #[error("reading the server version: {0}")]
    Row(#[from] RowError),
    #[error("reading the server version: server_version_num {0} is not a PostgreSQL version number")]
    OutOfRange(i64),
}

impl ServerVersion {
    /// The major version: 15 for 150014.
    pub fn major(&self) -> u32 {
        self.num / 10_000
    }

    /// Decodes the answer of `queries/server_version.sql`.
    pub fn from_rows(rows: &[Row]) -> Result<ServerVersion, VersionError> {
        let row = rows.first().ok_or(VersionError::NoRow)?;
        Ok(ServerVersion {
            num: number(row.i64("num")?)?,
            text: row.str("text")?.to_string(),
        })
    }
}

/// A `server_version_num` read elsewhere (a query that needs it beside other settings).
pub fn number(num: i64) -> Result<u32, VersionError> {
    // 9.0 was 90000; anything below, or not a u32, is not a version this tool can talk to.
    u32::try_from(num)
        .ok()
        .filter(|n| *n >= 90_000)
        .ok_or(VersionError::OutOfRange(num))
}

/// Reads the version on a direct connection.
pub async fn server_version(client: &Client) -> Result<ServerVersion, VersionError> {
    let messages = client.simple_query(SQL).await.map_err(VersionError::Query)?;
    ServerVersion::from_rows(&rows_from_messages(messages))
}

impl Session {
    /// Reads the version on a checks session (direct or through a pooler).
    pub async fn server_version(&self) -> Result<ServerVersion, VersionError> {
        let messages = self.simple_query(SQL).await.map_err(VersionError::Query)?;
        ServerVersion::from_rows(&rows_from_messages(messages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(num: Option<&str>, text: Option<&str>) -> Vec<Row> {
        vec![Row::from_pairs(&[("num", num), ("text", text)])]
    }

    #[test]
    fn decodes_number_text_and_major() {
        let v = ServerVersion::from_rows(&answer(Some("150014"), Some("15.14")));
        let v = v.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((v.num, v.text.as_str(), v.major()), (150014, "15.14", 15));
    }

    #[test]
    fn a_null_or_odd_version_is_an_error_not_zero() {
        // Regression: a NULL server_version_num became 0 in the health runner and in restore.
        let null = ServerVersion::from_rows(&answer(None, Some("15.14")));
        assert!(
            matches!(null, Err(VersionError::Row(RowError::Null(ref c))) if c == "num"),
            "{null:?}"
        );
        let negative = ServerVersion::from_rows(&answer(Some("-1"), Some("?")));
        assert!(matches!(negative, Err(VersionError::OutOfRange(-1))), "{negative:?}");
        assert!(matches!(ServerVersion::from_rows(&[]), Err(VersionError::NoRow)));
        assert!(matches!(number(0), Err(VersionError::OutOfRange(0))));
    }
}
