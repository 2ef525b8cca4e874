//! `dbtool backups list|verify|prune`: read and tend a backup destination.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use indicatif::HumanBytes;

use crate::cli::backup::{BackupsCommand, DestArgs, IdentityArgs, ListArgs, PruneArgs, VerifyArgs};
use crate::jobs::backup::crypt::Identities;
use crate::jobs::backup::remote::{self, source::Source};
use crate::jobs::backup::{manifest, pgbin, prune, retention, verify, BackupError, Manifest, VerifyLevel};
use crate::report::printable::printable;
use crate::settings::Settings;
use crate::Failure;

use super::backup::{apply_keep, cancel_on_signal, failure};

/// `--dest`, else the config file's.
pub fn dest(args: &DestArgs, loaded: &Settings) -> Result<PathBuf, Failure> {
    args.dest
        .clone()
        .or_else(|| loaded.file.backup.dest.clone())
        .ok_or_else(|| failure(&BackupError::NoDest))
}

/// The keys of `--identity`, loaded once (an unreadable or wrong file is exit 3).
pub fn identities(a: &IdentityArgs) -> Result<Option<Identities>, Failure> {
    a.identity
        .as_deref()
        .map(Identities::load)
        .transpose()
        .map_err(|e| failure(&e))
}

pub async fn run(cmd: &BackupsCommand, loaded: &Settings) -> anyhow::Result<u8> {
    match cmd {
        BackupsCommand::List(a) => list(a, loaded).await,
        BackupsCommand::Verify(a) => verify_cmd(a, loaded).await,
        BackupsCommand::Prune(a) => prune_cmd(a, loaded).await,
    }
}

/// The destination, mirrored when it is object storage (unreadable: exit 3).
pub async fn source(dest: &std::path::Path) -> Result<Source, Failure> {
    Source::open(dest).await.map_err(|e| Failure {
        code: 3,
        message: e.to_string(),
    })
}

