//! `ArchiveJob`: the `dbtool archive` flags, an `[[archive]]` section and a scheduled archive
//! job, one type so the three cannot drift apart. Flags are laid over the named section with
//! `over`; the defaults are the constants below.

use std::path::PathBuf;

use serde::Deserialize;

use super::{predicate, ArchiveError, ColumnType, Mode, Walk};
use crate::duration::{parse_human, HumanDuration};

/// Default rows per batch.
pub const DEFAULT_BATCH_SIZE: i64 = 5000;

/// One archive job: `[[archive]]` in the config file, or `dbtool archive` flags.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ArchiveJob {
    /// Name for `--job`, the job history and logs (default: the table).
    #[arg(skip)]
    pub name: Option<String>,
    /// Source table, schema.table (schema defaults to public)
    // Empty on the command line means "not given": `--job` may supply it.
    #[arg(long, value_name = "TABLE", default_value = "", hide_default_value = true)]
    pub table: String,
    /// The time column that decides a row's age
    #[arg(long, value_name = "COLUMN", default_value = "", hide_default_value = true)]
    pub column: String,
    /// How the column stores time [default: detected; required for integer columns]
    #[arg(long, value_enum, value_name = "TYPE")]
    pub column_type: Option<ColumnType>,
    /// Archive rows older than this: 2y, 18mo, 90d, 12h, or a PostgreSQL interval ('18 months')
    #[arg(long, value_name = "AGE", default_value = "", hide_default_value = true)]
    pub older_than: String,
    /// Destination table [default: archive.<table>], created on first use
    #[arg(long, value_name = "TABLE")]
    pub dest: Option<String>,
    /// Archive into another database (URL or conninfo): insert and commit there, then delete here
    #[arg(long, value_name = "DSN")]
    pub dest_dsn: Option<String>,
    /// Rows per batch [default: 5000]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
    pub batch_size: Option<i64>,
    /// Pause between batches, e.g. 50ms
    #[arg(long, value_parser = parse_human, value_name = "DURATION", allow_hyphen_values = true)]
    pub sleep: Option<HumanDuration>,
    /// Start no batch after this long, e.g. 30m
    #[arg(long, value_parser = parse_human, value_name = "DURATION", allow_hyphen_values = true)]
    pub max_runtime: Option<HumanDuration>,
    /// Pause while any standby's replay lag exceeds this, e.g. 10s
    #[arg(long, value_parser = parse_human, value_name = "DURATION", allow_hyphen_values = true)]
    pub max_lag: Option<HumanDuration>,
    /// Extra SQL condition on the source rows (alias s), e.g. "s.channelid <> 'town-square'";
    /// one condition, ANDed with the cutoff: unbalanced parentheses, ';' or unclosed quotes and
    /// comments are refused (exit 3)
    #[arg(long = "where", value_name = "SQL")]
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// Walk order [default: ctid on PostgreSQL 14+, key before]
    #[arg(long, value_enum)]
    pub walk: Option<Walk>,
    /// Copy only; leave the source rows in place
    #[arg(long)]
    #[serde(default)]
    pub no_delete: bool,
    /// Delete old rows without keeping a copy (needs --confirm-purge)
    #[arg(long)]
    #[serde(default)]
    pub purge: bool,
    /// Yes, really delete without a copy
    #[arg(long)]
    #[serde(default)]
    pub confirm_purge: bool,
    /// Count the rows and show the SQL; change nothing (read-only transaction, rolled back)
    #[arg(long)]
    #[serde(default)]
    pub dry_run: bool,
    /// Move the rows of TABLE whose COLUMN refers to a moved row, in the same batch (repeatable).
    /// PARENT_COLUMN defaults to the parent's key; `=other_table.column` hangs a grandchild
    /// under a child named before it. ON DELETE CASCADE children are found without this.
    #[arg(long = "child", value_name = "TABLE:COLUMN[=PARENT_COLUMN]")]
    #[serde(default)]
    pub children: Vec<String>,
    /// Accept a child column without an index (each batch then scans the child table)
    #[arg(long)]
    #[serde(default)]
    pub allow_seq_scan: bool,
    /// Fill in table, column, type, children and files for an application's schema
    /// (`--dry-run` shows the options it stands for); flags given win over it
    #[arg(long, value_enum, value_name = "NAME")]
    pub preset: Option<super::preset::Preset>,
    /// With --preset mattermost: archive pinned posts too (kept by default)
    #[arg(long)]
    #[serde(default)]
    pub include_pinned: bool,
    /// Columns of a child table that name application files, for --files-manifest:
    /// TABLE:COLUMN[,COLUMN...] (e.g. fileinfo:path,thumbnailpath,previewpath)
    #[arg(long, value_name = "TABLE:COLUMNS")]
    pub files_from: Option<String>,
    /// Append the files of archived rows (see --files-from) to FILE, one path per line, as
    /// each batch commits; dbtool never deletes application files
    #[arg(long, value_name = "FILE")]
    pub files_manifest: Option<PathBuf>,
    /// Write Prometheus metrics to FILE (atomically) at the end of the run
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// statement_timeout of dbtool's sessions (default: the global setting, 5s).
    // On the command line these are the connection flags `--statement-timeout`/`--lock-timeout`.
    #[arg(skip)]
    pub statement_timeout: Option<HumanDuration>,
    /// lock_timeout of dbtool's sessions (default: the global setting, 100ms).
    #[arg(skip)]
    pub lock_timeout: Option<HumanDuration>,
}

