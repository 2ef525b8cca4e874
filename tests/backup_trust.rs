//! Regression tests for "a corrupted backup restores": every reader (restore --to, restore
//! --check, backups verify) checks each file against the manifest's sha256 before pg_restore
//! sees it, manifest paths cannot leave the backup, and `backups verify` fails loudly on a
//! destination with nothing to verify or a manifest it cannot read.
//!
//! The dump-based tests run on the major under test with client tools that can dump it
//! (tests/common/backup.rs); the verify tests need no server.

mod common;

use std::path::{Path, PathBuf};

use common::backup::{assert_exit, backup_cluster, backup_db, backup_ids, dbt, hidden_leftovers, run, text};
use common::{connect, fresh_db_on, TestDb};

/// Uncompressed, so that one changed byte changes a row instead of breaking decompression:
/// the case where pg_restore itself notices nothing.
const RAW: &[&str] = &["--compress", "none"];

async fn seed(db: &TestDb) {
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE posts (id int PRIMARY KEY, body text);
             INSERT INTO posts SELECT g, 'post ' || g FROM generate_series(1, 5000) g;
             ANALYZE;",
        )
        .await
        .unwrap_or_else(|e| panic!("seed: {e}"));
}

/// Changes "post 4242" into "post 4243" in the first file under `dir` that holds it: one byte.
fn alter_one_row(dir: &Path) -> PathBuf {
    // A COPY line: "4242\tpost 4242\n".
    let needle = b"\tpost 4242\n";
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
                bytes[at + 9] = b'3';
                std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                return path;
            }
        }
    }
    panic!("no file under {} holds row 4242 uncompressed", dir.display());
}

async fn databases_like(pattern: &str) -> Vec<String> {
    let client = connect(&backup_cluster().dsn("postgres")).await;
    let rows = client
        .query("SELECT datname FROM pg_database WHERE datname LIKE $1", &[&pattern])
        .await
        .unwrap_or_else(|e| panic!("pg_database: {e}"));
    rows.iter().map(|r| r.get(0)).collect()
}

/// restore --check and restore --to both refuse, name the file and both digests, and leave
/// the server as it was: no scratch database, no target database, no staging directory.
async fn assert_refused(db: &TestDb, dest: &Path, id: &str, altered: &str, jobs: &[&str]) {
    let check = run(dbt()
        .args(["restore", id, "--check", "--dsn", &db.dsn(), "--dest"])
        .arg(dest)
        .args(jobs));
    assert_exit(&check, 2);
    let err = text(&check.stderr);
    assert!(
        err.contains(altered) && err.contains("does not match its sha256") && err.contains("manifest "),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(databases_like("dbtool_check_%").await.is_empty());

    let target = format!("{}_restored", db.name());
    let to = backup_cluster().dsn(&target);
    let out = run(dbt().args(["restore", id, "--to", &to, "--dest"]).arg(dest).args(jobs));
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains(altered), "{}", text(&out.stderr));
    assert!(databases_like(&target).await.is_empty(), "the target was created");
    assert!(hidden_leftovers(dest).is_empty(), "{:?}", hidden_leftovers(dest));
}

#[tokio::test]
async fn a_changed_byte_in_a_custom_dump_is_refused_before_pg_restore_reads_it() {
    let db = fresh_db_on(backup_cluster(), "trust custom").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    assert_exit(&backup_db(&db, dir.path(), RAW), 0);
    let id = backup_ids(dir.path()).remove(0);
    let file = alter_one_row(&dir.path().join(&id));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert_refused(&db, dir.path(), &id, &name, &[]).await;
}

#[tokio::test]
async fn a_changed_byte_in_a_directory_dump_is_refused_before_pg_restore_reads_it() {
    let db = fresh_db_on(backup_cluster(), "trust directory").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = backup_db(&db, dir.path(), &["--format", "directory", "--compress", "none"]);
    assert_exit(&out, 0);
    let id = backup_ids(dir.path()).remove(0);
    let file = alter_one_row(&dir.path().join(&id));
    // "app.dir/3345.dat": the path inside the backup, as the manifest names it.
    let rel = file
        .strip_prefix(dir.path().join(&id))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert_refused(&db, dir.path(), &id, &rel, &["--jobs", "2"]).await;
}

/// Rewrites the backup's manifest.json through `edit`.
fn edit_manifest(backup: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = backup.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_default()).unwrap_or_else(|e| panic!("manifest: {e}"));
    edit(&mut m);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn manifest_paths_and_symlinks_that_leave_the_backup_are_refused() {
    let db = fresh_db_on(backup_cluster(), "trust paths").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("backups");
    assert_exit(&backup_db(&db, &dest, &[]), 0);
    let id = backup_ids(&dest).remove(0);
    let backup = dest.join(&id);
    let dump = format!("{}.dump", db.name());
    // A valid dump outside the backup, with a manifest entry whose checksum matches it: only
    // the path is wrong. The old code restored it.
    let outside = dir.path().join("elsewhere.dump");
    std::fs::rename(backup.join(&dump), &outside).unwrap_or_else(|e| panic!("{e}"));
    let escape = "../../elsewhere.dump";
    edit_manifest(&backup, |m| {
        m["dump"] = escape.into();
        m["files"][0]["path"] = escape.into();
    });
    let to = backup_cluster().dsn(&format!("{}_escaped", db.name()));
    let out = run(dbt().args(["restore", &id, "--to", &to, "--dest"]).arg(&dest));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("leaves the backup directory"),
        "{}",
        text(&out.stderr)
    );
    let verify = run(dbt().args(["backups", "verify", "--dest"]).arg(&dest));
    assert_exit(&verify, 2);
    assert!(text(&verify.stdout).contains("leaves the backup directory"));

    // The manifest restored, the dump replaced by a symlink to the same bytes outside.
    edit_manifest(&backup, |m| {
        m["dump"] = dump.clone().into();
        m["files"][0]["path"] = dump.clone().into();
    });
    std::os::unix::fs::symlink(&outside, backup.join(&dump)).unwrap_or_else(|e| panic!("{e}"));
    let out = run(dbt()
        .args(["restore", &id, "--check", "--dsn", &db.dsn(), "--dest"])
        .arg(&dest));
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("is a symlink"), "{}", text(&out.stderr));
    assert!(databases_like(&format!("{}_escaped", db.name())).await.is_empty());
    assert!(databases_like("dbtool_check_%").await.is_empty());
}

#[test]
fn verify_fails_on_an_empty_destination_and_on_a_garbled_manifest() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = run(dbt().args(["backups", "verify", "--dest"]).arg(dir.path()));
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("no backup in"), "{}", text(&out.stderr));

    let out = run(dbt().args(["backups", "verify", "-d", "app", "--dest"]).arg(dir.path()));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("no backup of database app"),
        "{}",
        text(&out.stderr)
    );

    let broken = dir.path().join("app_20260101T031500Z");
    std::fs::create_dir(&broken).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(broken.join("manifest.json"), b"{\"schema\": 1, \"id\": ").unwrap_or_else(|e| panic!("{e}"));
    let out = run(dbt().args(["backups", "verify", "--dest"]).arg(dir.path()));
    assert_exit(&out, 2);
    assert!(
        text(&out.stdout).contains("FAILED  app_20260101T031500Z  manifest.json does not parse"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("not a backup dbtool can verify"));
    // Asked for by id, the same backup is named as broken, not as missing.
    let out = run(dbt()
        .args(["restore", "app_20260101T031500Z", "--check", "--dest"])
        .arg(dir.path()));
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("does not parse"), "{}", text(&out.stderr));
}
