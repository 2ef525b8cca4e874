//! Turning the sized pools into settings: each recommended value with the reason that
//! produced it, plus the findings that come from comparing them with the current ones.

use crate::report::finding::{Finding, Severity};

use super::model::{ceil_div, num, round_up, Demand, Inputs, Sizing, ADMIN_MARGIN, FD_SLACK};
use super::{DatabaseOverride, Derived, Measured, Recommendation, Scope};

/// PgBouncer's own default max_client_conn; never recommend less.
const MIN_CLIENT_CONN: i64 = 100;

/// Everything the recommendations are computed from.
pub(super) struct Ctx<'a> {
    pub m: &'a Measured,
    pub inp: &'a Inputs,
    pub d: &'a Derived,
    pub demands: &'a [Demand],
    pub s: &'a Sizing,
}

fn rec(scope: Scope, setting: &str, current: Option<String>, value: impl ToString, reason: String) -> Recommendation {
    Recommendation {
        scope,
        setting: setting.into(),
        current,
        recommended: value.to_string(),
        reason,
    }
}

impl Ctx<'_> {
    /// Every recommendation, in the order the table shows them, and the findings they raise.
    pub fn recommendations(&self, wanted_servers: i64) -> (Vec<Recommendation>, Vec<Finding>) {
        let mut findings = Vec::new();
        let mut out = vec![self.pool_mode(&mut findings)];
        out.extend(self.pool_sizes());
        out.extend(self.limits(&mut findings));
        out.extend(self.timeouts());
        out.extend(self.application());
        out.push(self.max_connections(wanted_servers, &mut findings));
        (out, findings)
    }

    fn current(&self, key: &str) -> Option<String> {
        self.m.pgbouncer.as_ref()?.setting(key).map(str::to_string)
    }

    fn busiest(&self) -> Option<&Demand> {
        self.demands.iter().max_by_key(|x| x.needed)
    }

    /// Server connections the pools hold at full size, reserve included.
    fn pool_total(&self) -> i64 {
        (self.demands.iter().zip(&self.s.pool))
            .map(|(x, p)| x.users * (p + self.s.reserve))
            .sum()
    }

    fn pool_sizes(&self) -> Vec<Recommendation> {
        let (d, s, inp) = (self.d, self.s, self.inp);
        let default_pool = s.default_pool();
        let busiest = self.busiest();
        let reason = match busiest {
            Some(x) if x.kept => format!(
                "too little load in the sampled window to measure, so no basis to change it: {default_pool} kept (within the {} server connections PostgreSQL can give); sample at peak load",
                d.server_budget
            ),
            Some(x) => {
                let mut r = format!(
                    "{}: {} busy + {} waiting on average ({}) × peak {} × headroom {} = {} connections over {} pool(s)",
                    x.name,
                    num(x.busy),
                    num(x.waiting),
                    x.source,
                    num(inp.peak),
                    num(inp.headroom),
                    x.wanted,
                    x.users
                );
                if d.needed > d.useful_connections {
                    r.push_str(&format!(
                        "; all databases together want {}, the host keeps about {} busy (cores × 2 + spindles): scaled to {default_pool}",
                        d.needed, d.useful_connections
                    ));
                }
                if s.trimmed {
                    r.push_str(&format!(
                        ", trimmed to fit {} server connections PostgreSQL can give",
                        d.server_budget
                    ));
                }
                r
            }
            None => "no traffic measured: PgBouncer's minimum".into(),
        };
        let warm = busiest
            .map_or(0, |x| (x.busy / x.users.max(1) as f64).ceil() as i64)
            .min(default_pool);
        // Nothing measured: the current min and reserve stay, as the pool size does.
        let kept = busiest.is_some_and(|x| x.kept);
        let keep = |key: &str, computed: i64| {
            self.current(key)
                .filter(|_| kept)
                .and_then(|c| c.trim().parse::<i64>().ok())
                .unwrap_or(computed)
        };
        let (warm, reserve) = (keep("min_pool_size", warm), keep("reserve_pool_size", s.reserve));
        let reserve_reason = if kept {
            format!("{reserve}: too little load in the window to change it; sample at peak load")
        } else if s.trimmed && s.reserve == 0 {
            "0: no server slots are left for a reserve within max_connections".to_string()
        } else {
            format!("a fifth of default_pool_size {default_pool}, 1 to 5: absorbs a burst without hiding a leak")
        };
        vec![
            rec(
                Scope::Pgbouncer,
                "default_pool_size",
                self.current("default_pool_size"),
                default_pool,
                reason,
            ),
            rec(
                Scope::Pgbouncer,
                "min_pool_size",
                self.current("min_pool_size"),
                warm,
                if kept {
                    format!("{warm}: too little load in the window to change it; sample at peak load")
                } else {
                    format!("keeps the mean of {warm} busy server connections per pool open, so a burst after a quiet spell does not wait for new logins")
                },
            ),
            rec(
                Scope::Pgbouncer,
                "reserve_pool_size",
                self.current("reserve_pool_size"),
                reserve,
                reserve_reason,
            ),
        ]
    }

    /// Client connections the application can open at peak, and where that figure comes from.
    fn client_demand(&self) -> (i64, String) {
        let inp = self.inp;
        // Without PgBouncer the application's connections are PostgreSQL's client backends.
        let (seen, where_seen) = match self.m.pgbouncer.as_ref() {
            Some(b) => (
                b.user_pools().map(|p| p.cl_active + p.cl_waiting_peak).sum(),
                "clients seen in SHOW POOLS",
            ),
            None => (self.m.postgres.client_backends, "client backends seen in PostgreSQL"),
        };
        match inp.app_max_open {
            Some(open) if inp.instances * open >= seen => (
                inp.instances * open,
                format!("{} instances × max open {open}", inp.instances),
            ),
            Some(_) => (seen, format!("{where_seen}, more than the application's pools allow")),
            None => (
                ((seen as f64) * inp.peak).ceil() as i64,
                format!("{where_seen} × peak {}", num(inp.peak)),
            ),
        }
    }

    fn limits(&self, findings: &mut Vec<Finding>) -> Vec<Recommendation> {
        let (d, s) = (self.d, self.s);
        let (clients, source) = self.client_demand();
        let max_client = round_up(((clients as f64) * self.inp.headroom).ceil() as i64, 10).max(MIN_CLIENT_CONN);
        if let Some(current) = self.m.pgbouncer.as_ref().and_then(|b| b.setting_i64("max_client_conn")) {
            if current < clients {
                findings.push(
                    Finding::new(
                        Severity::Warning,
                        "max_client_conn",
                        format!("{clients} client connections can be opened at peak ({source}) but max_client_conn is {current}: logins beyond it fail"),
                    )
                    .with_value(current as f64),
                );
            }
        }
        let max_db = (self.demands.iter().zip(&s.pool))
            .map(|(x, p)| x.users * p + s.reserve)
            .max()
            .unwrap_or(1)
            .min(d.server_budget);
        let pool_total = self.pool_total();
        vec![
            rec(Scope::Pgbouncer, "max_client_conn", self.current("max_client_conn"), max_client, format!(
                "{clients} client connections at peak ({source}) × headroom {}, rounded up to 10, at least {MIN_CLIENT_CONN}",
                num(self.inp.headroom)
            )),
            rec(Scope::Pgbouncer, "max_db_connections", self.current("max_db_connections"), max_db, format!(
                "bounds each database however many users appear (pools are per user × database): the busiest database's pools plus reserve, within the {} server connections PostgreSQL can give",
                d.server_budget
            )),
            rec(Scope::Pgbouncer, "max_user_connections", self.current("max_user_connections"), 0,
                "0 (no per-user limit): max_db_connections already bounds every database".into()),
            rec(Scope::System, "ulimit -n (LimitNOFILE)", None, max_client + pool_total + FD_SLACK, format!(
                "PgBouncer needs a descriptor per client ({max_client}) and per server connection ({pool_total}) plus {FD_SLACK} for listeners and logs"
            )),
        ]
    }

    fn timeouts(&self) -> Vec<Recommendation> {
        vec![
            rec(Scope::Pgbouncer, "reserve_pool_timeout", self.current("reserve_pool_timeout"), 3,
                "seconds a client waits before a reserve connection opens: 3 s comes before most request timeouts, the 5 s default does not".into()),
            rec(Scope::Pgbouncer, "server_idle_timeout", self.current("server_idle_timeout"), 600,
                "seconds before an idle server connection closes: gives peak connections back to PostgreSQL 10 min after the peak".into()),
            rec(Scope::Pgbouncer, "server_lifetime", self.current("server_lifetime"), 3600,
                "seconds before a server connection is recycled: bounds backend memory growth and spreads reconnects".into()),
            rec(Scope::Pgbouncer, "query_wait_timeout", self.current("query_wait_timeout"), 30,
                "seconds a client may queue for a server before it gets an error: fail fast, well before a 60 s request timeout (default 120)".into()),
        ]
    }

    fn pool_mode(&self, findings: &mut Vec<Finding>) -> Recommendation {
        let (m, b) = (self.m, self.m.pgbouncer.as_ref());
        let current = self.current("pool_mode");
        let features = m.postgres.session_features.as_ref();
        // Without load no feature could show: keep what is configured.
        let unmeasured = self.demands.iter().any(|d| d.kept);
        let kept = current.clone().unwrap_or_else(|| "transaction".to_string());
        let (mode, reason) = match features {
            Some(f) if f.is_empty() && unmeasured => (
                kept.as_str(),
                "too little load in the window to judge session features: the current mode is kept; sample at peak load".to_string(),
            ),
            Some(f) if !f.is_empty() => ("session", format!(
                "pg_stat_statements shows session features used by the pooled users during the window ({}): they break when one client's transactions run on different servers",
                f.join(", ")
            )),
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
            // Only PgBouncer 1.21+ counts Parse messages (and has max_prepared_statements).
            let prepared = b.and_then(|b| b.setting_i64("max_prepared_statements")).unwrap_or(0);
            let parses: f64 = b.map_or(0.0, |b| b.stats.iter().filter_map(|s| s.parse_rate).sum());
            if parses > 0.0 && prepared == 0 {
                findings.push(Finding::new(Severity::Warning, "max_prepared_statements", format!(
                    "clients prepare {} statements/s by protocol, under transaction pooling with max_prepared_statements = 0: \
                     a statement prepared on one server is missing on the next ('prepared statement does not exist'); \
                     set max_prepared_statements (e.g. 200) or turn off named prepares in the driver",
                    num(parses)
                )).with_value(parses));
            }
        }
        rec(Scope::Pgbouncer, "pool_mode", current, mode, reason)
    }

    fn application(&self) -> Vec<Recommendation> {
        let inp = self.inp;
        let servers: i64 = (self.demands.iter().zip(&self.s.pool)).map(|(d, p)| d.users * p).sum();
        let open = ceil_div(servers, inp.instances).max(2);
        let idle = ceil_div(open, 2);
        vec![
            rec(Scope::Application, "max open connections per instance (MaxOpenConns)", inp.app_max_open.map(|v| v.to_string()), open, format!(
                "{servers} server connections shared by {} instance(s): more only queue inside PgBouncer, where the application's own pool metrics cannot see the wait",
                inp.instances
            )),
            rec(Scope::Application, "max idle connections per instance (MaxIdleConns)", inp.app_max_idle.map(|v| v.to_string()), idle,
                "half of max open: keeps enough warm for the next burst without holding client slots when quiet".into()),
            rec(Scope::Application, "connection lifetime (ConnMaxLifetimeMilliseconds)", None, 3_600_000,
                "1 h: clients reconnect gradually, so a PgBouncer restart or DNS change is picked up within the hour".into()),
        ]
    }

    fn max_connections(&self, wanted_servers: i64, findings: &mut Vec<Finding>) -> Recommendation {
        let (pg, d) = (&self.m.postgres, self.d);
        let needed = wanted_servers + d.bypass_connections + ADMIN_MARGIN + pg.reserved_connections;
        let sum = format!(
            "pools ({wanted_servers}) + connections bypassing PgBouncer ({}) + admin margin ({ADMIN_MARGIN}) + reserved ({}) = {needed}",
            d.bypass_connections, pg.reserved_connections
        );
        let current = Some(pg.max_connections.to_string());
        if self.demands.iter().any(|x| x.kept) {
            return rec(
                Scope::Postgresql,
                "max_connections",
                current,
                pg.max_connections,
                "no change: no load in the sampled window to size it by".into(),
            );
        }
        if needed <= pg.max_connections {
            return rec(
                Scope::Postgresql,
                "max_connections",
                current,
                pg.max_connections,
                format!("no change: {sum} fit"),
            );
        }
        let target = round_up(needed, 10);
        findings.push(Finding::new(Severity::Warning, "max_connections", format!(
            "the pools the measured load needs ({wanted_servers} server connections) do not fit max_connections {}: pools were trimmed; raise it to {target}",
            pg.max_connections
        )).with_value(needed as f64));
        rec(
            Scope::Postgresql,
            "max_connections",
            current,
            target,
            format!("{sum}, rounded up to 10 (needs a restart)"),
        )
    }

    /// `[databases]` pool_size for databases that need fewer than default_pool_size.
    pub fn overrides(&self) -> Vec<DatabaseOverride> {
        if self.m.pgbouncer.is_none() {
            return Vec::new();
        }
        let default = self.s.default_pool();
        (self.demands.iter().zip(&self.s.pool))
            .filter(|(_, p)| **p != default)
            .map(|(d, p)| DatabaseOverride {
                name: d.name.clone(),
                pool_size: *p,
                reason: format!(
                    "{} needs {p} per pool ({} busy + {} waiting), less than default_pool_size {default}",
                    d.name,
                    num(d.busy),
                    num(d.waiting)
                ),
            })
            .collect()
    }
}
