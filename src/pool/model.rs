//! The sizing model: measured load in, recommended settings with their reasons out. Pure (no
//! I/O), so every rule is unit-tested with fixture numbers. The README explains each rule.

use crate::checks::{Finding, Severity};

use super::{Advice, Assumptions, DatabaseOverride, Derived, Measured, Recommendation, Scope};

pub const DEFAULT_CORES: u32 = 4;
pub const DEFAULT_PEAK_FACTOR: f64 = 1.0;
pub const DEFAULT_HEADROOM: f64 = 1.25;
/// Server slots kept free for psql, dbtool and monitoring beyond the superuser reserve.
pub const ADMIN_MARGIN: i64 = 3;
/// PgBouncer needs a descriptor per client and per server plus its own listeners and logs.
pub const FD_SLACK: i64 = 10;

/// The inputs after defaults: what the model computes with.
#[derive(Clone, Debug)]
struct Inputs {
    cores: i64,
    spindles: i64,
    peak: f64,
    headroom: f64,
    instances: i64,
    app_max_open: Option<i64>,
    app_max_idle: Option<i64>,
}

/// Demand on one PgBouncer database (or, without PgBouncer, on the whole server).
#[derive(Clone, Debug)]
struct Demand {
    name: String,
    /// Pools (users) seen for this database; PgBouncer pools are per user × database.
    users: i64,
    busy: f64,
    waiting: f64,
    needed: i64,
}

impl Demand {
    fn per_pool(&self) -> i64 {
        ceil_div(self.needed, self.users.max(1)).max(1)
    }
}

pub fn advise(m: &Measured, a: &Assumptions) -> Advice {
    let mut assumed = Vec::new();
    let inp = inputs(a, &mut assumed);
    let mut demands = demands(m, &inp, &mut assumed);
    let mut findings = Vec::new();
    let demand: f64 = demands.iter().map(|d| d.busy + d.waiting).sum();
    let uncapped: i64 = demands.iter().map(|d| d.needed).sum();
    let useful = inp.cores * 2 + inp.spindles;
    cap_to_useful(&mut demands, useful, &mut findings);
    let pg = &m.postgres;
    let usable = pg.max_connections - pg.reserved_connections;
    let bypass = bypass_connections(m);
    let budget = (usable - bypass - ADMIN_MARGIN).max(1);
    let mut sizing = Sizing::new(&demands);
    let wanted_servers = sizing.capacity(&demands);
    sizing.fit(&demands, budget);
    let mut derived = Derived {
        demand,
        needed: uncapped,
        useful_connections: useful,
        usable_connections: usable,
        bypass_connections: bypass,
        server_budget: budget,
        configured_pool_capacity: None,
    };
    derived.configured_pool_capacity = configured_capacity(m);
    findings.extend(bouncer_findings(m, &derived, &demands));
    let mut recs = Vec::new();
    recs.extend(pgbouncer_recs(m, &inp, &derived, &demands, &sizing, &mut findings));
    recs.extend(app_recs(&inp, &demands, &sizing));
    recs.push(max_connections_rec(m, &derived, wanted_servers, &mut findings));
    let overrides = overrides(m, &demands, &sizing);
    Advice {
        recommendations: recs,
        overrides,
        findings,
        assumed,
        derived,
    }
}

