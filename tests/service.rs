//! Connection service files against a real server, each case run through Debian's psql too, so
//! the outcome (and which database is reached) is measured against libpq itself.

mod common;

use std::path::Path;

const SECRET: &str = "svc-pw-never-shown";

struct Case {
    name: &'static str,
    dsn: &'static str,
    env: Vec<(&'static str, String)>,
    /// Write the service file to ~/.pg_service.conf rather than PGSERVICEFILE.
    in_home: bool,
    /// The database reached, or None when both must refuse.
    reaches: Option<&'static str>,
    error: &'static str,
}

/// `dbtool health --check connections` run as a user would: the process environment, --dsn only
/// when given. The target label it reports (host:port/dbname), or its stderr.
fn dbtool_cli(dsn: &str, home: &Path, env: &[(&str, String)]) -> Result<String, String> {
    let mut cmd = common::dbtool();
    cmd.env("HOME", home)
        .args(["health", "--check", "connections", "--format", "json"]);
    if !dsn.is_empty() {
        cmd.args(["--dsn", dsn]);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cmd.output().expect("run dbtool");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0 | 1) => {
            let v: serde_json::Value =
                serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
            Ok(v["targets"][0]["target"].as_str().unwrap_or_default().to_string())
        }
        _ => Err(format!("{stdout}{stderr}")),
    }
}

#[tokio::test]
async fn services_resolve_like_psql() {
    let cluster = common::own_cluster(Default::default());
    let admin = common::connect(&cluster.dsn("postgres")).await;
    admin
        .batch_execute("CREATE DATABASE svc_db")
        .await
        .expect("create svc_db");
    let port = cluster.port();
    let file = format!(
        "# services\n[app]\nhost=127.0.0.1\nport={port}\nuser=postgres\ndbname=svc_db\nsslmode=disable\n\n\
         [broken]\nhost=127.0.0.1\nport=1\nuser=postgres\npassword={SECRET}\nsslmode=disable\nconnect_timeout=2\n"
    );
    let cases = vec![
        Case {
            name: "service= in the DSN, file from PGSERVICEFILE",
            dsn: "service=app",
            env: vec![],
            in_home: false,
            reaches: Some("svc_db"),
            error: "",
        },
        Case {
            name: "PGSERVICE, file at ~/.pg_service.conf",
            dsn: "",
            env: vec![("PGSERVICE", "app".into())],
            in_home: true,
            reaches: Some("svc_db"),
            error: "",
        },
        Case {
            name: "a DSN key overrides the service's",
            dsn: "service=app dbname=postgres",
            env: vec![],
            in_home: false,
            reaches: Some("postgres"),
            error: "",
        },
        Case {
            name: "the service overrides the environment",
            dsn: "service=app",
            env: vec![("PGDATABASE", "postgres".into()), ("PGPORT", "1".into())],
            in_home: false,
            reaches: Some("svc_db"),
            error: "",
        },
        Case {
            name: "an unknown service",
            dsn: "service=nope",
            env: vec![],
            in_home: false,
            reaches: None,
            error: "definition of service 'nope' not found; searched ",
        },
        Case {
            name: "a service with a password that fails",
            dsn: "service=broken",
            env: vec![],
            in_home: true,
            reaches: None,
            error: "127.0.0.1",
        },
    ];
    for case in cases {
        let home = tempfile::tempdir().expect("a home directory");
        let sysconf = tempfile::tempdir().expect("an empty PGSYSCONFDIR");
        let mut env = case.env.clone();
        env.push(("PGSYSCONFDIR", sysconf.path().display().to_string()));
        if case.in_home {
            std::fs::write(home.path().join(".pg_service.conf"), &file).expect("~/.pg_service.conf");
        } else {
            let path = home.path().join("services.conf");
            std::fs::write(&path, &file).expect("service file");
            env.push(("PGSERVICEFILE", path.display().to_string()));
        }
        let libpq = common::parity::psql_answer(case.dsn, home.path(), &env, "SELECT current_database()");
        let ours = common::parity::library_answer(case.dsn, home.path(), &env, "SELECT current_database()::text").await;
        match (case.reaches, dbtool_cli(case.dsn, home.path(), &env)) {
            (Some(db), Ok(label)) => assert!(
                label.ends_with(&format!("/{db}")),
                "{}: the CLI reached {label}",
                case.name
            ),
            (None, Err(e)) => {
                assert!(e.contains(case.error), "{}: the CLI said {e}", case.name);
                assert!(
                    !e.contains(SECRET),
                    "{}: the CLI leaked the service's password: {e}",
                    case.name
                );
            }
            (want, got) => panic!("{}: expected {want:?}, the CLI gave {got:?}", case.name),
        }
        match (case.reaches, &libpq, &ours) {
            (Some(db), Ok(a), Ok(b)) => {
                assert_eq!(a, db, "{}: psql reached another database", case.name);
                assert_eq!(b, db, "{}: dbtool reached another database", case.name);
            }
            (None, Err(_), Err(e)) => {
                assert!(e.contains(case.error), "{}: {e}", case.name);
                assert!(!e.contains(SECRET), "{}: the service's password leaked: {e}", case.name);
            }
            _ => panic!(
                "{}: expected {:?}; psql gave {libpq:?}, dbtool {ours:?}",
                case.name, case.reaches
            ),
        }
    }
}
