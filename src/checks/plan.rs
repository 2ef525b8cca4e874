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
