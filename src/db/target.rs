//! A server dbtool talks to: a label for reports and metrics, what kind of server it is, and
//! how to reach it.

use serde::{Deserialize, Serialize};

use super::redis::RedisConn;
use super::ConnParams;

/// What a target is: decides which checks run on it and how dbtool talks to it. One enum for
/// the CLI, the config file's `[[targets]] kind` and anything else that names a kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A PostgreSQL server (the default).
    #[default]
    Postgres,
    /// PgBouncer's admin console (database `pgbouncer`).
    Pgbouncer,
    /// A Redis server.
    Redis,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Postgres => "postgres",
            TargetKind::Pgbouncer => "pgbouncer",
            TargetKind::Redis => "redis",
        }
    }
}

/// A server: its label (`target="main"`), its kind and resolved connection parameters.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    /// How to reach a PostgreSQL or PgBouncer target. A Redis target is reached through
    /// `redis` alone; its `params` name the same host for nothing but completeness.
    pub params: ConnParams,
    /// Set for Redis targets.
    pub redis: Option<RedisConn>,
}

impl Target {
    /// A PostgreSQL or PgBouncer target.
    pub fn postgres(name: String, kind: TargetKind, params: ConnParams) -> Target {
        Target {
            name,
            kind,
            params,
            redis: None,
        }
    }
}
