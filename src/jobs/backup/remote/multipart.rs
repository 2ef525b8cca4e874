//! One object written as a multipart upload that a killed process cannot leave billable:
//! the upload's id is recorded in a small marker object (`PREFIX/.dbtool-pending/ID/FILE`)
//! before its first part, and the marker deleted once the upload is completed or aborted.
//! S3 lists no multipart uploads through `object_store`, so the markers are how the next run
//! (and `backups prune`) finds what a `kill -9` left, aborts it and deletes the marker.
//!
//! Memory is bounded: one `PART` being filled, at most `IN_FLIGHT` parts uploading.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{MultipartId, ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::super::error::BackupError;
use super::Remote;

/// 8 MiB parts (S3's minimum is 5 MiB, its maximum count 10,000: 80 GB a file).
pub const PART: usize = 8 << 20;
/// Parts uploading at once: memory stays near PART × (IN_FLIGHT + 1).
pub const IN_FLIGHT: usize = 2;
/// The markers' folder under the prefix; never a backup id (ids do not start with a dot).
pub const PENDING: &str = ".dbtool-pending";

/// What a marker holds: enough to abort the upload.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    key: String,
    upload_id: String,
    /// When the upload began (the store's own time of the marker when absent).
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
}

/// An open multipart upload of one object; `finish` or `abort` it.
pub struct Sink<'a> {
    remote: &'a Remote,
    key: Key,
    marker: Key,
    id: MultipartId,
    buf: Vec<u8>,
    in_flight: VecDeque<JoinHandle<object_store::Result<PartId>>>,
    parts: Vec<PartId>,
    hash: Sha256,
    bytes: u64,
}

