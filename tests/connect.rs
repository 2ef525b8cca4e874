//! dbtool's connection layer (src/db: conninfo, pgpass, tls, connect) against a real server: a
//! throwaway cluster with TLS and a SCRAM role, and a real PgBouncer in front of it.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tls::openssl;
use dbtool::db::{connect, connect_session, ConnParams, ConnectError, MapEnv, Pooler, SessionSettings};
use tempcluster::{ClusterOptions, TempCluster};
use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// A login role that may only use SCRAM over TCP (the cluster's other roles are trusted).
const SCRAM_USER: &str = "scram_user";
const PASSWORD: &str = "s3cret-pw";
const PGBOUNCER: &str = "/usr/sbin/pgbouncer";
/// A free port can be taken by someone else between our probe and PgBouncer's bind.
const PORT_ATTEMPTS: u32 = 5;

/// The cluster all tests of this binary share, serving TLS with a certificate for DNS:localhost.
struct TlsCluster {
    cluster: TempCluster,
    /// ca.crt (which signed server.crt) and other.crt (an unrelated CA).
    tls_dir: PathBuf,
}

impl TlsCluster {
    fn port(&self) -> u16 {
        self.cluster.port()
    }

    fn sock(&self) -> String {
        self.cluster.socket_dir().display().to_string()
    }

    fn cert(&self, name: &str) -> String {
        self.tls_dir.join(name).display().to_string()
    }
}

async fn tls_cluster() -> &'static TlsCluster {
    static CLUSTER: OnceCell<TlsCluster> = OnceCell::const_new();
    CLUSTER.get_or_init(start_tls_cluster).await
}

async fn start_tls_cluster() -> TlsCluster {
    let cluster = common::own_cluster(ClusterOptions {
        // PostgreSQL 13 still stores md5 by default, which a scram-sha-256 line cannot verify.
        conf: vec!["password_encryption = 'scram-sha-256'".into()],
        hba_prepend: vec![format!("host all {SCRAM_USER} 127.0.0.1/32 scram-sha-256")],
        ..Default::default()
    });
    let tls_dir = common::tls::enable(&cluster, false);
    // An unrelated CA: the wrong root for the server's certificate.
    common::tls::make_unrelated_ca(&tls_dir, "other");
    let admin = common::connect(&cluster.dsn("postgres")).await;
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.expect("SHOW ssl").get(0);
    assert_eq!(
        ssl,
        "on",
        "the server in {} did not enable TLS",
        cluster.bin_dir().display()
    );
    admin
        .batch_execute(&format!("CREATE ROLE {SCRAM_USER} LOGIN PASSWORD '{PASSWORD}'"))
        .await
        .expect("create the SCRAM role");
    TlsCluster { cluster, tls_dir }
}

/// Parameters as dbtool resolves them, with `home` standing in for $HOME (~/.pgpass, ~/.postgresql).
fn params(dsn: &str, home: &Path) -> ConnParams {
    params_with_env(dsn, home, &[])
}

fn params_with_env(dsn: &str, home: &Path, vars: &[(&str, &str)]) -> ConnParams {
    let mut env = HashMap::from([("HOME".to_string(), home.display().to_string())]);
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ConnParams::resolve(Some(dsn), &MapEnv(env)).unwrap_or_else(|e| panic!("{dsn}: {e}"))
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("a home directory")
}

