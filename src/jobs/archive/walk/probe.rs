//! Questions the loop asks the server between batches (table size, replica lag, anything
//! left), and the durability barrier after the last one.

use std::time::Duration;

use super::Runner;
use crate::jobs::pg_error;

impl Runner<'_> {
    pub(super) async fn blocks(&self) -> Result<i64, String> {
        self.src
            .query_one(
                "SELECT pg_relation_size($1::bigint::oid) / current_setting('block_size')::bigint",
                &[&self.source.oid],
            )
            .await
            .map(|r| r.get(0))
            .map_err(|e| format!("reading the table size: {}", pg_error(&e)))
    }

    pub(super) async fn replay_lag(&self) -> Option<Duration> {
        let row = self
            .src
            .query_one(
                "/* dbtool archive */ SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float8 FROM pg_stat_replication",
                &[],
            )
            .await;
        match row {
            Ok(r) => Duration::try_from_secs_f64(r.get::<_, f64>(0)).ok(),
            Err(e) => {
                tracing::warn!("cannot read pg_stat_replication: {}", pg_error(&e));
                None
            }
        }
    }

    /// Is any row older than the cutoff left? (Only asked when an index makes it cheap.)
    pub(super) async fn any_left(&self, predicate: &str) -> bool {
        let sql = format!(
            "/* dbtool archive */ SELECT EXISTS (SELECT 1 FROM {} s WHERE {predicate})",
            self.source.name.quoted()
        );
        // If the probe fails, assume yes: another pass is safe, stopping early is not.
        self.src.query_one(&sql, &[]).await.map_or(true, |r| r.get(0))
    }

    /// Rows still older than the cutoff: counted when that is quick, else the planner's estimate.
    pub async fn remaining(&self, predicate: &str, estimate: Option<i64>) -> Option<i64> {
        let sql = format!(
            "/* dbtool archive */ SELECT count(*) FROM {} s WHERE {predicate}",
            self.source.name.quoted()
        );
        let counted = async {
            self.src
                .batch_execute("BEGIN; SET LOCAL statement_timeout = '2s'")
                .await?;
            let n = self.src.query_one(&sql, &[]).await;
            self.src.batch_execute("ROLLBACK").await?;
            n.map(|r| r.get::<_, i64>(0))
        };
        match counted.await {
            Ok(n) => Some(n),
            Err(_) => {
                let _ = self.src.batch_execute("ROLLBACK").await;
                estimate.map(|e| (e - self.rows).max(0))
            }
        }
    }

    /// Makes every batch committed so far durable. Batches commit asynchronously (see
    /// `setup`), so without this a crash just after the run could undo its last batches
    /// while the run has reported them moved and exited 0. One transaction with a
    /// synchronous commit flushes the WAL up to its own commit record, which lies after
    /// every earlier batch's. It must write WAL of its own (here a transactional logical
    /// message, callable by any role), or PostgreSQL commits it asynchronously anyway.
    pub async fn flush_commits(&self) -> Result<(), String> {
        let flushed = self
            .src
            .batch_execute(
                "/* dbtool archive */ BEGIN; SET LOCAL synchronous_commit = on; \
                 SELECT pg_logical_emit_message(true, 'dbtool', 'archive: flush'); COMMIT",
            )
            .await;
        if let Err(e) = flushed {
            // Leave no transaction open for the queries that follow (the summary's count).
            let _ = self.src.batch_execute("ROLLBACK").await;
            return Err(format!(
                "could not confirm the moved rows are durable: {}; run again to finish",
                pg_error(&e)
            ));
        }
        Ok(())
    }
}