async fn list(a: &ListArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let dest = dest(&a.dest, loaded)?;
    let src = source(&dest).await?;
    let (backups, leftovers) = src.scan().map_err(|e| Failure {
        code: 3,
        message: e.to_string(),
    })?;
    let backups: Vec<&Manifest> = backups
        .iter()
        .filter(|m| a.database.as_ref().is_none_or(|d| &m.database == d))
        .collect();
    let mut out = std::io::stdout().lock();
    if a.output.json() {
        let unverified: Vec<_> = leftovers
            .iter()
            .map(|l| serde_json::json!({"path": l.path, "why": l.why}))
            .collect();
        let v = serde_json::json!({"schema": 1, "backups": backups, "unverified": unverified});
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header([
        "id",
        "database",
        "started (UTC)",
        "duration",
        "size",
        "sha256",
        "verified",
        "encrypted",
        "server",
    ]);
    for m in backups {
        // Names and versions come from manifests and servers: escaped for the terminal.
        t.add_row([
            printable(&m.id).into_owned(),
            printable(&m.database).into_owned(),
            m.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            format!("{:.1}s", m.duration_seconds),
            HumanBytes(m.bytes).to_string(),
            m.sha256.get(..12).unwrap_or(&m.sha256).to_string(),
            format!("yes ({})", m.verified_with),
            match &m.encryption {
                // Public keys: long, so shortened the way age prints them.
                Some(e) => printable(&format!("age: {}", short_keys(&e.recipients))).into_owned(),
                None => "no".into(),
            },
            printable(&m.server_version).into_owned(),
        ]);
    }
    for l in &leftovers {
        let name = l.name();
        t.add_row([
            printable(&name).into_owned(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            printable(&format!("no: {}", l.why)).into_owned(),
            String::new(),
            String::new(),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(0)
}

/// `age1abcdefgh…wxyz, …`: enough to tell keys apart in a table (the JSON has them whole).
fn short_keys(keys: &[String]) -> String {
    let short = |k: &String| match (k.get(..12), k.get(k.len().saturating_sub(6)..)) {
        (Some(head), Some(tail)) if k.len() > 20 => format!("{head}…{tail}"),
        _ => k.clone(),
    };
    keys.iter().map(short).collect::<Vec<_>>().join(", ")
}

async fn verify_cmd(a: &VerifyArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let dest = dest(&a.dest, loaded)?;
    let src = source(&dest).await?;
    let mut bad = Vec::new();
    let mut out = std::io::stdout().lock();
    let json = a.output.json();
    // With --format json: one entry per backup (and per directory that cannot be one).
    let mut results: Vec<serde_json::Value> = Vec::new();
    let selected: Vec<Manifest> = if a.id.is_some() || a.latest {
        vec![manifest::find(src.dir(), a.id.as_deref(), a.database.as_deref()).map_err(|e| failure(&e))?]
    } else {
        let (all, leftovers) = src.scan().map_err(|e| failure(&e))?;
        // A directory whose manifest is unreadable or garbled is a backup that cannot be
        // trusted: a cron job must see it fail, not pass over it. (Hidden `.partial`
        // directories are backups being written, listed by `backups list`.)
        let of_db = |name: &str| {
            a.database
                .as_ref()
                .is_none_or(|d| name.starts_with(&format!("{}_", manifest::safe_name(d))))
        };
        for l in &leftovers {
            let name = l.name();
            if !name.starts_with('.') && of_db(&name) {
                if json {
                    results.push(serde_json::json!({"id": name, "ok": false, "error": l.why}));
                } else {
                    writeln!(out, "FAILED  {name}  {}", l.why)?;
                }
                bad.push(format!(
                    "{}: {} (not a backup dbtool can verify)",
                    l.path.display(),
                    l.why
                ));
            }
        }
        all.into_iter()
            .filter(|m| a.database.as_ref().is_none_or(|d| &m.database == d))
            .collect()
    };
    if selected.is_empty() && bad.is_empty() {
        let of = a
            .database
            .as_ref()
            .map(|d| format!(" of database {d}"))
            .unwrap_or_default();
        return Err(Failure {
            code: 2,
            message: format!(
                "no backup{of} in {}: nothing to verify; check --dest and that `dbtool backup` runs",
                src.display()
            ),
        }
        .into());
    }
    let level = if a.full { VerifyLevel::Full } else { VerifyLevel::List };
    let keys = identities(&a.identity)?;
    let cancel = cancel_on_signal();
    for m in &selected {
        // pg_restore reads archives of its own and older pg_dump versions.
        let major = pgbin::major_of(&m.pg_dump_version).unwrap_or(0);
        let bin = pgbin::find(major).await.map_err(|e| failure(&BackupError::from(e)))?;
        let result = src.verify(m, &bin, level, keys.as_ref(), &cancel).await;
        let read = if a.full { "full read" } else { "--list" };
        match (&result, json) {
            (_, true) => results.push(serde_json::json!({
                "id": m.id, "database": m.database, "ok": result.is_ok(),
                "encrypted": m.encryption.is_some(),
                "test_read": result.as_ref().ok().map(|v| *v == verify::Verified::Read),
                "error": result.as_ref().err().map(ToString::to_string),
            })),
            (Ok(verify::Verified::Read), false) if m.encryption.is_some() => writeln!(
                out,
                "ok      {}  sha256 (encrypted), decrypted sha256 and pg_restore {read} passed",
                m.id
            )?,
            (Ok(verify::Verified::Read), false) => {
                writeln!(out, "ok      {}  sha256 and pg_restore {read} passed", m.id)?
            }
            (Ok(verify::Verified::ChecksumsOnly), false) => writeln!(
                out,
                "ok      {}  sha256 of the encrypted files passed (no --identity: not decrypted or test-read)",
                m.id
            )?,
            (Err(e), false) => writeln!(out, "FAILED  {}  {e}", m.id)?,
        }
        if let Err(e) = result {
            bad.push(e.to_string());
        }
    }
    if json {
        let level = if a.full { "full" } else { "list" };
        let v = serde_json::json!({"schema": 1, "level": level, "ok": bad.is_empty(), "backups": results});
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    }
    if bad.is_empty() {
        return Ok(0);
    }
    Err(Failure {
        code: 2,
        message: bad.join("; "),
    }
    .into())
}

async fn prune_cmd(a: &PruneArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let dest = dest(&a.dest, loaded)?;
    let mut opts = loaded.file.backup.clone();
    apply_keep(&mut opts, &a.keep);
    let only = a.database.clone().map(|d| vec![d]);
    let now = chrono::Utc::now();
    let r = if remote::is_remote(&dest) {
        let r = remote::Remote::parse(&dest).map_err(|e| failure(&e))?;
        remote::retain::prune(&r, opts.retention(), only.as_deref(), a.dry_run, now).await
    } else {
        prune::prune(&dest, opts.retention(), only.as_deref(), a.dry_run, now)
    };
    let r = r
        .map_err(|e| Failure {
            code: 2,
            message: e.to_string(),
        })
        .context("prune")?;
    let verb = if a.dry_run { "would delete" } else { "deleted" };
    let mut out = std::io::stdout().lock();
    let series = |m: &Manifest| retention::Point::of(m).series();
    if a.output.json() {
        let deleted: Vec<_> = r
            .deleted
            .iter()
            .map(|m| serde_json::json!({"id": m.id, "series": series(m)}))
            .collect();
        let kept: Vec<_> = r
            .kept
            .iter()
            .map(|(m, why)| serde_json::json!({"id": m.id, "series": series(m), "why": why}))
            .collect();
        let v = serde_json::json!({
            "schema": 1, "dry_run": a.dry_run, "deleted": deleted, "kept": kept,
            "leftovers": r.leftovers, "ignored": r.foreign.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    for m in &r.deleted {
        writeln!(out, "{verb}  {}  [{}]", m.id, series(m))?;
    }
    for (m, why) in &r.kept {
        writeln!(out, "keep  {}  [{}]  ({})", m.id, series(m), why.join(", "))?;
    }
    for p in &r.leftovers {
        writeln!(out, "{verb}  {} (unfinished, older than a day)", p.display())?;
    }
    for (p, why) in &r.foreign {
        writeln!(
            out,
            "ignored  {} ({why}; not written by dbtool, delete it by hand)",
            p.display()
        )?;
    }
    Ok(0)
}
