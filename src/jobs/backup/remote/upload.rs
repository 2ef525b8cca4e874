//! Shipping a sealed local backup to object storage (`--copy-to`, and `--format directory`
//! to `--dest s3://…`): every file streamed through a multipart upload (`multipart::Sink`:
//! bounded memory, recorded so a killed run's upload is aborted by the next), its sha256
//! computed from the very bytes sent and compared with the manifest, its size read back from
//! the store; the manifest goes last. Whatever fails, the objects already written are deleted
//! and the open upload aborted, so nothing is left that lists as a backup.

use std::path::Path;
use std::time::Instant;

use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::super::error::BackupError;
use super::super::manifest::{self, Manifest, MANIFEST};
use super::multipart::{Sent, Sink};
use super::Remote;

/// What one upload took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Uploaded {
    pub seconds: f64,
    pub bytes: u64,
}

/// Uploads backup `m` from `dir` (the sealed `DEST/ID`). Objects of a failed upload are
/// removed (best effort: what a killed process leaves is cleaned by the next run, see
/// `mirror::clean_unfinished` and `multipart::abort_pending`).
pub async fn upload(
    remote: &Remote,
    dir: &Path,
    m: &Manifest,
    cancel: &CancellationToken,
) -> Result<Uploaded, BackupError> {
    let clock = Instant::now();
    let mut done = Vec::new();
    let result = upload_all(remote, dir, m, cancel, &mut done).await;
    if result.is_err() {
        remove(remote, &m.id, &done).await;
    }
    let bytes = result?;
    Ok(Uploaded {
        seconds: clock.elapsed().as_secs_f64(),
        bytes,
    })
}

/// Deletes the objects of a failed upload.
pub(super) async fn remove(remote: &Remote, id: &str, keys: &[Key]) {
    tracing::warn!(id = %id, "upload failed; removing its objects");
    for key in keys {
        if let Err(e) = remote.store.delete(key).await {
            tracing::warn!(key = %key, error = %super::redact(&e.to_string()), "could not remove an object of the failed upload");
        }
    }
}

async fn upload_all(
    remote: &Remote,
    dir: &Path,
    m: &Manifest,
    cancel: &CancellationToken,
    done: &mut Vec<Key>,
) -> Result<u64, BackupError> {
    let mut total = 0;
    for f in &m.files {
        let rel = manifest::inside(&f.path).map_err(BackupError::Options)?;
        let key = remote.key(&m.id, &f.path);
        done.push(key.clone());
        let sent = put_file(remote, &dir.join(rel), &m.id, &f.path, cancel).await?;
        if sent.bytes != f.bytes || sent.sha256 != f.sha256 {
            return Err(BackupError::Remote {
                url: remote.url(),
                message: format!(
                    "{key}: uploaded {} bytes with sha256 {}, the manifest says {} bytes with sha256 {}; the local file changed while it was uploaded",
                    sent.bytes, sent.sha256, f.bytes, f.sha256
                ),
            });
        }
        check_stored(remote, &key, sent.bytes).await?;
        total += sent.bytes;
    }
    done.push(remote.key(&m.id, MANIFEST));
    put_manifest(remote, m).await?;
    Ok(total)
}

/// Streams one file into a multipart upload; its size and sha256 as sent. An error or a
/// cancellation aborts the upload, so no parts are left on the server.
async fn put_file(
    remote: &Remote,
    path: &Path,
    id: &str,
    rel: &str,
    cancel: &CancellationToken,
) -> Result<Sent, BackupError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(BackupError::io("open", path))?;
    let mut sink = Sink::open(remote, id, rel).await?;
    let mut buf = vec![0u8; 1 << 20];
    let streamed: Result<(), BackupError> = async {
        loop {
            if cancel.is_cancelled() {
                return Err(BackupError::Cancelled);
            }
            let n = file.read(&mut buf).await.map_err(BackupError::io("read", path))?;
            if n == 0 {
                return Ok(());
            }
            sink.write(&buf[..n]).await?;
        }
    }
    .await;
    if let Err(e) = streamed {
        sink.abort().await;
        return Err(e);
    }
    sink.finish().await
}

/// The stored size of `key`, read back, against what was sent.
pub(super) async fn check_stored(remote: &Remote, key: &Key, sent: u64) -> Result<(), BackupError> {
    let head = remote
        .store
        .head(key)
        .await
        .map_err(|e| remote.err(&format!("read back {key}"), e))?;
    if head.size != sent {
        return Err(BackupError::Remote {
            url: remote.url(),
            message: format!("{key}: the store holds {} bytes, {sent} were sent", head.size),
        });
    }
    Ok(())
}

/// Writes the manifest, the last object of a backup: its presence means complete.
pub(super) async fn put_manifest(remote: &Remote, m: &Manifest) -> Result<(), BackupError> {
    let text = serde_json::to_vec_pretty(m).map_err(|e| BackupError::Options(e.to_string()))?;
    let key = remote.key(&m.id, MANIFEST);
    remote
        .store
        .put(&key, PutPayload::from(text))
        .await
        .map(|_| ())
        .map_err(|e| remote.err(&format!("write {key}"), e))
}
