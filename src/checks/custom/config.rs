//! `[[custom_checks]]` as written, and what makes one valid: each problem is (key, message),
//! placed at its line by the settings.

use serde::Deserialize;

use super::Parts;
use crate::checks::Scope;
use crate::report::finding::MetricKind;

/// One `[[custom_checks]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomCheckConfig {
    /// The check's name, `[a-z_][a-z0-9_]*`, not a built-in check's; the metric is
    /// `dbtool_custom_<name>`.
    pub name: String,
    /// The metric's HELP and the check's description in `dbtool checks`.
    #[serde(default)]
    pub help: String,
    /// One SELECT (or WITH … SELECT, VALUES) returning a number in a column named `value`.
    pub sql: String,
    /// A value at which the check warns (0, the default: never).
    #[serde(default)]
    pub warning: f64,
    /// A value at which the check is critical (0, the default: never).
    #[serde(default)]
    pub critical: f64,
    /// "above" (default): a value at or above a threshold alerts; "below": a value under it.
    #[serde(default)]
    pub direction: Direction,
    /// Run in these databases [default: the target's own database].
    #[serde(default)]
    pub databases: Vec<String>,
    /// Run in every database the health run visits (narrowed by `--database`) [default: false].
    #[serde(default)]
    pub per_database: bool,
    /// Columns whose text becomes a label of the series (at most 100 label sets per check).
    #[serde(default)]
    pub labels: Vec<String>,
    /// The metric's type: "gauge" (default) or "counter".
    #[serde(default, rename = "type")]
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Above,
    Below,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Gauge,
    Counter,
}

/// Labels every custom series already carries.
const RESERVED_LABELS: &[&str] = &["target", "database", "check"];

