//! The batch loop: passes over the table until a pass finds nothing older than the cutoff.
//!
//! Why passes: with the ctid walk, a row updated during the run gets a new ctid, possibly in
//! pages already walked; with either walk, rows locked by others are skipped. So a pass that
//! moved anything is followed by another (or by a cheap "anything left?" probe when the time
//! column is indexed), and only a pass that moved nothing ends the run.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};
use tokio_util::sync::CancellationToken;

use super::batch::{self, Mode, Outcome, Walk};
use super::cross_db;
use super::plan::Source;
use super::run::Progress;
use super::{ArchiveJob, ArchiveReport, StopReason};
use crate::jobs::pg_error;

/// A batch should stay well under this, so writers waiting on its row locks wait little.
const TARGET_BATCH: Duration = Duration::from_millis(150);
/// Most heap pages one ctid batch may span (64 MB at 8 kB pages).
const MAX_PAGES: i64 = 8192;
/// Transient failures (lock_timeout, deadlock) retried per batch before giving up.
const RETRIES: u32 = 3;

pub enum Stmts {
    Same { first: Statement, next: Statement },
    Cross(cross_db::Prepared),
}

/// Where the walk is within a pass.
enum Position {
    Ctid { lo: i64, pages: i64, end: i64 },
    Key { last: Option<Vec<String>> },
}

pub struct Runner<'a> {
    source: &'a Source,
    src: Client,
    dst: Option<Client>,
    stmts: Stmts,
    walk: Walk,
    mode: Mode,
    batch_size: i64,
    sleep: Option<Duration>,
    deadline: Option<Instant>,
    max_lag: Option<Duration>,
    cancel: CancellationToken,
    progress: &'a mut dyn Progress,
    started: Instant,
    pages: i64,
    rows: i64,
    batches: u64,
    passes: u32,
    slowest: Duration,
}

