use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Refresh, TargetKept};
use crate::checks::sequences::Sequences;
use crate::checks::{Check, QueryFailure, QueryOutcome};

#[test]
fn no_intervals_keep_nothing() {
    let r = Refresh::new(BTreeMap::new());
    r.keep("main", &[], &BTreeMap::new(), &[]);
    assert!(r.lock().is_empty());
}

#[test]
fn a_result_within_the_grace_of_its_interval_is_measured_again() {
    assert!(super::young(Duration::from_secs(10), Duration::from_secs(60)));
    assert!(!super::young(Duration::from_millis(59_500), Duration::from_secs(60)));
    assert!(!super::young(Duration::ZERO, Duration::ZERO));
}

/// A job keeping `sequences` for an hour, after a run on target "main" began.
fn keeping_sequences() -> Refresh {
    let r = Refresh::new(BTreeMap::from([("sequences", Duration::from_secs(3600))]));
    r.lock().insert(
        "main".into(),
        TargetKept {
            started: "2026-12-03 10:00:00+00".into(),
            run_at: Some((chrono::Utc::now(), Instant::now())),
            entries: BTreeMap::new(),
        },
    );
    r
}

fn outcomes(failed: bool) -> BTreeMap<&'static str, QueryOutcome> {
    let q = Sequences.queries()[0].name;
    let failures = if failed {
        vec![QueryFailure {
            message: "canceling statement due to statement timeout".into(),
            sqlstate: Some("57014".into()),
            ..QueryFailure::default()
        }]
    } else {
        Vec::new()
    };
    BTreeMap::from([(
        q,
        QueryOutcome {
            succeeded: usize::from(!failed),
            failures,
            ..QueryOutcome::default()
        },
    )])
}

fn kept(r: &Refresh) -> bool {
    r.lock()
        .get("main")
        .is_some_and(|t| t.entries.contains_key("sequences"))
}

#[test]
fn a_clean_result_is_kept_and_a_failed_refresh_drops_it() {
    // Regression guard: a stale OK must not outlive a refresh that timed out or went UNKNOWN.
    let r = keeping_sequences();
    r.keep("main", &[(&Sequences, true)], &outcomes(false), &[]);
    assert!(kept(&r), "a clean result is kept");
    r.keep("main", &[(&Sequences, true)], &outcomes(true), &[]);
    assert!(!kept(&r), "a query failure drops it");
    r.keep("main", &[(&Sequences, true)], &outcomes(false), &[]);
    r.keep("main", &[(&Sequences, false)], &outcomes(false), &[]);
    assert!(!kept(&r), "an UNKNOWN status drops it");
    r.keep("main", &[(&Sequences, true)], &outcomes(false), &[]);
    r.forget("main");
    assert!(!kept(&r), "a target down or out of time drops it");
}
