//! Issue 13 item 7, one output flag: every command that prints results takes `--format
//! table|json`, `--json` is a hidden alias of `--format json`, and every JSON document is one
//! object with a `schema` field. Each document is parsed and its content checked here.

mod common;

use std::path::Path;

use common::backup::{assert_exit, backup_cluster, backup_db, dbt, run, text};
use common::{fresh_db, fresh_db_on};
use serde_json::Value;

/// Runs dbtool with `args`, expects `code`, parses stdout as one JSON object with `schema: 1`.
fn doc(args: &[&str], code: i32) -> Value {
    let out = run(dbt().args(args));
    assert_exit(&out, code);
    let stdout = text(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"));
    assert!(v.is_object(), "{args:?}: not an object: {v}");
    assert_eq!(v["schema"], 1, "{args:?}: {v}");
    v
}

/// The same document through `--format json`, `-f json` and the hidden `--json` alias.
fn doc_all_ways(args: &[&str], code: i32) -> Value {
    let with = |flag: &[&str]| doc(&[args, flag].concat(), code);
    let v = with(&["--format", "json"]);
    assert_eq!(with(&["-f", "json"])["schema"], v["schema"]);
    assert_eq!(with(&["--json"])["schema"], v["schema"]);
    v
}

#[test]
fn checks_is_an_object_with_the_registry() {
    let v = doc_all_ways(&["checks"], 0);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"connections") && names.contains(&"bloat"), "{names:?}");
    let table = run(dbt().args(["checks", "--format", "table"]));
    assert_exit(&table, 0);
    assert!(text(&table.stdout).contains("connections"));
    let help = text(&run(dbt().args(["checks", "--help"])).stdout);
    assert!(
        help.contains("--format") && !help.contains("--json"),
        "--json is hidden: {help}"
    );
}

#[test]
fn config_check_says_valid_or_lists_every_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[[targets]]\nname = \"main\"\ndsn = \"host=/tmp dbname=app\"\n").expect("write");
    let v = doc_all_ways(&["config", "check", &good.display().to_string()], 0);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "bogus = 1\n[checks.nope]\nwarning = 1\n").expect("write");
    let v = doc(&["config", "check", &bad.display().to_string(), "--format", "json"], 1);
    assert_eq!(v["valid"], false, "{v}");
    assert!(v["errors"].as_array().is_some_and(|e| !e.is_empty()), "{v}");
    assert!(v["file"].as_str().is_some_and(|f| f.ends_with("bad.toml")), "{v}");
}

#[test]
fn schedule_list_has_each_job_with_its_next_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("dbtool.toml");
    std::fs::write(
        &config,
        "[[targets]]\nname = \"main\"\ndsn = \"host=/tmp dbname=app\"\n\n[schedule]\ntimezone = \"Europe/Berlin\"\n\n\
         [[jobs]]\nname = \"health\"\nkind = \"health\"\nschedule = \"*/5 * * * *\"\ntarget = \"main\"\n",
    )
    .expect("write");
    let v = doc_all_ways(&["--config", &config.display().to_string(), "schedule", "--list"], 0);
    assert_eq!(v["timezone"], "Europe/Berlin", "{v}");
    let job = &v["jobs"][0];
    assert_eq!(job["name"], "health", "{v}");
    assert_eq!(job["kind"], "health", "{v}");
    assert_eq!(job["target"], "main", "{v}");
    assert_eq!(job["schedule"], "*/5 * * * *", "{v}");
    let next = job["next"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(next.len(), 5, "{v}");
    for t in next {
        let t = t.as_str().unwrap_or_default();
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
    }
}

#[tokio::test]
async fn migrate_status_migrate_and_history() {
    let db = fresh_db("output_migrate").await;
    let dsn = db.dsn();
    let v = doc_all_ways(&["migrate", "--status", "--dsn", &dsn], 1);
    let st = &v["targets"][0];
    assert!(st["target"].as_str().is_some_and(|t| t.contains(db.name())), "{v}");
    assert_eq!(st["migrations"][0]["state"], "pending", "{v}");
    assert_eq!(st["migrations"][0]["version"], 1, "{v}");
    let v = doc(&["migrate", "--dsn", &dsn, "--format", "json"], 0);
    assert_eq!(v["targets"][0]["applied"][0], 1, "{v}");
    let v = doc(&["migrate", "--dsn", &dsn, "--format", "json"], 0);
    assert_eq!(v["targets"][0]["applied"], serde_json::json!([]), "{v}");
    let v = doc(&["migrate", "--status", "--dsn", &dsn, "--format", "json"], 0);
    assert_eq!(v["targets"][0]["migrations"][0]["state"], "applied", "{v}");
    let v = doc_all_ways(&["history", "--dsn", &dsn], 0);
    assert_eq!(v["runs"], serde_json::json!([]), "{v}");
}

