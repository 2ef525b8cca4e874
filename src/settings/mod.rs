//! Settings, resolved once: defaults → TOML file → DBTOOL_* environment → flags.
//!
//! `Settings::load` reads and parses the file once and collects every problem in it (line
//! numbers included) in one `Errors`; `dbtool config check`, every command and the scheduler
//! (at start and on SIGHUP) call it. clap already merges environment and flags; `health.rs`,
//! `targets.rs` and the options types' `over` lay them over the file and the defaults.

pub mod cron;
mod custom;
mod fields;
pub mod file;
pub mod health;
pub mod jobs;
pub mod probe;
pub(crate) mod read;
pub mod schedule;
pub mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::checks::{self, Thresholds};
use file::FileConfig;
use schedule::Schedule;

/// A configuration problem, with the line it is on when there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// 1-based line and column (in characters) of a byte offset.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A problem at a byte offset of `text`, the file at `path`.
pub fn error_at(path: &Path, text: &str, offset: usize, message: String) -> ConfigError {
    let (line, column) = position(text, offset);
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        // One line per problem, whatever a parser's message looked like.
        message: message.replace('\n', "; "),
    }
}

/// Every problem found in a configuration file, one per line when displayed.
#[derive(Debug)]
pub struct Errors(pub Vec<ConfigError>);

impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Errors {}

impl From<ConfigError> for Errors {
    fn from(e: ConfigError) -> Self {
        Errors(vec![e])
    }
}

/// The file, its text (for line numbers) and path, and the scheduler's jobs resolved from it.
#[derive(Debug, Default)]
pub struct Settings {
    pub file: FileConfig,
    pub text: String,
    pub path: Option<PathBuf>,
    /// `[schedule]` and `[[jobs]]`, each job's options already laid over its section.
    pub schedule: Schedule,
    /// `[[custom_checks]]`, built.
    pub custom: checks::custom::Catalog,
}

