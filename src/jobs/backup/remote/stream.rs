//! A `--dest s3://…` backup streamed straight into the store, with no local copy: pg_dump's
//! stdout (compressed by pg_dump itself) is hashed, fed to the pg_restore test-read, encrypted
//! when asked, and sent as a multipart upload (`multipart::Sink`: 8 MiB parts, at most two in
//! flight). Globals and the files archive follow the same way, then the manifest, last.
//!
//! `--format directory` is many files written by pg_dump (in parallel with `--jobs`); it is
//! staged locally and shipped by `upload.rs`.

use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::super::crypt::Encryption;
use super::super::dump::{self, Job};
use super::super::error::BackupError;
use super::super::manifest::{FileEntry, Manifest};
use super::super::pgbin::PgBin;
use super::super::pipe::{self, Plain};
use super::super::verify;
use super::multipart::{Sent, Sink};
use super::upload::{self, Uploaded};
use super::Remote;

/// Streams the contents of backup `m` (its other fields filled in) to `remote` and writes its
/// manifest, completed with the files' sizes and hashes as sent. Whatever fails, the objects
/// already written are deleted and the open upload aborted.
pub async fn backup(
    job: &Job<'_>,
    remote: &Remote,
    bin: &PgBin,
    compress: Option<&str>,
    m: &mut Manifest,
    clock: Instant,
) -> Result<Uploaded, BackupError> {
    let mut done = Vec::new();
    let result = send_all(job, remote, bin, compress, m, clock, &mut done).await;
    if result.is_err() {
        upload::remove(remote, &m.id, &done).await;
    }
    let bytes = result?;
    Ok(Uploaded {
        seconds: clock.elapsed().as_secs_f64(),
        bytes,
    })
}

async fn send_all(
    job: &Job<'_>,
    remote: &Remote,
    bin: &PgBin,
    compress: Option<&str>,
    m: &mut Manifest,
    clock: Instant,
    done: &mut Vec<object_store::path::Path>,
) -> Result<u64, BackupError> {
    let database = m.database.clone();
    if let Some(bar) = job.progress {
        bar.set_prefix(format!("{database} (to {})", remote.url()));
        bar.set_position(0);
    }
    let cmd = dump::pg_dump_command(job, &database, bin, compress)?;
    let test_read = verify::read_command(bin, job.opts.verify, None);
    let dump = m.dump.clone();
    let (plain, sent) = send(job, remote, &m.id, &dump, cmd, &[], Some(test_read), done).await?;
    let mut files = vec![entry(&dump, &sent)];
    if let Some(name) = m.globals.clone() {
        let cmd = dump::pg_dumpall_command(job, &database, bin)?;
        let (_, sent) = send(job, remote, &m.id, &name, cmd, &[], None, done).await?;
        files.push(entry(&name, &sent));
    }
    if let Some(name) = m.files_archive.clone() {
        // tar's exit 1: a file changed while it was read (see dump::archive_files).
        let cmd = dump::tar_command(&job.opts.files, std::path::Path::new("-"));
        let (_, sent) = send(job, remote, &m.id, &name, cmd, &[1], None, done).await?;
        files.push(entry(&name, &sent));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    m.sha256 = sent.sha256.clone();
    m.bytes = files.iter().map(|f| f.bytes).sum();
    m.files = files;
    if !job.recipients.is_empty() {
        m.encryption = Some(Encryption {
            scheme: "age".into(),
            recipients: job.recipients.names(),
            plaintext_sha256: plain.sha256,
            plaintext_bytes: plain.bytes,
        });
    }
    m.finished_at = Utc::now();
    m.duration_seconds = clock.elapsed().as_secs_f64();
    done.push(remote.key(&m.id, super::super::manifest::MANIFEST));
    upload::put_manifest(remote, m).await?;
    Ok(m.bytes)
}

fn entry(path: &str, sent: &Sent) -> FileEntry {
    FileEntry {
        path: path.to_string(),
        bytes: sent.bytes,
        sha256: sent.sha256.clone(),
    }
}

/// One object: `source`'s stdout through `pump` into a multipart upload, completed and its
/// stored size read back; the plaintext's size and hash, and what was sent.
#[allow(clippy::too_many_arguments)]
async fn send(
    job: &Job<'_>,
    remote: &Remote,
    id: &str,
    rel: &str,
    source: Command,
    ok_codes: &[i32],
    test_read: Option<Command>,
    done: &mut Vec<object_store::path::Path>,
) -> Result<(Plain, Sent), BackupError> {
    let mut sink = Sink::open(remote, id, rel).await?;
    done.push(sink.key().clone());
    let plain = match pump(job, &mut sink, source, ok_codes, test_read).await {
        Ok(p) => p,
        Err(e) => {
            sink.abort().await;
            return Err(e);
        }
    };
    let key = sink.key().clone();
    let sent = sink.finish().await?;
    upload::check_stored(remote, &key, sent.bytes).await?;
    Ok((plain, sent))
}

/// age's writer is synchronous: it encrypts into this buffer, which is drained into the
/// upload after every chunk (so it holds about one chunk).
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        self.0.lock().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default()
    }
}

impl Write for Shared {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut b = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("encryption buffer poisoned"))?;
        b.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `source`, hashes its output, feeds it to `test_read` when given, encrypts it when the
/// run has recipients, and writes it to `sink`. Ok once every child succeeded.
async fn pump(
    job: &Job<'_>,
    sink: &mut Sink<'_>,
    source: Command,
    ok_codes: &[i32],
    test_read: Option<Command>,
) -> Result<Plain, BackupError> {
    let buffer = Shared::default();
    let mut sealer = match job.recipients.is_empty() {
        true => None,
        false => Some(job.recipients.encrypt(buffer.clone()).map_err(BackupError::Options)?),
    };
    let mut dumper = pipe::spawn(source, Stdio::null(), Stdio::piped())?;
    let mut reader = test_read
        .map(|c| pipe::spawn(c, Stdio::piped(), Stdio::null()))
        .transpose()?;
    let mut out = dumper.child.stdout.take();
    let mut check = reader.as_mut().and_then(|r| r.child.stdin.take());
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; pipe::CHUNK];
    loop {
        let n = pipe::next_chunk(&mut out, &mut buf, &mut dumper, reader.as_mut(), job.cancel).await?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        bytes += n as u64;
        pipe::feed(&mut check, chunk, "pg_restore").await?;
        match sealer.as_mut() {
            Some(w) => {
                w.write_all(chunk)
                    .map_err(BackupError::io("encrypt", "the dump stream"))?;
                sink.write(&buffer.take()).await?;
            }
            None => sink.write(chunk).await?,
        }
        if let (Some(bar), true) = (job.progress, reader.is_some()) {
            bar.set_position(bytes);
        }
    }
    drop(check);
    dumper.finish(ok_codes).await?;
    if let Some(r) = reader {
        r.finish(&[]).await?;
    }
    if let Some(w) = sealer {
        w.finish().map_err(BackupError::io("encrypt", "the dump stream"))?;
        sink.write(&buffer.take()).await?;
    }
    Ok(Plain {
        bytes,
        sha256: pipe::hex(&hasher.finalize()),
    })
}
