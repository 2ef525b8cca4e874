//! Terminal tables: a summary row per check, then the findings of checks that have any.

use std::io::{IsTerminal, Write};

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, ContentArrangement, Table};

use crate::report::finding::Severity;

use super::printable::printable;
use super::Report;

/// Colour only on a terminal, and never when NO_COLOR is set.
pub fn colour_for_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn status_cell(s: Severity, colour: bool) -> Cell {
    let cell = Cell::new(s.as_str());
    if !colour {
        return cell;
    }
    cell.fg(match s {
        Severity::Ok => Color::Green,
        Severity::Warning => Color::Yellow,
        Severity::Critical => Color::Red,
        Severity::Unknown => Color::Magenta,
    })
}

fn new_table(header: &[&str], colour: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    if colour {
        t.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        // Not a terminal: no wrapping, so lines stay grep-able.
        t.set_content_arrangement(ContentArrangement::Disabled);
        t.force_no_tty();
    }
    t.set_header(header.iter().map(|h| Cell::new(*h)));
    t
}

pub fn render(report: &Report, out: &mut dyn Write, colour: bool) -> std::io::Result<()> {
    for t in &report.targets {
        let version = t
            .server_version
            .as_deref()
            // PostgreSQL's server_version is a bare number; PgBouncer's and Redis' name themselves.
            .map(|v| match v.starts_with(|c: char| c.is_ascii_digit()) {
                true => format!(", PostgreSQL {}", printable(v)),
                false => format!(", {}", printable(v)),
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{} — {}{version} ({} ms)",
            printable(&t.name),
            t.status(),
            t.duration.as_millis()
        )?;
        if let Some(p) = t.previous_run {
            writeln!(
                out,
                "  counters compared with the previous run at {}",
                p.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
        }
        if let Some(e) = &t.error {
            writeln!(out, "  {}", printable(e))?;
        }
        if t.checks.is_empty() {
            writeln!(out)?;
            continue;
        }
        let mut summary = new_table(&["check", "status", "summary", "thresholds"], colour);
        for c in &t.checks {
            summary.add_row(vec![
                Cell::new(c.name),
                status_cell(c.status, colour),
                Cell::new(printable(&c.summary)),
                Cell::new(printable(&c.threshold)),
            ]);
        }
        writeln!(out, "{summary}")?;
        for c in t.checks.iter().filter(|c| !c.findings.is_empty()) {
            writeln!(out, "{}:", c.name)?;
            let mut findings = new_table(&["severity", "object", "finding"], colour);
            for f in &c.findings {
                findings.add_row(vec![
                    status_cell(f.severity, colour),
                    Cell::new(printable(&f.object)),
                    Cell::new(printable(&f.message)),
                ]);
            }
            writeln!(out, "{findings}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "status: {} (exit {})", report.status(), report.status().code())
}
