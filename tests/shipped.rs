//! Works as shipped (issue 13): the README's deployment laid out with the real peers. The
//! example config (adapted to the test's paths) runs `dbtool schedule` under umask 0027, its
//! health job watches a database nobody migrated as a `pg_monitor` role, and the real
//! node_exporter, as `nobody`, reads the one textfile directory every dbtool file goes to.
//! Beside it: the shipped units verify and run with the example config, the container files
//! agree with the CronJob, and the scheduler's port is one no exporter has.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dbtool, free_port, fresh_db, get_when_up, Killed, TestDb};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/dbtool.example.toml");
const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/systemd");
const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
const BACKUP_DIR: &str = "/var/backups/dbtool";
/// The scheduler's port: outside Prometheus' exporter allocations (9100–9999 are all taken,
/// 9187 by postgres_exporter).
const PORT: &str = "19187";

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The example config with the test's paths: its `main` target is `dsn`, the `synapse` target
/// (another host) is `synapse` or dropped, the textfile and backup directories are the test's,
/// the listen port is free, and the health job runs every second.
fn adapted_example(dsn: &str, synapse_dsn: Option<&str>, textfile: &Path, backups: &Path, port: u16) -> String {
    let example = read(EXAMPLE);
    let main_dsn = "dsn = \"host=/var/run/postgresql dbname=mattermost user=dbtool\"";
    let synapse =
        "[[targets]]\nname = \"synapse\"\ndsn = \"postgres://dbtool@db2.internal:5432/synapse?sslmode=verify-full\"\n";
    let health = "name = \"health\"\nkind = \"health\"\nschedule = \"* * * * *\"";
    for part in [main_dsn, synapse, health, TEXTFILE_DIR, BACKUP_DIR] {
        assert!(example.contains(part), "{EXAMPLE} changed: no {part:?}");
    }
    example
        .replace(main_dsn, &format!("dsn = \"{dsn}\""))
        .replace(
            synapse,
            &synapse_dsn.map_or(String::new(), |d| {
                format!("[[targets]]\nname = \"synapse\"\ndsn = \"{d}\"\n")
            }),
        )
        .replace(
            health,
            "name = \"health\"\nkind = \"health\"\nschedule = \"* * * * * *\"",
        )
        .replace(TEXTFILE_DIR, &textfile.display().to_string())
        .replace(BACKUP_DIR, &backups.display().to_string())
        .replace(&format!("127.0.0.1:{PORT}"), &format!("127.0.0.1:{port}"))
}

/// A LOGIN role with pg_monitor only, as the README creates it; the DSN of `db` as that role.
async fn monitor_role(db: &TestDb) -> String {
    let role = format!("shipped_monitor_{}", std::process::id());
    db.client()
        .await
        .batch_execute(&format!("CREATE ROLE {role} LOGIN IN ROLE pg_monitor"))
        .await
        .expect("create the pg_monitor role");
    assert!(db.dsn().contains("user=postgres "), "{}", db.dsn());
    db.dsn().replace("user=postgres ", &format!("user={role} "))
}

/// A directory `nobody` can read (tempdirs are 0700).
fn open_dir(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod 0755");
}

/// node_exporter, textfile collector only, as `nobody`; stderr into `log`.
fn node_exporter_as_nobody(dir: &Path, log: &Path) -> (Killed, u16) {
    let port = free_port();
    let child = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "prometheus-node-exporter",
        ])
        .arg("--collector.disable-defaults")
        .arg("--collector.textfile")
        .arg(format!("--collector.textfile.directory={}", dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("node_exporter log"))
        .spawn()
        .unwrap_or_else(|e| panic!("setpriv prometheus-node-exporter not runnable ({e}); scripts/test installs it"));
    (Killed(child), port)
}

/// The series of Prometheus text, each as its name and its labels sorted (node_exporter
/// re-exposes a textfile's labels in its own order).
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| canonical(s)))
        .collect()
}

