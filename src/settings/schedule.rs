//! `[[jobs]]` and `[schedule]` in the config file: typed, validated with line numbers and the
//! job's name. The common keys are read here; the rest of the table becomes the kind's options
//! type (`jobs.rs`), key by key first so that each problem has its line: serde's
//! `deny_unknown_fields` does not combine with `#[serde(flatten)]`.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use toml::{Spanned, Value};

use super::cron::{parse_tz, CronSchedule};
use super::file::RawJob;
use super::jobs::{self, JobOptions, Kind};
use super::{ConfigError, Settings};

/// Which targets a job runs against.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetSel {
    All,
    Named(String),
}

/// A validated job.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    pub kind: Kind,
    pub schedule: CronSchedule,
    pub target: TargetSel,
    pub output: Option<PathBuf>,
    pub timeout: Option<Duration>,
    /// After missed run times (daemon down, machine asleep): run once for the latest of them.
    pub catch_up: bool,
    /// The kind-specific keys as the command's options, laid over its section of the file.
    pub options: JobOptions,
}

/// The daemon's resolved settings.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub timezone: Tz,
    pub grace_period: Duration,
    pub metrics_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub history_keep: Duration,
    pub jobs: Vec<Job>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            timezone: chrono_tz::UTC,
            grace_period: DEFAULT_GRACE_PERIOD,
            metrics_file: None,
            listen: None,
            history_keep: DEFAULT_HISTORY_KEEP,
            jobs: Vec::new(),
        }
    }
}

const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(60);
const DEFAULT_HISTORY_KEEP: Duration = Duration::from_secs(30 * 86_400);

const COMMON_KEYS: &[&str] = &["name", "kind", "schedule", "target", "output", "timeout", "catch_up"];

/// Builds the settings, collecting every problem (with its line and job name) instead of the first.
pub fn resolve(loaded: &Settings) -> Result<Schedule, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let s = &loaded.file.schedule;
    let at = |offset: usize, message: String| loaded.at(offset, message);
    let timezone = match &s.timezone {
        None => chrono_tz::UTC,
        Some(tz) => parse_tz(tz.get_ref()).unwrap_or_else(|e| {
            errors.push(at(tz.span().start, format!("[schedule] timezone: {e}")));
            chrono_tz::UTC
        }),
    };
    let listen = s.listen.as_ref().and_then(|l| {
        l.get_ref()
            .parse()
            .map_err(|_| {
                errors.push(at(
                    l.span().start,
                    format!(
                        "[schedule] listen: '{}' is not an address; write e.g. 127.0.0.1:19187",
                        l.get_ref()
                    ),
                ))
            })
            .ok()
    });
    let targets: Vec<&str> = loaded.file.targets.iter().map(|t| t.name.as_str()).collect();
    let mut names = HashSet::new();
    let mut jobs = Vec::new();
    for raw in &loaded.file.jobs {
        match job(raw, &targets, &at, loaded) {
            Ok(job) => {
                if !names.insert(job.name.clone()) {
                    errors.push(at(
                        raw.span().start,
                        format!("job '{}': the name is used twice; job names must be unique", job.name),
                    ));
                }
                jobs.push(job);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Schedule {
        timezone,
        grace_period: s.grace_period.map_or(DEFAULT_GRACE_PERIOD, |d| d.0),
        metrics_file: s.metrics_file.clone(),
        listen,
        history_keep: s.history_keep.map_or(DEFAULT_HISTORY_KEEP, |d| d.0),
        jobs,
    })
}

/// Reads one `[[jobs]]` table, collecting every problem with its position.
struct Reader<'a> {
    table: &'a BTreeMap<String, Spanned<Value>>,
    start: usize,
    label: String,
    at: &'a dyn Fn(usize, String) -> ConfigError,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn err(&mut self, pos: usize, msg: String) {
        let e = (self.at)(pos, format!("{}: {msg}", self.label));
        self.errors.push(e);
    }

    /// A string value and its position; None (with an error if the type is wrong) otherwise.
    fn string(&mut self, key: &str) -> Option<(String, usize)> {
        let v = self.table.get(key)?;
        match v.get_ref().as_str() {
            Some(s) => Some((s.to_string(), v.span().start)),
            None => {
                self.err(v.span().start, format!("{key}: expected a string"));
                None
            }
        }
    }

    /// A required string key; `hint` completes the "missing key" message.
    fn required(&mut self, key: &str, hint: &str) -> Option<(String, usize)> {
        if !self.table.contains_key(key) {
            self.err(self.start, format!("missing key '{key}'{hint}"));
        }
        self.string(key)
    }

    fn target(&mut self, targets: &[&str]) -> Option<TargetSel> {
        match self.string("target") {
            Some((t, _)) if t == "*" => Some(TargetSel::All),
            Some((t, _)) if targets.contains(&t.as_str()) => Some(TargetSel::Named(t)),
            Some((t, pos)) => {
                let known = if targets.is_empty() {
                    "none are defined; add a [[targets]] section".to_string()
                } else {
                    targets.join(", ")
                };
                self.err(
                    pos,
                    format!("target '{t}' is not a [[targets]] name (known: {known}), nor \"*\""),
                );
                None
            }
            None if self.table.contains_key("target") => None,
            None if targets.is_empty() => {
                let msg = "missing key 'target', and there are no [[targets]] to run against".to_string();
                self.err(self.start, msg);
                None
            }
            None => Some(TargetSel::All),
        }
    }

    /// The kind-specific keys: known to the kind and of the right type, each checked alone.
    fn options(&mut self, kind: Kind, settings: &Settings) -> toml::Table {
        let mut options = toml::Table::new();
        let keys = kind.keys();
        let table = self.table;
        for (key, value) in table.iter().filter(|(k, _)| !COMMON_KEYS.contains(&k.as_str())) {
            let pos = value.span().start;
            if !keys.contains(&key.as_str()) {
                let mut valid: Vec<&str> = COMMON_KEYS.to_vec();
                valid.extend(keys.iter().filter(|k| !COMMON_KEYS.contains(k)));
                let msg = format!("unknown key '{key}'; a {} job takes {}", kind.name(), valid.join(", "));
                self.err(pos, msg);
                continue;
            }
            if let Err(e) = kind.check_key(key, value.get_ref()) {
                self.err(pos, format!("{key}: {e}"));
            } else if let (Kind::Health, "refresh", Some(named)) = (kind, key.as_str(), value.get_ref().as_table()) {
                // Check names here, where the key's line is known (custom checks included).
                if let Some(name) = named.keys().find(|n| settings.find_check(n).is_none()) {
                    let known = settings.check_names();
                    self.err(pos, format!("refresh: unknown check '{name}'; known checks: {known}"));
                }
            }
            options.insert(key.clone(), value.get_ref().clone());
        }
        options
    }
}

