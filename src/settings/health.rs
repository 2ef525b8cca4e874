//! A health run's settings, resolved once: the `[health]` section and `[checks.NAME]`
//! thresholds under the flags (or a job's keys), the targets and the session limits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use super::{apply_set, Settings};
use crate::checks::options::HealthOptions;
use crate::checks::plan::Plan;
use crate::checks::{self, Thresholds};
use crate::cli::health::TierArgs;
use crate::cli::ConnArgs;
use crate::db::{Env, SessionSettings, Target};
use crate::report::Format;

/// Everything a health run needs, resolved once from defaults, file, environment and flags.
#[derive(Clone)]
pub struct HealthSettings {
    pub targets: Vec<Target>,
    pub plan: Plan,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub timeout: Duration,
    pub concurrency: usize,
    /// `--state`: counters of the previous run, for deltas.
    pub state: Option<PathBuf>,
    /// `--max-output`: the Nagios output's bound in bytes.
    pub max_output: usize,
}

/// The checks with their thresholds, the databases and the bounds: `options` is already laid
/// over the `[health]` section.
pub fn plan(options: &HealthOptions, settings: &Settings, session: SessionSettings) -> anyhow::Result<Plan> {
    for name in options.checks.iter().chain(&options.skip) {
        if settings.find_check(name).is_none() {
            bail!("unknown check '{name}'; known checks: {}", settings.check_names());
        }
    }
    for name in options.refresh.keys() {
        if settings.find_check(name).is_none() {
            bail!(
                "refresh: unknown check '{name}'; known checks: {}",
                settings.check_names()
            );
        }
    }
    let all = settings.all_checks();
    let mut thresholds: BTreeMap<&'static str, Thresholds> =
        all.iter().map(|c| (c.name(), settings.thresholds(*c))).collect();
    let sets = [options.set.clone(), shorthands(options, settings)?].concat();
    for s in &sets {
        apply_set(&mut thresholds, s, |n| settings.find_check(n))?;
    }
    if !sets.is_empty() {
        for c in &all {
            let Some(t) = thresholds.get(c.name()) else { continue };
            if let Some((key, why)) = checks::limits::order_problems(*c, t).into_iter().next() {
                let flag = if options.set.is_empty() {
                    "--warning/--critical"
                } else {
                    "--set"
                };
                bail!("{flag} {}.{key}: {why}", c.name());
            }
        }
    }
    let selected = all.iter().copied().filter(|c| {
        if !options.checks.is_empty() {
            return options.checks.iter().any(|n| n == c.name());
        }
        !options.skip.iter().any(|n| n == c.name())
            && settings.check_enabled(c.name()).unwrap_or(c.enabled_by_default())
    });
    Ok(Plan {
        checks: selected
            .map(|c| (c, thresholds.get(c.name()).cloned().unwrap_or_default()))
            .collect(),
        databases: options.databases.clone(),
        top_n: options.top.unwrap_or(HealthOptions::DEFAULT_TOP),
        query_texts: false,
        max_connections: options
            .max_connections
            .unwrap_or(HealthOptions::DEFAULT_MAX_CONNECTIONS)
            .max(1),
        session,
    })
}

/// A scheduled job's refresh intervals: each planned check's own default, or what `refresh`
/// says for it (names already checked by `plan`); the checks that run every time left out.
pub fn refresh(options: &HealthOptions, plan: &Plan) -> BTreeMap<&'static str, Duration> {
    plan.checks
        .iter()
        .map(|(c, _)| {
            let own = options.refresh.get(c.name()).map(|d| d.0);
            (c.name(), own.unwrap_or_else(|| c.default_refresh()))
        })
        .filter(|(_, d)| !d.is_zero())
        .collect()
}

/// `--warning`/`--critical` as the `--set` of the one selected check's main threshold.
fn shorthands(options: &HealthOptions, settings: &Settings) -> anyhow::Result<Vec<String>> {
    let given: Vec<(&str, f64)> = [("warning", options.warning), ("critical", options.critical)]
        .into_iter()
        .filter_map(|(flag, v)| v.map(|v| (flag, v)))
        .collect();
    let Some((flag, _)) = given.first() else {
        return Ok(Vec::new());
    };
    let [name] = options.checks.as_slice() else {
        bail!("--{flag} sets one check's main threshold; select exactly one with --check NAME, or use --set CHECK.KEY=VALUE");
    };
    let Some(check) = settings.find_check(name) else {
        bail!("unknown check '{name}'; known checks: {}", settings.check_names());
    };
    let Some(main) = check.main_threshold() else {
        let keys: Vec<&str> = check.thresholds().iter().map(|t| t.key).collect();
        bail!(
            "check '{name}' has no main threshold for --{flag}; use --set {name}.KEY=VALUE (keys: {})",
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        );
    };
    given
        .into_iter()
        .map(|(flag, v)| {
            let key = if flag == "warning" { main.warning } else { main.critical };
            match checks::limits::value_problem(check, key, v) {
                Some(why) => bail!("--{flag} {v} (the {name}.{key} threshold): {why}"),
                None => Ok(format!("{name}.{key}={v}")),
            }
        })
        .collect()
}

/// `dbtool health`: the flags over the file over the defaults.
pub fn resolve(
    flags: &HealthOptions,
    conn: &ConnArgs,
    tier: &TierArgs,
    settings: &Settings,
    env: &dyn Env,
) -> anyhow::Result<HealthSettings> {
    let o = flags.over(&settings.file.health);
    let session = super::targets::session(conn, settings, true);
    // [health] output is not a key: the section says nothing about where a run writes.
    let format = o.format.unwrap_or_else(|| default_format(flags.output.as_deref()));
    let mut plan = plan(&o, settings, session)?;
    plan.query_texts = matches!(format, Format::Table | Format::Json);
    Ok(HealthSettings {
        plan,
        targets: super::targets::resolve_tier(conn, tier, settings, env)?,
        format,
        output: flags.output.clone(),
        timeout: o.timeout.map_or(HealthOptions::DEFAULT_TIMEOUT, |d| d.0),
        concurrency: o.concurrency.unwrap_or(HealthOptions::DEFAULT_CONCURRENCY).max(1),
        state: o.state,
        max_output: o.max_output.unwrap_or(HealthOptions::DEFAULT_MAX_OUTPUT),
    })
}

/// Table, except for a `.prom` file: node_exporter's textfile collector reads only Prometheus text
/// there, and a table in it is a scrape error nobody sees until the alerts go quiet.
fn default_format(output: Option<&std::path::Path>) -> Format {
    match output.and_then(|p| p.extension()) {
        Some(ext) if ext == "prom" => Format::Prometheus,
        _ => Format::Table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prom_file_defaults_to_prometheus_text() {
        // Regression: `--output dbtool.prom` without --format wrote a table node_exporter rejects.
        assert_eq!(
            default_format(Some(std::path::Path::new("/var/lib/node/dbtool.prom"))),
            Format::Prometheus
        );
        assert_eq!(default_format(Some(std::path::Path::new("report.txt"))), Format::Table);
        assert_eq!(default_format(None), Format::Table);
    }
}
