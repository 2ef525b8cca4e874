//! Jobs as the scheduler sees them after one load: options types, section defaults, limits.

use std::path::Path;
use std::time::Duration;

use crate::settings::jobs::JobOptions;
use crate::settings::{targets, Settings};

fn load(text: &str) -> Result<Settings, String> {
    Settings::parse(text.to_string(), Path::new("c.toml")).map_err(|e| e.to_string())
}

const TARGET: &str = "[[targets]]\nname = \"main\"\ndsn = \"host=/tmp dbname=app\"\n\n";

#[test]
fn the_claim_session_uses_the_configured_timeouts() {
    // Regression: scheduler/claim.rs hard-coded 5s / 100ms whatever the file said.
    let s = load("statement_timeout = \"2s\"\nlock_timeout = \"250ms\"\n").expect("valid");
    let b = targets::bookkeeping(&s);
    assert_eq!(
        (b.statement_timeout, b.lock_timeout),
        (Duration::from_secs(2), Duration::from_millis(250))
    );
    assert!(!b.read_only, "the claim writes dbtool.job_runs");
}

#[test]
fn a_health_job_is_its_options_over_the_health_section_resolved_at_load() {
    let text = format!(
        "{TARGET}[health]\ntop = 5\n\n[[jobs]]\nname = \"h\"\nkind = \"health\"\nschedule = \"* * * * *\"\n\
         checks = [\"connections\"]\ntimeout = \"7s\"\n"
    );
    let s = load(&text).expect("valid");
    let Some(JobOptions::Health(h)) = s.schedule.jobs.first().map(|j| &j.options) else {
        panic!("no health job: {:?}", s.schedule.jobs);
    };
    let names: Vec<&str> = h.plan.checks.iter().map(|(c, _)| c.name()).collect();
    assert_eq!(
        (names, h.plan.top_n, h.timeout),
        (vec!["connections"], 5, Duration::from_secs(7))
    );
}

#[test]
fn job_keys_are_the_options_type_and_each_problem_has_its_line() {
    let text = format!(
        "{TARGET}[[jobs]]\nname = \"h\"\nkind = \"health\"\nschedule = \"* * * * *\"\ntop = \"many\"\nstate = \"s\"\n\n\
         [[jobs]]\nname = \"p\"\nkind = \"pool-advise\"\nschedule = \"* * * * *\"\nheadroom = 0.5\n"
    );
    let err = load(&text).err().unwrap_or_default();
    assert!(err.contains("c.toml:9:7: job 'h': top:"), "{err}");
    assert!(err.contains("c.toml:10:9: job 'h': unknown key 'state'"), "{err}");
    assert!(
        err.contains("job 'p': --headroom (as a job key, or headroom in [pool_advise])"),
        "{err}"
    );
}

#[test]
fn a_health_job_may_write_nagios_output_with_its_bound() {
    // For passive checks: the file holds what `dbtool health --format nagios` would print.
    let text = format!(
        "{TARGET}[health]\nmax_output = 2000\n\n[[jobs]]\nname = \"h\"\nkind = \"health\"\nschedule = \"* * * * *\"\n\
         output = \"/tmp/h.txt\"\nformat = \"nagios\"\n\n[[jobs]]\nname = \"n\"\nkind = \"health\"\n\
         schedule = \"* * * * *\"\nmax_output = 900\n"
    );
    let s = load(&text).expect("valid");
    let health: Vec<_> = s
        .schedule
        .jobs
        .iter()
        .filter_map(|j| match &j.options {
            JobOptions::Health(h) => Some((h.format, h.max_output)),
            _ => None,
        })
        .collect();
    assert_eq!(
        health,
        [
            (crate::report::Format::Nagios, 2000),
            (crate::report::Format::Prometheus, 900)
        ]
    );
}

fn health_job(s: &Settings) -> &crate::settings::jobs::HealthJob {
    match s.schedule.jobs.first().map(|j| &j.options) {
        Some(JobOptions::Health(h)) => h,
        other => panic!("no health job: {other:?}"),
    }
}

#[test]
fn a_health_jobs_refresh_is_each_checks_default_under_the_section_under_the_job() {
    let text = format!(
        "{TARGET}[health]\nrefresh = {{ vacuum = \"2m\", indexes = \"1h\" }}\n\n\
         [[jobs]]\nname = \"h\"\nkind = \"health\"\nschedule = \"* * * * *\"\n\
         checks = [\"connections\", \"vacuum\", \"indexes\", \"bloat\", \"sequences\"]\n\
         refresh = {{ indexes = \"0s\", connections = \"30s\" }}\n"
    );
    let s = load(&text).expect("valid");
    let got: Vec<(&str, Duration)> = health_job(&s).refresh.intervals.iter().map(|(k, v)| (*k, *v)).collect();
    let min = |m: u64| Duration::from_secs(m * 60);
    assert_eq!(
        got,
        vec![
            ("bloat", min(15)),
            ("connections", Duration::from_secs(30)),
            ("sequences", min(5)),
            ("vacuum", min(2)),
        ],
        "indexes = \"0s\" runs every time"
    );
}

#[test]
fn a_refresh_naming_no_check_or_no_duration_is_refused_with_its_line() {
    let job = "[[jobs]]\nname = \"h\"\nkind = \"health\"\nschedule = \"* * * * *\"\n";
    let err = load(&format!("{TARGET}{job}refresh = {{ bloats = \"15m\" }}\n"))
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("c.toml:9:11: job 'h': refresh: unknown check 'bloats'; known checks:"),
        "{err}"
    );
    let err = load(&format!("{TARGET}[health]\nrefresh = {{ bloats = \"15m\" }}\n"))
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("c.toml:6:11: [health] refresh: unknown check 'bloats'"),
        "{err}"
    );
    let err = load(&format!("{TARGET}{job}refresh = {{ bloat = \"soon\" }}\n"))
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("c.toml:9:") && err.contains("'soon' is not a duration"),
        "{err}"
    );
    let err = load(&format!("{TARGET}[health]\nrefresh = {{ bloat = 15 }}\n"))
        .err()
        .unwrap_or_default();
    assert!(err.contains("c.toml:6:11: [health] refresh:"), "{err}");
}
