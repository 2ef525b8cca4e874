//! `dbtool health` against a real throwaway cluster: real conditions in, findings and exit codes out.

mod common;

use common::wait_until as wait_for;
use common::{check_of as check, health_report as health_json, run_dbtool as run, strings as args};
use common::{dbtool, fresh_db, own_cluster};
use serde_json::Value;
use tempcluster::ClusterOptions;

async fn pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0)
}

#[tokio::test]
async fn locks_names_the_root_blocker_of_a_waiting_session() {
    let db = fresh_db("locks").await;
    let setup = db.client().await;
    setup
        .batch_execute("CREATE TABLE posts (id int PRIMARY KEY)")
        .await
        .expect("setup");
    let holder = db.client().await;
    let holder_pid = pid(&holder).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let waiter = db.client().await;
    let waiter_pid = pid(&waiter).await;
    let blocked = tokio::spawn(async move { waiter.simple_query("SELECT count(*) FROM posts").await.map(|_| ()) });
    wait_for(
        &setup,
        &format!("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = {waiter_pid}"),
    )
    .await;
    // Past the 1 s threshold by the server's clock, however long the test itself was held up.
    wait_for(
        &setup,
        &format!("SELECT now() - state_change > interval '1.2 s' FROM pg_stat_activity WHERE pid = {waiter_pid}"),
    )
    .await;

    let (code, report) = health_json(&db.dsn(), &["--check", "locks", "--set", "locks.warning_seconds=1"]).await;
    let locks = check(&report, "locks");
    assert_eq!(locks["status"], "WARNING", "{locks}");
    assert_eq!(code, 1);
    let finding = &locks["findings"][0];
    assert_eq!(finding["object"], format!("pid {waiter_pid}"));
    let msg = finding["message"].as_str().unwrap_or_default();
    assert!(msg.contains(&format!("root blocker pid {holder_pid}")), "{msg}");
    assert!(msg.contains("idle in transaction"), "{msg}");
    let metrics = locks["metrics"].as_array().expect("metrics");
    let blocked_n = metrics
        .iter()
        .find(|m| m["name"] == "dbtool_blocked_sessions")
        .map(|m| m["value"].clone());
    assert_eq!(blocked_n, Some(Value::from(1.0)));
    blocked.abort();
}

#[tokio::test]
async fn idle_in_transaction_session_is_reported_with_its_pid() {
    let db = fresh_db("idle").await;
    let idle = db.client().await;
    let idle_pid = pid(&idle).await;
    idle.batch_execute("BEGIN; SELECT 1").await.expect("begin");
    let probe = db.client().await;
    wait_for(
        &probe,
        &format!(
            "SELECT clock_timestamp() - state_change > interval '1.5 s' FROM pg_stat_activity WHERE pid = {idle_pid}"
        ),
    )
    .await;
    let (code, report) = health_json(
        &db.dsn(),
        &[
            "--check",
            "long_transactions",
            "--set",
            "long_transactions.idle_warning_seconds=1",
        ],
    )
    .await;
    let lt = check(&report, "long_transactions");
    assert_eq!(lt["status"], "WARNING", "{lt}");
    assert_eq!(code, 1);
    let objects: Vec<&Value> = lt["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| &f["object"])
        .collect();
    assert!(
        objects.contains(&&Value::from(format!("pid {idle_pid}"))),
        "{objects:?}"
    );
}

#[tokio::test]
async fn nearly_exhausted_connections_are_critical() {
    let cluster = own_cluster(ClusterOptions {
        conf: vec![
            "max_connections = 10".into(),
            "superuser_reserved_connections = 3".into(),
        ],
        ..ClusterOptions::default()
    });
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(common::connect(&cluster.dsn("postgres")).await);
    }
    // 6 held + dbtool's own = 7 of 7 usable.
    let (code, report) = health_json(&cluster.dsn("postgres"), &["--check", "connections"]).await;
    let c = check(&report, "connections");
    assert_eq!(c["status"], "CRITICAL", "{c}");
    assert_eq!(code, 2);
    assert!(c["summary"].as_str().unwrap_or_default().starts_with("7 of 7"), "{c}");
}

