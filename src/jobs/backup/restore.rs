//! Restoring a backup into a new or empty database, and `restore --check`: restore into a
//! scratch database, count every table's rows against the manifest, drop it.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::row::rows_from_messages;
use crate::db::{self, ConnParams, SessionSettings};

use super::child::{self, libpq_command};
use super::crossver;
use super::crypt::Identities;
use super::error::BackupError;
use super::manifest::Manifest;
use super::objects;
use super::pgbin;
use super::pin::{self, Pinned};
use super::session;
use super::slots::{self, Tool};

/// What pg_restore is asked for besides the archive and the database.
#[derive(Clone, Debug, Default)]
pub struct PgRestoreArgs {
    /// Parallel workers (`--jobs`), bounded by the server's free connections.
    pub jobs: Option<u32>,
    /// `--no-owner`.
    pub no_owner: bool,
    /// Secret keys for an encrypted backup (`--identity`).
    pub identities: Option<Identities>,
}

impl PgRestoreArgs {
    pub(super) fn parallel(&self) -> Option<u32> {
        self.jobs.filter(|j| *j > 1)
    }

    pub(super) fn args(&self) -> Vec<String> {
        let mut out: Vec<String> = self.parallel().map(|j| format!("--jobs={j}")).into_iter().collect();
        if self.no_owner {
            out.push("--no-owner".into());
        }
        out
    }
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A libpq conninfo naming just the database, so a name with '=' is not read as conninfo.
pub(super) fn dbname_conninfo(name: &str) -> String {
    format!("dbname='{}'", name.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Restore and counting run long; they get a session without dbtool's short defaults.
pub(super) fn admin_session(base: &SessionSettings) -> SessionSettings {
    SessionSettings {
        statement_timeout: Duration::from_secs(3600),
        read_only: false,
        ..base.clone()
    }
}

/// Creates `name` if missing; refuses one that already holds relations (nothing is lost).
pub(super) async fn prepare_target(server: &ConnParams, s: &SessionSettings, name: &str) -> Result<(), BackupError> {
    let admin = db::connect(&server.with_dbname("postgres"), s).await?;
    let sql = format!(
        "SELECT 1 AS found FROM pg_database WHERE datname = {}",
        quote_literal(name)
    );
    if session::query(&admin, "postgres", "looking up the database", &sql)
        .await?
        .is_empty()
    {
        let sql = format!("CREATE DATABASE {}", quote_ident(name));
        session::query(&admin, "postgres", "creating the database", &sql).await?;
        return Ok(());
    }
    let client = db::connect(&server.with_dbname(name), s).await?;
    let sql = include_str!("../../../queries/restore_target_empty.sql");
    let rows = session::query(&client, name, "checking the database is empty", sql).await?;
    let n = rows.first().map(|r| r.i64("n")).transpose().ok().flatten().unwrap_or(1);
    if n > 0 {
        return Err(BackupError::Options(format!(
            "database {name} is not empty ({n} relations); restore needs a new or empty database: pick another name in --to"
        )));
    }
    Ok(())
}

/// Restores `m` into database `into` on `server` (created when missing). Every file of the
/// backup is checked against the manifest first (`pin.rs`): a corrupt backup touches nothing.
pub async fn restore(
    dest: &Path,
    m: &Manifest,
    server: &ConnParams,
    into: &str,
    settings: &SessionSettings,
    args: &PgRestoreArgs,
    cancel: &CancellationToken,
) -> Result<(), BackupError> {
    let pinned = pin::pin_async(dest, m).await?;
    restore_pinned(&pinned, m, server, into, settings, args, cancel).await
}

/// A session on the restore server's `postgres` database and the server's major.
pub(super) async fn probe_server(
    server: &ConnParams,
    s: &SessionSettings,
) -> Result<(tokio_postgres::Client, u32), BackupError> {
    let probe = db::connect(&server.with_dbname("postgres"), s).await?;
    let version = db::server_version(&probe).await.map_err(|e| BackupError::Query {
        database: "postgres".into(),
        what: "reading the server version",
        message: e.to_string(),
    })?;
    Ok((probe, version.major()))
}

/// The restore itself, reading only the checked files of `pinned`.
async fn restore_pinned(
    pinned: &Pinned,
    m: &Manifest,
    server: &ConnParams,
    into: &str,
    settings: &SessionSettings,
    args: &PgRestoreArgs,
    cancel: &CancellationToken,
) -> Result<(), BackupError> {
    let s = admin_session(settings);
    let (probe, major) = probe_server(server, &s).await?;
    let bin = pgbin::find(major).await?;
    let archive = pinned.path(&m.dump);
    if m.encryption.is_some() {
        drop(probe);
        return super::restore_age::restore(&archive, m, server, into, &s, &bin, major, args, cancel).await;
    }
    // A newer pg_restore may start its sessions with settings this server rejects.
    if let Some(jobs) = args.parallel() {
        // Before the target is created: a refusal leaves the server as it was.
        slots::ensure(&probe, "postgres", false, Tool::PgRestore, jobs).await?;
    }
    let (known, newer) = if bin.major > major {
        let known = known_settings(&probe).await?;
        let rejected = crossver::rejected_settings(&bin, &archive, known.clone(), cancel).await?;
        (known, !rejected.is_empty())
    } else {
        (Default::default(), false)
    };
    drop(probe);
    prepare_target(server, &s, into).await?;
    let child_params = server.with_dbname(into);
    if newer {
        // One session: --jobs needs pg_restore's own connections, which the script path has not.
        let mut script_args = args.clone();
        script_args.jobs = None;
        let dropped = crossver::restore_as_script(
            &bin,
            &child_params,
            &dbname_conninfo(into),
            &script_args.args(),
            &archive,
            known,
            cancel,
        )
        .await?;
        let dropped: Vec<String> = dropped.into_iter().collect();
        tracing::warn!(
            "pg_restore {} is newer than the PostgreSQL {major} server: restored as an SQL script through psql{}{}",
            bin.version,
            if dropped.is_empty() {
                String::new()
            } else {
                format!(", without `{}` (unknown to {major})", dropped.join(" "))
            },
            if args.parallel().is_some() {
                ", in one session (--jobs ignored)"
            } else {
                ""
            },
        );
        return Ok(());
    }
    let mut cmd = libpq_command(&bin.pg_restore(), Some(&child_params))?;
    cmd.args(["--no-password", "--exit-on-error"])
        .arg(format!("--dbname={}", dbname_conninfo(into)))
        .args(args.args())
        .arg(&archive);
    child::run(cmd, cancel, &[], None).await.map(|_| ())
}

/// The settings `client`'s server knows, for dropping the ones a newer pg_restore would send.
async fn known_settings(client: &tokio_postgres::Client) -> Result<std::collections::HashSet<String>, BackupError> {
    let sql = "/* dbtool: restore known settings */ SELECT name FROM pg_settings";
    let rows = session::query(client, "postgres", "reading the server's settings", sql).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.str("name").ok().map(str::to_string))
        .collect())
}

/// One table of `restore --check`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCheck {
    pub table: String,
    /// The planner's row count when the dump started; None for a table never analyzed (no
    /// estimate: pg_class.reltuples is -1 on PostgreSQL 14+).
    pub estimated: Option<i64>,
    pub restored: Option<i64>,
    pub verdict: &'static str,
}

