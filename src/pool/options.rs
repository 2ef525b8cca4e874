//! `PoolAdviseOptions`: the `dbtool pool-advise` flags, the `[pool_advise]` section and a
//! pool-advise job's keys, one type; `over` lays flags or job keys over the section.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::render::PoolFormat;
use super::Assumptions;
use crate::duration::{parse_human, HumanDuration};

#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolAdviseOptions {
    /// PgBouncer's admin console, e.g. postgres://admin@127.0.0.1:6432/pgbouncer (the user must be in
    /// admin_users or stats_users). Without it, advice comes from PostgreSQL alone
    // why hide_env_values: clap would print the DSN, password and all, in --help.
    #[arg(long, env = "DBTOOL_PGBOUNCER", hide_env_values = true, value_name = "DSN")]
    pub pgbouncer: Option<String>,
    /// Sampling window: counters are read at its start and end, pools polled every second [default: 30s]
    #[arg(long, value_parser = parse_human, value_name = "DURATION", allow_hyphen_values = true)]
    pub sample: Option<HumanDuration>,
    /// Output format [default: table]
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<PoolFormat>,
    /// Write the output to FILE atomically instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    #[serde(skip)]
    pub output: Option<PathBuf>,
    /// CPU cores of the database host [default: 4, assumed]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_cores: Option<u32>,
    /// Whether the database storage is SSD [default: true, assumed]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub ssd: Option<bool>,
    /// Application instances sharing the pools [default: 1, assumed]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub app_instances: Option<u32>,
    /// The application's max open connections per instance (e.g. Mattermost MaxOpenConns)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub app_max_open: Option<u32>,
    /// The application's max idle connections per instance (e.g. Mattermost MaxIdleConns)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub app_max_idle: Option<u32>,
    /// Expected peak load as a multiple of the sampled load [default: 1.0: the window is the peak]
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub peak_factor: Option<f64>,
    /// Spare capacity on top of the peak [default: 1.25]
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub headroom: Option<f64>,
}

/// A bad assumption: which flag (or key) and why; the caller words where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{flag} (or {key} in [pool_advise]) is {value}; {why}")]
pub struct AssumptionError {
    pub flag: &'static str,
    pub key: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl PoolAdviseOptions {
    pub const DEFAULT_SAMPLE: Duration = Duration::from_secs(30);

    /// These options where given, `base` (the `[pool_advise]` section) elsewhere.
    pub fn over(&self, base: &PoolAdviseOptions) -> PoolAdviseOptions {
        PoolAdviseOptions {
            pgbouncer: self.pgbouncer.clone().or_else(|| base.pgbouncer.clone()),
            sample: self.sample.or(base.sample),
            format: self.format.or(base.format),
            output: self.output.clone().or_else(|| base.output.clone()),
            db_cores: self.db_cores.or(base.db_cores),
            ssd: self.ssd.or(base.ssd),
            app_instances: self.app_instances.or(base.app_instances),
            app_max_open: self.app_max_open.or(base.app_max_open),
            app_max_idle: self.app_max_idle.or(base.app_max_idle),
            peak_factor: self.peak_factor.or(base.peak_factor),
            headroom: self.headroom.or(base.headroom),
        }
    }

    pub fn window(&self) -> Duration {
        self.sample.map_or(Self::DEFAULT_SAMPLE, |d| d.0)
    }

    /// The model's inputs, refused when they make no sense.
    pub fn assumptions(&self) -> Result<Assumptions, AssumptionError> {
        let a = Assumptions {
            db_cores: self.db_cores,
            ssd: self.ssd,
            app_instances: self.app_instances,
            app_max_open: self.app_max_open,
            app_max_idle: self.app_max_idle,
            peak_factor: self.peak_factor,
            headroom: self.headroom,
        };
        for (flag, key, v) in [
            ("--peak-factor", "peak_factor", a.peak_factor),
            ("--headroom", "headroom", a.headroom),
        ] {
            if let Some(v) = v.filter(|v| !(1.0..=100.0).contains(v)) {
                let why = "it must be a multiplier between 1 and 100, e.g. 1.5";
                return Err(AssumptionError {
                    flag,
                    key,
                    value: v.to_string(),
                    why,
                });
            }
        }
        for (flag, key, v) in [
            ("--db-cores", "db_cores", a.db_cores),
            ("--app-instances", "app_instances", a.app_instances),
        ] {
            if v == Some(0) {
                let why = "it must be at least 1";
                return Err(AssumptionError {
                    flag,
                    key,
                    value: "0".into(),
                    why,
                });
            }
        }
        Ok(a)
    }
}
