//! Shipping a sealed local backup to object storage: every file streamed through a multipart
//! upload (bounded memory: `PART` bytes a part, at most `IN_FLIGHT` parts in flight), its
//! sha256 computed from the very bytes sent and compared with the manifest, its size read
//! back from the store; the manifest goes last. Whatever fails, the objects already written
//! are deleted and the open upload aborted, so nothing is left that lists as a backup.

use std::path::Path;
use std::time::Instant;

use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::super::error::BackupError;
use super::super::manifest::{self, Manifest, MANIFEST};
use super::Remote;

/// 8 MiB parts (S3's minimum is 5 MiB, its maximum count 10,000: 80 GB a file).
const PART: usize = 8 << 20;
/// Parts uploading at once: memory stays near PART × (IN_FLIGHT + 1).
const IN_FLIGHT: usize = 2;

/// What one upload took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Uploaded {
    pub seconds: f64,
    pub bytes: u64,
}

/// Uploads backup `m` from `dir` (the sealed `DEST/ID`). Objects of a failed upload are
/// removed (best effort: what a killed process leaves is cleaned by the next run, see
/// `mirror::clean_unfinished`).
pub async fn upload(
    remote: &Remote,
    dir: &Path,
    m: &Manifest,
    cancel: &CancellationToken,
) -> Result<Uploaded, BackupError> {
    let clock = Instant::now();
    let mut done = Vec::new();
    let result = upload_all(remote, dir, m, cancel, &mut done).await;
    if let Err(e) = &result {
        tracing::warn!(id = %m.id, error = %e, "upload failed; removing its objects");
        for key in done {
            if let Err(e) = remote.store.delete(&key).await {
                tracing::warn!(key = %key, error = %super::redact(&e.to_string()), "could not remove an object of the failed upload");
            }
        }
    }
    let bytes = result?;
    Ok(Uploaded {
        seconds: clock.elapsed().as_secs_f64(),
        bytes,
    })
}

async fn upload_all(
    remote: &Remote,
    dir: &Path,
    m: &Manifest,
    cancel: &CancellationToken,
    done: &mut Vec<object_store::path::Path>,
) -> Result<u64, BackupError> {
    let mut total = 0;
    for f in &m.files {
        let rel = manifest::inside(&f.path).map_err(BackupError::Options)?;
        let key = remote.key(&m.id, &f.path);
        done.push(key.clone());
        let (bytes, sha) = put_file(remote, &dir.join(rel), &key, cancel).await?;
        if bytes != f.bytes || sha != f.sha256 {
            return Err(BackupError::Remote {
                url: remote.url(),
                message: format!(
                    "{}: uploaded {bytes} bytes with sha256 {sha}, the manifest says {} bytes with sha256 {}; the local file changed while it was uploaded",
                    key, f.bytes, f.sha256
                ),
            });
        }
        let head = remote
            .store
            .head(&key)
            .await
            .map_err(|e| remote.err(&format!("read back {key}"), e))?;
        if head.size != bytes {
            return Err(BackupError::Remote {
                url: remote.url(),
                message: format!("{key}: the store holds {} bytes, {bytes} were sent", head.size),
            });
        }
        total += bytes;
    }
    let text = serde_json::to_vec_pretty(m).map_err(|e| BackupError::Options(e.to_string()))?;
    let key = remote.key(&m.id, MANIFEST);
    done.push(key.clone());
    remote
        .store
        .put(&key, PutPayload::from(text))
        .await
        .map_err(|e| remote.err(&format!("write {key}"), e))?;
    Ok(total)
}

/// Streams one file into a multipart upload; its size and sha256 as sent. An error or a
/// cancellation aborts the upload, so no parts are left behind on the server.
async fn put_file(
    remote: &Remote,
    path: &Path,
    key: &object_store::path::Path,
    cancel: &CancellationToken,
) -> Result<(u64, String), BackupError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(BackupError::io("open", path))?;
    let upload = remote
        .store
        .put_multipart(key)
        .await
        .map_err(|e| remote.err(&format!("start the upload of {key}"), e))?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
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
            w.wait_for_capacity(IN_FLIGHT)
                .await
                .map_err(|e| remote.err(&format!("upload a part of {key}"), e))?;
            hash.update(&buf[..n]);
            w.write(&buf[..n]);
            bytes += n as u64;
        }
    }
    .await;
    if let Err(e) = streamed {
        if let Err(a) = w.abort().await {
            tracing::warn!(key = %key, error = %super::redact(&a.to_string()), "could not abort the multipart upload");
        }
        return Err(e);
    }
    w.finish()
        .await
        .map_err(|e| remote.err(&format!("complete the upload of {key}"), e))?;
    Ok((bytes, hex(&hash.finalize())))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
