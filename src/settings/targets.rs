//! Which databases a command talks to: `--dsn` flags, else the file's `[[targets]]`, else the
//! libpq environment; and the session settings every connection gets.

use std::time::Duration;

use anyhow::Context;

use super::Settings;
use crate::cli::ConnArgs;
use crate::db::redis::RedisConn;
use crate::db::{ConnParams, Env, SessionSettings, Target, TargetKind};

pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_millis(100);

pub fn session(conn: &ConnArgs, loaded: &Settings, read_only: bool) -> SessionSettings {
    SessionSettings {
        statement_timeout: conn
            .statement_timeout
            .or(loaded.file.statement_timeout.map(|d| d.0))
            .unwrap_or(DEFAULT_STATEMENT_TIMEOUT),
        lock_timeout: conn
            .lock_timeout
            .or(loaded.file.lock_timeout.map(|d| d.0))
            .unwrap_or(DEFAULT_LOCK_TIMEOUT),
        read_only,
        ..SessionSettings::default()
    }
}

/// Resolves targets; names are unique (a repeated label gets "#2").
pub fn resolve(conn: &ConnArgs, loaded: &Settings, env: &dyn Env) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    if !conn.target.is_empty() {
        if !conn.dsn.is_empty() {
            anyhow::bail!("--target picks a [[targets]] entry of the config file and --dsn (or DATABASE_URL) names a server; give one of them");
        }
        for name in &conn.target {
            let Some(t) = loaded.file.targets.iter().find(|t| &t.name == name) else {
                let names: Vec<&str> = loaded.file.targets.iter().map(|t| t.name.as_str()).collect();
                anyhow::bail!(
                    "--target {name}: no [[targets]] entry of that name in {}; {}",
                    loaded.path.as_deref().map_or_else(
                        || "the configuration (no --config given)".into(),
                        |p| p.display().to_string()
                    ),
                    if names.is_empty() {
                        "the file has none".to_string()
                    } else {
                        format!("the file has: {}", names.join(", "))
                    }
                );
            };
            targets.push(from_file(t, env)?);
        }
    } else if !conn.dsn.is_empty() {
        for (i, dsn) in conn.dsn.iter().enumerate() {
            let params = ConnParams::resolve(Some(dsn), env).with_context(|| format!("--dsn number {}", i + 1))?;
            push_labelled(&mut targets, TargetKind::Postgres, params);
        }
    } else if !loaded.file.targets.is_empty() {
        for t in &loaded.file.targets {
            targets.push(from_file(t, env)?);
        }
    } else {
        let params = ConnParams::resolve(None, env).context("libpq environment (PGHOST, PGPORT, ...)")?;
        targets.push(Target::postgres(params.target_label(), TargetKind::Postgres, params));
    }
    Ok(targets)
}

/// A `[[targets]]` entry: a PgBouncer's is always its admin console (database `pgbouncer`), a
/// Redis' `dsn` its URL.
fn from_file(t: &crate::settings::file::TargetConfig, env: &dyn Env) -> anyhow::Result<Target> {
    let context = || format!("[[targets]] '{}'", t.name);
    if t.kind == TargetKind::Redis {
        let conn = RedisConn::resolve(&t.dsn, env).with_context(context)?;
        return Ok(Target::redis(t.name.clone(), conn));
    }
    let params = ConnParams::resolve(Some(&t.dsn), env).with_context(context)?;
    Ok(Target::postgres(t.name.clone(), t.kind, for_kind(t.kind, params)))
}

fn for_kind(kind: TargetKind, params: ConnParams) -> ConnParams {
    match kind {
        TargetKind::Pgbouncer => params.with_dbname(ADMIN_DATABASE),
        _ => params,
    }
}

/// PgBouncer's admin console answers only in this database.
pub const ADMIN_DATABASE: &str = "pgbouncer";

/// A label not yet taken: a repeated one gets "#2".
fn unique(targets: &[Target], label: &str) -> String {
    let mut name = label.to_string();
    let mut n = 2;
    while targets.iter().any(|t| t.name == name) {
        name = format!("{label}#{n}");
        n += 1;
    }
    name
}

/// Adds a target named by its address.
fn push_labelled(targets: &mut Vec<Target>, kind: TargetKind, params: ConnParams) {
    let name = unique(targets, &params.target_label());
    targets.push(Target::postgres(name, kind, params));
}

/// `dbtool health`'s targets: `--pgbouncer` and `--redis` come on top of `--dsn`/`--target`;
/// given alone, they are the whole list (as `--dsn` replaces the file's `[[targets]]`).
pub fn resolve_tier(
    conn: &ConnArgs,
    tier: &crate::cli::health::TierArgs,
    loaded: &Settings,
    env: &dyn Env,
) -> anyhow::Result<Vec<Target>> {
    let alone = conn.dsn.is_empty() && conn.target.is_empty() && !tier.is_empty();
    let mut targets = if alone { Vec::new() } else { resolve(conn, loaded, env)? };
    for (i, url) in tier.pgbouncer.iter().enumerate() {
        let params = ConnParams::resolve(Some(url), env).with_context(|| format!("--pgbouncer number {}", i + 1))?;
        push_labelled(
            &mut targets,
            TargetKind::Pgbouncer,
            for_kind(TargetKind::Pgbouncer, params),
        );
    }
    for (i, url) in tier.redis.iter().enumerate() {
        let conn = RedisConn::resolve(url, env).with_context(|| format!("--redis number {}", i + 1))?;
        let name = unique(&targets, &conn.label);
        targets.push(Target::redis(name, conn));
    }
    Ok(targets)
}

/// The scheduler's bookkeeping session (claims, job_runs rows): writable, and under the same
/// configured limits as every other dbtool session, so it never waits long on a lock.
pub fn bookkeeping(settings: &Settings) -> SessionSettings {
    session(&ConnArgs::default(), settings, false)
}
