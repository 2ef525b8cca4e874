//! Writing an encrypted backup's contents: pg_dump (then pg_dumpall and tar when asked)
//! streamed through age into `NAME.age` files of the partial directory; nothing unencrypted
//! is written. The dump is compressed by pg_dump first, then encrypted: encrypted bytes do
//! not compress.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tokio::process::Command;

use super::dump::{self, Job, FILES_ARCHIVE, GLOBALS};
use super::error::BackupError;
use super::pgbin::PgBin;
use super::pipe::{self, Plain};
use super::verify;

/// Streams `source`'s stdout through age into `out` (created 0600), optionally test-read
/// on the way, and flushes it to disk.
async fn encrypt_into(
    job: &Job<'_>,
    source: Command,
    ok_codes: &[i32],
    test_read: Option<Command>,
    out: &Path,
) -> Result<Plain, BackupError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(BackupError::io("create", out))?;
    let writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let progress = test_read.as_ref().and(job.progress);
    let (plain, writer) = pipe::dump_encrypted(
        source,
        ok_codes,
        test_read,
        job.recipients,
        writer,
        job.cancel,
        progress,
    )
    .await?;
    let file = writer
        .into_inner()
        .map_err(|e| BackupError::io("write", out)(e.into_error()))?;
    file.sync_all().map_err(BackupError::io("fsync", out))?;
    Ok(plain)
}

/// The encrypted dump (test-read from the same stream), globals and files; the dump's
/// plaintext size and hash.
pub async fn write_contents(
    job: &Job<'_>,
    database: &str,
    bin: &PgBin,
    compress: Option<&str>,
    partial: &Path,
    dump_file: &str,
) -> Result<Plain, BackupError> {
    if let Some(bar) = job.progress {
        bar.set_prefix(format!("{database} (encrypted)"));
        bar.set_position(0);
    }
    let cmd = dump::pg_dump_command(job, database, bin, compress)?;
    let test_read = verify::read_command(bin, job.opts.verify, None);
    let plain = encrypt_into(job, cmd, &[], Some(test_read), &partial.join(dump_file)).await?;
    if job.opts.globals {
        let cmd = dump::pg_dumpall_command(job, database, bin)?;
        encrypt_into(job, cmd, &[], None, &partial.join(format!("{GLOBALS}.age"))).await?;
    }
    if !job.opts.files.is_empty() {
        // tar's exit 1: a file changed while it was read (see dump::archive_files).
        let cmd = dump::tar_command(&job.opts.files, Path::new("-"));
        let out = partial.join(format!("{FILES_ARCHIVE}.age"));
        encrypt_into(job, cmd, &[1], None, &out).await?;
    }
    Ok(plain)
}
