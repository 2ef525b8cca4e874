//! `/probe`'s own metrics on `/metrics`: probe durations by target kind (a histogram), probes in
//! flight, refused probes by reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use crate::report::prometheus::{escape_label, format_value};

/// Upper bounds of the duration buckets, in seconds: scrape timeouts run from 1 s to a minute.
const BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Why a probe was not run; the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// A malformed request: unknown parameter, unknown check, bad target syntax (400).
    BadRequest,
    /// `?target=NAME` that is no `[[targets]]` entry (403).
    UnknownTarget,
    /// `&auth=NAME` that is no `[auth.NAME]` section (403).
    UnknownAuth,
    /// A host:port no `allow_hosts` entry matches (403).
    HostNotAllowed,
    /// The credentials of the `[auth]` section cannot be used now (403).
    AuthUnusable,
    /// The in-flight bounds were full until the deadline (503).
    TooManyInFlight,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::BadRequest,
        Refusal::UnknownTarget,
        Refusal::UnknownAuth,
        Refusal::HostNotAllowed,
        Refusal::AuthUnusable,
        Refusal::TooManyInFlight,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::UnknownTarget => "unknown_target",
            Refusal::UnknownAuth => "unknown_auth",
            Refusal::HostNotAllowed => "host_not_allowed",
            Refusal::AuthUnusable => "auth_unusable",
            Refusal::TooManyInFlight => "too_many_in_flight",
        }
    }
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters shared by every probe of the process (they outlive a reload).
#[derive(Default)]
pub struct ProbeStats {
    durations: Mutex<BTreeMap<&'static str, Histogram>>,
    refused: Mutex<BTreeMap<Refusal, u64>>,
    in_flight: AtomicI64,
}

/// Counts a probe in flight while it lives.
pub struct InFlight<'a>(&'a ProbeStats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ProbeStats {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self)
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn observe(&self, kind: &'static str, seconds: f64) {
        let mut all = self.durations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = all.entry(kind).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn refuse(&self, why: Refusal) {
        *self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(why)
            .or_default() += 1;
    }

    /// The exposition of these families (every reason present from the start, at 0, so
    /// `increase()` sees the first refusal).
    pub fn render(&self, kinds: &[&'static str]) -> String {
        let mut out = String::new();
        let durations = self.durations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP dbtool_probe_duration_seconds Wall time of /probe requests that ran, by target kind.\n");
        out.push_str("# TYPE dbtool_probe_duration_seconds histogram\n");
        for kind in kinds {
            let empty = Histogram::default();
            let h = durations.get(kind).unwrap_or(&empty);
            let kind = escape_label(kind);
            for (le, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "dbtool_probe_duration_seconds_bucket{{kind=\"{kind}\",le=\"{}\"}} {n}",
                    format_value(*le)
                );
            }
            let _ = writeln!(
                out,
                "dbtool_probe_duration_seconds_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "dbtool_probe_duration_seconds_sum{{kind=\"{kind}\"}} {}",
                format_value(h.sum)
            );
            let _ = writeln!(
                out,
                "dbtool_probe_duration_seconds_count{{kind=\"{kind}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP dbtool_probes_in_flight /probe requests running now.\n");
        out.push_str("# TYPE dbtool_probes_in_flight gauge\n");
        let _ = writeln!(out, "dbtool_probes_in_flight {}", self.in_flight());
        out.push_str("# HELP dbtool_probe_refused_total /probe requests refused, by reason.\n");
        out.push_str("# TYPE dbtool_probe_refused_total counter\n");
        let refused = self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for r in Refusal::ALL {
            let n = refused.get(&r).copied().unwrap_or(0);
            let _ = writeln!(out, "dbtool_probe_refused_total{{reason=\"{}\"}} {n}", r.label());
        }
        out
    }
}