fn inputs(a: &Assumptions, assumed: &mut Vec<String>) -> Inputs {
    let cores = a.db_cores.unwrap_or_else(|| {
        assumed.push(format!("database host has {DEFAULT_CORES} CPU cores (set --db-cores)"));
        DEFAULT_CORES
    });
    let ssd = a.ssd.unwrap_or_else(|| {
        assumed.push("database storage is SSD (set --ssd true|false)".into());
        true
    });
    let peak = a.peak_factor.unwrap_or_else(|| {
        assumed.push(format!(
            "the sampled window is the peak (peak factor {DEFAULT_PEAK_FACTOR}; set --peak-factor)"
        ));
        DEFAULT_PEAK_FACTOR
    });
    let instances = a.app_instances.unwrap_or_else(|| {
        assumed.push("one application instance (set --app-instances)".into());
        1
    });
    if a.app_max_open.is_none() {
        assumed.push(
            "the application's pool size is unknown; client demand taken from PgBouncer's clients (set --app-max-open)"
                .into(),
        );
    }
    Inputs {
        cores: i64::from(cores.max(1)),
        // An SSD serves several requests at once; the wiki's formula was measured on disks, so
        // count it as two spindles rather than guess higher.
        spindles: if ssd { 2 } else { 1 },
        peak: if peak.is_finite() && peak >= 1.0 { peak } else { 1.0 },
        headroom: a
            .headroom
            .filter(|h| h.is_finite() && *h >= 1.0)
            .unwrap_or(DEFAULT_HEADROOM),
        instances: i64::from(instances.max(1)),
        app_max_open: a.app_max_open.map(i64::from),
        app_max_idle: a.app_max_idle.map(i64::from),
    }
}

/// Demand per database: mean busy servers plus mean waiting clients (Little's law on the
/// PgBouncer side), or, without PgBouncer, mean busy backends.
fn demands(m: &Measured, inp: &Inputs, assumed: &mut Vec<String>) -> Vec<Demand> {
    let factor = inp.peak * inp.headroom;
    let need = |x: f64| ((x * factor).ceil() as i64).max(1);
    let Some(b) = &m.pgbouncer else {
        let busy = m.postgres.busy_mean.unwrap_or_else(|| {
            assumed.push(format!(
                "PostgreSQL < 14 reports no active_time: demand is the peak of {} busy backends seen while sampling",
                m.postgres.busy_backends_peak
            ));
            m.postgres.busy_backends_peak as f64
        });
        return vec![Demand {
            name: "(all databases)".into(),
            users: 1,
            busy,
            waiting: 0.0,
            needed: need(busy),
        }];
    };
    let mut out = Vec::new();
    for s in b.stats.iter().filter(|s| s.database != "pgbouncer") {
        let pools: Vec<_> = b.user_pools().filter(|p| p.database == s.database).collect();
        if pools.is_empty() && s.xact_rate == 0.0 {
            continue;
        }
        // In session mode a client holds its server for the whole session, not a transaction.
        let session = pools.iter().any(|p| p.pool_mode == "session");
        let (busy, waiting) = if session {
            let active: i64 = pools.iter().map(|p| p.cl_active).sum();
            let waiting: i64 = pools.iter().map(|p| p.cl_waiting_peak).sum();
            (active as f64, waiting as f64)
        } else {
            (s.busy_servers, s.waiting_clients)
        };
        out.push(Demand {
            name: s.database.clone(),
            users: i64::try_from(pools.len()).unwrap_or(1).max(1),
            busy,
            waiting,
            needed: need(busy + waiting),
        });
    }
    out
}

/// Beyond cores × 2 + spindles, more connections queue inside PostgreSQL instead of adding
/// throughput: scale every database's need down to that bound.
fn cap_to_useful(demands: &mut [Demand], useful: i64, findings: &mut Vec<Finding>) {
    let total: i64 = demands.iter().map(|d| d.needed).sum();
    if total <= useful || total == 0 {
        return;
    }
    findings.push(
        Finding::new(
            Severity::Warning,
            "database host",
            format!(
                "measured demand needs {total} busy connections, but the host can work on about {useful} at once \
             (cores × 2 + spindles); pools are capped there: shorten transactions or add cores"
            ),
        )
        .with_value(total as f64),
    );
    for d in demands.iter_mut() {
        d.needed = ((d.needed * useful) / total).max(1);
    }
}

/// Server connections the pools can hold: per database, per-pool size and one reserve.
struct Sizing {
    pool: Vec<i64>,
    reserve: i64,
    trimmed: bool,
}

