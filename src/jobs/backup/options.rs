//! `BackupOptions`: the `[backup]` config section, the `dbtool backup` flags and (later) a
//! scheduler job's settings, all one struct so the three can never drift apart.

use std::path::PathBuf;

use serde::Deserialize;

use crate::duration::HumanDuration;

/// pg_dump's archive format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormat {
    /// One compressed file (`pg_dump -Fc`)
    #[default]
    Custom,
    /// A directory, one file per table; allows `--jobs N` (`pg_dump -Fd`)
    Directory,
}

/// How hard a backup is test-read before it counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VerifyLevel {
    /// `pg_restore --list`: the archive's table of contents reads back
    #[default]
    List,
    /// `pg_restore -f /dev/null`: every data block reads back
    Full,
}

/// Grandfather-father-son retention, per series: backups of one database with the same
/// contents (globals or not, files or not). Only verified backups count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The N newest backups (default 0).
    pub keep_last: u32,
    /// The newest backup of each of the last N days that have one (default 7).
    pub keep_daily: u32,
    /// The newest backup of each of the last N ISO weeks that have one (default 4).
    pub keep_weekly: u32,
    /// The newest backup of each of the last N months that have one (default 6).
    pub keep_monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_last: 0,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
        }
    }
}

/// Everything a backup run needs besides the target and the cancellation token.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupOptions {
    /// Destination: a directory, or object storage as `s3://BUCKET/PREFIX` (required).
    pub dest: Option<PathBuf>,
    /// Also upload each verified backup to `s3://BUCKET/PREFIX`, keeping the local one
    /// (default none).
    pub copy_to: Option<PathBuf>,
    /// Databases to dump (default: the target's own database).
    #[serde(default)]
    pub databases: Vec<String>,
    /// Every database that accepts connections, templates excepted (default false).
    #[serde(default)]
    pub all: bool,
    /// "custom" (default) or "directory".
    #[serde(default)]
    pub format: DumpFormat,
    /// Parallel pg_dump workers; directory format only (default 1).
    pub jobs: Option<u32>,
    /// pg_dump `-Z`: a level "6", or "zstd", "zstd:3", "lz4", "gzip:9", "none"
    /// (default: zstd when pg_dump is 16 or newer, else pg_dump's own gzip default).
    #[serde(default, deserialize_with = "super::compress::de_spec")]
    pub compress: Option<String>,
    /// Add a `pg_dumpall --globals-only` file (roles, tablespaces) to each backup (default false).
    #[serde(default)]
    pub globals: bool,
    /// Directories or files archived beside the dump as files.tar.gz (default none).
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// How hard to test-read the dump before it counts (default "list").
    #[serde(default)]
    pub verify: VerifyLevel,
    /// pg_dump `--lock-wait-timeout`: give up instead of waiting behind a lock (default: wait).
    pub lock_wait_timeout: Option<HumanDuration>,
    // Retention, inlined rather than a flattened struct: serde cannot combine `flatten`
    // with `deny_unknown_fields`, and a misspelt `keep_dayly` must be an error.
    /// The N newest backups (default 0).
    pub keep_last: Option<u32>,
    /// The newest backup of each of the last N days that have one (default 7).
    pub keep_daily: Option<u32>,
    /// The newest backup of each of the last N ISO weeks that have one (default 4).
    pub keep_weekly: Option<u32>,
    /// The newest backup of each of the last N months that have one (default 6).
    pub keep_monthly: Option<u32>,
    /// Apply retention after a successful backup (default true).
    pub prune: Option<bool>,
    /// Prometheus textfile to write after the run (default none).
    pub metrics: Option<PathBuf>,
    /// Encrypt to these age public keys (`age1…`); the dump is compressed, then encrypted,
    /// and written as `NAME.dump.age` (default none: not encrypted).
    #[serde(default)]
    pub encrypt_to: Vec<String>,
    /// A file of age public keys, one a line, `#` comments (default none).
    pub recipients_file: Option<PathBuf>,
    /// Show a progress line on stderr; set by the command when stderr is a terminal, never
    /// from a file (a scheduled job has no terminal).
    #[serde(skip)]
    pub progress: bool,
}

impl BackupOptions {
    pub fn retention(&self) -> Retention {
        let d = Retention::default();
        Retention {
            keep_last: self.keep_last.unwrap_or(d.keep_last),
            keep_daily: self.keep_daily.unwrap_or(d.keep_daily),
            keep_weekly: self.keep_weekly.unwrap_or(d.keep_weekly),
            keep_monthly: self.keep_monthly.unwrap_or(d.keep_monthly),
        }
    }

    /// The age recipients to encrypt to; empty when the backup is not encrypted.
    pub fn recipients(&self) -> Result<super::crypt::Recipients, super::BackupError> {
        super::crypt::Recipients::load(&self.encrypt_to, self.recipients_file.as_deref())
    }

    pub fn prune_after(&self) -> bool {
        self.prune.unwrap_or(true)
    }
}
