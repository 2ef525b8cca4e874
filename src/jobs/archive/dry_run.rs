//! `--dry-run`: what a run would do, found out without changing anything.

use tokio_postgres::Client;

use super::batch;
use super::children::Child;
use super::ident::QualifiedName;
use super::plan::{self, Source};
use super::setup::dbe;
use super::{ArchiveError, ArchiveReport, StopReason};

/// The tables of a run: the source, its children, the destination.
pub struct Tables<'a> {
    pub source: &'a Source,
    pub children: &'a [Child],
    pub dest: Option<&'a QualifiedName>,
}

/// --dry-run: check the destination without creating it, count exactly, show the SQL.
///
/// Everything runs in one `BEGIN READ ONLY` transaction that is rolled back (on a session that
/// is read-only by default too): a --where calling a function that writes or takes nextval()
/// fails instead of acting, so a dry run changes nothing, whatever its predicate does.
pub(super) async fn run(
    src: &Client,
    dst: Option<&Client>,
    tables: Tables<'_>,
    predicate: &str,
    built: batch::BatchSql,
    report: ArchiveReport,
) -> Result<ArchiveReport, ArchiveError> {
    src.batch_execute("BEGIN READ ONLY")
        .await
        .map_err(dbe("starting the dry run's read-only transaction"))?;
    let result = inner(src, dst, tables, predicate, built, report).await;
    if let Err(e) = src.batch_execute("ROLLBACK").await {
        tracing::debug!("ending the dry run's transaction: {}", crate::jobs::pg_error(&e));
    }
    result
}

async fn inner(
    src: &Client,
    dst: Option<&Client>,
    tables: Tables<'_>,
    predicate: &str,
    built: batch::BatchSql,
    mut report: ArchiveReport,
) -> Result<ArchiveReport, ArchiveError> {
    let mut sql = String::new();
    let source = tables.source;
    if let Some(d) = tables.dest {
        let mut all = vec![(source, d)];
        all.extend(tables.children.iter().map(|c| (&c.source, &c.dest)));
        for (table, d) in all {
            let client = dst.unwrap_or(src);
            match plan::find_table(client, d).await? {
                Some(oid) => plan::check_dest(client, table, d, oid).await?,
                None if dst.is_some() => sql.push_str(&format!("{};\n", plan::create_remote_sql(table, d))),
                None => sql.push_str(&format!("{};\n", plan::create_like_sql(table, d))),
            }
        }
    }
    sql.push_str(&built.next);
    sql.push_str(";\n-- when a row is locked by another session (lock_timeout), the same range again:\n");
    sql.push_str(&built.careful_next);
    let count = format!(
        "/* dbtool archive */ SELECT count(*) FROM {} s WHERE {predicate}",
        source.name.quoted()
    );
    report.would_move = match src.query_one(&count, &[]).await {
        Ok(row) => Some(row.try_get(0).map_err(dbe("reading the count"))?),
        // Too slow to count within statement_timeout: said so ("count timed out"), not guessed.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => None,
        Err(e) => {
            return Err(ArchiveError::Refused(format!(
                "--dry-run: counting the rows to move failed in a read-only transaction: {}; \
                 --where must only read (a dry run changes nothing, so it does not run a condition that writes)",
                crate::jobs::pg_error(&e)
            )))
        }
    };
    report.remaining = report.would_move;
    report.sql = Some(sql);
    report.stop = StopReason::DryRun;
    Ok(report)
}
