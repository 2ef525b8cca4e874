//! Custom checks from the configuration file, against real servers: thresholds crossed both
//! ways, databases visited, labels bounded, NULLs and errors as UNKNOWN naming the check, a
//! write refused by the read-only transaction, a pg_monitor role without SELECT, hostile text
//! through promtool and JSON, `config check` positions and PREPARE.

mod common;

use common::{check_of, findings, fresh_db, health_report, metric, run_dbtool, strings};
use serde_json::Value;

/// A config file holding `text`, kept as long as the returned directory lives.
fn config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dbtool.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path.to_str().expect("utf-8").to_string())
}

/// `dbtool --config FILE health --format json --dsn DSN EXTRA...`.
async fn health(file: &str, dsn: &str, extra: &[&str]) -> (i32, Value) {
    let args = [&["--config", file][..], extra].concat();
    health_report(dsn, &args).await
}

async fn status(file: &str, dsn: &str, name: &str, extra: &[&str]) -> (i32, String, Value) {
    let args = [&["--check", name][..], extra].concat();
    let (code, report) = health(file, dsn, &args).await;
    let c = check_of(&report, name).clone();
    (code, c["status"].as_str().unwrap_or_default().to_string(), c)
}

const ORDERS: &str = r#"
[[custom_checks]]
name = "orders_backlog"
help = "Orders waiting to be shipped."
sql = "select count(*)::float8 as value from orders where shipped_at is null"
warning = 3
critical = 5

[[custom_checks]]
name = "orders_shipped"
help = "Orders shipped."
sql = "select count(*) as value from orders where shipped_at is not null;"
direction = "below"
warning = 3
critical = 2
"#;

