//! Runs the checks of a Redis target. A Redis "query" is one or more commands (`INFO`,
//! `CONFIG GET maxmemory; CONFIG GET maxclients`) whose answers become one row of text values
//! by name, so Redis checks read them like any other check reads its rows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lanes::Executed;
use super::plan::Plan;
use super::runner::{evaluate, merge, Outcomes};
use super::{Query, QueryFailure};
use crate::db::redis::RedisConn;
use crate::db::row::Row;
use crate::db::{Target, TargetKind};
use crate::report::TargetReport;

/// "7.0.15" → 70015, as server_version_num spells PostgreSQL's.
pub fn version_num(text: &str) -> Option<u32> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some(major * 10000 + minor * 100 + patch)
}

/// `INFO` text: `key:value` lines under `# Section` headers.
pub fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn row(pairs: Vec<(String, String)>) -> Row {
    let columns: Arc<[String]> = pairs.iter().map(|(k, _)| k.clone()).collect();
    Row::new(columns, pairs.into_iter().map(|(_, v)| Some(v)).collect())
}

async fn one(conn: &mut redis::aio::MultiplexedConnection, text: &str) -> redis::RedisResult<Vec<(String, String)>> {
    let mut words = text.split_whitespace();
    let mut cmd = redis::cmd(words.next().unwrap_or("PING"));
    for w in words {
        cmd.arg(w);
    }
    if text.trim_start().to_ascii_uppercase().starts_with("INFO") {
        let info: String = cmd.query_async(conn).await?;
        return Ok(parse_info(&info));
    }
    let map: HashMap<String, String> = cmd.query_async(conn).await?;
    let mut pairs: Vec<(String, String)> = map.into_iter().collect();
    pairs.sort();
    Ok(pairs)
}

async fn exec(conn: &mut redis::aio::MultiplexedConnection, target: &RedisConn, q: &'static Query) -> Executed {
    let started = Instant::now();
    let sql = q.variants.first().map_or("", |v| v.sql);
    let mut pairs = Vec::new();
    for command in sql.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        match one(conn, command).await {
            Ok(p) => pairs.extend(p),
            Err(e) => {
                let failure = QueryFailure {
                    message: format!("{command}: {}", target.error(&e)),
                    sqlstate: e.code().map(str::to_string),
                    ..Default::default()
                };
                return (q.name, Err(failure), started.elapsed());
            }
        }
    }
    (q.name, Ok(vec![row(pairs)]), started.elapsed())
}

pub(super) async fn run(target: &Target, plan: &Plan, connected: &AtomicBool) -> TargetReport {
    let started = Instant::now();
    let Some(redis) = target.redis_conn() else {
        return TargetReport::down(target.name.clone(), "no Redis URL".into(), Duration::ZERO);
    };
    let conn = match redis.connect(plan.session.statement_timeout).await {
        Ok(c) => c,
        Err(e) => return TargetReport::down(target.name.clone(), e, started.elapsed()),
    };
    connected.store(true, Ordering::Relaxed);
    let checks: Vec<_> = plan.checks_of(TargetKind::Redis).collect();
    let mut queries: Vec<&'static Query> = vec![&super::redis_info::INFO];
    for q in checks.iter().flat_map(|(c, _)| c.queries().iter().copied()) {
        if !queries.iter().any(|x| x.name == q.name) {
            queries.push(q);
        }
    }
    // One multiplexed connection: the commands are pipelined on it.
    let results = futures_util::future::join_all(queries.iter().map(|q| {
        let mut c = conn.clone();
        async move { exec(&mut c, redis, q).await }
    }))
    .await;
    let mut outcomes = Outcomes::new();
    merge(&mut outcomes, results);
    let info = outcomes.get(super::redis_info::INFO.name).and_then(|o| o.rows.first());
    let version = info.and_then(|r| r.opt_str("redis_version").ok().flatten().map(str::to_string));
    if version.is_none() {
        let why = outcomes
            .get(super::redis_info::INFO.name)
            .and_then(|o| o.failures.first())
            .map_or_else(|| "no redis_version in INFO".to_string(), |f| f.message.clone());
        let mut r = TargetReport::down(target.name.clone(), format!("connected, but {why}"), started.elapsed());
        r.up = true;
        return r;
    }
    let num = version.as_deref().and_then(version_num).unwrap_or(0);
    drop(conn);
    TargetReport {
        name: target.name.clone(),
        kind: target.kind,
        up: true,
        error: None,
        server_version: version.map(|v| format!("Redis {v}")),
        server_version_num: Some(num),
        duration: started.elapsed(),
        checks: checks
            .iter()
            .map(|(c, t)| evaluate(*c, t, &outcomes, plan.top_n, num, redis.user()))
            .collect(),
        previous_run: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_text_becomes_one_row_by_name() {
        let pairs = parse_info("# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0\r\n");
        let r = row(pairs);
        assert_eq!(r.str("redis_version"), Ok("7.0.15"));
        assert_eq!(r.str("db0"), Ok("keys=1,expires=0"));
        assert_eq!(version_num("7.0.15"), Some(70015));
        assert_eq!(version_num("x"), None);
    }
}
