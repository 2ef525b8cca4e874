//! `dbtool config check` is the gate before a deployment: every problem of a file at once,
//! each as `FILE:LINE:COLUMN: key: what is wrong; what would be accepted`, exit 1; bad numbers
//! on the command line name their flag. Then the config and DSN parsers on generated input:
//! no panic, and no password in any message.

use std::path::Path;
use std::process::{Command, Output};

use dbtool::settings::Settings;

const TARGET: &str = "[[targets]]\nname = \"main\"\ndsn = \"host=/tmp dbname=app\"\n\n";

fn dbtool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbtool"))
        .args(args)
        .env_remove("DBTOOL_CONFIG")
        .output()
        .expect("run dbtool")
}

/// Runs `config check` on `text`; returns the exit code and stderr.
fn check(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dbtool.toml");
    std::fs::write(&file, text).expect("write config");
    let out = dbtool(&["config", "check", file.to_str().expect("utf-8 path")]);
    let err = String::from_utf8_lossy(&out.stderr).replace(file.to_str().unwrap_or_default(), "F");
    (out.status.code(), err)
}

/// `text` is refused (exit 1) with a line that starts at `position` and contains `words`.
fn refused(text: &str, position: &str, words: &[&str]) {
    let (code, err) = check(text);
    assert_eq!(code, Some(1), "exit code for:\n{text}\n{err}");
    let line = err.lines().find(|l| l.starts_with(&format!("F:{position}: ")));
    assert!(
        line.is_some_and(|l| words.iter().all(|w| l.contains(w))),
        "expected F:{position}: with {words:?}, got:\n{err}"
    );
}

fn job(schedule: &str) -> String {
    format!("{TARGET}[[jobs]]\nname = \"j\"\nkind = \"health\"\nschedule = \"{schedule}\"\n")
}

#[test]
fn cron_expressions_that_never_fire_are_refused() {
    // Regression: 30 February and a past year were accepted, and the job never ran.
    refused(
        &job("0 0 30 2 *"),
        "8:12",
        &["job 'j'", "schedule", "never fires", "5 years"],
    );
    refused(&job("0 0 0 1 1 * 2020"), "8:12", &["never fires"]);
}

#[test]
fn cron_errors_name_the_field_and_its_range() {
    // Regression: "Minutes must be less than 59", or a bare "^".
    refused(
        &job("61 * * * *"),
        "8:12",
        &["minute field '61'", "out of range", "0-59"],
    );
    refused(&job("0 0 * 13 *"), "8:12", &["month field '13'", "1-12"]);
    refused(&job("0 0 * * MOON"), "8:12", &["day-of-week field 'MOON'", "SUN-SAT"]);
    refused(&job("@reboot"), "8:12", &["@daily"]);
    for ok in [
        "@daily",
        "@hourly",
        "@weekly",
        "@midnight",
        "*/5 * * * *",
        "0 3 * * 1-5",
    ] {
        let (code, err) = check(&job(ok));
        assert_eq!(code, Some(0), "{ok}: {err}");
    }
}