#[tokio::test]
async fn dead_tuples_with_autovacuum_off_warn_about_that_table() {
    let db = fresh_db("vacuum").await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE churn (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
         INSERT INTO churn SELECT i, 'x' FROM generate_series(1, 5000) i;
         ANALYZE churn;
         DELETE FROM churn WHERE id % 2 = 0;",
    )
    .await
    .expect("churn");
    drop(c);
    let probe = db.client().await;
    wait_for(
        &probe,
        "SELECT coalesce(n_dead_tup, 0) >= 2500 FROM pg_stat_user_tables WHERE relname = 'churn'",
    )
    .await;
    let (code, report) = health_json(&db.dsn(), &["--check", "vacuum", "--database", db.name()]).await;
    let v = check(&report, "vacuum");
    assert_eq!(v["status"], "WARNING", "{v}");
    assert_eq!(code, 1);
    let f = &v["findings"][0];
    assert_eq!(f["object"], format!("{}.public.churn", db.name()));
    assert!(
        f["message"]
            .as_str()
            .unwrap_or_default()
            .contains("autovacuum is disabled"),
        "{f}"
    );
}

#[tokio::test]
async fn pg_monitor_role_runs_every_check_and_missing_privilege_is_unknown_not_a_crash() {
    let db = fresh_db("monitor").await;
    let admin = db.client().await;
    admin
        .batch_execute("DO $$ BEGIN CREATE ROLE dbtool_monitor LOGIN IN ROLE pg_monitor; EXCEPTION WHEN duplicate_object THEN NULL; END $$;")
        .await
        .expect("role");
    let dsn = format!("{} user=dbtool_monitor", db.dsn());
    let (_, report) = health_json(&dsn, &["--database", db.name()]).await;
    for c in report["targets"][0]["checks"].as_array().expect("checks") {
        assert_ne!(c["status"], "UNKNOWN", "{c}");
    }
    // Take away a view the locks check needs, in this database only.
    admin
        .batch_execute("REVOKE SELECT ON pg_catalog.pg_locks FROM PUBLIC")
        .await
        .expect("revoke");
    // Only checks that are OK on any test cluster: the server check warns about its fsync=off,
    // and on 13/14 checkpoints may warn (CREATE DATABASE forces checkpoints); a WARNING
    // would outrank the UNKNOWN this test is about.
    let (code, report) = health_json(
        &dsn,
        &["--database", db.name(), "--check", "locks", "--check", "connections"],
    )
    .await;
    let locks = check(&report, "locks");
    assert_eq!(locks["status"], "UNKNOWN", "{locks}");
    let msg = locks["findings"][0]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("permission denied") && msg.contains("grant pg_monitor to dbtool_monitor"),
        "{msg}"
    );
    assert_eq!(check(&report, "connections")["status"], "OK");
    assert_eq!(code, 3);
}

#[tokio::test]
async fn unreachable_server_gives_up_0_critical_and_still_writes_the_file() {
    let cluster = own_cluster(ClusterOptions::default());
    let dsn = cluster.dsn("postgres");
    cluster.stop().expect("stop");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dbtool.prom");
    let (code, out, err) = run(args(&[
        "health",
        "--format",
        "prometheus",
        "--dsn",
        &dsn,
        "--output",
        &file.to_string_lossy(),
    ]))
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "stdout must stay empty with --output: {out}");
    let text = std::fs::read_to_string(&file).expect("file written");
    assert!(text.contains("dbtool_up{target="), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("dbtool_up{") && l.ends_with(" 0")),
        "{text}"
    );
}

