//! dbtool behind PgBouncer in transaction pooling with a pool of one server connection: the
//! application's next transaction on that connection must see the server's own settings.
//!
//! Regression (issue "Do no harm", item 1): dbtool fell back to session-level SET behind
//! PgBouncer, so after `dbtool health` the application's writes failed with "cannot execute
//! … in a read-only transaction" and ran under dbtool's 5 s statement_timeout.

mod common;

use std::process::Output;

use common::*;

/// Settings the application's sessions must see as the server has them, after dbtool.
const WATCHED: [&str; 5] = [
    "default_transaction_read_only",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "jit",
];

async fn show_all(client: &tokio_postgres::Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in WATCHED {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .unwrap_or_else(|e| panic!("SHOW {name}: {e}"));
        out.push((name.to_string(), row.get::<_, String>(0)));
    }
    out
}

/// What the application sees on the one pooled server connection after dbtool used it: the
/// server's defaults (as a direct session sees them), and writes work.
async fn assert_application_unharmed(db: &TestDb, bouncer: &PgBouncer, after: &str) {
    let direct = show_all(&db.client().await).await;
    let app = connect(&bouncer.dsn(db.name())).await;
    assert_eq!(
        show_all(&app).await,
        direct,
        "after {after}, the application's pooled session inherited dbtool's settings"
    );
    app.batch_execute("CREATE TABLE IF NOT EXISTS app_writes (x int); INSERT INTO app_writes VALUES (1)")
        .await
        .unwrap_or_else(|e| panic!("after {after}, the application cannot write: {}", chain(&e)));
}

fn pooled(db: &TestDb, extra: &[(&str, &str)]) -> PgBouncer {
    let mut settings = vec![("pool_mode", "transaction"), ("default_pool_size", "1")];
    settings.extend_from_slice(extra);
    PgBouncer::start(cluster(), &[db.name()], &settings)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn health_then_application(extra: &[(&str, &str)]) {
    let db = fresh_db("pooled_health").await;
    let bouncer = pooled(&db, extra);
    // The application's pool connection exists before dbtool comes, as in production.
    assert_application_unharmed(&db, &bouncer, "nothing").await;
    let dsn = bouncer.dsn(db.name());
    // dbtool's limits must be in force through the pooler: a sequence held by another
    // session makes the sequences check give up after lock_timeout instead of waiting.
    let holder = db.client().await;
    holder
        .batch_execute("CREATE SEQUENCE held; SELECT nextval('held')")
        .await
        .expect("create a sequence");
    holder
        .batch_execute("BEGIN; ALTER SEQUENCE held RESTART")
        .await
        .expect("hold the sequence");
    let (code, report) = health_report(&dsn, &["--database", db.name(), "--timeout", "60s"]).await;
    holder.batch_execute("ROLLBACK").await.expect("release the sequence");
    let target = &report["targets"][0];
    assert_eq!(target["up"], true, "{report:#}");
    assert!(code <= 3, "exit {code}: {report:#}");
    let sequences = check_of(&report, "sequences");
    assert!(
        findings(sequences).iter().any(|(_, _, m)| m.contains("lock timeout")),
        "lock_timeout was not in force through the pooler: {sequences:#}"
    );
    // Checks ran through the pooler: the connections check read the server, not an error.
    let connections = check_of(&report, "connections");
    assert_eq!(connections["status"], "OK", "{connections:#}");
    assert_application_unharmed(&db, &bouncer, "dbtool health").await;

    let out = dbtool()
        .args(["pool-advise", "--dsn", &dsn, "--sample", "1s"])
        .output()
        .expect("run pool-advise");
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "pool-advise through PgBouncer: {}",
        text(&out)
    );
    assert_application_unharmed(&db, &bouncer, "dbtool pool-advise").await;
}

#[tokio::test]
async fn health_behind_transaction_pooling_leaves_the_server_connection_as_it_found_it() {
    health_then_application(&[]).await;
}

/// PgBouncer told to ignore the options startup parameter accepts dbtool's limits and drops
/// them: dbtool must notice, and still leave nothing behind.
#[tokio::test]
async fn a_pooler_that_silently_drops_startup_options_is_detected() {
    health_then_application(&[("ignore_startup_parameters", "options")]).await;
}

/// Commands that hold session state (advisory locks, pg_dump's settings) refuse a pooler,
/// name the fix, and change nothing.
#[tokio::test]
async fn session_state_commands_refuse_a_transaction_pooler() {
    let db = fresh_db("pooled_jobs").await;
    let client = db.client().await;
    posts::create_posts(&client, "posts", 50).await;
    let bouncer = pooled(&db, &[]);
    let dsn = bouncer.dsn(db.name());
    let dest = tempfile::tempdir().expect("temp dir");
    let dest_arg = dest.path().to_str().expect("utf-8 path");
    let command = |args: &[&str]| {
        let mut cmd = dbtool();
        cmd.args(args);
        cmd
    };
    let runs = [
        ("migrate", command(&["migrate", "--dsn", &dsn])),
        ("backup", command(&["backup", "--dsn", &dsn, "--dest", dest_arg])),
        ("archive", posts::archive_cmd(&dsn, &[])),
    ];
    for (what, mut cmd) in runs {
        let out = cmd.output().expect("run dbtool");
        let t = text(&out);
        assert!(!out.status.success(), "{what} through PgBouncer succeeded: {t}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("pooler") && stderr.contains("PostgreSQL's own port"),
            "{what}: the error must name the pooler and the fix: {t}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{what}: one line: {t}");
        assert_application_unharmed(&db, &bouncer, what).await;
    }
    // Nothing was done: no schema, no archive table, no backup, every post still there.
    let schema: i64 = client
        .query_one("SELECT count(*) FROM pg_namespace WHERE nspname = 'dbtool'", &[])
        .await
        .expect("count schemas")
        .get(0);
    assert_eq!(schema, 0, "migrate through the pooler created dbtool's schema");
    assert_eq!(posts::count(&client, "posts").await, 50);
    // The failed run is recorded for the metrics (the state file); no backup was started.
    let left: Vec<_> = (std::fs::read_dir(dest.path()).expect("read dest").flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".dbtool-backup-state.json")
        .collect();
    assert!(left.is_empty(), "backup through the pooler left {left:?}");
}
