//! What an archive run tells: progress (a bar on a terminal, else a line every few batches),
//! the final summary and reason line, and the Prometheus textfile.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::run::Progress;
use super::{ArchiveReport, StopReason};
use crate::report::finding::{MetricFamily, MetricKind, Sample};
use crate::report::printable::printable;
use crate::report::prometheus::Exposition;

pub static ROWS_TOTAL: MetricFamily = MetricFamily {
    name: "dbtool_archive_rows_total",
    help: "Rows moved (or copied, or purged) by dbtool archive, summed over runs.",
    kind: MetricKind::Counter,
};
pub static LAST_SUCCESS: MetricFamily = MetricFamily {
    name: "dbtool_archive_last_success_timestamp_seconds",
    help: "Unix time the last archive run of the table ended without error.",
    kind: MetricKind::Gauge,
};
pub static LAST_DURATION: MetricFamily = MetricFamily {
    name: "dbtool_archive_last_duration_seconds",
    help: "Wall time of the last archive run of the table.",
    kind: MetricKind::Gauge,
};
pub static REMAINING: MetricFamily = MetricFamily {
    name: "dbtool_archive_remaining_rows",
    help: "Rows still older than the cutoff after the last run, counted; absent when they could not be counted.",
    kind: MetricKind::Gauge,
};
pub static STATUS: MetricFamily = MetricFamily {
    name: "dbtool_archive_status",
    help: "How the last run ended: 0 done, 1 stopped early (max-runtime, signal, lag), 2 failed.",
    kind: MetricKind::Gauge,
};

/// One line saying why the run stopped, as printed last and stored in the job history.
pub fn reason_line(r: &ArchiveReport) -> String {
    let what = match r.stop {
        StopReason::Done => match r.remaining {
            Some(n) if n > 0 && r.mode != super::Mode::Copy => format!(
                "done: {n} rows older than the cutoff were locked by other sessions and skipped; the next run takes them"
            ),
            _ => "done: nothing older than the cutoff is left".to_string(),
        },
        StopReason::MaxRuntime => "stopped: --max-runtime reached; the next run continues".to_string(),
        StopReason::Signal => "stopped: signal received, the current batch was finished; the next run continues".into(),
        StopReason::Lag => {
            "stopped: a standby stayed behind --max-lag until --max-runtime; the next run continues".into()
        }
        StopReason::DryRun => "dry run: nothing was changed".into(),
        StopReason::Error(ref m) => format!("failed: {m}"),
    };
    format!("{} rows {}; {what}", r.rows, verb(r))
}

fn verb(r: &ArchiveReport) -> &'static str {
    match r.mode {
        super::Mode::Move => "moved",
        super::Mode::Copy => "copied",
        super::Mode::Purge => "purged",
    }
}

/// The final summary (stderr when a human watches; the caller decides).
pub fn summary(r: &ArchiveReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "table:          {}", printable(&r.table))?;
    if let Some(d) = &r.dest {
        writeln!(out, "destination:    {}", printable(d))?;
    }
    writeln!(out, "cutoff:         {} (walk: {:?})", r.cutoff, r.walk)?;
    writeln!(out, "{:<16}{}", format!("rows {}:", verb(r)), r.rows)?;
    writeln!(out, "batches:        {} in {} pass(es)", r.batches, r.passes)?;
    writeln!(out, "duration:       {:.2}s", r.duration.as_secs_f64())?;
    writeln!(out, "rows/s:         {:.0}", r.rows_per_second())?;
    writeln!(out, "slowest batch:  {} ms", r.slowest_batch.as_millis())?;
    match (r.remaining, r.remaining_estimate) {
        (Some(n), _) => writeln!(out, "remaining:      {n}")?,
        (None, Some(n)) => writeln!(out, "remaining:      about {n} (planner's estimate: counting failed)")?,
        (None, None) => writeln!(out, "remaining:      unknown (counting failed)")?,
    }
    for c in &r.children {
        let remaining = c.remaining.map_or_else(|| "unknown".to_string(), |n| n.to_string());
        writeln!(
            out,
            "child           {}: {} rows {}, remaining {remaining}",
            printable(&c.table),
            c.rows,
            verb(r)
        )?;
    }
    writeln!(out, "stop reason:    {}", r.stop.as_str())
}

