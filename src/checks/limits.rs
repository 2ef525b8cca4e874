//! What values a check's thresholds accept: finite, not negative, a percentage at most 100,
//! and a warning on the good side of its critical. A threshold that cannot be met (NaN, a
//! warning beyond its critical) would silently turn an alert off, so it is refused up front.

use super::{Check, Thresholds};

/// One value alone: what is wrong with it and what would be accepted.
pub fn value_problem(check: &dyn Check, key: &str, value: f64) -> Option<String> {
    let percent = check
        .thresholds()
        .iter()
        .find(|s| s.key == key)
        .is_some_and(|s| s.help.contains("percent") || s.help.contains('%'));
    let range = if percent { "0 to 100" } else { "0 or more" };
    if !value.is_finite() {
        Some(format!(
            "{value} is not a number dbtool can compare with; write a number from {range}"
        ))
    } else if value < 0.0 {
        Some(format!("{value} is negative; write a number from {range}"))
    } else if percent && value > 100.0 {
        Some(format!("{value} is above 100 percent; write a number from {range}"))
    } else {
        None
    }
}

/// The warning/critical pairs (`warning`/`critical`, `xid_warning`/`xid_critical`, …) in the
/// wrong order, as (warning key, message). 0 turns a threshold off, so it is never out of order.
pub fn order_problems(check: &dyn Check, t: &Thresholds) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (key, &warning) in t.0.iter().filter(|(k, _)| k.contains("warning")) {
        let critical_key = key.replace("warning", "critical");
        let Some(&critical) = t.0.get(&critical_key) else {
            continue;
        };
        // Out-of-range values have their own message.
        if !(warning > 0.0 && critical > 0.0 && warning.is_finite() && critical.is_finite()) {
            continue;
        }
        if check.lower_is_worse() && warning < critical {
            problems.push((
                key.clone(),
                format!(
                    "{warning} is below {critical_key} {critical}, but for {} lower is worse; set {key} at or above {critical_key}",
                    check.name()
                ),
            ));
        } else if !check.lower_is_worse() && warning > critical {
            problems.push((
                key.clone(),
                format!("{warning} is above {critical_key} {critical}; set {key} at or below {critical_key}"),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{cache_hit::CacheHit, connections::Connections};

    #[test]
    fn nan_negative_and_reversed_thresholds_are_refused_with_direction() {
        assert!(value_problem(&Connections, "warning", f64::NAN).is_some());
        assert!(value_problem(&Connections, "warning", f64::INFINITY).is_some());
        assert!(value_problem(&Connections, "warning", -1.0).is_some_and(|m| m.contains("0 to 100")));
        assert!(value_problem(&Connections, "warning", 120.0).is_some());
        assert!(value_problem(&Connections, "warning", 80.0).is_none());
        let mut t = Thresholds::defaults(Connections.thresholds());
        t.0.insert("warning".into(), 95.0);
        assert_eq!(order_problems(&Connections, &t).len(), 1);
        // Lower is worse for the cache hit ratio: warning 98 above critical 90 is right.
        let mut t = Thresholds::defaults(CacheHit.thresholds());
        assert!(order_problems(&CacheHit, &t).is_empty());
        t.0.insert("warning".into(), 80.0);
        let p = order_problems(&CacheHit, &t);
        assert!(p.first().is_some_and(|(_, m)| m.contains("lower is worse")), "{p:?}");
    }
}
