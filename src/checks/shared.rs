//! Queries read by more than one check, declared once so the runner runs them once.

use std::collections::HashMap;

use super::{EvalContext, EvalError, RowContext};
use crate::query;

query!(SETTINGS, "settings", Cluster, [0 => "settings.sql"]);
query!(ACTIVITY, "activity", Cluster, [0 => "activity.sql"]);
query!(DATABASES, "databases", Cluster, [0 => "databases.sql"]);
query!(TABLES, "tables", EachDatabase, [0 => "tables.sql"], snapshot_stats);

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