fn job(
    raw: &RawJob,
    targets: &[&str],
    at: &dyn Fn(usize, String) -> ConfigError,
    settings: &Settings,
) -> Result<Job, Vec<ConfigError>> {
    let table = raw.get_ref();
    let start = raw.span().start;
    let mut errors = Vec::new();
    let name = match table.get("name").map(|v| (v.get_ref().as_str(), v.span().start)) {
        Some((Some(n), _)) if !n.trim().is_empty() => n.to_string(),
        Some((_, pos)) => {
            errors.push(at(pos, "[[jobs]] name: expected a non-empty string".into()));
            String::from("?")
        }
        None => {
            errors.push(at(start, "[[jobs]]: missing key 'name'".into()));
            String::from("?")
        }
    };
    let label = format!("job '{name}'");
    let mut r = Reader {
        table,
        start,
        label,
        at,
        errors,
    };
    let kinds = format!("; one of {}", Kind::names().join(", "));
    let kind = r
        .required("kind", &kinds)
        .and_then(|(k, pos)| Kind::parse(&k).map_err(|e| r.err(pos, e)).ok());
    let schedule = r
        .required("schedule", ", e.g. schedule = \"*/5 * * * *\"")
        .and_then(|(s, pos)| {
            CronSchedule::parse(&s)
                .map_err(|e| r.err(pos, format!("schedule: {e}")))
                .ok()
        });
    let target = r.target(targets);
    if let (Some(k), Some(t)) = (kind, &target) {
        if let Some(e) = jobs::target_kind_error(k, t, settings) {
            let pos = table.get("target").map_or(start, |v| v.span().start);
            r.err(pos, e);
        }
    }
    let output = r.string("output").map(|(o, _)| PathBuf::from(o));
    let timeout = r.string("timeout").and_then(|(t, pos)| {
        crate::duration::parse_duration(&t)
            .map_err(|e| r.err(pos, format!("timeout: {e}")))
            .ok()
    });
    let catch_up = match table.get("catch_up").map(|v| (v.get_ref().as_bool(), v.span().start)) {
        None => true,
        Some((Some(b), _)) => b,
        Some((None, pos)) => {
            r.err(pos, "catch_up: expected true or false".into());
            true
        }
    };
    let table = kind.map(|k| r.options(k, settings)).unwrap_or_default();
    match (kind, schedule, target) {
        (Some(kind), Some(schedule), Some(target)) if r.errors.is_empty() => {
            let head = jobs::Head {
                name: &name,
                target: &target,
                timeout,
            };
            let options = jobs::options(kind, table, &head, settings)
                .map_err(|e| vec![at(start, format!("job '{name}': {e}"))])?;
            Ok(Job {
                name,
                kind,
                schedule,
                target,
                output,
                timeout,
                catch_up,
                options,
            })
        }
        _ => Err(r.errors),
    }
}
