//! Backups to S3-compatible object storage (`--dest s3://…`, `--copy-to s3://…`) against a
//! real S3 server with signature checking (moto's, `tests/common/s3.rs`): backup, list,
//! verify and restore identical; a tampered object refused; a killed upload never listed and
//! cleaned by the next run; retention on the remote; no credential in any output.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::backup::{
    assert_exit, backup_cluster, backup_ids, client, client_major, contents, exec, run, seed, server_major, text,
};
use common::s3::{ids, S3};
use common::{connect, fresh_db_on, SmallFs};

/// Runs it and checks that neither the secret key nor the key id is in its output or logs.
fn run_s3(s3: &S3, cmd: &mut Command) -> Output {
    s3.run_quiet(cmd, &[])
}

fn staged(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn backup_to_s3_lists_verifies_and_restores_identical() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3_roundtrip").await;
    seed(&db, 20_000).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let metrics = tmp.path().join("backup.prom");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).expect("work");
    let url = s3.url("prod/app");
    let out = run_s3(
        &s3,
        s3.dbtool(&work)
            .args(["backup", "--dsn", &db.dsn(), "--dest", &url, "--metrics"])
            .arg(&metrics),
    );
    assert_exit(&out, 0);
    assert!(staged(&work).is_empty(), "staging left behind: {:?}", staged(&work));
    let list = s3.listed(&work, &url);
    let got = ids(&list);
    assert_eq!(got.len(), 1, "{list}");
    let id = &got[0];
    let keys = s3.keys("prod/app/");
    assert!(keys.contains(&format!("prod/app/{id}/manifest.json")), "{keys:?}");
    let dump_key = format!("prod/app/{id}/{}", list["backups"][0]["dump"].as_str().expect("dump"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&s3.get(&format!("prod/app/{id}/manifest.json"))).expect("manifest");
    assert_eq!(
        s3.get(&dump_key).len() as u64,
        manifest["bytes"].as_u64().expect("bytes")
    );

    let out = run_s3(
        &s3,
        s3.dbtool(&work).args(["backups", "verify", "--full", "--dest", &url]),
    );
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains(&format!("ok      {id}")),
        "{}",
        text(&out.stdout)
    );

    let into = fresh_db_on(backup_cluster(), "s3_restored").await;
    let out = run_s3(
        &s3,
        s3.dbtool(&work)
            .args(["restore", "--dest", &url, id, "--to", &into.dsn()]),
    );
    assert_exit(&out, 0);
    assert_eq!(contents(&into.dsn()).await, contents(&db.dsn()).await);
    assert!(staged(&work).is_empty(), "mirror left behind: {:?}", staged(&work));

    let prom = std::fs::read_to_string(&metrics).expect("metrics file");
    let value = |name: &str| {
        prom.lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("database=\"{}\"", db.name())))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing: {prom}"))
    };
    assert!(value("dbtool_backup_last_success_timestamp_seconds") > 0.0, "{prom}");
    assert_eq!(
        value("dbtool_backup_last_upload_bytes"),
        manifest["bytes"].as_f64().expect("bytes")
    );
    assert!(value("dbtool_backup_last_upload_duration_seconds") > 0.0, "{prom}");
    assert_eq!(value("dbtool_backups_verified"), 1.0);

    // Wrong credentials: refused by the server's signature check, named, never echoed.
    let wrong = "wrongSecretValue0123456789";
    let out = run(s3
        .dbtool(&work)
        .env("AWS_SECRET_ACCESS_KEY", wrong)
        .args(["backups", "list", "--dest", &url]));
    assert_exit(&out, 3);
    let err = text(&out.stderr);
    assert!(
        err.contains("s3://dbtool-test/prod/app") && !err.contains(wrong),
        "{err}"
    );
}

