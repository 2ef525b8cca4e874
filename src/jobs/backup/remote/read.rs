//! Reading a custom-format backup straight from object storage, with no local copy: a GET's
//! byte stream is hashed as it arrives, decrypted (age, in a blocking thread) when the backup
//! is encrypted, and fed to pg_restore's stdin.
//!
//! pg_restore reads stdin sequentially and would act on bytes before the stream's hash is
//! known, so a restore reads twice (`restore.rs`): a first pass hashes every object (and the
//! decrypted dump) and keeps nothing, and only when all match is the target created and the
//! dump streamed again into pg_restore, pinned to the object version the first pass checked
//! (`If-Match` on its ETag). A corrupt or replaced object therefore restores nothing.
//! `backups verify` writes nothing, so it reads once: the test-read and the hashes together.

use std::io::Read;
use std::process::Stdio;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{GetOptions, ObjectStore};
use sha2::{Digest, Sha256};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::super::crypt::Identities;
use super::super::error::BackupError;
use super::super::manifest::{FileEntry, Manifest};
use super::super::pipe::{self, Plain};
use super::multipart::Sent;
use super::Remote;

/// Chunks in flight between the download, the decryption and pg_restore (bounded memory).
const QUEUE: usize = 4;

/// What a streamed read of the dump saw.
pub struct Streamed {
    /// The stored bytes (encrypted, for an encrypted backup).
    pub stored: Sent,
    /// The decrypted bytes, when decrypted.
    pub plain: Option<Plain>,
    /// The version read, for the second pass of a restore.
    pub etag: Option<String>,
    /// How the reader (pg_restore) ended, when there was one.
    pub consumer: Result<(), BackupError>,
}

fn entry<'a>(m: &'a Manifest, path: &str) -> Result<&'a FileEntry, BackupError> {
    m.files
        .iter()
        .find(|f| f.path == path)
        .ok_or_else(|| BackupError::Corrupt {
            id: m.id.clone(),
            message: format!("{path} has no checksum in the manifest"),
        })
}

/// The stored bytes of `path` against the manifest.
pub fn check_sent(m: &Manifest, path: &str, got: &Sent) -> Result<(), BackupError> {
    let want = entry(m, path)?;
    if got.bytes == want.bytes && got.sha256 == want.sha256 {
        return Ok(());
    }
    Err(BackupError::Corrupt {
        id: m.id.clone(),
        message: format!(
            "{path} is {} bytes with sha256 {}…, the manifest says {} bytes with sha256 {}…: the object changed in the store; restore another backup (`dbtool backups list`)",
            got.bytes,
            got.sha256.get(..12).unwrap_or_default(),
            want.bytes,
            want.sha256.get(..12).unwrap_or_default()
        ),
    })
}

/// Downloads `path` of backup `m` and hashes it, keeping nothing; checked against the manifest.
pub async fn hash_object(remote: &Remote, m: &Manifest, path: &str) -> Result<Option<String>, BackupError> {
    let key = remote.key(&m.id, path);
    let got = (remote.store.get(&key).await).map_err(|e| remote.err(&format!("read {key}"), e))?;
    let etag = got.meta.e_tag.clone();
    let mut stream = got.into_stream();
    let (mut hash, mut bytes) = (Sha256::new(), 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| remote.err(&format!("read {key}"), e))?;
        hash.update(&chunk);
        bytes += chunk.len() as u64;
    }
    let sent = Sent {
        bytes,
        sha256: pipe::hex(&hash.finalize()),
    };
    check_sent(m, path, &sent)?;
    Ok(etag)
}

/// Every file of `m` but the dump, hashed.
pub async fn hash_others(remote: &Remote, m: &Manifest) -> Result<(), BackupError> {
    for f in m.files.iter().filter(|f| f.path != m.dump) {
        hash_object(remote, m, &f.path).await?;
    }
    Ok(())
}

