//! A server dbtool talks to: a label for reports and metrics, what kind of server it is, and
//! how to reach it.

use serde::{Deserialize, Serialize};

use super::connect_error::ConnectError;
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

/// How a target is reached: libpq parameters for PostgreSQL and PgBouncer's admin console,
/// a Redis URL for Redis. One or the other, so nothing carries parameters it never uses.
// A run holds a handful of targets: boxing the larger variant would save nothing worth it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Endpoint {
    Sql(ConnParams),
    Redis(RedisConn),
}

/// A target that has no libpq parameters (a Redis server) where a PostgreSQL one is needed.
#[derive(Debug, thiserror::Error)]
#[error(
    "target '{name}' is a {kind} server, and this needs PostgreSQL; name a [[targets]] entry with kind = \"postgres\""
)]
pub struct NotSql {
    pub name: String,
    pub kind: &'static str,
}

/// A server: its label (`target="main"`), its kind and how to reach it.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    endpoint: Endpoint,
}

impl Target {
    /// A PostgreSQL or PgBouncer target; Redis targets come from [`Target::redis`].
    pub fn postgres(name: String, kind: TargetKind, params: ConnParams) -> Target {
        Target {
            name,
            kind,
            endpoint: Endpoint::Sql(params),
        }
    }

    /// A Redis target.
    pub fn redis(name: String, conn: RedisConn) -> Target {
        Target {
            name,
            kind: TargetKind::Redis,
            endpoint: Endpoint::Redis(conn),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The libpq parameters of a PostgreSQL or PgBouncer target; a Redis target has none,
    /// which connecting to it as PostgreSQL reports.
    pub fn params(&self) -> Result<&ConnParams, ConnectError> {
        match &self.endpoint {
            Endpoint::Sql(p) => Ok(p),
            Endpoint::Redis(_) => Err(ConnectError::NotSql(self.not_sql())),
        }
    }

    /// The user the checks run as: libpq's, or the Redis ACL user.
    pub fn user(&self) -> &str {
        match &self.endpoint {
            Endpoint::Sql(p) => p.user(),
            Endpoint::Redis(r) => r.user(),
        }
    }

    /// The libpq parameters of a PostgreSQL target. Backup, archive, migrate and the server
    /// side of pool-advise need PostgreSQL itself: a PgBouncer target is its admin console,
    /// which dumps, stores and archives nothing, so it is named as the wrong kind up front.
    pub fn postgres_params(&self) -> Result<&ConnParams, ConnectError> {
        match (&self.endpoint, self.kind) {
            (Endpoint::Sql(p), TargetKind::Postgres) => Ok(p),
            _ => Err(ConnectError::NotSql(self.not_sql())),
        }
    }

    /// [`postgres_params`](Self::postgres_params), by value.
    pub fn into_postgres_params(self) -> Result<ConnParams, NotSql> {
        let err = self.not_sql();
        match (self.endpoint, self.kind) {
            (Endpoint::Sql(p), TargetKind::Postgres) => Ok(p),
            _ => Err(err),
        }
    }

    /// The URL of a Redis target.
    pub fn redis_conn(&self) -> Option<&RedisConn> {
        match &self.endpoint {
            Endpoint::Redis(r) => Some(r),
            Endpoint::Sql(_) => None,
        }
    }

    fn not_sql(&self) -> NotSql {
        NotSql {
            name: self.name.clone(),
            kind: self.kind.as_str(),
        }
    }
}
