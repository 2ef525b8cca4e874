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
use super::manifest::{self, Manifest};
use super::plan::Source;
use super::run::Progress;
use super::{ArchiveJob, ArchiveReport, StopReason};

mod flush;
mod pages;
mod probe;

pub use probe::count_remaining;

use pages::{next_pages, MAX_PAGES};

/// Transient failures (lock_timeout, deadlock) retried per batch before giving up.
const RETRIES: u32 = 3;

pub enum Stmts {
    Same {
        first: Statement,
        next: Statement,
        careful_first: Statement,
        careful_next: Statement,
    },
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
    /// Rows moved per child, in the order of the run's children.
    child_rows: Vec<i64>,
    batches: u64,
    passes: u32,
    slowest: Duration,
    /// --files-manifest: batches then commit in explicit transactions (see manifest.rs).
    manifest: Option<Manifest>,
}

impl<'a> Runner<'a> {
    /// With children a batch moves more than its parent rows: the first page range starts
    /// smaller (a share per table) and the pace of the batches grows it (see `next_pages`).
    pub fn with_children(mut self, children: usize) -> Runner<'a> {
        let tables = i64::try_from(children).unwrap_or(i64::MAX).saturating_add(1);
        self.pages = (self.pages / tables).max(1);
        self
    }

    pub fn with_manifest(mut self, manifest: Option<Manifest>) -> Runner<'a> {
        self.manifest = manifest;
        self
    }

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
            child_rows: Vec::new(),
            batches: 0,
            passes: 0,
            slowest: Duration::ZERO,
            manifest: None,
        }
    }

    pub fn into_source(self) -> Client {
        self.src
    }

    pub fn client(&self) -> &Client {
        &self.src
    }

    pub fn fill(&self, report: &mut ArchiveReport) {
        report.rows = self.rows;
        for (c, n) in report.children.iter_mut().zip(&self.child_rows) {
            c.rows = *n;
        }
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
            if self.child_rows.len() < out.child_rows.len() {
                self.child_rows.resize(out.child_rows.len(), 0);
            }
            for (total, n) in self.child_rows.iter_mut().zip(&out.child_rows) {
                *total += n;
            }
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
        let mut careful = false;
        loop {
            let (first, params) = match pos {
                Position::Ctid { lo, pages, .. } => (false, vec![format!("({lo},0)"), format!("({},0)", *lo + *pages)]),
                Position::Key { last: None } => (true, Vec::new()),
                Position::Key { last: Some(k) } => (false, k.clone()),
            };
            let result = match &self.stmts {
                Stmts::Same {
                    first: f,
                    next,
                    careful_first: cf,
                    careful_next: cn,
                } => {
                    let stmt = match (careful, first) {
                        (false, true) => f,
                        (false, false) => next,
                        (true, true) => cf,
                        (true, false) => cn,
                    };
                    match &self.manifest {
                        Some(m) => manifest::execute(&self.src, stmt, &params, m).await,
                        None => batch::execute(&self.src, stmt, &params).await,
                    }
                }
                Stmts::Cross(p) => match &mut self.dst {
                    Some(dst) => {
                        cross_db::execute(&mut self.src, dst, p, first, &params, self.mode, self.manifest.as_ref())
                            .await
                    }
                    None => return Err("internal error: cross-database run without a destination".into()),
                },
            };
            let e = match result {
                Ok(out) => return Ok(out),
                Err(e) => e,
            };
            let code = e.code().cloned();
            let locked = matches!(
                code,
                Some(SqlState::LOCK_NOT_AVAILABLE | SqlState::T_R_DEADLOCK_DETECTED)
            );
            // Someone holds one of the batch's rows, or the archive has one of its keys: the
            // fast form changed nothing; redo the range skipping locked rows, upserting.
            let duplicate = code == Some(SqlState::UNIQUE_VIOLATION);
            if (locked || duplicate) && !careful && matches!(self.stmts, Stmts::Same { .. }) {
                careful = true;
                continue;
            }
            attempt += 1;
            let transient = locked || code == Some(SqlState::T_R_SERIALIZATION_FAILURE);
            let timeout = code == Some(SqlState::QUERY_CANCELED);
            if attempt > RETRIES || !(transient || timeout) {
                return Err(format!("batch {} failed: {e}", self.batches + 1));
            }
            // A statement timeout on a page range: try a smaller one.
            if let (true, Position::Ctid { pages, .. }) = (timeout, &mut *pos) {
                *pages = (*pages / 4).max(1);
            }
            self.progress
                .note(&format!("batch {} retried ({}): {e}", self.batches + 1, attempt));
            self.pause(Duration::from_millis(200 * u64::from(attempt))).await;
        }
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

    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = self.cancel.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }
}
