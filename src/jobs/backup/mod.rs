//! Verified, retained pg_dump backups: the library behind `dbtool backup`, `dbtool backups`,
//! `dbtool restore` and the scheduler's backup jobs.
//!
//! `run` backs up the selected databases of one target, one after another; each backup is
//! only reported, listed or retained once its manifest says verified (see `dump.rs`).

pub mod child;
pub mod compress;
pub mod crossver;
pub mod crypt;
pub mod dump;
pub mod error;
pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod objects;
pub mod options;
pub mod pgbin;
pub mod pin;
pub mod pipe;
pub mod prune;
pub mod record;
pub mod remote;
pub mod restore;
pub(crate) mod restore_age;
pub mod retention;
pub mod sealed;
pub mod session;
pub mod slots;
pub mod verify;

use std::path::Path;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::db::SessionSettings;
use crate::db::Target;
use crate::report::finding::Sample;

pub use error::BackupError;
pub use manifest::Manifest;
pub use options::{BackupOptions, DumpFormat, Retention, VerifyLevel};

/// How one database's backup went.
#[derive(Debug)]
pub struct DbOutcome {
    pub database: String,
    pub result: Result<Manifest, BackupError>,
}

/// What a run did: per database, the backups retention removed, and the metric samples.
#[derive(Debug, Default)]
pub struct BackupReport {
    pub outcomes: Vec<DbOutcome>,
    pub pruned: Vec<String>,
    pub samples: Vec<Sample>,
}

impl BackupReport {
    pub fn all_ok(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(|o| o.result.is_ok())
    }
}

