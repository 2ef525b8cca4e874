//! Sampling: two snapshots of PostgreSQL's and PgBouncer's counters over a window, with SHOW
//! POOLS and pg_stat_activity polled in between for peaks. Counters become rates here, so a
//! short window does not depend on PgBouncer's 60 s `avg_*` figures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::db::Session;

use crate::db::row::{rows_from_messages, Row, RowError};
use crate::db::{connect_session as connect, ConnParams, ConnectError, SessionSettings};

use super::bouncer::{bouncer_figures, show_pools, show_stats};
use super::{evidence, Measured, PgFigures};

const SETTINGS_SQL: &str = include_str!("../../queries/pool_settings.sql");
const ACTIVITY_SQL: &str = include_str!("../../queries/pool_activity.sql");
const DB_STATS_SQL: &str = include_str!("../../queries/pool_db_stats.sql");
const DB_STATS_PG14_SQL: &str = include_str!("../../queries/pool_db_stats.pg14.sql");
const STATEMENTS_SQL: &str = include_str!("../../queries/pool_statements.sql");

/// Why sampling failed. Display carries each cause, so none is chained as a `source`
/// (main's `{:#}` would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("{what}: {cause}{}", connect_hint(.what, .cause))]
    Connect { what: &'static str, cause: ConnectError },
    #[error("{what} failed: {}", render(.cause))]
    Query { what: String, cause: tokio_postgres::Error },
    #[error("{what}: {cause}")]
    Row { what: String, cause: RowError },
    #[error("{what} returned no row")]
    NoRow { what: String },
    #[error("{what}: {cause}")]
    Version {
        what: String,
        cause: crate::db::VersionError,
    },
}

/// PgBouncer answers a user outside admin_users/stats_users with a bare "not allowed".
fn connect_hint(what: &str, cause: &ConnectError) -> &'static str {
    let refused = cause.failures().iter().any(|f| {
        f.postgres_error()
            .and_then(|e| e.as_db_error())
            .is_some_and(|db| db.message() == "not allowed")
    });
    if what == ADMIN_CONSOLE && refused {
        "; add the user to admin_users or stats_users in pgbouncer.ini and RELOAD"
    } else {
        ""
    }
}

const ADMIN_CONSOLE: &str = "PgBouncer admin console";

fn render(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.to_string(),
        None => e.to_string(),
    }
}

/// Where to sample and for how long.
pub struct SampleSpec<'a> {
    pub postgres: &'a ConnParams,
    pub session: &'a SessionSettings,
    pub pgbouncer: Option<&'a ConnParams>,
    pub window: Duration,
    pub poll: Duration,
}

pub(super) async fn query(client: &Session, what: &str, sql: &str) -> Result<Vec<Row>, SampleError> {
    let messages = client.simple_query(sql).await.map_err(|cause| SampleError::Query {
        what: what.to_string(),
        cause,
    })?;
    Ok(rows_from_messages(messages))
}

async fn one(client: &Session, what: &str, sql: &str) -> Result<Row, SampleError> {
    query(client, what, sql)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| SampleError::NoRow { what: what.to_string() })
}

pub(super) fn col<T>(what: &str, r: Result<T, RowError>) -> Result<T, SampleError> {
    r.map_err(|cause| SampleError::Row {
        what: what.to_string(),
        cause,
    })
}

