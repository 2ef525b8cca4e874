//! Client keys beyond the parity table of tests/client_cert.rs: libpq's key-file rule for a
//! non-root owner (psql and dbtool run as the `postgres` OS user), and the legacy-encrypted key
//! that psql reads and dbtool refuses with the command that converts it.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::cert_cluster::{cert_cluster, CERT_USER, KEY_PASSWORD};

/// libpq's key-file rule for a key whose owner is not root (fe-secure-openssl.c): no group or
/// world bits at all, so 0640 is refused and 0600 accepted. The suite runs as root, so psql and
/// dbtool run here as the `postgres` OS user (through runuser), with the key that user owns;
/// run as anyone else, they run as that user with the key they own. As root, the same key at
/// 0640 handed to root (group still postgres) is then accepted: root's keys may be u=rw,g=r.
#[tokio::test]
async fn a_non_root_owners_key_must_be_0600_like_psql() {
    let c = cert_cluster().await;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let user = root.then_some("postgres");
    let owner = fs::metadata(c.cluster.data_dir()).expect("the data directory");
    let dir = tempfile::tempdir().expect("a directory for the key");
    let give = |path: &Path| {
        if root {
            std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())).expect("chown to postgres");
        }
    };
    give(dir.path());
    let (crt, key) = (dir.path().join("client.crt"), dir.path().join("client.key"));
    fs::copy(c.file("client.crt"), &crt).expect("copy client.crt");
    fs::copy(c.file("client.key"), &key).expect("copy client.key");
    give(&crt);
    give(&key);
    let dsn = format!(
        "host=127.0.0.1 port={} user={CERT_USER} dbname=postgres sslmode=require sslcert={} sslkey={}",
        c.cluster.port(),
        crt.display(),
        key.display()
    );
    let dbtool = Path::new(env!("CARGO_BIN_EXE_dbtool"));
    let health = [
        "health",
        "--check",
        "connections",
        "--format",
        "json",
        "--dsn",
        dsn.as_str(),
    ];
    let mut steps = vec![(0o640, false), (0o600, true)];
    if root {
        steps.push((0o640, true));
    }
    for (n, (mode, connects)) in steps.into_iter().enumerate() {
        if n == 2 {
            std::os::unix::fs::chown(&key, Some(0), None).expect("chown the key to root");
        }
        fs::set_permissions(&key, fs::Permissions::from_mode(0o100000 | mode)).expect("chmod the key");
        let psql = common::parity::psql_answer_as(user, &dsn, dir.path(), &[], "SELECT current_user");
        assert_eq!(
            psql.is_ok(),
            connects,
            "psql (libpq), step {n}, key at {mode:o}: {psql:?}"
        );
        if let Err(e) = &psql {
            assert!(e.contains("has group or world access"), "psql: {e}");
        }
        let out = common::parity::run_clean(user, dbtool, &health, dir.path(), &[])
            .unwrap_or_else(|e| panic!("{} not runnable as {user:?}: {e}", dbtool.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ok = matches!(out.status.code(), Some(0 | 1));
        assert_eq!(ok, connects, "dbtool, step {n}, key at {mode:o}: {text}");
        if !connects {
            assert!(
                text.contains("has group or world access") && text.contains(&key.display().to_string()),
                "dbtool: {text}"
            );
        }
    }
}

/// The one known difference: a key with OpenSSL's legacy PEM encryption, which psql reads and
/// dbtool refuses, naming the openssl command that converts it; after that command (run here
/// as the error words it) dbtool connects with the converted key.
#[tokio::test]
async fn a_legacy_encrypted_key_is_refused_with_the_command_that_converts_it() {
    let c = cert_cluster().await;
    let dir = tempfile::tempdir().expect("a directory for the converted key");
    let legacy = c.file("legacy.key");
    let dsn = |key: &str| {
        format!(
            "host=127.0.0.1 port={} user={CERT_USER} dbname=postgres sslmode=require sslcert={} sslkey={key} sslpassword={KEY_PASSWORD}",
            c.cluster.port(),
            c.file("client.crt")
        )
    };
    let sql = "SELECT current_user::text";
    let psql = common::parity::psql_answer(&dsn(&legacy), dir.path(), &[], "SELECT current_user");
    assert_eq!(psql.as_deref(), Ok(CERT_USER), "psql reads the legacy key");
    let err = common::parity::library_answer(&dsn(&legacy), dir.path(), &[], sql)
        .await
        .expect_err("dbtool refuses the legacy key");
    assert!(!err.contains(KEY_PASSWORD), "{err}");
    let command = err
        .split_once("convert it to PKCS#8 with: ")
        .map(|(_, c)| c.trim().to_string())
        .unwrap_or_else(|| panic!("no command in: {err}"));
    let converted = dir.path().join("converted.key");
    let command = command.replace("NEW.key", &converted.display().to_string());
    let args = format!(
        "{} -passin pass:{KEY_PASSWORD} -passout pass:{KEY_PASSWORD}",
        command.trim_start_matches("openssl ")
    );
    common::tls::openssl(dir.path(), &args);
    fs::set_permissions(&converted, fs::Permissions::from_mode(0o600)).expect("chmod the converted key");
    let user = common::parity::library_answer(&dsn(&converted.display().to_string()), dir.path(), &[], sql).await;
    assert_eq!(user.as_deref(), Ok(CERT_USER), "the converted key");
}