impl Sizing {
    fn new(demands: &[Demand]) -> Sizing {
        let pool: Vec<i64> = demands.iter().map(Demand::per_pool).collect();
        let default = pool.iter().copied().max().unwrap_or(1);
        Sizing {
            pool,
            // A fifth of the pool for bursts, 1 to 5: enough to absorb a spike, too few to hide a leak.
            reserve: ceil_div(default, 5).clamp(1, 5),
            trimmed: false,
        }
    }

    fn default_pool(&self) -> i64 {
        self.pool.iter().copied().max().unwrap_or(1)
    }

    fn capacity(&self, demands: &[Demand]) -> i64 {
        (demands.iter().zip(&self.pool))
            .map(|(d, p)| d.users.max(1) * (p + self.reserve))
            .sum()
    }

    /// Shrinks reserve, then pools, until every pool at full size fits the server budget.
    fn fit(&mut self, demands: &[Demand], budget: i64) {
        if self.capacity(demands) <= budget {
            return;
        }
        self.trimmed = true;
        self.reserve = 0;
        let total = self.capacity(demands);
        if total <= budget {
            return;
        }
        for p in &mut self.pool {
            *p = ((*p * budget) / total).max(1);
        }
    }
}

fn bypass_connections(m: &Measured) -> i64 {
    match &m.pgbouncer {
        Some(b) => {
            let via_bouncer: i64 = b.user_pools().map(|p| p.server_connections()).sum();
            (m.postgres.client_backends - via_bouncer).max(0)
        }
        None => 0,
    }
}

/// What the current PgBouncer configuration allows at most, over the pools seen.
fn configured_capacity(m: &Measured) -> Option<i64> {
    let b = m.pgbouncer.as_ref()?;
    let global_db_max = b.setting_i64("max_db_connections").unwrap_or(0);
    let mut total = 0;
    for db in b.databases.iter().filter(|d| d.name != "pgbouncer") {
        let users = i64::try_from(b.user_pools().filter(|p| p.database == db.name).count())
            .unwrap_or(1)
            .max(1);
        let mut cap = users * (db.pool_size + db.reserve_pool);
        for limit in [db.max_connections, global_db_max] {
            if limit > 0 {
                cap = cap.min(limit);
            }
        }
        total += cap;
    }
    Some(total)
}

fn bouncer_findings(m: &Measured, d: &Derived, demands: &[Demand]) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(b) = &m.pgbouncer else {
        return out;
    };
    if let Some(cap) = d.configured_pool_capacity {
        if cap + d.bypass_connections > d.usable_connections {
            out.push(
                Finding::new(
                    Severity::Critical,
                    "pgbouncer pools",
                    format!(
                        "the configured pools can open {cap} server connections, plus {} that bypass PgBouncer, \
                     but PostgreSQL allows {} (max_connections {} − {} reserved): logins will fail at peak",
                        d.bypass_connections,
                        d.usable_connections,
                        m.postgres.max_connections,
                        m.postgres.reserved_connections
                    ),
                )
                .with_value(cap as f64),
            );
        }
    }
    for p in b.user_pools() {
        let stats = b.stats.iter().find(|s| s.database == p.database);
        let avg_wait = stats.map_or(0.0, |s| s.avg_wait_seconds);
        if p.cl_waiting_peak > 0 || p.maxwait_seconds_peak > 0.0 || avg_wait > 0.0005 {
            out.push(
                Finding::new(
                    Severity::Warning,
                    format!("pool {}/{}", p.database, p.user),
                    format!(
                        "clients wait for a server: up to {} waiting, longest wait {}, mean wait {} per transaction",
                        p.cl_waiting_peak,
                        secs(p.maxwait_seconds_peak),
                        secs(avg_wait)
                    ),
                )
                .with_value(p.cl_waiting_peak as f64),
            );
        }
    }
    for db in b.databases.iter().filter(|x| x.name != "pgbouncer") {
        let busy = demands.iter().find(|x| x.name == db.name).map_or(0.0, |x| x.busy);
        let open: i64 = b
            .user_pools()
            .filter(|p| p.database == db.name)
            .map(|p| p.server_connections())
            .sum();
        if db.pool_size >= 4 && busy < 0.25 * db.pool_size as f64 && open * 2 >= db.pool_size {
            out.push(Finding::new(
                Severity::Warning,
                format!("database {}", db.name),
                format!(
                    "pool mostly idle: {open} server connections open for a mean of {} busy (pool_size {})",
                    num(busy),
                    db.pool_size
                ),
            ));
        }
    }
    out
}

