//! dbtool's own schema (`dbtool.*`): embedded, checksummed migrations applied under an advisory lock.
//!
//! Each migration runs in ONE transaction together with its bookkeeping row in
//! `dbtool.schema_migrations`, after `pg_advisory_xact_lock`, so two processes (two scheduler
//! replicas, a scheduler and a hand-run `dbtool migrate`) never apply the same one twice and a
//! crash leaves either all of a migration or none of it. A migration already applied whose text
//! has changed since is refused: the database no longer matches what this binary expects.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::lock::{self, Namespace};
use super::{ColumnError, Columns};

/// One embedded migration.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this binary knows, in order. Never edit one that has shipped: add V2 instead.
pub static MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "job_runs",
    sql: include_str!("../../migrations/V1__job_runs.sql"),
}];

/// The bookkeeping table; created in the same transaction as the first migration.
const BOOKKEEPING: &str = include_str!("../../queries/migrate_bookkeeping.sql");
const EXISTS_SQL: &str = include_str!("../../queries/migrate_exists.sql");
const APPLIED_SQL: &str = include_str!("../../queries/migrate_applied.sql");
const LOCK_SQL: &str = include_str!("../../queries/migrate_lock.sql");
const CHECKSUM_SQL: &str = include_str!("../../queries/migrate_checksum.sql");
const RECORD_SQL: &str = include_str!("../../queries/migrate_record.sql");

/// Key of the advisory lock that serialises migrations of one database.
fn lock_key() -> i64 {
    lock::key(Namespace::Migrate, "schema")
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "migration V{version}__{name} was applied with checksum {applied} but this dbtool embeds {embedded}; \
         the schema dbtool.* was changed by another dbtool version — restore the original migration or use \
         the dbtool version that applied it"
    )]
    Modified {
        version: i64,
        name: String,
        applied: String,
        embedded: String,
    },
    /// `detail` is the server's message, its SQLSTATE and, where there is one, the fix.
    #[error("migration V{version}__{name} failed: {detail}")]
    Apply {
        version: i64,
        name: &'static str,
        detail: String,
        sqlstate: Option<String>,
    },
    #[error("cannot read dbtool.schema_migrations: {0}")]
    Read(String),
    #[error("reading dbtool.schema_migrations: {0}")]
    Column(#[from] ColumnError),
    #[error("dbtool's schema is not up to date (pending: {0}); run `dbtool migrate` first")]
    Pending(String),
}

/// Where one migration stands on a database.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    pub version: i64,
    pub name: String,
    /// "applied", "pending", "modified" (applied with another checksum) or "unknown" (applied by a newer dbtool).
    pub state: &'static str,
    pub applied_at: Option<String>,
}

/// sha256 of a migration's text, hex.
pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A failed statement as one line: the server's message, its detail and SQLSTATE (tokio-postgres
/// alone says only "db error"), or the client-side error with its causes.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", crate::errors::pg(e), db.code().code()),
        None => crate::errors::pg(e),
    }
}

fn read_error(e: tokio_postgres::Error) -> MigrateError {
    MigrateError::Read(describe(&e))
}

/// (version, name, checksum, applied_at) of every applied migration; empty when none ever ran.
async fn applied(client: &Client) -> Result<Vec<(i64, String, String, String)>, MigrateError> {
    let exists = client.query_one(EXISTS_SQL, &[]).await.map_err(read_error)?;
    if !exists.col::<bool>("present")? {
        return Ok(Vec::new());
    }
    let rows = client.query(APPLIED_SQL, &[]).await.map_err(read_error)?;
    let applied = |r: &tokio_postgres::Row| -> Result<_, ColumnError> {
        Ok((
            r.col("version")?,
            r.col("name")?,
            r.col("checksum")?,
            r.col("applied_at")?,
        ))
    };
    Ok(rows.iter().map(applied).collect::<Result<_, _>>()?)
}

/// The state of every known (and every unknown applied) migration.
pub async fn status(client: &Client) -> Result<Vec<Status>, MigrateError> {
    let done = applied(client).await?;
    let mut out: Vec<Status> = MIGRATIONS
        .iter()
        .map(|m| {
            let found = done.iter().find(|d| d.0 == m.version);
            Status {
                version: m.version,
                name: m.name.to_string(),
                state: match found {
                    None => "pending",
                    Some(d) if d.2 == checksum(m.sql) => "applied",
                    Some(_) => "modified",
                },
                applied_at: found.map(|d| d.3.clone()),
            }
        })
        .collect();
    for d in done.iter().filter(|d| MIGRATIONS.iter().all(|m| m.version != d.0)) {
        out.push(Status {
            version: d.0,
            name: d.1.clone(),
            state: "unknown",
            applied_at: Some(d.3.clone()),
        });
    }
    Ok(out)
}

