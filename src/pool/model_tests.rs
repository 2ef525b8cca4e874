//! Fixture numbers in, recommendations and findings out.

use super::*;
use crate::pool::{BouncerFigures, DatabaseFigures, PgFigures, PoolFigures, StatsFigures};

fn pg(max_connections: i64, client_backends: i64) -> PgFigures {
    PgFigures {
        server_version_num: 150000,
        max_connections,
        reserved_connections: 3,
        client_backends,
        busy_backends_peak: 0,
        xact_rate: Some(900.0),
        busy_mean: Some(40.0),
        session_features: Some(Vec::new()),
    }
}

fn pool(db: &str, user: &str, cl_active: i64, waiting: i64, sv_active: i64, maxwait: f64) -> PoolFigures {
    PoolFigures {
        database: db.into(),
        user: user.into(),
        cl_active,
        cl_waiting: waiting,
        cl_waiting_peak: waiting,
        sv_active,
        maxwait_seconds_peak: maxwait,
        pool_mode: "transaction".into(),
        ..Default::default()
    }
}

fn database(name: &str, pool_size: i64) -> DatabaseFigures {
    DatabaseFigures {
        name: name.into(),
        database: name.into(),
        pool_size,
        ..Default::default()
    }
}

fn stats(db: &str, busy: f64, waiting: f64, avg_wait: f64) -> StatsFigures {
    StatsFigures {
        database: db.into(),
        xact_rate: 900.0,
        busy_servers: busy,
        waiting_clients: waiting,
        avg_wait_seconds: avg_wait,
        ..Default::default()
    }
}

fn bouncer(
    config: &[(&str, &str)],
    pools: Vec<PoolFigures>,
    dbs: Vec<DatabaseFigures>,
    stats: Vec<StatsFigures>,
) -> BouncerFigures {
    BouncerFigures {
        version: Some("1.18.0".into()),
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        pools,
        databases: dbs,
        stats,
    }
}

