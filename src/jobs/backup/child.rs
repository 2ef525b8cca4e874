//! Running pg_dump, pg_restore, pg_dumpall and tar as children: exit status checked (no pipe
//! hides a failure), stderr kept for the error, killed on cancellation and on drop.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::error::BackupError;
use crate::db::{child_service, ConnParams};

/// Lines of the child's stderr kept in an error message.
const STDERR_LINES: usize = 3;

/// What a finished child left: its stdout and its stderr.
pub struct Finished {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub code: Option<i32>,
}

/// A libpq child reaching the server `params` name (None: no server at all): our connection
/// settings only, never a password on the command line. The password and an encrypted key's
/// sslpassword go in an in-memory service file (`db::child_service`), not the environment.
pub fn libpq_command(program: &Path, params: Option<&ConnParams>) -> Result<Command, BackupError> {
    let mut cmd = Command::new(program);
    // why: a PGSERVICE or PGOPTIONS of the invoking shell must not redirect the child
    // to a server other than the one dbtool resolved and locked.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(&key);
        }
    }
    let Some(params) = params else {
        return Ok(cmd);
    };
    cmd.envs(params.libpq_env());
    child_service::hand_over(&mut cmd, params)?;
    Ok(cmd)
}

/// Runs `cmd` to the end. `ok_codes` are exit codes that count as success (tar's 1 means
/// "a file changed while read", which a live upload directory always risks). While it runs,
/// `progress` shows the size of `watch`.
pub async fn run(
    mut cmd: Command,
    cancel: &CancellationToken,
    ok_codes: &[i32],
    watch: Option<(&Path, &ProgressBar)>,
) -> Result<Finished, BackupError> {
    let program = cmd
        .as_std()
        .get_program()
        .to_string_lossy()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(BackupError::io("run", program.clone()))?;
    let out_task = child.stdout.take().map(|mut s| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            buf
        })
    });
    let err_task = child.stderr.take().map(|mut s| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            buf
        })
    });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(BackupError::io("wait for", program.clone()))?,
            _ = cancel.cancelled() => {
                // kill_on_drop would do it too, but only once the value is dropped; be explicit
                // and reap it, so no pg_dump outlives a cancelled job.
                let _ = child.kill().await;
                return Err(BackupError::Cancelled);
            }
            _ = tick.tick() => {
                if let Some((path, bar)) = watch {
                    bar.set_position(size_of(path));
                }
            }
        }
    };
    let stdout = match out_task {
        Some(t) => t.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let stderr = match err_task {
        Some(t) => String::from_utf8_lossy(&t.await.unwrap_or_default()).into_owned(),
        None => String::new(),
    };
    let code = status.code();
    if status.success() || code.is_some_and(|c| ok_codes.contains(&c)) {
        return Ok(Finished { stdout, stderr, code });
    }
    Err(BackupError::Tool {
        program,
        status: describe(status),
        stderr: tail(&stderr),
    })
}

pub fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(9)) => "killed by SIGKILL".into(),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => status.to_string(),
    }
}

/// The last few non-empty lines, joined: one line for the error message.
pub fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let start = lines.len().saturating_sub(STDERR_LINES);
    match lines[start..].join("; ") {
        s if s.is_empty() => "no output".into(),
        s => s,
    }
}

