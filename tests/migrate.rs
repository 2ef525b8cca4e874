//! dbtool's own schema: `dbtool migrate`, the job_runs API the scheduler relies on, `dbtool history`.

mod common;

use common::{dbtool, fresh_db};
use dbtool::db::{job_runs, migrate, ConnParams, MapEnv, SessionSettings};

async fn dbtool_client(dsn: &str) -> tokio_postgres::Client {
    let params = ConnParams::resolve(Some(dsn), &MapEnv(Default::default())).expect("dsn");
    let settings = SessionSettings {
        read_only: false,
        ..SessionSettings::default()
    };
    dbtool::db::connect(&params, &settings).await.expect("connect")
}

#[tokio::test]
async fn migrate_applies_once_even_when_two_processes_race() {
    let db = fresh_db("migrate_race").await;
    let spawn = |c: &mut std::process::Command| c.args(["migrate", "--dsn", &db.dsn()]).output().expect("run dbtool");
    let (o1, o2) = std::thread::scope(|s| {
        let h1 = s.spawn(|| spawn(&mut dbtool()));
        let h2 = s.spawn(|| spawn(&mut dbtool()));
        (h1.join().expect("t1"), h2.join().expect("t2"))
    });
    for o in [&o1, &o2] {
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let both = format!(
        "{}{}",
        String::from_utf8_lossy(&o1.stdout),
        String::from_utf8_lossy(&o2.stdout)
    );
    assert_eq!(both.matches("applied V1").count(), 1, "{both}");
    assert_eq!(both.matches("up to date").count(), 1, "{both}");
    let status = dbtool()
        .args(["migrate", "--status", "--dsn", &db.dsn()])
        .output()
        .expect("run");
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).contains("V1__job_runs\tapplied"));
}

#[tokio::test]
async fn a_modified_applied_migration_is_refused() {
    let db = fresh_db("migrate_modified").await;
    let pending = dbtool()
        .args(["migrate", "--status", "--dsn", &db.dsn()])
        .output()
        .expect("run");
    assert_eq!(pending.status.code(), Some(1), "pending migrations exit 1");
    let ok = dbtool().args(["migrate", "--dsn", &db.dsn()]).output().expect("run");
    assert_eq!(ok.status.code(), Some(0));
    db.client()
        .await
        .batch_execute("UPDATE dbtool.schema_migrations SET checksum = 'deadbeef' WHERE version = 1")
        .await
        .expect("tamper");
    let out = dbtool().args(["migrate", "--dsn", &db.dsn()]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("V1__job_runs") && err.contains("deadbeef"), "{err}");
    let hist = dbtool().args(["history", "--dsn", &db.dsn()]).output().expect("run");
    assert_eq!(hist.status.code(), Some(3));
}

#[tokio::test]
async fn job_runs_claims_each_scheduled_time_once_and_history_shows_runs() {
    let db = fresh_db("job_runs").await;
    let mut client = dbtool_client(&db.dsn()).await;
    assert_eq!(migrate::apply(&mut client).await.expect("migrate"), vec![1]);
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T03:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let first = job_runs::start(&client, "nightly", "archive", "main", Some(at))
        .await
        .expect("start");
    let second = job_runs::start(&client, "nightly", "archive", "main", Some(at))
        .await
        .expect("start");
    assert!(first.is_some());
    assert_eq!(second, None, "the same (job, scheduled_at) is claimed once");
    let by_hand = job_runs::start(&client, "nightly", "archive", "main", None)
        .await
        .expect("start");
    let by_hand2 = job_runs::start(&client, "nightly", "archive", "main", None)
        .await
        .expect("start");
    assert!(
        by_hand.is_some() && by_hand2.is_some(),
        "hand-started runs never conflict"
    );
    let id = first.expect("id");
    job_runs::finish(&client, id, job_runs::RunStatus::Success, Some(42), None, Some("done"))
        .await
        .expect("finish");
    let runs = job_runs::recent(&client, Some("nightly"), 10).await.expect("recent");
    assert_eq!(runs.len(), 3);
    let done = runs.iter().find(|r| r.id == id).expect("the run");
    assert_eq!(
        (done.status.as_str(), done.rows, done.message.as_deref()),
        ("success", Some(42), Some("done"))
    );
    assert!(done.runner.ends_with(&format!(":{}", std::process::id())));

    let out = dbtool()
        .args(["history", "--job", "nightly", "--format", "json", "--dsn", &db.dsn()])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(3));
    let table = dbtool().args(["history", "--dsn", &db.dsn()]).output().expect("run");
    assert!(String::from_utf8_lossy(&table.stdout).contains("nightly"));

    let pruned = job_runs::prune(&client, chrono::Utc::now() + chrono::Duration::seconds(60))
        .await
        .expect("prune");
    assert_eq!(pruned, 3);
}

/// Regression (item 8): a role that may not create the schema got "migration V1__job_runs
/// failed: db error". The error now carries the server's message, the SQLSTATE and the fix;
/// once an owner has migrated and granted use of dbtool.*, the role needs no CREATE at all.
#[tokio::test]
async fn a_non_owner_is_told_the_server_error_and_the_fix() {
    let db = fresh_db("migrate_nonowner").await;
    let role = format!("reader_{}", db.name());
    let admin = db.client().await;
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .expect("create role");
    let as_role = format!("{} user={role}", db.dsn());
    let out = dbtool()
        .args(["migrate", "--dsn", &as_role])
        .output()
        .expect("run dbtool");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "migration V1__job_runs failed: permission denied for database",
        "(SQLSTATE 42501)",
        "run `dbtool migrate` once as the database owner",
        &format!("GRANT CREATE ON DATABASE \"{}\" TO \"{role}\"", db.name()),
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    assert!(!err.contains("db error"), "{err}");
    // The owner migrates; the role may use but not create: a schema without USAGE is named as such.
    let out = dbtool().args(["migrate", "--dsn", &db.dsn()]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dbtool().args(["migrate", "--dsn", &as_role]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("(SQLSTATE 42501)") && err.contains(&format!("GRANT USAGE ON SCHEMA dbtool TO \"{role}\"")),
        "{err}"
    );
    admin
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA dbtool TO {role}; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA dbtool TO {role}"
        ))
        .await
        .expect("grant");
    let out = dbtool().args(["migrate", "--dsn", &as_role]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("up to date"), "{text}");
}