/// Size and sha256 of the bytes an upload sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub bytes: u64,
    pub sha256: String,
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl<'a> Sink<'a> {
    /// Starts the upload of `rel` in backup `id` and records it before any part is sent.
    pub async fn open(remote: &'a Remote, id: &str, rel: &str) -> Result<Sink<'a>, BackupError> {
        let key = remote.key(id, rel);
        let marker = remote.key(PENDING, &format!("{id}/{rel}"));
        let upload = remote
            .store
            .create_multipart(&key)
            .await
            .map_err(|e| remote.err(&format!("start the upload of {key}"), e))?;
        let text = serde_json::to_vec(&Marker {
            key: key.to_string(),
            upload_id: upload.clone(),
            started_at: Some(Utc::now()),
        })
        .map_err(|e| BackupError::Options(e.to_string()))?;
        if let Err(e) = remote.store.put(&marker, PutPayload::from(text)).await {
            let _ = remote.store.abort_multipart(&key, &upload).await;
            return Err(remote.err(&format!("write {marker}"), e));
        }
        Ok(Sink {
            remote,
            key,
            marker,
            id: upload,
            buf: Vec::with_capacity(PART),
            in_flight: VecDeque::new(),
            parts: Vec::new(),
            hash: Sha256::new(),
            bytes: 0,
        })
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Appends `data`; a full part is sent once fewer than `IN_FLIGHT` are uploading.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), BackupError> {
        self.hash.update(data);
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            let take = (PART - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == PART {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    async fn wait_one(&mut self) -> Result<(), BackupError> {
        if let Some(h) = self.in_flight.pop_front() {
            let part = h
                .await
                .map_err(|e| BackupError::Options(format!("an upload task failed: {e}")))?
                .map_err(|e| self.remote.err(&format!("upload a part of {}", self.key), e))?;
            self.parts.push(part);
        }
        Ok(())
    }

    async fn send_part(&mut self) -> Result<(), BackupError> {
        while self.in_flight.len() >= IN_FLIGHT {
            self.wait_one().await?;
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(PART));
        let idx = self.parts.len() + self.in_flight.len();
        let (store, key, id) = (self.remote.store.clone(), self.key.clone(), self.id.clone());
        // object_store retries a part on 5xx and timeouts (a part is idempotent).
        self.in_flight.push_back(tokio::spawn(async move {
            store.put_part(&key, &id, idx, PutPayload::from(data)).await
        }));
        Ok(())
    }

    /// Sends the last part, completes the upload, deletes the marker; what was sent.
    pub async fn finish(mut self) -> Result<Sent, BackupError> {
        let done = async {
            // S3 completes no upload without a part: an empty object is one empty part.
            if !self.buf.is_empty() || self.parts.is_empty() && self.in_flight.is_empty() {
                self.send_part().await?;
            }
            while !self.in_flight.is_empty() {
                self.wait_one().await?;
            }
            let parts = std::mem::take(&mut self.parts);
            (self.remote.store)
                .complete_multipart(&self.key, &self.id, parts)
                .await
                .map_err(|e| self.remote.err(&format!("complete the upload of {}", self.key), e))
        }
        .await;
        if let Err(e) = done {
            self.abort().await;
            return Err(e);
        }
        forget_marker(self.remote, &self.marker).await;
        Ok(Sent {
            bytes: self.bytes,
            sha256: hex(&self.hash.clone().finalize()),
        })
    }

    /// Stops the parts in flight, aborts the upload (its parts are freed), deletes the marker.
    /// A failed abort keeps the marker, so the next run tries again.
    pub async fn abort(mut self) {
        for h in self.in_flight.drain(..) {
            h.abort();
        }
        match self.remote.store.abort_multipart(&self.key, &self.id).await {
            Ok(()) => forget_marker(self.remote, &self.marker).await,
            Err(e) => {
                tracing::warn!(key = %self.key, error = %super::redact(&e.to_string()), "could not abort the multipart upload; the next run retries")
            }
        }
    }
}

impl Drop for Sink<'_> {
    fn drop(&mut self) {
        // A dropped run (a scheduler's timeout) sends no more parts; the marker stays for the
        // next run to abort the upload.
        for h in self.in_flight.drain(..) {
            h.abort();
        }
    }
}

async fn forget_marker(remote: &Remote, marker: &Key) {
    if let Err(e) = remote.store.delete(marker).await {
        tracing::warn!(key = %marker, error = %super::redact(&e.to_string()), "could not delete the upload's marker");
    }
}

/// Aborts the multipart uploads recorded by markers and deletes the markers: of backup ids
/// `mine` accepts (a run: its database's, whose lock it holds), and with `older` only uploads
/// begun before it (`backups prune`: another run may be uploading right now). The backup ids
/// whose uploads were aborted.
pub async fn abort_pending(
    remote: &Remote,
    mine: impl Fn(&str) -> bool,
    older: Option<DateTime<Utc>>,
    dry_run: bool,
) -> Result<Vec<String>, BackupError> {
    let folder = Key::from(remote.join(PENDING));
    let strip = format!("{}/", folder.as_ref());
    let mut found = Vec::new();
    let mut stream = remote.store.list(Some(&folder));
    while let Some(meta) = stream.next().await {
        let meta = meta.map_err(|e| remote.err("list the pending uploads", e))?;
        let Some((id, _)) = (meta.location.as_ref().strip_prefix(strip.as_str())).and_then(|r| r.split_once('/'))
        else {
            continue;
        };
        if mine(id) {
            found.push((id.to_string(), meta));
        }
    }
    let mut aborted = Vec::new();
    for (id, meta) in found {
        let marker = read_marker(remote, &meta.location).await?;
        let began = marker.as_ref().and_then(|m| m.started_at).unwrap_or(meta.last_modified);
        if older.is_some_and(|t| began >= t) {
            continue;
        }
        if !dry_run {
            abort_recorded(remote, &meta.location, marker).await?;
        }
        tracing::info!(id = %id, marker = %meta.location, "aborted the multipart upload of an unfinished run");
        if !aborted.contains(&id) {
            aborted.push(id);
        }
    }
    Ok(aborted)
}

/// A marker's record; None when it does not parse (it records nothing abortable).
async fn read_marker(remote: &Remote, marker: &Key) -> Result<Option<Marker>, BackupError> {
    let got = remote
        .store
        .get(marker)
        .await
        .map_err(|e| remote.err(&format!("read {marker}"), e))?;
    let body = got
        .bytes()
        .await
        .map_err(|e| remote.err(&format!("read {marker}"), e))?;
    Ok(serde_json::from_slice::<Marker>(&body).ok())
}

/// Aborts the upload a marker records (one already completed or aborted is gone: fine), then
/// deletes the marker.
async fn abort_recorded(remote: &Remote, marker: &Key, record: Option<Marker>) -> Result<(), BackupError> {
    if let Some(m) = record {
        let key = Key::from(m.key.as_str());
        match remote.store.abort_multipart(&key, &m.upload_id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote.err(&format!("abort the upload of {key}"), e)),
        }
    }
    remote
        .store
        .delete(marker)
        .await
        .map_err(|e| remote.err(&format!("delete {marker}"), e))
}

#[cfg(test)]
mod tests {
    use super::Marker;

    #[test]
    fn a_marker_without_a_start_time_still_parses() {
        let m: Marker = serde_json::from_str(r#"{"key":"p/app_1/app.dump","upload_id":"u1"}"#).expect("marker");
        assert_eq!(
            (m.key.as_str(), m.upload_id.as_str(), m.started_at),
            ("p/app_1/app.dump", "u1", None)
        );
    }
}
