//! Questions the loop asks the server between batches: table size, replica lag, anything left.

use std::time::Duration;

use tokio_postgres::Client;

use super::Runner;
use crate::jobs::archive::plan::Source;
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
}

/// Rows still older than the cutoff, counted in a read-only transaction bounded to a couple of
/// seconds. An error (too slow, the session gone) is the caller's to report; never a guess.
pub async fn count_remaining(client: &Client, source: &Source, predicate: &str) -> Result<i64, tokio_postgres::Error> {
    let sql = format!(
        "/* dbtool archive */ SELECT count(*) FROM {} s WHERE {predicate}",
        source.name.quoted()
    );
    client
        .batch_execute("BEGIN READ ONLY; SET LOCAL statement_timeout = '2s'")
        .await?;
    let counted = client.query_one(&sql, &[]).await;
    let ended = client.batch_execute("ROLLBACK").await;
    let n = counted?.try_get(0)?;
    ended?;
    Ok(n)
}