#[tokio::test]
async fn copy_to_keeps_the_local_backup_and_uploads_the_same_one() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3_copy").await;
    seed(&db, 2_000).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dest = tmp.path().join("local");
    let url = s3.url("copy");
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["backup", "--dsn", &db.dsn(), "--globals", "--dest"])
            .arg(&dest)
            .args(["--copy-to", &url]),
    );
    assert_exit(&out, 0);
    let local = backup_ids(&dest);
    assert_eq!(local.len(), 1);
    assert_eq!(ids(&s3.listed(tmp.path(), &url)), local);
    let remote = s3.get(&format!("copy/{}/manifest.json", local[0]));
    let on_disk = std::fs::read(dest.join(&local[0]).join("manifest.json")).expect("local manifest");
    assert_eq!(remote, on_disk, "the uploaded manifest is the local one");
    assert!(s3.keys("copy/").iter().any(|k| k.ends_with("/globals.sql")));
    // --copy-to must name object storage.
    let out = run(s3
        .dbtool(tmp.path())
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(&dest)
        .args(["--copy-to", "/tmp/elsewhere"]));
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("s3://BUCKET/PREFIX"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_tampered_object_fails_verify_and_restore_refuses_it() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3_tamper").await;
    seed(&db, 5_000).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let url = s3.url("tamper");
    assert_exit(
        &run_s3(
            &s3,
            s3.dbtool(tmp.path())
                .args(["backup", "--dsn", &db.dsn(), "--dest", &url]),
        ),
        0,
    );
    let list = s3.listed(tmp.path(), &url);
    let id = ids(&list).remove(0);
    let key = format!("tamper/{id}/{}", list["backups"][0]["dump"].as_str().expect("dump"));
    let mut body = s3.get(&key);
    let mid = body.len() / 2;
    body[mid] ^= 0xff;
    s3.put(&key, &body);

    let out = run_s3(&s3, s3.dbtool(tmp.path()).args(["backups", "verify", "--dest", &url]));
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("sha256"), "{}", text(&out.stderr));
    let into = fresh_db_on(backup_cluster(), "s3_tamper_into").await;
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["restore", "--dest", &url, "--latest", "--to", &into.dsn()]),
    );
    assert_exit(&out, 2);
    let tables: i64 = connect(&into.dsn())
        .await
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .expect("count tables")
        .get(0);
    assert_eq!(tables, 0, "a refused restore wrote into the database");
}

#[tokio::test]
async fn a_killed_upload_is_never_listed_and_the_next_run_cleans_up() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3_killed").await;
    // About 90 MB uncompressed: many 8 MiB parts, so the kill lands mid-upload.
    seed(&db, 400_000).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let url = s3.url("killed");
    let mut child = s3
        .dbtool(tmp.path())
        .args(["backup", "--dsn", &db.dsn(), "--dest", &url, "--compress", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dbtool");
    let uploading = s3.wait_for_part("killed/", Duration::from_secs(120));
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(uploading, "no multipart upload was seen before the kill");
    // Its parts are on the server, billable, until the upload is aborted.
    assert!(
        s3.open_uploads("killed/") >= 1,
        "no open multipart upload after the kill"
    );
    // Until a dbtool run sweeps it (any run that reads object storage does).
    assert!(
        !staged(tmp.path()).is_empty(),
        "the killed run's staging directory should still be there"
    );
    let list = s3.listed(tmp.path(), &url);
    assert!(ids(&list).is_empty(), "a killed upload lists as a backup: {list}");
    assert!(
        staged(tmp.path()).is_empty(),
        "the killed run's staging directory was not swept: {:?}",
        staged(tmp.path())
    );
    // What a run killed between two files leaves: a complete object and no manifest.
    let orphan = format!("killed/{}_20200101T000000Z/{}.dump", db.name(), db.name());
    s3.put(&orphan, b"half a backup");
    let list = s3.listed(tmp.path(), &url);
    assert!(ids(&list).is_empty(), "{list}");
    assert_eq!(list["unverified"].as_array().map(Vec::len), Some(1), "{list}");
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["restore", "--dest", &url, "--latest", "--to", &db.dsn()]),
    );
    assert_exit(&out, 3);

    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["backup", "--dsn", &db.dsn(), "--dest", &url, "--compress", "0"]),
    );
    assert_exit(&out, 0);
    assert!(
        !s3.keys("killed/").contains(&orphan),
        "the orphaned object was not removed"
    );
    assert_eq!(
        s3.open_uploads("killed/"),
        0,
        "the killed run's multipart upload was not aborted"
    );
    assert!(
        !s3.keys("killed/").iter().any(|k| k.contains("/.dbtool-pending/")),
        "an upload marker was left: {:?}",
        s3.keys("killed/")
    );
    assert_eq!(ids(&s3.listed(tmp.path(), &url)).len(), 1);
}

/// `backups prune` aborts the recorded uploads of runs killed more than a day ago (a younger
/// one may be a run still uploading) and removes their markers.
#[tokio::test]
async fn prune_aborts_an_old_killed_upload() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let url = s3.url("stale");
    // What runs killed left: an open upload with a part and its marker, one begun in 2020
    // and one begun now (which may still be uploading).
    let script = r#"
import json
for name, began in (("app_20200101T000000Z", "2020-01-01T00:00:00Z"), ("app_29990101T000000Z", None)):
    k = "stale/%s/app.dump" % name
    u = s3.create_multipart_upload(Bucket=B, Key=k)["UploadId"]
    s3.upload_part(Bucket=B, Key=k, UploadId=u, PartNumber=1, Body=b"x" * 1024)
    m = {"key": k, "upload_id": u}
    if began:
        m["started_at"] = began
    s3.put_object(Bucket=B, Key="stale/.dbtool-pending/%s/app.dump" % name, Body=json.dumps(m).encode())
