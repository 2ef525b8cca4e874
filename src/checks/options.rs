//! `HealthOptions`: the `dbtool health` flags, the `[health]` section and a health job's keys,
//! one type so the three cannot drift apart. Flags and job keys are laid over the section
//! with `over`; the defaults are the constants below.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::{parse_human, HumanDuration};
use crate::report::Format;

#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthOptions {
    /// Output format [default: table; prometheus when --output ends in .prom]
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE instead of stdout: a file is replaced atomically (0644), a
    /// symlink followed, a device or FIFO (/dev/stdout) written into, a directory refused
    #[arg(long, short = 'o', value_name = "FILE")]
    #[serde(skip)]
    pub output: Option<PathBuf>,
    /// Run only these checks (repeatable); see `dbtool checks`
    #[arg(long = "check", value_name = "NAME", value_parser = CheckName)]
    #[serde(default)]
    pub checks: Vec<String>,
    /// Skip these checks (repeatable)
    #[arg(long = "skip", value_name = "NAME", value_parser = CheckName)]
    #[serde(default)]
    pub skip: Vec<String>,
    /// Per-table checks look only at these databases (repeatable) [default: every database that accepts connections]
    #[arg(long = "database", short = 'd', value_name = "NAME")]
    pub databases: Option<Vec<String>>,
    /// Override a threshold: CHECK.KEY=VALUE, e.g. connections.warning=80 (repeatable)
    // In the file, thresholds live in [checks.NAME] sections instead.
    #[arg(long = "set", value_name = "CHECK.KEY=VALUE")]
    #[serde(skip)]
    pub set: Vec<String>,
    /// Offenders and per-table series kept per check [default: 20]
    #[arg(long, allow_negative_numbers = true, value_parser = at_least_one)]
    pub top: Option<usize>,
    /// Bound on the whole run [default: 30s]
    #[arg(long, value_parser = parse_human, value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: Option<HumanDuration>,
    /// Keep counters between runs in FILE (JSON, 0600, written atomically) and report what changed
    /// since the previous run; deadlocks increasing is a WARNING [config: health.state]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Connections dbtool may open per target [default: 3]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = at_least_one)]
    pub max_connections: Option<usize>,
    /// With --format nagios: bound on the output in bytes, cut at whole lines, the status line
    /// always kept [default: 4096]
    #[arg(long, value_name = "BYTES", value_parser = at_least_one)]
    pub max_output: Option<usize>,
    /// The --check's main warning threshold, as check_postgres' -w (the manual's Nagios page lists them)
    // A shorthand for --set CHECK.KEY=VALUE; in the file, [checks.NAME] holds thresholds.
    #[arg(long, short = 'w', value_name = "VALUE", allow_negative_numbers = true)]
    #[serde(skip)]
    pub warning: Option<f64>,
    /// The --check's main critical threshold, as check_postgres' -c
    #[arg(long, short = 'c', value_name = "VALUE", allow_negative_numbers = true)]
    #[serde(skip)]
    pub critical: Option<f64>,
    /// Targets checked at once [default: 8]; config file only
    #[arg(skip)]
    pub concurrency: Option<usize>,
    /// Scheduled health jobs only: per check, how long its last result is reused before it
    /// is queried again, e.g. { bloat = "15m", vacuum = "0s" } ("0s": every run) [default:
    /// each check's own, listed in the manual's schedule page]; a one-shot run keeps nothing
    #[arg(skip)]
    #[serde(default)]
    pub refresh: BTreeMap<String, HumanDuration>,
}

impl HealthOptions {
    pub const DEFAULT_TOP: usize = 20;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_CONNECTIONS: usize = 3;
    pub const DEFAULT_CONCURRENCY: usize = 8;
    pub const DEFAULT_MAX_OUTPUT: usize = crate::report::nagios::DEFAULT_MAX_OUTPUT;

    /// These options where given, `base` (the `[health]` section) elsewhere.
    pub fn over(&self, base: &HealthOptions) -> HealthOptions {
        let list = |mine: &Vec<String>, theirs: &Vec<String>| {
            if mine.is_empty() {
                theirs.clone()
            } else {
                mine.clone()
            }
        };
        HealthOptions {
            format: self.format.or(base.format),
            output: self.output.clone().or_else(|| base.output.clone()),
            checks: list(&self.checks, &base.checks),
            skip: list(&self.skip, &base.skip),
            databases: self.databases.clone().or_else(|| base.databases.clone()),
            set: [base.set.as_slice(), self.set.as_slice()].concat(),
            top: self.top.or(base.top),
            timeout: self.timeout.or(base.timeout),
            state: self.state.clone().or_else(|| base.state.clone()),
            max_connections: self.max_connections.or(base.max_connections),
            max_output: self.max_output.or(base.max_output),
            warning: self.warning.or(base.warning),
            critical: self.critical.or(base.critical),
            concurrency: self.concurrency.or(base.concurrency),
            // Per check: the job's interval for a check wins over the section's.
            refresh: base
                .refresh
                .iter()
                .chain(&self.refresh)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }
}

/// A check name on the command line: shells complete it from the registry (`--check <TAB>`).
/// Any text is accepted here; the one place that judges names (`settings::health::plan`)
/// refuses an unknown one with the list of known checks, for flags and files alike.
#[derive(Clone, Copy, Debug)]
pub struct CheckName;

impl clap::builder::TypedValueParser for CheckName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            super::REGISTRY
                .iter()
                .map(|c| clap::builder::PossibleValue::new(c.name())),
        ))
    }
}

/// `--top` and `--max-connections`: a whole number from 1 up, named in the error by clap.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number from 1 up; write e.g. 3")),
    }
}
