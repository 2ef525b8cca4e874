//! `--state FILE`: the counters of the previous run, per target, so table/JSON/Nagios runs
//! can report what happened *since then* (a lifetime deadlock count says nothing about now).
//!
//! Applied after evaluation, to the whole report, never inside a check: every counter
//! sample gets its delta, and a few counters have a rule (deadlocks increasing → WARNING).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::human_secs;

use crate::report::finding::{Finding, MetricKind, Sample, Severity};
use crate::report::{atomic, Report};

/// Version of the state file; a file of another version is ignored (and replaced).
const STATE_SCHEMA: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub schema: u32,
    pub targets: BTreeMap<String, TargetState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetState {
    pub taken_at: DateTime<Utc>,
    /// `family{label="value",...}` → value.
    pub counters: BTreeMap<String, f64>,
    /// Configured server settings, name → value (secrets as fingerprints); absent in files
    /// written before dbtool kept them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    // `error`, not `source`: the message carries it already, and a source would print twice.
    #[error("cannot read state file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("state file {path} is not a dbtool state file ({source}); delete it, the next run writes a new one")]
    Parse { path: String, source: serde_json::Error },
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
}

/// A counter whose increase since the previous run is itself a finding.
struct Rule {
    family: &'static str,
    severity: Severity,
    what: &'static str,
    /// The object of the check's own finding about the counter's total since the server
    /// started: once a previous run is known, the increase since then replaces it, at that
    /// finding's severity (so a threshold that turned it off keeps it off).
    replaces: Option<&'static str>,
}

const RULES: &[Rule] = &[
    Rule {
        family: "dbtool_database_deadlocks_total",
        severity: Severity::Warning,
        what: "deadlock(s)",
        replaces: None,
    },
    Rule {
        family: "dbtool_archiver_failed_total",
        severity: Severity::Warning,
        what: "failed WAL archive attempt(s)",
        replaces: None,
    },
    Rule {
        family: "dbtool_database_conflicts_total",
        severity: Severity::Ok,
        what: "query cancellation(s) by recovery conflicts",
        replaces: None,
    },
    Rule {
        family: "dbtool_database_xact_rollback_total",
        severity: Severity::Ok,
        what: "rollback(s)",
        replaces: None,
    },
    Rule {
        family: "dbtool_database_temp_bytes_total",
        severity: Severity::Ok,
        what: "bytes written to temporary files",
        replaces: None,
    },
    Rule {
        family: "dbtool_redis_rejected_connections_total",
        severity: Severity::Critical,
        what: "connection(s) rejected at maxclients",
        replaces: Some(super::redis_clients::REJECTED_SINCE_START),
    },
];

fn key(s: &Sample) -> String {
    let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    labels.sort();
    format!("{}{{{}}}", s.family.name, labels.join(","))
}

