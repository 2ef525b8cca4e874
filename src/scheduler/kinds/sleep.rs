//! The test-only `sleep` kind (DBTOOL_TEST_JOBS=1): a `sleep` child process, killed on cancel.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::settings::jobs::SleepOptions;

/// The test-only job: a child process that sleeps, killed on cancel (as backup's pg_dump is).
pub(super) async fn run(o: &SleepOptions, cancel: CancellationToken) -> anyhow::Result<Outcome> {
    let seconds = o.seconds.unwrap_or(1.0);
    let mut child = tokio::process::Command::new("sleep")
        .arg(format!("{seconds}"))
        .kill_on_drop(true)
        .spawn()
        .context("spawning sleep")?;
    if let (Some(path), Some(pid)) = (&o.pid_file, child.id()) {
        // One line per run, so a test can tell this run's child from the next one's.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{pid}"))
            .with_context(|| format!("writing {path}"))?;
    }
    tokio::select! {
        status = child.wait() => {
            let status = status.context("waiting for sleep")?;
            if !status.success() {
                bail!("sleep exited with {status}");
            }
            Ok(Outcome { message: format!("slept {seconds}s"), ..Outcome::default() })
        }
        () = cancel.cancelled() => {
            let _ = child.kill().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            bail!("cancelled; child process killed")
        }
    }
}
