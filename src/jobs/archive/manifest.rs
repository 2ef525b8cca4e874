//! `--files-manifest`: the application files of archived rows (Mattermost's FileInfo paths),
//! one per line, appended as each batch commits, for a separate step to move; dbtool never
//! touches the files themselves.
//!
//! A crash must neither list files of rows that were not archived nor miss files of rows
//! that were, yet a file cannot commit with the database. So each batch goes:
//! 1. its statement runs in an open transaction and returns the paths and its xid;
//! 2. `FILE.pending` (xid, the manifest's length, the paths) is written atomically;
//! 3. COMMIT, synchronously (a commit lost in a server crash would otherwise list rows that
//!    went back to the source);
//! 4. the paths are appended to FILE and fsynced, and `FILE.pending` is removed.
//!
//! The next run, holding the table's lock (so the old session is gone), settles a leftover
//! `FILE.pending` by asking the server about its xid (`txid_status`): committed, FILE is cut
//! back to the recorded length and the paths appended (so a crash inside step 4 does not
//! list them twice); anything else, it is dropped.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio_postgres::{Client, Statement};

use super::batch::{self, BatchError, Outcome};
use super::children::{dotted, qualified};
use super::ident::{parse_part, QualifiedName};
use super::ArchiveError;
use crate::db::Columns;

/// `--files-from TABLE:COLUMN[,COLUMN...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesFrom {
    pub table: QualifiedName,
    pub columns: Vec<String>,
}

impl FilesFrom {
    pub fn parse(input: &str) -> Result<FilesFrom, ArchiveError> {
        let err = |why: &str| {
            ArchiveError::Config(format!(
                "--files-from '{input}': {why}; write TABLE:COLUMN[,COLUMN...], e.g. fileinfo:path,thumbnailpath"
            ))
        };
        let (parts, rest) = dotted(input.trim()).map_err(err)?;
        let table = qualified(&parts).ok_or_else(|| err("the table is schema.table or table"))?;
        let mut rest = rest.strip_prefix(':').ok_or_else(|| err("':' and columns expected"))?;
        let mut columns = Vec::new();
        loop {
            let (col, after) = parse_part(rest).map_err(err)?;
            columns.push(col);
            match after.strip_prefix(',') {
                Some(next) => rest = next,
                None if after.is_empty() => break,
                None => return Err(err("unexpected text after a column")),
            }
        }
        Ok(FilesFrom { table, columns })
    }
}

fn io_err<'a>(path: &'a Path, what: &str) -> impl Fn(std::io::Error) -> ArchiveError + 'a {
    let what = what.to_string();
    move |e| ArchiveError::Config(format!("{what} {}: {e}", path.display()))
}

/// One path per line: a newline or backslash in a path is written `\n` / `\\`.
fn lines(files: &[String]) -> String {
    files
        .iter()
        .map(|f| format!("{}\n", f.replace('\\', "\\\\").replace('\n', "\\n")))
        .collect()
}

pub struct Manifest {
    path: PathBuf,
    pending: PathBuf,
}

impl Manifest {
    /// Opens the manifest, settling what a crashed run left pending.
    pub async fn open(path: &Path, client: &Client) -> Result<Manifest, ArchiveError> {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".pending");
        let m = Manifest {
            path: path.to_path_buf(),
            pending: path.with_file_name(name),
        };
        let text = match std::fs::read_to_string(&m.pending) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(m),
            Err(e) => return Err(io_err(&m.pending, "reading")(e)),
        };
        let mut it = text.lines();
        let (xid, len) = match (it.next(), it.next().and_then(|l| l.parse::<u64>().ok())) {
            (Some(x), Some(l)) => (x.to_string(), l),
            _ => {
                return Err(ArchiveError::Refused(format!(
                    "{} is not a pending list dbtool wrote; move it away",
                    m.pending.display()
                )))
            }
        };
        let status: Option<String> = client
            .query_one(include_str!("../../../queries/archive_xid_status.sql"), &[&xid])
            .await
            .map_err(|source| ArchiveError::Db {
                what: "asking the server whether the last batch before a crash committed".into(),
                source,
            })?
            .col("status")?;
        match status.as_deref() {
            Some("committed") => {
                let rest: String = it.map(|l| format!("{l}\n")).collect();
                m.append_at(len, rest.as_bytes())?;
            }
            Some(_) => {}
            None => {
                return Err(ArchiveError::Refused(format!(
                    "{}: its transaction {xid} is too old for the server to say whether it committed; \
                     append the paths of it that are in the archive to {} by hand, then remove it",
                    m.pending.display(),
                    m.path.display()
                )))
            }
        }
        std::fs::remove_file(&m.pending).map_err(io_err(&m.pending, "removing"))?;
        Ok(m)
    }

    fn len(&self) -> Result<u64, ArchiveError> {
        match std::fs::metadata(&self.path) {
            Ok(md) => Ok(md.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err(&self.path, "reading")(e)),
        }
    }

    /// Step 2: before the batch commits.
    pub fn prepare(&self, xid: &str, files: &[String]) -> Result<(), ArchiveError> {
        let text = format!("{xid}\n{}\n{}", self.len()?, lines(files));
        crate::report::atomic::write_private(&self.pending, text.as_bytes())
            .map_err(|e| ArchiveError::Config(e.to_string()))
    }

    /// Step 4: after the batch committed.
    pub fn committed(&self, files: &[String]) -> Result<(), ArchiveError> {
        let len = self.len()?;
        self.append_at(len, lines(files).as_bytes())?;
        std::fs::remove_file(&self.pending).map_err(io_err(&self.pending, "removing"))
    }

    /// Cuts FILE back to `len` (what a crash may have half-appended) and appends, durably.
    fn append_at(&self, len: u64, bytes: &[u8]) -> Result<(), ArchiveError> {
        let e = io_err(&self.path, "appending to");
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(&e)?;
        f.set_len(len).map_err(&e)?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(len)).map_err(&e)?;
        f.write_all(bytes).map_err(&e)?;
        f.sync_all().map_err(&e)?;
        if len == 0 {
            // A new file: its directory entry must survive a crash too.
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(&e)?;
            }
        }
        Ok(())
    }
}

/// One same-database batch with a manifest: steps 1 to 4 of the module comment. A failure of
/// the manifest is not retried (`BatchError::Files`).
pub async fn execute(
    client: &Client,
    stmt: &Statement,
    params: &[String],
    manifest: &Manifest,
) -> Result<Outcome, BatchError> {
    let files_err = |e: ArchiveError| BatchError::Files(e.to_string());
    client.batch_execute("BEGIN; SET LOCAL synchronous_commit = on").await?;
    let out = match batch::execute(client, stmt, params).await {
        Ok(out) => out,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    let files = out.files.as_ref().filter(|(_, f)| !f.is_empty());
    if let Some((xid, files)) = files {
        if let Err(e) = manifest.prepare(xid, files) {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(files_err(e));
        }
    }
    client.batch_execute("COMMIT").await?;
    if let Some((_, files)) = files {
        manifest.committed(files).map_err(files_err)?;
    }
    Ok(out)
}