/// Reads the previous state; a missing file is a first run.
pub fn load(path: &Path) -> Result<State, StateError> {
    let read_err = |error| StateError::Read {
        path: path.display().to_string(),
        error,
    };
    // Only a regular file holds a previous state: /dev/null or a FIFO means "remember nothing"
    // (reading them would return nothing, or block).
    let file = match atomic::existing_file(path).map_err(read_err)? {
        Some(file) => file,
        None => return Ok(State::default()),
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(source) => return Err(read_err(source)),
    };
    let state: State = serde_json::from_str(&text).map_err(|source| StateError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    Ok(if state.schema == STATE_SCHEMA {
        state
    } else {
        State::default()
    })
}

/// Adds deltas and rule findings to the report; returns the state to save for next time.
pub fn apply(report: &mut Report, previous: &State) -> State {
    let mut next = State {
        schema: STATE_SCHEMA,
        targets: previous.targets.clone(),
    };
    for t in report.targets.iter_mut().filter(|t| t.up && !t.checks.is_empty()) {
        let before = previous.targets.get(&t.name);
        let mut counters = BTreeMap::new();
        let mut settings = BTreeMap::new();
        let ago = before.map_or(0.0, |b| {
            (report.generated_at - b.taken_at).num_milliseconds() as f64 / 1000.0
        });
        for c in &mut t.checks {
            if !c.settings.is_empty() {
                super::state_settings::compare(c, before.map(|b| &b.settings), ago);
                settings.append(&mut c.settings.clone());
            }
            let mut found = Vec::new();
            let mut replaced = false;
            for s in c.samples.iter_mut().filter(|s| s.family.kind == MetricKind::Counter) {
                let k = key(s);
                counters.insert(k.clone(), s.value);
                let Some((old, prev)) = before.and_then(|b| b.counters.get(&k).map(|v| (*v, b))) else {
                    continue;
                };
                // A counter that went down was reset (pg_stat_reset, crash): count from zero.
                let delta = if s.value >= old { s.value - old } else { s.value };
                s.delta = Some(delta);
                let Some(rule) = RULES.iter().find(|r| r.family == s.family.name) else {
                    continue;
                };
                let mut severity = Some(rule.severity);
                if let Some(object) = rule.replaces {
                    severity = c.findings.iter().find(|f| f.object == object).map(|f| f.severity);
                    c.findings.retain(|f| f.object != object);
                    replaced = true;
                }
                if let Some(severity) = severity.filter(|_| delta > 0.0) {
                    let mut f = finding(rule, s, delta, prev.taken_at, report.generated_at);
                    f.severity = severity;
                    if f.object.is_empty() {
                        f.object = rule.family.to_string();
                    }
                    found.push(f);
                }
            }
            c.findings.extend(found);
            let base = if replaced { Severity::Ok } else { c.status };
            c.status = c.findings.iter().fold(base, |w, f| w.worst(f.severity));
        }
        next.targets.insert(
            t.name.clone(),
            TargetState {
                taken_at: report.generated_at,
                counters,
                // A run without the check that reads them keeps the previous run's.
                settings: if settings.is_empty() {
                    before.map(|b| b.settings.clone()).unwrap_or_default()
                } else {
                    settings
                },
            },
        );
        if let Some(b) = before {
            t.previous_run = Some(b.taken_at);
        }
    }
    next
}

fn finding(rule: &Rule, s: &Sample, delta: f64, then: DateTime<Utc>, now: DateTime<Utc>) -> Finding {
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let ago = (now - then).num_milliseconds() as f64 / 1000.0;
    Finding::new(
        rule.severity,
        labels.join(", "),
        format!(
            "{delta} new {} since the previous run {} ago",
            rule.what,
            human_secs(ago)
        ),
    )
    .with_value(delta)
}

/// Writes the state atomically: a run killed half-way leaves the previous state intact.
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    let json = serde_json::to_vec_pretty(state).map_err(|source| StateError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    Ok(atomic::write_private(path, &json)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::database_activity::{COMMITS, DEADLOCKS};
    use crate::report::{CheckReport, TargetReport};
    use std::time::Duration;

    fn report(deadlocks: f64, commits: f64, at: DateTime<Utc>) -> Report {
        let check = CheckReport {
            name: "database_activity",
            status: Severity::Ok,
            summary: String::new(),
            threshold: String::new(),
            duration: Duration::ZERO,
            findings: vec![],
            limits: None,
            settings: Default::default(),
            freshness: None,
            samples: vec![
                Sample::new(&DEADLOCKS, deadlocks).label("database", "app"),
                Sample::new(&COMMITS, commits).label("database", "app"),
            ],
        };
        let mut t = TargetReport::down("main".into(), String::new(), Duration::ZERO);
        t.up = true;
        t.error = None;
        t.checks = vec![check];
        Report {
            generated_at: at,
            duration: Duration::ZERO,
            targets: vec![t],
        }
    }

    #[test]
    fn first_run_has_no_deltas_second_run_warns_on_new_deadlocks() {
        let t0 = Utc::now();
        let mut first = report(2.0, 100.0, t0);
        let state = apply(&mut first, &State::default());
        assert_eq!(first.status(), Severity::Ok);
        assert!(first.targets[0].checks[0].samples.iter().all(|s| s.delta.is_none()));

        let mut second = report(5.0, 90.0, t0 + chrono::Duration::seconds(300));
        let next = apply(&mut second, &state);
        let c = &second.targets[0].checks[0];
        assert_eq!(c.status, Severity::Warning);
        assert!(c.findings[0]
            .message
            .starts_with("3 new deadlock(s) since the previous run 5m00s ago"));
        assert_eq!(c.samples[0].delta, Some(3.0));
        // Commits went down: a reset, counted from zero.
        assert_eq!(c.samples[1].delta, Some(90.0));
        assert_eq!(second.targets[0].previous_run, Some(t0));
        assert_eq!(next.targets["main"].counters.len(), 2);
    }

    #[test]
    fn unreachable_target_keeps_its_previous_state() {
        let t0 = Utc::now();
        let mut first = report(1.0, 1.0, t0);
        let state = apply(&mut first, &State::default());
        // Counters and a time unlike the first run's: had the down report been taken in, the
        // saved state would differ from the first one, and deadlocks would have a delta.
        let mut down = report(7.0, 50.0, t0 + chrono::Duration::seconds(60));
        down.targets[0].up = false;
        let next = apply(&mut down, &state);
        assert_eq!(next.targets["main"], state.targets["main"]);
        assert_eq!(
            next.targets["main"].counters.values().copied().collect::<Vec<_>>(),
            [1.0, 1.0]
        );
        let c = &down.targets[0].checks[0];
        assert!(c.samples.iter().all(|s| s.delta.is_none()), "{:?}", c.samples);
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        // Nor does a down report without any checks (the usual shape) forget the target.
        let mut empty = report(0.0, 0.0, t0 + chrono::Duration::seconds(120));
        empty.targets[0].up = false;
        empty.targets[0].checks.clear();
        assert_eq!(apply(&mut empty, &state).targets["main"], state.targets["main"]);
    }

    #[test]
    fn load_missing_is_empty_and_garbage_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("dbtool-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        assert_eq!(load(&dir.join("none.json")).ok(), Some(State::default()));
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "not json").ok();
        let err = load(&bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("delete it"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
