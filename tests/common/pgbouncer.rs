//! A real PgBouncer (Debian's /usr/sbin/pgbouncer) in front of a test cluster: its own temp
//! dir with ini and userlist, 127.0.0.1 on a free port, trust auth, `postgres` as admin
//! (`monitor` may log in but is no admin).
//! Killed on drop. A missing binary fails the test.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempcluster::TempCluster;

use super::free_port;

pub const PGBOUNCER_BIN: &str = "/usr/sbin/pgbouncer";
const START_ATTEMPTS: u32 = 5;

pub struct PgBouncer {
    dir: tempfile::TempDir,
    /// None only between start attempts.
    child: Option<Child>,
    port: u16,
    databases: Vec<String>,
    cluster_port: u16,
    /// Settings given at start; every rewrite of the ini keeps them.
    extra: String,
}

impl PgBouncer {
    /// Starts PgBouncer for `databases` of `cluster` with these `[pgbouncer]` settings
    /// (e.g. `("default_pool_size", "2")`), after the harness's own (listen, auth, admin).
    pub fn start(cluster: &TempCluster, databases: &[&str], settings: &[(&str, &str)]) -> PgBouncer {
        assert!(
            Path::new(PGBOUNCER_BIN).is_file(),
            "{PGBOUNCER_BIN} not found; scripts/test installs the Debian package pgbouncer"
        );
        let dir = tempfile::Builder::new()
            .prefix("dbtool-pgbouncer")
            .tempdir()
            .expect("temp dir");
        // After dropping root PgBouncer reads its ini again on RELOAD, as postgres.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        // `monitor` may log in but is in neither admin_users nor stats_users.
        write_readable(
            &dir.path().join("userlist.txt"),
            "\"postgres\" \"\"\n\"monitor\" \"\"\n",
        );
        let extra: String = settings.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        let mut b = PgBouncer {
            dir,
            child: None,
            port: 0,
            databases: databases.iter().map(|d| d.to_string()).collect(),
            cluster_port: cluster.port(),
            extra,
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            b.port = free_port();
            b.write_ini("");
            b.child = Some(b.spawn());
            match b.wait_ready() {
                Ok(()) => return b,
                // Someone took the port between probing and binding: try another one.
                Err(e) => {
                    last_error = e;
                    b.stop();
                }
            }
        }
        panic!("PgBouncer did not start: {last_error}");
    }

    fn ini_path(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.ini")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.log")
    }

    /// Rewrites the ini: the harness's own settings, the start settings, then `extra` (a
    /// `[pgbouncer]` body; a later key wins in PgBouncer's parser). Call [`reload`](Self::reload) to apply it.
    pub fn write_ini(&self, extra: &str) {
        let mut ini = String::from("[databases]\n");
        for db in &self.databases {
            ini.push_str(&format!(
                "{db} = host=127.0.0.1 port={} dbname={db}\n",
                self.cluster_port
            ));
        }
        ini.push_str(&format!(
            "\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {}\nadmin_users = postgres\nstats_period = 60\n\
             server_login_retry = 1\n{}{extra}",
            self.port,
            self.dir.path().join("userlist.txt").display(),
            self.extra,
        ));
        write_readable(&self.ini_path(), &ini);
    }

    fn spawn(&self) -> Child {
        let log = fs::File::create(self.log_path()).expect("create pgbouncer log");
        let mut cmd = Command::new(PGBOUNCER_BIN);
        // PgBouncer refuses to run as root; -u drops to postgres after startup.
        if unsafe_is_root() {
            cmd.args(["-u", "postgres"]);
        }
        cmd.arg(self.ini_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {PGBOUNCER_BIN}: {e}"))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("pgbouncer exited ({status}): {}", self.log_text()));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "pgbouncer did not listen on {} within 15 s: {}",
            self.port,
            self.log_text()
        ))
    }

    /// What PgBouncer logged so far (for assertion messages).
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        let _ = fs::File::open(self.log_path()).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin console as the admin user.
    pub fn admin_dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=pgbouncer sslmode=disable",
            self.port
        )
    }

    /// A database through PgBouncer.
    pub fn dsn(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} sslmode=disable",
            self.port
        )
    }

    /// One admin console command (SHOW …, RELOAD, SET …) over the simple query protocol.
    pub async fn admin(&self, sql: &str) -> Vec<tokio_postgres::SimpleQueryMessage> {
        let (client, conn) = tokio_postgres::connect(&self.admin_dsn(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("admin console on {}: {e}\n{}", self.port, self.log_text()));
        tokio::spawn(conn);
        client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("admin console {sql}: {e}\n{}", self.log_text()))
    }

    /// Rewrites the ini with `extra` and RELOADs it.
    pub async fn reconfigure(&self, extra: &str) {
        self.write_ini(extra);
        self.admin("RELOAD").await;
    }
}

fn write_readable(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl PgBouncer {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `value` of `key` in a SHOW CONFIG answer.
pub fn show_value(messages: &[tokio_postgres::SimpleQueryMessage], key: &str) -> Option<String> {
    messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) if r.get("key") == Some(key) => r.get("value").map(str::to_string),
        _ => None,
    })
}
