//! Client certificates against a real server with `hostssl ... cert`: dbtool takes sslcert and
//! sslkey from the DSN, from PGSSLCERT/PGSSLKEY and from ~/.postgresql as libpq does, and each
//! case is run through Debian's psql too, so the outcome is measured against libpq itself;
//! encrypted keys with and without sslpassword among them (tests/client_key.rs has the rest).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::cert_cluster::{cert_cluster, CertCluster, CERT_USER, KEY_PASSWORD};

/// One input: a DSN, extra environment, and whether ~/.postgresql holds the client certificate.
struct Case {
    name: &'static str,
    dsn: String,
    env: Vec<(&'static str, String)>,
    home_cert: bool,
    connects: bool,
    /// A piece of dbtool's error when it refuses.
    error: &'static str,
}

/// A fresh $HOME, with ~/.postgresql/postgresql.crt and .key when asked.
fn home(c: &CertCluster, with_cert: bool) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("a home directory");
    if with_cert {
        let dir = home.path().join(".postgresql");
        fs::create_dir(&dir).expect("mkdir ~/.postgresql");
        fs::copy(c.file("client.crt"), dir.join("postgresql.crt")).expect("postgresql.crt");
        fs::copy(c.file("client.key"), dir.join("postgresql.key")).expect("postgresql.key");
        fs::set_permissions(dir.join("postgresql.key"), fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    home
}

/// `dbtool health --check connections` with the same inputs, through the process environment:
/// Ok when it connected (exit 0 or 1), else Err; with its whole output either way.
fn dbtool_cli(dsn: &str, home: &Path, env: &[(&str, String)]) -> Result<String, String> {
    let mut cmd = common::dbtool();
    cmd.env("HOME", home)
        .args(["health", "--check", "connections", "--format", "json", "--dsn", dsn]);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cmd.output().expect("run dbtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0 | 1) => Ok(text),
        _ => Err(text),
    }
}

#[tokio::test]
async fn client_certificates_connect_and_refuse_like_psql() {
    let c = cert_cluster().await;
    let base = format!(
        "host=127.0.0.1 port={} user={CERT_USER} dbname=postgres sslmode=require",
        c.cluster.port()
    );
    let (crt, key, open) = (c.file("client.crt"), c.file("client.key"), c.file("open.key"));
    let enc = c.file("enc.key");
    let cases = vec![
        Case {
            name: "sslcert and sslkey in the DSN",
            dsn: format!("{base} sslcert={crt} sslkey={key}"),
            env: vec![],
            home_cert: false,
            connects: true,
            error: "",
        },
        Case {
            name: "PGSSLCERT and PGSSLKEY",
            dsn: base.clone(),
            env: vec![("PGSSLCERT", crt.clone()), ("PGSSLKEY", key.clone())],
            home_cert: false,
            connects: true,
            error: "",
        },
        Case {
            name: "~/.postgresql/postgresql.crt and .key",
            dsn: base.clone(),
            env: vec![],
            home_cert: true,
            connects: true,
            error: "",
        },
        Case {
            name: "DSN keys win over PGSSLCERT/PGSSLKEY",
            dsn: format!("{base} sslcert={crt} sslkey={key}"),
            env: vec![("PGSSLCERT", "/nonexistent.crt".into()), ("PGSSLKEY", open.clone())],
            home_cert: false,
            connects: true,
            error: "",
        },
        Case {
            name: "no certificate anywhere",
            dsn: base.clone(),
            env: vec![],
            home_cert: false,
            connects: false,
            error: "requires a client certificate and none was sent",
        },
        Case {
            name: "a world-readable key",
            dsn: format!("{base} sslcert={crt} sslkey={open}"),
            env: vec![],
            home_cert: false,
            connects: false,
            error: "has group or world access",
        },
        Case {
            name: "an encrypted PKCS#8 key with its sslpassword",
            dsn: format!("{base} sslcert={crt} sslkey={enc} sslpassword={KEY_PASSWORD}"),
            env: vec![],
            home_cert: false,
            connects: true,
            error: "",
        },
        Case {
            name: "an encrypted key's sslpassword from the service file",
            dsn: format!("{base} service=certkey sslcert={crt} sslkey={enc}"),
            env: vec![("PGSERVICEFILE", c.file("pg_service.conf"))],
            home_cert: false,
            connects: true,
            error: "",
        },
        Case {
            name: "an encrypted key with a wrong sslpassword",
            dsn: format!("{base} sslcert={crt} sslkey={enc} sslpassword=wrong{KEY_PASSWORD}"),
            env: vec![],
            home_cert: false,
            connects: false,
            error: "could not load private key file",
        },
        Case {
            // psql (OpenSSL) prompts "Enter PEM pass phrase:"; with no terminal and stdin closed,
            // as from cron, it fails ("could not load private key file ...: processing error").
            name: "an encrypted key and no sslpassword",
            dsn: format!("{base} sslcert={crt} sslkey={enc}"),
            env: vec![],
            home_cert: false,
            connects: false,
            error: "is encrypted and no sslpassword was given",
        },
        Case {
            name: "a certificate without its key",
            dsn: format!("{base} sslcert={crt} sslkey=/nonexistent/client.key"),
            env: vec![],
            home_cert: false,
            connects: false,
            error: "certificate present, but not private key file /nonexistent/client.key",
        },
    ];
    for case in cases {
        let home = home(c, case.home_cert);
        let psql = common::parity::psql_answer(&case.dsn, home.path(), &case.env, "SELECT current_user");
        let (psql_ok, psql_err) = (psql.is_ok(), psql.err().unwrap_or_default());
        eprintln!(
            "{}: psql {}",
            case.name,
            if psql_ok { "connected" } else { psql_err.trim() }
        );
        assert_eq!(
            psql_ok, case.connects,
            "{}: psql (libpq) disagrees with the table: {psql_err}",
            case.name
        );
        match dbtool_cli(&case.dsn, home.path(), &case.env) {
            Ok(out) => {
                assert!(case.connects, "{}: the CLI connected where libpq refuses", case.name);
                assert!(
                    !out.contains(KEY_PASSWORD),
                    "{}: the CLI showed sslpassword: {out}",
                    case.name
                );
            }
            Err(e) => {
                assert!(
                    !case.connects,
                    "{}: the CLI refused where libpq connects: {e}",
                    case.name
                );
                assert!(e.contains(case.error), "{}: the CLI said {e}", case.name);
                assert!(
                    !e.contains(KEY_PASSWORD),
                    "{}: the CLI showed sslpassword: {e}",
                    case.name
                );
            }
        }
        match common::parity::library_answer(&case.dsn, home.path(), &case.env, "SELECT current_user::text").await {
            Ok(user) => {
                assert!(case.connects, "{}: dbtool connected where libpq refuses", case.name);
                assert_eq!(user, CERT_USER, "{}", case.name);
            }
            Err(e) => {
                assert!(
                    !case.connects,
                    "{}: dbtool refused where libpq connects: {e}",
                    case.name
                );
                assert!(e.contains(case.error), "{}: {e}", case.name);
                assert!(!e.contains("pg_hba.conf admits"), "{}: blames pg_hba: {e}", case.name);
                assert!(
                    !e.contains(KEY_PASSWORD),
                    "{}: the error shows sslpassword: {e}",
                    case.name
                );
            }
        }
    }
}
