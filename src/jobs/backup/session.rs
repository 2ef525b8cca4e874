//! The dbtool session held open for a backup's whole duration: it owns the advisory lock
//! (released when the session ends, even if dbtool is killed) and reads the server version
//! and the table estimates for the manifest.

use tokio_postgres::Client;

use crate::db::row::{rows_from_messages, Row};
use crate::db::{self, ConnParams, SessionSettings};

use super::error::BackupError;
use super::lock;
use super::manifest::TableEstimate;

const TABLES_SQL: &str = include_str!("../../../queries/backup_tables.sql");
const DATABASES_SQL: &str = include_str!("../../../queries/backup_databases.sql");

pub struct Session {
    /// Kept alive for the advisory lock it holds.
    client: Client,
    database: String,
    pub server_version: String,
    pub server_major: u32,
    pub tables: Vec<TableEstimate>,
}

/// Runs `sql` (simple protocol) in `database`; a failure names the step (`what`).
pub(super) async fn query(
    client: &Client,
    database: &str,
    what: &'static str,
    sql: &str,
) -> Result<Vec<Row>, BackupError> {
    let messages = client.simple_query(sql).await.map_err(|e| BackupError::Query {
        database: database.into(),
        what,
        message: e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string()),
    })?;
    Ok(rows_from_messages(messages))
}

fn bad_row(database: &str, what: &'static str, e: impl std::fmt::Display) -> BackupError {
    BackupError::Query {
        database: database.into(),
        what,
        message: e.to_string(),
    }
}

/// Connects to `database`, takes its backup lock, reads what the manifest needs.
pub async fn open(params: &ConnParams, settings: &SessionSettings, database: &str) -> Result<Session, BackupError> {
    let client = db::connect(&params.with_dbname(database), settings).await?;
    let locked = crate::db::lock::try_lock(&client, lock::advisory_key(database))
        .await
        .map_err(|e| bad_row(database, "taking the backup lock", crate::jobs::pg_error(&e)))?;
    if !locked {
        return Err(BackupError::Busy {
            database: database.into(),
            holder: format!(
                "another session holds advisory lock {} on the server",
                lock::advisory_key(database)
            ),
        });
    }
    let version = db::server_version(&client)
        .await
        .map_err(|e| bad_row(database, "reading the server version", e))?;
    let mut tables = Vec::new();
    for r in query(&client, database, "reading table estimates", TABLES_SQL).await? {
        let est = (|| {
            Ok::<_, crate::db::row::RowError>(TableEstimate {
                schema: r.str("schema")?.to_string(),
                name: r.str("name")?.to_string(),
                rows: r.i64("rows")?,
            })
        })();
        tables.push(est.map_err(|e| bad_row(database, "reading table estimates", e))?);
    }
    Ok(Session {
        server_major: version.major(),
        server_version: version.text,
        tables,
        client,
        database: database.to_string(),
    })
}

impl Session {
    /// The session's connection, for the questions asked while it holds the lock.
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Releases the backup lock explicitly: the server ends a session some moments after its
    /// client goes, and a backup started right after must not find the lock held.
    pub async fn release(self) {
        if let Err(e) = crate::db::lock::unlock(&self.client, lock::advisory_key(&self.database)).await {
            tracing::debug!("releasing the backup lock: {}", crate::jobs::pg_error(&e));
        }
    }
}

/// `--all`: the databases to back up, listed through the target's own database.
pub async fn list_databases(params: &ConnParams, settings: &SessionSettings) -> Result<Vec<String>, BackupError> {
    let client = db::connect(params, settings).await?;
    let rows = query(&client, params.dbname(), "listing databases", DATABASES_SQL).await?;
    rows.iter()
        .map(|r| r.str("datname").map(str::to_string))
        .collect::<Result<_, _>>()
        .map_err(|e| bad_row(params.dbname(), "listing databases", e))
}