#[tokio::test]
async fn a_value_crosses_warning_then_critical_above_and_below() {
    let db = fresh_db("custom_cross").await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE orders (id int, shipped_at timestamptz)")
        .await
        .expect("table");
    let (_dir, file) = config(ORDERS);
    let dsn = db.dsn();

    let (code, s, ch) = status(&file, &dsn, "orders_backlog", &[]).await;
    assert_eq!((code, s.as_str()), (0, "OK"), "{ch:#}");
    assert_eq!(
        metric(&ch, "dbtool_custom_orders_backlog", &[("database", db.name())]),
        Some(0.0),
        "{ch:#}"
    );
    // Nothing shipped: below both thresholds.
    let (code, s, ch) = status(&file, &dsn, "orders_shipped", &[]).await;
    assert_eq!((code, s.as_str()), (2, "CRITICAL"), "{ch:#}");

    c.batch_execute("INSERT INTO orders SELECT g, NULL FROM generate_series(1, 3) g; INSERT INTO orders VALUES (10, now()), (11, now())")
        .await
        .expect("rows");
    let (code, s, ch) = status(&file, &dsn, "orders_backlog", &[]).await;
    assert_eq!((code, s.as_str()), (1, "WARNING"), "{ch:#}");
    assert!(
        findings(&ch).iter().any(|(s, o, m)| s == "WARNING"
            && o == &format!("database {}", db.name())
            && m.contains("warning threshold 3")),
        "{ch:#}"
    );
    let (code, s, ch) = status(&file, &dsn, "orders_shipped", &[]).await;
    assert_eq!((code, s.as_str()), (1, "WARNING"), "{ch:#}");

    c.batch_execute(
        "INSERT INTO orders SELECT g, NULL FROM generate_series(4, 5) g; INSERT INTO orders VALUES (12, now())",
    )
    .await
    .expect("rows");
    let (code, s, ch) = status(&file, &dsn, "orders_backlog", &[]).await;
    assert_eq!((code, s.as_str()), (2, "CRITICAL"), "{ch:#}");
    assert_eq!(metric(&ch, "dbtool_custom_orders_backlog", &[]), Some(5.0), "{ch:#}");
    let (code, s, ch) = status(&file, &dsn, "orders_shipped", &[]).await;
    assert_eq!((code, s.as_str()), (0, "OK"), "{ch:#}");

    // Thresholds overridden like a built-in check's, by --set and by -w/-c.
    let (code, s, _) = status(
        &file,
        &dsn,
        "orders_backlog",
        &[
            "--set",
            "orders_backlog.critical=50",
            "--set",
            "orders_backlog.warning=10",
        ],
    )
    .await;
    assert_eq!((code, s.as_str()), (0, "OK"));
    let (code, s, _) = status(&file, &dsn, "orders_backlog", &["-w", "4", "-c", "9"]).await;
    assert_eq!((code, s.as_str()), (1, "WARNING"));
    let (code, _, err) = run_dbtool(strings(&[
        "--config",
        &file,
        "health",
        "--dsn",
        &dsn,
        "--set",
        "orders_backlog.warning=60",
        "--check",
        "orders_backlog",
    ]))
    .await;
    assert_eq!(code, 3, "a warning above its critical is refused: {err}");
    assert!(err.contains("orders_backlog.warning"), "{err}");

    // --skip leaves it out; the Nagios output names it.
    let (_, report) = health(&file, &dsn, &["--skip", "orders_backlog", "--check", "orders_shipped"]).await;
    assert_eq!(
        report["targets"][0]["checks"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    let (code, out, _) = run_dbtool(strings(&[
        "--config",
        &file,
        "health",
        "--format",
        "nagios",
        "--dsn",
        &dsn,
        "--check",
        "orders_backlog",
    ]))
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("orders_backlog"), "{out}");
}

#[tokio::test]
async fn per_database_and_named_databases_visit_where_they_are_told() {
    let (a, b) = (fresh_db("custom_per_a").await, fresh_db("custom_per_b").await);
    for (db, n) in [(&a, 2), (&b, 7)] {
        db.client()
            .await
            .batch_execute(&format!("CREATE TABLE items AS SELECT generate_series(1, {n}) AS id"))
            .await
            .expect("table");
    }
    let text = format!(
        r#"
[[custom_checks]]
name = "items_everywhere"
sql = "select count(*) as value from items"
per_database = true

[[custom_checks]]
name = "items_in_b"
sql = "select count(*) as value from items"
databases = ["{}"]
"#,
        b.name()
    );
    let (_dir, file) = config(&text);
    let (code, report) = health(
        &file,
        &a.dsn(),
        &[
            "--check",
            "items_everywhere",
            "--check",
            "items_in_b",
            "--database",
            a.name(),
            "--database",
            b.name(),
        ],
    )
    .await;
    let every = check_of(&report, "items_everywhere");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        metric(every, "dbtool_custom_items_everywhere", &[("database", a.name())]),
        Some(2.0),
        "{every:#}"
    );
    assert_eq!(
        metric(every, "dbtool_custom_items_everywhere", &[("database", b.name())]),
        Some(7.0),
        "{every:#}"
    );
    let named = check_of(&report, "items_in_b");
    assert_eq!(named["metrics"].as_array().map(Vec::len), Some(1), "{named:#}");
    assert_eq!(
        metric(named, "dbtool_custom_items_in_b", &[("database", b.name())]),
        Some(7.0),
        "{named:#}"
    );

    // Named databases are visited whatever --database says.
    let (_, report) = health(&file, &a.dsn(), &["--check", "items_in_b", "--database", a.name()]).await;
    assert_eq!(
        metric(check_of(&report, "items_in_b"), "dbtool_custom_items_in_b", &[]),
        Some(7.0),
        "{report:#}"
    );
}

#[tokio::test]
async fn labels_become_labels_and_the_series_are_cut_at_one_hundred() {
    let db = fresh_db("custom_labels").await;
    let text = r#"
[[custom_checks]]
name = "regions"
sql = "select 'r' || g as region, g as value from generate_series(1, 150) g"
labels = ["region"]
type = "counter"
"#;
    let (_dir, file) = config(text);
    let (code, s, ch) = status(&file, &db.dsn(), "regions", &[]).await;
    assert_eq!((code, s.as_str()), (3, "UNKNOWN"), "{ch:#}");
    assert_eq!(ch["metrics"].as_array().map(Vec::len), Some(100), "{ch:#}");
    assert_eq!(
        metric(&ch, "dbtool_custom_regions_total", &[("region", "r10")]),
        Some(10.0),
        "{ch:#}"
    );
    assert!(
        findings(&ch)
            .iter()
            .any(|(s, _, m)| s == "UNKNOWN" && m.contains("50 label sets beyond the first 100 were cut")),
        "{ch:#}"
    );
}

