//! Renderers on fixture advice: ini overrides, escaped labels, the manual's metrics reference.

use super::*;
use crate::pool::{model, Assumptions, BouncerFigures, DatabaseFigures, PgFigures, PoolFigures, StatsFigures};

fn fixture() -> Measured {
    let pool = |db: &str| PoolFigures {
        database: db.into(),
        user: "u\"x".into(),
        cl_active: 3,
        pool_mode: "transaction".into(),
        ..Default::default()
    };
    let database = |name: &str| DatabaseFigures {
        name: name.into(),
        host: Some("10.0.0.5".into()),
        port: Some(5432),
        database: name.into(),
        pool_size: 20,
        ..Default::default()
    };
    let stats = |db: &str, busy: f64| StatsFigures {
        database: db.into(),
        xact_rate: 100.0,
        busy_servers: busy,
        ..Default::default()
    };
    Measured {
        window_seconds: 10.0,
        postgres: PgFigures {
            max_connections: 100,
            reserved_connections: 3,
            client_backends: 10,
            ..Default::default()
        },
        pgbouncer: Some(BouncerFigures {
            version: Some("1.18.0".into()),
            config: [("default_pool_size".to_string(), "20".to_string())].into(),
            pools: vec![pool("big"), pool("small")],
            databases: vec![database("big"), database("small")],
            stats: vec![stats("big", 8.0), stats("small", 1.0)],
        }),
    }
}

fn text(f: impl Fn(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    assert!(f(&mut buf).is_ok());
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn ini_has_a_pgbouncer_section_and_database_overrides() {
    let m = fixture();
    let eight_cores = Assumptions {
        db_cores: Some(8),
        ..Default::default()
    };
    let a = model::advise(&m, &eight_cores);
    let ini = text(|b| ini(&m, &a, b));
    // 8 busy × 1.25 = 10 for big; 1 × 1.25 = 2 for small, an override.
    assert!(ini.contains("\n[pgbouncer]\n"), "{ini}");
    assert!(ini.contains("\ndefault_pool_size = 10\n"), "{ini}");
    assert!(ini.contains("; current: 20\n"), "{ini}");
    assert!(ini.contains("\n[databases]\n"), "{ini}");
    assert!(
        ini.contains("\nsmall = host=10.0.0.5 port=5432 dbname=small pool_size=2\n"),
        "{ini}"
    );
    // Every setting line is preceded by its reason.
    for (i, line) in ini
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(" = ") && !l.starts_with(';'))
    {
        let previous: Vec<&str> = ini.lines().take(i).collect();
        assert!(
            previous.last().is_some_and(|p| p.starts_with(';')),
            "no reason before {line}"
        );
    }
}

#[test]
fn prometheus_escapes_labels_and_declares_each_family_once() {
    let m = fixture();
    let a = model::advise(&m, &Assumptions::default());
    let prom = text(|b| prometheus(&m, &a, "db:5432/app", b));
    assert!(
        prom.contains("dbtool_pgbouncer_clients_waiting{target=\"db:5432/app\",database=\"big\",user=\"u\\\"x\"} 0"),
        "{prom}"
    );
    for f in FAMILIES {
        assert!(
            prom.matches(&format!("# TYPE {} gauge\n", f.name)).count() <= 1,
            "{}",
            f.name
        );
    }
    assert!(prom.contains("dbtool_pgbouncer_server_connections{target=\"db:5432/app\",database=\"small\",user=\"u\\\"x\",state=\"active\"} 0"));
}

#[test]
fn json_is_versioned_and_carries_measured_and_advice() {
    let m = fixture();
    let a = model::advise(&m, &Assumptions::default());
    let v: serde_json::Value = serde_json::from_str(&text(|b| json(&m, &a, b))).unwrap_or_default();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["status"], "WARNING", "idle pools: {v:#}");
    assert!(v["advice"]["recommendations"].as_array().is_some_and(|r| r.len() > 10));
    assert_eq!(v["measured"]["pgbouncer"]["pools"][0]["database"], "big");
}

#[test]
fn readme_documents_every_pool_advise_metric() {
    let readme = include_str!("../../docs/src/metrics.md");
    for f in FAMILIES {
        assert!(
            readme.contains(&format!("| `{}` |", f.name)),
            "docs/src/metrics.md lacks {}",
            f.name
        );
    }
}