async fn text(client: &Client, sql: &str) -> String {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn show(client: &Client, name: &str) -> String {
    text(client, &format!("SHOW {name}")).await
}

async fn ssl_in_use(client: &Client) -> bool {
    text(client, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()").await == "true"
}

async fn connect_err(p: &ConnParams) -> ConnectError {
    match connect(p, &SessionSettings::default()).await {
        Ok(_) => panic!("connecting to {} should fail", p.redacted()),
        Err(e) => e,
    }
}

#[tokio::test]
async fn session_settings_arrive_at_startup_and_writes_are_refused() {
    let c = tls_cluster().await;
    let db = common::fresh_db_on(&c.cluster, "connect settings").await;
    let home = home();
    // sslmode is ignored on a unix socket, as in libpq; the user's statement_timeout loses to dbtool's.
    let dsn = format!(
        "host={} port={} user=postgres dbname=postgres sslmode=require options='-c search_path=foo -c statement_timeout=1'",
        c.sock(),
        c.port()
    );
    let p = params(&dsn, home.path());
    let client = connect(&p, &SessionSettings::default()).await.expect("socket connect");
    assert!(!ssl_in_use(&client).await);
    assert_eq!(show(&client, "statement_timeout").await, "5s", "dbtool's limit wins");
    assert_eq!(show(&client, "lock_timeout").await, "100ms");
    assert_eq!(show(&client, "default_transaction_read_only").await, "on");
    assert_eq!(show(&client, "application_name").await, "dbtool");
    assert_eq!(show(&client, "search_path").await, "foo");
    // Sent in the startup packet, not by SET: the server records them as coming from the client.
    let sources = "SELECT string_agg(DISTINCT source, ',') FROM pg_settings \
                   WHERE name IN ('statement_timeout', 'lock_timeout', 'default_transaction_read_only')";
    assert_eq!(text(&client, sources).await, "client");
    let err = client
        .batch_execute("CREATE TABLE t (x int)")
        .await
        .expect_err("read-only session");
    assert_eq!(err.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));

    let other = connect(&p.with_dbname(db.name()), &SessionSettings::default())
        .await
        .expect("with_dbname");
    assert_eq!(text(&other, "SELECT current_database()::text").await, db.name());
    assert_eq!(show(&other, "default_transaction_read_only").await, "on");
}

#[tokio::test]
async fn pgpass_supplies_the_scram_password_per_database() {
    let c = tls_cluster().await;
    let db = common::fresh_db_on(&c.cluster, "connect pgpass").await;
    let home = home();
    let pgpass = home.path().join(".pgpass");
    fs::write(
        &pgpass,
        format!("127.0.0.1:{}:{}:{SCRAM_USER}:{PASSWORD}\n", c.port(), db.name()),
    )
    .expect(".pgpass");
    fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).expect("chmod .pgpass");

    let url = format!(
        "postgres://{SCRAM_USER}@127.0.0.1:{}/{}?sslmode=require",
        c.port(),
        db.name()
    );
    let p = params(&url, home.path());
    let client = connect(&p, &SessionSettings::default())
        .await
        .expect("SCRAM with the .pgpass password");
    assert_eq!(text(&client, "SELECT current_user::text").await, SCRAM_USER);
    assert!(ssl_in_use(&client).await);

    // The line names one database, so another database gets no password from it.
    let err = connect_err(&p.with_dbname("postgres")).await;
    assert!(
        err.is_auth_failure() && err.to_string().contains("no password was sent"),
        "{err}"
    );

    // Like libpq, a password file others can read is ignored.
    fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o644)).expect("chmod .pgpass");
    let err = connect_err(&params(&url, home.path())).await;
    assert!(
        err.is_auth_failure() && err.to_string().contains("no password was sent"),
        "{err}"
    );
}

#[tokio::test]
async fn sslmode_disable_prefer_and_require_over_tcp() {
    let c = tls_cluster().await;
    let home = home();
    for (mode, encrypted) in [("disable", false), ("allow", true), ("prefer", true), ("require", true)] {
        let dsn = format!("host=127.0.0.1 port={} user=postgres sslmode={mode}", c.port());
        let client = connect(&params(&dsn, home.path()), &SessionSettings::default())
            .await
            .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert_eq!(ssl_in_use(&client).await, encrypted, "sslmode={mode}");
    }
}

#[tokio::test]
async fn require_checks_the_chain_when_root_crt_exists_like_libpq() {
    let c = tls_cluster().await;
    let home = home();
    let root_crt = home.path().join(".postgresql").join("root.crt");
    fs::create_dir(home.path().join(".postgresql")).expect("~/.postgresql");
    let dsn = format!("host=127.0.0.1 port={} user=postgres sslmode=require", c.port());

    fs::copy(c.cert("other.crt"), &root_crt).expect("root.crt");
    let err = connect_err(&params(&dsn, home.path())).await.to_string();
    assert!(err.contains("not trusted by") && err.contains("sslrootcert="), "{err}");

    fs::copy(c.cert("ca.crt"), &root_crt).expect("root.crt");
    let client = connect(&params(&dsn, home.path()), &SessionSettings::default())
        .await
        .expect("the chain ends at root.crt; the address is not checked");
    assert!(ssl_in_use(&client).await);
}

