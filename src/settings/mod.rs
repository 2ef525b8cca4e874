//! Configuration, resolved once: defaults → TOML file → DBTOOL_* environment → flags.
//!
//! clap already merges environment and flags; this module lays them over the file and the
//! defaults, and validates the file against the check registry with line numbers.

pub mod cron;
pub mod schedule;

use crate::duration::HumanDuration;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::checks::{self, Thresholds};
use crate::report::Format;

/// The whole file. Sections of later commands live beside `health`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// statement_timeout of every dbtool session (default "5s").
    pub statement_timeout: Option<HumanDuration>,
    /// lock_timeout of every dbtool session (default "100ms").
    pub lock_timeout: Option<HumanDuration>,
    /// Databases to watch; `--dsn` on the command line replaces them.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub health: HealthConfig,
    /// `[backup]`: defaults of `dbtool backup`, `dbtool backups` and `dbtool restore`.
    #[serde(default)]
    pub backup: crate::jobs::backup::BackupOptions,
    #[serde(default)]
    pub pool_advise: PoolAdviseConfig,
    /// Per-check settings: `[checks.connections] warning = 80`, `enabled = false`.
    #[serde(default)]
    pub checks: BTreeMap<String, Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    /// Archive jobs, run by name with `dbtool archive --job NAME` or by the scheduler.
    #[serde(default)]
    pub archive: Vec<crate::jobs::archive::ArchiveJob>,
    /// The scheduler's own settings (`dbtool schedule`).
    #[serde(default)]
    pub schedule: crate::settings::schedule::ScheduleFileConfig,
    /// `[[jobs]]` for `dbtool schedule`; validated by `settings::schedule` (kind-specific keys).
    #[serde(default)]
    pub jobs: Vec<crate::settings::schedule::RawJob>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Label for metrics and reports (`target="main"`).
    pub name: String,
    /// URL or conninfo, as for `--dsn`.
    pub dsn: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Output format (default "table").
    pub format: Option<Format>,
    /// Offenders and per-table series per check (default 20).
    pub top: Option<usize>,
    /// Bound on the whole run (default "30s").
    pub timeout: Option<HumanDuration>,
    /// Databases the per-table checks look at (default: all that accept connections).
    pub databases: Option<Vec<String>>,
    /// Connections per target (default 3).
    pub max_connections: Option<usize>,
    /// Targets checked at once (default 8).
    pub concurrency: Option<usize>,
    /// Counter state file for deltas between runs (default: none).
    pub state: Option<PathBuf>,
}

/// `[pool_advise]`: what the host and application look like; flags override each key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolAdviseConfig {
    /// PgBouncer admin console DSN (default: none, advise from PostgreSQL alone).
    pub pgbouncer: Option<String>,
    /// Sampling window (default "30s").
    pub sample: Option<HumanDuration>,
    /// Output format (default "table").
    pub format: Option<crate::pool::render::PoolFormat>,
    /// CPU cores of the database host (default 4, reported as assumed).
    pub db_cores: Option<u32>,
    /// Database storage is SSD (default true, reported as assumed).
    pub ssd: Option<bool>,
    /// Application instances (default 1, reported as assumed).
    pub app_instances: Option<u32>,
    /// The application's max open connections per instance.
    pub app_max_open: Option<u32>,
    /// The application's max idle connections per instance.
    pub app_max_idle: Option<u32>,
    /// Expected peak as a multiple of the sampled load (default 1.0).
    pub peak_factor: Option<f64>,
    /// Spare capacity on top of the peak (default 1.25).
    pub headroom: Option<f64>,
}

/// A configuration problem, with the line it is on when there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |t| t.matches('\n').count() + 1)
}

/// A loaded file together with its text (for line numbers) and path.
#[derive(Debug, Default)]
pub struct Loaded {
    pub file: FileConfig,
    pub text: String,
    pub path: Option<PathBuf>,
}

