//! `dbtool archive`: resolve the job (flags over `[[archive]]`), wire signals to cancellation,
//! pick the progress display, run, print the summary and the reason line.

use std::io::{IsTerminal, Write};

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use crate::cli::archive::ArchiveArgs;
use crate::db::ProcessEnv;
use crate::duration::HumanDuration;
use crate::jobs::archive::{self, report, ArchiveError, ArchiveJob, ArchiveReport, RunOptions};
use crate::notify;
use crate::settings::Settings;
use crate::Failure;

use crate::settings::targets;

/// The job from the file (by --job), with every given flag laid over it.
pub fn resolve(args: &ArchiveArgs, loaded: &Settings) -> anyhow::Result<ArchiveJob> {
    let base = match &args.job {
        Some(name) => match loaded.file.archive.iter().find(|j| &j.job_name() == name) {
            Some(j) => j.clone(),
            None => {
                let known: Vec<String> = loaded.file.archive.iter().map(ArchiveJob::job_name).collect();
                bail!(
                    "no [[archive]] job named '{name}' in the config file (known: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                );
            }
        },
        None => ArchiveJob::default(),
    };
    let mut job = archive::preset::expand(&args.options.over(&base))?;
    let missing: Vec<&str> = [
        ("--table", &job.table),
        ("--column", &job.column),
        ("--older-than", &job.older_than),
    ]
    .iter()
    .filter(|(_, v)| v.trim().is_empty())
    .map(|(f, _)| *f)
    .collect();
    if !missing.is_empty() {
        bail!("{} required (or --job NAME from the config file)", missing.join(", "));
    }
    // Session limits: a flag wins, then the job's own, then the file's global setting.
    let session = targets::session(&args.conn, loaded, false);
    job.statement_timeout = args
        .conn
        .statement_timeout
        .map(HumanDuration)
        .or(job.statement_timeout)
        .or(Some(HumanDuration(session.statement_timeout)));
    job.lock_timeout = args
        .conn
        .lock_timeout
        .map(HumanDuration)
        .or(job.lock_timeout)
        .or(Some(HumanDuration(session.lock_timeout)));
    Ok(job)
}

pub async fn run(args: &ArchiveArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let job = resolve(args, loaded)?;
    let notify = args.notify.over(&loaded.file.notify);
    notify.validate().map_err(|message| Failure { code: 3, message })?;
    let mut all = targets::resolve(&args.conn, loaded, &ProcessEnv)?;
    if all.len() != 1 {
        bail!("archive works on one database at a time; give one --dsn (or one [[targets]] entry)");
    }
    let target = all.remove(0);
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    let mut bar = report::Bar::new();
    let mut lines = report::Lines::new(args.progress_every);
    let progress: &mut dyn archive::Progress = if std::io::stderr().is_terminal() && !args.output.json() {
        &mut bar
    } else {
        &mut lines
    };
    let opts = RunOptions { progress, record: true };
    let started = chrono::Utc::now();
    let result = archive::run_with(&job, &target, cancel, opts).await;
    drop(bar);
    if !notify.is_empty() {
        // A dry run changes nothing and tells nobody.
        let dry = result.as_ref().is_ok_and(|r| r.sql.is_some());
        let (rows, outcome) = match &result {
            Ok(r) => (Some(r.rows), Ok(Some(crate::jobs::archive::report::reason_line(r)))),
            Err(ArchiveError::Run { report, message }) => (Some(report.rows), Err(message.clone())),
            Err(e) => (None, Err(e.to_string())),
        };
        let event = notify::Event::new(
            &job.job_name(),
            "archive",
            &target.name,
            target.params().map_or("", |p| p.dbname()),
            started,
            None,
            rows,
            outcome,
        );
        if !dry {
            notify::notify(&notify, &event).await;
        }
    }
    match result {
        Ok(r) => {
            let preset = args.options.preset.or(base_preset(args, loaded));
            if let (true, Some(_), false) = (r.sql.is_some(), preset, args.output.json()) {
                writeln!(
                    std::io::stdout(),
                    "-- the preset stands for:\n-- {}",
                    archive::preset::flags(&job)
                )?;
            }
            print(&r, args.output.json())?;
            Ok(0)
        }
        Err(ArchiveError::Run { report, message }) => {
            print(&report, args.output.json())?;
            Err(Failure {
                code: 2,
                message: format!("archive {}: {message}", report.table),
            }
            .into())
        }
        Err(e) => Err(Failure {
            code: e.exit_code(),
            message: format!("archive {}: {e}", job.table),
        }
        .into()),
    }
}

/// The preset of the `[[archive]]` job named by --job, if any.
fn base_preset(args: &ArchiveArgs, loaded: &Settings) -> Option<archive::preset::Preset> {
    let name = args.job.as_ref()?;
    loaded.file.archive.iter().find(|j| &j.job_name() == name)?.preset
}

fn print(r: &ArchiveReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::json!({"schema": 1, "archive": r}))?;
        return Ok(());
    }
    if let Some(sql) = &r.sql {
        writeln!(out, "-- SQL of each batch (dry run; nothing was changed):\n{sql};\n")?;
        match r.would_move {
            Some(n) => writeln!(out, "rows older than the cutoff ({}): {n}", r.cutoff)?,
            None => writeln!(out, "rows older than the cutoff ({}): count timed out", r.cutoff)?,
        }
        return Ok(());
    }
    report::summary(r, &mut out)?;
    writeln!(out, "{}", crate::report::printable::printable(&report::reason_line(r)))?;
    Ok(())
}

/// SIGINT/SIGTERM: finish the current batch, then stop (the loop checks the token between batches).
fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        let Ok(mut term) = term else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("dbtool archive: signal received; finishing the current batch");
        cancel.cancel();
    });
}
