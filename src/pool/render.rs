//! pool-advise output: table, ini (a ready [pgbouncer] section), JSON, Prometheus text.

use std::io::Write;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde::Serialize;

use crate::report::finding::{MetricFamily, MetricKind, Severity};
use crate::report::printable::printable;
use crate::report::prometheus::Exposition;

use super::model::{num, secs};
use super::{Advice, Measured, Scope};

/// The formats pool advice renders to.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolFormat {
    /// Current value, recommended value and the reason for each setting
    Table,
    /// A ready [pgbouncer] section and [databases] pool_size overrides
    Ini,
    Json,
    /// PgBouncer pool figures for node_exporter's textfile collector
    Prometheus,
}

/// Bump when a JSON field is renamed or removed.
pub const JSON_SCHEMA: u32 = 1;

macro_rules! gauge {
    ($id:ident, $name:literal, $help:literal) => {
        pub static $id: MetricFamily = MetricFamily {
            name: $name,
            help: $help,
            kind: MetricKind::Gauge,
        };
    };
}

gauge!(
    STATUS,
    "dbtool_pool_advise_status",
    "Worst pool-advise finding: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
);
gauge!(
    CLIENTS_ACTIVE,
    "dbtool_pgbouncer_clients_active",
    "Client connections paired with a server or idle, per pool (SHOW POOLS cl_active)."
);
gauge!(
    CLIENTS_WAITING,
    "dbtool_pgbouncer_clients_waiting",
    "Most clients seen waiting for a server during the sample window, per pool (SHOW POOLS cl_waiting)."
);
gauge!(
    MAXWAIT,
    "dbtool_pgbouncer_maxwait_seconds",
    "Longest wait of the oldest waiting client seen during the sample window, per pool (maxwait + maxwait_us)."
);
gauge!(
    SERVERS,
    "dbtool_pgbouncer_server_connections",
    "Server connections per pool by state (active, idle, used, tested, login)."
);
gauge!(
    XACT_RATE,
    "dbtool_pgbouncer_transactions_per_second",
    "Transactions per second over the sample window, per database (from total_xact_count)."
);
gauge!(
    AVG_XACT,
    "dbtool_pgbouncer_avg_xact_seconds",
    "Mean transaction time as clients see it (wait included) over the sample window, per database (from total_xact_time)."
);
gauge!(
    AVG_WAIT,
    "dbtool_pgbouncer_avg_wait_seconds",
    "Mean time a transaction waited for a server over the sample window, per database (from total_wait_time)."
);
gauge!(
    BUSY,
    "dbtool_pool_busy_connections",
    "Mean server connections busy in a transaction over the window (Little's law), per database."
);
gauge!(
    RECOMMENDED,
    "dbtool_pool_recommended_default_pool_size",
    "default_pool_size pool-advise recommends."
);

/// Every family pool-advise emits, for the metrics reference (docs/src/metrics.md).
pub static FAMILIES: &[&MetricFamily] = &[
    &STATUS,
    &CLIENTS_ACTIVE,
    &CLIENTS_WAITING,
    &MAXWAIT,
    &SERVERS,
    &XACT_RATE,
    &AVG_XACT,
    &AVG_WAIT,
    &BUSY,
    &RECOMMENDED,
];

pub fn table(m: &Measured, a: &Advice, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "pool-advise: {} (sampled {})", a.status(), secs(m.window_seconds))?;
    let mut measured = new_table(&["measured", "value"]);
    for (k, v) in measured_lines(m, a) {
        measured.add_row(cells(vec![k, v]));
    }
    writeln!(out, "{measured}")?;
    let mut t = new_table(&["where", "setting", "current", "recommended", "why"]);
    for r in &a.recommendations {
        let current = r.current.clone().unwrap_or_else(|| "-".into());
        t.add_row(cells(vec![
            r.scope.as_str().to_string(),
            r.setting.clone(),
            current,
            r.recommended.clone(),
            r.reason.clone(),
        ]));
    }
    for o in &a.overrides {
        t.add_row(cells(vec![
            "pgbouncer".into(),
            format!("[databases] {} pool_size", o.name),
            "-".into(),
            o.pool_size.to_string(),
            o.reason.clone(),
        ]));
    }
    writeln!(out, "{t}")?;
    if !a.findings.is_empty() {
        let mut f = new_table(&["status", "object", "finding"]);
        for x in &a.findings {
            f.add_row(cells(vec![x.severity.to_string(), x.object.clone(), x.message.clone()]));
        }
        writeln!(out, "{f}")?;
    }
    for s in &a.assumed {
        writeln!(out, "assumed: {}", printable(s))?;
    }
    Ok(())
}

/// Database and user names and SHOW CONFIG values are anyone's to set: escaped for the terminal.
fn cells(row: Vec<String>) -> Vec<String> {
    row.iter().map(|c| printable(c).into_owned()).collect()
}

fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(120)
        .set_header(header.to_vec());
    t
}

