//! Prometheus text exposition (format 0.0.4) for node_exporter's textfile collector and /metrics.
//!
//! HELP and TYPE once per family, every sample labelled with its target, label values escaped,
//! no timestamps (the textfile collector rejects them).

use std::collections::HashSet;
use std::io::Write;

use crate::report::finding::{MetricFamily, MetricKind, Sample};

use super::Report;

pub static UP: MetricFamily = MetricFamily {
    name: "dbtool_up",
    help: "1 when dbtool could connect to the target, 0 when it could not.",
    kind: MetricKind::Gauge,
};
pub static CHECK_STATUS: MetricFamily = MetricFamily {
    name: "dbtool_check_status",
    help: "Status of each check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    kind: MetricKind::Gauge,
};
pub static CHECK_DURATION: MetricFamily = MetricFamily {
    name: "dbtool_check_duration_seconds",
    help: "Time spent in each check's queries and evaluation.",
    kind: MetricKind::Gauge,
};
pub static CHECK_AGE: MetricFamily = MetricFamily {
    name: "dbtool_check_result_age_seconds",
    help: "Scheduled health jobs only: age of each check's result; above 0 the check's last rows were reused (refresh) and no query ran for it.",
    kind: MetricKind::Gauge,
};
pub static SCRAPE_DURATION: MetricFamily = MetricFamily {
    name: "dbtool_scrape_duration_seconds",
    help: "Wall time of the whole health run for the target, connecting included.",
    kind: MetricKind::Gauge,
};
pub static SERVER_VERSION: MetricFamily = MetricFamily {
    name: "dbtool_server_version_num",
    help: "server_version_num of the target.",
    kind: MetricKind::Gauge,
};
pub static BUILD_INFO: MetricFamily = MetricFamily {
    name: "dbtool_build_info",
    help: "Always 1, once per target; the version label is the version of dbtool that watched it, kind what the target is (postgres, pgbouncer, redis).",
    kind: MetricKind::Gauge,
};

/// Families emitted by the report itself rather than by a check.
pub static REPORT_FAMILIES: &[&MetricFamily] = &[
    &UP,
    &CHECK_STATUS,
    &CHECK_DURATION,
    &CHECK_AGE,
    &SCRAPE_DURATION,
    &SERVER_VERSION,
    &BUILD_INFO,
];

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as Prometheus spells it.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// One series: its labels and value.
type Series<'a> = (Vec<(&'a str, &'a str)>, f64);

/// Samples grouped by family in first-seen order, each with its extra (target) labels.
#[derive(Default)]
pub struct Exposition<'a> {
    families: Vec<(&'static MetricFamily, Vec<Series<'a>>)>,
}

impl<'a> Exposition<'a> {
    pub fn push(&mut self, family: &'static MetricFamily, labels: Vec<(&'a str, &'a str)>, value: f64) {
        match self.families.iter_mut().find(|(f, _)| f.name == family.name) {
            Some((_, samples)) => samples.push((labels, value)),
            None => self.families.push((family, vec![(labels, value)])),
        }
    }

    pub fn push_sample(&mut self, target: &'a str, s: &'a Sample) {
        let mut labels = vec![("target", target)];
        labels.extend(s.labels.iter().map(|(k, v)| (*k, v.as_str())));
        self.push(s.family, labels, s.value);
    }

    /// Writes every family; a repeated label set (which Prometheus rejects) keeps its first value.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for (family, samples) in &self.families {
            let kind = match family.kind {
                MetricKind::Gauge => "gauge",
                MetricKind::Counter => "counter",
            };
            writeln!(out, "# HELP {} {}", family.name, escape_help(family.help))?;
            writeln!(out, "# TYPE {} {kind}", family.name)?;
            let mut seen = HashSet::new();
            for (labels, value) in samples {
                let rendered: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let rendered = rendered.join(",");
                if !seen.insert(rendered.clone()) {
                    tracing::debug!(family = family.name, labels = %rendered, "duplicate series dropped");
                    continue;
                }
                if rendered.is_empty() {
                    writeln!(out, "{} {}", family.name, format_value(*value))?;
                } else {
                    writeln!(out, "{}{{{rendered}}} {}", family.name, format_value(*value))?;
                }
            }
        }
        Ok(())
    }
}