/// Applies every pending migration; returns the versions applied now. Refuses a modified one.
pub async fn apply(client: &mut Client) -> Result<Vec<i64>, MigrateError> {
    // why: CREATE SCHEMA/TABLE IF NOT EXISTS check the CREATE privilege before existence, so a
    // role that may only use dbtool.* (after an owner ran `dbtool migrate`) must not get there.
    if let Ok(st) = status(client).await {
        if st.iter().all(|s| s.state == "applied" || s.state == "unknown") {
            return Ok(Vec::new());
        }
    }
    let mut applied_now = Vec::new();
    for m in MIGRATIONS {
        match apply_one(client, m).await {
            Ok(true) => applied_now.push(m.version),
            Ok(false) => {}
            Err(e) => return Err(with_fix(client, e).await),
        }
    }
    Ok(applied_now)
}

/// A permission error gets the fix, with this session's role and database named in it: the
/// first `dbtool archive` or scheduler run as a non-owner is where most users meet this.
async fn with_fix(client: &Client, e: MigrateError) -> MigrateError {
    let MigrateError::Apply {
        version,
        name,
        detail,
        sqlstate,
    } = e
    else {
        return e;
    };
    if sqlstate.as_deref() != Some("42501") {
        return MigrateError::Apply {
            version,
            name,
            detail,
            sqlstate,
        };
    }
    // Failing lookups only make the hint less specific; the server's message is already there.
    let who = client
        .query_one(
            "/* dbtool */ SELECT current_user::text AS r, current_database()::text AS d, \
             to_regnamespace('dbtool') IS NOT NULL AS schema_exists",
            &[],
        )
        .await
        .ok();
    let get = |col: &str| who.as_ref().and_then(|row| row.try_get::<_, String>(col).ok());
    let role = get("r").map_or_else(|| "ROLE".to_string(), |r| quote_ident(&r));
    let db = get("d").map_or_else(|| "DATABASE".to_string(), |d| quote_ident(&d));
    let schema_exists = who
        .as_ref()
        .and_then(|row| row.try_get::<_, bool>("schema_exists").ok());
    let detail = if schema_exists == Some(true) {
        format!(
            "{detail}; the schema dbtool exists but this role may not use it: run `dbtool migrate` as the \
             database owner, then GRANT USAGE ON SCHEMA dbtool TO {role} and GRANT SELECT, INSERT, UPDATE, \
             DELETE ON ALL TABLES IN SCHEMA dbtool TO {role} (and USAGE ON ALL SEQUENCES IN SCHEMA dbtool)"
        )
    } else {
        format!(
            "{detail}; dbtool keeps its run history in the schema dbtool, which this role may not create: \
             run `dbtool migrate` once as the database owner (or a superuser), or GRANT CREATE ON DATABASE \
             {db} TO {role}"
        )
    };
    MigrateError::Apply {
        version,
        name,
        detail,
        sqlstate,
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Fails with `Pending` unless every embedded migration is applied (and unmodified).
pub async fn require_current(client: &Client) -> Result<(), MigrateError> {
    let st = status(client).await?;
    if let Some(m) = st.iter().find(|s| s.state == "modified") {
        let embedded = MIGRATIONS
            .iter()
            .find(|x| x.version == m.version)
            .map(|x| checksum(x.sql));
        return Err(MigrateError::Modified {
            version: m.version,
            name: m.name.clone(),
            applied: "(another)".into(),
            embedded: embedded.unwrap_or_default(),
        });
    }
    let pending: Vec<String> = st
        .iter()
        .filter(|s| s.state == "pending")
        .map(|s| format!("V{}__{}", s.version, s.name))
        .collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::Pending(pending.join(", ")))
    }
}

/// One migration in one transaction; false when it was already applied.
async fn apply_one(client: &mut Client, m: &Migration) -> Result<bool, MigrateError> {
    let err = |e: tokio_postgres::Error| MigrateError::Apply {
        version: m.version,
        name: m.name,
        detail: describe(&e),
        sqlstate: e.code().map(|c| c.code().to_string()),
    };
    let tx = client.transaction().await.map_err(err)?;
    // Waiting for another migrator is expected; only dbtool's own schema is locked here, so a
    // longer wait than the session's lock_timeout harms nobody.
    tx.batch_execute("SET LOCAL lock_timeout = '30s'; SET LOCAL statement_timeout = '60s'")
        .await
        .map_err(err)?;
    tx.execute(LOCK_SQL, &[&lock_key()]).await.map_err(err)?;
    tx.batch_execute(BOOKKEEPING).await.map_err(err)?;
    let row = tx.query_opt(CHECKSUM_SQL, &[&m.version]).await.map_err(err)?;
    let embedded = checksum(m.sql);
    if let Some(row) = row {
        let applied: String = row.col("checksum")?;
        if applied != embedded {
            return Err(MigrateError::Modified {
                version: m.version,
                name: m.name.to_string(),
                applied,
                embedded,
            });
        }
        return Ok(false);
    }
    tx.batch_execute(m.sql).await.map_err(err)?;
    tx.execute(RECORD_SQL, &[&m.version, &m.name, &embedded])
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)?;
    tracing::info!(version = m.version, name = m.name, "applied migration");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_and_checksums_are_sha256_hex() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(
            checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(MIGRATIONS[0].sql.contains("UNIQUE (job, scheduled_at)"));
    }
}