#[tokio::test]
async fn null_syntax_errors_and_writes_are_unknown_naming_the_check() {
    let db = fresh_db("custom_unknown").await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE audit (at timestamptz);
         CREATE FUNCTION note() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit VALUES (now()); RETURN 1; END $$;",
    )
    .await
    .expect("schema");
    let text = r#"
[[custom_checks]]
name = "nothing"
sql = "select null::float8 as value"
warning = 1

[[custom_checks]]
name = "typo"
sql = "select 1 as value frm pg_class"

[[custom_checks]]
name = "sneaky_write"
sql = "select note() as value"

[[custom_checks]]
name = "cte_write"
sql = "with w as (insert into audit values (now()) returning 1) select count(*) as value from w"

[[custom_checks]]
name = "no_value"
sql = "select 1 as v"
"#;
    let (_dir, file) = config(text);
    let dsn = db.dsn();
    let (code, s, ch) = status(&file, &dsn, "nothing", &[]).await;
    assert_eq!((code, s.as_str()), (3, "UNKNOWN"), "{ch:#}");
    assert!(
        findings(&ch).iter().any(|(_, _, m)| m.contains("NULL is not 0")),
        "{ch:#}"
    );
    assert_eq!(
        ch["metrics"].as_array().map(Vec::len),
        Some(0),
        "a NULL is no sample: {ch:#}"
    );

    let (_, s, ch) = status(&file, &dsn, "typo", &[]).await;
    assert_eq!(s, "UNKNOWN", "{ch:#}");
    assert!(
        findings(&ch)
            .iter()
            .any(|(_, o, m)| o == "typo" && m.contains("custom_typo") && m.contains("syntax error")),
        "{ch:#}"
    );

    let (_, s, ch) = status(&file, &dsn, "sneaky_write", &[]).await;
    assert_eq!(s, "UNKNOWN", "{ch:#}");
    assert!(
        findings(&ch)
            .iter()
            .any(|(_, _, m)| m.contains("read-only transaction")),
        "{ch:#}"
    );
    let (_, s, ch) = status(&file, &dsn, "cte_write", &[]).await;
    assert_eq!(s, "UNKNOWN", "{ch:#}");
    let (_, s, ch2) = status(&file, &dsn, "no_value", &[]).await;
    assert_eq!(s, "UNKNOWN", "{ch2:#}");
    assert!(findings(&ch2).iter().any(|(_, _, m)| m.contains("value")), "{ch2:#}");
    let written: i64 = c
        .query_one("SELECT count(*) FROM audit", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(written, 0, "a custom check wrote: {ch:#}");

    // A bare INSERT does not get as far as the server: the file is refused at its line.
    let (_dir2, bad) = config("[[custom_checks]]\nname = \"ins\"\nsql = \"insert into audit values (now())\"\n");
    let (code, _, err) = run_dbtool(strings(&["--config", &bad, "health", "--dsn", &dsn])).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(":3:7: [[custom_checks]] sql: starts with INSERT"), "{err}");
    let written: i64 = c
        .query_one("SELECT count(*) FROM audit", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(written, 0);
}

#[tokio::test]
async fn a_pg_monitor_role_without_select_is_told_the_privilege() {
    let db = fresh_db("custom_priv").await;
    let c = db.client().await;
    let role = format!("dbtool_custom_mon_{}", std::process::id());
    c.batch_execute(&format!(
        "CREATE TABLE secret (id int); DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN IN ROLE pg_monitor"
    ))
    .await
    .expect("role");
    let (_dir, file) =
        config("[[custom_checks]]\nname = \"secret_rows\"\nsql = \"select count(*) as value from secret\"\n");
    let dsn = format!("{} user={role}", db.dsn());
    let (code, s, ch) = status(&file, &dsn, "secret_rows", &[]).await;
    assert_eq!((code, s.as_str()), (3, "UNKNOWN"), "{ch:#}");
    assert!(
        findings(&ch)
            .iter()
            .any(|(_, _, m)| m.contains("permission denied for table secret") && m.contains(&role)),
        "{ch:#}"
    );
    // config check --dsn says the same before a deployment.
    let (code, _, err) = run_dbtool(strings(&["config", "check", &file, "--dsn", &dsn])).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("custom check secret_rows") && err.contains("permission denied for table secret"),
        "{err}"
    );
    c.batch_execute(&format!("GRANT SELECT ON secret TO {role}"))
        .await
        .expect("grant");
    let (code, out, err) = run_dbtool(strings(&["config", "check", &file, "--dsn", &dsn])).await;
    assert_eq!(code, 0, "{out}{err}");
    drop(c);
}

