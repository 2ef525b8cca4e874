//! A throwaway PostgreSQL cluster: initdb into a temp dir, start on a free port with its own unix socket dir, remove on drop.
//!
//! Used by `dbtool demo`, the integration tests and the benchmarks. Settings favour speed over
//! durability (fsync=off): nothing in such a cluster is meant to survive it.

use std::ffi::{CString, OsString};
use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

mod standby;

/// The superuser initdb creates; every DSN connects as it.
const SUPERUSER: &str = "postgres";
/// PostgreSQL refuses to run as root, so as root the cluster belongs to this system user.
const OWNER_WHEN_ROOT: &str = "postgres";
/// A free port can be taken by someone else between our probe and the server's bind.
const PORT_ATTEMPTS: u32 = 5;
const START_TIMEOUT_SECS: &str = "60";
const LOG_TAIL_LINES: usize = 30;
/// sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Directory holding initdb, pg_ctl and postgres; None → [`find_server_bin`].
    pub bin_dir: Option<PathBuf>,
    /// Extra postgresql.conf lines, e.g. "max_connections = 20"; written last, so they win.
    pub conf: Vec<String>,
    /// pg_hba.conf lines placed before the default trust lines.
    pub hba_prepend: Vec<String>,
    /// Extra initdb arguments, e.g. "--data-checksums".
    pub initdb_args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no PostgreSQL server binaries found: install postgresql (apt-get install postgresql) or set DBTOOL_PG_BIN"
    )]
    NoServerBinaries,
    #[error("DBTOOL_PG_BIN={} has no initdb: point it at a PostgreSQL bin directory such as /usr/lib/postgresql/15/bin", .0.display())]
    BadPgBinVar(PathBuf),
    #[error("running as root, but there is no `{OWNER_WHEN_ROOT}` user to own the cluster (PostgreSQL refuses to run as root): install postgresql, which creates it, or run as a non-root user")]
    NoOwnerUser,
    #[error("the {OWNER_WHEN_ROOT} user cannot traverse {}: set TMPDIR to a directory every user can reach, such as /tmp", .0.display())]
    TempDirUnreachable(PathBuf),
    #[error("unix socket path {} is longer than the {MAX_SOCKET_PATH} bytes the kernel allows: set TMPDIR to a shorter directory such as /tmp", .0.display())]
    SocketPathTooLong(PathBuf),
    #[error("could not {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("could not run {}; is it an executable PostgreSQL binary?", .program.display())]
    Spawn { program: PathBuf, source: io::Error },
    #[error("{} failed ({status}): {output}", .program.display())]
    Failed {
        program: PathBuf,
        status: ExitStatus,
        output: String,
    },
    #[error("`{} --version` printed {output:?}, which has no PostgreSQL version: point the bin dir at a PostgreSQL server", .program.display())]
    Version { program: PathBuf, output: String },
    #[error("could not reserve a free TCP port on 127.0.0.1")]
    NoFreePort(#[source] io::Error),
    #[error("PostgreSQL in {} did not start on port {port}: {pg_ctl}\nlast lines of {}:\n{log_tail}", .data_dir.display(), .log.display())]
    Start {
        data_dir: PathBuf,
        port: u16,
        pg_ctl: String,
        log: PathBuf,
        log_tail: String,
    },
}

/// Who runs the server binaries.
#[derive(Clone, Copy, Debug)]
enum Owner {
    Me,
    /// We are root: run them through runuser as this uid/gid.
    User {
        uid: u32,
        gid: u32,
    },
}

pub struct TempCluster {
    base: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    port: u16,
    version_num: u32,
    owner: Owner,
    reaper: Option<Child>,
}

