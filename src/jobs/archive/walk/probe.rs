//! Questions the loop asks the server between batches: table size, replica lag, anything left.

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
}