#[tokio::test]
async fn hostile_labels_and_huge_numbers_render_safely() {
    let db = fresh_db("custom_hostile").await;
    let text = r#"
[[custom_checks]]
name = "hostile"
help = "Help with \"quotes\", a back\\slash and\na newline."
sql = '''
select * from (values
  ('a"b\c', 1e300::numeric),
  (E'line\nbreak', 99999999999999999999999999999999999999999999999999999999999999999999999999::numeric),
  ('{}=,', -0.5::numeric),
  ('', 'NaN'::numeric),
  ('big', ('1' || repeat('0', 400))::numeric)
) as t(name, value)
'''
labels = ["name"]
"#;
    let (_dir, file) = config(text);
    let dsn = db.dsn();
    let (_, out, err) = run_dbtool(strings(&[
        "--config",
        &file,
        "health",
        "--format",
        "prometheus",
        "--dsn",
        &dsn,
        "--check",
        "hostile",
    ]))
    .await;
    common::promtool_check_metrics(&out).unwrap_or_else(|e| panic!("{e}\n{out}\n{err}"));
    assert!(out.contains(r#"name="a\"b\\c""#), "{out}");
    assert!(out.contains(r#"name="line\nbreak""#), "{out}");
    assert!(out.contains("+Inf"), "{out}");
    let (_, report) = health(&file, &dsn, &["--check", "hostile"]).await;
    let ch = check_of(&report, "hostile");
    let big = metric(ch, "dbtool_custom_hostile", &[("name", "line\nbreak")]);
    assert!(big.is_some_and(|v| v > 1e70), "{ch:#}");
    assert_eq!(
        metric(ch, "dbtool_custom_hostile", &[("name", "a\"b\\c")]),
        Some(1e300),
        "{ch:#}"
    );
}

#[test]
fn config_check_places_every_problem_at_its_line() {
    let text = r#"[[custom_checks]]
name = "Bad Name"
sql = "select 1 as value"

[[custom_checks]]
name = "connections"
sql = "delete from t"
direction = "sideways"

[[custom_checks]]
name = "ok_one"
sql = "select 1 as value"
warning = 10
critical = 5
labels = ["database"]
per_database = true
databases = ["x"]
"#;
    let (_dir, file) = config(text);
    let out = common::dbtool().args(["config", "check", &file]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr).replace(&file, "F");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("F:8:13:") && l.contains("direction: unknown variant 'sideways'")),
        "{err}"
    );
    // A section with a bad value is read no further; fixed, the next problems show.
    let text = text.replace("direction = \"sideways\"\n", "");
    let (_dir, file) = config(&text);
    let out = common::dbtool().args(["config", "check", &file]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr).replace(&file, "F");
    for (at, words) in [
        ("F:2:8:", "name: 'Bad Name' is not a valid name"),
        ("F:6:8:", "'connections' is a built-in check's name"),
        ("F:7:7:", "sql: starts with DELETE"),
        ("F:12:11:", "warning: 10 is above critical 5"),
        ("F:14:10:", "labels: 'database' is taken"),
        ("F:15:16:", "per_database = true runs in every database"),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(at) && l.contains(words)),
            "{at} {words}:\n{err}"
        );
    }
}