impl TempCluster {
    /// initdb, configure and start a cluster; blocks until it accepts connections.
    pub fn start(opts: ClusterOptions) -> Result<TempCluster, ClusterError> {
        let bin = match opts.bin_dir {
            Some(dir) => dir,
            None => find_server_bin()?,
        };
        let owner = Owner::detect()?;
        let version_num = read_version_num(&bin.join("postgres"))?;
        let base = make_base_dir(owner)?;
        // From here on Drop removes the directory whatever fails.
        let mut cluster = TempCluster {
            data: base.join("data"),
            sock: base.join("sock"),
            log: base.join("server.log"),
            base,
            bin,
            port: 0,
            version_num,
            owner,
            reaper: None,
        };
        cluster.reaper = cluster.spawn_reaper();
        cluster.initdb(&opts.initdb_args)?;
        cluster.write_hba(&opts.hba_prepend)?;
        let conf_path = cluster.data.join("postgresql.conf");
        let initdb_conf = fs::read_to_string(&conf_path).map_err(io_err("read", &conf_path))?;
        for attempt in 1..=PORT_ATTEMPTS {
            cluster.port = free_port()?;
            let conf = format!("{initdb_conf}\n{}", cluster.conf_block(&opts.conf));
            fs::write(&conf_path, conf).map_err(io_err("write", &conf_path))?;
            match cluster.start_again() {
                Ok(()) => break,
                // Someone bound our probed port before the server did: pick another.
                Err(ClusterError::Start { log_tail, .. })
                    if attempt < PORT_ATTEMPTS && log_tail.contains("already in use") =>
                {
                    tracing::debug!(port = cluster.port, "port taken, retrying");
                }
                Err(e) => return Err(e),
            }
        }
        tracing::debug!(port = cluster.port, dir = %cluster.base.display(), version = cluster.version_num, "cluster started");
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The server log (`pg_ctl -l`), e.g. to assert on what the server logged.
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// e.g. 150018 for 15.18, as in `current_setting('server_version_num')`.
    pub fn server_version_num(&self) -> u32 {
        self.version_num
    }

    /// libpq key=value DSN over the unix socket.
    pub fn dsn(&self, dbname: &str) -> String {
        self.dsn_for_host(&self.sock.to_string_lossy(), dbname)
    }

    /// libpq key=value DSN over TCP on 127.0.0.1.
    pub fn tcp_dsn(&self, dbname: &str) -> String {
        self.dsn_for_host("127.0.0.1", dbname)
    }

    fn dsn_for_host(&self, host: &str, dbname: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={} sslmode=disable",
            dsn_quote(host),
            self.port,
            dsn_quote(dbname)
        )
    }

    /// `pg_ctl stop -m fast`; Ok when the server is already stopped.
    pub fn stop(&self) -> Result<(), ClusterError> {
        // pg_ctl status exits 3 when no server runs in the data dir.
        if self.pg_ctl(&["status"])?.status.code() == Some(3) {
            return Ok(());
        }
        checked(
            self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", START_TIMEOUT_SECS])?,
            &self.bin.join("pg_ctl"),
        )?;
        Ok(())
    }

    /// Start the server again after [`stop`](Self::stop), on the same port and socket dir.
    pub fn start_again(&self) -> Result<(), ClusterError> {
        let log = self.log.as_os_str().to_string_lossy().into_owned();
        let log_len = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let out = self.pg_ctl(&["-l", &log, "-w", "-t", START_TIMEOUT_SECS, "start"])?;
        if out.status.success() {
            return Ok(());
        }
        Err(ClusterError::Start {
            data_dir: self.data.clone(),
            port: self.port,
            pg_ctl: output_text(&out),
            log: self.log.clone(),
            log_tail: tail_lines(&self.log_since(log_len), LOG_TAIL_LINES),
        })
    }

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

    fn pg_ctl(&self, args: &[&str]) -> Result<Output, ClusterError> {
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

    fn initdb(&self, extra: &[String]) -> Result<(), ClusterError> {
        let initdb = self.bin.join("initdb");
        let data = self.data.to_string_lossy().into_owned();
        let mut args = vec!["-D", &data, "-U", SUPERUSER];
        args.extend("-A trust --no-sync -E UTF8 --locale=C".split(' '));
        args.extend(extra.iter().map(String::as_str));
        checked(self.run_as_owner(&initdb, &args)?, &initdb)?;
        Ok(())
    }

    fn write_hba(&self, prepend: &[String]) -> Result<(), ClusterError> {
        let mut lines = prepend.to_vec();
        lines.extend(
            [
                "local all all trust",
                "host all all 127.0.0.1/32 trust",
                "host replication all 127.0.0.1/32 trust",
                "local replication all trust",
            ]
            .map(String::from),
        );
        let path = self.data.join("pg_hba.conf");
        // Truncating the file initdb wrote keeps it owned by the cluster owner.
        fs::write(&path, lines.join("\n") + "\n").map_err(io_err("write", &path))
    }

    fn conf_block(&self, extra: &[String]) -> String {
        let mut lines = vec![
            "# dbtool throwaway cluster: speed over durability".to_string(),
            "listen_addresses = '127.0.0.1'".to_string(),
            format!("port = {}", self.port),
            format!(
                "unix_socket_directories = '{}'",
                self.sock.to_string_lossy().replace('\'', "''")
            ),
            "fsync = off".into(),
            "synchronous_commit = off".into(),
            "full_page_writes = off".into(),
            "shared_buffers = 32MB".into(),
            "max_connections = 100".into(),
            "logging_collector = off".into(),
            "track_io_timing = on".into(),
        ];
        if has_pg_stat_statements(&self.bin) {
            lines.push("shared_preload_libraries = 'pg_stat_statements'".into());
        }
        lines.extend(extra.iter().cloned());
        lines.join("\n") + "\n"
    }

    /// A detached watcher that stops the server and removes the directory once this
    /// process is gone, so a killed test run leaves no server behind (Drop never runs then,
    /// and statics such as the suite's shared cluster are never dropped at all).
    fn spawn_reaper(&self) -> Option<Child> {
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

    fn log_since(&self, offset: u64) -> String {
        let all = fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(all.len());
        String::from_utf8_lossy(&all[start..]).into_owned()
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        // Immediate, not fast: the data is thrown away, so there is nothing to flush.
        if self.data.join("postmaster.pid").exists() {
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        }
        if let Err(e) = fs::remove_dir_all(&self.base) {
            tracing::warn!(dir = %self.base.display(), error = %e, "could not remove the throwaway cluster");
        }
        if let Some(mut reaper) = self.reaper.take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
    }
}

/// DBTOOL_PG_BIN if set, else the highest /usr/lib/postgresql/<N>/bin (Debian's layout).
pub fn find_server_bin() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("DBTOOL_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(ClusterError::BadPgBinVar(dir))
        };
    }
    let entries = fs::read_dir("/usr/lib/postgresql").map_err(|_| ClusterError::NoServerBinaries)?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
        .ok_or(ClusterError::NoServerBinaries)
}