/// Whether `s` is `[a-z_][a-z0-9_]*`: a check name, a metric name's tail, a label and a
/// column name PostgreSQL folds to itself.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_lowercase())
        && chars.all(|c| c == '_' || c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The first word of a query, past blanks and comments, lowercased ("" when there is none).
pub fn first_word(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let word: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if word.is_empty() && rest.starts_with('(') {
        return "(".into();
    }
    word.to_ascii_lowercase()
}

impl CustomCheckConfig {
    /// Every problem of this table, as (key, message); `builtin` tells a built-in check's name.
    pub fn problems(&self, builtin: &dyn Fn(&str) -> bool) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if !is_identifier(&self.name) {
            p.push(("name", format!("'{}' is not a valid name; use lowercase letters, digits and _, starting with a letter or _ (e.g. orders_backlog)", self.name.escape_debug())));
        } else if builtin(&self.name) {
            p.push((
                "name",
                format!(
                    "'{}' is a built-in check's name; choose another (see `dbtool checks`)",
                    self.name
                ),
            ));
        }
        if let Some(suffix) = ["_total", "_count", "_sum", "_bucket"]
            .into_iter()
            .find(|x| self.kind == Kind::Gauge && self.name.ends_with(x))
        {
            p.push(("name", format!("'{}' ends in {suffix}, which Prometheus keeps for counters, histograms and summaries; choose another name for a gauge (or type = \"counter\")", self.name)));
        }
        let word = first_word(&self.sql);
        if word.is_empty() {
            p.push((
                "sql",
                "is empty; write one SELECT returning a column named value".into(),
            ));
        } else if !["select", "with", "values", "table", "("].contains(&word.as_str()) {
            p.push(("sql", format!("starts with {}; a custom check runs one SELECT (or WITH … SELECT, VALUES) in a read-only transaction and writes nothing", word.to_uppercase())));
        }
        for (key, v) in [("warning", self.warning), ("critical", self.critical)] {
            if !v.is_finite() || v < 0.0 {
                p.push((
                    key,
                    format!("{v} is not accepted; write a number, 0 or more (0: never)"),
                ));
            }
        }
        let (w, c) = (self.warning, self.critical);
        if w > 0.0 && c > 0.0 {
            match self.direction {
                Direction::Above if w > c => p.push((
                    "warning",
                    format!("{w} is above critical {c}; with direction = \"above\" set warning at or below critical"),
                )),
                Direction::Below if w < c => p.push((
                    "warning",
                    format!("{w} is below critical {c}; with direction = \"below\" set warning at or above critical"),
                )),
                _ => {}
            }
        }
        if self.per_database && !self.databases.is_empty() {
            p.push((
                "per_database",
                "per_database = true runs in every database; remove it or databases".into(),
            ));
        }
        if self.databases.iter().any(|d| d.is_empty()) {
            p.push(("databases", "holds an empty name; list databases by name".into()));
        }
        let mut seen = Vec::new();
        for l in &self.labels {
            if !is_identifier(l) {
                p.push(("labels", format!("'{}' is not a column name dbtool can read as a label; use lowercase letters, digits and _ (alias the column: AS region)", l.escape_debug())));
            } else if RESERVED_LABELS.contains(&l.as_str()) || l == "value" || l.starts_with("__") {
                p.push(("labels", format!("'{l}' is taken (target, database and check are dbtool's labels, value the value); alias the column")));
            } else if seen.contains(&l) {
                p.push(("labels", format!("'{l}' is listed twice")));
            }
            seen.push(l);
        }
        p
    }

    /// The check's parts; call after `problems` found none.
    pub(crate) fn parts(&self) -> Parts {
        let scope = if self.per_database {
            Scope::EachDatabase
        } else if self.databases.is_empty() {
            Scope::Cluster
        } else {
            let dbs: Vec<&'static str> = self.databases.iter().map(|d| super::leak(d.clone())).collect();
            Scope::Databases(Box::leak(dbs.into_boxed_slice()))
        };
        let help = if self.help.trim().is_empty() {
            format!("Custom check {} (dbtool configuration).", self.name)
        } else {
            self.help.clone()
        };
        let kind = match self.kind {
            Kind::Gauge => MetricKind::Gauge,
            Kind::Counter => MetricKind::Counter,
        };
        Parts {
            name: self.name.clone(),
            help: help.clone(),
            sql: self.sql.clone(),
            scope,
            labels: self.labels.clone(),
            values: vec![("value".into(), super::family_name(&self.name, kind), kind, help.clone())],
            thresholds: Some((self.warning, self.critical, self.direction)),
            notes: Vec::new(),
            exporter: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, sql: &str) -> CustomCheckConfig {
        CustomCheckConfig {
            name: name.into(),
            help: String::new(),
            sql: sql.into(),
            warning: 0.0,
            critical: 0.0,
            direction: Direction::Above,
            databases: Vec::new(),
            per_database: false,
            labels: Vec::new(),
            kind: Kind::Gauge,
        }
    }

    #[test]
    fn the_first_word_skips_blanks_and_comments() {
        assert_eq!(first_word("  -- why\n/* a */ SELECT 1"), "select");
        assert_eq!(first_word("(select 1)"), "(");
        assert_eq!(first_word("/* unterminated"), "");
        assert_eq!(first_word("Insert into t values (1)"), "insert");
    }

    #[test]
    fn names_labels_and_writes_are_judged() {
        let none = |_: &str| false;
        assert!(table("orders_backlog", "select 1 as value").problems(&none).is_empty());
        let keys = |t: CustomCheckConfig| {
            t.problems(&|n| n == "locks")
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(table("Orders", "select 1 as value")), ["name"]);
        assert_eq!(keys(table("a\"b\nc", "select 1 as value")), ["name"]);
        assert_eq!(keys(table("locks", "select 1 as value")), ["name"]);
        assert_eq!(keys(table("orders_count", "select 1 as value")), ["name"]);
        assert_eq!(keys(table("x", "update t set a = 1")), ["sql"]);
        assert_eq!(keys(table("x", "  ")), ["sql"]);
        let mut t = table("x", "select 1 as value");
        t.labels = vec!["region".into(), "target".into(), "Bad".into(), "region".into()];
        assert_eq!(keys(t), ["labels", "labels", "labels"]);
        let mut t = table("x", "select 1 as value");
        (t.direction, t.warning, t.critical) = (Direction::Below, 5.0, 10.0);
        assert_eq!(keys(t), ["warning"]);
        let mut t = table("x", "select 1 as value");
        t.warning = f64::NAN;
        assert_eq!(keys(t), ["warning"]);
    }

    #[test]
    fn the_wrapper_keeps_one_query_and_reads_only_named_columns() {
        let sql = super::super::wrap("x", "select 1 as value; -- trailing\n", &["region", "value"]);
        assert!(
            sql.starts_with("/* dbtool: custom x */ SELECT pg_catalog.current_database()"),
            "{sql}"
        );
        assert!(
            sql.contains(", c.\"region\", c.\"value\" FROM (\nselect 1 as value; -- trailing\n) AS c"),
            "{sql}"
        );
    }
}
