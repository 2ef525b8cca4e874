//! PgBouncer connections one by one (SHOW SERVERS, SHOW CLIENTS), counted per pool
//! (database × user) and state: what SHOW POOLS cannot tell, the oldest server connection and
//! the longest wait of a client still waiting (`wait` + `wait_us`).

use std::collections::BTreeMap;

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};

use super::pgbouncer_pools::ADMIN_DB;
use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext};
use crate::db::row::Row;
use crate::db::TargetKind;
use crate::report::finding::{MetricFamily, Sample};

crate::query!(SERVERS, "pgbouncer_servers", Cluster, [0 => "pgbouncer_servers.sql"]);
crate::query!(CLIENTS, "pgbouncer_clients", Cluster, [0 => "pgbouncer_clients.sql"]);

family!(
    SERVER_STATES,
    Gauge,
    "dbtool_pgbouncer_servers",
    "Server connections per pool (database, user) by state (SHOW SERVERS): active, idle, used, tested, login, other."
);
family!(
    CLIENT_STATES,
    Gauge,
    "dbtool_pgbouncer_clients",
    "Client connections per pool (database, user) by state (SHOW CLIENTS): active, waiting, login, other."
);
family!(
    OLDEST_SERVER,
    Gauge,
    "dbtool_pgbouncer_server_oldest_connection_seconds",
    "Age of the pool's oldest server connection (SHOW SERVERS connect_time)."
);
family!(
    LONGEST_WAIT,
    Gauge,
    "dbtool_pgbouncer_client_longest_wait_seconds",
    "How long the pool's longest-waiting client has waited so far (SHOW CLIENTS wait + wait_us); 0 when none waits."
);

/// The states every pool reports (0 when none); anything else a PgBouncer version adds is
/// counted as `other`, so the label stays bounded.
const SERVER_STATE_NAMES: &[&str] = &["active", "idle", "used", "tested", "login"];
const CLIENT_STATE_NAMES: &[&str] = &["active", "waiting", "login"];

pub struct PgbouncerConnections;

/// What one pool's connections add up to.
#[derive(Default)]
struct Pool {
    states: BTreeMap<&'static str, i64>,
    /// Seconds; None when no row had a readable time.
    figure: Option<f64>,
}

impl Pool {
    fn count(&mut self, state: &str, known: &[&'static str]) {
        let key = known.iter().find(|k| **k == state).copied().unwrap_or("other");
        *self.states.entry(key).or_default() += 1;
    }
    fn top(&mut self, value: f64) {
        self.figure = Some(self.figure.map_or(value, |f| f.max(value)));
    }
}

/// PgBouncer writes times as `2026-12-03 13:28:18 UTC`: its local time and zone abbreviation.
/// UTC/GMT (and numeric offsets) are exact; another abbreviation is read as this host's local
/// time, right when dbtool runs beside PgBouncer or shares its zone.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z") {
        return Some(t.with_timezone(&Utc));
    }
    let (clock, zone) = text.rsplit_once(' ')?;
    let naive = NaiveDateTime::parse_from_str(clock, "%Y-%m-%d %H:%M:%S").ok()?;
    match zone {
        "UTC" | "GMT" | "Z" => Some(Utc.from_utc_datetime(&naive)),
        _ => Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// The pool of a SHOW SERVERS/CLIENTS row, None for the admin console's own connections.
fn pool_of<'r>(r: &'r Row, q: &Query) -> Result<Option<(&'r str, &'r str)>, EvalError> {
    let db = r.str("database").in_query(q)?;
    Ok((db != ADMIN_DB).then_some((db, r.str("user").in_query(q)?)))
}

