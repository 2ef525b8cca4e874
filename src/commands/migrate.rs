//! `dbtool migrate [--status]` and `dbtool history`: dbtool's own schema on each target.

use std::io::Write;

use anyhow::Context;
use comfy_table::Table;

use crate::cli::history::{HistoryArgs, MigrateArgs};
use crate::db::{self, job_runs, migrate, ProcessEnv};
use crate::report::printable::printable;
use crate::settings::Settings;
use crate::Failure;

use crate::settings::targets;

pub async fn run(args: &MigrateArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let settings = targets::session(&args.conn, loaded, false);
    let json = args.output.json();
    let mut code = 0;
    // With --format json: one entry per target, printed once all are done.
    let mut doc = Vec::new();
    // Locked stdout, errors returned: a closed pipe ends the command quietly in main.
    let mut out = std::io::stdout().lock();
    for t in targets::resolve(&args.conn, loaded, &ProcessEnv)? {
        let mut client = db::connect(t.postgres_params()?, &settings).await?;
        if args.status {
            let st = migrate::status(&client).await?;
            if json {
                doc.push(serde_json::json!({"target": t.name, "migrations": st}));
            }
            for s in st.iter().filter(|_| !json) {
                writeln!(
                    out,
                    "{}\tV{}__{}\t{}\t{}",
                    printable(&t.name),
                    s.version,
                    printable(&s.name),
                    s.state,
                    printable(s.applied_at.as_deref().unwrap_or("-"))
                )?;
            }
            if st.iter().any(|s| s.state == "modified") {
                code = 2;
            } else if st.iter().any(|s| s.state == "pending") {
                code = code.max(1);
            }
            continue;
        }
        let done = migrate::apply(&mut client).await.map_err(|e| Failure {
            code: 2,
            message: format!("{}: {e}", t.name),
        })?;
        if json {
            doc.push(serde_json::json!({"target": t.name, "applied": done}));
        } else if done.is_empty() {
            writeln!(out, "{}: dbtool schema up to date", printable(&t.name))?;
        } else {
            let names: Vec<String> = done.iter().map(|v| format!("V{v}")).collect();
            writeln!(out, "{}: applied {}", printable(&t.name), names.join(", "))?;
        }
    }
    if json {
        let v = serde_json::json!({"schema": 1, "targets": doc});
        writeln!(out, "{}", crate::report::json_text::to_string(&v)?)?;
    }
    Ok(code)
}

pub async fn history(args: &HistoryArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let settings = targets::session(&args.conn, loaded, true);
    let mut all = Vec::new();
    for t in targets::resolve(&args.conn, loaded, &ProcessEnv)? {
        let client = db::connect(t.postgres_params()?, &settings).await?;
        migrate::require_current(&client)
            .await
            .with_context(|| t.name.clone())?;
        let runs = job_runs::recent(&client, args.job.as_deref(), args.limit.max(0))
            .await
            .with_context(|| format!("{}: reading dbtool.job_runs", t.name))?;
        all.extend(runs.into_iter().map(|r| (t.name.clone(), r)));
    }
    let mut out = std::io::stdout().lock();
    match args.output.json() {
        true => {
            let items: Vec<serde_json::Value> = all
                .iter()
                .map(|(target_name, r)| serde_json::json!({"target_name": target_name, "run": r}))
                .collect();
            let json = crate::report::json_text::to_string(&serde_json::json!({"schema": 1, "runs": items}))?;
            writeln!(out, "{json}")?;
        }
        false => {
            let mut table = Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(vec![
                "ID", "JOB", "KIND", "STARTED", "DURATION", "STATUS", "ROWS", "MESSAGE",
            ]);
            for (_, r) in &all {
                let duration = r.finished_at.map_or("-".into(), |f| {
                    let ms = (f - r.started_at).num_milliseconds();
                    format!("{:.1}s", ms as f64 / 1000.0)
                });
                // Job names and messages (server errors quoting names) are escaped for the terminal.
                table.add_row(vec![
                    r.id.to_string(),
                    printable(&r.job).into_owned(),
                    printable(&r.kind).into_owned(),
                    r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    duration,
                    printable(&r.status).into_owned(),
                    r.rows.map_or("-".into(), |n| n.to_string()),
                    printable(r.message.as_deref().unwrap_or_default()).into_owned(),
                ]);
            }
            writeln!(out, "{table}")?;
        }
    }
    Ok(0)
}