/// Streams the dump of `m` (decrypted with `keys` when given) into `consumer`'s stdin, or
/// nowhere, reading the whole object whatever the consumer does so that its hash is complete.
/// With `if_match`, the store refuses a version other than the one a first pass checked.
pub async fn stream_dump(
    remote: &Remote,
    m: &Manifest,
    keys: Option<&Identities>,
    consumer: Option<Command>,
    if_match: Option<String>,
    cancel: &CancellationToken,
) -> Result<Streamed, BackupError> {
    let key = remote.key(&m.id, &m.dump);
    let opts = GetOptions {
        if_match,
        ..GetOptions::default()
    };
    let got = (remote.store.get_opts(&key, opts).await).map_err(|e| remote.err(&format!("read {key}"), e))?;
    let etag = got.meta.e_tag.clone();
    let mut body = got.into_stream();
    // The download: stored bytes hashed, passed on.
    let (cipher_tx, cipher_rx) = mpsc::channel::<Bytes>(QUEUE);
    let r = remote.clone();
    let k = key.clone();
    let download = tokio::spawn(async move {
        let (mut hash, mut bytes) = (Sha256::new(), 0u64);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| r.err(&format!("read {k}"), e))?;
            hash.update(&chunk);
            bytes += chunk.len() as u64;
            if cipher_tx.send(chunk).await.is_err() {
                break;
            }
        }
        Ok::<_, BackupError>(Sent {
            bytes,
            sha256: pipe::hex(&hash.finalize()),
        })
    });
    // The plaintext: the stored bytes, or what age decrypts from them.
    let (mut plain_rx, decrypt) = match keys {
        None => (cipher_rx, None),
        Some(keys) => {
            let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
            let (keys, m2) = (keys.clone(), m.clone());
            let task = tokio::task::spawn_blocking(move || decrypt_into(cipher_rx, tx, &keys, &m2));
            (rx, Some(task))
        }
    };
    let mut reader = consumer
        .map(|c| pipe::spawn(c, Stdio::piped(), Stdio::null()))
        .transpose()?;
    let mut sink = reader.as_mut().and_then(|r| r.child.stdin.take());
    let program = reader.as_ref().map(|r| r.program.clone()).unwrap_or_default();
    let (mut hash, mut bytes) = (Sha256::new(), 0u64);
    loop {
        let chunk = tokio::select! {
            c = plain_rx.recv() => c,
            _ = cancel.cancelled() => {
                if let Some(r) = reader.as_mut() {
                    let _ = r.child.kill().await;
                }
                download.abort();
                return Err(BackupError::Cancelled);
            }
        };
        let Some(chunk) = chunk else { break };
        hash.update(&chunk);
        bytes += chunk.len() as u64;
        // A reader that stopped (`--list` after the table of contents, or a failure) is let go;
        // its exit status says which.
        pipe::feed(&mut sink, &chunk, &program).await?;
    }
    drop(sink);
    let consumer = match reader {
        Some(r) => r.finish(&[]).await,
        None => Ok(()),
    };
    if let Some(task) = decrypt {
        task.await
            .map_err(|e| BackupError::Options(format!("the decryption task failed: {e}")))??;
    }
    let stored = download
        .await
        .map_err(|e| BackupError::Options(format!("the download task failed: {e}")))??;
    let plain = keys.map(|_| Plain {
        bytes,
        sha256: pipe::hex(&hash.finalize()),
    });
    Ok(Streamed {
        stored,
        plain,
        etag,
        consumer,
    })
}

/// The blocking side of decryption: stored chunks in, plaintext chunks out.
fn decrypt_into(
    input: mpsc::Receiver<Bytes>,
    output: mpsc::Sender<Bytes>,
    keys: &Identities,
    m: &Manifest,
) -> Result<(), BackupError> {
    let source = ChannelRead {
        rx: input,
        cur: Bytes::new(),
    };
    let mut plain = pipe::open_reader(std::io::BufReader::with_capacity(pipe::CHUNK, source), m, keys)?;
    let mut buf = vec![0u8; pipe::CHUNK];
    loop {
        let n = plain.read(&mut buf).map_err(|e| BackupError::Corrupt {
            id: m.id.clone(),
            message: format!("decryption failed: {e}"),
        })?;
        if n == 0 {
            return Ok(());
        }
        if output.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
            return Ok(());
        }
    }
}

/// A channel of chunks as a `Read`, for age's synchronous reader (in a blocking thread).
struct ChannelRead {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_of_chunks_reads_as_one_stream() {
        let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
        for part in [&b"PGD"[..], b"", b"MP-1234"] {
            tx.try_send(Bytes::copy_from_slice(part)).expect("queue");
        }
        drop(tx);
        let mut r = ChannelRead { rx, cur: Bytes::new() };
        let mut out = Vec::new();
        let mut small = [0u8; 4];
        loop {
            let n = r.read(&mut small).expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&small[..n]);
        }
        assert_eq!(out, b"PGDMP-1234");
    }
}
