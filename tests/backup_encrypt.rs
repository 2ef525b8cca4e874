//! Encrypted backups (`--encrypt-to`, `--recipients-file`, `--identity`) against a real server,
//! read back by hand with the standard `age` tool (Debian package `age`; scripts/test installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::backup::{
    assert_exit, backup_cluster, backup_ids, client, client_major, contents, dbt, exec, run, seed, server_major, text,
};
use common::{connect, fresh_db_on};
use sha2::{Digest, Sha256};

fn age_tool(name: &str) -> Command {
    let found = Command::new(name).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{name} is missing: install the Debian package age (scripts/test --deps-only does)"
    );
    Command::new(name)
}

/// A fresh age key pair: (identity file, public key).
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    assert_exit(&run(age_tool("age-keygen").arg("-o").arg(&path)), 0);
    let out = run(age_tool("age-keygen").arg("-y").arg(&path));
    assert_exit(&out, 0);
    (path, text(&out.stdout).trim().to_string())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Files under `dir` that are neither encrypted (`.age`) nor dbtool's own bookkeeping.
fn plaintext_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if path.is_dir() {
            plaintext_files(&path, out);
        } else if !(name.ends_with(".age")
            || name == "manifest.json"
            || name.starts_with(".lock-")
            || name.contains(".dbtool-backup-state"))
        {
            out.push(path);
        }
    }
}