"#;
    s3.py(script, &[]);
    assert_eq!(s3.open_uploads("stale/"), 2);
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["backups", "prune", "--dest", &url, "--dry-run"]),
    );
    assert_exit(&out, 0);
    assert_eq!(s3.open_uploads("stale/"), 2, "a dry run aborted an upload");
    let out = run_s3(&s3, s3.dbtool(tmp.path()).args(["backups", "prune", "--dest", &url]));
    assert_exit(&out, 0);
    assert_eq!(s3.open_uploads("stale/"), 1, "prune must abort the old upload only");
    assert_eq!(
        s3.keys("stale/"),
        vec!["stale/.dbtool-pending/app_29990101T000000Z/app.dump".to_string()],
        "the old upload's marker is left, or the young one's is gone"
    );
}

/// `--dest s3://…` streams the dump into the store: nothing of it is written under $TMPDIR,
/// here a 1 MiB tmpfs smaller than the dump, encrypted or not.
#[tokio::test]
async fn a_streamed_backup_writes_no_dump_under_tmpdir() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3_stream").await;
    // About 4.5 MB uncompressed.
    seed(&db, 20_000).await;
    let small = SmallFs::mount();
    let tmp = small.dir.path();
    let url = s3.url("stream");
    let out = run_s3(
        &s3,
        s3.dbtool(tmp).args([
            "backup",
            "--dsn",
            &db.dsn(),
            "--dest",
            &url,
            "--compress",
            "0",
            "--globals",
        ]),
    );
    assert_exit(&out, 0);
    assert!(staged(tmp).is_empty(), "left under TMPDIR: {:?}", staged(tmp));
    let list = s3.listed(tmp, &url);
    let bytes = list["backups"][0]["bytes"].as_u64().expect("bytes");
    assert!(
        bytes > 2 << 20,
        "the dump ({bytes} bytes) should not fit the 1 MiB TMPDIR"
    );

    let key = tempfile::tempdir().expect("key dir");
    let key = key.path().join("key.txt");
    let made = Command::new("age-keygen").arg("-o").arg(&key).output();
    assert!(
        made.as_ref().is_ok_and(|o| o.status.success()),
        "age-keygen failed or is missing: install the Debian package age (scripts/test --deps-only does)"
    );
    let recipient = text(&run(Command::new("age-keygen").arg("-y").arg(&key)).stdout)
        .trim()
        .to_string();
    let out = run_s3(
        &s3,
        s3.dbtool(tmp).args([
            "backup",
            "--dsn",
            &db.dsn(),
            "--dest",
            &url,
            "--compress",
            "0",
            "--no-prune",
            "--encrypt-to",
            &recipient,
        ]),
    );
    assert_exit(&out, 0);
    assert!(staged(tmp).is_empty(), "left under TMPDIR: {:?}", staged(tmp));
    let list = s3.listed(tmp, &url);
    assert_eq!(ids(&list).len(), 2, "{list}");
    // The streamed encrypted object decrypts with the age CLI to what the manifest records.
    let sealed = list["backups"]
        .as_array()
        .and_then(|b| {
            b.iter()
                .find(|b| b["dump"].as_str().is_some_and(|d| d.ends_with(".age")))
        })
        .expect("the encrypted backup");
    let id = sealed["id"].as_str().expect("id");
    let body = s3.get(&format!("stream/{id}/{}", sealed["dump"].as_str().expect("dump")));
    let enc = tempfile::NamedTempFile::new().expect("tmp file");
    std::fs::write(enc.path(), &body).expect("write");
    let plain = run(Command::new("age").arg("-d").arg("-i").arg(&key).arg(enc.path()));
    assert!(plain.status.success(), "age -d: {}", text(&plain.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&s3.get(&format!("stream/{id}/manifest.json"))).expect("manifest");
    assert_eq!(
        plain.stdout.len() as u64,
        manifest["encryption"]["plaintext_bytes"]
            .as_u64()
            .expect("plaintext_bytes")
    );
    assert!(plain.stdout.starts_with(b"PGDMP"), "not a custom-format archive");

    // Read back from the store without a local copy either: a full test-read with the key,
    // and a restore (pg_restore 17+ cannot restore an encrypted dump into an older server).
    let out = run_s3(
        &s3,
        s3.dbtool(tmp)
            .args(["backups", "verify", "--full", "--dest", &url, "--identity"])
            .arg(&key),
    );
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("decrypted sha256"), "{}", text(&out.stdout));
    assert!(staged(tmp).is_empty(), "left under TMPDIR: {:?}", staged(tmp));
    let into = fresh_db_on(backup_cluster(), "s3_stream_into").await;
    let out = run_s3(
        &s3,
        s3.dbtool(tmp)
            .args(["restore", "--dest", &url, id, "--to", &into.dsn(), "--identity"])
            .arg(&key),
    );
    if client_major(&client()) >= 17 && server_major() < 17 {
        assert_exit(&out, 3);
        assert!(
            text(&out.stderr).contains("transaction_timeout"),
            "{}",
            text(&out.stderr)
        );
    } else {
        assert_exit(&out, 0);
        assert_eq!(contents(&into.dsn()).await, contents(&db.dsn()).await);
        assert!(staged(tmp).is_empty(), "left under TMPDIR: {:?}", staged(tmp));
    }
}

