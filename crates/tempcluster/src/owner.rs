//! Who runs the server binaries: this process, or (as root, which PostgreSQL refuses) the
//! `postgres` user through runuser; the base directory that user owns, and the reaper that
//! removes it when this process dies.

use std::ffi::{CString, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{io_err, ClusterError, TempCluster, MAX_SOCKET_PATH, OWNER_WHEN_ROOT};

/// Who runs the server binaries.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Owner {
    Me,
    /// We are root: run them through runuser as this uid/gid.
    User {
        uid: u32,
        gid: u32,
    },
}

impl TempCluster {
    /// Run a server binary (pg_ctl, pg_resetwal …) as the data dir's owner: through runuser
    /// when we are root. PG* variables are removed so the caller's environment cannot
    /// redirect it; the exit status is the caller's to judge.
    pub fn run_as_owner(&self, program: &Path, args: &[&str]) -> Result<Output, ClusterError> {
        self.owner_command(program)
            .args(args)
            .output()
            .map_err(|source| ClusterError::Spawn {
                program: program.to_path_buf(),
                source,
            })
    }

    pub(crate) fn pg_ctl(&self, args: &[&str]) -> Result<Output, ClusterError> {
        let data = self.data.to_string_lossy().into_owned();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        self.run_as_owner(&self.bin.join("pg_ctl"), &all)
    }

    fn owner_command(&self, program: &Path) -> Command {
        let argv = owner_argv(self.owner, program);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(&self.base).stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// A detached watcher that stops the server and removes the directory once this
    /// process is gone, so a killed test run leaves no server behind (Drop never runs then,
    /// and statics such as the suite's shared cluster are never dropped at all).
    pub(crate) fn spawn_reaper(&self) -> Option<Child> {
        let script = r#"p=$1; d=$2; shift 2
while kill -0 "$p" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1; rm -rf "$d""#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).arg("dbtool-pg-reaper");
        cmd.arg(std::process::id().to_string()).arg(&self.base);
        cmd.args(owner_argv(self.owner, &self.bin.join("pg_ctl")));
        cmd.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe. A session of its own keeps the reaper alive
        // through a Ctrl-C sent to the test's process group.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        cmd.spawn()
            .inspect_err(
                |e| tracing::warn!(error = %e, "no reaper: a killed process may leave a PostgreSQL server running"),
            )
            .ok()
    }
}

impl Owner {
    pub(crate) fn detect() -> Result<Owner, ClusterError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(Owner::Me);
        }
        let (uid, gid) = lookup_user(OWNER_WHEN_ROOT).ok_or(ClusterError::NoOwnerUser)?;
        Ok(Owner::User { uid, gid })
    }
}

fn owner_argv(owner: Owner, program: &Path) -> Vec<OsString> {
    match owner {
        Owner::Me => vec![program.into()],
        Owner::User { .. } => vec![
            runuser().into(),
            "-u".into(),
            OWNER_WHEN_ROOT.into(),
            "--".into(),
            program.into(),
        ],
    }
}

/// An absolute path, because a non-login root PATH may lack the sbin dirs.
fn runuser() -> &'static str {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("runuser")
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let cname = CString::new(name).ok()?;
    // SAFETY: passwd is plain data; getpwnam_r only writes into pwd and buf, both alive for
    // the call. The _r variant because tests start clusters from several threads at once.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found = std::ptr::null_mut();
    let rc = unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    (rc == 0 && !found.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// `<tmp>/dbtool-pg-<pid>-<n>` with a `sock` dir inside, both 0755 and owned by the cluster owner.
pub(crate) fn make_base_dir(owner: Owner) -> Result<PathBuf, ClusterError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let tmp = std::env::temp_dir();
    if let Owner::User { uid, .. } = owner {
        check_traversable(&tmp, uid)?;
    }
    let base = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = tmp.join(format!("dbtool-pg-{}-{n}", std::process::id()));
        match fs::create_dir(&candidate) {
            Ok(()) => break candidate,
            // A leftover of an earlier process that had our pid.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("create directory", &candidate)(e)),
        }
    };
    let sock = base.join("sock");
    if sock.join(".s.PGSQL.65535").as_os_str().len() > MAX_SOCKET_PATH {
        let _ = fs::remove_dir(&base);
        return Err(ClusterError::SocketPathTooLong(sock));
    }
    fs::create_dir(&sock).map_err(io_err("create directory", &sock))?;
    for dir in [&base, &sock] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", dir))?;
        if let Owner::User { uid, gid } = owner {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(io_err("chown", dir))?;
        }
    }
    Ok(base)
}

fn check_traversable(dir: &Path, uid: u32) -> Result<(), ClusterError> {
    use std::os::unix::fs::MetadataExt;
    for ancestor in dir.ancestors() {
        let meta = fs::metadata(ancestor).map_err(io_err("inspect", ancestor))?;
        if meta.mode() & 0o001 == 0 && meta.uid() != uid {
            return Err(ClusterError::TempDirUnreachable(ancestor.to_path_buf()));
        }
    }
    Ok(())
}
