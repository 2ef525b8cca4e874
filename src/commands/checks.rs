//! `dbtool checks`: the registry, printed — every check, its thresholds and metric families;
//! the configuration's custom checks after the built-in ones, marked custom.

use std::io::Write;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::checks::REGISTRY;
use crate::cli::ChecksArgs;
use crate::settings::Settings;

pub fn run(args: &ChecksArgs, settings: &Settings) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    let all = settings.all_checks();
    let custom = |name: &str| !REGISTRY.iter().any(|c| c.name() == name);
    if args.output.json() {
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name(),
                    "description": c.description(),
                    "target_kind": c.kind().as_str(),
                    "enabled_by_default": c.enabled_by_default(),
                    "custom": custom(c.name()),
                    "privilege": c.privilege(),
                    "thresholds": c.thresholds().iter().map(|t| serde_json::json!({"key": t.key, "default": t.default, "help": t.help})).collect::<Vec<_>>(),
                    "metrics": c.metrics().iter().map(|m| m.name).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = serde_json::json!({"schema": 1, "checks": list});
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(0);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["check", "description", "thresholds (defaults)", "metrics"]);
    for c in &all {
        let th: Vec<String> = c
            .thresholds()
            .iter()
            .map(|t| format!("{}={}", t.key, t.default))
            .collect();
        let m: Vec<&str> = c.metrics().iter().map(|m| m.name).collect();
        t.add_row(vec![
            if custom(c.name()) {
                format!("{} (custom)", c.name())
            } else {
                c.name().to_string()
            },
            c.description().to_string(),
            th.join("\n"),
            m.join("\n"),
        ]);
    }
    writeln!(out, "{t}").context("writing to stdout")?;
    Ok(0)
}
