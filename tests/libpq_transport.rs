//! libpq's transport parameters against real servers, each input run through psql (libpq
//! itself) and through dbtool's library, expecting the same outcome: channel_binding with
//! SCRAM-SHA-256 over TLS, a CRL that revokes the server certificate, requiressl, TCP
//! keepalives and tcp_user_timeout, and PostgreSQL 17's direct TLS (sslnegotiation=direct).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use tempcluster::{ClusterOptions, TempCluster};
use tokio::sync::OnceCell;

/// Whether the session is encrypted: the same answer from psql and from dbtool.
const SSL: &str = "SELECT ssl::text FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()";

/// A TLS cluster whose roles log in with SCRAM (with or without TLS) or with a plain password.
struct ScramCluster {
    cluster: TempCluster,
    tls_dir: PathBuf,
}

impl ScramCluster {
    fn file(&self, name: &str) -> String {
        self.tls_dir.join(name).display().to_string()
    }
    fn base(&self, user: &str) -> String {
        let password = if user == "scram_user" { "scram-pw" } else { "plain-pw" };
        format!(
            "host=127.0.0.1 port={} dbname=postgres user={user} password={password}",
            self.cluster.port()
        )
    }
}

async fn scram_cluster() -> &'static ScramCluster {
    static CLUSTER: OnceCell<ScramCluster> = OnceCell::const_new();
    CLUSTER
        .get_or_init(|| async {
            let cluster = common::own_cluster(ClusterOptions {
                hba_prepend: vec![
                    "hostssl all scram_user 127.0.0.1/32 scram-sha-256".into(),
                    "hostnossl all scram_user 127.0.0.1/32 scram-sha-256".into(),
                    "hostssl all plain_user 127.0.0.1/32 password".into(),
                ],
                ..Default::default()
            });
            let tls_dir = common::tls::enable(&cluster, false);
            common::tls::make_crls(&tls_dir);
            let admin = common::connect(&cluster.dsn("postgres")).await;
            admin
                .batch_execute(
                    "SET password_encryption = 'scram-sha-256';
                     CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw';
                     CREATE ROLE plain_user LOGIN PASSWORD 'plain-pw';",
                )
                .await
                .expect("create the roles");
            ScramCluster { cluster, tls_dir }
        })
        .await
}

