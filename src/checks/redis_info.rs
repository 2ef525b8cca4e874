//! What every Redis check reads: the one `INFO` row and the `CONFIG GET` limits, and the
//! shapes INFO packs into a value (`slave0:ip=…,port=…`, `cmdstat_get:calls=…,usec=…`,
//! `db0:keys=…`), parsed here once.

use super::{EvalContext, EvalError, Query, Scope, Variant};
use crate::db::row::Row;

/// Every section INFO gives without arguments (server, clients, memory, persistence, stats,
/// replication, keyspace …), once per run for every Redis check.
pub static INFO: Query = Query {
    name: "redis_info",
    scope: Scope::Cluster,
    variants: &[Variant {
        min_version: 0,
        sql: "INFO",
    }],
    snapshot_stats: false,
};
/// The limits as configured; a user without CONFIG permission gets INFO's figures instead.
pub static CONFIG: Query = Query {
    name: "redis_config",
    scope: Scope::Cluster,
    variants: &[Variant {
        min_version: 0,
        sql: "CONFIG GET maxmemory; CONFIG GET maxclients",
    }],
    snapshot_stats: false,
};

/// The one row of INFO.
pub fn info<'a>(ctx: &'a EvalContext<'_>) -> Result<&'a Row, EvalError> {
    ctx.rows(&INFO).first().ok_or(EvalError::Setting {
        query: INFO.name,
        name: "INFO",
    })
}

/// A CONFIG GET value, None when CONFIG was refused (a user without +config|get).
pub fn config(ctx: &EvalContext<'_>, key: &str) -> Option<f64> {
    ctx.rows(&CONFIG).first().and_then(|r| r.opt_f64(key).ok().flatten())
}

/// `ip=127.0.0.1,port=6380,offset=42` → its `key=value` pairs.
pub fn fields(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(',').filter_map(|kv| kv.split_once('='))
}

/// One field of such a value, as text.
pub fn field<'v>(value: &'v str, key: &str) -> Option<&'v str> {
    fields(value).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// One field of such a value, as a number; None when absent or not a number.
pub fn number(value: &str, key: &str) -> Option<f64> {
    field(value, key).and_then(|v| v.parse::<f64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_values_are_read_by_key() {
        let v = "ip=127.0.0.1,port=6380,state=online,offset=42,lag=0";
        assert_eq!(field(v, "ip"), Some("127.0.0.1"));
        assert_eq!(number(v, "offset"), Some(42.0));
        assert_eq!(number(v, "state"), None);
        assert_eq!(number(v, "missing"), None);
        assert_eq!(number("calls=2,usec=10,usec_per_call=5.00", "usec"), Some(10.0));
    }
}
