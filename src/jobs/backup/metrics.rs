//! Backup metrics for the textfile collector. The last success comes from the verified
//! manifests in the destination, so a failure can never erase it; the failure counter and the
//! last attempt live in a small state file beside the backups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::report::finding::{MetricFamily, MetricKind, Sample};

use super::error::BackupError;
use super::manifest::Manifest;

pub static LAST_SUCCESS: MetricFamily = MetricFamily {
    name: "dbtool_backup_last_success_timestamp_seconds",
    help: "End time of the newest verified backup of the database (0: none yet).",
    kind: MetricKind::Gauge,
};
pub static LAST_DURATION: MetricFamily = MetricFamily {
    name: "dbtool_backup_last_duration_seconds",
    help: "Wall time of the last backup attempt, successful or not.",
    kind: MetricKind::Gauge,
};
pub static LAST_SIZE: MetricFamily = MetricFamily {
    name: "dbtool_backup_last_size_bytes",
    help: "Size of the newest verified backup, every file included.",
    kind: MetricKind::Gauge,
};
pub static LAST_STATUS: MetricFamily = MetricFamily {
    name: "dbtool_backup_last_status",
    help: "1 when the last backup attempt succeeded and verified, 0 when it failed.",
    kind: MetricKind::Gauge,
};
pub static AGE: MetricFamily = MetricFamily {
    name: "dbtool_backup_age_seconds",
    help: "Seconds between the newest verified backup's end and the time this file was written.",
    kind: MetricKind::Gauge,
};
/// Was `dbtool_backups_count`: a gauge must not end in `_count` (promtool's lint; Prometheus
/// reserves the suffix for histogram and summary series).
pub static COUNT: MetricFamily = MetricFamily {
    name: "dbtool_backups_verified",
    help: "Verified backups of the database in the destination, now.",
    kind: MetricKind::Gauge,
};
pub static FAILURES: MetricFamily = MetricFamily {
    name: "dbtool_backup_failures_total",
    help: "Failed backup attempts of the database recorded in this destination.",
    kind: MetricKind::Counter,
};
/// A 0/1 gauge rather than a recipient label: keys rotate, series should not multiply.
pub static ENCRYPTED: MetricFamily = MetricFamily {
    name: "dbtool_backup_last_encrypted",
    help: "1 when the newest verified backup of the database is encrypted (age), else 0.",
    kind: MetricKind::Gauge,
};

pub static UPLOAD_DURATION: MetricFamily = MetricFamily {
    name: "dbtool_backup_last_upload_duration_seconds",
    help: "Wall time of the last successful upload of the database's backup to object storage.",
    kind: MetricKind::Gauge,
};
pub static UPLOAD_SIZE: MetricFamily = MetricFamily {
    name: "dbtool_backup_last_upload_bytes",
    help: "Bytes of the last successful upload of the database's backup to object storage.",
    kind: MetricKind::Gauge,
};

pub static FAMILIES: &[&MetricFamily] = &[
    &LAST_SUCCESS,
    &LAST_DURATION,
    &LAST_SIZE,
    &LAST_STATUS,
    &AGE,
    &COUNT,
    &FAILURES,
    &ENCRYPTED,
    &UPLOAD_DURATION,
    &UPLOAD_SIZE,
];

pub const STATE_FILE: &str = ".dbtool-backup-state.json";

/// The last attempt of one database.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DbState {
    pub failures_total: u64,
    pub last_ok: bool,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_duration_seconds: f64,
    pub last_error: Option<String>,
    /// The last successful upload to object storage (`--copy-to`, `--dest s3://…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_upload_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_upload_bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub databases: BTreeMap<String, DbState>,
    /// Undelivered notifications of the runs into this destination, by endpoint
    /// (scheme://host), so the textfile's counter survives from one cron run to the next.
    #[serde(default)]
    pub notify_failures_total: BTreeMap<String, u64>,
}

fn state_path(dest: &Path) -> PathBuf {
    dest.join(STATE_FILE)
}

/// The state file, or an empty state when there is none (or it is unreadable, logged: losing
/// a counter is better than failing the backup over bookkeeping). For `--dest s3://…`, `dest`
/// is the run's private directory, holding a copy of the state object (`remote/state.rs`).
pub fn load_state(dest: &Path) -> State {
    let path = state_path(dest);
    let read = match crate::report::atomic::existing_file(&path) {
        Ok(None) => return State::default(),
        Ok(Some(p)) => std::fs::read_to_string(p).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match read.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())) {
        Ok(state) => state,
        Err(e) => {
            tracing::info!(path = %path.display(), error = %e, "the backup state is not readable; the counters start at 0");
            State::default()
        }
    }
}