impl ArchiveJob {
    pub fn job_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.table.clone())
    }

    pub fn batch_size(&self) -> i64 {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    pub fn mode(&self) -> Mode {
        if self.purge {
            Mode::Purge
        } else if self.no_delete {
            Mode::Copy
        } else {
            Mode::Move
        }
    }

    /// These options where given, `base` (an `[[archive]]` section, or the defaults)
    /// elsewhere. A switch given here is on; one cannot be turned off from the command line.
    pub fn over(&self, base: &ArchiveJob) -> ArchiveJob {
        let text = |mine: &String, theirs: &String| {
            if mine.is_empty() {
                theirs.clone()
            } else {
                mine.clone()
            }
        };
        ArchiveJob {
            name: self.name.clone().or_else(|| base.name.clone()),
            table: text(&self.table, &base.table),
            column: text(&self.column, &base.column),
            column_type: self.column_type.or(base.column_type),
            older_than: text(&self.older_than, &base.older_than),
            dest: self.dest.clone().or_else(|| base.dest.clone()),
            dest_dsn: self.dest_dsn.clone().or_else(|| base.dest_dsn.clone()),
            batch_size: self.batch_size.or(base.batch_size),
            sleep: self.sleep.or(base.sleep),
            max_runtime: self.max_runtime.or(base.max_runtime),
            max_lag: self.max_lag.or(base.max_lag),
            filter: self.filter.clone().or_else(|| base.filter.clone()),
            walk: self.walk.or(base.walk),
            no_delete: self.no_delete || base.no_delete,
            purge: self.purge || base.purge,
            confirm_purge: self.confirm_purge || base.confirm_purge,
            dry_run: self.dry_run || base.dry_run,
            children: if self.children.is_empty() {
                base.children.clone()
            } else {
                self.children.clone()
            },
            allow_seq_scan: self.allow_seq_scan || base.allow_seq_scan,
            preset: self.preset.or(base.preset),
            include_pinned: self.include_pinned || base.include_pinned,
            files_from: self.files_from.clone().or_else(|| base.files_from.clone()),
            files_manifest: self.files_manifest.clone().or_else(|| base.files_manifest.clone()),
            metrics: self.metrics.clone().or_else(|| base.metrics.clone()),
            statement_timeout: self.statement_timeout.or(base.statement_timeout),
            lock_timeout: self.lock_timeout.or(base.lock_timeout),
        }
    }

    /// Checks combinations the types cannot express.
    pub fn validate(&self) -> Result<(), ArchiveError> {
        let name = self.job_name();
        let bad = |why: &str| Err(ArchiveError::Config(format!("archive job '{name}': {why}")));
        if self.table.trim().is_empty() || self.column.trim().is_empty() || self.older_than.trim().is_empty() {
            return bad("table, column and older_than are required");
        }
        if !(1..=1_000_000).contains(&self.batch_size()) {
            return bad("batch size must be between 1 and 1000000");
        }
        if self.purge && self.no_delete {
            return bad("--purge deletes without copying and --no-delete copies without deleting; pick one");
        }
        if self.purge && !self.confirm_purge && !self.dry_run {
            return bad("--purge deletes rows without keeping a copy; add --confirm-purge to really do it");
        }
        if self.files_manifest.is_some() != self.files_from.is_some() {
            return bad("--files-manifest and --files-from go together (--preset mattermost sets --files-from)");
        }
        if self.files_manifest.is_some() && self.no_delete {
            return bad("--files-manifest lists files of rows that left the database; with --no-delete none leave");
        }
        if self.purge && (self.dest.is_some() || self.dest_dsn.is_some()) {
            return bad("--purge keeps no copy, so --dest and --dest-dsn make no sense with it");
        }
        for spec in &self.children {
            super::children::ChildSpec::parse(spec)
                .map_err(|e| ArchiveError::Config(format!("archive job '{name}': {e}")))?;
        }
        // Checked again in setup once the server's standard_conforming_strings is known.
        if let Some(w) = &self.filter {
            predicate::check(w, predicate::Strings::Standard)
                .map_err(|e| ArchiveError::Config(format!("archive job '{name}': {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        job: ArchiveJob,
    }

    fn flags(args: &[&str]) -> ArchiveJob {
        let argv = std::iter::once("archive").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect("flags parse").job
    }

    fn section(toml: &str) -> ArchiveJob {
        toml::from_str(toml).expect("section parses")
    }

    #[test]
    fn a_flag_wins_over_the_section_and_an_absent_one_keeps_it() {
        let base = section(
            "name = 'old-posts'\ntable = 'posts'\ncolumn = 'createat'\nolder_than = '2y'\n\
             batch_size = 100\nwhere = \"s.channelid <> 'x'\"\nno_delete = true\n",
        );
        let job = flags(&["--older-than", "90d", "--sleep", "50ms"]).over(&base);
        assert_eq!(job.older_than, "90d");
        assert_eq!(job.sleep, Some(HumanDuration(std::time::Duration::from_millis(50))));
        assert_eq!(job.table, "posts");
        assert_eq!(job.batch_size, Some(100));
        assert_eq!(job.filter.as_deref(), Some("s.channelid <> 'x'"));
        assert!(job.no_delete);
        assert_eq!(job.job_name(), "old-posts");
    }

    #[test]
    fn flags_alone_give_the_same_job_as_the_same_section() {
        let from_flags = flags(&[
            "--table",
            "posts",
            "--column",
            "createat",
            "--column-type",
            "epoch-ms",
            "--older-than",
            "2y",
            "--batch-size",
            "500",
            "--max-runtime",
            "30m",
            "--walk",
            "key",
            "--dry-run",
        ])
        .over(&ArchiveJob::default());
        let from_file = section(
            "table = 'posts'\ncolumn = 'createat'\ncolumn_type = 'epoch-ms'\nolder_than = '2y'\n\
             batch_size = 500\nmax_runtime = '30m'\nwalk = 'key'\ndry_run = true\n",
        );
        assert_eq!(from_flags, from_file);
    }
}
