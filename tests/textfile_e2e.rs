//! The textfile workflow end to end, with real parts only: `dbtool health --output` into a
//! node_exporter textfile directory, node_exporter serving it, Prometheus scraping that with
//! the shipped rules loaded, and an alert going pending → firing on a real condition.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::run_dbtool;
use common::wait_until as wait_for;
use common::{fresh_db_on, get_when_up, metric_names_in, own_cluster, start_node_exporter, start_prometheus};
use serde_json::Value;
use tempcluster::ClusterOptions;

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/dbtool-rules.yml");

/// The alert this test drives; its condition is real (connections used up on a cluster with
/// max_connections = 10) and needs no waiting for a threshold duration.
const ALERT: &str = "PostgresConnectionsCritical";

/// Every `for:` is shortened to this in the copy Prometheus loads, so pending → firing takes
/// seconds instead of minutes; expressions, labels and annotations stay as shipped.
const SHORT_FOR: &str = "5s";

/// Bound on waiting for the alert to go pending and then firing.
const ALERT_WITHIN: Duration = Duration::from_secs(60);

/// The checks whose every family this test's conditions produce (blocked and idle-in-transaction
/// sessions, dead tuples, block reads); other checks emit some families only under conditions
/// this test does not create (a standby, a bloated index …).
const FULLY_EXERCISED: &[&str] = &["connections", "locks", "long_transactions", "vacuum", "cache_hit"];