#[test]
fn thresholds_must_be_numbers_that_can_fire() {
    refused(
        "[checks.connections]\nwarning = nan\n",
        "2:11",
        &["[checks.connections] warning", "0 to 100"],
    );
    refused(
        "[checks.locks]\ncritical_seconds = inf\n",
        "2:20",
        &["critical_seconds", "0 or more"],
    );
    refused(
        "[checks.connections]\ncritical = -5\n",
        "2:12",
        &["critical", "negative"],
    );
    refused("[checks.connections]\nwarning = 150\n", "2:11", &["above 100"]);
    // A warning beyond its critical never warns before it pages.
    refused(
        "[checks.connections]\nwarning = 95\ncritical = 90\n",
        "2:11",
        &["warning", "above critical 90", "at or below critical"],
    );
    // For the cache hit ratio lower is worse: warning sits above critical.
    refused(
        "[checks.cache_hit]\nwarning = 80\ncritical = 90\n",
        "2:11",
        &["lower is worse", "at or above critical"],
    );
    let (code, err) = check("[checks.cache_hit]\nwarning = 95\ncritical = 85\n");
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn compress_and_target_dsns_are_checked_before_any_run() {
    refused(
        "[backup]\ncompress = \"bogus\"\n",
        "2:12",
        &["[backup] compress", "gzip, lz4 or zstd"],
    );
    refused(
        "[[targets]]\nname = \"a\"\ndsn = \"host=db dbname\"\n",
        "3:7",
        &["[[targets]] 'a' dsn", "missing '='", "postgresql://"],
    );
    refused(
        "[[targets]]\nname = \"a\"\ndsn = \"postgresql://u:hunter2@db/app?sslmode=maybe\"\n",
        "3:7",
        &["sslmode", "verify-full"],
    );
    let (_, err) = check("[[targets]]\nname = \"a\"\ndsn = \"postgresql://u:hunter2@db/app?sslmode=maybe\"\n");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn numbers_in_sections_are_checked_as_their_flags_are() {
    refused("[health]\ntop = 0\n", "2:7", &["[health] top", "from 1 up"]);
    refused(
        "[pool_advise]\nheadroom = -1\n",
        "2:12",
        &["[pool_advise] headroom", "between 1 and 100"],
    );
    refused(
        "[health]\nmax_connections = -2\n",
        "2:19",
        &["[health] max_connections", "whole number"],
    );
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    // Regression: the first TOML error stopped the check.
    let text = format!(
        "bogus = 1\n{TARGET}[health]\ntop = -3\nmax_connections = \"x\"\n\n[backup]\ncompress = \"bogus\"\n\n\
         [checks.connections]\nwarning = nan\n\n[[jobs]]\nname = \"j\"\nkind = \"health\"\nschedule = \"0 0 30 2 *\"\n"
    );
    let (code, err) = check(&text);
    assert_eq!(code, Some(1), "{err}");
    let positions: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("F:"))
        .filter_map(|l| l.split(": ").next())
        .collect();
    assert_eq!(positions, ["1:1", "7:7", "8:19", "11:12", "14:11", "19:12"], "{err}");
    assert!(
        err.contains("max_connections: invalid type: string, expected a whole number"),
        "{err}"
    );
    // A syntax error is one error, with its position.
    refused("[health\ntop = 1\n", "1:8", &["not valid TOML"]);
}

#[test]
fn bad_numbers_on_the_command_line_name_their_flag() {
    // Regression: "unexpected argument '-1' found", naming no flag.
    for (args, flag) in [
        (&["health", "--max-connections", "-1"][..], "--max-connections"),
        (&["health", "--top", "0"][..], "--top"),
        (&["health", "--timeout", "-1"][..], "--timeout"),
        (&["archive", "--batch-size", "-1"][..], "--batch-size"),
        (&["history", "--limit", "-1"][..], "--limit"),
        (&["backup", "--jobs", "-2"][..], "--jobs"),
        (&["pool-advise", "--db-cores", "-4"][..], "--db-cores"),
        (&["backup", "--compress", "bogus"][..], "--compress"),
    ] {
        let out = dbtool(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(
            err.contains(&format!("invalid value '{}' for '{flag}", args[2])) && !err.contains("unexpected argument"),
            "{args:?}: {err}"
        );
    }
    let out = dbtool(&[
        "health",
        "--set",
        "connections.warning=-1",
        "--dsn",
        "host=/nonexistent",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--set connections.warning=-1") && err.contains("negative"),
        "{err}"
    );
}

/// xorshift64*: a fixed sequence, so a failure is reproducible from its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SECRET: &str = "Pw9xSECRET";

/// Pieces the generator splices in: TOML syntax, numbers at the edges, cron words, DSN parts.
const PIECES: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\n",
    "#",
    "\\",
    ",",
    ".",
    "{",
    "}",
    " ",
    "-1",
    "nan",
    "inf",
    "1e400",
    "18446744073709551616",
    "0",
    "*/0",
    "@",
    "@daily",
    "61",
    "30 2",
    "2020",
    "true",
    "host=",
    "port=",
    "dbname=",
    "postgresql://",
    ":",
    "/",
    "?",
    "%",
    "%zz",
    "sslmode=",
    "\u{0}",
    "é",
    "\u{202e}",
    "jobs",
    "checks",
    "targets",
    "warning",
    "critical",
];

const BASE: &str = "statement_timeout = \"5s\"\n\n[[targets]]\nname = \"main\"\n\
dsn = \"postgresql://app:Pw9xSECRET@db1:5432/app?sslmode=require\"\n\n[[targets]]\nname = \"kv\"\n\
dsn = \"host=db2 port=5433 dbname=app user=app password=Pw9xSECRET\"\n\n[health]\ntop = 10\n\
max_connections = 2\n\n[backup]\ndest = \"/var/backups/dbtool\"\ncompress = \"zstd:3\"\n\n\
[checks.connections]\nwarning = 70\ncritical = 90\n\n[schedule]\ntimezone = \"UTC\"\n\n[[jobs]]\n\
name = \"health\"\nkind = \"health\"\nschedule = \"*/5 * * * *\"\ntarget = \"*\"\n";

/// Mutates `base` outside the password, so a message that quotes the password is a leak.
fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut text = base.to_string();
    for _ in 0..1 + rng.below(4) {
        let mut at = rng.below(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        // The password and the separators either side of it stay: without them it is no
        // longer a password (user "appPw9x…"), and a message may name it.
        let guarded = |from: usize, to: usize| {
            text.match_indices(SECRET)
                .any(|(s, _)| from <= s + SECRET.len() + 1 && to + 1 >= s)
        };
        let inside_secret = guarded(at, at);
        if inside_secret {
            continue;
        }
        match rng.below(3) {
            0 => text.insert_str(at, PIECES[rng.below(PIECES.len())]),
            1 => {
                let mut end = (at + 1 + rng.below(6)).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                if !guarded(at, end) {
                    text.replace_range(at..end, "");
                }
            }
            _ => {
                let line = text
                    .lines()
                    .nth(rng.below(text.lines().count()))
                    .unwrap_or("")
                    .to_string();
                if !line.contains(SECRET) {
                    text.insert_str(at, &line);
                }
            }
        }
    }
    text
}

#[test]
fn generated_configs_never_panic_and_never_echo_the_password() {
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    for case in 0..3000 {
        let text = mutate(&mut rng, BASE);
        let result = std::panic::catch_unwind(|| Settings::parse(text.clone(), Path::new("f.toml")));
        let Ok(result) = result else {
            panic!("case {case}: Settings::parse panicked on:\n{text}");
        };
        if let Err(errors) = result {
            let shown = errors.to_string();
            assert!(
                !shown.contains(SECRET),
                "case {case}: the password is in:\n{shown}\nfrom:\n{text}"
            );
            for line in shown.lines() {
                assert!(
                    line.starts_with("f.toml:"),
                    "case {case}: an error without its position: {line}\nfrom:\n{text}"
                );
            }
        }
    }
}

#[test]
fn generated_dsns_never_panic_and_never_echo_the_password() {
    let env = dbtool::db::MapEnv(Default::default());
    let bases = [
        "postgresql://app:Pw9xSECRET@db1:5432/app?sslmode=require",
        "host=db2 port=5433 dbname=app user=app password=Pw9xSECRET",
        "postgres://app:Pw9xSECRET@[::1]:5432,db2/app?connect_timeout=3",
        "password='Pw9xSECRET' host=db3",
    ];
    let mut rng = Rng(0x5EED_CAFE_F00D_0002);
    for case in 0..5000 {
        let base = bases[rng.below(bases.len())];
        let dsn = mutate(&mut rng, base);
        let result =
            std::panic::catch_unwind(|| dbtool::db::ConnParams::resolve(Some(&dsn), &env).map(|p| p.redacted()));
        let Ok(result) = result else {
            panic!("case {case}: ConnParams::resolve panicked on {dsn:?}");
        };
        // An error quotes no value at all; a parsed DSN is shown without its password (a
        // mutation may have made the secret part of another value, such as the user name).
        let shown = match result {
            Ok(_)
                if !["://app:Pw9xSECRET@", " password=Pw9xSECRET", "password='Pw9xSECRET'"]
                    .iter()
                    .any(|p| dsn.contains(p)) =>
            {
                continue
            }
            Ok(redacted) => redacted,
            Err(e) => format!("{e} {e:?}"),
        };
        assert!(
            !shown.contains(SECRET),
            "case {case}: the password is in {shown:?} from {dsn:?}"
        );
    }
}

/// Issue 15: a job that needs PostgreSQL (backup, archive, pool-advise) is refused when its
/// target is a PgBouncer or a Redis, with the job, the target and the fix on one line; a
/// health job on the same targets is fine.
#[test]
fn jobs_that_need_postgres_are_refused_on_a_pgbouncer_or_redis_target() {
    let targets = "[[targets]]\nname = \"db\"\ndsn = \"host=/tmp dbname=app\"\n\n\
                   [[targets]]\nname = \"bouncer\"\nkind = \"pgbouncer\"\ndsn = \"host=127.0.0.1 port=6432 user=stats\"\n\n\
                   [[targets]]\nname = \"cache\"\nkind = \"redis\"\ndsn = \"redis://127.0.0.1:6379\"\n\n";
    let job = |kind: &str, target: &str, keys: &str| {
        format!("{targets}[[jobs]]\nname = \"nightly\"\nkind = \"{kind}\"\nschedule = \"0 3 * * *\"\ntarget = \"{target}\"\n{keys}")
    };
    let backup = "dest = \"/var/backups/dbtool\"\n";
    let archive = "table = \"public.posts\"\ncolumn = \"create_at\"\nolder_than = \"2y\"\n";
    // The job's target line is line 19.
    refused(
        &job("backup", "cache", backup),
        "19:10",
        &[
            "job 'nightly'",
            "target 'cache' is a redis target",
            "backup job needs a PostgreSQL server",
            "kind = \"postgres\"",
        ],
    );
    refused(
        &job("archive", "bouncer", archive),
        "19:10",
        &[
            "job 'nightly'",
            "target 'bouncer' is a pgbouncer target",
            "archive job",
            "kind = \"postgres\"",
        ],
    );
    refused(
        &job("pool-advise", "bouncer", ""),
        "19:10",
        &[
            "job 'nightly'",
            "target 'bouncer' is a pgbouncer target",
            "pool-advise job",
            "pgbouncer = \"URL\"",
        ],
    );
    let (code, err) = check(&job("backup", "cache", backup));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(code, Some(1));
    // "*" with no PostgreSQL target among them would never run.
    let only_tier = "[[targets]]\nname = \"cache\"\nkind = \"redis\"\ndsn = \"redis://127.0.0.1:6379\"\n\n\
                     [[jobs]]\nname = \"nightly\"\nkind = \"backup\"\nschedule = \"0 3 * * *\"\ntarget = \"*\"\ndest = \"/b\"\n";
    refused(
        only_tier,
        "10:10",
        &["job 'nightly'", "target \"*\" has no PostgreSQL server"],
    );
    // The same targets are fine for health, and for a backup of the PostgreSQL one.
    for ok in [
        job("health", "cache", ""),
        job("health", "bouncer", ""),
        job("backup", "db", backup),
        job("pool-advise", "db", ""),
    ] {
        let (code, err) = check(&ok);
        assert_eq!(code, Some(0), "{ok}\n{err}");
    }
}

/// The same rule on the command line: a command that needs PostgreSQL itself refuses a
/// PgBouncer target (its admin console) by name before connecting anywhere, with the fix.
#[test]
fn commands_that_need_postgres_refuse_a_pgbouncer_target_up_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dbtool.toml");
    // Port 1: nothing listens there, so a connection attempt would fail differently.
    let text = "[[targets]]\nname = \"bouncer\"\nkind = \"pgbouncer\"\ndsn = \"host=127.0.0.1 port=1 user=stats\"\n";
    std::fs::write(&file, text).expect("write config");
    let config = file.to_str().expect("utf-8 path");
    let backups = dir.path().join("backups");
    let backups = backups.to_str().expect("utf-8 path");
    let commands: [&[&str]; 5] = [
        &["backup", "--dest", backups],
        &[
            "archive",
            "--table",
            "posts",
            "--column",
            "create_at",
            "--older-than",
            "2y",
        ],
        &["migrate"],
        &["history"],
        &["pool-advise", "--sample", "1s"],
    ];
    for command in commands {
        let mut args = vec!["--config", config];
        args.extend_from_slice(command);
        args.extend(["--target", "bouncer"]);
        let out = dbtool(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(2 | 3)),
            "{command:?}: exit {:?}\n{err}",
            out.status.code()
        );
        assert!(
            err.contains("target 'bouncer' is a pgbouncer server, and this needs PostgreSQL")
                && err.contains("kind = \"postgres\""),
            "{command:?}: {err}"
        );
        assert!(
            !err.contains("port 1") && !err.contains("Connection refused"),
            "{command:?} connected: {err}"
        );
    }
}
