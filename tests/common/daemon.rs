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

    /// SIGHUP: the daemon reloads its configuration.
    pub fn reload(&self) {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -HUP failed");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
