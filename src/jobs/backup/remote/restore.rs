//! `restore` and `backups verify` of a custom-format backup in object storage, streamed from
//! the store (`read.rs`): no local copy. A restore checks every object in a first pass before
//! the target database is touched, then streams the very version it checked into pg_restore.
//! What cannot read a pipe keeps the download (`Source::fetch`): a directory-format dump,
//! `--jobs`, `restore --check`, and an unencrypted restore through a newer pg_restore than
//! the server (rewritten as a script, see `crossver.rs`).

use tokio_util::sync::CancellationToken;

use crate::db::{ConnParams, SessionSettings};

use super::super::child::libpq_command;
use super::super::crypt::Identities;
use super::super::error::BackupError;
use super::super::manifest::Manifest;
use super::super::options::VerifyLevel;
use super::super::pgbin::{self, PgBin};
use super::super::pipe;
use super::super::restore::{admin_session, dbname_conninfo, prepare_target, PgRestoreArgs};
use super::super::verify::{self, Verified};
use super::read::{self, Streamed};
use super::Remote;

/// Whether `m` can be read from a pipe: one custom-format archive.
fn streamable(m: &Manifest) -> bool {
    m.format == "custom"
}

/// The manifest agrees with itself: the dump's recorded sha256 is its file's.
fn self_consistent(m: &Manifest) -> Result<(), BackupError> {
    if verify::dump_sha256(&m.files, &m.dump) == m.sha256 {
        return Ok(());
    }
    Err(BackupError::Corrupt {
        id: m.id.clone(),
        message: "the manifest's sha256 of the dump does not match its own file list: manifest.json was altered".into(),
    })
}

/// The stored (and decrypted) hashes of a streamed dump against the manifest.
fn check(m: &Manifest, got: &Streamed) -> Result<(), BackupError> {
    read::check_sent(m, &m.dump, &got.stored)?;
    if let (Some(enc), Some(plain)) = (&m.encryption, &got.plain) {
        pipe::check_plaintext(m, enc, plain)?;
    }
    Ok(())
}

/// `backups verify` from the store in one pass: checksums and the pg_restore test-read of
/// the same bytes. None: not streamable, fetch it.
pub async fn verify(
    remote: &Remote,
    m: &Manifest,
    bin: &PgBin,
    level: VerifyLevel,
    identities: Option<&Identities>,
    cancel: &CancellationToken,
) -> Result<Option<Verified>, BackupError> {
    if !streamable(m) {
        return Ok(None);
    }
    self_consistent(m)?;
    read::hash_others(remote, m).await?;
    if m.encryption.is_some() && identities.is_none() {
        read::hash_object(remote, m, &m.dump).await?;
        return Ok(Some(Verified::ChecksumsOnly));
    }
    let keys = identities.filter(|_| m.encryption.is_some());
    let cmd = verify::read_command(bin, level, None);
    let got = read::stream_dump(remote, m, keys, Some(cmd), None, cancel).await?;
    // A mismatch is the answer even when pg_restore also failed on the same bytes.
    check(m, &got)?;
    got.consumer.map_err(|e| BackupError::Corrupt {
        id: m.id.clone(),
        message: format!("pg_restore cannot read the dump: {e}"),
    })?;
    Ok(Some(Verified::Read))
}

/// Restores `m` into `into` from the store: every object hashed first (the dump decrypted and
/// its plaintext hashed too), then the target prepared and the dump streamed into pg_restore,
/// `If-Match` the checked version. Ok(false): not streamable here, fetch it.
#[allow(clippy::too_many_arguments)]
pub async fn restore(
    remote: &Remote,
    m: &Manifest,
    server: &ConnParams,
    into: &str,
    settings: &SessionSettings,
    args: &PgRestoreArgs,
    cancel: &CancellationToken,
) -> Result<bool, BackupError> {
    if !streamable(m) || args.parallel().is_some() {
        return Ok(false);
    }
    let s = admin_session(settings);
    let (probe, major) = crate::jobs::backup::restore::probe_server(server, &s).await?;
    drop(probe);
    let bin = pgbin::find(major).await?;
    let keys = match &m.encryption {
        None if bin.major > major => return Ok(false),
        None => None,
        Some(enc) => {
            let Some(keys) = &args.identities else {
                return Err(BackupError::NeedsKey {
                    id: m.id.clone(),
                    recipients: enc.recipients.join(", "),
                });
            };
            if let Some(e) = super::super::restore_age::refuse_newer(m, &bin, major) {
                return Err(e);
            }
            Some(keys)
        }
    };
    self_consistent(m)?;
    read::hash_others(remote, m).await?;
    // First pass: nothing is restored until every byte is known good.
    let first = read::stream_dump(remote, m, keys, None, None, cancel).await?;
    check(m, &first)?;
    prepare_target(server, &s, into).await?;
    let mut cmd = libpq_command(&bin.pg_restore(), Some(&server.with_dbname(into)))?;
    cmd.args(["--no-password", "--exit-on-error"])
        .arg(format!("--dbname={}", dbname_conninfo(into)))
        .args(args.args());
    let second = read::stream_dump(remote, m, keys, Some(cmd), first.etag, cancel).await?;
    check(m, &second)?;
    second.consumer?;
    Ok(true)
}