fn rec(
    scope: Scope,
    setting: &str,
    current: Option<String>,
    recommended: impl ToString,
    reason: String,
) -> Recommendation {
    Recommendation {
        scope,
        setting: setting.into(),
        current,
        recommended: recommended.to_string(),
        reason,
    }
}

fn pgbouncer_recs(
    m: &Measured,
    inp: &Inputs,
    d: &Derived,
    demands: &[Demand],
    s: &Sizing,
    findings: &mut Vec<Finding>,
) -> Vec<Recommendation> {
    let b = m.pgbouncer.as_ref();
    let cur = |k: &str| b.and_then(|b| b.setting(k)).map(str::to_string);
    let default_pool = s.default_pool();
    let busiest = demands.iter().max_by(|x, y| x.needed.cmp(&y.needed));
    let pool_reason = match busiest {
        Some(x) => format!(
            "{}: {} busy + {} waiting on average (Little's law: Δxact_time and Δwait_time / window) × peak {} × headroom {} = {} over {} pool(s){}{}",
            x.name, num(x.busy), num(x.waiting), num(inp.peak), num(inp.headroom), x.needed, x.users,
            if d.needed > d.useful_connections { format!(", capped at {} useful connections", d.useful_connections) } else { String::new() },
            if s.trimmed { format!(", trimmed to fit {} server connections PostgreSQL can give", d.server_budget) } else { String::new() },
        ),
        None => "no traffic measured; PgBouncer's default".into(),
    };
    let clients = client_demand(m, inp);
    let max_client = round_up(((clients as f64) * inp.headroom).ceil() as i64, 10).max(100);
    let pool_total: i64 = demands
        .iter()
        .zip(&s.pool)
        .map(|(x, p)| x.users * (p + s.reserve))
        .sum();
    let max_db = demands
        .iter()
        .zip(&s.pool)
        .map(|(x, p)| x.users * p + s.reserve)
        .max()
        .unwrap_or(default_pool)
        .min(d.server_budget);
    if let Some(current) = b.and_then(|b| b.setting_i64("max_client_conn")) {
        if current < clients {
            findings.push(Finding::new(
                Severity::Warning,
                "max_client_conn",
                format!("{clients} client connections can be opened at peak but max_client_conn is {current}: logins beyond it fail"),
            ).with_value(current as f64));
        }
    }
    let mut out = vec![pool_mode_rec(m, findings)];
    out.push(rec(
        Scope::Pgbouncer,
        "default_pool_size",
        cur("default_pool_size"),
        default_pool,
        pool_reason,
    ));
    let warm = busiest.map_or(0, |x| {
        ((x.busy / x.users.max(1) as f64).ceil() as i64).min(default_pool)
    });
    out.push(rec(Scope::Pgbouncer, "min_pool_size", cur("min_pool_size"), warm,
        format!("keeps the mean of {warm} busy server connections per pool open, so a burst after a quiet spell does not pay for new logins")));
    out.push(rec(
        Scope::Pgbouncer,
        "reserve_pool_size",
        cur("reserve_pool_size"),
        s.reserve,
        if s.trimmed && s.reserve == 0 {
            "0: no server slots left for a reserve within max_connections".to_string()
        } else {
            format!("a fifth of default_pool_size {default_pool} (1 to 5): absorbs a burst without hiding a leak")
        },
    ));
    out.push(rec(Scope::Pgbouncer, "reserve_pool_timeout", cur("reserve_pool_timeout"), 3,
        "seconds a client waits before a reserve connection opens; 3 s is before most request timeouts, the 5 s default is not".into()));
    out.push(rec(
        Scope::Pgbouncer,
        "max_client_conn",
        cur("max_client_conn"),
        max_client,
        format!(
            "{clients} client connections at peak ({}) × headroom {}, rounded up to 10",
            clients_source(m, inp),
            num(inp.headroom)
        ),
    ));
    out.push(rec(Scope::Pgbouncer, "max_db_connections", cur("max_db_connections"), max_db,
        format!("bounds each database whatever users appear (pools are per user × database): its pools plus reserve, within the {} server connections PostgreSQL can give", d.server_budget)));
    out.push(rec(
        Scope::Pgbouncer,
        "max_user_connections",
        cur("max_user_connections"),
        0,
        "0 (no per-user limit): max_db_connections already bounds every database".into(),
    ));
    out.push(rec(
        Scope::Pgbouncer,
        "server_idle_timeout",
        cur("server_idle_timeout"),
        600,
        "seconds before an idle server connection closes: returns peak connections to PostgreSQL 10 min after the peak"
            .into(),
    ));
    out.push(rec(
        Scope::Pgbouncer,
        "server_lifetime",
        cur("server_lifetime"),
        3600,
        "seconds before a server connection is recycled: bounds backend memory growth and spreads reconnects".into(),
    ));
    out.push(rec(Scope::Pgbouncer, "query_wait_timeout", cur("query_wait_timeout"), 30,
        "seconds a client may queue for a server before it gets an error: fail fast, well before a 60 s request timeout".into()));
    out.push(rec(Scope::System, "ulimit -n (LimitNOFILE)", None, max_client + pool_total + FD_SLACK,
        format!("one descriptor per client ({max_client}) and per server connection ({pool_total}) plus {FD_SLACK} for listeners and logs")));
    out
}

