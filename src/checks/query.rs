//! Declarative queries: SQL from `queries/`, variants by minimum server version, and scope.

use serde::Serialize;

/// Where a query runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Once, on the target's own database (cluster-wide views such as pg_stat_activity).
    Cluster,
    /// In every database that accepts connections (per-table statistics); rows carry `datname`.
    EachDatabase,
    /// In these databases only, whatever `--database` says (a custom check's `databases`).
    Databases(&'static [&'static str]),
}

/// One SQL text valid from `min_version` (server_version_num) on.
#[derive(Debug)]
pub struct Variant {
    pub min_version: u32,
    pub sql: &'static str,
}

/// A named query shared by every check that declares it; the runner executes it once.
#[derive(Debug)]
pub struct Query {
    pub name: &'static str,
    pub scope: Scope,
    /// Ascending by `min_version`.
    pub variants: &'static [Variant],
    /// Reads many tables' statistics: on PostgreSQL 15+ it runs with
    /// `stats_fetch_consistency = snapshot` for its own transaction, so the statistics are
    /// fetched once for the database rather than entry by entry (a fifth of the tables
    /// query's server CPU on 5,000 tables).
    pub snapshot_stats: bool,
}

/// The statement that precedes a `snapshot_stats` query, in the same implicit transaction.
pub const SNAPSHOT_STATS: &str = "/* dbtool */ SET LOCAL stats_fetch_consistency = snapshot;\n";
/// The first server_version_num with `stats_fetch_consistency`.
pub const SNAPSHOT_STATS_SINCE: u32 = 150_000;

impl Query {
    /// The variant with the highest minimum version not above the server's, or the version
    /// the oldest variant needs.
    pub fn sql_for(&self, server_version_num: u32) -> Result<&'static str, u32> {
        self.variants
            .iter()
            .rev()
            .find(|v| v.min_version <= server_version_num)
            .map(|v| v.sql)
            .ok_or_else(|| self.variants.first().map_or(0, |v| v.min_version))
    }
}

/// Declares a `Query` whose variants are files in `queries/`:
/// `query!(LOCKS, "locks", Cluster, [0 => "locks.sql", 140000 => "locks.pg14.sql"]);`
#[macro_export]
macro_rules! query {
    ($ident:ident, $name:literal, $scope:ident, [$($min:literal => $file:literal),+ $(,)?]) => {
        $crate::query!($ident, $name, $scope, [$($min => $file),+], false);
    };
    ($ident:ident, $name:literal, $scope:ident, [$($min:literal => $file:literal),+ $(,)?], snapshot_stats) => {
        $crate::query!($ident, $name, $scope, [$($min => $file),+], true);
    };
    ($ident:ident, $name:literal, $scope:ident, [$($min:literal => $file:literal),+ $(,)?], $snapshot:literal) => {
        pub static $ident: $crate::checks::Query = $crate::checks::Query {
            name: $name,
            scope: $crate::checks::Scope::$scope,
            variants: &[$($crate::checks::Variant {
                min_version: $min,
                sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/queries/", $file)),
            }),+],
            snapshot_stats: $snapshot,
        };
    };
}

/// Why a query produced no rows in some place.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueryFailure {
    /// The database it ran in, for per-database queries.
    pub database: Option<String>,
    pub message: String,
    /// SQLSTATE when the server gave one; 42501 is a missing privilege.
    pub sqlstate: Option<String>,
    /// Set when the server is older than every variant of the query.
    pub needs_version: Option<u32>,
    /// Not a failure: dbtool did not go there (`--max-connections 1` leaves no session for
    /// databases other than the connected one).
    #[serde(skip)]
    pub not_visited: bool,
}

/// The rows of one query, gathered from every place it ran, and where it failed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryOutcome {
    pub rows: Vec<crate::db::row::Row>,
    /// How many places (the cluster, or each database) answered, rows or not.
    pub succeeded: usize,
    pub failures: Vec<QueryFailure>,
    pub duration: std::time::Duration,
}

impl QueryOutcome {
    /// Whether there is anything to evaluate: it ran somewhere, or nowhere failed.
    pub fn usable(&self) -> bool {
        self.succeeded > 0 || self.failures.is_empty()
    }
}

impl QueryFailure {
    pub fn not_visited(db: &str) -> QueryFailure {
        QueryFailure {
            database: Some(db.to_string()),
            message: "not visited: --max-connections 1 leaves no session for databases other than the connected one"
                .to_string(),
            not_visited: true,
            ..Default::default()
        }
    }

    /// A per-database session the server terminated (57P01: DROP DATABASE … WITH (FORCE), or
    /// pg_terminate_backend) or a database that no longer exists (3D000): told, not alerted on.
    pub fn is_benign(&self) -> bool {
        self.not_visited || self.database.is_some() && matches!(self.sqlstate.as_deref(), Some("57P01") | Some("3D000"))
    }
}

/// "PostgreSQL 14" from 140000, "PostgreSQL 9.6" from 90600.
pub fn version_name(num: u32) -> String {
    if num >= 100000 {
        format!("PostgreSQL {}", num / 10000)
    } else {
        format!("PostgreSQL {}.{}", num / 10000, num / 100 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static Q: Query = Query {
        name: "q",
        scope: Scope::Cluster,
        variants: &[
            Variant {
                min_version: 130000,
                sql: "old",
            },
            Variant {
                min_version: 170000,
                sql: "new",
            },
        ],
        snapshot_stats: false,
    };

    #[test]
    fn picks_highest_variant_not_above_server() {
        assert_eq!(Q.sql_for(160004), Ok("old"));
        assert_eq!(Q.sql_for(170000), Ok("new"));
        assert_eq!(Q.sql_for(180001), Ok("new"));
        assert_eq!(Q.sql_for(120000), Err(130000));
        assert_eq!(version_name(130000), "PostgreSQL 13");
    }
}
