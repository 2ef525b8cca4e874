//! Advisory lock keys: one scheme for every job kind, identical in every process and on every
//! host, so two replicas (or two versions of dbtool) that lock the same thing agree on the key.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

const TRY_LOCK_SQL: &str = include_str!("../../queries/advisory_lock.sql");
const UNLOCK_SQL: &str = include_str!("../../queries/advisory_unlock.sql");

/// What a lock protects. Each kind hashes under its own prefix, so a backup of database "x"
/// and a scheduled job named "x" never share a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// A database's backups (the name is the database).
    Backup,
    /// A table's archive runs (the name is the table's OID: a rename keeps the lock).
    Archive,
    /// A scheduled job's runs (the name is the job's name).
    Schedule,
    /// Migrations of dbtool's own schema in one database (transaction-level lock).
    Migrate,
}

impl Namespace {
    fn prefix(self) -> &'static str {
        match self {
            Namespace::Backup => "backup",
            Namespace::Archive => "archive",
            Namespace::Schedule => "schedule",
            Namespace::Migrate => "migrate",
        }
    }
}

/// The key of `name` in `namespace`: the first 8 bytes (big-endian) of
/// SHA-256("dbtool NAMESPACE\0NAME"). A cryptographic hash, not Rust's `DefaultHasher`
/// (seeded per process) or the server's `hashtext` (free to change between majors).
pub fn key(namespace: Namespace, name: &str) -> i64 {
    let digest = Sha256::digest(format!("dbtool {}\0{name}", namespace.prefix()).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Takes the session-level lock `key` without waiting; true when this session now holds it.
pub async fn try_lock(client: &Client, key: i64) -> Result<bool, tokio_postgres::Error> {
    client.query_one(TRY_LOCK_SQL, &[&key]).await?.try_get("locked")
}

/// Releases `key` if this session holds it; false when it did not.
pub async fn unlock(client: &Client, key: i64) -> Result<bool, tokio_postgres::Error> {
    client.query_one(UNLOCK_SQL, &[&key]).await?.try_get("released")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_pinned_so_every_version_and_host_agrees() {
        // Changing these values changes which runs exclude each other across an upgrade:
        // say so in the upgrade notes (docs/src/upgrading.md) if you ever must.
        assert_eq!(key(Namespace::Backup, "app"), BACKUP_APP);
        assert_eq!(key(Namespace::Archive, "16384"), ARCHIVE_16384);
        assert_eq!(key(Namespace::Schedule, "nightly"), SCHEDULE_NIGHTLY);
    }

    #[test]
    fn namespaces_keep_job_kinds_apart() {
        let kinds = [
            Namespace::Backup,
            Namespace::Archive,
            Namespace::Schedule,
            Namespace::Migrate,
        ];
        for a in kinds {
            for b in kinds.iter().filter(|b| **b != a) {
                assert_ne!(key(a, "x"), key(*b, "x"), "{a:?} and {b:?}");
            }
        }
        assert_ne!(key(Namespace::Backup, "app"), key(Namespace::Backup, "app2"));
    }

    // The same key as before the scheme was shared: backups keep excluding older dbtools.
    const BACKUP_APP: i64 = 4_560_449_202_927_350_156;
    const ARCHIVE_16384: i64 = -2_519_833_165_911_206_098;
    const SCHEDULE_NIGHTLY: i64 = 3_557_812_732_813_886_590;
}
