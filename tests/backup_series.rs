//! Regression test for "retention deletes the richer backup": a plain ad-hoc backup pruned
//! that day's earlier `--globals --files` backup, and the roles and application files were
//! gone. Backups with different contents are separate retention series.
//!
//! The major under test, with client tools that can dump it (tests/common/backup.rs).

mod common;

use common::backup::{assert_exit, backup_cluster, backup_db, backup_ids, dbt, run, text};
use common::fresh_db_on;

/// One backup a day, nothing weekly or monthly: the tightest policy that still keeps a day.
const TIGHT: &[&str] = &["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];

#[tokio::test]
async fn a_plain_backup_does_not_prune_that_days_backup_with_globals_and_files() {
    let db = fresh_db_on(backup_cluster(), "series").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("backups");
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&uploads).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(uploads.join("cat.png"), b"not really a png").unwrap_or_else(|e| panic!("{e}"));
    let u = uploads.to_string_lossy();

    let mut rich = vec!["--globals", "--files", &u];
    rich.extend(TIGHT);
    assert_exit(&backup_db(&db, &dest, &rich), 0);
    let rich_id = backup_ids(&dest).remove(0);
    // The plain ad-hoc backup of the issue, the same day, with the same tight retention.
    let plain = backup_db(&db, &dest, TIGHT);
    assert_exit(&plain, 0);
    assert!(!text(&plain.stdout).contains("pruned"), "{}", text(&plain.stdout));
    let ids = backup_ids(&dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(dest.join(&rich_id).join("globals.sql").is_file());
    assert!(dest.join(&rich_id).join("files.tar.gz").is_file());

    // `backups prune` says which series each backup is in and why it stays.
    let mut args = vec!["backups", "prune", "--json"];
    args.extend(TIGHT);
    let out = run(dbt().args(&args).arg("--dest").arg(&dest));
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["deleted"], serde_json::json!([]), "{v}");
    let kept = v["kept"].as_array().cloned().unwrap_or_default();
    let entry = kept
        .iter()
        .find(|k| k["id"] == rich_id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["series"], format!("{}+globals+files", db.name()).as_str(), "{v}");
    let why = entry["why"].to_string();
    assert!(
        why.contains("newest with globals") && why.contains("newest with files"),
        "{v}"
    );

    // A second plain backup prunes the first plain one, its own series, and nothing else.
    let again = backup_db(&db, &dest, TIGHT);
    assert_exit(&again, 0);
    let left = backup_ids(&dest);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&rich_id), "{left:?}");
    assert!(!left.contains(&ids[1]), "{left:?}");
    let table = run(dbt()
        .args(["backups", "prune", "--dry-run", "--dest"])
        .arg(&dest)
        .args(TIGHT));
    assert!(
        text(&table.stdout).contains(&format!("keep  {rich_id}  [{}+globals+files]", db.name())),
        "{}",
        text(&table.stdout)
    );
}