/// Writes the textfile atomically. Counters carry on from the file's previous values, and a
/// failed run keeps the previous last-success time. Every series carries `target` (the same
/// table archived in two databases is two series) and `table`.
pub fn write_metrics(
    path: &Path,
    target: &str,
    table: &str,
    report: Option<&ArchiveReport>,
    ok: bool,
    took: Duration,
) -> Result<(), crate::report::atomic::WriteError> {
    // Only a regular file holds previous values: reading /dev/full or a FIFO would never end.
    let previous = crate::report::atomic::existing_file(path)
        .ok()
        .flatten()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let prev = |family: &MetricFamily| previous_value(&previous, family.name, target, table);
    let rows = report.map_or(0, |r| r.rows);
    let mut samples = vec![Sample::new(&ROWS_TOTAL, prev(&ROWS_TOTAL).unwrap_or(0.0) + rows as f64)];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if let Some(last) = if ok { Some(now) } else { prev(&LAST_SUCCESS) } {
        samples.push(Sample::new(&LAST_SUCCESS, last.floor()));
    }
    samples.push(Sample::new(&LAST_DURATION, took.as_secs_f64()));
    if let Some(n) = report.and_then(|r| r.remaining) {
        samples.push(Sample::new(&REMAINING, n as f64));
    }
    let status = match report.map(|r| &r.stop) {
        Some(StopReason::Done) if ok => 0.0,
        Some(StopReason::MaxRuntime | StopReason::Signal | StopReason::Lag) if ok => 1.0,
        _ => 2.0,
    };
    samples.push(Sample::new(&STATUS, status));
    let mut samples: Vec<Sample> = samples.into_iter().map(|s| s.label("table", table)).collect();
    // Each child table: its own rows and remaining series, carried on like the parent's.
    for c in report.map_or(&[][..], |r| r.children.as_slice()) {
        let prev_rows = previous_value(&previous, ROWS_TOTAL.name, target, &c.table).unwrap_or(0.0);
        samples.push(Sample::new(&ROWS_TOTAL, prev_rows + c.rows as f64).label("table", &c.table));
        if let Some(n) = c.remaining {
            samples.push(Sample::new(&REMAINING, n as f64).label("table", &c.table));
        }
    }
    let mut exp = Exposition::default();
    for s in &samples {
        exp.push_sample(target, s);
    }
    let mut buf = Vec::new();
    let _ = exp.write(&mut buf);
    crate::report::atomic::write(path, &buf)
}

/// The value of `family{target="...",table="..."}` in a previous exposition; a file written
/// before series carried `target` (`family{table="..."}`) still counts, so an upgrade does not
/// reset the counter or forget the last success.
fn previous_value(text: &str, family: &str, target: &str, table: &str) -> Option<f64> {
    use crate::report::prometheus::escape_label;
    let table = escape_label(table);
    let current = format!("{family}{{target=\"{}\",table=\"{table}\"}} ", escape_label(target));
    let before = format!("{family}{{table=\"{table}\"}} ");
    [current, before].iter().find_map(|prefix| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// indicatif's own `{per_sec}` prints "26,143.133/s": rows are whole, so is their rate.
const BAR_TEMPLATE: &str = "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} rows, {rows_per_sec}, ETA {eta}";

/// Whole rows per second, thousands grouped like the row counts beside it: "26,143 rows/s".
fn rows_per_sec(per_sec: f64) -> String {
    // Saturating float-to-int: a rate is finite and far below u64::MAX; NaN becomes 0.
    let whole = per_sec.max(0.0).round() as u64;
    format!("{} rows/s", indicatif::HumanCount(whole))
}

/// A progress bar on a terminal: rows, rows/s, ETA from the planner's estimate.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new() -> Bar {
        Bar(None)
    }
}

impl Default for Bar {
    fn default() -> Self {
        Bar::new()
    }
}

