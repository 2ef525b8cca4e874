//! Writing one database's backup: dump into `DEST/.ID.partial/`, add globals and files,
//! test-read, checksum, manifest, fsync, and only then rename to `DEST/ID`. Whatever fails,
//! the partial directory is removed: nothing that looks finished is left behind.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::db::ConnParams;
use crate::db::SessionSettings;

use super::child::{self, libpq_command};
use super::compress;
use super::crypt::{Encryption, Recipients};
use super::error::BackupError;
use super::lock::LockFile;
use super::manifest::{self, Manifest, Status, SCHEMA};
use super::objects;
use super::options::{BackupOptions, DumpFormat};
use super::pgbin::{self, PgBin};
use super::sealed;
use super::session::{self, Session};
use super::slots::{self, Tool};
use super::verify;

pub const GLOBALS: &str = "globals.sql";
pub const FILES_ARCHIVE: &str = "files.tar.gz";

/// The dump's name in the backup directory; an encrypted one (always custom format) ends in
/// `.age`, as do the globals and files beside it.
fn dump_name(database: &str, format: DumpFormat, encrypted: bool) -> String {
    let base = manifest::safe_name(database);
    match (format, encrypted) {
        (_, true) => format!("{base}.dump.age"),
        (DumpFormat::Custom, false) => format!("{base}.dump"),
        (DumpFormat::Directory, false) => format!("{base}.dir"),
    }
}

fn aged(name: &str, encrypted: bool) -> String {
    if encrypted {
        format!("{name}.age")
    } else {
        name.to_string()
    }
}

/// A free id: two backups of one database within the same second get "-2", "-3" …
fn free_id(dest: &Path, database: &str, at: chrono::DateTime<Utc>) -> String {
    let base = manifest::make_id(database, at);
    let mut id = base.clone();
    let mut n = 2;
    while dest.join(&id).exists() || manifest::partial_dir(dest, &id).exists() {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

pub struct Job<'a> {
    pub opts: &'a BackupOptions,
    pub dest: &'a Path,
    /// The server's libpq parameters (a backup's target is PostgreSQL).
    pub params: &'a ConnParams,
    pub session: &'a SessionSettings,
    pub cancel: &'a CancellationToken,
    pub progress: Option<&'a ProgressBar>,
    /// Empty: the backup is not encrypted.
    pub recipients: &'a Recipients,
    /// The copy to object storage (`--copy-to`, `--dest s3://…`), uploaded under the lock.
    pub shipping: Option<&'a super::remote::place::Shipping>,
}

/// Backs up one database; Ok only once its verified manifest is in place.
pub async fn backup_database(job: &Job<'_>, database: &str) -> Result<Manifest, BackupError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let sess = session::open(job.params, job.session, database).await?;
    // Every path from here releases the server lock, failures included.
    let mut result = backup_locked(job, database, &sess, started_at, clock).await;
    if let (Ok(m), Some(s)) = (&result, job.shipping.filter(|s| !s.streams(job.opts.format))) {
        if let Err(e) = s.ship(job.dest, m, job.cancel).await {
            result = Err(e);
        }
    }
    sess.release().await;
    result
}

/// The backup itself, while `sess` holds the database's backup lock.
async fn backup_locked(
    job: &Job<'_>,
    database: &str,
    sess: &Session,
    started_at: DateTime<Utc>,
    clock: Instant,
) -> Result<Manifest, BackupError> {
    // Before anything is written or a pg_dump is looked for: a refusal costs nothing.
    if let Some(jobs) = job.opts.jobs.filter(|j| *j > 1) {
        slots::ensure(sess.client(), database, true, Tool::PgDump, jobs).await?;
    }
    let bin = pgbin::find(sess.server_major).await?;
    let objects = objects::read(sess.client(), database).await?;
    let choice = compress::choose(job.opts.compress.as_deref(), &bin).await?;
    if let Some(notice) = &choice.notice {
        tracing::warn!(database, "{notice}");
    }
    let compress = choice.spec;
    let _lock_file = LockFile::acquire(job.dest, database)?;
    let id = free_id(job.dest, database, started_at);
    let encrypted = !job.recipients.is_empty();
    let dump = dump_name(database, job.opts.format, encrypted);
    let mut m = Manifest {
        schema: SCHEMA,
        id: id.clone(),
        database: database.to_string(),
        status: Status::Verified,
        format: format!("{:?}", job.opts.format).to_lowercase(),
        compression: compress.clone(),
        server_version: sess.server_version.clone(),
        pg_dump_version: bin.version.clone(),
        dbtool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        finished_at: started_at,
        duration_seconds: 0.0,
        bytes: 0,
        sha256: String::new(),
        dump: dump.clone(),
        globals: job.opts.globals.then(|| aged(GLOBALS, encrypted)),
        files_archive: (!job.opts.files.is_empty()).then(|| aged(FILES_ARCHIVE, encrypted)),
        verified_with: format!("{:?}", job.opts.verify).to_lowercase(),
        files: Vec::new(),
        tables: sess.tables.clone(),
        objects: Some(objects),
        encryption: None,
    };
    if let Some(s) = job.shipping.filter(|s| s.streams(job.opts.format)) {
        // Straight to object storage: no local copy of the dump (test-read on the way).
        s.prepare(database).await?;
        let up = super::remote::stream::backup(job, &s.remote, &bin, compress.as_deref(), &mut m, clock).await?;
        s.record(database, up);
        return Ok(m);
    }
    let partial = manifest::partial_dir(job.dest, &id);
    // 0700: a dump holds every row of the database, whatever the umask says.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .map_err(BackupError::io("create", &partial))?;
    let mut guard = PartialGuard(Some(partial.clone()));
    let result = async {
        if encrypted {
            let p = sealed::write_contents(job, database, &bin, compress.as_deref(), &partial, &dump).await?;
            m.encryption = Some(Encryption {
                scheme: "age".into(),
                recipients: job.recipients.names(),
                plaintext_sha256: p.sha256,
                plaintext_bytes: p.bytes,
            });
        } else {
            write_contents(job, database, &bin, compress.as_deref(), &partial, &dump).await?;
            // An encrypted dump was test-read from the stream it was encrypted from.
            verify::test_read(&bin, &partial.join(&dump), job.opts.verify, job.cancel).await?;
        }
        seal(&mut m, &partial, job.dest, clock).await?;
        Ok(m)
    }
    .await;
    if result.is_ok() {
        guard.0 = None;
    }
    result
}

/// Removes the partial directory unless the backup was sealed, also when the future is
/// dropped mid-way (a scheduler's timeout), not only when it returns an error.
struct PartialGuard(Option<PathBuf>);

impl Drop for PartialGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove the unfinished backup");
            }
        }
    }
}

