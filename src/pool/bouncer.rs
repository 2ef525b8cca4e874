//! PgBouncer's admin console: SHOW POOLS, STATS, CONFIG, DATABASES and VERSION read by column
//! name (the console speaks only the simple query protocol), STATS counters turned into rates.

use std::collections::BTreeMap;

use crate::db::Session;

use super::sample::{col, query, Peaks, SampleError};
use super::{BouncerFigures, DatabaseFigures, PoolFigures, StatsFigures};

pub(super) async fn show_pools(b: &Session) -> Result<Vec<PoolFigures>, SampleError> {
    let what = "SHOW POOLS";
    let mut out = Vec::new();
    for r in query(b, what, "SHOW POOLS").await? {
        let us = col(what, r.opt_i64("maxwait_us"))?.unwrap_or(0);
        let cl_waiting = col(what, r.i64("cl_waiting"))?;
        out.push(PoolFigures {
            database: col(what, r.str("database"))?.to_string(),
            user: col(what, r.str("user"))?.to_string(),
            cl_active: col(what, r.i64("cl_active"))?,
            cl_waiting,
            cl_waiting_peak: cl_waiting,
            sv_active: col(what, r.i64("sv_active"))?,
            sv_idle: col(what, r.i64("sv_idle"))?,
            sv_used: col(what, r.i64("sv_used"))?,
            sv_tested: col(what, r.i64("sv_tested"))?,
            sv_login: col(what, r.i64("sv_login"))?,
            // maxwait is whole seconds; maxwait_us (1.8+) the microseconds on top of them.
            maxwait_seconds_peak: col(what, r.f64("maxwait"))? + us as f64 / 1e6,
            pool_mode: col(what, r.opt_str("pool_mode"))?.unwrap_or("").to_string(),
        });
    }
    Ok(out)
}

/// SHOW STATS totals per database: (xacts, queries, xact µs, query µs, wait µs) and the
/// client Parse count where PgBouncer (1.21+) reports it.
pub(super) type Totals = BTreeMap<String, ([f64; 5], Option<f64>)>;

pub(super) async fn show_stats(b: &Session) -> Result<Totals, SampleError> {
    let what = "SHOW STATS";
    let cols = [
        "total_xact_count",
        "total_query_count",
        "total_xact_time",
        "total_query_time",
        "total_wait_time",
    ];
    let mut out = Totals::new();
    for r in query(b, what, "SHOW STATS").await? {
        let mut v = [0.0; 5];
        for (slot, c) in v.iter_mut().zip(cols) {
            *slot = col(what, r.f64(c))?;
        }
        let parses = r.opt_f64("total_client_parse_count").ok().flatten();
        out.insert(col(what, r.str("database"))?.to_string(), (v, parses));
    }
    Ok(out)
}

fn rates(
    database: &str,
    before: Option<&([f64; 5], Option<f64>)>,
    after: &([f64; 5], Option<f64>),
    window: f64,
) -> StatsFigures {
    let zero = ([0.0; 5], None);
    let (b, b_parses) = before.unwrap_or(&zero);
    let (after, a_parses) = after;
    // A RELOAD or restart can reset counters; a negative delta is read as no traffic.
    let d: Vec<f64> = after.iter().zip(b).map(|(a, b)| (a - b).max(0.0)).collect();
    let per = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    StatsFigures {
        database: database.to_string(),
        xact_rate: d[0] / window,
        query_rate: d[1] / window,
        // total_xact_time runs from the client's first query, so it includes the wait for a
        // server: what a server spent in the transaction is xact time minus wait time.
        busy_servers: (d[2] - d[4]).max(0.0) / 1e6 / window,
        waiting_clients: d[4] / 1e6 / window,
        avg_xact_seconds: per(d[2], d[0]) / 1e6,
        avg_query_seconds: per(d[3], d[1]) / 1e6,
        avg_wait_seconds: per(d[4], d[0]) / 1e6,
        parse_rate: a_parses.map(|a| (a - b_parses.unwrap_or(0.0)).max(0.0) / window),
    }
}

pub(super) async fn bouncer_figures(
    b: &Session,
    before: &Totals,
    window: f64,
    peaks: &Peaks,
) -> Result<BouncerFigures, SampleError> {
    let after = show_stats(b).await?;
    let stats = after
        .iter()
        .map(|(db, a)| rates(db, before.get(db), a, window))
        .collect();
    let mut pools = show_pools(b).await?;
    for p in &mut pools {
        if let Some((waiting, maxwait)) = peaks.waits.get(&(p.database.clone(), p.user.clone())) {
            p.cl_waiting_peak = p.cl_waiting_peak.max(*waiting);
            p.maxwait_seconds_peak = p.maxwait_seconds_peak.max(*maxwait);
        }
    }
    let config = query(b, "SHOW CONFIG", "SHOW CONFIG")
        .await?
        .iter()
        .map(|r| {
            Ok((
                col("SHOW CONFIG", r.str("key"))?.to_string(),
                col("SHOW CONFIG", r.opt_str("value"))?.unwrap_or("").to_string(),
            ))
        })
        .collect::<Result<_, SampleError>>()?;
    let version = query(b, "SHOW VERSION", "SHOW VERSION").await.ok().and_then(|rows| {
        rows.first()
            .and_then(|r| r.opt_str("version").ok().flatten().map(str::to_string))
    });
    Ok(BouncerFigures {
        version,
        config,
        pools,
        databases: show_databases(b).await?,
        stats,
    })
}

async fn show_databases(b: &Session) -> Result<Vec<DatabaseFigures>, SampleError> {
    let what = "SHOW DATABASES";
    let mut out = Vec::new();
    for r in query(b, what, "SHOW DATABASES").await? {
        let text = |c: &str| -> Result<Option<String>, SampleError> {
            Ok(col(what, r.opt_str(c))?.filter(|s| !s.is_empty()).map(str::to_string))
        };
        out.push(DatabaseFigures {
            name: col(what, r.str("name"))?.to_string(),
            host: text("host")?,
            port: col(what, r.opt_i64("port"))?,
            database: col(what, r.str("database"))?.to_string(),
            force_user: text("force_user")?,
            pool_size: col(what, r.i64("pool_size"))?,
            reserve_pool: col(what, r.opt_i64("reserve_pool"))?.unwrap_or(0),
            max_connections: col(what, r.opt_i64("max_connections"))?.unwrap_or(0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_counter_deltas_in_microseconds() {
        // 100 transactions of 50 ms as the client sees them over 2 s, 30 ms of it waiting:
        // servers were busy 100 × 20 ms = 2 s in 2 s, one on average.
        let before = ([1000.0, 1000.0, 5e6, 5e6, 1e6], None);
        let after = ([1100.0, 1100.0, 10e6, 10e6, 4e6], None);
        let s = rates("app", Some(&before), &after, 2.0);
        assert_eq!(s.xact_rate, 50.0);
        assert_eq!(s.busy_servers, 1.0);
        assert_eq!(s.waiting_clients, 1.5);
        assert!((s.avg_xact_seconds - 0.05).abs() < 1e-9);
        assert!((s.avg_wait_seconds - 0.03).abs() < 1e-9);
        // Counters reset by a restart read as no traffic, not negative.
        let reset = rates("app", Some(&after), &before, 2.0);
        assert_eq!(reset.xact_rate, 0.0);
        assert_eq!(s.parse_rate, None);
        let parses = rates("app", Some(&([0.0; 5], Some(10.0))), &([0.0; 5], Some(30.0)), 2.0);
        assert_eq!(parses.parse_rate, Some(10.0));
    }
}