fn recommended(a: &Advice, setting: &str) -> i64 {
    a.get(setting)
        .and_then(|r| r.recommended.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {setting} in {:#?}", a.recommendations))
}

fn has(a: &Advice, severity: Severity, object: &str) -> bool {
    a.findings
        .iter()
        .any(|f| f.severity == severity && f.object.contains(object))
}

/// The classic outage: 3 app nodes × 80 open connections, PgBouncer caps the database at 47,
/// Postgres allows 100. Clients queue and logins fail.
fn classic() -> (Measured, Assumptions) {
    let config = [
        ("pool_mode", "transaction"),
        ("default_pool_size", "47"),
        ("max_client_conn", "100"),
    ];
    let m = Measured {
        window_seconds: 30.0,
        postgres: pg(100, 47 + 5),
        pgbouncer: Some(bouncer(
            &config,
            vec![pool("mattermost", "mmuser", 100, 35, 47, 2.5)],
            vec![database("mattermost", 47)],
            vec![stats("mattermost", 46.5, 30.0, 0.4)],
        )),
    };
    let a = Assumptions {
        db_cores: Some(16),
        ssd: Some(true),
        app_instances: Some(3),
        app_max_open: Some(80),
        app_max_idle: Some(40),
        peak_factor: Some(1.0),
        headroom: Some(1.25),
    };
    (m, a)
}

#[test]
fn classic_outage_waiting_clients_and_too_small_max_client_conn() {
    let (m, a) = classic();
    let advice = advise(&m, &a);
    // 46.5 busy + 30 waiting = 76.5 × 1.25 = 96, capped at 16 × 2 + 2 = 34 useful connections.
    assert_eq!(advice.derived.needed, 96);
    assert_eq!(advice.derived.useful_connections, 34);
    assert_eq!(recommended(&advice, "default_pool_size"), 34);
    assert_eq!(advice.derived.bypass_connections, 5);
    // 3 × 80 = 240 clients × 1.25 = 300.
    assert_eq!(recommended(&advice, "max_client_conn"), 300);
    assert_eq!(recommended(&advice, "reserve_pool_size"), 5);
    assert_eq!(
        recommended(&advice, "max open connections per instance (MaxOpenConns)"),
        12
    );
    assert!(
        has(&advice, Severity::Warning, "pool mattermost/mmuser"),
        "{:#?}",
        advice.findings
    );
    assert!(has(&advice, Severity::Warning, "max_client_conn"));
    // 47 servers already exceed the 34 the host can keep busy: the finding says so.
    assert!(advice
        .findings
        .iter()
        .any(|f| f.message.contains("the queue is the host's")));
    assert!(has(&advice, Severity::Warning, "database host"));
    assert_eq!(advice.status(), Severity::Warning);
    assert_eq!(
        recommended(&advice, "max_connections"),
        100,
        "34 + 5 reserve + 5 bypass + 3 + 3 fit in 100"
    );
    for r in &advice.recommendations {
        assert!(!r.reason.is_empty(), "{} has no reason", r.setting);
    }
    let reason = &advice
        .get("default_pool_size")
        .map(|r| r.reason.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("46.5 busy")
            && reason.contains("30 waiting")
            && reason.contains("want 96, the host keeps about 34 busy"),
        "{reason}"
    );
}

#[test]
fn pools_that_can_exceed_max_connections_are_critical() {
    let (mut m, a) = classic();
    if let Some(b) = m.pgbouncer.as_mut() {
        // Two users on one database: two pools of 60, 120 servers against 97 usable.
        b.pools.push(pool("mattermost", "report", 1, 0, 1, 0.0));
        b.databases = vec![database("mattermost", 60)];
    }
    let advice = advise(&m, &a);
    assert_eq!(advice.derived.configured_pool_capacity, Some(120));
    assert!(
        has(&advice, Severity::Critical, "pgbouncer pools"),
        "{:#?}",
        advice.findings
    );
    assert_eq!(advice.status(), Severity::Critical);
}

#[test]
fn max_db_connections_bounds_the_configured_capacity() {
    let (mut m, a) = classic();
    if let Some(b) = m.pgbouncer.as_mut() {
        b.pools.push(pool("mattermost", "report", 1, 0, 1, 0.0));
        b.databases = vec![database("mattermost", 60)];
        b.config.insert("max_db_connections".into(), "50".into());
    }
    let advice = advise(&m, &a);
    assert_eq!(advice.derived.configured_pool_capacity, Some(50));
    assert!(!has(&advice, Severity::Critical, "pgbouncer pools"));
}

#[test]
fn demand_beyond_max_connections_trims_pools_and_asks_for_more() {
    let (mut m, mut a) = classic();
    a.db_cores = Some(64);
    m.postgres = pg(60, 47 + 5);
    let advice = advise(&m, &a);
    // Budget: 60 − 3 reserved − 5 bypass − 3 margin = 49.
    assert_eq!(advice.derived.server_budget, 49);
    assert!(recommended(&advice, "default_pool_size") <= 49);
    assert_eq!(recommended(&advice, "reserve_pool_size"), 0);
    assert!(recommended(&advice, "max_connections") > 60);
    assert!(has(&advice, Severity::Warning, "max_connections"));
}

#[test]
fn without_pgbouncer_advises_from_postgres_and_names_assumptions() {
    let m = Measured {
        window_seconds: 10.0,
        postgres: PgFigures {
            busy_mean: Some(3.2),
            ..pg(100, 20)
        },
        pgbouncer: None,
    };
    let advice = advise(&m, &Assumptions::default());
    // 3.2 × 1.0 × 1.25 = 4.
    assert_eq!(recommended(&advice, "default_pool_size"), 4);
    assert!(
        advice.assumed.iter().any(|s| s.contains("--db-cores")),
        "{:?}",
        advice.assumed
    );
    assert!(advice.assumed.iter().any(|s| s.contains("--app-instances")));
    assert_eq!(advice.status(), Severity::Ok);
}

#[test]
fn old_servers_use_the_polled_peak_of_busy_backends() {
    let m = Measured {
        window_seconds: 10.0,
        postgres: PgFigures {
            server_version_num: 130000,
            busy_mean: None,
            busy_backends_peak: 8,
            ..pg(100, 20)
        },
        pgbouncer: None,
    };
    let advice = advise(&m, &Assumptions::default());
    assert_eq!(recommended(&advice, "default_pool_size"), 10);
    assert!(advice.assumed.iter().any(|s| s.contains("< 14")));
}

#[test]
fn session_features_and_prepared_statements_in_transaction_mode_warn() {
    let (mut m, a) = classic();
    m.postgres.session_features = Some(vec!["LISTEN".into()]);
    if let Some(b) = m.pgbouncer.as_mut() {
        b.stats[0].parse_rate = Some(12.0);
    }
    let advice = advise(&m, &a);
    assert_eq!(advice.get("pool_mode").map(|r| r.recommended.as_str()), Some("session"));
    assert!(has(&advice, Severity::Warning, "pool_mode"));
    assert!(has(&advice, Severity::Warning, "max_prepared_statements"));
}

#[test]
fn idle_pools_are_flagged() {
    let config = [("pool_mode", "transaction"), ("default_pool_size", "50")];
    let mut idle = pool("app", "u", 2, 0, 1, 0.0);
    idle.sv_idle = 40;
    let m = Measured {
        window_seconds: 10.0,
        postgres: pg(100, 41),
        pgbouncer: Some(bouncer(
            &config,
            vec![idle],
            vec![database("app", 50)],
            vec![stats("app", 1.0, 0.0, 0.0)],
        )),
    };
    let advice = advise(&m, &Assumptions::default());
    assert!(
        has(&advice, Severity::Warning, "database app"),
        "{:#?}",
        advice.findings
    );
    assert_eq!(recommended(&advice, "default_pool_size"), 2);
}

#[test]
fn an_idle_window_keeps_the_configured_pool_size() {
    let config = [("pool_mode", "transaction"), ("default_pool_size", "20")];
    let m = Measured {
        window_seconds: 10.0,
        postgres: pg(100, 0),
        pgbouncer: Some(bouncer(
            &config,
            vec![pool("app", "u", 0, 0, 0, 0.0)],
            vec![database("app", 20)],
            vec![stats("app", 0.0, 0.0, 0.0)],
        )),
    };
    let advice = advise(&m, &Assumptions::default());
    assert_eq!(recommended(&advice, "default_pool_size"), 20);
    assert!(
        advice.assumed.iter().any(|s| s.contains("no load")),
        "{:?}",
        advice.assumed
    );
    assert_eq!(recommended(&advice, "max_connections"), 100);
    assert!(!has(&advice, Severity::Warning, "database host"));
}
