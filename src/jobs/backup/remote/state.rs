//! The metrics state of a `--dest s3://…` destination (failure counters, last attempt, upload
//! figures, undelivered notifications): the object `PREFIX/.dbtool-backup-state.json`, beside
//! the backups as the file is in a backup directory, so the counters grow from one run to the
//! next. A run fetches it into its private directory, where `metrics.rs` reads and updates it
//! as it would in a directory, and puts it back after each recorded attempt.
//!
//! The object sits at the top of the prefix, not under an `ID/`, so it never lists, verifies,
//! restores or prunes as a backup, and the clean-up of unfinished uploads never sees it
//! (`mirror::list` keeps only `ID/…` keys).
//!
//! Two hosts backing up into one prefix at once each read, count and put the whole object: the
//! last writer wins, and the other's counts since its read are lost. Accepted for a small
//! counter file that no backup, listing or retention depends on.

use std::path::Path;

use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload};

use super::super::metrics::{State, STATE_FILE};
use super::Remote;

/// Larger than any state dbtool writes by far; a bigger object is not ours to load.
const MAX_BYTES: u64 = 1 << 20;

/// The state object's key: `PREFIX/.dbtool-backup-state.json`.
pub fn key(remote: &Remote) -> Key {
    Key::from(remote.join(STATE_FILE))
}

/// Copies the state object into `dir` for `metrics::load_state`. Missing or unreadable: no
/// file, so the run starts from an empty state (logged; never fails the backup).
pub async fn fetch(remote: &Remote, dir: &Path) {
    let key = key(remote);
    let at = format!("{}/{STATE_FILE}", remote.url());
    let got = match remote.store.get(&key).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => {
            tracing::info!(state = %at, "no backup state in the destination yet; the counters start at 0");
            return;
        }
        Err(e) => {
            let e = remote.err(&format!("read {key}"), e);
            tracing::info!(state = %at, error = %e, "could not read the backup state; the counters start at 0");
            return;
        }
    };
    if got.meta.size > MAX_BYTES {
        tracing::info!(state = %at, bytes = got.meta.size, "the backup state is too large to be dbtool's; the counters start at 0");
        return;
    }
    let bytes = match got.bytes().await {
        Ok(b) => b,
        Err(e) => {
            let e = remote.err(&format!("read {key}"), e);
            tracing::info!(state = %at, error = %e, "could not read the backup state; the counters start at 0");
            return;
        }
    };
    if let Err(e) = serde_json::from_slice::<State>(&bytes) {
        tracing::info!(state = %at, error = %e, "the backup state is not readable; the counters start at 0");
        return;
    }
    if let Err(e) = crate::report::atomic::write_private(&dir.join(STATE_FILE), &bytes) {
        tracing::info!(path = %e.path.display(), error = %e.source, "could not keep the backup state for the run; the counters start at 0");
    }
}

/// Puts the run's state (the file `metrics.rs` updated in `dir`) back into the store. A
/// failure is logged and never fails the backup: the counters may undercount, nothing else.
pub async fn put(remote: &Remote, dir: &Path) {
    let path = dir.join(STATE_FILE);
    let Ok(bytes) = std::fs::read(&path) else {
        // Nothing recorded (or it could not be written locally: logged by `metrics::save`).
        return;
    };
    let key = key(remote);
    if let Err(e) = remote.store.put(&key, PutPayload::from(bytes)).await {
        let e = remote.err(&format!("write {key}"), e);
        tracing::warn!(error = %e, "could not save the backup state in the destination; the failure counter may undercount");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_state_object_sits_at_the_top_of_the_prefix_outside_every_backup_id() {
        let r = Remote::parse(Path::new("s3://b/x/y")).expect("parse");
        assert_eq!(key(&r).as_ref(), "x/y/.dbtool-backup-state.json");
        let r = Remote::parse(Path::new("s3://b")).expect("parse");
        assert_eq!(key(&r).as_ref(), ".dbtool-backup-state.json");
    }
}
