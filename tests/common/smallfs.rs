//! A small tmpfs of the test's own: a full or read-only file system that is real.

use std::process::Command;

/// A 1 MiB tmpfs, unmounted on drop.
pub struct SmallFs {
    pub dir: tempfile::TempDir,
}

impl SmallFs {
    pub fn mount() -> SmallFs {
        SmallFs::mount_with("size=1m")
    }

    pub fn mount_with(options: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot mount a 1 MiB tmpfs at {} (this test needs root and mount(8)); a full disk is part of the contract",
            dir.path().display()
        );
        SmallFs { dir }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
