//! Flags of `dbtool archive`.

use std::path::PathBuf;

use clap::Args;

use super::ConnArgs;
use crate::duration::parse_duration;
use crate::jobs::archive::{ColumnType, Walk};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  done, or stopped cleanly (signal, --max-runtime, replica lag): the reason line says which;
     a later run continues where the data says
  1  another dbtool archive of the same table is running; nothing was done
  2  a batch failed (the failed batch changed nothing), the moved rows could not be flushed,
     or the database could not be reached
  3  bad arguments or configuration; the table or destination was refused (no key, incompatible
     destination, bad name, a --where that is not one condition, or with --dry-run one that
     writes); nothing was done";

#[derive(Debug, Args, Clone, Default)]
pub struct ArchiveArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Run the [[archive]] job of this name from the config file (flags below override its fields)
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Source table, schema.table (schema defaults to public)
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
    /// The time column that decides a row's age
    #[arg(long, value_name = "COLUMN")]
    pub column: Option<String>,
    /// How the column stores time [default: detected; required for integer columns]
    #[arg(long, value_enum, value_name = "TYPE")]
    pub column_type: Option<ColumnType>,
    /// Archive rows older than this: 2y, 18mo, 90d, 12h, or a PostgreSQL interval ('18 months')
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,
    /// Destination table [default: archive.<table>], created on first use
    #[arg(long, value_name = "TABLE")]
    pub dest: Option<String>,
    /// Archive into another database (URL or conninfo): insert and commit there, then delete here
    #[arg(long, value_name = "DSN")]
    pub dest_dsn: Option<String>,
    /// Rows per batch [default: 5000]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<i64>,
    /// Pause between batches, e.g. 50ms
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub sleep: Option<std::time::Duration>,
    /// Start no batch after this long, e.g. 30m
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_runtime: Option<std::time::Duration>,
    /// Pause while any standby's replay lag exceeds this, e.g. 10s
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_lag: Option<std::time::Duration>,
    /// Extra SQL condition on the source rows (alias s), e.g. "s.channelid <> 'town-square'";
    /// one condition, ANDed with the cutoff: unbalanced parentheses, ';' or unclosed quotes and
    /// comments are refused (exit 3)
    #[arg(long = "where", value_name = "SQL")]
    pub filter: Option<String>,
    /// Walk order [default: ctid on PostgreSQL 14+, key before]
    #[arg(long, value_enum)]
    pub walk: Option<Walk>,
    /// Count the rows and show the SQL; change nothing (read-only transaction, rolled back)
    #[arg(long)]
    pub dry_run: bool,
    /// Copy only; leave the source rows in place
    #[arg(long)]
    pub no_delete: bool,
    /// Delete old rows without keeping a copy (needs --confirm-purge)
    #[arg(long)]
    pub purge: bool,
    /// Yes, really delete without a copy
    #[arg(long)]
    pub confirm_purge: bool,
    /// Write Prometheus metrics to FILE (atomically) at the end of the run
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Without a terminal, print a progress line every N batches [default: 20]
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub progress_every: u64,
}