#[tokio::test]
async fn verify_full_checks_the_host_name() {
    let c = tls_cluster().await;
    let home = home();
    let dsn = |host: &str| {
        let ca = c.cert("ca.crt");
        format!(
            "host={host} port={} user=postgres sslmode=verify-full sslrootcert={ca}",
            c.port()
        )
    };
    let client = connect(&params(&dsn("localhost"), home.path()), &SessionSettings::default())
        .await
        .expect("the certificate names localhost");
    assert!(ssl_in_use(&client).await);

    // The certificate has no IP address in it.
    let err = connect_err(&params(&dsn("127.0.0.1"), home.path())).await;
    let text = err.to_string();
    assert!(
        text.contains("checks the host name") && text.contains("sslmode=verify-ca"),
        "{text}"
    );
    assert!(!err.is_auth_failure() && !err.is_timeout(), "{text}");
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_name() {
    let c = tls_cluster().await;
    let home = home();
    let dsn = |root: &str| {
        format!(
            "host=127.0.0.1 port={} user=postgres sslmode=verify-ca sslrootcert={root}",
            c.port()
        )
    };
    let client = connect(
        &params(&dsn(&c.cert("ca.crt")), home.path()),
        &SessionSettings::default(),
    )
    .await
    .expect("verify-ca ignores the name");
    assert!(ssl_in_use(&client).await);

    let other = c.cert("other.crt");
    let err = connect_err(&params(&dsn(&other), home.path())).await.to_string();
    assert!(err.contains(&format!("not trusted by sslrootcert {other}")), "{err}");

    // Without sslrootcert or ~/.postgresql/root.crt libpq refuses; sslrootcert=system trusts
    // public CAs, and only with verify-full.
    let no_root = format!("host=127.0.0.1 port={} user=postgres sslmode=verify-ca", c.port());
    let err = connect_err(&params(&no_root, home.path())).await.to_string();
    let root = home.path().join(".postgresql/root.crt");
    assert!(
        err.contains(&format!("root certificate file {} does not exist", root.display())),
        "{err}"
    );
    let system = format!(
        "host=localhost port={} user=postgres sslmode=verify-full sslrootcert=system",
        c.port()
    );
    let err = connect_err(&params(&system, home.path())).await.to_string();
    assert!(err.contains("not trusted by sslrootcert system"), "{err}");

    let err = connect_err(&params(&dsn("/nonexistent/ca.pem"), home.path()))
        .await
        .to_string();
    assert!(
        err.contains("could not read sslrootcert file /nonexistent/ca.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rejected_password_says_where_it_came_from_but_never_shows_it() {
    let c = tls_cluster().await;
    let home = home();
    let dsn = format!("host=127.0.0.1 port={} user={SCRAM_USER} dbname=postgres", c.port());

    let err = connect_err(&params(&format!("{dsn} password=wrong-pw-123"), home.path())).await;
    let text = err.to_string();
    assert!(
        err.is_auth_failure() && text.contains("password authentication failed"),
        "{text}"
    );
    assert!(text.contains("the password came from --dsn"), "{text}");
    assert!(!text.contains("wrong-pw-123"), "{text}");

    let err = connect_err(&params_with_env(&dsn, home.path(), &[("PGPASSWORD", "env-pw-456")])).await;
    let text = err.to_string();
    assert!(
        err.is_auth_failure() && text.contains("the password came from PGPASSWORD"),
        "{text}"
    );
    assert!(!text.contains("env-pw-456"), "{text}");

    let pgpass = home.path().join(".pgpass");
    fs::write(&pgpass, "*:*:*:*:file-pw-789\n").expect(".pgpass");
    fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).expect("chmod .pgpass");
    let err = connect_err(&params(&dsn, home.path())).await;
    let text = err.to_string();
    assert!(
        text.contains(&format!("the password came from passfile {}", pgpass.display())),
        "{text}"
    );
    assert!(!text.contains("file-pw-789"), "{text}");

    fs::remove_file(&pgpass).expect("rm .pgpass");
    let err = connect_err(&params(&dsn, home.path())).await;
    assert!(
        err.is_auth_failure() && err.to_string().contains("no password was sent"),
        "{err}"
    );
}

#[tokio::test]
async fn several_hosts_are_tried_in_order() {
    let c = tls_cluster().await;
    let home = home();
    let (sock, port) = (c.sock(), c.port());
    // No server has a socket for other ports in the cluster's socket directory.
    let (dead1, dead2) = (common::free_port(), common::free_port());

    let p = params(
        &format!("host={sock},{sock} port={dead1},{port} user=postgres"),
        home.path(),
    );
    let client = connect(&p, &SessionSettings::default()).await.expect("the second host");
    assert_eq!(show(&client, "port").await, port.to_string());

    let p = params(
        &format!("host={sock},{sock} port={dead1},{dead2} user=postgres"),
        home.path(),
    );
    let err = connect_err(&p).await;
    let hosts: Vec<&str> = err.failures().iter().map(|f| f.host.as_str()).collect();
    assert_eq!(hosts, [format!("{sock}:{dead1}"), format!("{sock}:{dead2}")]);
    assert!(err.to_string().contains("is the server running locally"), "{err}");
}

#[tokio::test]
async fn target_session_attrs_is_judged_by_recovery_not_by_read_only() {
    let c = tls_cluster().await;
    let home = home();
    for attrs in ["any", "read-write", "primary"] {
        let dsn = format!(
            "host={} port={} user=postgres target_session_attrs={attrs}",
            c.sock(),
            c.port()
        );
        connect(&params(&dsn, home.path()), &SessionSettings::default())
            .await
            .unwrap_or_else(|e| panic!("a primary, though read-only, is {attrs}: {e}"));
    }
    let dsn = format!(
        "host={} port={} user=postgres target_session_attrs=standby",
        c.sock(),
        c.port()
    );
    let err = connect_err(&params(&dsn, home.path())).await.to_string();
    assert!(
        err.contains("server is a primary, but target_session_attrs=standby"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_database_is_named_with_the_fix() {
    let c = tls_cluster().await;
    let home = home();
    let name = format!("no_such_db_{}", std::process::id());
    let dsn = format!("host={} port={} user=postgres dbname={name}", c.sock(), c.port());
    let err = connect_err(&params(&dsn, home.path())).await;
    let code = err
        .failures()
        .first()
        .and_then(|f| f.postgres_error())
        .and_then(|e| e.code());
    assert_eq!(code, Some(&SqlState::INVALID_CATALOG_NAME), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("\"{name}\"")) && text.contains("check dbname="),
        "{text}"
    );
}

/// Behind PgBouncer, which refuses startup options, every statement runs in a read-only
/// transaction of its own with dbtool's limits and the user's options as SET LOCAL, so nothing
/// outlives it on the pooled server connection (tests/pooler.rs runs the binary that way).
#[tokio::test]
async fn pgbouncer_refusing_startup_options_gets_the_same_settings_per_transaction() {
    let c = tls_cluster().await;
    let bouncer = Bouncer::start(&c.cluster).await;
    let home = home();
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable options='-c search_path=bar'",
        bouncer.port
    );
    let settings = SessionSettings {
        statement_timeout: Duration::from_secs(7),
        ..Default::default()
    };
    let p = params(&dsn, home.path());
    let session = connect_session(&p, &settings)
        .await
        .unwrap_or_else(|e| panic!("through PgBouncer: {e}\n{}", bouncer.log()));
    assert_eq!(session.pooler(), Some(Pooler::RefusesOptions));
    let value = |messages: Vec<tokio_postgres::SimpleQueryMessage>| {
        messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
    };
    for (name, want) in [
        ("statement_timeout", "7s"),
        ("lock_timeout", "100ms"),
        ("transaction_read_only", "on"),
        ("search_path", "bar"),
    ] {
        let got = value(session.simple_query(&format!("SHOW {name}")).await.expect("SHOW"));
        assert_eq!(got.as_deref(), Some(want), "{name}");
    }
    let err = session
        .simple_query("CREATE TABLE t (x int)")
        .await
        .expect_err("read-only transaction");
    assert_eq!(err.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));
    // The failed transaction was rolled back: the session goes on.
    let after = value(session.simple_query("SELECT 1").await.expect("after an error"));
    assert_eq!(after.as_deref(), Some("1"));
    // Session-state work is refused, naming the fix.
    let refused = connect(&p, &settings).await.expect_err("a pooler");
    assert!(refused.to_string().contains("PostgreSQL's own port"), "{refused}");
}

#[tokio::test]
async fn connect_timeout_bounds_a_server_that_never_answers() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = silent.local_addr().expect("local address").port();
    // Accepts and holds connections without a byte in reply, like a hung server.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let home = home();
    let p = params(
        &format!("host=127.0.0.1 port={port} user=postgres connect_timeout=2"),
        home.path(),
    );
    // This outer limit only turns a hang into a failure; it asserts no speed.
    let err = tokio::time::timeout(Duration::from_secs(120), connect(&p, &SessionSettings::default()))
        .await
        .expect("connect_timeout ends the attempt")
        .expect_err("a silent server");
    let text = err.to_string();
    assert!(err.is_timeout(), "{text}");
    assert!(
        text.contains("timed out after 2s") && text.contains("connect_timeout="),
        "{text}"
    );
    holder.abort();
}

/// A PgBouncer in front of a cluster, killed on drop. Debian's 1.18 refuses the `options` startup
/// parameter: the case dbtool's SET fallback exists for.
struct Bouncer {
    port: u16,
    process: common::Killed,
    dir: tempfile::TempDir,
}

impl Bouncer {
    async fn start(cluster: &TempCluster) -> Bouncer {
        let mut dir = tempfile::Builder::new()
            .prefix("dbtool-pgbouncer")
            .tempdir()
            .expect("tempdir");
        // PgBouncer refuses to run as root: as root, run it as the cluster's owner.
        let owner = fs::metadata(cluster.data_dir()).expect("data directory");
        std::os::unix::fs::chown(dir.path(), Some(owner.uid()), Some(owner.gid())).expect("chown");
        for attempt in 1..=PORT_ATTEMPTS {
            let port = common::free_port();
            let ini = dir.path().join("pgbouncer.ini");
            // A fresh log per attempt, so a retry judges only its own failure.
            let _ = fs::remove_file(dir.path().join("pgbouncer.log"));
            fs::write(&ini, bouncer_ini(cluster, port, dir.path())).expect("pgbouncer.ini");
            let mut cmd = Command::new(PGBOUNCER);
            cmd.arg(&ini)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                cmd.uid(owner.uid()).gid(owner.gid());
            }
            // SAFETY: prctl is async-signal-safe. It runs after the uid change (which would
            // clear it) and makes PgBouncer die with this test's thread, even on SIGKILL.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd.spawn().unwrap_or_else(|e| {
                panic!("{PGBOUNCER} not runnable ({e}); scripts/test installs the Debian package pgbouncer")
            });
            let mut bouncer = Bouncer {
                port,
                process: common::Killed(child),
                dir,
            };
            match bouncer.wait_listening().await {
                Ok(()) => return bouncer,
                Err(why) if attempt < PORT_ATTEMPTS && bouncer.log().contains("Address already in use") => {
                    eprintln!("pgbouncer port {port} taken ({why}), retrying");
                    dir = bouncer.into_dir();
                }
                Err(why) => panic!("pgbouncer {why}; its log:\n{}", bouncer.log()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    async fn wait_listening(&mut self) -> Result<(), String> {
        for _ in 0..200 {
            if let Ok(Some(status)) = self.process.0.try_wait() {
                return Err(format!("exited ({status})"));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("did not listen on port {} within 10 s", self.port))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    fn into_dir(self) -> tempfile::TempDir {
        let Bouncer { process, dir, .. } = self;
        drop(process);
        dir
    }
}

fn bouncer_ini(cluster: &TempCluster, port: u16, dir: &Path) -> String {
    format!(
        "[databases]\npostgres = host={} port={} user=postgres\n\
         [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = any\npool_mode = session\nlogfile = {}\n",
        cluster.socket_dir().display(),
        cluster.port(),
        dir.join("pgbouncer.log").display()
    )
}

/// `dbtool health` (the connections check) with `dsn` and $HOME in an empty directory:
/// (exit code, stdout and stderr).
async fn health_through_binary(dsn: String) -> (i32, String) {
    let home = home();
    let mut cmd = common::dbtool();
    cmd.env("HOME", home.path())
        .args(["health", "--check", "connections", "--dsn", &dsn]);
    let (code, stdout, stderr) = common::run_command(cmd).await;
    (code, format!("{stdout}{stderr}"))
}

#[tokio::test]
async fn the_binary_verifies_the_server_certificate_and_refuses_a_wrong_ca() {
    let c = tls_cluster().await;
    let dsn = |root: &str| {
        format!(
            "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={root} connect_timeout=10",
            c.port()
        )
    };
    let (code, out) = health_through_binary(dsn(&c.cert("ca.crt"))).await;
    assert!(code <= 1, "verify-full with the right CA: {out}");
    assert!(out.contains("connections"), "{out}");

    let other = c.cert("other.crt");
    let (code, out) = health_through_binary(dsn(&other)).await;
    assert!(code >= 2, "a server the CA did not sign must be refused: {out}");
    assert!(
        out.contains(&format!("not trusted by sslrootcert {other}")),
        "the error names the CA file and the fix: {out}"
    );
}

#[tokio::test]
async fn an_expired_server_certificate_is_named_with_its_expiry_and_the_renewal() {
    let cluster = common::own_cluster(ClusterOptions::default());
    let base = cluster.data_dir().parent().expect("the cluster's base directory");
    let dir = base.join("tls-expired");
    fs::create_dir(&dir).expect("create the TLS directory");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    openssl(&dir, &format!("req -x509 {ec} -days 2 -keyout ca.key -out ca.crt -subj /CN=testca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"));
    openssl(
        &dir,
        &format!("req {ec} -keyout server.key -out server.csr -subj /CN=localhost"),
    );
    // `openssl ca` is the tool of OpenSSL 3.0 that takes explicit dates: valid for a day in 2020.
    fs::write(dir.join("index.txt"), "").expect("index.txt");
    fs::write(dir.join("serial"), "01\n").expect("serial");
    fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         certificate = ca.crt\nprivate_key = ca.key\ndefault_md = sha256\npolicy = p\nx509_extensions = ext\n\
         [p]\ncommonName = supplied\n[ext]\nsubjectAltName = DNS:localhost\nbasicConstraints = CA:FALSE\n",
    )
    .expect("ca.cnf");
    openssl(
        &dir,
        "ca -batch -notext -config ca.cnf -in server.csr -out server.crt -startdate 20200101000000Z -enddate 20200102000000Z",
    );
    let key = dir.join("server.key");
    let owner = fs::metadata(cluster.data_dir()).expect("data directory");
    std::os::unix::fs::chown(&key, Some(owner.uid()), Some(owner.gid())).expect("chown server.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod server.key");
    let conf = format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        dir.join("server.crt").display(),
        key.display()
    );
    fs::OpenOptions::new()
        .append(true)
        .open(cluster.data_dir().join("postgresql.conf"))
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .expect("append the TLS settings");
    cluster
        .stop()
        .unwrap_or_else(|e| panic!("stopping the cluster: {}", common::chain(&e)));
    common::start_again(&cluster);

    let ca = dir.join("ca.crt");
    let dsn = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={} connect_timeout=10",
        cluster.port(),
        ca.display()
    );
    let (code, out) = health_through_binary(dsn).await;
    assert!(code >= 2, "an expired certificate must be refused: {out}");
    assert!(
        out.contains("the server certificate expired at 2020-01-02T00:00:00Z")
            && out.contains("renew it on the server"),
        "the error names the expiry and the renewal: {out}"
    );
    assert!(
        !out.contains("not trusted by"),
        "the CA is right; only the date is wrong: {out}"
    );
}
