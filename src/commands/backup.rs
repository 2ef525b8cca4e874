//! `dbtool backup`: flags over the config file's [backup] section, then `jobs::backup::run`.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use indicatif::HumanBytes;
use tokio_util::sync::CancellationToken;

use crate::cli::backup::{BackupArgs, KeepArgs};
use chrono::{DateTime, Utc};

use crate::db::{ProcessEnv, Target};
use crate::duration::HumanDuration;
use crate::jobs::backup::{self, BackupError, BackupOptions, BackupReport};
use crate::notify::{self, Event, NotifyOptions};
use crate::settings::Settings;
use crate::Failure;

use crate::settings::targets;

/// `--keep-*` flags laid over the options' own.
pub fn apply_keep(opts: &mut BackupOptions, keep: &KeepArgs) {
    opts.keep_last = keep.keep_last.or(opts.keep_last);
    opts.keep_daily = keep.keep_daily.or(opts.keep_daily);
    opts.keep_weekly = keep.keep_weekly.or(opts.keep_weekly);
    opts.keep_monthly = keep.keep_monthly.or(opts.keep_monthly);
}

/// The [backup] section with the flags laid over it.
pub fn resolve(args: &BackupArgs, loaded: &Settings) -> BackupOptions {
    let mut o = loaded.file.backup.clone();
    o.dest = args.dest.dest.clone().or(o.dest);
    o.copy_to = args.copy_to.clone().or(o.copy_to);
    if !args.databases.is_empty() {
        o.databases = args.databases.clone();
    }
    o.all |= args.all;
    o.format = args.format.unwrap_or(o.format);
    o.jobs = args.jobs.or(o.jobs);
    o.compress = args.compress.clone().or(o.compress);
    o.globals |= args.globals;
    if !args.files.is_empty() {
        o.files = args.files.clone();
    }
    o.verify = args.verify.unwrap_or(o.verify);
    o.lock_wait_timeout = args.lock_wait_timeout.map(HumanDuration).or(o.lock_wait_timeout);
    apply_keep(&mut o, &args.keep);
    if args.no_prune {
        o.prune = Some(false);
    }
    o.metrics = args.metrics.clone().or(o.metrics);
    if !args.encrypt_to.is_empty() {
        o.encrypt_to = args.encrypt_to.clone();
    }
    o.recipients_file = args.recipients_file.clone().or(o.recipients_file);
    o.progress = std::io::stderr().is_terminal();
    o
}

/// A token cancelled by SIGINT or SIGTERM, so a killed cron job removes its temporaries.
pub fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        t.cancel();
    });
    token
}

/// Exit 3 for a mistake in the request, 2 for a backup that failed.
pub fn failure(e: &BackupError) -> Failure {
    Failure {
        code: if e.is_bad_input() { 3 } else { 2 },
        message: e.to_string(),
    }
}

fn print(report: &BackupReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let backups: Vec<_> = report.outcomes.iter().filter_map(|o| o.result.as_ref().ok()).collect();
        let failures: Vec<_> = report
            .outcomes
            .iter()
            .filter_map(|o| {
                Some(serde_json::json!({"database": o.database, "error": o.result.as_ref().err()?.to_string()}))
            })
            .collect();
        let v = serde_json::json!({"schema": 1, "backups": backups, "failures": failures, "pruned": report.pruned});
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    for m in report.outcomes.iter().filter_map(|o| o.result.as_ref().ok()) {
        writeln!(
            out,
            "{}  {}  {} in {:.1}s  sha256 {}  verified ({})",
            m.id,
            m.database,
            HumanBytes(m.bytes),
            m.duration_seconds,
            m.sha256.get(..16).unwrap_or(&m.sha256),
            m.verified_with
        )?;
    }
    for id in &report.pruned {
        writeln!(out, "pruned {id}")?;
    }
    Ok(())
}

/// Tells `[notify]`/`--notify` how each database's backup went (one document per database,
/// or one for a run that could not start); undelivered ones are counted in the destination's
/// state (a directory's file, or the state object of `--dest s3://…`) and the metrics file
/// rewritten. Never changes the run's result.
async fn tell(
    notify: &NotifyOptions,
    opts: &BackupOptions,
    target: &Target,
    started: DateTime<Utc>,
    result: &Result<BackupReport, BackupError>,
) {
    if notify.is_empty() {
        return;
    }
    let event = |database: &str, at, bytes, outcome| {
        Event::new("backup", "backup", &target.name, database, at, bytes, None, outcome)
    };
    let events: Vec<Event> = match result {
        Ok(r) => (r.outcomes.iter())
            .map(|o| match &o.result {
                Ok(m) => event(&o.database, m.started_at, Some(m.bytes), Ok(Some(m.id.clone()))),
                Err(e) => event(&o.database, started, None, Err(e.to_string())),
            })
            .collect(),
        Err(e) => vec![event(
            target.params().map_or("", |p| p.dbname()),
            started,
            None,
            Err(e.to_string()),
        )],
    };
    let mut failed = Vec::new();
    for e in &events {
        failed.extend(notify::notify(notify, e).await);
    }
    if failed.is_empty() {
        return;
    }
    if let Err(e) = backup::record_notify_failures(opts, target, &failed).await {
        tracing::warn!(error = %e, "could not count the notification failures in the destination's state and the metrics file");
    }
}

pub async fn run(args: &BackupArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let opts = resolve(args, loaded);
    let notify = args.notify.over(&loaded.file.notify);
    notify.validate().map_err(|message| Failure { code: 3, message })?;
    let targets = targets::resolve(&args.conn, loaded, &ProcessEnv)?;
    if targets.len() > 1 {
        // why: backups of two servers' "app" databases in one destination could not be told
        // apart by retention, listing or restore, and one metrics file would hold only the last.
        return Err(Failure {
            code: 3,
            message: format!(
                "dbtool backup backs up one server per run, got {} targets; pick one with --target NAME (a [[targets]] entry) or --dsn, once per server, each with its own --dest and --metrics",
                targets.len()
            ),
        }
        .into());
    }
    // A request that cannot run is an error, not a failed run in the history.
    backup::check_options(&opts).map_err(|e| failure(&e))?;
    let session = targets::session(&args.conn, loaded, true);
    let cancel = cancel_on_signal();
    let mut failures = Vec::new();
    for target in &targets {
        // Recorded like a scheduled run, so `dbtool history` has every backup.
        let recorded = backup::record::start(target, &targets::bookkeeping(loaded)).await;
        let started = Utc::now();
        let result = backup::run_with_session(&opts, target, &session, cancel.clone()).await;
        if let Some(r) = recorded {
            r.finish(&result).await;
        }
        tell(&notify, &opts, target, started, &result).await;
        let report = result
            .map_err(|e| failure(&e))
            .with_context(|| format!("backup of {}", target.name))?;
        print(&report, args.json)?;
        for o in &report.outcomes {
            if let Err(e) = &o.result {
                failures.push(format!("backup of database {} failed: {e}", o.database));
            }
        }
    }
    if failures.is_empty() {
        return Ok(0);
    }
    Err(Failure {
        code: 2,
        message: failures.join("; "),
    }
    .into())
}
