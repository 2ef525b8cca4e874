//! Restoring with a pg_restore newer than the server. pg_restore 17+ starts every session
//! with `SET transaction_timeout = 0`, which a 16 or older server rejects ("unrecognized
//! configuration parameter"), and pg_restore offers no switch to leave it out. So, as
//! Discourse and others do, the archive is turned into an SQL script (`pg_restore -f -`),
//! the `SET` lines naming settings the server does not know are dropped (outside COPY data,
//! which is copied byte for byte), and the script is run by the same installation's psql
//! with ON_ERROR_STOP, so any other error still fails the restore.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::child;
use super::error::BackupError;
use super::pgbin::PgBin;
use crate::db::ConnParams;

/// Drops top-level `SET name = …;` lines whose setting the server does not know.
#[derive(Debug, Default)]
pub struct Filter {
    known: HashSet<String>,
    in_copy: bool,
    /// The lines dropped, for the notice.
    pub dropped: BTreeSet<String>,
}

impl Filter {
    pub fn new(known: HashSet<String>) -> Filter {
        Filter {
            known,
            ..Filter::default()
        }
    }

    /// Whether to keep `line` (without its newline).
    pub fn keep(&mut self, line: &[u8]) -> bool {
        if self.in_copy {
            // COPY data ends with a line holding only `\.`; anything else is row data.
            if line == b"\\." {
                self.in_copy = false;
            }
            return true;
        }
        if line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;") {
            self.in_copy = true;
            return true;
        }
        let Some(rest) = line.strip_prefix(b"SET ") else {
            return true;
        };
        let name: Vec<u8> = rest
            .iter()
            .copied()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .collect();
        let name = String::from_utf8_lossy(&name).to_ascii_lowercase();
        if name.is_empty() || self.known.contains(&name) || !line.ends_with(b";") {
            return true;
        }
        self.dropped.insert(String::from_utf8_lossy(line).into_owned());
        false
    }
}

/// The `SET` lines pg_restore starts every session with that the server would reject, read
/// from the script header it writes for an empty `--use-list`. Empty: pg_restore can talk to
/// the server directly (a 15 into a 13 server can), with `--jobs` and all.
pub async fn rejected_settings(
    bin: &PgBin,
    archive: &Path,
    known: HashSet<String>,
    cancel: &CancellationToken,
) -> Result<BTreeSet<String>, BackupError> {
    let mut cmd = tokio::process::Command::new(bin.pg_restore());
    cmd.args(["--file=-", "--use-list=/dev/null"]).arg(archive);
    let header = child::run(cmd, cancel, &[], None).await?;
    let mut filter = Filter::new(known);
    for line in header.stdout.split(|b| *b == b'\n') {
        filter.keep(line);
    }
    Ok(filter.dropped)
}

/// `pg_restore -f - ARCHIVE | filter | psql`: returns the lines that were dropped.
pub async fn restore_as_script(
    bin: &PgBin,
    params: &ConnParams,
    dbname_conninfo: &str,
    pg_restore_args: &[String],
    archive: &Path,
    known: HashSet<String>,
    cancel: &CancellationToken,
) -> Result<BTreeSet<String>, BackupError> {
    let psql = bin.psql();
    if !psql.is_file() {
        return Err(BackupError::Options(format!(
            "pg_restore {} is newer than the server, so dbtool restores through psql, but {} is missing; install the client tools of the server's major or put psql beside pg_restore",
            bin.version,
            psql.display()
        )));
    }
    let mut restore = child::libpq_command(&bin.pg_restore(), Some(params))?;
    restore
        .args(["--file=-"])
        .args(pg_restore_args)
        .arg(archive)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut sql = child::libpq_command(&psql, Some(params))?;
    sql.args(["--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1"])
        .arg(format!("--dbname={dbname_conninfo}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut producer = restore.spawn().map_err(BackupError::io("run", bin.pg_restore()))?;
    let mut consumer = sql.spawn().map_err(BackupError::io("run", psql.clone()))?;
    let (Some(out), Some(mut input)) = (producer.stdout.take(), consumer.stdin.take()) else {
        return Err(BackupError::Options("pg_restore or psql has no pipe".into()));
    };
    let stderr_of = |s: Option<tokio::process::ChildStderr>| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            if let Some(mut s) = s {
                let _ = s.read_to_end(&mut buf).await;
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let (restore_err, psql_err) = (stderr_of(producer.stderr.take()), stderr_of(consumer.stderr.take()));
    let pump = async move {
        let mut filter = Filter::new(known);
        let mut reader = BufReader::new(out);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                break;
            }
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            if filter.keep(body) {
                input.write_all(&line).await?;
            }
        }
        input.shutdown().await?;
        Ok::<_, std::io::Error>(filter.dropped)
    };
    let run = async { tokio::join!(pump, producer.wait(), consumer.wait()) };
    let (pumped, restored, applied) = tokio::select! {
        r = run => r,
        _ = cancel.cancelled() => return Err(BackupError::Cancelled),
    };
    let restored = restored.map_err(BackupError::io("wait for", bin.pg_restore()))?;
    let applied = applied.map_err(BackupError::io("wait for", psql.clone()))?;
    let failed = |program: &str, status, stderr: String| BackupError::Tool {
        program: program.into(),
        status: child::describe(status),
        stderr: child::tail(&stderr),
    };
    // psql's error first: when it stops, pg_restore's write fails too (broken pipe).
    if !applied.success() {
        return Err(failed("psql", applied, psql_err.await.unwrap_or_default()));
    }
    if !restored.success() {
        return Err(failed("pg_restore", restored, restore_err.await.unwrap_or_default()));
    }
    pumped.map_err(BackupError::io("pipe the script to", psql))
}

#[cfg(test)]
mod tests {
    use super::Filter;

    #[test]
    fn drops_unknown_settings_but_never_copy_data() {
        let known = ["statement_timeout", "lock_timeout"].map(String::from).into();
        let mut f = Filter::new(known);
        let kept: Vec<&str> = [
            "SET statement_timeout = 0;",
            "SET transaction_timeout = 0;",
            "SELECT pg_catalog.set_config('search_path', '', false);",
            "COPY public.t (id, b) FROM stdin;",
            "SET transaction_timeout = 0;",
            "\\.",
            "SET Transaction_Timeout = 0;",
        ]
        .into_iter()
        .filter(|l| f.keep(l.as_bytes()))
        .collect();
        assert_eq!(
            kept,
            [
                "SET statement_timeout = 0;",
                "SELECT pg_catalog.set_config('search_path', '', false);",
                "COPY public.t (id, b) FROM stdin;",
                "SET transaction_timeout = 0;",
                "\\.",
            ]
        );
        assert_eq!(f.dropped.len(), 2);
    }
}