fn measured_lines(m: &Measured, a: &Advice) -> Vec<(String, String)> {
    let pg = &m.postgres;
    let mut v = vec![
        (
            "PostgreSQL max_connections".into(),
            format!("{} ({} reserved)", pg.max_connections, pg.reserved_connections),
        ),
        (
            "client backends".into(),
            format!(
                "{} ({} bypass PgBouncer)",
                pg.client_backends, a.derived.bypass_connections
            ),
        ),
    ];
    if let Some(r) = pg.xact_rate {
        v.push(("PostgreSQL transactions/s".into(), num(r)));
    }
    if let Some(b) = pg.busy_mean {
        v.push(("PostgreSQL mean busy backends".into(), num(b)));
    }
    if let Some(b) = &m.pgbouncer {
        for s in b.stats.iter().filter(|s| s.database != "pgbouncer") {
            v.push((format!("{} transactions/s", s.database), num(s.xact_rate)));
            v.push((
                format!("{} mean transaction / wait", s.database),
                format!("{} / {}", secs(s.avg_xact_seconds), secs(s.avg_wait_seconds)),
            ));
            v.push((
                format!("{} busy servers + waiting clients", s.database),
                format!("{} + {}", num(s.busy_servers), num(s.waiting_clients)),
            ));
        }
        for p in b.user_pools() {
            v.push((
                format!("pool {}/{}", p.database, p.user),
                format!(
                    "cl_active {} cl_waiting {} (peak {}) sv_active {} sv_idle {} maxwait {}",
                    p.cl_active,
                    p.cl_waiting,
                    p.cl_waiting_peak,
                    p.sv_active,
                    p.sv_idle,
                    secs(p.maxwait_seconds_peak)
                ),
            ));
        }
    }
    v.push((
        "host can keep busy (cores × 2 + spindles)".into(),
        a.derived.useful_connections.to_string(),
    ));
    v
}

/// A ready `[pgbouncer]` section, each value with its reason as a comment, and `[databases]`
/// overrides where one database's pools should differ from default_pool_size.
pub fn ini(m: &Measured, a: &Advice, out: &mut dyn Write) -> std::io::Result<()> {
    // why: names and reasons quote pgbouncer.ini and the servers; a control byte in one must
    // neither reach a terminal nor forge a line of the section.
    let mut line = |text: String| writeln!(out, "{}", printable(&text));
    line(format!(
        "; generated by dbtool pool-advise {} (status {})",
        env!("CARGO_PKG_VERSION"),
        a.status()
    ))?;
    for s in &a.assumed {
        line(format!("; assumed: {s}"))?;
    }
    line("[pgbouncer]".into())?;
    for r in a.recommendations.iter().filter(|r| r.scope == Scope::Pgbouncer) {
        line(format!("; {}", r.reason.replace('\n', " ")))?;
        if let Some(c) = &r.current {
            line(format!("; current: {c}"))?;
        }
        line(format!("{} = {}", r.setting, r.recommended))?;
    }
    if a.overrides.is_empty() {
        return Ok(());
    }
    line(String::new())?;
    line("[databases]".into())?;
    let dbs = m.pgbouncer.as_ref().map(|b| b.databases.as_slice()).unwrap_or_default();
    for o in &a.overrides {
        line(format!("; {}", o.reason))?;
        let Some(d) = dbs.iter().find(|d| d.name == o.name) else {
            line(format!(
                "; add pool_size={} to the existing entry of {}",
                o.pool_size, o.name
            ))?;
            continue;
        };
        let mut entry = format!("{} =", d.name);
        if let Some(h) = &d.host {
            entry.push_str(&format!(" host={h}"));
        }
        if let Some(p) = d.port {
            entry.push_str(&format!(" port={p}"));
        }
        entry.push_str(&format!(" dbname={}", d.database));
        if let Some(u) = &d.force_user {
            entry.push_str(&format!(" user={u}"));
        }
        line(format!("{entry} pool_size={}", o.pool_size))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: u32,
    status: Severity,
    measured: &'a Measured,
    advice: &'a Advice,
}

pub fn json(m: &Measured, a: &Advice, out: &mut dyn Write) -> std::io::Result<()> {
    let report = JsonReport {
        schema: JSON_SCHEMA,
        status: a.status(),
        measured: m,
        advice: a,
    };
    crate::report::json_text::to_writer_pretty(&mut *out, &report)?;
    writeln!(out)
}

/// Every series carries `target` (the PostgreSQL server, labelled as in `health`), so the
/// output merges with health's in one textfile directory.
pub fn prometheus(m: &Measured, a: &Advice, target: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let mut e = Exposition::default();
    e.push(&STATUS, vec![("target", target)], f64::from(a.status().code()));
    if let Some(rec) = a
        .get("default_pool_size")
        .and_then(|r| r.recommended.parse::<f64>().ok())
    {
        e.push(&RECOMMENDED, vec![("target", target)], rec);
    }
    if let Some(b) = &m.pgbouncer {
        for p in b.user_pools() {
            let l = || {
                vec![
                    ("target", target),
                    ("database", p.database.as_str()),
                    ("user", p.user.as_str()),
                ]
            };
            e.push(&CLIENTS_ACTIVE, l(), p.cl_active as f64);
            e.push(&CLIENTS_WAITING, l(), p.cl_waiting_peak as f64);
            e.push(&MAXWAIT, l(), p.maxwait_seconds_peak);
            for (state, n) in [
                ("active", p.sv_active),
                ("idle", p.sv_idle),
                ("used", p.sv_used),
                ("tested", p.sv_tested),
                ("login", p.sv_login),
            ] {
                let mut labels = l();
                labels.push(("state", state));
                e.push(&SERVERS, labels, n as f64);
            }
        }
        for s in b.stats.iter().filter(|s| s.database != "pgbouncer") {
            let l = || vec![("target", target), ("database", s.database.as_str())];
            e.push(&XACT_RATE, l(), s.xact_rate);
            e.push(&AVG_XACT, l(), s.avg_xact_seconds);
            e.push(&AVG_WAIT, l(), s.avg_wait_seconds);
            e.push(&BUSY, l(), s.busy_servers);
        }
    } else if let Some(busy) = m.postgres.busy_mean {
        e.push(&BUSY, vec![("target", target), ("database", "(all databases)")], busy);
    }
    e.write(out)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