impl Settings {
    /// Reads, parses and validates a file once; `None` gives the defaults. Every problem is
    /// collected, not only the first.
    pub fn load(path: Option<&Path>) -> Result<Settings, Errors> {
        let Some(path) = path else {
            return Ok(Settings::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(text, path)
    }

    /// Parses and validates the text of the file at `path`.
    pub fn parse(text: String, path: &Path) -> Result<Settings, Errors> {
        let (file, problems) = read::read(&text);
        let mut errors: Vec<ConfigError> = problems
            .into_iter()
            .map(|p| error_at(path, &text, p.offset, p.message))
            .collect();
        let mut settings = Settings {
            file,
            text,
            path: Some(path.to_path_buf()),
            schedule: Schedule::default(),
            custom: Default::default(),
        };
        // Before the rest: [checks.NAME] may name a custom check.
        match custom::resolve(&settings) {
            Ok(c) => settings.custom = c,
            Err(mut e) => errors.append(&mut e),
        }
        errors.append(&mut settings.validate());
        match schedule::resolve(&settings) {
            Ok(s) => settings.schedule = s,
            Err(mut e) => errors.append(&mut e),
        }
        // In the order of the file; problems without a position last.
        errors.sort_by_key(|e| match e {
            ConfigError::Parse { line, column, .. } => (*line, *column),
            _ => (usize::MAX, 0),
        });
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(Errors(errors))
        }
    }

    pub(crate) fn at(&self, offset: usize, message: String) -> ConfigError {
        error_at(
            self.path.as_deref().unwrap_or(Path::new("")),
            &self.text,
            offset,
            message,
        )
    }

    /// The semantic problems outside `[[jobs]]` (unknown checks and keys, wrong value types, targets).
    fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (name, section) in &self.file.checks {
            let Some(check) = self.find_check(name) else {
                errors.push(self.at(
                    section.span().start,
                    format!("[checks.{name}]: unknown check; known checks: {}", self.check_names()),
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
                } else if let Some(n) = number(value.get_ref()) {
                    if let Some(why) = checks::limits::value_problem(check, key, n) {
                        errors.push(self.at(value.span().start, format!("[checks.{name}] {key}: {why}")));
                    }
                }
            }
            for (key, why) in checks::limits::order_problems(check, &self.thresholds(check)) {
                let pos = section
                    .get_ref()
                    .get(&key)
                    .map_or(section.span().start, |v| v.span().start);
                errors.push(self.at(pos, format!("[checks.{name}] {key}: {why}")));
            }
        }
        if let Some(name) = self.file.health.refresh.keys().find(|n| self.find_check(n).is_none()) {
            let pos = read::table_key_offset(&self.text, "health", "refresh").unwrap_or(0);
            let known = self.check_names();
            errors.push(self.at(
                pos,
                format!("[health] refresh: unknown check '{name}'; known checks: {known}"),
            ));
        }
        let mut names = std::collections::HashSet::new();
        let name_at = read::key_offsets(&self.text, "targets", "name");
        let dsn_at = read::key_offsets(&self.text, "targets", "dsn");
        for (i, t) in self.file.targets.iter().enumerate() {
            if !names.insert(t.name.as_str()) {
                errors.push(self.at(
                    name_at.get(i).copied().unwrap_or(0),
                    format!(
                        "[[targets]] name: '{}' is used twice; give each target its own name",
                        t.name
                    ),
                ));
            }
            // The text alone, not the environment: the file must stand on its own.
            let no_env = crate::db::MapEnv(Default::default());
            if t.kind == crate::db::TargetKind::Redis {
                if let Err(e) = crate::db::redis::RedisConn::resolve(&t.dsn, &no_env) {
                    errors.push(self.at(
                        dsn_at.get(i).copied().unwrap_or(0),
                        format!("[[targets]] '{}' dsn: {e}", t.name),
                    ));
                }
            } else if let Err(e) = crate::db::ConnParams::resolve(Some(&t.dsn), &no_env) {
                errors.push(self.at(
                    dsn_at.get(i).copied().unwrap_or(0),
                    format!(
                        "[[targets]] '{}' dsn: {}; write a URL (postgresql://user@host:5432/db) or key=value pairs (host=db1 dbname=app)",
                        t.name,
                        e.to_string().replace("of --dsn", "of the dsn")
                    ),
                ));
            }
        }
        if let Err(e) = self.file.pool_advise.assumptions() {
            let at = read::table_key_offset(&self.text, "pool_advise", e.key).unwrap_or(0);
            errors.push(self.at(
                at,
                format!("[pool_advise] {}: {} is not accepted; {}", e.key, e.value, e.why),
            ));
        }
        let health = &self.file.health;
        for (key, v) in [
            ("top", health.top),
            ("max_connections", health.max_connections),
            ("concurrency", health.concurrency),
        ] {
            if v == Some(0) {
                let at = read::table_key_offset(&self.text, "health", key).unwrap_or(0);
                errors.push(self.at(
                    at,
                    format!("[health] {key}: 0 is not accepted; write a whole number from 1 up"),
                ));
            }
        }
        let mut jobs = std::collections::HashSet::new();
        let archive_at = read::key_offsets(&self.text, "archive", "name");
        for (i, job) in self.file.archive.iter().enumerate() {
            let at = archive_at.get(i).copied().unwrap_or(0);
            if !jobs.insert(job.job_name()) {
                errors.push(self.at(
                    at,
                    format!(
                        "[[archive]] name: '{}' is used twice; give each job its own name",
                        job.job_name()
                    ),
                ));
            }
            let checked = crate::jobs::archive::preset::expand(job).and_then(|j| j.validate());
            if let Err(e) = checked {
                errors.push(self.at(at, format!("[[archive]] {e}")));
            }
        }
        errors.extend(probe::validate(self));
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
                let n = number(v.get_ref());
                if let (Some(n), true) = (n, t.0.contains_key(key)) {
                    t.0.insert(key.clone(), n);
                }
            }
        }
        t
    }
}

/// A threshold as written: a float or an integer.
fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// Applies one `--set CHECK.KEY=VALUE` to the resolved thresholds.
pub fn apply_set(
    all: &mut BTreeMap<&'static str, Thresholds>,
    set: &str,
    find: impl Fn(&str) -> Option<&'static dyn checks::Check>,
) -> Result<(), ConfigError> {
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
    let c = find(check).ok_or_else(|| bad(&format!("unknown check '{check}' (see `dbtool checks`)")))?;
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
    if let Some(why) = checks::limits::value_problem(c, key, value) {
        return Err(ConfigError::Invalid(format!("--set {set}: {why}")));
    }
    t.0.insert(key.to_string(), value);
    Ok(())
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
