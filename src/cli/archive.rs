//! Flags of `dbtool archive`.

use clap::Args;

use super::ConnArgs;
use crate::jobs::archive::ArchiveJob;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  done, or stopped cleanly (signal, --max-runtime, replica lag): the reason line says which;
     a later run continues where the data says
  1  another dbtool archive of the same table is running; nothing was done
  2  a batch failed (the failed batch changed nothing), the moved rows could not be flushed,
     or the database could not be reached
  3  bad arguments or configuration; the table or destination was refused (no key, incompatible
     destination, bad name, a --where that is not one condition, or with --dry-run one that
     writes), or a child was (a foreign key child not named with --child, a child column
     without an index, a cycle); nothing was done";

#[derive(Debug, Args, Clone, Default)]
pub struct ArchiveArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Run the [[archive]] job of this name from the config file (flags below override its fields)
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    // The same options as an [[archive]] section and a scheduled archive job.
    #[command(flatten)]
    pub options: ArchiveJob,
    #[command(flatten)]
    pub notify: crate::notify::NotifyOptions,
    // The summary on stdout (progress goes to stderr).
    #[command(flatten)]
    pub output: super::output::OutputArgs,
    /// Without a terminal, print a progress line every N batches [default: 20]
    #[arg(long, value_name = "N", default_value_t = 20, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub progress_every: u64,
}