impl Owner {
    fn detect() -> Result<Owner, ClusterError> {
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
fn make_base_dir(owner: Owner) -> Result<PathBuf, ClusterError> {
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

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(ClusterError::NoFreePort)?;
    Ok(listener.local_addr().map_err(ClusterError::NoFreePort)?.port())
}

/// Debian keeps contrib modules in `<bin>/../lib`, relocatable builds in `<bin>/../lib/postgresql`.
fn has_pg_stat_statements(bin: &Path) -> bool {
    [
        "../lib/pg_stat_statements.so",
        "../lib/postgresql/pg_stat_statements.so",
    ]
    .iter()
    .any(|rel| bin.join(rel).is_file())
}

fn read_version_num(postgres: &Path) -> Result<u32, ClusterError> {
    // `postgres --version` is allowed as root; only starting a server is refused.
    let out = Command::new(postgres)
        .arg("--version")
        .output()
        .map_err(|source| ClusterError::Spawn {
            program: postgres.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_version_num(&text).ok_or(ClusterError::Version {
        program: postgres.to_path_buf(),
        output: text,
    })
}

/// "postgres (PostgreSQL) 15.18 (Debian …)" → 150018; "18beta1" → 180000; "9.6.24" → 90624.
fn parse_version_num(version_output: &str) -> Option<u32> {
    let version = version_output.split("(PostgreSQL)").nth(1)?.split_whitespace().next()?;
    let mut parts = version.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    if major >= 10 {
        return Some(major * 10_000 + minor);
    }
    let patch = parts.next().flatten().unwrap_or(0);
    Some(major * 10_000 + minor * 100 + patch)
}

/// Quote a libpq key=value value when it needs it.
fn dsn_quote(value: &str) -> String {
    if !value.is_empty() && !value.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn checked(out: Output, program: &Path) -> Result<Output, ClusterError> {
    if out.status.success() {
        return Ok(out);
    }
    Err(ClusterError::Failed {
        program: program.to_path_buf(),
        status: out.status,
        output: output_text(&out),
    })
}

fn output_text(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    tail_lines(text.trim(), LOG_TAIL_LINES)
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ClusterError + 'a {
    move |source| ClusterError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_versions() {
        let cases = [
            ("postgres (PostgreSQL) 15.18", Some(150018)),
            ("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n", Some(150020)),
            ("postgres (PostgreSQL) 18beta1", Some(180000)),
            ("postgres (PostgreSQL) 9.6.24", Some(90624)),
            ("bash: postgres: not found", None),
        ];
        for (output, expected) in cases {
            assert_eq!(parse_version_num(output), expected, "{output}");
        }
    }

    #[test]
    fn quotes_dsn_values_only_when_needed() {
        assert_eq!(dsn_quote("/tmp/x"), "/tmp/x");
        assert_eq!(dsn_quote("a b"), "'a b'");
        assert_eq!(dsn_quote(r"it's\"), r"'it\'s\\'");
        assert_eq!(dsn_quote(""), "''");
    }
}