/// Adds a health report's samples to an exposition (shared with the scheduler's /metrics).
pub fn add_report<'a>(exp: &mut Exposition<'a>, report: &'a Report) {
    for t in &report.targets {
        // Per target, like every series: a textfile or a federated view joins on `target`.
        exp.push(
            &BUILD_INFO,
            vec![
                ("target", &t.name),
                ("version", env!("CARGO_PKG_VERSION")),
                ("kind", t.kind.as_str()),
            ],
            1.0,
        );
        exp.push(&UP, vec![("target", &t.name)], if t.up { 1.0 } else { 0.0 });
        exp.push(&SCRAPE_DURATION, vec![("target", &t.name)], t.duration.as_secs_f64());
        if let Some(v) = t.server_version_num {
            exp.push(&SERVER_VERSION, vec![("target", &t.name)], f64::from(v));
        }
        for c in &t.checks {
            exp.push(
                &CHECK_STATUS,
                vec![("target", &t.name), ("check", c.name)],
                f64::from(c.status.code()),
            );
            // A reused result has no duration: nothing ran for it this time.
            if !c.freshness.as_ref().is_some_and(|f| f.reused) {
                exp.push(
                    &CHECK_DURATION,
                    vec![("target", &t.name), ("check", c.name)],
                    c.duration.as_secs_f64(),
                );
            }
            if let Some(f) = &c.freshness {
                exp.push(
                    &CHECK_AGE,
                    vec![("target", &t.name), ("check", c.name)],
                    f.age.as_secs_f64(),
                );
            }
        }
    }
    for t in &report.targets {
        for c in &t.checks {
            for s in &c.samples {
                exp.push_sample(&t.name, s);
            }
        }
    }
}

pub fn render(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut exp = Exposition::default();
    add_report(&mut exp, report);
    exp.write(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_newlines() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn help_and_type_once_per_family_and_duplicates_dropped() {
        let mut exp = Exposition::default();
        exp.push(&UP, vec![("target", "a")], 1.0);
        exp.push(&UP, vec![("target", "b")], 0.0);
        exp.push(&UP, vec![("target", "a")], 0.0);
        let mut buf = Vec::new();
        assert!(exp.write(&mut buf).is_ok());
        let text = String::from_utf8_lossy(&buf);
        assert_eq!(text.matches("# TYPE dbtool_up gauge").count(), 1);
        assert_eq!(text.matches("dbtool_up{target=\"a\"}").count(), 1);
        assert!(text.contains("dbtool_up{target=\"b\"} 0\n"));
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(1.3e9), "1300000000");
    }

    fn one_check(freshness: Option<super::super::Freshness>) -> String {
        use std::time::Duration;
        let check = super::super::CheckReport {
            name: "bloat",
            status: crate::report::finding::Severity::Ok,
            summary: String::new(),
            threshold: String::new(),
            duration: Duration::from_millis(40),
            findings: vec![],
            samples: vec![],
            limits: None,
            settings: Default::default(),
            freshness,
        };
        let mut t = super::super::TargetReport::down("main".into(), String::new(), Duration::ZERO);
        (t.up, t.error, t.checks) = (true, None, vec![check]);
        let report = Report {
            generated_at: chrono::Utc::now(),
            duration: Duration::ZERO,
            targets: vec![t],
        };
        let mut buf = Vec::new();
        assert!(render(&report, &mut buf).is_ok());
        String::from_utf8_lossy(&buf).into_owned()
    }

    #[test]
    fn a_reused_result_has_its_age_and_no_duration() {
        let fresh = |age: u64, reused| super::super::Freshness {
            measured_at: chrono::Utc::now(),
            age: std::time::Duration::from_secs(age),
            reused,
        };
        let reused = one_check(Some(fresh(42, true)));
        assert!(
            reused.contains("dbtool_check_result_age_seconds{target=\"main\",check=\"bloat\"} 42\n"),
            "{reused}"
        );
        assert!(!reused.contains("dbtool_check_duration_seconds{"), "{reused}");
        let measured = one_check(Some(fresh(0, false)));
        assert!(
            measured.contains("dbtool_check_result_age_seconds{target=\"main\",check=\"bloat\"} 0\n"),
            "{measured}"
        );
        assert!(
            measured.contains("dbtool_check_duration_seconds{target=\"main\",check=\"bloat\"} 0.04\n"),
            "{measured}"
        );
        // A one-shot run keeps nothing and says nothing about ages.
        let one_shot = one_check(None);
        assert!(!one_shot.contains("dbtool_check_result_age_seconds"), "{one_shot}");
        assert!(one_shot.contains("dbtool_check_duration_seconds{"), "{one_shot}");
    }
}
