//! Encrypted backups as streams, so the plaintext never touches the disk: pg_dump's stdout
//! is hashed, encrypted and written (and fed to a pg_restore test-read on the way); for
//! restore and verify the age file is decrypted, hashed and fed to pg_restore's stdin.
//!
//! The encrypted side is any `std::io::Write` (a local file today), so another destination
//! can take the same stream without a second full copy.

use std::io::{Read, Write};
use std::process::Stdio;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio_util::sync::CancellationToken;

use super::child;
use super::crypt::{Encryption, Identities, Recipients};
use super::error::BackupError;
use super::manifest::Manifest;

pub(super) const CHUNK: usize = 256 * 1024;

/// Size and sha256 of a plaintext stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    pub bytes: u64,
    pub sha256: String,
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn program_of(cmd: &Command) -> String {
    let p = cmd.as_std().get_program().to_string_lossy();
    p.rsplit('/').next().unwrap_or_default().to_string()
}

/// A child with its stderr collected in the background.
pub(super) struct Running {
    pub(super) program: String,
    pub(super) child: Child,
    stderr: tokio::task::JoinHandle<Vec<u8>>,
}

pub(super) fn spawn(mut cmd: Command, stdin: Stdio, stdout: Stdio) -> Result<Running, BackupError> {
    let program = program_of(&cmd);
    cmd.stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(BackupError::io("run", program.clone()))?;
    let mut err = child.stderr.take();
    let stderr = tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut buf).await;
        }
        buf
    });
    Ok(Running { program, child, stderr })
}

impl Running {
    /// Waits for the exit (`ok_codes` count as success besides 0); a failure carries the
    /// last lines of stderr.
    pub(super) async fn finish(mut self, ok_codes: &[i32]) -> Result<(), BackupError> {
        let status = (self.child.wait().await).map_err(BackupError::io("wait for", self.program.clone()))?;
        let stderr = String::from_utf8_lossy(&self.stderr.await.unwrap_or_default()).into_owned();
        if status.success() || status.code().is_some_and(|c| ok_codes.contains(&c)) {
            if status.code() != Some(0) {
                tracing::warn!(stderr = %child::tail(&stderr), "{} exited with {}", self.program, child::describe(status));
            }
            return Ok(());
        }
        Err(BackupError::Tool {
            program: self.program,
            status: child::describe(status),
            stderr: child::tail(&stderr),
        })
    }
}

/// Writes `chunk` to a reader's stdin; a reader that has seen enough and closed its end
/// (`pg_restore --list` stops after the table of contents) is let go, not an error.
pub(super) async fn feed(stdin: &mut Option<ChildStdin>, chunk: &[u8], what: &str) -> Result<(), BackupError> {
    if let Some(s) = stdin.as_mut() {
        match s.write_all(chunk).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => *stdin = None,
            Err(e) => return Err(BackupError::io("write to", what.to_string())(e)),
        }
    }
    Ok(())
}

/// The next chunk of `dumper`'s output (`out`, its stdout) into `buf`, 0 at its end; when
/// `cancel` fires first, `dumper` and `reader` are killed and the run is `Cancelled`.
pub(super) async fn next_chunk(
    out: &mut Option<tokio::process::ChildStdout>,
    buf: &mut [u8],
    dumper: &mut Running,
    reader: Option<&mut Running>,
    cancel: &CancellationToken,
) -> Result<usize, BackupError> {
    tokio::select! {
        n = async {
            match out.as_mut() {
                Some(s) => s.read(buf).await,
                None => Ok(0),
            }
        } => n.map_err(BackupError::io("read the output of", dumper.program.clone())),
        _ = cancel.cancelled() => {
            let _ = dumper.child.kill().await;
            if let Some(r) = reader {
                let _ = r.child.kill().await;
            }
            Err(BackupError::Cancelled)
        }
    }
}

