//! Client certificates against a real server with `hostssl ... cert`: dbtool takes sslcert and
//! sslkey from the DSN, from PGSSLCERT/PGSSLKEY and from ~/.postgresql as libpq does, and each
//! case is run through Debian's psql too, so the outcome is measured against libpq itself.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempcluster::{ClusterOptions, TempCluster};
use tokio::sync::OnceCell;

/// The role the client certificate is issued for (its CN); it may log in by certificate only.
const CERT_USER: &str = "cert_user";

struct CertCluster {
    cluster: TempCluster,
    tls_dir: PathBuf,
}

impl CertCluster {
    fn file(&self, name: &str) -> String {
        self.tls_dir.join(name).display().to_string()
    }
}

async fn cert_cluster() -> &'static CertCluster {
    static CLUSTER: OnceCell<CertCluster> = OnceCell::const_new();
    CLUSTER.get_or_init(start).await
}

async fn start() -> CertCluster {
    let cluster = common::own_cluster(ClusterOptions {
        hba_prepend: vec![format!("hostssl all {CERT_USER} 127.0.0.1/32 cert")],
        ..Default::default()
    });
    let tls_dir = common::tls::enable(&cluster, true);
    make_client_certificates(&tls_dir);
    let admin = common::connect(&cluster.dsn("postgres")).await;
    admin
        .batch_execute(&format!("CREATE ROLE {CERT_USER} LOGIN"))
        .await
        .expect("create the certificate role");
    CertCluster { cluster, tls_dir }
}

/// The password of `enc.key`; no output of dbtool may hold it.
const KEY_PASSWORD: &str = "Kp4wQz9Rv";

/// A client certificate for CERT_USER signed by the cluster's CA, its key at mode 0600, a copy
/// of the key at 0644 (world-readable), the key encrypted as `openssl pkcs8 -topk8 -v2
/// aes-256-cbc` writes it (`enc.key`, 0600), the same encrypted the legacy OpenSSL way
/// (`legacy.key`, Proc-Type/DEK-Info headers), and a service file giving the sslpassword.
fn make_client_certificates(dir: &Path) {
    common::tls::make_client(dir, "client", CERT_USER);
    fs::copy(dir.join("client.key"), dir.join("open.key")).expect("copy client.key");
    fs::set_permissions(dir.join("open.key"), fs::Permissions::from_mode(0o644)).expect("chmod open.key");
    common::tls::openssl(
        dir,
        &format!("pkcs8 -topk8 -v2 aes-256-cbc -in client.key -passout pass:{KEY_PASSWORD} -out enc.key"),
    );
    fs::set_permissions(dir.join("enc.key"), fs::Permissions::from_mode(0o600)).expect("chmod enc.key");
    common::tls::openssl(
        dir,
        &format!("ec -in client.key -aes256 -passout pass:{KEY_PASSWORD} -out legacy.key"),
    );
    fs::set_permissions(dir.join("legacy.key"), fs::Permissions::from_mode(0o600)).expect("chmod legacy.key");
    let service = format!("[certkey]\nsslpassword={KEY_PASSWORD}\n");
    fs::write(dir.join("pg_service.conf"), service).expect("pg_service.conf");
}

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