#[tokio::test]
async fn config_check_dsn_explains_each_query_without_running_it() {
    let db = fresh_db("custom_prepare").await;
    let text = r#"
[[custom_checks]]
name = "fine"
sql = "select count(*) as value from pg_class"

[[custom_checks]]
name = "missing_table"
sql = "select count(*) as value from no_such_table"

[[custom_checks]]
name = "missing_label"
sql = "select 1 as value"
labels = ["region"]
"#;
    let (_dir, file) = config(text);
    let (code, out, err) = run_dbtool(strings(&["config", "check", &file, "--dsn", &db.dsn()])).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("custom check missing_table") && err.contains("no_such_table"),
        "{err}"
    );
    assert!(
        err.contains("custom check missing_label") && err.contains("region"),
        "{err}"
    );
    assert!(!err.contains("custom check fine"), "{err}");

    // `dbtool checks` lists them after the built-in ones, marked custom, with their help.
    let (code, out, _) = run_dbtool(strings(&["--config", &file, "checks", "--format", "json"])).await;
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let fine = v["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "fine"))
        .expect("listed");
    assert_eq!(fine["custom"], true);
    assert_eq!(fine["metrics"][0], "dbtool_custom_fine");
}

#[tokio::test]
async fn postgres_exporters_example_queries_yaml_gives_its_series() {
    // A cluster of its own: pg_database lists every database, and the shared one's come and go.
    let cluster = common::own_cluster(tempcluster::ClusterOptions::default());
    let db = common::fresh_db_on(&cluster, "custom_yaml").await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE posts (id int); INSERT INTO posts VALUES (1), (2); ANALYZE posts; SELECT * FROM posts",
    )
    .await
    .expect("table");
    common::wait_until(
        &c,
        "SELECT n_tup_ins = 2 FROM pg_stat_user_tables WHERE relname = 'posts'",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/custom/queries.yaml");
    std::fs::copy(example, dir.path().join("queries.yaml")).expect("copy");
    let file = dir.path().join("dbtool.toml");
    std::fs::write(&file, "custom_queries_file = \"queries.yaml\"\n").expect("write");
    let file = file.to_str().expect("utf-8");
    let dsn = db.dsn();
    let names = [
        "pg_replication",
        "pg_postmaster",
        "pg_stat_user_tables",
        "pg_statio_user_tables",
        "pg_database",
    ];
    let args: Vec<&str> = names.iter().flat_map(|n| ["--check", n]).collect();
    let (code, report) = health(file, &dsn, &args).await;
    assert_eq!(code, 0, "{report:#}");
    let m = |check: &str, name: &str, labels: &[(&str, &str)]| metric(check_of(&report, check), name, labels);
    assert_eq!(
        m("pg_replication", "dbtool_custom_pg_replication_is_in_recovery", &[]),
        Some(0.0)
    );
    // On a primary the lag is NULL: NaN as postgres_exporter writes it (null in JSON), no UNKNOWN.
    let repl = check_of(&report, "pg_replication");
    assert!(
        repl["metrics"].as_array().is_some_and(|a| a
            .iter()
            .any(|s| s["name"] == "dbtool_custom_pg_replication_lag" && s["value"].is_null())),
        "{repl:#}"
    );
    assert!(m("pg_postmaster", "dbtool_custom_pg_postmaster_start_time_seconds", &[]).is_some_and(|t| t > 1.7e9));
    let posts = [("schemaname", "public"), ("relname", "posts")];
    assert_eq!(
        m(
            "pg_stat_user_tables",
            "dbtool_custom_pg_stat_user_tables_n_tup_ins_total",
            &posts
        ),
        Some(2.0),
        "{report:#}"
    );
    assert!(
        m(
            "pg_stat_user_tables",
            "dbtool_custom_pg_stat_user_tables_last_analyze",
            &posts
        )
        .is_some_and(|t| t > 1.7e9),
        "{report:#}"
    );
    assert!(m(
        "pg_statio_user_tables",
        "dbtool_custom_pg_statio_user_tables_heap_blks_hit_total",
        &posts
    )
    .is_some());
    assert!(m(
        "pg_database",
        "dbtool_custom_pg_database_size",
        &[("datname", db.name())]
    )
    .is_some_and(|s| s > 0.0));

    let (_, out, err) = run_dbtool(strings(&[
        "--config",
        file,
        "health",
        "--format",
        "prometheus",
        "--dsn",
        &dsn,
    ]))
    .await;
    common::promtool_check_metrics(&out).unwrap_or_else(|e| panic!("{e}\n{err}"));
    assert!(
        out.contains("# TYPE dbtool_custom_pg_stat_user_tables_seq_scan_total counter"),
        "{out}"
    );
    assert!(
        out.contains("# HELP dbtool_custom_pg_database_size Disk space used by the database"),
        "{out}"
    );

    // Usages dbtool does not export are said on every run; an unknown one refuses the file.
    let odd = "odd:\n  query: \"select 1 as n, 2 as ms\"\n  metrics:\n    - n:\n        usage: \"GAUGE\"\n    - ms:\n        usage: \"DURATION\"\n";
    std::fs::write(dir.path().join("queries.yaml"), odd).expect("write");
    let (code, report) = health(file, &dsn, &["--check", "odd"]).await;
    let ch = check_of(&report, "odd");
    assert_eq!(code, 0, "{ch:#}");
    assert!(
        findings(ch)
            .iter()
            .any(|(s, _, m)| s == "OK" && m.contains("usage DURATION is not supported")),
        "{ch:#}"
    );
    std::fs::write(dir.path().join("queries.yaml"), odd.replace("DURATION", "GUAGE")).expect("write");
    let out = common::dbtool().args(["config", "check", file]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(":1:1: custom_queries_file: queries.yaml: odd: column ms: usage 'GUAGE'"),
        "{err}"
    );
}