/// Runs `dump` (writing to stdout; `ok_codes` besides 0 accepted), encrypts the stream to
/// `recipients` into `out`, and feeds the same plaintext to `test_read` (a pg_restore
/// reading stdin) when given. Ok once the children succeeded and the age file is finished.
pub async fn dump_encrypted<W: Write>(
    dump: Command,
    ok_codes: &[i32],
    test_read: Option<Command>,
    recipients: &Recipients,
    out: W,
    cancel: &CancellationToken,
    progress: Option<&ProgressBar>,
) -> Result<(Plain, W), BackupError> {
    let mut writer = recipients.encrypt(out).map_err(BackupError::Options)?;
    let mut dumper = spawn(dump, Stdio::null(), Stdio::piped())?;
    let mut reader = test_read.map(|c| spawn(c, Stdio::piped(), Stdio::null())).transpose()?;
    let mut source = dumper.child.stdout.take();
    let mut sink = reader.as_mut().and_then(|r| r.child.stdin.take());
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = next_chunk(&mut source, &mut buf, &mut dumper, reader.as_mut(), cancel).await?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        bytes += n as u64;
        // why blocking here: age's stream writer is synchronous; a chunk is a fraction of a
        // millisecond of work and a local write.
        writer
            .write_all(chunk)
            .map_err(BackupError::io("write", "the encrypted dump"))?;
        feed(&mut sink, chunk, "pg_restore").await?;
        if let Some(bar) = progress {
            bar.set_position(bytes);
        }
    }
    drop(sink);
    dumper.finish(ok_codes).await?;
    if let Some(r) = reader {
        r.finish(&[]).await?;
    }
    let out = writer
        .finish()
        .map_err(BackupError::io("finish", "the encrypted dump"))?;
    let sha256 = hex(&hasher.finalize());
    Ok((Plain { bytes, sha256 }, out))
}

/// Feeds the decrypted `plain` stream to `consumer` (a pg_restore reading stdin) and
/// returns what was fed. A consumer that exits early is an error unless `may_stop_early`
/// (`pg_restore --list` reads only the table of contents; the hash then covers the rest).
pub async fn restore_from<R: Read>(
    mut plain: R,
    consumer: Command,
    may_stop_early: bool,
    cancel: &CancellationToken,
) -> Result<Plain, BackupError> {
    let mut reader = spawn(consumer, Stdio::piped(), Stdio::null())?;
    let mut sink = reader.child.stdin.take();
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        if cancel.is_cancelled() {
            let _ = reader.child.kill().await;
            return Err(BackupError::Cancelled);
        }
        // why blocking here: age's stream reader is synchronous (see dump_encrypted).
        let n = plain
            .read(&mut buf)
            .map_err(|e| BackupError::Options(format!("decryption failed: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
        let had_sink = sink.is_some();
        feed(&mut sink, &buf[..n], &reader.program).await?;
        if had_sink && sink.is_none() && !may_stop_early {
            // pg_restore stopped reading: its exit status says why.
            break;
        }
    }
    drop(sink);
    reader.finish(&[]).await?;
    Ok(Plain {
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

/// Opens the encrypted file `path` of backup `m` for reading with `keys`: the header is read
/// and a key matched before anything is restored, so a wrong key touches nothing.
pub fn open_encrypted(
    path: &std::path::Path,
    m: &Manifest,
    keys: &Identities,
) -> Result<age::stream::StreamReader<std::io::BufReader<std::fs::File>>, BackupError> {
    let file = std::fs::File::open(path).map_err(BackupError::io("read", path))?;
    open_reader(std::io::BufReader::with_capacity(CHUNK, file), m, keys)
}

/// `open_encrypted` over any reader (an object storage stream).
pub fn open_reader<R: Read>(
    input: R,
    m: &Manifest,
    keys: &Identities,
) -> Result<age::stream::StreamReader<R>, BackupError> {
    let recipients = m
        .encryption
        .as_ref()
        .map(|e| e.recipients.join(", "))
        .unwrap_or_default();
    keys.open(input).map_err(|why| match why {
        None => BackupError::WrongKey {
            id: m.id.clone(),
            recipients: recipients.clone(),
            identity: keys.path().display().to_string(),
        },
        Some(why) => BackupError::Corrupt {
            id: m.id.clone(),
            message: why,
        },
    })
}

/// The decrypted stream against the manifest's plaintext hash.
pub fn check_plaintext(m: &Manifest, enc: &Encryption, got: &Plain) -> Result<(), BackupError> {
    if got.sha256 == enc.plaintext_sha256 && got.bytes == enc.plaintext_bytes {
        return Ok(());
    }
    Err(BackupError::Corrupt {
        id: m.id.clone(),
        message: format!(
            "the decrypted dump is {} bytes with sha256 {}, the manifest says {} bytes with sha256 {}",
            got.bytes, got.sha256, enc.plaintext_bytes, enc.plaintext_sha256
        ),
    })
}