#[tokio::test]
async fn bad_dsn_is_a_one_line_error_exit_3_without_the_password() {
    for dsn in [
        "postgres://alice:s3cretpw@localhost:notaport/db",
        "host=localhost password=s3cretpw bogus=1",
        "password='s3cretpw",
    ] {
        let (code, out, err) = run(args(&["health", "--dsn", dsn])).await;
        assert_eq!(code, 3, "{dsn}: {err}");
        assert!(out.is_empty());
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("dbtool: error:"), "{err}");
        assert!(!err.contains("s3cretpw"), "password leaked: {err}");
    }
}

/// `dbtool health` with `dsn` and $HOME in an empty directory (no ~/.pgpass to fall back on).
async fn health_as(dsn: String) -> (i32, String, String) {
    let home = tempfile::tempdir().expect("home");
    let mut cmd = dbtool();
    cmd.env("HOME", home.path())
        .args(["health", "--check", "connections", "--dsn", &dsn]);
    common::run_command(cmd).await
}

#[tokio::test]
async fn wrong_and_missing_passwords_are_refused_by_scram_named_and_never_shown() {
    // A role that may only log in with SCRAM over TCP: under the suite's usual trust auth a
    // password is never checked, and a test of a wrong one proves nothing.
    let cluster = own_cluster(ClusterOptions {
        conf: vec!["password_encryption = 'scram-sha-256'".into()],
        hba_prepend: vec!["host all pw_user 127.0.0.1/32 scram-sha-256".into()],
        ..Default::default()
    });
    common::connect(&cluster.dsn("postgres"))
        .await
        .batch_execute("CREATE ROLE pw_user LOGIN PASSWORD 'right-pw-1' IN ROLE pg_monitor")
        .await
        .expect("role");
    let base = format!(
        "host=127.0.0.1 port={} user=pw_user dbname=postgres sslmode=disable connect_timeout=5",
        cluster.port()
    );
    let (code, out, err) = health_as(format!("{base} password=right-pw-1")).await;
    assert!(code <= 1, "the right password is accepted: {err}{out}");

    let (code, out, err) = health_as(format!("{base} password=hunter2xyz")).await;
    let all = format!("{out}{err}");
    assert!(code >= 2, "a wrong password must fail the run: {all}");
    assert!(
        all.contains("password authentication failed") && all.contains("the password came from --dsn"),
        "{all}"
    );
    assert!(!all.contains("hunter2xyz"), "password leaked: {all}");

    let (code, out, err) = health_as(base).await;
    let all = format!("{out}{err}");
    assert!(code >= 2, "a missing password must fail the run: {all}");
    assert!(all.contains("no password was sent"), "{all}");
}

#[tokio::test]
async fn checks_finish_while_a_user_table_is_locked_exclusively() {
    let db = fresh_db("exclusive").await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE hot (id int PRIMARY KEY); INSERT INTO hot SELECT generate_series(1, 1000); BEGIN; LOCK TABLE hot IN ACCESS EXCLUSIVE MODE;")
        .await
        .expect("lock");
    let (_, report) = health_json(&db.dsn(), &["--database", db.name(), "--timeout", "20s"]).await;
    // A check that queued behind the lock would run into its timeouts and turn UNKNOWN; how
    // long the checks took depends on the machine (a 5 s bound flaked), so it is not asserted.
    for ch in report["targets"][0]["checks"].as_array().expect("checks") {
        assert_ne!(ch["status"], "UNKNOWN", "{ch}");
    }
}

