//! `dbtool schedule`: a health job with `target = "*"` covers `[[targets]]` of kind pgbouncer
//! and redis like PostgreSQL ones, and their series reach the daemon's metrics file.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_health_job_checks_pgbouncer_and_redis_targets() {
    let db = fresh_db("schedule tier").await;
    let bouncer = PgBouncer::start(cluster(), &[db.name()], &[]);
    let redis = Redis::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("dbtool.toml");
    let metrics = dir.path().join("metrics.prom");
    std::fs::write(
        &cfg,
        format!(
            "[[targets]]\nname = \"main\"\ndsn = \"{}\"\n\n\
             [[targets]]\nname = \"bouncer\"\nkind = \"pgbouncer\"\ndsn = \"{}\"\n\n\
             [[targets]]\nname = \"cache\"\nkind = \"redis\"\ndsn = \"{}\"\n\n\
             [[jobs]]\nname = \"health\"\nkind = \"health\"\ntarget = \"*\"\nschedule = \"* * * * * *\"\ncatch_up = false\n",
            db.dsn(),
            bouncer.admin_dsn(),
            redis.url()
        ),
    )
    .expect("config");
    let log = dir.path().join("daemon.log");
    let mut child = dbtool()
        .arg("--config")
        .arg(&cfg)
        .args(["schedule", "--metrics"])
        .arg(&metrics)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start dbtool schedule");
    let wanted = [
        "dbtool_up{target=\"main\"} 1",
        "dbtool_up{target=\"bouncer\"} 1",
        "dbtool_up{target=\"cache\"} 1",
        "dbtool_pgbouncer_client_connections{target=\"bouncer\"}",
        "dbtool_redis_connected_clients{target=\"cache\"}",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&metrics).unwrap_or_default();
        if wanted.iter().all(|w| text.contains(w)) {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let missing: Vec<&&str> = wanted.iter().filter(|w| !text.contains(**w)).collect();
            panic!(
                "missing {missing:?} in the metrics file:\n{text}\nlog:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
