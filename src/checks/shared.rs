//! Queries read by more than one check, declared once so the runner runs them once.

use std::collections::HashMap;

use super::{EvalContext, EvalError, RowContext};
use crate::query;
use crate::report::finding::{Finding, Severity};

query!(SETTINGS, "settings", Cluster, [0 => "settings.sql"]);
query!(ACTIVITY, "activity", Cluster, [0 => "activity.sql"]);
query!(DATABASES, "databases", Cluster, [0 => "databases.sql"]);
query!(TABLES, "tables", EachDatabase, [0 => "tables.sql"], snapshot_stats);
// Replication slots and the WAL each retains (replication judges them, wal sums them).
query!(SLOTS, "replication_slots", Cluster, [0 => "replication_slots.sql"]);

/// pg_settings as name → text.
pub fn settings(ctx: &EvalContext<'_>) -> Result<HashMap<String, String>, EvalError> {
    let mut out = HashMap::new();
    for row in ctx.rows(&SETTINGS) {
        let name = row.str("name").in_query(&SETTINGS)?;
        let value = row.str("setting").in_query(&SETTINGS)?;
        out.insert(name.to_string(), value.to_string());
    }
    Ok(out)
}

/// A numeric setting; None when the server does not have it (e.g. reserved_connections before 16).
pub fn setting_f64(settings: &HashMap<String, String>, name: &str) -> Option<f64> {
    settings.get(name).and_then(|v| v.parse().ok())
}

/// A numeric setting the check cannot do without: an error naming it, never a made-up 0.
pub fn required_setting_f64(settings: &HashMap<String, String>, name: &'static str) -> Result<f64, EvalError> {
    setting_f64(settings, name).ok_or(EvalError::Setting {
        query: SETTINGS.name,
        name,
    })
}

/// "db.schema.table", the object name findings use for tables.
pub fn table_object(db: &str, schema: &str, table: &str) -> String {
    format!("{db}.{schema}.{table}")
}

query!(ROLE, "role", Cluster, [0 => "role.sql"]);

/// Whether the connected role has `pg_read_all_stats` (part of pg_monitor); without it
/// pg_stat_activity shows other roles' sessions with their state, wait event and xmin
/// hidden. `Err` carries the UNKNOWN finding that names the grant, so a check never reports OK
/// over what it could not see. Absent rows (the query failed) are judged by the runner.
pub fn sees_all_sessions(ctx: &EvalContext<'_>, check: &str) -> Result<Option<Finding>, EvalError> {
    let Some(row) = ctx.rows(&ROLE).first() else {
        return Ok(None);
    };
    if row.bool("read_all_stats").in_query(&ROLE)? {
        return Ok(None);
    }
    let role = row.str("role_name").in_query(&ROLE)?;
    Ok(Some(Finding::new(
        Severity::Unknown,
        check.to_string(),
        format!("other roles' sessions are hidden from {role} (no pg_read_all_stats); grant pg_monitor to {role}"),
    )))
}