fn canonical(series: &str) -> String {
    let Some((name, rest)) = series.split_once('{') else {
        return series.to_string();
    };
    let body = rest.strip_suffix('}').unwrap_or(rest);
    let (mut labels, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in body.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                labels.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        labels.push(cur);
    }
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_deployment_holds_together_under_node_exporter() {
    let db = fresh_db("shipped").await;
    let dsn = monitor_role(&db).await;
    let dir = tempfile::tempdir().expect("tempdir");
    open_dir(dir.path());
    let textfile = dir.path().join("node-exporter");
    std::fs::create_dir(&textfile).expect("textfile dir");
    open_dir(&textfile);
    let port = free_port();
    let config = dir.path().join("dbtool.toml");
    std::fs::write(
        &config,
        adapted_example(&dsn, None, &textfile, &dir.path().join("backups"), port),
    )
    .expect("config");

    // config check passes; asked to connect, it names the target the backup and archive jobs
    // cannot claim runs on, and the fix.
    let out = dbtool()
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("config check");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = dbtool()
        .args(["config", "check"])
        .arg(&config)
        .args(["--target", "main"])
        .output()
        .expect("config check");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("migrate --target main"),
        "{}",
        text(&out.stderr)
    );

    // The scheduler under the unit's UMask=0027.
    let log = dir.path().join("schedule.log");
    let child = Command::new("sh")
        .args([
            "-c",
            "umask 0027 && exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_dbtool"),
            "--config",
        ])
        .arg(&config)
        .arg("schedule")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start dbtool schedule");
    let _daemon = Killed(child);
    let metrics_file = textfile.join("dbtool_schedule.prom");
    let health_file = textfile.join("dbtool_health.prom");
    let until = Instant::now() + Duration::from_secs(60);
    while sample(
        &std::fs::read_to_string(&metrics_file).unwrap_or_default(),
        "dbtool_job_runs_total{target=\"main\",job=\"health\",result=\"success\"}",
    )
    .unwrap_or(0.0)
        < 2.0
    {
        assert!(Instant::now() < until, "no two successful health runs: {}", read(&log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log_text = read(&log);
    assert!(!log_text.contains("job_runs does not exist"), "{log_text}");
    assert!(
        log_text.contains("migrate --target main"),
        "startup does not name the target backup and archive need migrated: {log_text}"
    );
    let schema: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM pg_namespace WHERE nspname = 'dbtool'", &[])
        .await
        .expect("schema count")
        .get(0);
    assert_eq!(schema, 0, "a read-only health job created dbtool's schema");

    // node_exporter as nobody over the one directory.
    let ne_log = dir.path().join("node_exporter.log");
    let (_exporter, ne_port) = node_exporter_as_nobody(&textfile, &ne_log);
    let scrape = get_when_up("node_exporter", ne_port, "/metrics", Duration::from_secs(20)).await;
    // A second scrape: the first may race the scheduler's atomic rename, never a duplicate.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scrape2 = get_when_up("node_exporter", ne_port, "/metrics", Duration::from_secs(20)).await;
    let ne_text = read(&ne_log);
    assert!(!ne_text.contains("collected before"), "node_exporter: {ne_text}");
    assert!(
        !ne_text.contains("level=error") && !ne_text.contains("level=ERROR"),
        "node_exporter logged an error: {ne_text}"
    );
    for s in [&scrape, &scrape2] {
        assert_eq!(sample(s, "node_textfile_scrape_error"), Some(0.0), "{s}");
    }
    let files = [metrics_file, health_file];
    let mut seen = BTreeSet::new();
    let scraped = series(&scrape2);
    for f in &files {
        let content = read(f);
        assert!(
            !content.contains("process_"),
            "{} carries process_* families:\n{content}",
            f.display()
        );
        for s in series(&content) {
            assert!(seen.insert(s.clone()), "{s} is in two files of the textfile directory");
            assert!(
                scraped.contains(&s),
                "{s} ({}) missing from node_exporter's scrape",
                f.display()
            );
        }
    }
    assert!(
        sample(&scrape2, "dbtool_up{target=\"main\"}") == Some(1.0),
        "health watched as the pg_monitor role: {scrape2}"
    );
    let metrics_text = read(&files[0]);
    assert!(
        metrics_text.contains("dbtool_job_runs_total{target=\"main\",job=\"health\""),
        "{metrics_text}"
    );
    assert!(
        !metrics_text.contains("dbtool_up{"),
        "health series in metrics_file beside the job's own output"
    );

    // `config check --dsn`: the same verdict for a server named by address, until it is migrated.
    let check_dsn = || {
        dbtool()
            .args(["config", "check"])
            .arg(&config)
            .args(["--dsn", &db.dsn()])
            .output()
            .expect("config check --dsn")
    };
    let out = check_dsn();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("dbtool migrate --dsn"),
        "{}",
        text(&out.stderr)
    );
    let migrated = dbtool()
        .args(["migrate", "--dsn", &db.dsn()])
        .output()
        .expect("migrate");
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    let out = check_dsn();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// The shipped units, ExecStart pointed at the binary under test (verify wants it to exist).
fn unit_copies(dir: &Path) -> Vec<(String, String)> {
    let mut units = Vec::new();
    for entry in std::fs::read_dir(UNITS).expect("deploy/systemd") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shipped = read(&path);
        std::fs::write(
            dir.join(&name),
            shipped.replace("/usr/local/bin/dbtool", env!("CARGO_BIN_EXE_dbtool")),
        )
        .expect("write unit");
        units.push((name, shipped));
    }
    units.sort();
    units
}

/// The dbtool arguments of each `key=` line (ExecStart=, ExecStartPre=) of a unit.
fn commands(unit: &str, key: &str) -> Vec<Vec<String>> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key))
        .filter(|c| c.starts_with("/usr/local/bin/dbtool "))
        .map(|c| c.split_whitespace().skip(1).map(str::to_string).collect())
        .collect()
}

