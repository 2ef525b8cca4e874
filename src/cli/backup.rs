//! Flags of `dbtool backup`, `dbtool backups list|verify|prune` and `dbtool restore`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::output::OutputArgs;
use super::ConnArgs;
use crate::duration::parse_duration;
use crate::jobs::backup::{DumpFormat, VerifyLevel};

pub const BACKUP_EXIT_CODES: &str = "\
Exit codes:
  0  every backup was written, verified and renamed into place
  2  a backup failed (pg_dump failed or was killed, server gone, disk full, another backup
     running, too few free connections for --jobs …): the reason is on stderr, the failure
     is in --metrics, no finished-looking file is left and retention did not run
  3  bad arguments or configuration (no --dest, --jobs without --format directory, --metrics
     is a directory, a recipient that is not an age1… public key …)";

pub const LIST_EXIT_CODES: &str = "\
Exit codes:
  0  listed (an empty destination lists nothing)
  3  the destination cannot be read, bad arguments";

pub const VERIFY_EXIT_CODES: &str = "\
Exit codes:
  0  every checked backup matches its checksums and reads back with pg_restore
  2  a backup is corrupt or unreadable, a manifest is unreadable, garbled or names a path
     outside its backup, or the destination holds no backup (of --database): named on stderr
  3  no such backup id, bad arguments, an --identity that is unreadable or matches none of
     an encrypted backup's recipients";

pub const PRUNE_EXIT_CODES: &str = "\
Exit codes:
  0  retention applied (or, with --dry-run, listed)
  2  a backup could not be deleted
  3  bad arguments";

pub const RESTORE_EXIT_CODES: &str = "\
Exit codes:
  0  restored (with --check: restored into a scratch database, every table present with rows
     where the manifest expected rows and every object the manifest lists present, scratch
     database dropped)
  2  the restore or the check failed; or, before anything was restored: a file of the backup
     differs from its manifest sha256 (the file and both digests on stderr), a manifest path
     leaves the backup directory, or the server has too few free connections for --jobs
  3  no such backup, target database not empty, bad arguments; an encrypted backup without
     --identity, or whose recipients match no key of --identity (nothing restored)";

/// The backup directory, shared by every command that reads or writes backups.
#[derive(Debug, Args, Clone, Default)]
pub struct DestArgs {
    /// Backup directory, or object storage as s3://BUCKET/PREFIX (credentials, region and
    /// endpoint from the AWS_* environment, else the AWS profile) [default: `dest` in the config
    /// file's [backup] section]
    #[arg(long, env = "DBTOOL_BACKUP_DEST", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub dest: Option<PathBuf>,
}

/// Grandfather-father-son retention flags. Backups with different contents (database,
/// --globals, --files) are separate series, each retained on its own.
#[derive(Debug, Args, Clone, Default)]
pub struct KeepArgs {
    /// Keep the N newest backups of each series (database, globals, files) [default: 0]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N days [default: 7]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks [default: 4]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months [default: 6]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_monthly: Option<u32>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct BackupArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub dest: DestArgs,
    /// Database to back up (repeatable) [default: the connection's database]
    #[arg(long = "database", short = 'd', value_name = "NAME")]
    pub databases: Vec<String>,
    /// Back up every database that accepts connections (templates excepted)
    #[arg(long)]
    pub all: bool,
    /// pg_dump's archive format (not the output format: for JSON output use --json)
    /// [default: custom]
    #[arg(long, value_enum)]
    pub format: Option<DumpFormat>,
    /// Parallel pg_dump workers (needs --format directory); pg_dump opens N+1 connections,
    /// refused when the server has fewer free (max_connections minus reserved and in use)
    #[arg(long, short = 'j', value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Compression: a level 0-9, or METHOD[:LEVEL] with gzip, lz4, zstd (pg_dump 16+) or none
    /// [default: zstd with pg_dump 16+, else gzip]; a pg_dump built without zstd or lz4 falls
    /// back to lz4, then gzip, with a notice (the manifest records what was used)
    #[arg(long, short = 'Z', value_name = "SPEC", value_parser = crate::jobs::backup::compress::parse_spec)]
    pub compress: Option<String>,
    /// Also dump roles and tablespaces (pg_dumpall --globals-only) into globals.sql
    #[arg(long)]
    pub globals: bool,
    /// Archive these files or directories beside the dump as files.tar.gz (e.g. uploads)
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Test-read level before a backup counts: list (pg_restore --list) or full (every data block)
    #[arg(long, value_enum)]
    pub verify: Option<VerifyLevel>,
    /// pg_dump gives up instead of waiting longer than this for a table lock [default: wait]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub lock_wait_timeout: Option<std::time::Duration>,
    /// Also upload each verified backup to s3://BUCKET/PREFIX, keeping the local one; the
    /// copy is retained with the same --keep-* rules
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub copy_to: Option<PathBuf>,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Do not apply retention after a successful backup
    #[arg(long)]
    pub no_prune: bool,
    /// Write Prometheus metrics to FILE (0644, replaced atomically; a symlink is followed, a
    /// device or FIFO written into) for node_exporter's textfile collector
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Encrypt to this age public key (age1…, from `age-keygen`; repeatable): the dump is
    /// compressed, then encrypted as it streams, written as NAME.dump.age; never in plaintext
    /// on disk. Needs --format custom
    #[arg(long, value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// Encrypt to the age public keys in FILE (one a line, # comments), besides --encrypt-to
    #[arg(long, value_name = "FILE")]
    pub recipients_file: Option<PathBuf>,
    #[command(flatten)]
    pub notify: crate::notify::NotifyOptions,
    /// Print the result as one JSON object (`--format` here is pg_dump's archive format)
    #[arg(long)]
    pub json: bool,
}