/// Judges a restored count against the dump-time estimate. Estimates drift, so only a
/// missing table or an empty one that had rows fails; a large drift is reported.
pub fn judge(estimated: i64, restored: Option<i64>) -> &'static str {
    match restored {
        None => "missing",
        Some(0) if estimated > 0 => "empty",
        Some(_) if estimated < 0 => "ok (never analyzed)",
        Some(n) => {
            let drift = (n - estimated).abs();
            if drift > 1000.max(estimated / 5) {
                "differs from estimate"
            } else {
                "ok"
            }
        }
    }
}

pub fn check_failed(tables: &[TableCheck]) -> bool {
    tables.iter().any(|t| t.verdict == "missing" || t.verdict == "empty")
}

/// What `restore --check` found: row counts per table, and the manifest's objects that the
/// scratch database lacks (`objects_compared` is None for a manifest without objects).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub tables: Vec<TableCheck>,
    pub objects_compared: Option<usize>,
    pub missing_objects: Vec<objects::Missing>,
}

impl CheckReport {
    pub fn failed(&self) -> bool {
        check_failed(&self.tables) || !self.missing_objects.is_empty()
    }
}

/// Restores into a scratch database, counts rows, drops the scratch database whatever happened.
pub async fn check(
    dest: &Path,
    m: &Manifest,
    server: &ConnParams,
    settings: &SessionSettings,
    args: &PgRestoreArgs,
    cancel: &CancellationToken,
) -> Result<CheckReport, BackupError> {
    // Checked before the scratch database exists: a corrupt backup creates nothing.
    let pinned = pin::pin_async(dest, m).await?;
    let scratch = format!("dbtool_check_{}_{}", std::process::id(), chrono::Utc::now().timestamp());
    let result = async {
        restore_pinned(&pinned, m, server, &scratch, settings, args, cancel).await?;
        let client = db::connect(&server.with_dbname(&scratch), &admin_session(settings)).await?;
        let mut out = Vec::new();
        for t in &m.tables {
            let sql = format!(
                "SELECT count(*) AS n FROM {}.{}",
                quote_ident(&t.schema),
                quote_ident(&t.name)
            );
            let restored = match client.simple_query(&sql).await {
                Ok(msgs) => rows_from_messages(msgs).first().and_then(|r| r.i64("n").ok()),
                Err(_) => None,
            };
            let table = format!("{}.{}", t.schema, t.name);
            out.push(TableCheck {
                table,
                estimated: (t.rows >= 0).then_some(t.rows),
                restored,
                verdict: judge(t.rows, restored),
            });
        }
        let (objects_compared, missing_objects) = match &m.objects {
            Some(expected) => {
                let restored = objects::read(&client, &scratch).await?;
                (Some(objects::count(expected)), objects::missing(expected, &restored))
            }
            None => (None, Vec::new()),
        };
        Ok::<_, BackupError>(CheckReport {
            tables: out,
            objects_compared,
            missing_objects,
        })
    }
    .await;
    let admin = db::connect(&server.with_dbname("postgres"), &admin_session(settings)).await;
    let dropped = match admin {
        Ok(c) => {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&scratch));
            session::query(&c, "postgres", "dropping the scratch database", &sql)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e.into()),
    };
    let report = result?;
    dropped?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn judges_counts_against_estimates() {
        assert_eq!(super::judge(100, None), "missing");
        assert_eq!(super::judge(100, Some(0)), "empty");
        assert_eq!(super::judge(0, Some(0)), "ok");
        assert_eq!(super::judge(-1, Some(5)), "ok (never analyzed)");
        assert_eq!(super::judge(10_000, Some(10_400)), "ok");
        assert_eq!(super::judge(10_000, Some(20_000)), "differs from estimate");
        assert_eq!(super::dbname_conninfo("a'b"), "dbname='a\\'b'");
    }
}