#[tokio::test]
async fn archive_summary() {
    let db = fresh_db("output_archive").await;
    common::posts::create_daily_posts(&db.client().await, 500).await;
    let args = common::posts::daily_archive_args(&db.dsn());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = doc(&[&args[..], &["--format", "json"]].concat(), 0);
    // Rows 366..=500 days old (365 in a leap year's reach): about 135 moved.
    let rows = v["archive"]["rows"].as_i64().unwrap_or(-1);
    assert!((130..=140).contains(&rows), "{v}");
    assert_eq!(v["archive"]["table"], "public.posts", "{v}");
}

fn backups_in(dest: &Path) -> String {
    dest.display().to_string()
}

#[tokio::test]
async fn backups_list_verify_prune_and_restore() {
    let db = fresh_db_on(backup_cluster(), "output_backups").await;
    db.client()
        .await
        .batch_execute("CREATE TABLE t AS SELECT generate_series(1, 100) AS id; ANALYZE t;")
        .await
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("backups");
    assert_exit(&backup_db(&db, &dest, &[]), 0);
    let d = backups_in(&dest);
    let list = doc_all_ways(&["backups", "list", "--dest", &d], 0);
    let id = list["backups"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{list}"))
        .to_string();
    assert_eq!(list["backups"][0]["database"], db.name(), "{list}");

    let v = doc_all_ways(&["backups", "verify", "--dest", &d], 0);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["level"], "list", "{v}");
    assert_eq!(v["backups"][0]["id"], id.as_str(), "{v}");
    assert_eq!(v["backups"][0]["ok"], true, "{v}");
    // A corrupted dump: the document says which and why, and the exit code is still 2.
    let dump = std::fs::read_dir(dest.join(&id))
        .expect("backup dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "dump"))
        .unwrap_or_else(|| panic!("no dump file in {id}"));
    let mut bytes = std::fs::read(&dump).expect("read dump");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&dump, bytes).expect("corrupt");
    let v = doc(&["backups", "verify", "--dest", &d, "--format", "json"], 2);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["backups"][0]["ok"], false, "{v}");
    assert!(v["backups"][0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");

    let v = doc_all_ways(&["backups", "prune", "--dest", &d, "--keep-last", "5", "--dry-run"], 0);
    assert_eq!(v["dry_run"], true, "{v}");
    assert_eq!(v["kept"][0]["id"], id.as_str(), "{v}");
}

#[tokio::test]
async fn restore_reports_what_it_restored() {
    let db = fresh_db_on(backup_cluster(), "output_restore").await;
    db.client()
        .await
        .batch_execute("CREATE TABLE t AS SELECT generate_series(1, 10) AS id; ANALYZE t;")
        .await
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("backups");
    assert_exit(&backup_db(&db, &dest, &[]), 0);
    let to = backup_cluster().dsn(&format!("{}_restored", db.name()));
    let v = doc(
        &[
            "restore",
            "--latest",
            "--to",
            &to,
            "--dest",
            &backups_in(&dest),
            "--format",
            "json",
        ],
        0,
    );
    assert!(
        v["id"]
            .as_str()
            .is_some_and(|i| i.starts_with(&format!("{}_", db.name()))),
        "{v}"
    );
    assert_eq!(v["database"], format!("{}_restored", db.name()), "{v}");
    assert!(!v["server"].as_str().unwrap_or_default().contains("password"), "{v}");
    let v = doc_all_ways(
        &[
            "restore",
            "--latest",
            "--check",
            "--dsn",
            &db.dsn(),
            "--dest",
            &backups_in(&dest),
        ],
        0,
    );
    assert_eq!(v["ok"], true, "{v}");
    let t = v["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "public.t").cloned())
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(t["restored"], 10, "{v}");
    assert_eq!(t["estimated"], 10, "{v}");
}

#[test]
fn backup_format_is_pg_dumps_archive_format_and_says_so() {
    let help = text(&run(dbt().args(["backup", "--help"])).stdout);
    let format = help
        .split("--format <FORMAT>")
        .nth(1)
        .unwrap_or_else(|| panic!("{help}"));
    assert!(format.contains("pg_dump's archive format"), "{help}");
    assert!(help.contains("--json"), "{help}");
}