/// Bytes under `path` (a file, or a directory one level deep as pg_dump -Fd writes it).
pub fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::MapEnv;

    /// The child sees the sslpassword only through the service file: not in its argv or
    /// environment, and the file reads whole at every open (pg_dump --jobs opens it per worker).
    #[tokio::test]
    async fn sslpassword_reaches_the_child_in_the_service_file_only() {
        const MARKER: &str = " Zq7#pass=word'\"\\x";
        let env = MapEnv(std::collections::HashMap::from([("PGUSER".into(), "u".into())]));
        let dsn = "host=h sslpassword=' Zq7#pass=word\\'\"\\\\x'";
        let params = ConnParams::resolve(Some(dsn), &env).expect("resolves");
        assert_eq!(params.sslpassword(), Some(MARKER));
        let script = r#"tr '\0' '\n' < /proc/$$/cmdline; tr '\0' '\n' < /proc/$$/environ; echo ---; cat "$PGSERVICEFILE"; cat "$PGSERVICEFILE""#;
        let mut cmd = libpq_command(Path::new("/bin/sh"), Some(&params)).expect("command");
        cmd.args(["-c", script]);
        let out = cmd.output().await.expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let (seen, file) = text.split_once("---\n").expect("both parts");
        assert!(!seen.contains("Zq7"), "argv or environment: {seen}");
        assert!(seen.contains("PGSERVICE=dbtool-child"), "{seen}");
        let section = format!("[dbtool-child]\nsslpassword={MARKER}\n");
        assert_eq!(file, format!("{section}{section}"));
        // No other child inherits the descriptor: it stays close-on-exec in dbtool.
        let path = seen
            .lines()
            .find_map(|l| l.strip_prefix("PGSERVICEFILE="))
            .expect("PGSERVICEFILE");
        let other = Command::new("/bin/sh")
            .args(["-c", &format!("cat {path}")])
            .output()
            .await
            .expect("run sh");
        assert!(!other.status.success(), "another child read {path}");
    }

    /// What a child sees of `params`: its argv and environment, then its service file.
    async fn seen_by_child(params: &ConnParams) -> (String, String) {
        let script = r#"tr '\0' '\n' < /proc/$$/cmdline; tr '\0' '\n' < /proc/$$/environ; echo ---; [ -n "$PGSERVICEFILE" ] && cat "$PGSERVICEFILE""#;
        let mut cmd = libpq_command(Path::new("/bin/sh"), Some(params)).expect("command");
        cmd.args(["-c", script]);
        let out = cmd.output().await.expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (seen, file) = text.split_once("---\n").expect("both parts");
        (seen.to_string(), file.to_string())
    }

    /// The login password, from the DSN, a URL, PGPASSWORD or the user's own service, reaches
    /// the child in dbtool's service file only: no PGPASSWORD in its environment (where
    /// /proc/PID/environ shows it), none in argv, and the user's service file is not the child's.
    #[tokio::test]
    async fn the_password_reaches_the_child_in_the_service_file_only() {
        const MARKER: &str = " Pw9#a=b'\"\\x";
        let dir = tempfile::tempdir().expect("tempdir");
        let own = dir.path().join("pg_service.conf");
        std::fs::write(&own, format!("[mine]\nhost=h\npassword={MARKER}\n")).expect("write service file");
        let env = |pw: Option<&str>| {
            let mut vars = std::collections::HashMap::from([("PGUSER".to_string(), "u".to_string())]);
            vars.extend(pw.map(|p| ("PGPASSWORD".to_string(), p.to_string())));
            vars.insert("PGSERVICEFILE".into(), own.display().to_string());
            MapEnv(vars)
        };
        let cases = [
            ("host=h password=' Pw9#a=b\\'\"\\\\x'".to_string(), env(None)),
            ("postgres://u:%20Pw9%23a%3Db'%22%5Cx@h/db".to_string(), env(None)),
            ("host=h".to_string(), env(Some(MARKER))),
            ("host=h sslpassword=k3y".to_string(), env(Some(MARKER))),
            ("service=mine".to_string(), env(Some("other"))),
        ];
        for (dsn, env) in cases {
            let params = ConnParams::resolve(Some(&dsn), &env).expect("resolves");
            let (seen, file) = seen_by_child(&params).await;
            assert!(!seen.contains("Pw9"), "{dsn}: argv or environment: {seen}");
            assert!(
                !seen.contains("PGPASSWORD") && !seen.contains("PGPASSFILE"),
                "{dsn}: {seen}"
            );
            assert!(seen.contains("PGSERVICE=dbtool-child"), "{dsn}: {seen}");
            assert!(
                !seen.contains("mine") && !seen.contains(&*own.to_string_lossy()),
                "{dsn}: {seen}"
            );
            let ssl = if dsn.contains("sslpassword") {
                "sslpassword=k3y\n"
            } else {
                ""
            };
            assert_eq!(file, format!("[dbtool-child]\npassword={MARKER}\n{ssl}"), "{dsn}");
        }
    }

    /// A password the service file cannot carry falls back to PGPASSWORD (libpq takes it there
    /// as it is); a pgpass file still goes by its path; no password, no service file.
    #[tokio::test]
    async fn what_the_service_file_cannot_carry_goes_in_pgpassword() {
        let env = MapEnv(std::collections::HashMap::from([("PGUSER".into(), "u".into())]));
        let params = ConnParams::resolve(Some("host=h password='ends in space '"), &env).expect("resolves");
        let (seen, file) = seen_by_child(&params).await;
        assert!(seen.contains("PGPASSWORD=ends in space \n"), "{seen}");
        assert!(!seen.contains("PGSERVICE="), "{seen}");
        assert_eq!(file, "");
        let dir = tempfile::tempdir().expect("tempdir");
        let dsn = format!("host=h passfile={}/pgpass", dir.path().display());
        let params = ConnParams::resolve(Some(&dsn), &env).expect("resolves");
        let (seen, file) = seen_by_child(&params).await;
        assert!(
            seen.contains(&format!("PGPASSFILE={}/pgpass\n", dir.path().display())),
            "{seen}"
        );
        assert!(!seen.contains("PGPASSWORD") && !seen.contains("PGSERVICE="), "{seen}");
        assert_eq!(file, "");
    }
}