/// Takes the two snapshots and the polls in between.
pub async fn measure(spec: &SampleSpec<'_>) -> Result<Measured, SampleError> {
    let pg = connect(spec.postgres, spec.session)
        .await
        .map_err(|cause| SampleError::Connect {
            what: "PostgreSQL",
            cause,
        })?;
    let bouncer = match spec.pgbouncer {
        Some(params) => {
            let admin = SessionSettings {
                admin_console: true,
                ..spec.session.clone()
            };
            Some(connect(params, &admin).await.map_err(|cause| SampleError::Connect {
                what: ADMIN_CONSOLE,
                cause,
            })?)
        }
        None => None,
    };
    let mut figures = pg_settings(&pg).await?;
    let stats_sql = if figures.server_version_num >= 140000 {
        DB_STATS_PG14_SQL
    } else {
        DB_STATS_SQL
    };
    let started = Instant::now();
    let pg_before = one(&pg, "pg_stat_database", stats_sql).await?;
    let bouncer_before = match &bouncer {
        Some(b) => Some(show_stats(b).await?),
        None => None,
    };
    let calls_before = statement_calls(&pg).await;
    let mut peaks = Peaks::default();
    loop {
        poll(&pg, bouncer.as_ref(), &mut peaks).await?;
        let left = spec.window.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(spec.poll)).await;
    }
    let pg_after = one(&pg, "pg_stat_database", stats_sql).await?;
    let window = started.elapsed().as_secs_f64().max(0.001);
    pg_rates(&mut figures, &pg_before, &pg_after, window)?;
    figures.busy_backends_peak = peaks.busy_backends;
    figures.client_backends = peaks.client_backends;
    let calls_after = statement_calls(&pg).await;
    let pgbouncer = match (&bouncer, bouncer_before) {
        (Some(b), Some(before)) => Some(bouncer_figures(b, &before, window, &peaks).await?),
        _ => None,
    };
    figures.session_features = match (calls_before, calls_after) {
        (Some(before), Some(after)) => Some(evidence::features(
            &before,
            &after,
            pgbouncer.as_ref(),
            &peaks.maintenance,
        )),
        _ => None,
    };
    Ok(Measured {
        window_seconds: window,
        postgres: figures,
        pgbouncer,
    })
}

async fn pg_settings(pg: &Session) -> Result<PgFigures, SampleError> {
    let what = "PostgreSQL settings";
    let row = one(pg, what, SETTINGS_SQL).await?;
    let version = col(what, row.i64("server_version_num"))?;
    Ok(PgFigures {
        server_version_num: crate::db::version::number(version).map_err(|cause| SampleError::Version {
            what: what.to_string(),
            cause,
        })?,
        max_connections: col(what, row.i64("max_connections"))?,
        reserved_connections: col(what, row.i64("reserved_connections"))?,
        ..PgFigures::default()
    })
}

fn pg_rates(f: &mut PgFigures, before: &Row, after: &Row, window: f64) -> Result<(), SampleError> {
    let what = "pg_stat_database";
    let xacts = col(what, after.f64("xacts"))? - col(what, before.f64("xacts"))?;
    f.xact_rate = Some(xacts.max(0.0) / window);
    f.busy_mean = match (
        col(what, after.opt_f64("busy_ms"))?,
        col(what, before.opt_f64("busy_ms"))?,
    ) {
        (Some(a), Some(b)) => Some((a - b).max(0.0) / 1000.0 / window),
        _ => None,
    };
    Ok(())
}

/// pg_stat_statements is optional: without it (or without the right to read it) the model
/// says pool_mode was assumed rather than failing the run.
async fn statement_calls(pg: &Session) -> Option<evidence::Calls> {
    match query(pg, "pg_stat_statements", STATEMENTS_SQL).await {
        Ok(rows) => Some(evidence::snapshot(&rows)),
        Err(e) => {
            tracing::info!("pg_stat_statements not usable, pool_mode will be assumed: {e}");
            None
        }
    }
}

#[derive(Default)]
pub(super) struct Peaks {
    busy_backends: i64,
    client_backends: i64,
    /// "user on database" of dbtool, pg_dump and pg_restore sessions seen while sampling.
    maintenance: std::collections::BTreeSet<String>,
    /// (database, user) → (peak cl_waiting, peak maxwait seconds)
    pub(super) waits: BTreeMap<(String, String), (i64, f64)>,
}

async fn poll(pg: &Session, bouncer: Option<&Session>, peaks: &mut Peaks) -> Result<(), SampleError> {
    let what = "pg_stat_activity";
    let row = one(pg, what, ACTIVITY_SQL).await?;
    peaks.busy_backends = peaks.busy_backends.max(col(what, row.i64("busy_backends"))?);
    peaks.client_backends = col(what, row.i64("client_backends"))?;
    let maintenance = col(what, row.str("maintenance"))?;
    peaks
        .maintenance
        .extend(maintenance.split(", ").filter(|s| !s.is_empty()).map(str::to_string));
    if let Some(b) = bouncer {
        for p in show_pools(b).await? {
            let entry = peaks.waits.entry((p.database, p.user)).or_insert((0, 0.0));
            entry.0 = entry.0.max(p.cl_waiting);
            entry.1 = entry.1.max(p.maxwait_seconds_peak);
        }
    }
    Ok(())
}
