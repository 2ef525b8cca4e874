//! `--state`: the configured server settings changed since the previous run (name, old, new),
//! as a WARNING finding of the check that read them (`hygiene`) and `dbtool_settings_changed`.
//! A change is an event: the next run compares with the new values and is quiet again.

use std::collections::BTreeMap;

use super::human_secs;
use super::hygiene::CHANGED;
use crate::report::finding::{Finding, Sample, Severity};
use crate::report::CheckReport;

/// Names listed in one finding; the rest are counted.
const LISTED: usize = 20;

/// One setting's change; None is "not configured" (back to its default, or newly set).
fn change(name: &str, old: Option<&String>, new: Option<&String>) -> String {
    let show = |v: Option<&String>| v.map_or_else(|| "(default)".to_string(), |v| v.clone());
    format!("{name} {} → {}", show(old), show(new))
}

/// Compares `check`'s settings with the previous run's (`previous`, None on a first run or
/// from a state file written before settings were kept) and adds the finding and the sample.
pub fn compare(check: &mut CheckReport, previous: Option<&BTreeMap<String, String>>, ago_secs: f64) {
    let Some(previous) = previous.filter(|p| !p.is_empty()) else {
        return;
    };
    let now = &check.settings;
    let mut changes: Vec<String> = Vec::new();
    for name in previous.keys().chain(now.keys().filter(|n| !previous.contains_key(*n))) {
        let (old, new) = (previous.get(name), now.get(name));
        if old != new {
            changes.push(change(name, old, new));
        }
    }
    changes.sort();
    let n = changes.len();
    check.samples.push(Sample::new(&CHANGED, n as f64));
    if n == 0 {
        return;
    }
    let more = if n > LISTED {
        format!(" and {} more", n - LISTED)
    } else {
        String::new()
    };
    changes.truncate(LISTED);
    check.findings.push(
        Finding::new(
            Severity::Warning,
            "settings",
            format!(
                "{n} setting(s) changed since the previous run {} ago: {}{more}; expected if someone changed the \
                 configuration, otherwise find out who did (the server log records reloads)",
                human_secs(ago_secs),
                changes.join(", ")
            ),
        )
        .with_value(n as f64),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(settings: &[(&str, &str)]) -> CheckReport {
        CheckReport {
            name: "hygiene",
            status: Severity::Ok,
            summary: String::new(),
            threshold: String::new(),
            duration: Duration::ZERO,
            findings: vec![],
            samples: vec![],
            limits: None,
            settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            freshness: None,
        }
    }

    #[test]
    fn changed_added_and_removed_settings_warn_with_old_and_new() {
        let before = check(&[("work_mem", "4096 kB"), ("log_lock_waits", "on"), ("fsync", "off")]).settings;
        let mut c = check(&[("work_mem", "8192 kB"), ("fsync", "off"), ("max_wal_size", "2048 MB")]);
        compare(&mut c, Some(&before), 300.0);
        assert_eq!(c.samples[0].value, 3.0);
        let f = &c.findings[0];
        assert_eq!((f.severity, f.object.as_str()), (Severity::Warning, "settings"));
        assert!(
            f.message.starts_with(
                "3 setting(s) changed since the previous run 5m00s ago: log_lock_waits on → (default), \
                 max_wal_size (default) → 2048 MB, work_mem 4096 kB → 8192 kB;"
            ),
            "{}",
            f.message
        );
    }

    #[test]
    fn no_change_is_a_zero_and_no_previous_settings_is_nothing() {
        let before = check(&[("work_mem", "4096 kB")]).settings;
        let mut c = check(&[("work_mem", "4096 kB")]);
        compare(&mut c, Some(&before), 60.0);
        assert_eq!((c.samples[0].value, c.findings.len()), (0.0, 0));
        let mut first = check(&[("work_mem", "4096 kB")]);
        compare(&mut first, None, 60.0);
        compare(&mut first, Some(&BTreeMap::new()), 60.0);
        assert!(first.samples.is_empty() && first.findings.is_empty());
    }
}
