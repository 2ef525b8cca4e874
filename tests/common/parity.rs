//! libpq parity: the same connection inputs through psql (libpq itself) and through dbtool's
//! library, each answering one query, so a test compares outcomes rather than our reading of
//! libpq's documentation.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

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
    let mut cmd = Command::new(PSQL);
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .args(["-X", "-At", "-c", sql, dsn]);
    if let Some(dir) = libpq_dir {
        cmd.env("LD_LIBRARY_PATH", dir);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{PSQL} not runnable ({e}): apt-get install postgresql-client"));
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
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
