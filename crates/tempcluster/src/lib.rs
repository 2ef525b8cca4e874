//! A throwaway PostgreSQL cluster: initdb into a temp dir, start on a free port with its own unix socket dir, remove on drop.
//!
//! Used by `dbtool demo` and dbtool's integration tests, not by the product library. Settings
//! favour speed over durability (fsync=off): nothing in such a cluster is meant to survive it.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};

mod bin;
mod error;
mod owner;
mod standby;

pub use bin::find_server_bin;
pub use error::ClusterError;

use bin::{has_pg_stat_statements, read_version_num};
use owner::{make_base_dir, Owner};

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

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(ClusterError::NoFreePort)?;
    Ok(listener.local_addr().map_err(ClusterError::NoFreePort)?.port())
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
    fn quotes_dsn_values_only_when_needed() {
        assert_eq!(dsn_quote("/tmp/x"), "/tmp/x");
        assert_eq!(dsn_quote("a b"), "'a b'");
        assert_eq!(dsn_quote(r"it's\"), r"'it\'s\\'");
        assert_eq!(dsn_quote(""), "''");
    }
}