/// Every family of the `FULLY_EXERCISED` checks (from `dbtool checks --format json`) and the report's own.
async fn expected_families() -> BTreeSet<String> {
    let (code, out, err) = run_dbtool(vec!["checks".into(), "--format".into(), "json".into()]).await;
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let mut names: BTreeSet<String> = doc["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| FULLY_EXERCISED.iter().any(|n| c["name"] == *n))
        .flat_map(|c| c["metrics"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    // A one-shot run writes every report family but the result age, which only scheduled
    // jobs keep (tests/schedule_refresh.rs).
    let scheduled_only = dbtool::report::prometheus::CHECK_AGE.name;
    names.extend(
        dbtool::report::prometheus::REPORT_FAMILIES
            .iter()
            .filter(|f| f.name != scheduled_only)
            .map(|f| f.name.to_string()),
    );
    names
}

/// Sample lines of `family` in Prometheus text.
fn series_count(text: &str, family: &str) -> usize {
    text.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .count()
}

/// The shipped rules with every `for:` shortened; Err if the file has none (then this test
/// would prove nothing about pending → firing).
fn rules_with_short_for(shipped: &str) -> String {
    let mut replaced = 0;
    let lines: Vec<String> = shipped
        .lines()
        .map(|line| match line.trim_start().strip_prefix("for: ") {
            Some(_) => {
                replaced += 1;
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{indent}for: {SHORT_FOR}")
            }
            None => line.to_string(),
        })
        .collect();
    assert!(replaced > 0, "no `for:` in {RULES}");
    lines.join("\n") + "\n"
}

/// The states ALERT has passed through, polling /api/v1/alerts until it fires or time runs out.
async fn watch_alert(prom_port: u16) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + ALERT_WITHIN;
    let mut seen: Vec<String> = Vec::new();
    while tokio::time::Instant::now() < deadline && seen.last().map(String::as_str) != Some("firing") {
        let body = get_when_up("prometheus", prom_port, "/api/v1/alerts", Duration::from_secs(10)).await;
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/v1/alerts not JSON ({e}): {body}"));
        let alert = v["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == ALERT);
        if let Some(state) = alert.and_then(|a| a["state"].as_str()) {
            if seen.last().map(String::as_str) != Some(state) {
                eprintln!(
                    "{ALERT} is {state}: {}",
                    alert.map(Value::to_string).unwrap_or_default()
                );
                seen.push(state.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn health_textfile_through_node_exporter_and_prometheus_fires_a_shipped_alert() {
    let cluster = own_cluster(ClusterOptions {
        conf: vec![
            "max_connections = 10".into(),
            "superuser_reserved_connections = 3".into(),
        ],
        ..Default::default()
    });
    let db = fresh_db_on(&cluster, "textfile").await;
    // Seven client sessions fill the 7 usable slots (dbtool, a superuser here, gets a reserved
    // one). Two of them also give the lock and idle-in-transaction families something to show.
    let setup = db.client().await;
    setup
        .batch_execute(
            "CREATE TABLE posts (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
             INSERT INTO posts SELECT generate_series(1, 10000);
             DELETE FROM posts WHERE id % 2 = 0;
             SELECT count(*) FROM posts;",
        )
        .await
        .expect("setup");
    // Table statistics reach the views asynchronously; the table families need them.
    wait_for(
        &setup,
        "SELECT n_dead_tup > 0 AND heap_blks_hit > 0 FROM pg_stat_user_tables JOIN pg_statio_user_tables USING (relid) \
         WHERE relid = 'posts'::regclass",
    )
    .await;
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let waiter = db.client().await;
    let waiting = tokio::spawn(async move { waiter.simple_query("SELECT count(*) FROM posts").await.map(|_| ()) });
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(db.client().await);
    }

    // 1. dbtool writes the textfile.
    let textfiles = tempfile::tempdir().expect("tempdir");
    let file = textfiles.path().join("dbtool.prom");
    let args = [
        "health",
        "--format",
        "prometheus",
        "--max-connections",
        "1",
        "--set",
        "cache_hit.min_blocks=1",
        "--dsn",
        &db.dsn(),
        "--output",
        &file.display().to_string(),
    ];
    let (code, _, err) = run_dbtool(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 2, "connections over 90 % must be CRITICAL: {err}");
    let written = std::fs::read_to_string(&file).expect("the textfile");
    assert!(written.contains("dbtool_up{target="), "{written}");

    let in_file = metric_names_in(&written);
    let absent: Vec<String> = expected_families().await.difference(&in_file).cloned().collect();
    assert!(
        absent.is_empty(),
        "families missing from the textfile: {absent:?}\n{written}"
    );

    // 2. node_exporter serves it: every family of the file with all its series, no scrape error.
    let (_exporter, exporter_port) = start_node_exporter(textfiles.path());
    let scraped = get_when_up("node_exporter", exporter_port, "/metrics", Duration::from_secs(10)).await;
    assert!(scraped.contains("\nnode_textfile_scrape_error 0\n"), "{scraped}");
    for family in &in_file {
        assert_eq!(
            series_count(&scraped, family),
            series_count(&written, family),
            "node_exporter serves a different number of {family} series than dbtool wrote"
        );
    }

    // 3. Prometheus scrapes node_exporter with the shipped rules and the alert fires.
    let prom_dir = tempfile::tempdir().expect("tempdir");
    let rules = prom_dir.path().join("dbtool-rules.yml");
    let shipped = std::fs::read_to_string(RULES).expect("shipped rules");
    std::fs::write(&rules, rules_with_short_for(&shipped)).expect("write rules");
    let (_prometheus, prom_port) = start_prometheus(prom_dir.path(), exporter_port, &rules);
    get_when_up("prometheus", prom_port, "/-/ready", Duration::from_secs(30)).await;
    let states = watch_alert(prom_port).await;
    let log = std::fs::read_to_string(prom_dir.path().join("prometheus.log")).unwrap_or_default();
    assert_eq!(
        states,
        ["pending", "firing"],
        "{ALERT} should go pending, then firing, within {ALERT_WITHIN:?}\nprometheus log:\n{log}"
    );
    assert_rules_evaluate_cleanly(prom_port, &shipped).await;
    waiting.abort();
}

/// Every shipped group is loaded and no rule failed to evaluate against the real series.
async fn assert_rules_evaluate_cleanly(prom_port: u16, shipped: &str) {
    let body = get_when_up("prometheus", prom_port, "/api/v1/rules", Duration::from_secs(10)).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/v1/rules not JSON ({e}): {body}"));
    let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
    let loaded: usize = groups.iter().map(|g| g["rules"].as_array().map_or(0, Vec::len)).sum();
    let shipped_rules = shipped
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert_eq!(loaded, shipped_rules, "{body}");
    for rule in groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
    {
        assert_ne!(rule["health"], "err", "rule failed to evaluate: {rule}");
    }
}
