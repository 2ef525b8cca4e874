//! A `dbtool schedule` daemon started by a test: its log file, SIGHUP, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

pub struct Daemon {
    pub child: Child,
    log: PathBuf,
}

impl Daemon {
    /// `dbtool --config CFG schedule --metrics DIR/metrics.prom`, stderr into DIR/daemon.log.
    pub fn start(cfg: &Path, dir: &Path) -> Daemon {
        let log = dir.join("daemon.log");
        let child = super::dbtool()
            .arg("--config")
            .arg(cfg)
            .args(["schedule", "--metrics"])
            .arg(dir.join("metrics.prom"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start dbtool schedule");
        Daemon { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGHUP, then waits (30 s at most) until the daemon logs one more "configuration
    /// reloaded" than before it.
    pub fn reload(&self) {
        const RELOADED: &str = "configuration reloaded";
        let before = self.log().matches(RELOADED).count();
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -HUP failed");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.log().matches(RELOADED).count() <= before {
            assert!(
                std::time::Instant::now() < until,
                "no reload in the log: {}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