#[tokio::test]
async fn behind_transaction_pooling_with_one_server_connection_nothing_is_left_behind() {
    let db = fresh_db("custom_pooled").await;
    let bouncer = common::PgBouncer::start(
        common::cluster(),
        &[db.name()],
        &[("pool_mode", "transaction"), ("default_pool_size", "1")],
    );
    let dsn = bouncer.dsn(db.name());
    let text = r#"
[[custom_checks]]
name = "classes"
sql = "select count(*) as value from pg_class"

[[custom_checks]]
name = "broken"
sql = "select 1 as value frm nowhere"

[[custom_checks]]
name = "no_table"
sql = "select count(*) as value from no_such_table"
"#;
    let (_dir, file) = config(text);
    let (_, report) = health(
        &file,
        &dsn,
        &["--check", "classes", "--check", "broken", "--check", "no_table"],
    )
    .await;
    assert!(
        metric(check_of(&report, "classes"), "dbtool_custom_classes", &[]).is_some_and(|v| v > 10.0),
        "{report:#}"
    );
    assert_eq!(check_of(&report, "broken")["status"], "UNKNOWN", "{report:#}");
    let (code, _, err) = run_dbtool(strings(&["config", "check", &file, "--dsn", &dsn])).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("custom check no_table") && !err.contains("custom check classes"),
        "{err}"
    );
    // The application's next transaction on the one server connection sees the server's own
    // settings and no statement prepared by dbtool (its own query is prepared: not counted).
    let app = common::connect(&dsn).await;
    let row = app
        .query_one(
            "SELECT current_setting('default_transaction_read_only'), current_setting('statement_timeout'), \
             (SELECT count(*) FROM pg_prepared_statements WHERE strpos(statement, 'db' || 'tool') > 0)",
            &[],
        )
        .await
        .expect("application query");
    let seen: (String, String, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        seen,
        ("off".to_string(), "0".to_string(), 0),
        "dbtool left state on the pooled connection"
    );
    app.batch_execute("CREATE TABLE app_writes (x int); INSERT INTO app_writes VALUES (1)")
        .await
        .expect("the application can write");
}

#[tokio::test]
async fn a_slow_query_is_marked_in_pg_stat_activity_and_stopped_by_statement_timeout() {
    let db = fresh_db("custom_slow").await;
    let (_dir, file) = config("[[custom_checks]]\nname = \"sleepy\"\nsql = \"select 1 as value from pg_sleep(30)\"\n");
    let dsn = db.dsn();
    let run = tokio::spawn({
        let (file, dsn) = (file.clone(), dsn.clone());
        async move { health(&file, &dsn, &["--check", "sleepy", "--statement-timeout", "3s"]).await }
    });
    let watcher = db.client().await;
    common::wait_until(
        &watcher,
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'dbtool' \
         AND query LIKE '/* dbtool: custom sleepy */ SELECT%'",
    )
    .await;
    let (code, report) = run.await.expect("join");
    let ch = check_of(&report, "sleepy");
    assert_eq!(code, 3, "{ch:#}");
    assert!(
        findings(ch)
            .iter()
            .any(|(_, o, m)| o == "sleepy" && m.contains("statement timeout")),
        "{ch:#}"
    );
}
