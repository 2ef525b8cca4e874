//! `restore` of an encrypted backup: the key matched before the target database is
//! created, the dump decrypted as it streams into pg_restore's stdin, its plaintext sha256
//! checked against the manifest.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::db::{ConnParams, SessionSettings};

use super::child::libpq_command;
use super::error::BackupError;
use super::manifest::Manifest;
use super::pgbin;
use super::pipe;
use super::restore::{dbname_conninfo, prepare_target, PgRestoreArgs};

/// An encrypted backup: the key is matched before the target is created, then the dump is
/// decrypted into pg_restore's stdin and its plaintext hash checked against the manifest.
#[allow(clippy::too_many_arguments)]
pub(super) async fn restore(
    archive: &Path,
    m: &Manifest,
    server: &ConnParams,
    into: &str,
    s: &SessionSettings,
    bin: &pgbin::PgBin,
    major: u32,
    args: &PgRestoreArgs,
    cancel: &CancellationToken,
) -> Result<(), BackupError> {
    let enc = m.encryption.as_ref().ok_or(BackupError::NotFound(m.id.clone()))?;
    let Some(keys) = &args.identities else {
        return Err(BackupError::NeedsKey {
            id: m.id.clone(),
            recipients: enc.recipients.join(", "),
        });
    };
    if args.parallel().is_some() {
        return Err(BackupError::Options(format!(
            "backup {} is encrypted: pg_restore reads it from a pipe, which --jobs cannot use; drop --jobs",
            m.id
        )));
    }
    // The key first: a wrong identity is the answer whatever else would stand in the way.
    let plain = pipe::open_encrypted(archive, m, keys)?;
    if let Some(e) = refuse_newer(m, bin, major) {
        return Err(e);
    }
    prepare_target(server, s, into).await?;
    let mut cmd = libpq_command(&bin.pg_restore(), Some(&server.with_dbname(into)))?;
    cmd.args(["--no-password", "--exit-on-error"])
        .arg(format!("--dbname={}", dbname_conninfo(into)))
        .args(args.args());
    let got = pipe::restore_from(plain, cmd, false, cancel).await?;
    pipe::check_plaintext(m, enc, &got)
}

/// pg_restore 17+ begins with `SET transaction_timeout`, which older servers refuse; the
/// unencrypted path rewrites the script (crossver), a decrypting pipe cannot.
pub(super) fn refuse_newer(m: &Manifest, bin: &pgbin::PgBin, major: u32) -> Option<BackupError> {
    (bin.major >= 17 && major < 17).then(|| {
        BackupError::Options(format!(
            "backup {} is encrypted and pg_restore {} sets transaction_timeout, which the PostgreSQL {major} server lacks; install pg_restore {major}, or decrypt by hand (`age -d -i KEY FILE > dump`) and restore the dump",
            m.id, bin.version
        ))
    })
}