#[tokio::test]
async fn prometheus_output_escapes_hostile_table_names_and_passes_promtool() {
    let db = fresh_db("names").await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE \"a\"\"b\\c\" (id int) WITH (autovacuum_enabled = false);
         CREATE TABLE \"new\nline\" (id int) WITH (autovacuum_enabled = false);
         INSERT INTO \"a\"\"b\\c\" SELECT generate_series(1, 100);
         INSERT INTO \"new\nline\" SELECT generate_series(1, 100);
         DELETE FROM \"a\"\"b\\c\"; DELETE FROM \"new\nline\";",
    )
    .await
    .expect("tables");
    drop(c);
    let probe = db.client().await;
    wait_for(
        &probe,
        "SELECT count(*) = 2 FROM pg_stat_user_tables WHERE n_dead_tup > 0",
    )
    .await;
    let (_, out, err) = run(args(&[
        "health",
        "--format",
        "prometheus",
        "--dsn",
        &db.dsn(),
        "--database",
        db.name(),
    ]))
    .await;
    assert!(out.contains(r#"table="a\"b\\c""#), "{out}\n{err}");
    assert!(out.contains(r#"table="new\nline""#), "{out}");
    for family in [
        "dbtool_up",
        "dbtool_check_status",
        "dbtool_check_duration_seconds",
        "dbtool_scrape_duration_seconds",
    ] {
        assert_eq!(out.matches(&format!("# TYPE {family} ")).count(), 1, "{family}");
    }
    let promtool = common::promtool_check_metrics(&out);
    assert!(promtool.is_ok(), "promtool rejected the output: {promtool:?}");
}

#[tokio::test]
async fn textfile_is_read_by_a_real_node_exporter() {
    let db = fresh_db("textfile").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dbtool.prom");
    let (code, _, err) = run(args(&[
        "health",
        "--format",
        "prometheus",
        "--dsn",
        &db.dsn(),
        "--database",
        db.name(),
        "--output",
        &file.to_string_lossy(),
    ]))
    .await;
    assert!(code <= 1, "{err}");
    let scraped = common::scrape_node_exporter(dir.path()).await;
    assert!(
        scraped.lines().any(|l| l == "node_textfile_scrape_error 0"),
        "{scraped}"
    );
    assert!(
        scraped.contains("dbtool_up{target="),
        "dbtool families missing from node_exporter output"
    );
    assert!(scraped.contains("dbtool_connections{"), "{scraped}");
}

#[tokio::test]
async fn json_report_pins_its_field_names() {
    let db = fresh_db("json").await;
    let (_, report) = health_json(&db.dsn(), &["--database", db.name()]).await;
    for key in [
        "schema",
        "dbtool_version",
        "generated_at",
        "status",
        "exit_code",
        "duration_seconds",
        "targets",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["schema"], 1);
    let t = &report["targets"][0];
    for key in [
        "target",
        "kind",
        "up",
        "status",
        "error",
        "server_version",
        "server_version_num",
        "duration_seconds",
        "checks",
    ] {
        assert!(t.get(key).is_some(), "missing target.{key}");
    }
    let c = &t["checks"][0];
    for key in [
        "name",
        "status",
        "summary",
        "threshold",
        "duration_seconds",
        "findings",
        "metrics",
    ] {
        assert!(c.get(key).is_some(), "missing check.{key}");
    }
    let names: Vec<&str> = t["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "connections",
            "locks",
            "waits",
            "long_transactions",
            "vacuum",
            "xmin_horizon",
            "maintenance",
            "cache_hit",
            "server",
            "hygiene",
            "replication",
            "archiver",
            "wal",
            "database_activity",
            "checkpoints",
            "sequences",
            "indexes",
            "bloat",
            "top_queries"
        ]
    );
}

#[tokio::test]
async fn libpq_environment_is_used_when_no_dsn_is_given() {
    let db = fresh_db("env").await;
    let cluster = common::cluster();
    let out = tokio::task::spawn_blocking({
        let (sock, port, name) = (
            cluster.socket_dir().to_path_buf(),
            cluster.port(),
            db.name().to_string(),
        );
        move || {
            dbtool()
                .args(["health", "--check", "connections", "--format", "json"])
                .env("PGHOST", sock)
                .env("PGPORT", port.to_string())
                .env("PGUSER", "postgres")
                .env("PGDATABASE", name)
                .output()
        }
    })
    .await
    .expect("join")
    .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["targets"][0]["up"], true, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(v["targets"][0]["target"]
        .as_str()
        .unwrap_or_default()
        .ends_with(&format!("/{}", db.name())));
}