/// Records an attempt (read-modify-write under the caller's per-database lock) and returns
/// the updated state, also when it cannot be saved (a read-only or full destination): the
/// metrics of this run must show the failure even then.
pub fn record(dest: &Path, database: &str, at: DateTime<Utc>, seconds: f64, error: Option<String>) -> State {
    let mut state = load_state(dest);
    let db = state.databases.entry(database.to_string()).or_default();
    db.last_ok = error.is_none();
    db.failures_total += u64::from(error.is_some());
    db.last_attempt_at = Some(at);
    db.last_duration_seconds = seconds;
    db.last_error = error;
    save(dest, state)
}

/// Records a successful upload of the database's backup.
pub fn record_upload(dest: &Path, database: &str, seconds: f64, bytes: u64) -> State {
    let mut state = load_state(dest);
    let db = state.databases.entry(database.to_string()).or_default();
    db.last_upload_seconds = Some(seconds);
    db.last_upload_bytes = Some(bytes);
    save(dest, state)
}

/// Counts notifications that could not be delivered, by endpoint.
pub fn record_notify_failures(dest: &Path, endpoints: &[String]) -> State {
    let mut state = load_state(dest);
    for e in endpoints {
        *state.notify_failures_total.entry(e.clone()).or_default() += 1;
    }
    save(dest, state)
}

fn save(dest: &Path, state: State) -> State {
    let saved = serde_json::to_vec_pretty(&state)
        .map_err(std::io::Error::other)
        .and_then(|text| crate::report::atomic::write_private(&state_path(dest), &text).map_err(|e| e.source));
    if let Err(e) = saved {
        // info, not warn: the run's one-line error already names the unwritable destination.
        tracing::info!(path = %state_path(dest).display(), error = %e, "could not save the backup state; the failure counter may undercount");
    }
    state
}

/// Every family for every database that has backups or a recorded attempt.
pub fn samples(state: &State, backups: &[Manifest], now: DateTime<Utc>) -> Vec<Sample> {
    let mut names: Vec<&str> = state.databases.keys().map(String::as_str).collect();
    names.extend(backups.iter().map(|m| m.database.as_str()));
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for db in names {
        let mine: Vec<&Manifest> = backups.iter().filter(|m| m.database == db).collect();
        let newest = mine.iter().max_by_key(|m| m.finished_at);
        let st = state.databases.get(db);
        let s = |f: &'static MetricFamily, v: f64| Sample::new(f, v).label("database", db);
        out.push(s(&LAST_SUCCESS, newest.map_or(0.0, |m| epoch(m.finished_at))));
        if let Some(m) = newest {
            out.push(s(&LAST_SIZE, m.bytes as f64));
            out.push(s(&AGE, (epoch(now) - epoch(m.finished_at)).max(0.0)));
            out.push(s(&ENCRYPTED, if m.encryption.is_some() { 1.0 } else { 0.0 }));
        }
        // A database with backups but no state file entry: its last attempt is its newest backup.
        let (ok, duration) = match (st, newest) {
            (Some(st), _) => (st.last_ok, st.last_duration_seconds),
            (None, Some(m)) => (true, m.duration_seconds),
            (None, None) => (false, 0.0),
        };
        out.push(s(&LAST_DURATION, duration));
        out.push(s(&LAST_STATUS, if ok { 1.0 } else { 0.0 }));
        out.push(s(&COUNT, mine.len() as f64));
        out.push(s(&FAILURES, st.map_or(0, |s| s.failures_total) as f64));
        if let Some(st) = st {
            if let (Some(secs), Some(bytes)) = (st.last_upload_seconds, st.last_upload_bytes) {
                out.push(s(&UPLOAD_DURATION, secs));
                out.push(s(&UPLOAD_SIZE, bytes as f64));
            }
        }
    }
    out.extend(crate::notify::send::samples(&state.notify_failures_total));
    out
}

fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Renders the samples with the target label and writes them atomically.
pub fn write_file(path: &Path, target: &str, samples: &[Sample]) -> Result<(), BackupError> {
    let mut exp = crate::report::prometheus::Exposition::default();
    for s in samples {
        exp.push_sample(target, s);
    }
    let mut buf = Vec::new();
    exp.write(&mut buf)
        .map_err(BackupError::io("render metrics for", path))?;
    crate::report::atomic::write(path, &buf).map_err(|e| BackupError::Io {
        action: "write",
        path: e.path,
        source: e.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_garbled_state_is_an_empty_one_and_recording_replaces_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load_state(dir.path()).databases.is_empty());
        std::fs::write(dir.path().join(STATE_FILE), "{not json").expect("write");
        assert!(load_state(dir.path()).databases.is_empty());
        let at = Utc::now();
        record(dir.path(), "app", at, 1.0, Some("refused".into()));
        let state = record(dir.path(), "app", at, 1.0, Some("refused".into()));
        assert_eq!(state.databases["app"].failures_total, 2);
        assert_eq!(load_state(dir.path()).databases["app"].failures_total, 2);
    }
}
