use std::collections::BTreeMap;
use std::time::Duration;

use super::Refresh;

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