impl Check for PgbouncerConnections {
    fn name(&self) -> &'static str {
        "pgbouncer_connections"
    }
    fn description(&self) -> &'static str {
        "PgBouncer: server and client connections by state, the oldest server connection, the longest client wait"
    }
    fn kind(&self) -> TargetKind {
        TargetKind::Pgbouncer
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&SERVERS, &CLIENTS];
        L
    }
    fn privilege(&self) -> &'static str {
        super::pgbouncer_pools::PRIVILEGE
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&SERVER_STATES, &CLIENT_STATES, &OLDEST_SERVER, &LONGEST_WAIT];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let now = Utc::now();
        let mut servers: BTreeMap<(&str, &str), Pool> = BTreeMap::new();
        for r in ctx.rows(&SERVERS) {
            let Some(pool) = pool_of(r, &SERVERS)? else { continue };
            let p = servers.entry(pool).or_default();
            p.count(r.str("state").in_query(&SERVERS)?, SERVER_STATE_NAMES);
            if let Some(t) = r.opt_str("connect_time").in_query(&SERVERS)?.and_then(parse_time) {
                p.top(((now - t).num_milliseconds() as f64 / 1000.0).max(0.0));
            }
        }
        let mut clients: BTreeMap<(&str, &str), Pool> = BTreeMap::new();
        for r in ctx.rows(&CLIENTS) {
            let Some(pool) = pool_of(r, &CLIENTS)? else { continue };
            let p = clients.entry(pool).or_default();
            let state = r.str("state").in_query(&CLIENTS)?;
            p.count(state, CLIENT_STATE_NAMES);
            // wait is whole seconds, wait_us the microseconds on top (both since 1.8).
            let wait = r.f64("wait").in_query(&CLIENTS)? + r.f64("wait_us").in_query(&CLIENTS)? / 1e6;
            p.top(if state == "waiting" { wait } else { 0.0 });
        }
        let mut out = CheckOutput::default();
        let (mut oldest, mut longest) = (0f64, 0f64);
        for ((db, user), p) in &servers {
            let label = |s: Sample| s.label("database", *db).label("user", *user);
            out.samples.extend(
                states(&p.states, SERVER_STATE_NAMES)
                    .map(|(state, n)| label(Sample::new(&SERVER_STATES, n as f64)).label("state", state)),
            );
            if let Some(age) = p.figure {
                oldest = oldest.max(age);
                out.samples.push(label(Sample::new(&OLDEST_SERVER, age)));
            }
        }
        let mut waiting = 0;
        for ((db, user), p) in &clients {
            let label = |s: Sample| s.label("database", *db).label("user", *user);
            out.samples.extend(
                states(&p.states, CLIENT_STATE_NAMES)
                    .map(|(state, n)| label(Sample::new(&CLIENT_STATES, n as f64)).label("state", state)),
            );
            waiting += p.states.get("waiting").copied().unwrap_or(0);
            let wait = p.figure.unwrap_or(0.0);
            longest = longest.max(wait);
            out.samples.push(label(Sample::new(&LONGEST_WAIT, wait)));
        }
        let count = |m: &BTreeMap<(&str, &str), Pool>| m.values().flat_map(|p| p.states.values()).sum::<i64>();
        out.summary = format!(
            "{} server connection(s), oldest {}; {} client(s), {waiting} waiting, the longest for {longest:.1}s",
            count(&servers),
            human_secs(oldest),
            count(&clients),
        );
        Ok(out)
    }
}

/// Every known state (0 when absent), then `other` when some row had a state not known.
fn states<'a>(
    counted: &'a BTreeMap<&'static str, i64>,
    known: &'static [&'static str],
) -> impl Iterator<Item = (&'static str, i64)> + 'a {
    known
        .iter()
        .map(|k| (*k, counted.get(k).copied().unwrap_or(0)))
        .chain(counted.get("other").map(|n| ("other", *n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::*;

    #[test]
    fn pgbouncer_times_are_read_in_their_zone() {
        let t = parse_time("2026-12-03 13:28:18 UTC").expect("UTC");
        assert_eq!(t.to_rfc3339(), "2026-12-03T13:28:18+00:00");
        let t = parse_time("2026-12-03 14:28:18 +0100").expect("offset");
        assert_eq!(t.to_rfc3339(), "2026-12-03T13:28:18+00:00");
        assert_eq!(parse_time("yesterday"), None);
    }

    fn conn(db: &str, state: &str, connect: &str, wait: &str, wait_us: &str) -> Row {
        Row::from_pairs(&[
            ("type", Some("C")),
            ("user", Some("app")),
            ("database", Some(db)),
            ("state", Some(state)),
            ("connect_time", Some(connect)),
            ("wait", Some(wait)),
            ("wait_us", Some(wait_us)),
        ])
    }

    fn value(out: &CheckOutput, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
        out.samples
            .iter()
            .find(|s| {
                s.family.name == family
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }

    #[test]
    fn connections_are_counted_per_pool_and_state_and_the_admin_console_is_left_out() {
        let then = "2000-01-01 00:00:00 UTC";
        let out = eval(
            &PgbouncerConnections,
            vec![
                outcome(
                    &SERVERS,
                    vec![
                        conn("app", "active", then, "0", "0"),
                        conn("app", "being_canceled", "not a time", "0", "0"),
                    ],
                ),
                outcome(
                    &CLIENTS,
                    vec![
                        conn("app", "active", then, "0", "0"),
                        conn("app", "waiting", then, "2", "500000"),
                        conn("app", "waiting", then, "1", "0"),
                        conn("pgbouncer", "waiting", then, "99", "0"),
                    ],
                ),
            ],
        );
        let app = [("database", "app"), ("user", "app")];
        let with = |state| [app[0], app[1], ("state", state)];
        assert_eq!(value(&out, "dbtool_pgbouncer_servers", &with("active")), Some(1.0));
        assert_eq!(value(&out, "dbtool_pgbouncer_servers", &with("idle")), Some(0.0));
        assert_eq!(value(&out, "dbtool_pgbouncer_servers", &with("other")), Some(1.0));
        assert_eq!(value(&out, "dbtool_pgbouncer_clients", &with("waiting")), Some(2.0));
        assert_eq!(
            value(&out, "dbtool_pgbouncer_client_longest_wait_seconds", &app),
            Some(2.5)
        );
        let age = value(&out, "dbtool_pgbouncer_server_oldest_connection_seconds", &app).expect("age");
        assert!(age > 800_000_000.0, "{age}");
        assert!(!out
            .samples
            .iter()
            .any(|s| s.labels.iter().any(|(_, v)| v == "pgbouncer")));
        assert!(
            out.summary.contains("3 client(s), 2 waiting, the longest for 2.5s"),
            "{}",
            out.summary
        );
        assert!(out.findings.is_empty());
    }
}