/// Settings of the dbtool session that holds the lock: read-only, short statement and lock
/// timeouts (it only reads the catalog; pg_dump sets its own).
pub fn default_session() -> SessionSettings {
    SessionSettings::default()
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} {prefix}: {bytes} written, {bytes_per_sec}, {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Backs up every selected database of `target` into `opts.dest`, records each attempt,
/// applies retention after success and writes the metrics file. `cancel` kills a running
/// pg_dump and removes its temporaries. Err only when nothing could be attempted.
pub async fn run(
    opts: &BackupOptions,
    target: &Target,
    cancel: CancellationToken,
) -> Result<BackupReport, BackupError> {
    run_with_session(opts, target, &default_session(), cancel).await
}

/// The options a run cannot start without (a destination, a consistent format, a writable
/// --metrics path, object storage URLs that parse); the destination. Checked before anything
/// is dumped or recorded.
pub fn check_options(opts: &BackupOptions) -> Result<&Path, BackupError> {
    let dest = opts.dest.as_deref().ok_or(BackupError::NoDest)?;
    dump::validate(opts)?;
    for url in [Some(dest), opts.copy_to.as_deref()].into_iter().flatten() {
        if remote::is_remote(url) {
            remote::Remote::parse(url)?;
        }
    }
    opts.recipients()?;
    if let Some(path) = &opts.metrics {
        crate::report::atomic::check(path).map_err(|e| BackupError::Options(format!("--metrics: {e}")))?;
    }
    Ok(dest)
}

pub async fn run_with_session(
    opts: &BackupOptions,
    target: &Target,
    session: &SessionSettings,
    cancel: CancellationToken,
) -> Result<BackupReport, BackupError> {
    check_options(opts)?;
    let recipients = opts.recipients()?;
    let place = remote::place::Place::open(opts).await?;
    let dest = place.local();
    let databases = match select_databases(opts, target, session, dest).await {
        Ok(list) => list,
        Err(e) => {
            // Nothing was attempted; name the failure after the databases asked for, or the
            // target's own, so "last status 0" still reaches the alert.
            let names = if opts.databases.is_empty() {
                vec![target
                    .params()
                    .map_or_else(|_| target.name.clone(), |p| p.dbname().to_string())]
            } else {
                opts.databases.clone()
            };
            let mut state = None;
            for db in names {
                state = Some(metrics::record(dest, &db, Utc::now(), 0.0, Some(e.to_string())));
            }
            place.save_state().await;
            let remote = place.remote_backups().await;
            write_metrics(opts, dest, target, state, remote)?;
            return Err(e);
        }
    };
    let bar = opts.progress.then(progress_bar);
    let job = dump::Job {
        opts,
        dest,
        params: target.postgres_params()?,
        session,
        cancel: &cancel,
        progress: bar.as_ref(),
        recipients: &recipients,
        shipping: place.shipping.as_ref(),
    };
    let mut report = BackupReport::default();
    let mut state = None;
    for database in databases {
        if cancel.is_cancelled() {
            break;
        }
        let started = Utc::now();
        let clock = std::time::Instant::now();
        let result = dump::backup_database(&job, &database).await;
        // A run refused because another one holds the lock is not an attempt: recording it
        // would report the running backup's database as failed while it is being backed up.
        let attempted = !matches!(result, Err(BackupError::Busy { .. }));
        if attempted {
            let error = result.as_ref().err().map(ToString::to_string);
            state = Some(metrics::record(
                dest,
                &database,
                started,
                clock.elapsed().as_secs_f64(),
                error,
            ));
        }
        if let Some(up) = place.shipping.as_ref().and_then(|s| s.uploaded(&database)) {
            state = Some(metrics::record_upload(dest, &database, up.seconds, up.bytes));
        }
        // After each database, not once at the end: a run killed later keeps this count.
        if attempted {
            place.save_state().await;
        }
        report.outcomes.push(DbOutcome { database, result });
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if opts.prune_after() {
        let done: Vec<String> = report
            .outcomes
            .iter()
            .filter(|o| o.result.is_ok())
            .map(|o| o.database.clone())
            .collect();
        if !done.is_empty() {
            if place.keeps_local() {
                let p = prune::prune(dest, opts.retention(), Some(&done), false, Utc::now())?;
                report.pruned = p.deleted.into_iter().map(|d| d.id).collect();
            }
            if let Some(p) = place.prune_remote(opts.retention(), &done, Utc::now()).await? {
                let ids = p.deleted.into_iter().map(|d| d.id);
                report
                    .pruned
                    .extend(ids.filter(|id| !report.pruned.contains(id)).collect::<Vec<_>>());
            }
        }
    }
    let remote = place.remote_backups().await;
    report.samples = write_metrics(opts, dest, target, state, remote)?;
    Ok(report)
}

/// Counts notifications that could not be delivered in the destination's state (a directory's
/// file, or the state object of `--dest s3://…`) and rewrites the metrics file.
pub async fn record_notify_failures(
    opts: &BackupOptions,
    target: &Target,
    endpoints: &[String],
) -> Result<(), BackupError> {
    let place = remote::place::Place::open(opts).await?;
    let state = metrics::record_notify_failures(place.local(), endpoints);
    place.save_state().await;
    let remote = place.remote_backups().await;
    write_metrics(opts, place.local(), target, Some(state), remote).map(|_| ())
}

/// The destination exists, and which databases to dump.
async fn select_databases(
    opts: &BackupOptions,
    target: &Target,
    session: &SessionSettings,
    dest: &Path,
) -> Result<Vec<String>, BackupError> {
    std::fs::create_dir_all(dest).map_err(BackupError::io("create the backup directory", dest))?;
    Ok(match (opts.all, opts.databases.is_empty()) {
        (true, _) => session::list_databases(target.postgres_params()?, session).await?,
        (false, true) => vec![target.postgres_params()?.dbname().to_string()],
        (false, false) => opts.databases.clone(),
    })
}

/// The samples for everything in `dest` (or `remote`, the backups of an object storage
/// destination; with this run's `state` when it has one, in case it could not be saved),
/// written to `opts.metrics` when set.
pub fn write_metrics(
    opts: &BackupOptions,
    dest: &Path,
    target: &Target,
    state: Option<metrics::State>,
    remote: Option<Vec<Manifest>>,
) -> Result<Vec<Sample>, BackupError> {
    let backups = remote.unwrap_or_else(|| manifest::scan(dest).map(|(b, _)| b).unwrap_or_default());
    let state = state.unwrap_or_else(|| metrics::load_state(dest));
    let samples = metrics::samples(&state, &backups, Utc::now());
    if let Some(path) = &opts.metrics {
        metrics::write_file(path, &target.name, &samples)?;
    }
    Ok(samples)
}
