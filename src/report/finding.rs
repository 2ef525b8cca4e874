//! The vocabulary every check, job and renderer speaks: a `Severity`, the `Finding`s that carry
//! one, and the `Sample`s of statically declared `MetricFamily`s. A leaf: it imports nothing of
//! dbtool's, so checks, jobs, the pool advisor and the renderers can all use it.

use std::fmt;

use serde::Serialize;

/// Nagios-style severity; its number is the plugin exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Severity {
    /// The Nagios exit code and the value of `dbtool_check_status`.
    pub fn code(self) -> u8 {
        match self {
            Severity::Ok => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
            Severity::Unknown => 3,
        }
    }

    /// Rank for "the worst finding decides": a check that could not run (UNKNOWN) must not
    /// hide a real WARNING or CRITICAL elsewhere, so UNKNOWN ranks between OK and WARNING.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Ok => 0,
            Severity::Unknown => 1,
            Severity::Warning => 2,
            Severity::Critical => 3,
        }
    }

    pub fn worst(self, other: Severity) -> Severity {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }

    /// Severity for a value that is bad when high: `value >= crit` → CRITICAL, and so on.
    /// A threshold of 0 or less is disabled.
    pub fn above(value: f64, warn: f64, crit: f64) -> Severity {
        if crit > 0.0 && value >= crit {
            Severity::Critical
        } else if warn > 0.0 && value >= warn {
            Severity::Warning
        } else {
            Severity::Ok
        }
    }

    /// Severity for a value that is bad when low (cache hit ratio).
    pub fn below(value: f64, warn: f64, crit: f64) -> Severity {
        if value < crit {
            Severity::Critical
        } else if value < warn {
            Severity::Warning
        } else {
            Severity::Ok
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing worth telling: an offender, a check that could not run, or an informational note.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// What it is about: "db app table public.posts", "pid 4242", "database app".
    pub object: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

impl Finding {
    pub fn new(severity: Severity, object: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            severity,
            object: object.into(),
            message: message.into(),
            value: None,
        }
    }

    pub fn with_value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }
}

/// A check's main threshold: the pair of keys `--warning`/`--critical` set (as check_postgres'
/// `-w`/`-c`), and the metric family they judge, for Nagios perfdata. Declared by the check
/// next to its threshold keys.
#[derive(Debug)]
pub struct MainThreshold {
    pub warning: &'static str,
    pub critical: &'static str,
    pub family: &'static MetricFamily,
    /// Multiplies a sample into the thresholds' unit: 100 for a ratio judged in percent.
    pub scale: f64,
    /// Nagios unit of measurement of the scaled value: "", "s", "B", "%" or "c".
    pub uom: &'static str,
}

/// A main threshold with the values in force on one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub main: &'static MainThreshold,
    pub warning: f64,
    pub critical: f64,
    /// A lower value is worse (a hit ratio): the range alerts below the threshold.
    pub lower_is_worse: bool,
}

impl PartialEq for MainThreshold {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// Prometheus metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Gauge,
    Counter,
}

/// A metric family, declared once (statically) by the check that emits it.
#[derive(Debug, PartialEq, Eq)]
pub struct MetricFamily {
    /// Full name including the `dbtool_` prefix.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
}

/// One sample of a family. The `target` label is added by the renderer.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub family: &'static MetricFamily,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
    /// For counters with `--state`: the increase since the previous run.
    pub delta: Option<f64>,
}

impl Sample {
    pub fn new(family: &'static MetricFamily, value: f64) -> Self {
        Sample {
            family,
            labels: Vec::new(),
            value,
            delta: None,
        }
    }

    pub fn label(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((name, value.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_prefers_critical_over_unknown() {
        assert_eq!(Severity::Unknown.worst(Severity::Critical), Severity::Critical);
        assert_eq!(Severity::Warning.worst(Severity::Unknown), Severity::Warning);
        assert_eq!(Severity::Ok.worst(Severity::Unknown), Severity::Unknown);
    }
}