impl Loaded {
    /// Reads and parses a file; `None` gives an empty configuration.
    pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        let Some(path) = path else {
            return Ok(Loaded::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |s| line_of(&text, s.start)),
            message: e.message().to_string(),
        })?;
        let loaded = Loaded {
            file,
            text,
            path: Some(path.to_path_buf()),
        };
        if let Some(first) = loaded.validate().into_iter().next() {
            return Err(first);
        }
        Ok(loaded)
    }

    fn at(&self, offset: usize, message: String) -> ConfigError {
        ConfigError::Parse {
            path: self.path.clone().unwrap_or_default(),
            line: line_of(&self.text, offset),
            message,
        }
    }

    /// Every semantic problem in the file (unknown checks and keys, wrong value types, targets).
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (name, section) in &self.file.checks {
            let Some(check) = checks::find(name) else {
                let known: Vec<&str> = checks::REGISTRY.iter().map(|c| c.name()).collect();
                errors.push(self.at(
                    section.span().start,
                    format!("[checks.{name}]: unknown check; known checks: {}", known.join(", ")),
                ));
                continue;
            };
            for (key, value) in section.get_ref() {
                let ok = match key.as_str() {
                    "enabled" => value.get_ref().is_bool(),
                    k if check.thresholds().iter().any(|t| t.key == k) => {
                        value.get_ref().as_float().is_some() || value.get_ref().as_integer().is_some()
                    }
                    _ => {
                        let keys: Vec<&str> = check.thresholds().iter().map(|t| t.key).collect();
                        errors.push(self.at(
                            value.span().start,
                            format!(
                                "[checks.{name}]: unknown key '{key}'; valid keys: enabled, {}",
                                keys.join(", ")
                            ),
                        ));
                        continue;
                    }
                };
                if !ok {
                    let want = if key == "enabled" { "true or false" } else { "a number" };
                    errors.push(self.at(value.span().start, format!("[checks.{name}] {key}: expected {want}")));
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for t in &self.file.targets {
            if !names.insert(t.name.as_str()) {
                errors.push(ConfigError::Invalid(format!(
                    "[[targets]] name '{}' is used twice; target names must be unique",
                    t.name
                )));
            }
        }
        let mut jobs = std::collections::HashSet::new();
        for job in &self.file.archive {
            if !jobs.insert(job.job_name()) {
                errors.push(ConfigError::Invalid(format!(
                    "[[archive]] name '{}' is used twice; job names must be unique",
                    job.job_name()
                )));
            }
            if let Err(e) = job.validate() {
                errors.push(ConfigError::Invalid(e.to_string()));
            }
        }
        errors.extend(crate::settings::schedule::validate(self));
        errors
    }

    /// `enabled` from `[checks.NAME]`, if set.
    pub fn check_enabled(&self, name: &str) -> Option<bool> {
        self.file
            .checks
            .get(name)?
            .get_ref()
            .get("enabled")?
            .get_ref()
            .as_bool()
    }

    /// Thresholds of a check: defaults, then the file's `[checks.NAME]` values.
    pub fn thresholds(&self, check: &dyn checks::Check) -> Thresholds {
        let mut t = Thresholds::defaults(check.thresholds());
        if let Some(section) = self.file.checks.get(check.name()) {
            for (key, v) in section.get_ref() {
                let n = v
                    .get_ref()
                    .as_float()
                    .or_else(|| v.get_ref().as_integer().map(|i| i as f64));
                if let (Some(n), true) = (n, t.0.contains_key(key)) {
                    t.0.insert(key.clone(), n);
                }
            }
        }
        t
    }
}

/// Applies one `--set CHECK.KEY=VALUE` to the resolved thresholds.
pub fn apply_set(all: &mut BTreeMap<&'static str, Thresholds>, set: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        ConfigError::Invalid(format!(
            "--set {set}: {why}; write CHECK.KEY=VALUE, e.g. connections.warning=80"
        ))
    };
    let (path, value) = set.split_once('=').ok_or_else(|| bad("no '='"))?;
    let (check, key) = path
        .trim()
        .split_once('.')
        .ok_or_else(|| bad("no '.' between check and key"))?;
    let value: f64 = value.trim().parse().map_err(|_| bad("the value is not a number"))?;
    let c = checks::find(check).ok_or_else(|| bad(&format!("unknown check '{check}' (see `dbtool checks`)")))?;
    let t = all
        .entry(c.name())
        .or_insert_with(|| Thresholds::defaults(c.thresholds()));
    if !t.0.contains_key(key) {
        let keys: Vec<&str> = c.thresholds().iter().map(|t| t.key).collect();
        return Err(bad(&format!(
            "check '{check}' has no threshold '{key}' (it has: {})",
            keys.join(", ")
        )));
    }
    t.0.insert(key.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Loaded::load(Some(&path))
    }

    #[test]
    fn unknown_keys_and_checks_are_errors_with_lines() {
        let err = parse("statement_timeout = \"5s\"\nbogus = 1\n")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(":2:") && e.contains("bogus")),
            "{err:?}"
        );
        let err = parse("\n[checks.conections]\nwarning = 80\n")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("unknown check") && e.contains("connections")),
            "{err:?}"
        );
        let err = parse("[checks.connections]\n\nwarnign = 80\n")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains(":3:") && e.contains("warnign")),
            "{err:?}"
        );
        let err = parse("[health]\ntimeout = \"soon\"\n").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains(":2:") && e.contains("not a duration")),
            "{err:?}"
        );
    }

    #[test]
    fn thresholds_layer_file_then_set() {
        let loaded = parse("[checks.connections]\nwarning = 50\n").ok();
        let loaded = loaded.as_ref().map(|l| l.thresholds(&checks::connections::Connections));
        assert_eq!(loaded.map(|t| t.get("warning")), Some(50.0));
        let mut all = BTreeMap::new();
        assert!(apply_set(&mut all, "connections.critical=95").is_ok());
        assert_eq!(all.get("connections").map(|t| t.get("critical")), Some(95.0));
        assert!(apply_set(&mut all, "connections.nope=1").is_err());
        assert!(apply_set(&mut all, "connections.warning=abc").is_err());
    }
}
