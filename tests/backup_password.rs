//! The login password reaches pg_dump, pg_dumpall, pg_restore and psql through dbtool's
//! in-memory service file, not their environment: libpq discourages PGPASSWORD for children
//! because /proc/PID/environ shows it to the same user and root, core dumps keep it and every
//! grandchild inherits it. Against a cluster whose TCP logins all need SCRAM, so a child
//! without the password fails.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use common::backup::{
    assert_exit, children_named, contents, dbt, exec, hold_lock, run, seed, text, wait_for_blocked_dump,
};
use common::{fresh_db_on, own_cluster, TestDb};
use tempcluster::{ClusterOptions, TempCluster};

/// A leading space, `#`, `=`, both quotes and a backslash: a service-file line carries them as
/// they are.
const HOSTILE: &str = " Pw7#a=b'\"\\x";
/// What no child's environment or argv, and no output, may hold.
const MARK: &str = "Pw7#a=b";

/// This binary's cluster: every login over TCP needs SCRAM (the socket stays trusted for
/// the tests' own setup and checks).
fn scram_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        own_cluster(ClusterOptions {
            // PostgreSQL 13 still stores md5 by default, which a scram-sha-256 line cannot verify.
            conf: vec!["password_encryption = 'scram-sha-256'".into()],
            hba_prepend: vec!["host all all 127.0.0.1/32 scram-sha-256".into()],
            ..Default::default()
        })
    })
}

/// A seeded database and a superuser role of its own (pg_dumpall --globals reads pg_authid)
/// that logs in with `password` only.
async fn db_with_role(hint: &str, password: &str) -> (TestDb, String) {
    let db = fresh_db_on(scram_cluster(), hint).await;
    seed(&db, 300).await;
    let role = format!("r_{}", db.name());
    let literal = password.replace('\'', "''");
    exec(
        &db.dsn(),
        &format!("CREATE ROLE \"{role}\" LOGIN SUPERUSER PASSWORD '{literal}'"),
    )
    .await;
    (db, role)
}

/// `host=127.0.0.1 … user=ROLE dbname=DB`, plus `password='…'` when given.
fn dsn(role: &str, dbname: &str, password: Option<&str>) -> String {
    let mut dsn = format!(
        "host=127.0.0.1 port={} user={role} dbname={dbname}",
        scram_cluster().port()
    );
    if let Some(pw) = password {
        dsn.push_str(&format!(
            " password='{}'",
            pw.replace('\\', "\\\\").replace('\'', "\\'")
        ));
    }
    dsn
}

/// dbtool with an empty HOME (no ~/.pgpass to fall back on) and PGPASSWORD when given.
fn dbtool(home: &Path, pgpassword: Option<&str>) -> Command {
    let mut cmd = dbt();
    cmd.env("HOME", home);
    if let Some(pw) = pgpassword {
        cmd.env("PGPASSWORD", pw);
    }
    cmd
}

fn assert_no_mark(outs: &[Output], what: &str) {
    for out in outs {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        // The output is not printed: it would show the password.
        assert!(!all.contains(MARK), "{what}: dbtool's output shows the password");
    }
}

/// backup (with --globals), `backups verify --full` and restore (pg_restore into the server),
/// the password once only in the DSN and once only in PGPASSWORD, custom and directory formats.
#[tokio::test]
async fn backup_and_restore_with_the_password_in_the_dsn_or_pgpassword() {
    let (db, role) = db_with_role("pw backup", HOSTILE).await;
    let home = tempfile::tempdir().expect("a home directory");
    let cases: [(&str, bool, &[&str]); 2] = [
        ("in the DSN", true, &["--format", "custom"]),
        ("in PGPASSWORD", false, &["--format", "directory", "--jobs", "2"]),
    ];
    for (n, (case, in_dsn, extra)) in cases.into_iter().enumerate() {
        let (given, env) = if in_dsn {
            (Some(HOSTILE), None)
        } else {
            (None, Some(HOSTILE))
        };
        let dest = tempfile::tempdir().expect("a backup destination");
        let mut outs = Vec::new();
        let out = run(dbtool(home.path(), env)
            .args(["backup", "--globals", "--dsn", &dsn(&role, db.name(), given), "--dest"])
            .arg(dest.path())
            .args(extra));
        assert_exit(&out, 0);
        outs.push(out);
        let out = run(dbtool(home.path(), env)
            .args(["backups", "verify", "--latest", "--full", "--dest"])
            .arg(dest.path()));
        assert_exit(&out, 0);
        outs.push(out);
        let into = format!("{}_r{n}", db.name());
        let mut restore = dbtool(home.path(), env);
        restore
            .args(["restore", "--latest", "--to", &dsn(&role, &into, given), "--dest"])
            .arg(dest.path());
        if !in_dsn {
            restore.args(["--jobs", "2"]);
        }
        let out = run(&mut restore);
        assert_exit(&out, 0);
        outs.push(out);
        let restored = scram_cluster().dsn(&into);
        assert_eq!(contents(&db.dsn()).await, contents(&restored).await, "{case}");
        assert_no_mark(&outs, case);
        exec(
            &scram_cluster().dsn("postgres"),
            &format!("DROP DATABASE \"{into}\" WITH (FORCE)"),
        )
        .await;
    }
}

