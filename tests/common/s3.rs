//! A real S3-protocol server for the object storage tests: moto's server mode (PyPI, pinned
//! in scripts/test, installed into a virtualenv at /opt/dbtool-moto or DBTOOL_TEST_MOTO_DIR),
//! on 127.0.0.1 and a free port, with signature checking on: the first three requests make
//! an IAM user and its access key, every later one must be signed with that key. The test's
//! bucket is created with it. Inspected and tampered with through boto3 from the same
//! virtualenv. Killed on drop; a missing server fails the test naming the fix.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub const MOTO_DEFAULT: &str = "/opt/dbtool-moto";
pub const BUCKET: &str = "dbtool-test";

/// The IAM user and access key, then the bucket; prints `KEY SECRET`.
const SETUP: &str = r#"
import boto3, json, sys
ep = sys.argv[1]
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="dbtool")
iam.put_user_policy(UserName="dbtool", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="dbtool")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1", aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
s3.create_bucket(Bucket=sys.argv[2])
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;

/// Prepended to every inspection script: `s3` is a client signed with the test's key.
const PRELUDE: &str = r#"
import boto3, os, sys, time
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
B = sys.argv[1]
"#;

pub struct S3 {
    child: Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
}

/// The ids in a `backups list --json` document, in its order.
pub fn ids(list: &serde_json::Value) -> Vec<String> {
    let backups = list["backups"].as_array().expect("backups");
    backups
        .iter()
        .map(|b| b["id"].as_str().expect("id").to_string())
        .collect()
}

fn moto_dir() -> PathBuf {
    std::env::var_os("DBTOOL_TEST_MOTO_DIR").map_or_else(|| PathBuf::from(MOTO_DEFAULT), PathBuf::from)
}

fn python() -> PathBuf {
    moto_dir().join("bin/python")
}

impl S3 {
    pub fn start() -> S3 {
        let server = moto_dir().join("bin/moto_server");
        assert!(
            server.is_file() && python().is_file(),
            "{} is missing: `scripts/test --deps-only` installs moto's S3 server there (or set DBTOOL_TEST_MOTO_DIR)",
            server.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("dbtool-moto")
            .tempdir()
            .expect("temp dir");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log");
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start moto_server");
            let endpoint = format!("http://127.0.0.1:{port}");
            match setup(&endpoint) {
                Ok((key_id, secret)) => {
                    return S3 {
                        child,
                        _dir: dir,
                        endpoint,
                        key_id,
                        secret,
                    }
                }
                Err(e) => {
                    last = e;
                    let mut child = child;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("moto_server did not start: {last}");
    }

    /// Runs a dbtool command and checks that neither the secret key, nor the key id, nor any
    /// of `also_secret` is in its output (its debug logs included when they are on).
    pub fn run_quiet(&self, cmd: &mut Command, also_secret: &[&str]) -> Output {
        let out = super::backup::run(cmd);
        for stream in [&out.stdout, &out.stderr] {
            let t = super::backup::text(stream);
            assert!(!t.contains(&self.secret), "the secret key is in dbtool's output: {t}");
            assert!(
                !t.contains(&self.key_id),
                "the access key id is in dbtool's output: {t}"
            );
            for secret in also_secret {
                assert!(!t.contains(secret), "a secret ({secret}) is in dbtool's output: {t}");
            }
        }
        out
    }

    /// `s3://dbtool-test/PREFIX`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// dbtool with this server's AWS settings, its own TMPDIR (where a staged dump lives) and
    /// debug logs (which `run_quiet` checks for secrets too).
    pub fn dbtool(&self, tmp: &Path) -> Command {
        let mut cmd = super::backup::dbt();
        self.env(&mut cmd).env("TMPDIR", tmp).env("DBTOOL_LOG", "debug");
        cmd
    }

    /// `backups list --json` of `url`, which must succeed.
    pub fn listed(&self, tmp: &Path, url: &str) -> serde_json::Value {
        let out = self.run_quiet(self.dbtool(tmp).args(["backups", "list", "--json", "--dest", url]), &[]);
        super::backup::assert_exit(&out, 0);
        serde_json::from_slice(&out.stdout).expect("list --json")
    }

    /// The standard AWS settings for this server on `cmd`.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
    }

    /// Runs `script` (after the prelude: `s3`, `B` the bucket, `sys.argv[2:]` the args).
    pub fn py(&self, script: &str, args: &[&str]) -> String {
        let out = self
            .env(&mut Command::new(python()))
            .arg("-c")
            .arg(format!("{PRELUDE}{script}"))
            .arg(BUCKET)
            .args(args)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "boto3 script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every object key under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let script = r#"
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix=sys.argv[2]):
    for o in page.get("Contents", []):
        print(o["Key"])
"#;
        let mut keys: Vec<String> = self.py(script, &[prefix]).lines().map(String::from).collect();
        keys.sort();
        keys
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let script = r#"sys.stdout.buffer.write(s3.get_object(Bucket=B, Key=sys.argv[2])["Body"].read())"#;
        let out = self
            .env(&mut Command::new(python()))
            .arg("-c")
            .arg(format!("{PRELUDE}{script}"))
            .args([BUCKET, key])
            .output()
            .expect("run python");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Writes `body` at `key` (through stdin): a tampered or orphaned object.
    pub fn put(&self, key: &str, body: &[u8]) {
        use std::io::Write;
        let script = r#"s3.put_object(Bucket=B, Key=sys.argv[2], Body=sys.stdin.buffer.read())"#;
        let mut child = self
            .env(&mut Command::new(python()))
            .arg("-c")
            .arg(format!("{PRELUDE}{script}"))
            .args([BUCKET, key])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run python");
        child.stdin.take().expect("stdin").write_all(body).expect("write body");
        assert!(child.wait().expect("python").success(), "put_object {key} failed");
    }

    /// Multipart uploads started and neither completed nor aborted, under `prefix`.
    pub fn open_uploads(&self, prefix: &str) -> usize {
        let script = r#"print(len(s3.list_multipart_uploads(Bucket=B, Prefix=sys.argv[2]).get("Uploads", [])))"#;
        self.py(script, &[prefix]).trim().parse().expect("a count")
    }

    /// Waits (at most `limit`) until a multipart upload under `prefix` has a part uploaded.
    pub fn wait_for_part(&self, prefix: &str, limit: Duration) -> bool {
        let script = r#"
end = time.time() + float(sys.argv[3])
while time.time() < end:
    for u in s3.list_multipart_uploads(Bucket=B, Prefix=sys.argv[2]).get("Uploads", []):
        if s3.list_parts(Bucket=B, Key=u["Key"], UploadId=u["UploadId"]).get("Parts"):
            print("yes"); sys.exit(0)
    time.sleep(0.05)
print("no")
"#;
        let started = Instant::now();
        let found = self.py(script, &[prefix, &limit.as_secs_f64().to_string()]).trim() == "yes";
        found && started.elapsed() <= limit + Duration::from_secs(30)
    }
}

fn setup(endpoint: &str) -> Result<(String, String), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < deadline {
        // Ready when it accepts connections; the setup requests must not be spent before.
        if std::net::TcpStream::connect(endpoint.trim_start_matches("http://")).is_err() {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let out = Command::new(python())
            .args(["-c", SETUP, endpoint, BUCKET])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut it = text.split_whitespace();
            if let (Some(k), Some(s)) = (it.next(), it.next()) {
                return Ok((k.to_string(), s.to_string()));
            }
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        break;
    }
    Err(format!("setup against {endpoint} failed: {last}"))
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