/// Issue 13 item 3: every unit passes `systemd-analyze verify`, and every dbtool command line
/// of every unit runs with the example config (two targets, as shipped; only the paths and
/// DSNs are the test's). `dbtool-backup.service` exited 3 with it ("got 2 targets").
#[tokio::test(flavor = "multi_thread")]
async fn every_unit_verifies_and_runs_with_the_example_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let units = unit_copies(dir.path());
    let names: Vec<&str> = units.iter().map(|(n, _)| n.as_str()).collect();
    for needed in [
        "dbtool-backup.service",
        "dbtool-backup.timer",
        "dbtool-health.service",
        "dbtool-health.timer",
        "dbtool-schedule.service",
    ] {
        assert!(names.contains(&needed), "deploy/systemd has no {needed}: {names:?}");
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(names.iter().map(|n| dir.path().join(n)))
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze not runnable ({e}); scripts/test installs the Debian package systemd")
        });
    let err = text(&out.stderr);
    assert!(
        out.status.success() && !err.contains("dbtool-"),
        "systemd-analyze verify: {err}"
    );

    let (main, synapse) = (
        fresh_db("shipped_units_main").await,
        fresh_db("shipped_units_synapse").await,
    );
    let textfile = dir.path().join("node-exporter");
    let backups = dir.path().join("backups");
    std::fs::create_dir(&textfile).expect("textfile dir");
    let config = dir.path().join("dbtool.toml");
    let adapted = adapted_example(&main.dsn(), Some(&synapse.dsn()), &textfile, &backups, free_port());
    std::fs::write(&config, adapted).expect("config");
    let mut ran = 0;
    for (name, unit) in &units {
        for key in ["ExecStartPre=", "ExecStart="] {
            for args in commands(unit, key) {
                let args: Vec<String> = args
                    .into_iter()
                    .map(|a| {
                        if a == "/etc/dbtool/dbtool.toml" {
                            config.display().to_string()
                        } else {
                            a
                        }
                    })
                    .map(|a| a.replace(TEXTFILE_DIR, &textfile.display().to_string()))
                    .collect();
                let mut cmd = dbtool();
                cmd.env("DBTOOL_PG_BIN", common::backup::client()).args(&args);
                if args.iter().any(|a| a == "schedule") {
                    // The daemon itself: its configuration loads and lists (it runs in the test above).
                    cmd.arg("--list");
                }
                let out = cmd.output().expect("run dbtool");
                let code = out.status.code();
                let accepted: &[i32] = if args.iter().any(|a| a == "health") {
                    &[0, 1, 2]
                } else {
                    &[0]
                };
                assert!(
                    code.is_some_and(|c| accepted.contains(&c)),
                    "{name} {key}dbtool {} exited {code:?}: {}",
                    args.join(" "),
                    text(&out.stderr)
                );
                ran += 1;
            }
        }
    }
    assert_eq!(ran, 4, "backup, health, schedule's config check and schedule");
    assert!(read(textfile.join("dbtool_health.prom")).contains("dbtool_up{target=\"synapse\"} 1"));
    assert!(read(textfile.join("dbtool_backup.prom")).contains("dbtool_backup_"));
    let backed_up = std::fs::read_dir(&backups).map(|d| d.count()).unwrap_or(0);
    assert!(backed_up > 0, "no backup in [backup] dest");
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// What a user reads and installs: README, the manual, deploy/ and the code's own help.
fn shipped_text() -> Vec<(std::path::PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join(".dockerignore")];
    for d in ["docs/src", "deploy", "src"] {
        files_under(&root.join(d), &mut files);
    }
    files
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

