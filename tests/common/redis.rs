//! A real Redis (Debian's /usr/bin/redis-server) in a temp dir of its own, on 127.0.0.1 and a
//! free port, persistence off unless asked for. Killed on drop. A missing binary fails the test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub const REDIS_BIN: &str = "/usr/bin/redis-server";
const START_ATTEMPTS: u32 = 5;

pub struct Redis {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    password: Option<String>,
}

impl Redis {
    /// Starts redis-server with these extra arguments (`["--maxmemory", "2mb"]`); a
    /// `--requirepass` among them is remembered for the helper's own connections.
    pub fn start(args: &[&str]) -> Redis {
        assert!(
            Path::new(REDIS_BIN).is_file(),
            "{REDIS_BIN} not found; scripts/test installs the Debian package redis-server"
        );
        let dir = tempfile::Builder::new()
            .prefix("dbtool-redis")
            .tempdir()
            .expect("temp dir");
        let password = args
            .iter()
            .position(|a| *a == "--requirepass")
            .and_then(|i| args.get(i + 1))
            .map(|p| p.to_string());
        let mut r = Redis {
            dir,
            child: None,
            port: 0,
            password,
        };
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            r.port = free_port();
            r.child = Some(r.spawn(args));
            match r.wait_ready() {
                Ok(()) => return r,
                Err(e) => {
                    last = e;
                    r.stop();
                }
            }
        }
        panic!("redis-server did not start: {last}");
    }

    fn spawn(&self, args: &[&str]) -> Child {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("create redis log");
        Command::new(REDIS_BIN)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {REDIS_BIN}: {e}"))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("redis-server exited ({status}): {}", self.log_text()));
            }
            if let Ok(mut c) = self.try_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "redis-server did not answer on {} within 15 s: {}",
            self.port,
            self.log_text()
        ))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL dbtool is given: no password in it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The target label dbtool gives it.
    pub fn label(&self) -> String {
        format!("127.0.0.1:{}/0", self.port)
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => self.url(),
        };
        redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(5))
    }

    /// A connection of the test's own (with the password, if the server has one).
    pub fn connection(&self) -> redis::Connection {
        self.try_connection()
            .unwrap_or_else(|e| panic!("connect to redis on {}: {e}\n{}", self.port, self.log_text()))
    }

    /// One INFO field.
    pub fn info(&self, key: &str) -> Option<String> {
        let text: String = redis::cmd("INFO").query(&mut self.connection()).expect("INFO");
        text.lines()
            .filter_map(|l| l.trim().split_once(':'))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
