//! The sizing model: measured load in, recommended settings with their reasons out. Pure (no
//! I/O), so every rule is unit-tested with fixture numbers. The manual (docs/src/pool-advise.md) explains each rule.

use crate::report::finding::{Finding, Severity};

use super::findings::bouncer_findings;
use super::load::{keep_configured_when_idle, too_little_load, PGBOUNCER_DEFAULT_POOL};
use super::recommend::Ctx;
use super::{Advice, Assumptions, Derived, Measured};

pub const DEFAULT_CORES: u32 = 4;
pub const DEFAULT_PEAK_FACTOR: f64 = 1.0;
pub const DEFAULT_HEADROOM: f64 = 1.25;
/// Server slots kept free for psql, dbtool and monitoring beyond the superuser reserve.
pub const ADMIN_MARGIN: i64 = 3;
/// PgBouncer needs a descriptor per client and per server plus its own listeners and logs.
pub const FD_SLACK: i64 = 10;

/// The inputs after defaults: what the model computes with.
#[derive(Clone, Debug)]
pub(super) struct Inputs {
    pub(super) cores: i64,
    pub(super) spindles: i64,
    pub(super) peak: f64,
    pub(super) headroom: f64,
    pub(super) instances: i64,
    pub(super) app_max_open: Option<i64>,
    pub(super) app_max_idle: Option<i64>,
}

/// Demand on one PgBouncer database (or, without PgBouncer, on the whole server).
#[derive(Clone, Debug)]
pub(super) struct Demand {
    pub(super) name: String,
    /// Pools (users) seen for this database; PgBouncer pools are per user × database.
    pub(super) users: i64,
    pub(super) busy: f64,
    pub(super) waiting: f64,
    /// Connections wanted before the host cap: ceil((busy + waiting) × peak × headroom).
    pub(super) wanted: i64,
    /// After the host cap.
    pub(super) needed: i64,
    /// Where busy and waiting come from, for the reason text.
    pub(super) source: &'static str,
    /// No load measured: the configured size is kept, not capped to the host.
    pub(super) kept: bool,
}

impl Demand {
    pub(super) fn per_pool(&self) -> i64 {
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
    let ctx = Ctx {
        m,
        inp: &inp,
        d: &derived,
        demands: &demands,
        s: &sizing,
    };
    let (recs, more) = ctx.recommendations(wanted_servers);
    findings.extend(more);
    let overrides = ctx.overrides();
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
            "the application's pool size is unknown: client demand is the connections seen while sampling (set --app-max-open)"
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
        let source = if m.postgres.busy_mean.is_some() {
            "Little's law: Δ(active_time + idle_in_transaction_time) / window"
        } else {
            "peak of busy backends polled"
        };
        let mut all = Demand {
            name: "(all databases)".into(),
            users: 1,
            busy,
            waiting: 0.0,
            wanted: need(busy),
            needed: need(busy),
            source,
            kept: false,
        };
        if let Some(why) = too_little_load(m) {
            assumed.push(format!(
                "{why}; pool sizes kept at PgBouncer's default {PGBOUNCER_DEFAULT_POOL}; sample at peak load"
            ));
            all.source = "too little load to measure: PgBouncer's default size is kept";
            all.wanted = PGBOUNCER_DEFAULT_POOL;
            all.needed = PGBOUNCER_DEFAULT_POOL;
            all.kept = true;
        }
        return vec![all];
    };
    let mut out = Vec::new();
    for s in b.stats.iter().filter(|s| s.database != "pgbouncer") {
        let pools: Vec<_> = b.user_pools().filter(|p| p.database == s.database).collect();
        if pools.is_empty() && s.xact_rate == 0.0 {
            continue;
        }
        // In session mode a client holds its server for the whole session, not a transaction.
        let session = pools.iter().any(|p| p.pool_mode == "session");
        let (busy, waiting, source) = if session {
            let active: i64 = pools.iter().map(|p| p.cl_active).sum();
            let waiting: i64 = pools.iter().map(|p| p.cl_waiting_peak).sum();
            (
                active as f64,
                waiting as f64,
                "session pooling: clients holding a server + peak cl_waiting",
            )
        } else {
            (
                s.busy_servers,
                s.waiting_clients,
                "Little's law: Δ(total_xact_time − total_wait_time) and Δtotal_wait_time / window",
            )
        };
        out.push(Demand {
            name: s.database.clone(),
            users: i64::try_from(pools.len()).unwrap_or(1).max(1),
            busy,
            waiting,
            wanted: need(busy + waiting),
            needed: need(busy + waiting),
            source,
            kept: false,
        });
    }
    keep_configured_when_idle(m, b, &mut out, assumed);
    out
}

/// Beyond cores × 2 + spindles, more connections queue inside PostgreSQL instead of adding
/// throughput: scale every database's need down to that bound.
fn cap_to_useful(demands: &mut [Demand], useful: i64, findings: &mut Vec<Finding>) {
    let total: i64 = demands.iter().map(|d| d.needed).sum();
    if total <= useful || total == 0 || demands.iter().any(|d| d.kept) {
        return;
    }
    findings.push(
        Finding::new(
            Severity::Warning,
            "database host",
            format!(
                "measured demand needs {total} connections, but the host can work on about {useful} at once \
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
pub(super) struct Sizing {
    pub(super) pool: Vec<i64>,
    pub(super) reserve: i64,
    pub(super) trimmed: bool,
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

    pub(super) fn default_pool(&self) -> i64 {
        self.pool.iter().copied().max().unwrap_or(1)
    }

    pub(super) fn capacity(&self, demands: &[Demand]) -> i64 {
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

pub(super) fn ceil_div(a: i64, b: i64) -> i64 {
    if b <= 0 {
        return a;
    }
    (a + b - 1).div_euclid(b)
}

pub(super) fn round_up(v: i64, step: i64) -> i64 {
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
