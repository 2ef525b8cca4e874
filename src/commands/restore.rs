//! `dbtool restore`: a backup into a new or empty database, or `--check` through a scratch one.

use std::io::Write;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::cli::backup::RestoreArgs;
use crate::db::{ConnParams, ProcessEnv, Target};
use crate::jobs::backup::{manifest, restore};
use crate::report::printable::printable;
use crate::settings::Settings;
use crate::Failure;

use super::backup::{cancel_on_signal, failure};
use super::backups::{dest, identities};
use crate::settings::targets;

pub async fn run(a: &RestoreArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let dest = dest(&a.dest, loaded)?;
    let src = super::backups::source(&dest).await?;
    let m = manifest::find(src.dir(), a.id.as_deref(), a.database.as_deref()).map_err(|e| failure(&e))?;
    let server = match &a.to {
        Some(dsn) => ConnParams::resolve(Some(dsn), &ProcessEnv).context("--to")?,
        None => targets::resolve(&a.conn, loaded, &ProcessEnv)?
            .into_iter()
            .next()
            .map(Target::into_postgres_params)
            .context("no server to restore on: pass --to DSN")??,
    };
    let settings = targets::session(&a.conn, loaded, false);
    let extra = restore::PgRestoreArgs {
        jobs: a.jobs,
        no_owner: a.no_owner,
        identities: identities(&a.identity)?,
    };
    let cancel = cancel_on_signal();
    let mut out = std::io::stdout().lock();
    if !a.check {
        // From object storage: streamed, every object checked before the target is touched.
        src.restore(&m, &server, server.dbname(), &settings, &extra, &cancel)
            .await
            .map_err(|e| failure(&e))?;
        if a.output.json() {
            let v = serde_json::json!({
                "schema": 1, "id": m.id, "database": server.dbname(), "server": server.redacted().to_string(),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        } else {
            writeln!(
                out,
                "restored {} into database {} ({})",
                m.id,
                server.dbname(),
                server.redacted()
            )?;
        }
        return Ok(0);
    }
    // --check restores through a scratch database from a checked local copy (`pin`).
    src.fetch(&m).await.map_err(|e| failure(&e))?;
    let report = restore::check(src.dir(), &m, &server, &settings, &extra, &cancel)
        .await
        .map_err(|e| failure(&e))?;
    let tables = &report.tables;
    if a.output.json() {
        let v = serde_json::json!({
            "schema": 1, "id": m.id, "ok": !report.failed(), "tables": tables,
            "objects_compared": report.objects_compared, "missing_objects": report.missing_objects,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(["table", "estimated rows", "restored rows", "verdict"]);
        for c in tables {
            let restored = c.restored.map_or_else(|| "-".to_string(), |n| n.to_string());
            t.add_row([
                // A table name is anyone's to choose: escaped for the terminal.
                printable(&c.table).into_owned(),
                c.estimated.map_or_else(|| "unknown".to_string(), |n| n.to_string()),
                restored,
                c.verdict.to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
        for o in &report.missing_objects {
            writeln!(out, "missing after restore: {} {}", o.kind, printable(&o.name))?;
        }
    }
    if report.failed() {
        let lost: Vec<String> = (report.missing_objects.iter().take(5))
            .map(|o| format!("{} {}", o.kind, printable(&o.name)))
            .collect();
        let message = if lost.is_empty() {
            format!("restore check of {} failed: a table is missing or restored empty", m.id)
        } else {
            format!(
                "restore check of {} failed: {} object(s) of the backup missing after the restore: {}{}",
                m.id,
                report.missing_objects.len(),
                lost.join(", "),
                if report.missing_objects.len() > lost.len() {
                    ", …"
                } else {
                    ""
                }
            )
        };
        return Err(Failure { code: 2, message }.into());
    }
    if !a.output.json() {
        let (objects, note) = match report.objects_compared {
            Some(n) => (format!(" and {n} objects"), ""),
            None => (String::new(), " (objects not compared: the manifest predates them)"),
        };
        writeln!(
            out,
            "restore check of {} passed: {} tables{objects} restored into a scratch database, which was dropped{note}",
            m.id,
            tables.len()
        )?;
    }
    Ok(0)
}