impl Progress for Bar {
    fn started(&mut self, r: &ArchiveReport, estimate: Option<i64>) {
        let len = estimate.and_then(|e| u64::try_from(e).ok()).unwrap_or(0);
        let bar = ProgressBar::new(len.max(1));
        let style = ProgressStyle::with_template(BAR_TEMPLATE)
            .map(|s| {
                s.with_key(
                    "rows_per_sec",
                    |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&rows_per_sec(st.per_sec()));
                    },
                )
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        bar.set_message(format!("{} → {}", r.table, r.dest.as_deref().unwrap_or("(purge)")));
        let est = estimate.map_or_else(|| "unknown".to_string(), |e| e.to_string());
        bar.println(format!("cutoff: {} ({est} rows estimated)", r.cutoff));
        self.0 = Some(bar);
    }

    fn batch(&mut self, rows: i64, _batches: u64, _took: Duration) {
        if let Some(bar) = &self.0 {
            let rows = u64::try_from(rows).unwrap_or(0);
            if rows > bar.length().unwrap_or(0) {
                bar.set_length(rows);
            }
            bar.set_position(rows);
        }
    }

    /// Notes quote server errors, which quote names: escaped for the terminal.
    fn note(&mut self, line: &str) {
        let line = printable(line);
        match &self.0 {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// Without a terminal: a line every `every` batches on stderr.
pub struct Lines {
    pub every: u64,
    started: Instant,
    estimate: Option<i64>,
}

impl Lines {
    pub fn new(every: u64) -> Lines {
        Lines {
            every: every.max(1),
            started: Instant::now(),
            estimate: None,
        }
    }
}

impl Progress for Lines {
    fn started(&mut self, r: &ArchiveReport, estimate: Option<i64>) {
        self.started = Instant::now();
        self.estimate = estimate;
        let est = estimate.map_or("unknown".to_string(), |e| e.to_string());
        eprintln!(
            "archive {} -> {}: cutoff {}, walk {:?}, about {est} rows",
            printable(&r.table),
            printable(r.dest.as_deref().unwrap_or("(purge)")),
            r.cutoff,
            r.walk
        );
    }

    fn batch(&mut self, rows: i64, batches: u64, took: Duration) {
        if batches % self.every != 0 {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        eprintln!(
            "batch {batches}: {rows} rows, {:.0} rows/s, last batch {} ms",
            rows as f64 / secs,
            took.as_millis()
        );
    }

    fn note(&mut self, line: &str) {
        eprintln!("{}", printable(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_previous_counter_values_by_target_and_table() {
        let text = "# TYPE dbtool_archive_rows_total counter\n\
                    dbtool_archive_rows_total{target=\"a\",table=\"public.posts\"} 1500\n\
                    dbtool_archive_rows_total{target=\"b\",table=\"public.posts\"} 3\n\
                    dbtool_archive_rows_total{target=\"a\",table=\"public.other\"} 7\n";
        let prev = |target, table| previous_value(text, ROWS_TOTAL.name, target, table);
        assert_eq!(prev("a", "public.posts"), Some(1500.0));
        assert_eq!(prev("b", "public.posts"), Some(3.0));
        assert_eq!(prev("a", "public.x"), None);
    }

    /// Issue 13 item 10: the bar said "26,143.133/s".
    #[test]
    fn the_bar_shows_whole_rows_per_second() {
        assert_eq!(rows_per_sec(26_143.133), "26,143 rows/s");
        assert_eq!(rows_per_sec(0.4), "0 rows/s");
        assert_eq!(rows_per_sec(f64::NAN), "0 rows/s");
        assert!(BAR_TEMPLATE.contains("{rows_per_sec}") && !BAR_TEMPLATE.contains("{per_sec}"));
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
    }

    #[test]
    fn reads_a_file_written_before_series_carried_target() {
        let text = "dbtool_archive_rows_total{table=\"public.posts\"} 1500\n";
        assert_eq!(previous_value(text, ROWS_TOTAL.name, "a", "public.posts"), Some(1500.0));
    }
}
