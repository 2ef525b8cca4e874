//! libpq parity: the same connection inputs through psql (libpq itself) and through dbtool's
//! library, each answering one query, so a test compares outcomes rather than our reading of
//! libpq's documentation.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use dbtool::db::{connect, ConnParams, MapEnv, SessionSettings};

/// Debian's psql, linked against the system libpq.
pub const PSQL: &str = "/usr/bin/psql";

/// psql with only `env` (and HOME = `home`) runs `sql`: its answer, or its stderr.
pub fn psql_answer(dsn: &str, home: &Path, env: &[(&str, String)], sql: &str) -> Result<String, String> {
    psql_answer_with(None, dsn, home, env, sql)
}

/// [`psql_answer`] with the libpq in `libpq_dir` (e.g. a newer major's lib directory, whose
/// libpq.so.5 Debian's psql loads like its own) instead of the system one.
pub fn psql_answer_with(
    libpq_dir: Option<&Path>,
    dsn: &str,
    home: &Path,
    env: &[(&str, String)],
    sql: &str,
) -> Result<String, String> {
    let mut env = env.to_vec();
    if let Some(dir) = libpq_dir {
        env.push(("LD_LIBRARY_PATH", dir.display().to_string()));
    }
    psql_answer_as(None, dsn, home, &env, sql)
}

/// [`psql_answer`] as OS user `user` (through runuser; we are root) when given, e.g. to apply
/// libpq's key-file rule for a key owner other than root.
pub fn psql_answer_as(
    user: Option<&str>,
    dsn: &str,
    home: &Path,
    env: &[(&str, String)],
    sql: &str,
) -> Result<String, String> {
    let args = ["-X", "-At", "-c", sql, dsn];
    let out = run_clean(user, Path::new(PSQL), &args, home, env)
        .unwrap_or_else(|e| panic!("{PSQL} not runnable ({e}): apt-get install postgresql-client"));
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// Runs `program ARGS` as cron would: only `env` with HOME = `home` and a minimal PATH, stdin
/// closed and no controlling terminal (so libpq's OpenSSL cannot prompt for a key's password on
/// /dev/tty); as OS user `user` through runuser when given.
pub fn run_clean(
    user: Option<&str>,
    program: &Path,
    args: &[&str],
    home: &Path,
    env: &[(&str, String)],
) -> std::io::Result<Output> {
    let mut vars = vec![
        ("PATH", "/usr/bin:/bin".to_string()),
        ("HOME", home.display().to_string()),
    ];
    vars.extend(env.iter().cloned());
    let mut cmd = match user {
        // runuser would reset HOME and keep root's environment: env -i sets exactly ours.
        Some(user) => {
            let mut cmd = Command::new("/usr/sbin/runuser");
            cmd.args(["-u", user, "--", "/usr/bin/env", "-i"]);
            cmd.args(vars.iter().map(|(k, v)| OsString::from(format!("{k}={v}"))));
            cmd.arg(program);
            cmd
        }
        None => {
            let mut cmd = Command::new(program);
            cmd.env_clear().envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
            cmd
        }
    };
    cmd.args(args).stdin(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; a new session has no controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.output()
}

/// dbtool's library with the same inputs (`db::connect` on parameters resolved from the DSN and
/// `env` with HOME = `home`) runs `sql`: its answer, or the error.
pub async fn library_answer(dsn: &str, home: &Path, env: &[(&str, String)], sql: &str) -> Result<String, String> {
    let mut vars = HashMap::from([("HOME".to_string(), home.display().to_string())]);
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let params = ConnParams::resolve(Some(dsn), &MapEnv(vars)).map_err(|e| e.to_string())?;
    let client = connect(&params, &SessionSettings::default())
        .await
        .map_err(|e| e.to_string())?;
    let row = client.query_one(sql, &[]).await.map_err(|e| e.to_string())?;
    row.try_get::<_, String>(0).map_err(|e| e.to_string())
}