/// `NUL`-separated `/proc/PID/FILE` as lines.
fn proc_text(pid: u32, file: &str) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_else(|e| panic!("/proc/{pid}/{file}: {e}"));
    String::from_utf8_lossy(&raw).replace('\0', "\n")
}

fn spawn_backup(home: &Path, dsn: &str, dest: &Path) -> Child {
    dbtool(home, None)
        .args(["backup", "--dsn", dsn, "--dest"])
        .arg(dest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn dbtool backup: {e}"))
}

/// The running pg_dump, caught waiting for a lock the test holds: its environment has no
/// PGPASSWORD and neither it nor argv holds the password; the dump then finishes with it.
#[tokio::test]
async fn a_running_pg_dump_has_no_password_in_its_environment_or_argv() {
    let (db, role) = db_with_role("pw environ", HOSTILE).await;
    let home = tempfile::tempdir().expect("a home directory");
    let dest = tempfile::tempdir().expect("a backup destination");
    let holder = hold_lock(&db, "posts").await;
    let child = spawn_backup(home.path(), &dsn(&role, db.name(), Some(HOSTILE)), dest.path());
    wait_for_blocked_dump(&db).await;
    let pids = children_named(child.id(), "pg_dump");
    assert_eq!(pids.len(), 1, "pg_dump children of dbtool: {pids:?}");
    let (environ, cmdline) = (proc_text(pids[0], "environ"), proc_text(pids[0], "cmdline"));
    // Released before the blocking wait: a dropped client's connection task would never run.
    holder.batch_execute("ROLLBACK").await.expect("release the lock");
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}"));
    // Names only in the messages: a failure must not print the password either.
    let names: Vec<&str> = environ.lines().map(|l| l.split('=').next().unwrap_or(l)).collect();
    assert!(
        !names.contains(&"PGPASSWORD"),
        "pg_dump's environment holds PGPASSWORD: {names:?}"
    );
    assert!(
        !environ.contains(MARK),
        "pg_dump's environment holds the password: {names:?}"
    );
    assert!(!cmdline.contains(MARK), "pg_dump's argv holds the password");
    assert!(
        environ.lines().any(|l| l == "PGSERVICE=dbtool-child"),
        "the password came by no service file: {names:?}"
    );
    assert_exit(&out, 0);
    assert_no_mark(&[out], "backup");
}

/// A password a service-file line cannot carry (here: trailing whitespace, which libpq's
/// service file drops) falls back to the child's PGPASSWORD with one warning naming why,
/// never the password; the backup works as before.
#[tokio::test]
async fn a_password_the_service_file_cannot_carry_falls_back_with_one_warning() {
    let password = "Tw5-trailing ";
    let (db, role) = db_with_role("pw fallback", password).await;
    let home = tempfile::tempdir().expect("a home directory");
    let dest = tempfile::tempdir().expect("a backup destination");
    let out = run(dbtool(home.path(), None)
        .args([
            "backup",
            "--globals",
            "--dsn",
            &dsn(&role, db.name(), Some(password)),
            "--dest",
        ])
        .arg(dest.path())
        .args(["--format", "directory", "--jobs", "2"]));
    assert_exit(&out, 0);
    let err = text(&out.stderr);
    let warnings = err.matches("goes in their PGPASSWORD").count();
    assert_eq!(warnings, 1, "one warning for pg_dump and pg_dumpall: {err}");
    assert!(err.contains("ends in whitespace"), "{err}");
    assert!(
        !err.contains("Tw5-trailing") && !text(&out.stdout).contains("Tw5-trailing"),
        "{err}"
    );
}