fn pool_mode_rec(m: &Measured, findings: &mut Vec<Finding>) -> Recommendation {
    let b = m.pgbouncer.as_ref();
    let current = b.and_then(|b| b.setting("pool_mode")).map(str::to_string);
    let features = m.postgres.session_features.as_ref();
    let (mode, reason) = match features {
        Some(f) if !f.is_empty() => ("session", format!("pg_stat_statements shows session features ({}): they break when transactions of one client run on different servers", f.join(", "))),
        Some(_) => ("transaction", "no session features (LISTEN, session advisory locks, SET, PREPARE, temp tables, WITH HOLD) in pg_stat_statements: a server is needed only while a transaction runs".to_string()),
        None => ("transaction", "assumed: pg_stat_statements is not available to check for session features (LISTEN, advisory locks, SET, PREPARE, temp tables)".to_string()),
    };
    if current.as_deref() == Some("transaction") {
        if let Some(f) = features.filter(|f| !f.is_empty()) {
            findings.push(Finding::new(
                Severity::Warning,
                "pool_mode",
                format!(
                    "transaction pooling, but the workload uses session features: {}",
                    f.join(", ")
                ),
            ));
        }
        let prepared = b.and_then(|b| b.setting_i64("max_prepared_statements")).unwrap_or(0);
        let parameterized = m.postgres.parameterized_statements.unwrap_or(0);
        if parameterized > 0 && prepared == 0 {
            findings.push(Finding::new(Severity::Warning, "max_prepared_statements", format!(
                "{parameterized} parameterized statements in pg_stat_statements, transaction pooling and max_prepared_statements = 0: \
                 drivers that prepare by name (JDBC, pgx) fail with 'prepared statement does not exist'; \
                 set max_prepared_statements (PgBouncer ≥ 1.21) or turn off named prepares in the driver"
            )).with_value(parameterized as f64));
        }
    }
    rec(Scope::Pgbouncer, "pool_mode", current, mode, reason)
}

/// Client connections the application can open at peak.
fn client_demand(m: &Measured, inp: &Inputs) -> i64 {
    let seen: i64 = m
        .pgbouncer
        .as_ref()
        .map_or(0, |b| b.user_pools().map(|p| p.cl_active + p.cl_waiting_peak).sum());
    match inp.app_max_open {
        Some(open) => (inp.instances * open).max(seen),
        None => ((seen as f64) * inp.peak).ceil() as i64,
    }
}