fn manifest(dest: &Path, id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dest.join(id).join("manifest.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("manifest of {id}: {e}"))
}

#[tokio::test]
async fn encrypted_backup_to_two_recipients_reads_back_with_age_and_restores() {
    let c = backup_cluster();
    let db = fresh_db_on(c, "backup encrypted").await;
    // Big enough that the dump takes a moment, so the directory is looked at while it runs.
    seed(&db, 300_000).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("backups");
    let (key1, pub1) = keygen(dir.path(), "key1.txt");
    let (key2, pub2) = keygen(dir.path(), "key2.txt");
    let (stranger, _) = keygen(dir.path(), "stranger.txt");
    let recipients = dir.path().join("recipients.txt");
    std::fs::write(&recipients, format!("# the offsite key\n\n{pub2}\n")).unwrap_or_else(|e| panic!("{e}"));

    // An unencrypted backup first: both kinds live in one directory.
    assert_exit(&common::backup::backup_db(&db, &dest, &[]), 0);
    let plain_id = backup_ids(&dest).into_iter().next().unwrap_or_default();
    assert!(!plain_id.is_empty());

    let mut child = dbt()
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(&dest)
        // --no-prune: retention would let the plain backup of the same day go.
        .args([
            "--no-prune",
            "--verify",
            "full",
            "--encrypt-to",
            &pub1,
            "--recipients-file",
        ])
        .arg(&recipients)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("dbtool backup: {e}"));
    // While it runs, and after: nothing but encrypted files and the manifest, ever.
    let mut looks = 0;
    loop {
        let mut found = Vec::new();
        plaintext_files(&dest, &mut found);
        found.retain(|p| !p.starts_with(dest.join(&plain_id)));
        let done = child.try_wait().unwrap_or_else(|e| panic!("{e}")).is_some();
        assert!(
            found.is_empty(),
            "plaintext on disk during an encrypted backup: {found:?}"
        );
        looks += 1;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_exit(&out, 0);
    assert!(looks > 1, "the backup ended before the directory was looked at");

    let ids = backup_ids(&dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let id = ids.iter().find(|i| **i != plain_id).cloned().unwrap_or_default();
    assert!(manifest(&dest, &plain_id).get("encryption").is_none());
    let m = manifest(&dest, &id);
    let file = dest.join(&id).join(m["dump"].as_str().unwrap_or_default());
    assert!(file.to_string_lossy().ends_with(".dump.age"), "{m}");
    assert_eq!(m["encryption"]["recipients"], serde_json::json!([pub1, pub2]), "{m}");
    let encrypted = std::fs::read(&file).unwrap_or_default();
    assert_eq!(m["sha256"].as_str(), Some(sha256_hex(&encrypted).as_str()));
    assert!(
        !String::from_utf8_lossy(&encrypted).contains("PGDMP"),
        "the age file holds a plaintext dump header"
    );
    let text_m = std::fs::read_to_string(dest.join(&id).join("manifest.json")).unwrap_or_default();
    assert!(!text_m.contains("AGE-SECRET-KEY"), "a secret key in the manifest");

    // The standard age tool decrypts it with either identity, to the very plaintext hashed.
    for key in [&key1, &key2] {
        let plain = run(age_tool("age").arg("-d").arg("-i").arg(key).arg(&file));
        assert_exit(&plain, 0);
        assert_eq!(
            m["encryption"]["plaintext_sha256"].as_str(),
            Some(sha256_hex(&plain.stdout).as_str())
        );
        assert_eq!(
            m["encryption"]["plaintext_bytes"].as_u64(),
            Some(plain.stdout.len() as u64)
        );
    }
    // … and that plaintext restores with pg_restore by hand.
    let by_hand = format!("{}_by_hand", db.name());
    exec(&c.dsn("postgres"), &format!("CREATE DATABASE \"{by_hand}\"")).await;
    let plain_path = dir.path().join("decrypted.dump");
    assert_exit(
        &run(age_tool("age")
            .arg("-d")
            .arg("-i")
            .arg(&key2)
            .arg("-o")
            .arg(&plain_path)
            .arg(&file)),
        0,
    );
    // pg_restore 17+ into an older server: its first SET (transaction_timeout) is refused
    // there, so by hand the script goes through psql without that line, as the manual says.
    let trap = client_major(&client()) >= 17 && server_major() < 17;
    if trap {
        let script = run(Command::new(client().join("pg_restore"))
            .args(["--no-owner", "-f", "-"])
            .arg(&plain_path));
        assert_exit(&script, 0);
        let sql: String = String::from_utf8_lossy(&script.stdout)
            .lines()
            .filter(|l| !l.starts_with("SET transaction_timeout"))
            .map(|l| format!("{l}\n"))
            .collect();
        let sql_path = dir.path().join("decrypted.sql");
        std::fs::write(&sql_path, sql).unwrap_or_else(|e| panic!("{e}"));
        let restored = run(Command::new("/usr/bin/psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &c.dsn(&by_hand), "-f"])
            .arg(&sql_path));
        assert_exit(&restored, 0);
    } else {
        let restored = run(Command::new(client().join("pg_restore"))
            .args(["--no-owner", "--exit-on-error", "-d", &c.dsn(&by_hand)])
            .arg(&plain_path));
        assert_exit(&restored, 0);
    }
    assert_eq!(contents(&db.dsn()).await, contents(&c.dsn(&by_hand)).await);

    // `backups list` says which is encrypted, and to whom.
    let list = run(dbt().args(["backups", "list", "--dest"]).arg(&dest));
    assert_exit(&list, 0);
    let list_text = text(&list.stdout);
    assert!(
        list_text.contains("age: age1") && list_text.contains(" no "),
        "{list_text}"
    );

    // A wrong identity: refused, naming the backup, and nothing created.
    let wrong = format!("{}_wrong", db.name());
    let out = run(dbt()
        .args(["restore", &id, "--to", &c.dsn(&wrong), "--identity"])
        .arg(&stranger)
        .arg("--dest")
        .arg(&dest));
    assert_exit(&out, 3);
    let err = text(&out.stderr);
    assert!(err.contains(&id) && err.contains("none of them matches"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let exists = connect(&c.dsn("postgres"))
        .await
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&wrong])
        .await
        .map(|r| r.len())
        .ok();
    assert_eq!(exists, Some(0), "a refused restore created its target");
    // Without any identity: refused the same way.
    let out = run(dbt()
        .args(["restore", &id, "--to", &c.dsn(&wrong), "--dest"])
        .arg(&dest));
    assert_exit(&out, 3);
    assert!(text(&out.stderr).contains("--identity"), "{}", text(&out.stderr));

    // dbtool restores it with either key, decrypting as it streams.
    let into = format!("{}_restored", db.name());
    let out = run(dbt()
        .args(["restore", &id, "--no-owner", "--to", &c.dsn(&into), "--identity"])
        .arg(&key1)
        .arg("--dest")
        .arg(&dest));
    if trap {
        // Refused with the reason and the way out, and nothing restored.
        assert_exit(&out, 3);
        assert!(
            text(&out.stderr).contains("transaction_timeout"),
            "{}",
            text(&out.stderr)
        );
        exec(&c.dsn("postgres"), &format!("CREATE DATABASE \"{into}\"")).await;
    } else {
        assert_exit(&out, 0);
        assert_eq!(contents(&db.dsn()).await, contents(&c.dsn(&into)).await);

        // restore --check decrypts the same way into its scratch database.
        let check = run(dbt()
            .args(["restore", &id, "--check", "--dsn", &db.dsn(), "-i"])
            .arg(&key2)
            .arg("--dest")
            .arg(&dest));
        assert_exit(&check, 0);
        assert!(text(&check.stdout).contains("passed"), "{}", text(&check.stdout));
    }

    // Verify: without a key the encrypted bytes' sha256, with one a full test-read.
    let v = run(dbt().args(["backups", "verify", &id, "--dest"]).arg(&dest));
    assert_exit(&v, 0);
    assert!(text(&v.stdout).contains("no --identity"), "{}", text(&v.stdout));
    let v = run(dbt()
        .args(["backups", "verify", &id, "--full", "-i"])
        .arg(&key2)
        .arg("--dest")
        .arg(&dest));
    assert_exit(&v, 0);
    assert!(text(&v.stdout).contains("decrypted sha256"), "{}", text(&v.stdout));

    // One flipped byte in the middle: caught without the key, and with it.
    let mut bytes = encrypted.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let v = run(dbt().args(["backups", "verify", &id, "--dest"]).arg(&dest));
    assert_exit(&v, 2);
    assert!(text(&v.stderr).contains("sha256"), "{}", text(&v.stderr));
    let v = run(dbt()
        .args(["backups", "verify", &id, "-i"])
        .arg(&key1)
        .arg("--dest")
        .arg(&dest));
    assert_exit(&v, 2);

    let mut left = Vec::new();
    plaintext_files(&dest, &mut left);
    left.retain(|p| !p.starts_with(dest.join(&plain_id)));
    assert!(left.is_empty(), "plaintext left behind: {left:?}");
    for name in [by_hand, into] {
        exec(&c.dsn("postgres"), &format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await;
    }
}

#[test]
fn bad_recipients_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("b");
    let base = ["backup", "--dsn", "host=/nonexistent dbname=x", "--dest"];
    let out = run(dbt()
        .args(base)
        .arg(&dest)
        .args(["--encrypt-to", "ssh-ed25519 AAAAC3Nza x"]));
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("ssh-ed25519 keys are not supported"),
        "{}",
        text(&out.stderr)
    );
    let out = run(dbt().args(base).arg(&dest).args(["--encrypt-to", "age1qqq"]));
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("not an age X25519 public key"),
        "{}",
        text(&out.stderr)
    );
    let key = age::x25519::Identity::generate().to_public().to_string();
    let out = run(dbt()
        .args(base)
        .arg(&dest)
        .args(["--encrypt-to", &key, "--format", "directory"]));
    assert_exit(&out, 3);
    assert!(text(&out.stderr).contains("--format custom"), "{}", text(&out.stderr));
    assert!(!dest.exists(), "a refused run created its destination");
}
