//! Per-check refresh intervals of a scheduled health job: a check with a long `refresh` is
//! queried once and then reported from its kept rows with a growing age, while a check
//! without one runs every time; a reload with `refresh` 0 queries it every run again, and a
//! restart of the server drops what was kept.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{fresh_db_on, own_cluster};
use serde_json::Value;
use tempcluster::ClusterOptions;

/// A health job every second with `connections` (no refresh) and `sequences` refreshed every
/// `sequences` (a duration).
fn config(dsn: &str, output: &Path, sequences: &str) -> String {
    format!(
        "[[targets]]\nname = \"main\"\ndsn = \"{dsn}\"\n\n\
         [[jobs]]\nname = \"health\"\nkind = \"health\"\nschedule = \"* * * * * *\"\ncatch_up = false\n\
         checks = [\"connections\", \"sequences\"]\nformat = \"json\"\noutput = \"{}\"\n\
         refresh = {{ sequences = \"{sequences}\" }}\n",
        output.display()
    )
}

/// One check of one run as the job wrote it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    reused: bool,
    age: f64,
    duration: f64,
    status: String,
}

/// One finished run: its `generated_at`, and `connections` and `sequences` as reported.
#[derive(Debug, Clone, PartialEq)]
struct RunSeen {
    at: String,
    connections: Seen,
    sequences: Seen,
}

fn read_run(output: &Path) -> Option<RunSeen> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(output).ok()?).ok()?;
    let target = &doc["targets"][0];
    if target["up"].as_bool() != Some(true) {
        return None;
    }
    let check = |name: &str| {
        let c = target["checks"].as_array()?.iter().find(|c| c["name"] == name)?;
        Some(Seen {
            reused: c["reused"].as_bool()?,
            age: c["age_seconds"].as_f64()?,
            duration: c["duration_seconds"].as_f64()?,
            status: c["status"].as_str()?.to_string(),
        })
    };
    Some(RunSeen {
        at: doc["generated_at"].as_str()?.to_string(),
        connections: check("connections")?,
        sequences: check("sequences")?,
    })
}

/// The next `n` runs written after this call (runs of a server that was down are not counted).
async fn runs(d: &Daemon, output: &Path, n: usize) -> Vec<RunSeen> {
    let until = Instant::now() + Duration::from_secs(60);
    let first = read_run(output).map(|r| r.at);
    let mut seen: Vec<RunSeen> = Vec::new();
    while seen.len() < n {
        assert!(
            Instant::now() < until,
            "{} of {n} runs seen: {seen:?}\n{}",
            seen.len(),
            d.log()
        );
        if let Some(r) = read_run(output) {
            if Some(&r.at) != first.as_ref() && seen.last().map(|s| &s.at) != Some(&r.at) {
                seen.push(r);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refreshed_check_is_queried_once_and_reported_with_its_age() {
    let cluster = own_cluster(ClusterOptions::default());
    let db = fresh_db_on(&cluster, "refresh").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, output) = (dir.path().join("dbtool.toml"), dir.path().join("health.json"));
    std::fs::write(&cfg, config(&db.dsn(), &output, "1h")).expect("write config");
    let d = Daemon::start(&cfg, dir.path());

    // The first run measures sequences; every later one reuses it, its age growing, while
    // connections is queried every time.
    let first = runs(&d, &output, 4).await;
    let measured = first.iter().position(|r| !r.sequences.reused);
    let later: Vec<&RunSeen> = first.iter().skip(measured.map_or(0, |i| i + 1)).collect();
    assert!(later.len() >= 2, "too few runs after the measuring one: {first:?}");
    for r in &later {
        assert!(r.sequences.reused && r.sequences.duration == 0.0, "{first:?}");
        assert_eq!(r.sequences.status, "OK", "{first:?}");
        assert!(!r.connections.reused && r.connections.age == 0.0, "{first:?}");
        assert!(r.connections.duration > 0.0, "{first:?}");
    }
    let ages: Vec<f64> = later.iter().map(|r| r.sequences.age).collect();
    assert!(ages.windows(2).all(|w| w[1] > w[0]), "the age does not grow: {ages:?}");

    // A reload with refresh 0: sequences is queried on every run again.
    std::fs::write(&cfg, config(&db.dsn(), &output, "0s")).expect("rewrite config");
    d.reload();
    let after = runs(&d, &output, 3).await;
    for r in after.iter().skip(1) {
        assert!(!r.sequences.reused && r.sequences.age == 0.0, "{after:?}");
        assert!(r.sequences.duration > 0.0, "{after:?}");
    }

    // Back to 1h, then a restart of the server: what was kept before it is dropped and the
    // first run after it measures afresh.
    std::fs::write(&cfg, config(&db.dsn(), &output, "1h")).expect("rewrite config");
    d.reload();
    let kept = runs(&d, &output, 3).await;
    let before = kept.last().map_or(0.0, |r| r.sequences.age);
    assert!(before >= 1.0, "sequences was not reused after the reload: {kept:?}");
    cluster.stop().expect("stop the server");
    cluster.start_again().expect("start the server again");
    let restarted = runs(&d, &output, 2).await;
    assert!(
        restarted[0].sequences.age < before && restarted[1].sequences.age < before + 1.5,
        "kept across a restart (age {before} before it): {restarted:?}\n{}",
        d.log()
    );
}
