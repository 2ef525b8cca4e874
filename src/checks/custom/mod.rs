//! Custom checks: SQL of the user's from `[[custom_checks]]` (or postgres_exporter's
//! queries.yaml), run as built-in checks are — same sessions, read-only, same timeouts — and
//! judged, labelled and exported the same way (`dbtool_custom_<name>`).
//!
//! The registry of built-in checks is static; a custom check is built once from the file and
//! leaked into a `&'static dyn Check`, so the runner, the renderers and `--check`/`--set` take it
//! like any other. A file is loaded once per process (and once per reload of the scheduler).

mod config;
mod eval;
pub mod explain;
pub(crate) mod yaml;

use super::{Check, CheckOutput, EvalContext, EvalError, Query, Scope, ThresholdSpec, Variant};
use crate::report::finding::{MainThreshold, MetricFamily, MetricKind};
pub use config::{CustomCheckConfig, Direction, Kind};

/// Label sets kept per check and target; beyond, the series are cut and a finding says so.
pub const MAX_SERIES: usize = 100;
/// The column the wrapper adds: the database each row came from (the `database` label).
const DATABASE_COLUMN: &str = "dbtool database";

/// One exported column: its name in the query and the family it feeds.
pub struct ValueColumn {
    pub column: &'static str,
    pub family: &'static MetricFamily,
}

/// A check defined in the configuration.
pub struct CustomCheck {
    name: &'static str,
    help: &'static str,
    queries: &'static [&'static Query],
    thresholds: &'static [ThresholdSpec],
    main: Option<&'static MainThreshold>,
    families: &'static [&'static MetricFamily],
    values: Vec<ValueColumn>,
    labels: Vec<&'static str>,
    direction: Direction,
    /// What the check says about itself on every run (a column it cannot export).
    notes: Vec<String>,
    /// Read as postgres_exporter reads: NULL is NaN, a boolean 1 or 0.
    exporter: bool,
}

/// The custom checks of a configuration, in the order written.
#[derive(Clone, Default)]
pub struct Catalog(pub Vec<&'static dyn Check>);

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|c| c.name())).finish()
    }
}

/// `dbtool_custom_<tail>`; a counter's ends in `_total`, as Prometheus names counters.
pub fn family_name(tail: &str, kind: MetricKind) -> String {
    match kind {
        MetricKind::Counter if !tail.ends_with("_total") => format!("dbtool_custom_{tail}_total"),
        _ => format!("dbtool_custom_{tail}"),
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// What a check is made of, before it is leaked.
pub struct Parts {
    pub name: String,
    pub help: String,
    pub sql: String,
    pub scope: Scope,
    pub labels: Vec<String>,
    /// (column, metric family name, kind, help); the first is judged when `thresholds` is Some.
    pub values: Vec<(String, String, MetricKind, String)>,
    pub thresholds: Option<(f64, f64, Direction)>,
    pub notes: Vec<String>,
    pub exporter: bool,
}

/// The statement sent: the user's query as a subquery, so that it can only be one query (a
/// second statement, a data-modifying WITH or a bare INSERT is a syntax error before anything
/// runs), with the database it ran in and only the columns dbtool reads, named so that a
/// missing one fails at PREPARE (`config check --dsn`) as at run time.
pub fn wrap(name: &str, sql: &str, columns: &[&str]) -> String {
    let body = sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let cols: String = columns.iter().map(|c| format!(", c.\"{c}\"")).collect();
    format!("/* dbtool: custom {name} */ SELECT pg_catalog.current_database() AS \"{DATABASE_COLUMN}\"{cols} FROM (\n{body}\n) AS c")
}

impl Parts {
    pub(crate) fn build(self) -> &'static dyn Check {
        let name = leak(self.name);
        let families: Vec<&'static MetricFamily> = self
            .values
            .iter()
            .map(|(_, family, kind, help)| {
                &*Box::leak(Box::new(MetricFamily {
                    name: leak(family.clone()),
                    help: leak(help.clone()),
                    kind: *kind,
                }))
            })
            .collect();
        let values: Vec<ValueColumn> = self
            .values
            .iter()
            .zip(&families)
            .map(|((column, _, _, _), family)| ValueColumn {
                column: leak(column.clone()),
                family,
            })
            .collect();
        let labels: Vec<&'static str> = self.labels.into_iter().map(leak).collect();
        let columns: Vec<&str> = labels.iter().copied().chain(values.iter().map(|v| v.column)).collect();
        let sql = leak(wrap(name, &self.sql, &columns));
        let query: &'static Query = Box::leak(Box::new(Query {
            name: leak(format!("custom_{name}")),
            scope: self.scope,
            variants: Box::leak(Box::new([Variant { min_version: 0, sql }])),
            snapshot_stats: false,
        }));
        let (thresholds, main, direction): (&'static [ThresholdSpec], _, _) = match (self.thresholds, families.first())
        {
            (Some((warning, critical, direction)), Some(family)) => (
                Box::leak(Box::new([
                    ThresholdSpec {
                        key: "warning",
                        default: warning,
                        help: "value at which the check warns (0: never)",
                    },
                    ThresholdSpec {
                        key: "critical",
                        default: critical,
                        help: "value at which the check is critical (0: never)",
                    },
                ])),
                Some(&*Box::leak(Box::new(MainThreshold {
                    warning: "warning",
                    critical: "critical",
                    family,
                    scale: 1.0,
                    uom: "",
                }))),
                direction,
            ),
            _ => (&[], None, Direction::Above),
        };
        Box::leak(Box::new(CustomCheck {
            name,
            help: leak(self.help),
            queries: Box::leak(Box::new([query])),
            thresholds,
            main,
            families: Box::leak(families.into_boxed_slice()),
            values,
            labels,
            direction,
            notes: self.notes,
            exporter: self.exporter,
        }))
    }
}

impl Check for CustomCheck {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.help
    }
    fn queries(&self) -> &'static [&'static Query] {
        self.queries
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        self.thresholds
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        self.main
    }
    fn lower_is_worse(&self) -> bool {
        self.direction == Direction::Below
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        self.families
    }
    fn privilege(&self) -> &'static str {
        "SELECT on what its sql reads"
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        eval::evaluate(self, ctx)
    }
}
