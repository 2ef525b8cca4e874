//! The durability barrier after the last batch.
//!
//! Batches commit asynchronously (see `setup`), so a crash just after the run could undo its
//! last batches while the run has reported them moved and exited 0. One transaction with a
//! synchronous commit flushes the WAL up to its own commit record, which lies after every
//! earlier batch's. It must write WAL of its own, or PostgreSQL commits it asynchronously
//! anyway: a transactional logical message, which any role may emit unless a DBA revoked it.
//! Then dbtool commits an empty transaction that only takes a transaction id (its commit
//! record is WAL, committed asynchronously like the batches) and waits for the WAL writer,
//! which flushes asynchronous commits within three `wal_writer_delay`s (at most 10 s each).
//! It waits for the insert position read right after that commit, not one read earlier: the
//! WAL writer flushes up to the last asynchronous commit, so WAL past it (another session's
//! pruning, say) could wait for the next commit on a quiet server.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::Runner;
use crate::db::Columns;
use crate::jobs::pg_error;

const FLUSH_SQL: &str = include_str!("../../../../queries/archive_flush.sql");
const COMMIT_SQL: &str = include_str!("../../../../queries/archive_wal_commit.sql");
const INSERT_LSN_SQL: &str = include_str!("../../../../queries/archive_wal_insert_lsn.sql");
const FLUSHED_SQL: &str = include_str!("../../../../queries/archive_wal_flushed.sql");

/// Longest wait for the WAL writer: three times the largest `wal_writer_delay`, and a margin.
const WAL_WRITER_WAIT: Duration = Duration::from_secs(35);

impl Runner<'_> {
    /// Makes every batch committed so far durable; Err names what failed.
    pub async fn flush_commits(&mut self) -> Result<(), String> {
        // Also when this run moved nothing: its "done" rests on what it saw, which may be the
        // not yet flushed batches of a run killed a moment ago.
        let flushed = self.src.batch_execute(FLUSH_SQL).await;
        let Err(e) = flushed else {
            return Ok(());
        };
        // Leave no transaction open for the queries that follow (the summary's count).
        let _ = self.src.batch_execute("ROLLBACK").await;
        if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            self.progress.note(
                "no privilege to emit a logical message (pg_logical_emit_message); waiting for the WAL writer to flush the moved rows",
            );
            return self.wait_for_wal_writer().await;
        }
        Err(not_durable(&pg_error(&e)))
    }

    async fn wait_for_wal_writer(&self) -> Result<(), String> {
        self.src
            .batch_execute(COMMIT_SQL)
            .await
            .map_err(|e| not_durable(&pg_error(&e)))?;
        let target: String = self
            .src
            .query_one(INSERT_LSN_SQL, &[])
            .await
            .map_err(|e| not_durable(&pg_error(&e)))?
            .col("lsn")
            .map_err(|e| not_durable(&e.to_string()))?;
        let deadline = Instant::now() + WAL_WRITER_WAIT;
        loop {
            let flushed: bool = self
                .src
                .query_one(FLUSHED_SQL, &[&target])
                .await
                .map_err(|e| not_durable(&pg_error(&e)))?
                .col("flushed")
                .map_err(|e| not_durable(&e.to_string()))?;
            if flushed {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(not_durable(&format!(
                    "the WAL writer did not flush up to {target} within {}s",
                    WAL_WRITER_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn not_durable(why: &str) -> String {
    format!("could not confirm the moved rows are durable: {why}; run again to finish")
}