/// pg_dump, then pg_dumpall --globals-only and the files archive when asked.
async fn write_contents(
    job: &Job<'_>,
    database: &str,
    bin: &PgBin,
    compress: Option<&str>,
    partial: &Path,
    dump: &str,
) -> Result<(), BackupError> {
    let out = partial.join(dump);
    let mut cmd = pg_dump_command(job, database, bin, compress)?;
    cmd.arg(format!("--file={}", out.display()));
    if let Some(bar) = job.progress {
        bar.set_prefix(database.to_string());
        bar.set_position(0);
    }
    child::run(cmd, job.cancel, &[], job.progress.map(|b| (out.as_path(), b))).await?;
    if let Some(bar) = job.progress {
        bar.set_prefix(format!("{database} (dumped; verifying)"));
    }
    if job.opts.globals {
        let mut cmd = pg_dumpall_command(job, database, bin)?;
        cmd.arg(format!("--file={}", partial.join(GLOBALS).display()));
        child::run(cmd, job.cancel, &[], None).await?;
    }
    if !job.opts.files.is_empty() {
        archive_files(&job.opts.files, &partial.join(FILES_ARCHIVE), job.cancel).await?;
    }
    Ok(())
}

/// pg_dump with the run's options, writing to stdout unless a `--file` is added.
pub(super) fn pg_dump_command(
    job: &Job<'_>,
    database: &str,
    bin: &PgBin,
    compress: Option<&str>,
) -> Result<Command, BackupError> {
    let mut cmd = libpq_command(&bin.pg_dump(), Some(&job.params.with_dbname(database)))?;
    cmd.arg("--no-password").arg(match job.opts.format {
        DumpFormat::Custom => "--format=custom",
        DumpFormat::Directory => "--format=directory",
    });
    if let Some(j) = job.opts.jobs.filter(|j| *j > 1) {
        cmd.arg(format!("--jobs={j}"));
    }
    if let Some(c) = compress {
        cmd.arg(format!("--compress={c}"));
    }
    if let Some(t) = job.opts.lock_wait_timeout {
        cmd.arg(format!("--lock-wait-timeout={}", t.0.as_millis().max(1)));
    }
    Ok(cmd)
}