/// The secret key of an encrypted backup.
#[derive(Debug, Args, Clone, Default)]
pub struct IdentityArgs {
    /// age identity file (AGE-SECRET-KEY-1… lines, as `age-keygen -o FILE` writes) to decrypt
    /// encrypted backups with; passphrase-protected identity files are refused
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// Every backup in the destination: database, start, duration, size, checksum, verified or not
    #[command(after_help = LIST_EXIT_CODES)]
    List(ListArgs),
    /// Recompute checksums and test-read backups with pg_restore [default: every backup]
    #[command(after_help = VERIFY_EXIT_CODES)]
    Verify(VerifyArgs),
    /// Apply retention: delete what --keep-* lets go, and unfinished leftovers older than a day
    #[command(after_help = PRUNE_EXIT_CODES)]
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub dest: DestArgs,
    /// Only backups of this database
    #[arg(long, short = 'd', value_name = "NAME")]
    pub database: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub dest: DestArgs,
    /// Backup id (see `dbtool backups list`)
    #[arg(conflicts_with = "latest")]
    pub id: Option<String>,
    /// The newest backup (of --database, when the destination holds several)
    #[arg(long)]
    pub latest: bool,
    /// Only backups of this database
    #[arg(long, short = 'd', value_name = "NAME")]
    pub database: Option<String>,
    /// Read every data block (pg_restore -f /dev/null), not just the table of contents
    #[arg(long)]
    pub full: bool,
    /// Decrypt encrypted backups with this key and test-read them (and check their plaintext
    /// sha256); without it an encrypted backup is checked by the sha256 of its encrypted bytes
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub dest: DestArgs,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Only this database's backups
    #[arg(long, short = 'd', value_name = "NAME")]
    pub database: Option<String>,
    /// List what would be deleted; delete nothing
    #[arg(long)]
    pub dry_run: bool,
    // JSON: deleted and kept backups with their series and why each is kept.
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Connection for --check when --to is not given (the scratch database goes on that server)
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub dest: DestArgs,
    /// Backup id (see `dbtool backups list`)
    #[arg(conflicts_with = "latest", required_unless_present = "latest")]
    pub id: Option<String>,
    /// The newest backup (of --database, when the destination holds several)
    #[arg(long)]
    pub latest: bool,
    /// With --latest: the database whose newest backup to restore
    #[arg(long, short = 'd', value_name = "NAME")]
    pub database: Option<String>,
    /// Where to restore: a DSN whose dbname is a new (created) or empty database
    #[arg(long, value_name = "DSN", required_unless_present = "check")]
    pub to: Option<String>,
    /// Restore into a scratch database, compare row counts and objects with the manifest, drop it
    #[arg(long)]
    pub check: bool,
    /// Parallel pg_restore workers; refused when the server has fewer than N free connections
    #[arg(long, short = 'j', value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Do not restore ownership (pg_restore --no-owner): for a server without the same roles
    #[arg(long)]
    pub no_owner: bool,
    /// Needed for an encrypted backup: decrypted as it streams into pg_restore
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}
