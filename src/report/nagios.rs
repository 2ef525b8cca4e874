//! Nagios/Icinga plugin output, after the monitoring plugins' development guidelines: a status
//! line `POSTGRES <STATUS> - <worst findings>` (PGBOUNCER, REDIS when every target is one), long text worst first, and perfdata
//! `'label'=value[UOM];[warn];[crit];[min];[max]`. Bounded in bytes (Nagios core truncates
//! plugin output) and cut at whole lines, never inside the status line.

use std::borrow::Cow;
use std::io::Write;

use super::finding::{Limits, Sample, Severity};
use super::printable::printable;
use super::{CheckReport, Report, TargetReport};

/// Nagios core's traditional plugin-output limit (and NRPE's packet size).
pub const DEFAULT_MAX_OUTPUT: usize = 4096;
/// Findings named in the status line; the rest are counted.
const PHRASES: usize = 3;
/// Characters of one phrase in the status line.
const PHRASE_CHARS: usize = 72;

/// Bytes kept for "... N more line(s) cut ..." when long text is cut.
const NOTE_ROOM: usize = 80;

/// One long-text line with the severity it is sorted by.
struct Line {
    severity: Severity,
    text: String,
    /// Its short form for the status line.
    phrase: String,
}

pub fn render(report: &Report, out: &mut dyn Write, max_output: usize) -> std::io::Result<()> {
    let multi = report.targets.len() > 1;
    let mut lines: Vec<Line> = report.targets.iter().flat_map(|t| target_lines(t, multi)).collect();
    // Stable: within a severity, report order (targets, then the registry's check order).
    lines.sort_by_key(|l| std::cmp::Reverse(l.severity.rank()));
    let (head_perf, perf) = perfdata(report, multi);
    let mut first = status_line(report.status(), &lines, report);
    if !head_perf.is_empty() {
        first = format!("{first} | {}", head_perf.join(" "));
    }
    let mut used = first.len() + 1;
    let mut text = vec![first];
    let long: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let mut kept = fit(&long, &mut used.clone(), max_output, 0);
    if kept < long.len() {
        // Room kept for the note that says lines were cut.
        kept = fit(&long, &mut used.clone(), max_output.saturating_sub(NOTE_ROOM), 0);
    }
    used += long[..kept].iter().map(|l| l.len() + 1).sum::<usize>();
    text.extend(long[..kept].iter().map(|s| s.to_string()));
    if kept < long.len() {
        let note = format!(
            "... {} more line(s) cut at {max_output} bytes (--max-output)",
            long.len() - kept
        );
        if used + note.len() < max_output {
            used += note.len() + 1;
            text.push(note);
        }
    }
    // The first perfdata line after the long text opens with "| " (the guidelines' multi-line form).
    let kept = fit(
        &perf.iter().map(String::as_str).collect::<Vec<_>>(),
        &mut used,
        max_output,
        2,
    );
    for (i, p) in perf[..kept].iter().enumerate() {
        text.push(if i == 0 { format!("| {p}") } else { p.clone() });
    }
    for line in text {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// How many of `lines`, in order, fit in what is left of `max`; `first_extra` bytes go to the first.
fn fit(lines: &[&str], used: &mut usize, max: usize, first_extra: usize) -> usize {
    let mut n = 0;
    for (i, l) in lines.iter().enumerate() {
        let len = l.len() + 1 + if i == 0 { first_extra } else { 0 };
        if *used + len > max {
            break;
        }
        *used += len;
        n += 1;
    }
    n
}

/// The service name that leads the status line: what the targets are, POSTGRES as
/// check_postgres has it when any is PostgreSQL (or the run has none).
fn service(report: &Report) -> &'static str {
    use crate::db::TargetKind;
    let first = report.targets.first().map_or(TargetKind::Postgres, |t| t.kind);
    match first {
        k if report.targets.iter().any(|t| t.kind != k) || k == TargetKind::Postgres => "POSTGRES",
        TargetKind::Pgbouncer => "PGBOUNCER",
        _ => "REDIS",
    }
}

fn status_line(status: Severity, lines: &[Line], report: &Report) -> String {
    let svc = service(report);
    let bad: Vec<&Line> = lines.iter().filter(|l| l.severity != Severity::Ok).collect();
    if bad.is_empty() {
        // A one-check service says what it measured, as check_postgres does.
        if let [t] = report.targets.as_slice() {
            if let [c] = t.checks.as_slice() {
                return format!("{svc} OK - {}", shorten(&format!("{}: {}", c.name, clean(&c.summary))));
            }
        }
        let checks: usize = report.targets.iter().map(|t| t.checks.len()).sum();
        let targets = report.targets.len();
        return match targets {
            1 => format!("{svc} OK - {checks} checks OK"),
            _ => format!("{svc} OK - {checks} checks OK on {targets} targets"),
        };
    }
    let mut phrases: Vec<&str> = bad.iter().take(PHRASES).map(|l| l.phrase.as_str()).collect();
    let more = bad.len().saturating_sub(PHRASES);
    let more = format!("{more} more");
    if bad.len() > PHRASES {
        phrases.push(&more);
    }
    format!("{svc} {status} - {}", phrases.join(", "))
}

fn target_lines(t: &TargetReport, multi: bool) -> Vec<Line> {
    let prefix = if multi {
        format!("[{}] ", clean(&t.name))
    } else {
        String::new()
    };
    let line = |severity: Severity, what: String| Line {
        severity,
        text: format!("{prefix}{severity} {what}"),
        phrase: shorten(&format!("{prefix}{what}")),
    };
    let mut lines = Vec::new();
    if let Some(error) = &t.error {
        let (sev, what) = if t.up {
            (Severity::Unknown, "incomplete")
        } else {
            (Severity::Critical, "unreachable")
        };
        lines.push(line(sev, format!("{what}: {}", clean(error))));
    }
    for c in &t.checks {
        lines.extend(check_lines(c).into_iter().map(|(sev, what)| line(sev, what)));
    }
    lines
}

fn check_lines(c: &CheckReport) -> Vec<(Severity, String)> {
    let mut lines: Vec<(Severity, String)> = c
        .findings
        .iter()
        .map(|f| {
            // Many messages already open with their object ("pid 42 (user …) has waited …").
            let object = if f.object.is_empty() || f.object == c.name || f.message.starts_with(&f.object) {
                String::new()
            } else {
                format!("{} ", clean(&f.object))
            };
            (f.severity, format!("{}: {object}{}", c.name, clean(&f.message)))
        })
        .collect();
    if !lines.iter().any(|(s, _)| *s == c.status) {
        lines.push((c.status, format!("{}: {}", c.name, clean(&c.summary))));
    }
    lines
}

/// Text from anywhere made one harmless line: control bytes escaped as in every human output,
/// and '|' (which starts perfdata in plugin output) replaced.
fn clean(s: &str) -> Cow<'_, str> {
    let p = printable(s);
    if p.contains('|') {
        Cow::Owned(p.replace('|', "¦"))
    } else {
        p
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= PHRASE_CHARS {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(PHRASE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The perfdata of every sample: the status line's (each check's worst value of its main
/// threshold's family) and the rest.
fn perfdata(report: &Report, multi: bool) -> (Vec<String>, Vec<String>) {
    let (mut head, mut rest) = (Vec::new(), Vec::new());
    for t in report.targets.iter().filter(|t| t.up) {
        let prefix = if multi { format!("{}/", t.name) } else { String::new() };
        for c in &t.checks {
            let main = c.limits.as_ref();
            let worst = main.and_then(|l| worst_sample(c, l));
            for s in c.samples.iter().filter(|s| s.value.is_finite()) {
                let limits = main.filter(|l| std::ptr::eq(l.main.family, s.family));
                let item = item(&prefix, s, limits);
                if worst.is_some_and(|w| std::ptr::eq(w, s)) {
                    head.push(item);
                } else {
                    rest.push(item);
                }
            }
        }
    }
    (head, rest)
}

fn worst_sample<'a>(c: &'a CheckReport, l: &Limits) -> Option<&'a Sample> {
    let of_family = c
        .samples
        .iter()
        .filter(|s| std::ptr::eq(s.family, l.main.family) && s.value.is_finite());
    if l.lower_is_worse {
        // A database with no block reads yet reports a ratio of 0: not the worst, unjudged.
        let judged: Vec<&Sample> = of_family.clone().filter(|s| s.value > 0.0).collect();
        match judged.into_iter().min_by(|a, b| a.value.total_cmp(&b.value)) {
            Some(s) => Some(s),
            None => of_family.min_by(|a, b| a.value.total_cmp(&b.value)),
        }
    } else {
        of_family.max_by(|a, b| a.value.total_cmp(&b.value))
    }
}

/// `'label'=value[UOM];[warn];[crit]`, trailing empty fields left off.
fn item(prefix: &str, s: &Sample, limits: Option<&Limits>) -> String {
    let name = s.family.name.strip_prefix("dbtool_").unwrap_or(s.family.name);
    let mut label = format!("{prefix}{name}");
    for (_, v) in &s.labels {
        label.push('/');
        label.push_str(v);
    }
    let label = quote(&label);
    let Some(l) = limits else {
        return format!("{label}={}{}", number(s.value), uom(s));
    };
    let range = |v: f64| match (l.lower_is_worse, v > 0.0) {
        (true, _) => format!("{}:", number(v)),
        (false, true) => number(v),
        // 0 disables a threshold that is bad when high: no range.
        (false, false) => String::new(),
    };
    let fields = [
        format!("{}{}", number(s.value * l.main.scale), l.main.uom),
        range(l.warning),
        range(l.critical),
    ];
    let joined = fields.join(";");
    format!("{label}={}", joined.trim_end_matches(';'))
}

fn uom(s: &Sample) -> &'static str {
    let name = s.family.name;
    if s.family.kind == super::finding::MetricKind::Counter {
        "c"
    } else if name.ends_with("_seconds") {
        "s"
    } else if name.ends_with("_bytes") {
        "B"
    } else {
        ""
    }
}

/// A label quoted when it holds more than letters, digits and `_./:-`; a quote doubled.
fn quote(label: &str) -> String {
    let label = clean(label);
    let plain = label.chars().all(|c| c.is_ascii_alphanumeric() || "_./:-".contains(c));
    if plain && !label.is_empty() {
        label.into_owned()
    } else {
        format!("'{}'", label.replace('\'', "''"))
    }
}

/// A number in the guidelines' grammar: digits, '-' and '.', no exponent, at most 6 decimals.
fn number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[path = "nagios_tests.rs"]
mod tests;