impl<'a> Runner<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job: &ArchiveJob,
        source: &'a Source,
        src: Client,
        dst: Option<Client>,
        stmts: Stmts,
        walk: Walk,
        cancel: CancellationToken,
        progress: &'a mut dyn Progress,
        started: Instant,
    ) -> Runner<'a> {
        let batch_size = job.batch_size();
        // First guess: as many pages as hold batch_size rows of the table as a whole.
        let per_page = if source.relpages > 0 && source.reltuples > 0.0 {
            (source.reltuples / source.relpages as f64).max(1.0)
        } else {
            50.0
        };
        let pages = ((batch_size as f64 / per_page).ceil() as i64).clamp(1, MAX_PAGES);
        Runner {
            source,
            src,
            dst,
            stmts,
            walk,
            mode: job.mode(),
            batch_size,
            sleep: job.sleep.map(|d| d.0).filter(|d| !d.is_zero()),
            deadline: job.max_runtime.map(|d| started + d.0),
            max_lag: job.max_lag.map(|d| d.0),
            cancel,
            progress,
            started,
            pages,
            rows: 0,
            batches: 0,
            passes: 0,
            slowest: Duration::ZERO,
        }
    }

    pub fn into_source(self) -> Client {
        self.src
    }

    pub fn fill(&self, report: &mut ArchiveReport) {
        report.rows = self.rows;
        report.batches = self.batches;
        report.passes = self.passes;
        report.slowest_batch = self.slowest;
        report.duration = self.started.elapsed();
    }

    /// Passes until done or stopped; Err carries the message of a failed batch.
    pub async fn run_passes(&mut self, predicate: &str) -> Result<StopReason, String> {
        loop {
            self.passes += 1;
            let (pass_rows, stop) = self.one_pass().await?;
            if let Some(stop) = stop {
                return Ok(stop);
            }
            // Copying leaves the rows in place: one pass is the whole job.
            if self.mode == Mode::Copy || pass_rows == 0 {
                return Ok(StopReason::Done);
            }
            if self.source.time_indexed && !self.any_left(predicate).await {
                return Ok(StopReason::Done);
            }
            self.progress.note(&format!(
                "pass {} moved {pass_rows} rows; starting another pass for rows updated or locked meanwhile",
                self.passes
            ));
        }
    }

    async fn one_pass(&mut self) -> Result<(i64, Option<StopReason>), String> {
        let mut pos = match self.walk {
            Walk::Ctid => Position::Ctid {
                lo: 0,
                pages: self.pages,
                end: self.blocks().await?,
            },
            Walk::Key => Position::Key { last: None },
        };
        let mut pass_rows = 0;
        loop {
            if let Position::Ctid { lo, end, .. } = pos {
                if lo >= end {
                    break;
                }
            }
            if let Some(stop) = self.should_stop().await {
                return Ok((pass_rows, Some(stop)));
            }
            let t = Instant::now();
            let out = self.batch_with_retry(&mut pos).await?;
            let took = t.elapsed();
            self.slowest = self.slowest.max(took);
            self.batches += 1;
            self.rows += out.rows;
            pass_rows += out.rows;
            self.progress.batch(self.rows, self.batches, took);
            if !self.advance(&mut pos, &out, took).await? {
                break;
            }
            if let Some(d) = self.sleep {
                self.pause(d).await;
            }
        }
        Ok((pass_rows, None))
    }

    /// Moves the position past the batch just done; false when the pass is over.
    async fn advance(&mut self, pos: &mut Position, out: &Outcome, took: Duration) -> Result<bool, String> {
        match pos {
            Position::Key { last } => {
                *last = out.last_key.clone();
                Ok(out.selected >= self.batch_size && last.is_some())
            }
            Position::Ctid { lo, pages, end } => {
                *lo += *pages;
                *pages = next_pages(*pages, out.rows, self.batch_size, took);
                self.pages = *pages;
                if *lo >= *end {
                    // The table may have grown (updated rows land at its end): walk on to the new end.
                    *end = self.blocks().await?;
                }
                Ok(*lo < *end)
            }
        }
    }

    async fn batch_with_retry(&mut self, pos: &mut Position) -> Result<Outcome, String> {
        let mut attempt = 0;
        loop {
            let (first, params) = match pos {
                Position::Ctid { lo, pages, .. } => (false, vec![format!("({lo},0)"), format!("({},0)", *lo + *pages)]),
                Position::Key { last: None } => (true, Vec::new()),
                Position::Key { last: Some(k) } => (false, k.clone()),
            };
            let result = match &self.stmts {
                Stmts::Same { first: f, next } => {
                    batch::execute(&self.src, if first { f } else { next }, &params).await
                }
                Stmts::Cross(p) => match &self.dst {
                    Some(dst) => cross_db::execute(&mut self.src, dst, p, first, &params, self.mode).await,
                    None => return Err("internal error: cross-database run without a destination".into()),
                },
            };
            let e = match result {
                Ok(out) => return Ok(out),
                Err(e) => e,
            };
            let code = e.code().cloned();
            attempt += 1;
            let transient = matches!(
                code,
                Some(
                    SqlState::LOCK_NOT_AVAILABLE
                        | SqlState::T_R_DEADLOCK_DETECTED
                        | SqlState::T_R_SERIALIZATION_FAILURE
                )
            );
            let timeout = code == Some(SqlState::QUERY_CANCELED);
            if attempt > RETRIES || !(transient || timeout) {
                return Err(format!("batch {} failed: {}", self.batches + 1, pg_error(&e)));
            }
            // A statement timeout on a page range: try a smaller one.
            if let (true, Position::Ctid { pages, .. }) = (timeout, &mut *pos) {
                *pages = (*pages / 4).max(1);
            }
            self.progress.note(&format!(
                "batch {} retried ({}): {}",
                self.batches + 1,
                attempt,
                pg_error(&e)
            ));
            self.pause(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }

    async fn blocks(&self) -> Result<i64, String> {
        self.src
            .query_one(
                "SELECT pg_relation_size($1::bigint::oid) / current_setting('block_size')::bigint",
                &[&self.source.oid],
            )
            .await
            .map(|r| r.get(0))
            .map_err(|e| format!("reading the table size: {}", pg_error(&e)))
    }

    /// Stop before the next batch? Waits here while a standby lags too far behind.
    async fn should_stop(&mut self) -> Option<StopReason> {
        let mut told = false;
        loop {
            if self.cancel.is_cancelled() {
                return Some(StopReason::Signal);
            }
            let out_of_time = self.deadline.is_some_and(|d| Instant::now() >= d);
            let lag = match self.max_lag {
                Some(max) => self.replay_lag().await.filter(|l| *l > max),
                None => None,
            };
            match (lag, out_of_time) {
                (None, true) => return Some(StopReason::MaxRuntime),
                (None, false) => return None,
                (Some(_), true) => return Some(StopReason::Lag),
                (Some(l), false) => {
                    if !told {
                        self.progress
                            .note(&format!("pausing: a standby's replay lag is {:.1}s", l.as_secs_f64()));
                        told = true;
                    }
                    self.pause(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn replay_lag(&self) -> Option<Duration> {
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

    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = self.cancel.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    /// Is any row older than the cutoff left? (Only asked when an index makes it cheap.)
    async fn any_left(&self, predicate: &str) -> bool {
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

/// Pages for the next ctid batch: aim at `batch_size` rows, grow over pages with nothing to
/// move, and shrink when a batch took too long (its row locks block writers meanwhile).
fn next_pages(pages: i64, rows: i64, batch_size: i64, took: Duration) -> i64 {
    let aimed = if rows > 0 {
        let per_page = rows as f64 / pages as f64;
        ((batch_size as f64 / per_page).ceil() as i64).min(pages * 4)
    } else {
        pages * 2
    };
    let aimed = if took > TARGET_BATCH * 2 {
        (pages / 2).min(aimed)
    } else {
        aimed
    };
    aimed.clamp(1, MAX_PAGES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_adapt_to_density_and_time() {
        let fast = Duration::from_millis(20);
        assert_eq!(next_pages(100, 5000, 5000, fast), 100);
        assert_eq!(next_pages(100, 2500, 5000, fast), 200);
        assert_eq!(next_pages(100, 0, 5000, fast), 200);
        assert_eq!(next_pages(100, 1, 5000, fast), 400, "growth is bounded per step");
        assert_eq!(next_pages(100, 5000, 5000, Duration::from_secs(1)), 50);
        assert_eq!(next_pages(MAX_PAGES, 0, 5000, fast), MAX_PAGES);
        assert_eq!(next_pages(1, 10_000, 5000, fast), 1);
    }
}