/// One input and the outcome libpq gives it.
struct Case {
    name: &'static str,
    dsn: String,
    env: Vec<(&'static str, String)>,
    /// A file to install as ~/.postgresql/root.crl.
    home_crl: Option<String>,
    /// Ok(answer to SSL) when both connect, Err(a piece of dbtool's error) when both refuse.
    outcome: Result<&'static str, &'static str>,
}

fn case(name: &'static str, dsn: String, outcome: Result<&'static str, &'static str>) -> Case {
    Case {
        name,
        dsn,
        env: vec![],
        home_crl: None,
        outcome,
    }
}

/// Runs every case through psql (with the libpq in `libpq_dir`, else the system's) and
/// dbtool's library; collects every disagreement before failing, so one run shows them all.
async fn run(cases: Vec<Case>, libpq_dir: Option<&Path>) {
    let mut wrong = Vec::new();
    for c in cases {
        let home = tempfile::tempdir().expect("a home directory");
        if let Some(crl) = &c.home_crl {
            fs::create_dir(home.path().join(".postgresql")).expect("mkdir ~/.postgresql");
            fs::copy(crl, home.path().join(".postgresql/root.crl")).expect("root.crl");
        }
        let psql = common::parity::psql_answer_with(libpq_dir, &c.dsn, home.path(), &c.env, SSL);
        let dbtool = common::parity::library_answer(&c.dsn, home.path(), &c.env, SSL).await;
        match (&c.outcome, &psql) {
            (Ok(want), Ok(got)) if want == got => {}
            (Err(_), Err(_)) => {}
            _ => wrong.push(format!(
                "{}: psql (libpq) gave {psql:?}, the table says {:?}",
                c.name, c.outcome
            )),
        }
        match (&c.outcome, &dbtool) {
            (Ok(want), Ok(got)) if want == got => {}
            (Err(piece), Err(e)) if e.contains(piece) && !e.contains('\n') => {}
            _ => wrong.push(format!("{}: dbtool gave {dbtool:?}, libpq {:?}", c.name, c.outcome)),
        }
    }
    assert!(wrong.is_empty(), "disagreements with libpq:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn channel_binding_requiressl_and_keepalives_like_psql() {
    let c = scram_cluster().await;
    let (scram, plain) = (c.base("scram_user"), c.base("plain_user"));
    let cb = "channel_binding";
    let mut cases = vec![
        case("SCRAM-SHA-256-PLUS over TLS, required", format!("{scram} sslmode=require channel_binding=require"), Ok("true")),
        case("channel binding preferred", format!("{scram} sslmode=require channel_binding=prefer"), Ok("true")),
        case("channel binding disabled", format!("{scram} sslmode=require channel_binding=disable"), Ok("true")),
        case("required without TLS", format!("{scram} sslmode=disable channel_binding=require"), Err(cb)),
        case("required with a password method", format!("{plain} sslmode=require channel_binding=require"), Err(cb)),
        case("a password method, preferred", format!("{plain} sslmode=require channel_binding=prefer"), Ok("true")),
        case("an unknown value", format!("{scram} channel_binding=always"), Err(cb)),
        case("requiressl=1 beats PGSSLMODE", format!("{scram} requiressl=1"), Ok("true")),
        case("requiressl=0 is sslmode=prefer", format!("{scram} sslmode=require requiressl=0"), Ok("true")),
        case("sslmode after requiressl wins", format!("{scram} requiressl=1 sslmode=disable"), Ok("false")),
        case("keepalives set", format!("{scram} keepalives=1 keepalives_idle=30 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=9000"), Ok("true")),
        case("tcp_user_timeout negative: system default", format!("{scram} tcp_user_timeout=-1"), Ok("true")),
        case("keepalives off, the rest unread", format!("{scram} keepalives=0 keepalives_idle=abc"), Ok("true")),
        case("keepalives_idle=0", format!("{scram} keepalives_idle=0"), Err("keepalives_idle")),
        case("keepalives_idle above 32767", format!("{scram} keepalives_idle=32768"), Err("keepalives_idle")),
        case("keepalives_interval not a number", format!("{scram} keepalives_interval=5s"), Err("keepalives_interval")),
        case("keepalives_count above 127", format!("{scram} keepalives_count=128"), Err("keepalives_count")),
        case("tcp_user_timeout beyond an int", format!("{scram} tcp_user_timeout=2147483648"), Err("tcp_user_timeout")),
        case("keepalives not a number", format!("{scram} keepalives=on"), Err("keepalives")),
        case("gssencmode=require without GSSAPI", format!("{scram} gssencmode=require"), Err("gssencmode")),
        case("gssencmode=disable", format!("{scram} gssencmode=disable"), Ok("true")),
    ];
    cases[7].env = vec![("PGSSLMODE", "disable".into())];
    let mut env_cb = case(
        "PGCHANNELBINDING=require without TLS",
        format!("{scram} sslmode=disable"),
        Err(cb),
    );
    env_cb.env = vec![("PGCHANNELBINDING", "require".into())];
    let mut env_rs = case("PGREQUIRESSL=1", scram.clone(), Ok("true"));
    env_rs.env = vec![("PGREQUIRESSL", "1".into())];
    cases.extend([env_cb, env_rs]);
    // A server before 17 answers a TLS ClientHello as a broken startup packet: direct TLS must
    // really be direct, not fall back to SSLRequest.
    if c.cluster.server_version_num() < 170000 {
        let direct = format!("{scram} sslmode=require sslnegotiation=direct");
        cases.push(case("direct TLS to a server before 17", direct, Err("")));
    }
    run(cases, newer_libpq().as_deref()).await;
}

#[tokio::test]
async fn a_revoked_server_certificate_is_refused_like_psql() {
    let c = scram_cluster().await;
    let verify = format!(
        "{} sslmode=verify-ca sslrootcert={}",
        c.base("scram_user"),
        c.file("ca.crt")
    );
    let (revoked, empty) = (c.file("revoked.crl"), c.file("empty.crl"));
    let mut cases = vec![
        case("verify-ca without a CRL", verify.clone(), Ok("true")),
        case(
            "a CRL that revokes nothing",
            format!("{verify} sslcrl={empty}"),
            Ok("true"),
        ),
        case(
            "sslcrl revokes the server certificate",
            format!("{verify} sslcrl={revoked}"),
            Err("revoked"),
        ),
        case(
            "sslcrldir with the hashed CRL",
            format!("{verify} sslcrldir={}", c.file("crldir")),
            Err("revoked"),
        ),
        case(
            "a CRL file that does not exist",
            format!("{verify} sslcrl=/nonexistent/root.crl"),
            Ok("true"),
        ),
        case(
            "require without a root certificate verifies nothing",
            format!("{} sslmode=require sslcrl={revoked}", c.base("scram_user")),
            Ok("true"),
        ),
        case(
            "require with a root certificate verifies the chain",
            format!(
                "{} sslmode=require sslrootcert={} sslcrl={revoked}",
                c.base("scram_user"),
                c.file("ca.crt")
            ),
            Err("revoked"),
        ),
    ];
    let mut env = case("PGSSLCRL", verify.clone(), Err("revoked"));
    env.env = vec![("PGSSLCRL", revoked.clone())];
    let mut home = case("~/.postgresql/root.crl", verify, Err("revoked"));
    home.home_crl = Some(revoked);
    cases.extend([env, home]);
    run(cases, None).await;
}

#[tokio::test]
async fn direct_tls_like_psql() {
    let bin = direct_tls_server_bin();
    let libpq = bin.parent().expect("the install's root").join("lib");
    let cluster = common::own_cluster(ClusterOptions {
        bin_dir: Some(bin.clone()),
        ..Default::default()
    });
    assert!(
        cluster.server_version_num() >= 170000,
        "{} is not PostgreSQL 17 or later",
        bin.display()
    );
    let tls_dir = common::tls::enable(&cluster, false);
    let base = format!("host=127.0.0.1 port={} dbname=postgres user=postgres", cluster.port());
    let ca = tls_dir.join("ca.crt").display().to_string();
    let mut cases = vec![
        case("direct with sslmode=require", format!("{base} sslmode=require sslnegotiation=direct"), Ok("true")),
        case(
            "direct with verify-full",
            format!("host=localhost port={} dbname=postgres user=postgres sslmode=verify-full sslrootcert={ca} sslnegotiation=direct", cluster.port()),
            Ok("true"),
        ),
        case("SSLRequest first", format!("{base} sslmode=require sslnegotiation=postgres"), Ok("true")),
        case("direct with the default sslmode=prefer", format!("{base} sslnegotiation=direct"), Err("sslnegotiation=direct")),
        case("direct with sslmode=disable", format!("{base} sslmode=disable sslnegotiation=direct"), Err("sslnegotiation=direct")),
        case("an unknown value", format!("{base} sslmode=require sslnegotiation=tls"), Err("sslnegotiation")),
    ];
    let mut env = case(
        "PGSSLNEGOTIATION=direct",
        format!("{base} sslmode=verify-ca sslrootcert={ca}"),
        Ok("true"),
    );
    env.env = vec![("PGSSLNEGOTIATION", "direct".into())];
    cases.push(env);
    run(cases, Some(&libpq)).await;
}

/// A PostgreSQL 17+ server for direct TLS: DBTOOL_TEST_PG_BIN when this pass runs 17 or later,
/// else the newest of scripts/pg-versions' installs. Missing is a failure, not a skip.
fn direct_tls_server_bin() -> PathBuf {
    let pass_major = std::env::var("DBTOOL_TEST_PG_MAJOR")
        .ok()
        .and_then(|m| m.trim().parse::<u32>().ok());
    if let (Some(17..), Some(dir)) = (pass_major, std::env::var_os("DBTOOL_TEST_PG_BIN")) {
        return PathBuf::from(dir);
    }
    ["/opt/dbtool-pg/18/bin", "/opt/dbtool-pg/17/bin"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("postgres").is_file())
        .unwrap_or_else(|| {
            panic!("direct TLS needs a PostgreSQL 17 or 18 server: run `scripts/pg-versions 18` (it installs /opt/dbtool-pg/18/bin)")
        })
}

/// libpq 17+ (with OpenSSL) from scripts/pg-versions' installs, which knows sslnegotiation;
/// Debian's libpq 15 refuses the keyword. None: the cases then run against libpq 15.
fn newer_libpq() -> Option<PathBuf> {
    ["/opt/dbtool-pg/18/lib", "/opt/dbtool-pg/17/lib"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("libpq.so.5").exists())
}
