//! Questions the loop asks the server between batches: table size, replica lag, anything left.

use std::time::Duration;

use tokio_postgres::Client;

use super::Runner;
use crate::db::Columns;
use crate::jobs::archive::plan::Source;
use crate::jobs::pg_error;

const BLOCKS_SQL: &str = include_str!("../../../../queries/archive_blocks.sql");
const REPLAY_LAG_SQL: &str = include_str!("../../../../queries/archive_replay_lag.sql");

impl Runner<'_> {
    pub(super) async fn blocks(&self) -> Result<i64, String> {
        let row = self
            .src
            .query_one(BLOCKS_SQL, &[&self.source.oid])
            .await
            .map_err(|e| format!("reading the table size: {}", pg_error(&e)))?;
        // NULL: the table was dropped while the run walked it.
        row.col("blocks")
            .map_err(|e| format!("reading the table size of {} (dropped?): {e}", self.source.name))
    }

    pub(super) async fn replay_lag(&self) -> Option<Duration> {
        let row = self.src.query_one(REPLAY_LAG_SQL, &[]).await;
        let lag = match row {
            Ok(r) => r.col::<f64>("lag_seconds").map_err(|e| e.to_string()),
            Err(e) => Err(pg_error(&e)),
        };
        match lag {
            Ok(secs) => Duration::try_from_secs_f64(secs).ok(),
            Err(e) => {
                tracing::warn!("cannot read pg_stat_replication: {e}");
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
        match self.src.query_one(&sql, &[]).await {
            Ok(r) => r.try_get(0).unwrap_or(true),
            Err(_) => true,
        }
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
