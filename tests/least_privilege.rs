//! A `pg_monitor` role sees less than a superuser; checks say what they could not see instead
//! of reporting OK over nothing.
//!
//! Regression (issue "Do no harm", item 8): as pg_monitor the bloat check said "OK, 0 objects"
//! (pg_stats hides tables the role may not read) while a superuser saw 15 MB in 19 objects,
//! and sequences said "no sequences" while its findings said 4 could not be read.

mod common;

use common::*;

const ROLE: &str = "dbtool_least";

async fn setup() -> TestDb {
    let db = fresh_db("least_privilege").await;
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {ROLE} LOGIN IN ROLE pg_monitor; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
             CREATE TABLE big (id int PRIMARY KEY, body text);
             INSERT INTO big SELECT g, repeat('x', 80) FROM generate_series(1, 40000) g;
             ANALYZE big;
             CREATE SEQUENCE ticket_seq; SELECT nextval('ticket_seq');"
        ))
        .await
        .expect("set up");
    db
}

fn summary(report: &serde_json::Value, check: &str) -> String {
    check_of(report, check)["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn checks_that_cannot_see_what_they_judge_say_so_and_name_the_privilege() {
    let db = setup().await;
    let only = ["--database", db.name(), "--check", "bloat", "--check", "sequences"];
    let (_, superuser) = health_report(&db.dsn(), &only).await;
    assert!(
        !summary(&superuser, "bloat").contains("not estimated") && !summary(&superuser, "bloat").contains(" 0 object"),
        "the superuser estimates the table: {superuser:#}"
    );

    let monitor = format!("{} user={ROLE}", db.dsn());
    let (code, report) = health_report(&monitor, &only).await;
    let bloat = check_of(&report, "bloat");
    assert_eq!(bloat["status"], "UNKNOWN", "{bloat:#}");
    assert!(summary(&report, "bloat").contains("not estimated"), "{bloat:#}");
    assert!(
        findings(bloat)
            .iter()
            .any(|(_, o, m)| o == &format!("database {}", db.name()) && m.contains("pg_read_all_data")),
        "{bloat:#}"
    );
    let sequences = check_of(&report, "sequences");
    assert_eq!(sequences["status"], "UNKNOWN", "{sequences:#}");
    let s = summary(&report, "sequences");
    assert!(!s.contains("no sequences") && s.contains("1 not readable"), "{s}");
    assert_eq!(code, 3);

    // With the privilege the same role judges the table: no longer hidden.
    db.client()
        .await
        .batch_execute(&format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {ROLE}"
        ))
        .await
        .expect("grant");
    let (_, report) = health_report(&monitor, &only).await;
    assert_eq!(check_of(&report, "bloat")["status"], "OK", "{report:#}");
    assert!(!summary(&report, "bloat").contains("not estimated"), "{report:#}");
    assert_eq!(check_of(&report, "sequences")["status"], "OK", "{report:#}");
}