/// Issue 13 items 3 and 4: one backup directory and one scheduler port everywhere (but the
/// upgrade notes, which name the old ones), and a CronJob image this repository builds.
#[test]
fn paths_ports_and_the_image_agree_everywhere() {
    for (path, text) in shipped_text() {
        if path.ends_with("docs/src/upgrading.md") {
            continue;
        }
        assert!(
            !text.contains(":9187"),
            "{} still names postgres_exporter's port 9187",
            path.display()
        );
        assert!(
            !text.contains("/var/backups/postgresql"),
            "{} names another backup directory",
            path.display()
        );
    }
    let listen = format!("127.0.0.1:{PORT}");
    assert!(read(EXAMPLE).contains(&format!("listen = \"{listen}\"")));
    assert!(read(format!("{UNITS}/dbtool-schedule.service")).contains(&format!("--listen {listen}")));
    let metrics_md = read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/src/metrics.md"));
    assert!(
        metrics_md.contains(&format!("targets: [\"{listen}\"]")),
        "the scrape example"
    );
    assert!(read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/src/upgrading.md")).contains(PORT));
    for unit in ["dbtool-backup.service", "dbtool-schedule.service"] {
        let text = read(format!("{UNITS}/{unit}"));
        let rw = text
            .lines()
            .find_map(|l| l.strip_prefix("ReadWritePaths="))
            .unwrap_or_default();
        assert!(
            rw.split_whitespace().any(|p| p == BACKUP_DIR),
            "{unit}: ReadWritePaths={rw}"
        );
    }
    assert!(read(EXAMPLE).contains(&format!("dest = \"{BACKUP_DIR}\"")));

    let containerfile = read(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/container/Containerfile"));
    let froms: Vec<&str> = containerfile.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: {froms:?}");
    assert!(froms[0].contains("rust") && froms[0].contains(" AS "), "{froms:?}");
    assert!(froms[1].contains("debian:bookworm-slim"), "{froms:?}");
    assert!(
        containerfile.contains("postgresql-client"),
        "pg_dump in the runtime image"
    );
    let user = containerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap_or("root");
    assert!(!user.starts_with("root") && !user.starts_with('0'), "USER {user}");
    let tag = containerfile
        .split(" -t ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the build command names its tag");
    let cronjob: serde_yaml::Value = serde_yaml::from_str(&read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/cronjob.yaml"
    )))
    .expect("YAML");
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"].as_str(),
        Some(tag),
        "the CronJob runs the image the Containerfile builds"
    );
    let uid = pod["securityContext"]["runAsUser"].as_i64().expect("runAsUser");
    assert!(
        user.starts_with(&uid.to_string()),
        "image USER {user}, CronJob runAsUser {uid}"
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"].as_str(),
        Some(BACKUP_DIR)
    );
    let dockerignore = read(concat!(env!("CARGO_MANIFEST_DIR"), "/.dockerignore"));
    assert!(
        dockerignore.lines().any(|l| l.trim() == "target/"),
        "the build context leaves target/ out"
    );
}