/// pg_dumpall --globals-only, writing to stdout unless a `--file` is added.
pub(super) fn pg_dumpall_command(job: &Job<'_>, database: &str, bin: &PgBin) -> Result<Command, BackupError> {
    let mut cmd = libpq_command(&bin.pg_dumpall(), Some(&job.params.with_dbname(database)))?;
    cmd.args(["--globals-only", "--no-password"]);
    Ok(cmd)
}

/// `tar -czf`: the application's files beside the dump. Exit 1 ("file changed as we read
/// it") is accepted with a warning: an upload directory in use always risks it.
async fn archive_files(paths: &[PathBuf], out: &Path, cancel: &CancellationToken) -> Result<(), BackupError> {
    let cmd = tar_command(paths, out);
    let done = child::run(cmd, cancel, &[1], None).await?;
    if done.code == Some(1) {
        tracing::warn!(stderr = %child::tail(&done.stderr), "tar: some files changed while they were archived");
    }
    Ok(())
}

/// `tar -czf OUT -- PATHS` (OUT `-`: stdout).
pub(super) fn tar_command(paths: &[PathBuf], out: &Path) -> Command {
    let mut cmd = Command::new("tar");
    cmd.args(["--create", "--gzip", "--file"]).arg(out).arg("--");
    cmd.args(paths);
    cmd
}

fn fsync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BackupError::io("fsync", dir))
}

/// Checksums (fsyncing every file), manifest, fsync, rename into place, fsync the destination.
async fn seal(m: &mut Manifest, partial: &Path, dest: &Path, clock: Instant) -> Result<(), BackupError> {
    let dir = partial.to_path_buf();
    let files = tokio::task::spawn_blocking(move || verify::hash_tree(&dir, true))
        .await
        .map_err(|e| BackupError::Options(format!("checksum task failed: {e}")))??;
    m.sha256 = verify::dump_sha256(&files, &m.dump);
    m.bytes = files.iter().map(|f| f.bytes).sum();
    m.files = files;
    m.finished_at = Utc::now();
    m.duration_seconds = clock.elapsed().as_secs_f64();
    let text = serde_json::to_vec_pretty(m).map_err(|e| BackupError::Options(e.to_string()))?;
    let path = partial.join(manifest::MANIFEST);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&path).map_err(BackupError::io("create", &path))?;
        f.write_all(&text)
            .and_then(|_| f.sync_all())
            .map_err(BackupError::io("write", &path))?;
    }
    let sub = partial.join(&m.dump);
    if sub.is_dir() {
        fsync_dir(&sub)?;
    }
    fsync_dir(partial)?;
    let final_dir = dest.join(&m.id);
    std::fs::rename(partial, &final_dir).map_err(BackupError::io("rename into place", &final_dir))?;
    fsync_dir(dest)
}

/// Option combinations that cannot work, refused before anything is dumped.
pub fn validate(opts: &BackupOptions) -> Result<(), BackupError> {
    if opts.jobs.is_some_and(|j| j > 1) && opts.format != DumpFormat::Directory {
        return Err(BackupError::Options(
            "--jobs needs --format directory (pg_dump writes a custom-format archive with one process)".into(),
        ));
    }
    if opts.all && !opts.databases.is_empty() {
        return Err(BackupError::Options("--all and --database exclude each other".into()));
    }
    if opts.format == DumpFormat::Directory && !(opts.encrypt_to.is_empty() && opts.recipients_file.is_none()) {
        return Err(BackupError::Options(
            "--encrypt-to needs --format custom: an encrypted dump is one stream, and a directory dump is many files"
                .into(),
        ));
    }
    for p in &opts.files {
        if !p.exists() {
            return Err(BackupError::Options(format!(
                "--files {}: no such file or directory",
                p.display()
            )));
        }
    }
    Ok(())
}
