//! What a health run does on each target, resolved once from config and flags.

use super::{Check, Thresholds};
use crate::db::SessionSettings;

/// What to run, resolved from config and flags.
#[derive(Clone)]
pub struct Plan {
    pub checks: Vec<(&'static dyn Check, Thresholds)>,
    /// Per-database queries only in these databases (None: all that accept connections).
    pub databases: Option<Vec<String>>,
    pub top_n: usize,
    /// Whether findings may carry statement texts: a table or JSON report. Prometheus and Nagios
    /// output, scheduled runs and probes never read pg_stat_statements' query-text file.
    pub query_texts: bool,
    /// Connections per target, the main one included.
    pub max_connections: usize,
    pub session: SessionSettings,
}

impl Plan {
    /// The planned checks that run on a target of `kind`.
    pub fn checks_of(&self, kind: crate::db::TargetKind) -> impl Iterator<Item = &(&'static dyn Check, Thresholds)> {
        self.checks.iter().filter(move |(c, _)| c.kind() == kind)
    }
}