fn clients_source(m: &Measured, inp: &Inputs) -> String {
    match inp.app_max_open {
        Some(open) => format!("{} instances × max open {open}", inp.instances),
        None if m.pgbouncer.is_some() => format!("clients seen in SHOW POOLS × peak {}", num(inp.peak)),
        None => "no PgBouncer and no --app-max-open: PgBouncer's minimum".into(),
    }
}

fn app_recs(inp: &Inputs, demands: &[Demand], s: &Sizing) -> Vec<Recommendation> {
    let servers: i64 = demands.iter().zip(&s.pool).map(|(d, p)| d.users * p).sum();
    let open = ceil_div(servers, inp.instances).max(2);
    let idle = ceil_div(open, 2);
    vec![
        rec(Scope::Application, "max open connections per instance (MaxOpenConns)", inp.app_max_open.map(|v| v.to_string()), open,
            format!("{servers} server connections shared by {} instances: more only queue inside PgBouncer, where the application's own pool metrics cannot see the wait", inp.instances)),
        rec(Scope::Application, "max idle connections per instance (MaxIdleConns)", inp.app_max_idle.map(|v| v.to_string()), idle,
            "half of max open: keeps enough warm for the next burst without holding client slots when quiet".into()),
        rec(Scope::Application, "connection lifetime (ConnMaxLifetimeMilliseconds)", None, 3_600_000,
            "1 h: clients reconnect gradually, so a PgBouncer restart or DNS change is picked up within the hour".into()),
    ]
}

fn max_connections_rec(m: &Measured, d: &Derived, wanted_servers: i64, findings: &mut Vec<Finding>) -> Recommendation {
    let pg = &m.postgres;
    let needed = wanted_servers + d.bypass_connections + ADMIN_MARGIN + pg.reserved_connections;
    let current = Some(pg.max_connections.to_string());
    if needed <= pg.max_connections {
        return rec(Scope::Postgresql, "max_connections", current, pg.max_connections, format!(
            "no change: pools ({wanted_servers}) + bypassing connections ({}) + admin margin ({ADMIN_MARGIN}) + reserved ({}) = {needed} fit",
            d.bypass_connections, pg.reserved_connections));
    }
    let target = round_up(needed, 10);
    findings.push(Finding::new(Severity::Warning, "max_connections", format!(
        "the pools the measured load needs ({wanted_servers} server connections) do not fit max_connections {}; pools were trimmed. Raise it to {target}",
        pg.max_connections)).with_value(needed as f64));
    rec(Scope::Postgresql, "max_connections", current, target, format!(
        "pools ({wanted_servers}) + bypassing connections ({}) + admin margin ({ADMIN_MARGIN}) + reserved ({}) = {needed}, rounded up to 10 (needs a restart)",
        d.bypass_connections, pg.reserved_connections))
}

fn overrides(m: &Measured, demands: &[Demand], s: &Sizing) -> Vec<DatabaseOverride> {
    if m.pgbouncer.is_none() {
        return Vec::new();
    }
    let default = s.default_pool();
    (demands.iter().zip(&s.pool))
        .filter(|(_, p)| **p != default)
        .map(|(d, p)| DatabaseOverride {
            name: d.name.clone(),
            pool_size: *p,
            reason: format!(
                "{} needs {} per pool ({} busy + {} waiting), less than default_pool_size {default}",
                d.name,
                p,
                num(d.busy),
                num(d.waiting)
            ),
        })
        .collect()
}

fn ceil_div(a: i64, b: i64) -> i64 {
    if b <= 0 {
        return a;
    }
    (a + b - 1).div_euclid(b)
}

fn round_up(v: i64, step: i64) -> i64 {
    ceil_div(v, step) * step
}

/// A figure for a reason text: two significant decimals at most.
pub fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Seconds as a reason text spells them: "250 ms", "1.5 s".
pub fn secs(v: f64) -> String {
    if v < 1.0 {
        format!("{} ms", num(v * 1000.0))
    } else {
        format!("{} s", num(v))
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