#[tokio::test]
async fn retention_applies_to_the_remote() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3_prune").await;
    seed(&db, 1_000).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let url = s3.url("prune");
    for _ in 0..3 {
        let out = run_s3(
            &s3,
            s3.dbtool(tmp.path())
                .args(["backup", "--dsn", &db.dsn(), "--dest", &url, "--no-prune"]),
        );
        assert_exit(&out, 0);
    }
    let all = ids(&s3.listed(tmp.path(), &url));
    assert_eq!(all.len(), 3, "three distinct ids, even within one second: {all:?}");
    let keep = [
        "--keep-last",
        "1",
        "--keep-daily",
        "0",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "0",
    ];
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["backups", "prune", "--dest", &url, "--dry-run"])
            .args(keep),
    );
    assert_exit(&out, 0);
    assert_eq!(ids(&s3.listed(tmp.path(), &url)).len(), 3, "a dry run deleted");
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["backups", "prune", "--dest", &url])
            .args(keep),
    );
    assert_exit(&out, 0);
    assert_eq!(ids(&s3.listed(tmp.path(), &url)), vec![all[2].clone()]);
    for gone in &all[..2] {
        // "ID/": within one second the ids are X, X-2, X-3, and X is a prefix of the others.
        let dir = format!("prune/{gone}/");
        assert!(
            !s3.keys("prune/").iter().any(|k| k.starts_with(&dir)),
            "{gone} left objects"
        );
    }
    // After a backup, the run's own retention prunes the remote too.
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["backup", "--dsn", &db.dsn(), "--dest", &url])
            .args(keep),
    );
    assert_exit(&out, 0);
    let left = ids(&s3.listed(tmp.path(), &url));
    assert_eq!(left.len(), 1);
    assert_ne!(left[0], all[2]);
}

#[tokio::test]
async fn an_encrypted_backup_reaches_the_store_encrypted_only() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3_sealed").await;
    seed(&db, 1_000).await;
    exec(
        &db.dsn(),
        "CREATE TABLE marker (m text); INSERT INTO marker VALUES ('PLAINTEXT-MARKER-7f3a');",
    )
    .await;
    let tmp = tempfile::tempdir().expect("tmp");
    let key = tmp.path().join("key.txt");
    let made = Command::new("age-keygen").arg("-o").arg(&key).output();
    assert!(
        made.as_ref().is_ok_and(|o| o.status.success()),
        "age-keygen failed or is missing: install the Debian package age (scripts/test --deps-only does)"
    );
    let public = run(Command::new("age-keygen").arg("-y").arg(&key));
    let recipient = text(&public.stdout).trim().to_string();
    let url = s3.url("sealed");
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path()).args([
            "backup",
            "--dsn",
            &db.dsn(),
            "--globals",
            "--dest",
            &url,
            "--encrypt-to",
            &recipient,
        ]),
    );
    assert_exit(&out, 0);
    let keys = s3.keys("sealed/");
    // The manifests and the metrics state are bookkeeping (names, sizes, counts), not data.
    let bookkeeping = |k: &str| k.ends_with("/manifest.json") || k == "sealed/.dbtool-backup-state.json";
    assert!(keys.iter().any(|k| k.ends_with(".age")), "{keys:?}");
    for k in &keys {
        assert!(bookkeeping(k) || k.ends_with(".age"), "{k} is not encrypted");
        let body = s3.get(k);
        assert!(
            !body.windows(21).any(|w| w == b"PLAINTEXT-MARKER-7f3a"),
            "{k} holds plaintext"
        );
    }
    let out = run_s3(
        &s3,
        s3.dbtool(tmp.path())
            .args(["backups", "verify", "--dest", &url, "--identity"])
            .arg(&key),
    );
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("decrypted sha256"), "{}", text(&out.stdout));
}
