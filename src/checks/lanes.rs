//! Where the per-database queries run, within the target's session bound.
//!
//! `--max-connections N` counts every session dbtool holds on the server, the main one
//! included. The main session runs the cluster queries; up to N-1 more ("lanes") visit the
//! databases. A lane opens its next session only after the server has let go of its previous
//! one, so even a backend that is still exiting counts against the bound.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::plan::Plan;
use super::query::{version_name, SNAPSHOT_STATS, SNAPSHOT_STATS_SINCE};
use super::visits::Visit;
use super::{Query, QueryFailure};
use crate::db::pool::{Lease, TargetPool};
use crate::db::row::{rows_from_messages, Row};
use crate::db::session::BACKEND_EXIT_WAIT;
use crate::db::{connect_session, ConnectError, Session, Target};

/// Where a run's sessions come from: opened and closed by the run (the command), or the
/// daemon's warm pools, which keep them for the next run.
#[derive(Clone, Copy)]
pub enum Sessions<'a> {
    Fresh,
    Warm(&'a TargetPool),
}

/// One target's run: what to run, where, and where its sessions come from.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub target: &'a Target,
    pub plan: &'a Plan,
    pub sessions: Sessions<'a>,
    /// Where a run that may be cut off notes what it finished (a probe's deadline).
    pub finished: Option<&'a super::partial::Finished>,
    /// A scheduled job's kept results and intervals (`refresh`); None keeps nothing.
    pub refresh: Option<&'a super::refresh::Refresh>,
}

/// A session of a run: its own, or lent by a pool.
pub enum Held {
    Own(Session),
    Lent(Lent),
}

impl std::ops::Deref for Held {
    type Target = Session;
    fn deref(&self) -> &Session {
        match self {
            Held::Own(s) => s,
            Held::Lent(l) => &l.0,
        }
    }
}

/// A pooled session lent to a run. A run dropped at its deadline leaves it mid-statement:
/// what it was running is cancelled now, and its pool refuses it at the next recycle.
pub struct Lent(Lease);

impl Drop for Lent {
    fn drop(&mut self) {
        self.0.cancel_if_interrupted();
    }
}

impl Run<'_> {
    /// A session to `db` with the run's limits; `main`, the run's main session, watches a
    /// pooled session closed to make room leave the server.
    pub async fn open(&self, db: &str, main: Option<&Session>) -> Result<Held, ConnectError> {
        match self.sessions {
            Sessions::Fresh => connect_session(&self.target.params()?.with_dbname(db), &self.plan.session)
                .await
                .map(Held::Own),
            Sessions::Warm(pool) => pool.get(db, main).await.map(|l| Held::Lent(Lent(l))),
        }
    }
}

/// One query's result in one place, and how long it took.
pub(super) type Executed = (&'static str, Result<Vec<Row>, QueryFailure>, Duration);

pub(super) fn failure(db: Option<&str>, e: &tokio_postgres::Error) -> QueryFailure {
    let (message, sqlstate) = match e.as_db_error() {
        Some(d) => (d.message().to_string(), Some(d.code().code().to_string())),
        None => (e.to_string(), e.code().map(|c| c.code().to_string())),
    };
    QueryFailure {
        database: db.map(str::to_string),
        message,
        sqlstate,
        ..Default::default()
    }
}

pub(super) async fn exec(session: &Session, q: &'static Query, version: u32, db: Option<&str>) -> Executed {
    let started = Instant::now();
    let result = match q.sql_for(version) {
        Err(min) => Err(QueryFailure {
            database: db.map(str::to_string),
            message: format!("needs {}+", version_name(min)),
            needs_version: Some(min),
            ..Default::default()
        }),
        Ok(sql) => {
            let snapshot = q.snapshot_stats && version >= SNAPSHOT_STATS_SINCE;
            let sql = if snapshot {
                std::borrow::Cow::Owned(format!("{SNAPSHOT_STATS}{sql}"))
            } else {
                std::borrow::Cow::Borrowed(sql)
            };
            session
                .simple_query(&sql)
                .await
                .map(rows_from_messages)
                .map_err(|e| failure(db, &e))
        }
    };
    (q.name, result, started.elapsed())
}

/// A lane's session and its backend, which must be gone before the lane opens another.
struct Lane {
    session: Held,
    pid: Option<i64>,
}

async fn open_lane(run: &Run<'_>, db: &str, main: &Session) -> Result<Lane, ConnectError> {
    let session = run.open(db, Some(main)).await?;
    // Behind a pooler the backend is the pooler's to keep, and a pool's session stays open for
    // the next run: there is nothing to wait for.
    let pid = match &session {
        Held::Lent(_) => None,
        Held::Own(session) => session.backend_pid().await,
    };
    Ok(Lane { session, pid })
}

/// Closes the lane's session and waits (bounded) until the server no longer lists its backend.
async fn close_lane(main: &Session, lane: Lane) {
    let Held::Own(session) = lane.session else {
        return;
    };
    session.close().await;
    let Some(pid) = lane.pid else { return };
    if !main.wait_backend_gone(pid, BACKEND_EXIT_WAIT).await {
        tracing::debug!(pid, "a closed session's backend is still listed; going on");
    }
}

/// Runs the per-database queries in one database on a lane of its own.
async fn in_database(
    main: &Session,
    run: &Run<'_>,
    db: &str,
    queries: &[&'static Query],
    version: u32,
) -> Vec<Executed> {
    match open_lane(run, db, main).await {
        Ok(lane) => {
            let futs = queries.iter().map(|q| exec(&lane.session, q, version, Some(db)));
            let results = futures_util::future::join_all(futs).await;
            close_lane(main, lane).await;
            results
        }
        // Listed a moment ago, dropped since: nothing to check there, and not a problem.
        Err(e) if e.is_missing_database() => {
            tracing::debug!(database = %db, "database vanished before it could be checked");
            Vec::new()
        }
        Err(e) => queries
            .iter()
            .map(|q| {
                let f = QueryFailure {
                    database: Some(db.to_string()),
                    message: e.to_string(),
                    ..Default::default()
                };
                (q.name, Err(f), Duration::ZERO)
            })
            .collect(),
    }
}

/// The per-database queries of the connected database, spread over the main session and up to
/// N-1 lanes. Pipelined on one connection they run one after another in one backend, on one
/// core; the heavy catalog reads (tables, indexes, bloat) finish sooner side by side
/// (scripts/bench-health). A lane that cannot be opened just leaves its share to the others.
/// `extra`: how many lanes it may open besides the main session (see [`split`]).
async fn in_main_database(
    main: &Session,
    run: &Run<'_>,
    db: &str,
    queries: &[&'static Query],
    version: u32,
    extra: usize,
) -> Vec<Executed> {
    let lanes: Vec<Lane> = futures_util::future::join_all((0..extra).map(|_| open_lane(run, db, main)))
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    let sessions: Vec<&Session> = lanes.iter().map(|l| &*l.session).chain(std::iter::once(main)).collect();
    let futs = queries
        .iter()
        .enumerate()
        .map(|(i, q)| exec(sessions[i % sessions.len()], q, version, Some(db)));
    let results = futures_util::future::join_all(futs).await;
    futures_util::future::join_all(lanes.into_iter().map(|l| close_lane(main, l))).await;
    results
}

/// How the N-1 lanes are shared while the connected database is checked: (its extra lanes,
/// lanes for the other databases at the same time). With other databases to visit, they get
/// what the connected database's queries leave, at least one, so their work overlaps instead
/// of waiting (and, on warm sessions, their sessions stay open instead of replacing one of the
/// connected database's each run); without, the connected database may use them all.
fn split(max_connections: usize, queries: usize, others: bool) -> (usize, usize) {
    let lanes = max_connections.saturating_sub(1);
    if others && lanes > 0 {
        let main_extra = queries.saturating_sub(1).min(lanes - 1);
        (main_extra, lanes - main_extra)
    } else {
        (queries.saturating_sub(1).min(lanes), 0)
    }
}

/// The per-database queries of every visited database: the connected one on the main session
/// and its lanes, the others on lanes of their own at the same time (see [`split`]); lanes the
/// connected database frees then take the others still waiting.
pub(super) async fn in_databases(
    main: &Session,
    run: &Run<'_>,
    main_db: &str,
    visits: Vec<Visit>,
    version: u32,
) -> Vec<Executed> {
    let (mine, others): (Vec<Visit>, Vec<Visit>) = visits.into_iter().partition(|(d, _)| d == main_db);
    let main_queries: Option<Vec<&'static Query>> = mine.into_iter().next().map(|(_, qs)| qs);
    let others: VecDeque<Visit> = others.into();
    let lanes = run.plan.max_connections.saturating_sub(1);
    if lanes == 0 {
        // Only the main session: the other databases are not visited, and say so.
        let mut results = Vec::new();
        if let Some(queries) = &main_queries {
            results = in_main_database(main, run, main_db, queries, version, 0).await;
        }
        results.extend(others.iter().flat_map(|(db, queries)| {
            queries
                .iter()
                .map(move |q| (q.name, Err(QueryFailure::not_visited(db)), Duration::ZERO))
        }));
        return results;
    }
    let (extra, width) = match &main_queries {
        Some(queries) => split(run.plan.max_connections, queries.len(), !others.is_empty()),
        None => (0, lanes),
    };
    let queue = Mutex::new(others);
    let main_side = async {
        let Some(queries) = &main_queries else {
            return Vec::new();
        };
        let mut results = in_main_database(main, run, main_db, queries, version, extra).await;
        if extra > 0 {
            results.extend(in_other_databases(main, run, &queue, version, extra).await);
        }
        results
    };
    let others_side = in_other_databases(main, run, &queue, version, width);
    let (a, b) = futures_util::future::join(main_side, others_side).await;
    [a, b].concat()
}

/// `width` lanes taking databases from `queue` until it is empty.
async fn in_other_databases(
    main: &Session,
    run: &Run<'_>,
    queue: &Mutex<VecDeque<Visit>>,
    version: u32,
    width: usize,
) -> Vec<Executed> {
    let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
    let lanes = (0..width).map(|_| async {
        let mut results = Vec::new();
        while let Some((db, queries)) = next() {
            results.extend(in_database(main, run, &db, &queries, version).await);
        }
        results
    });
    futures_util::future::join_all(lanes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn other_databases_get_what_the_connected_one_leaves_and_at_least_one_lane() {
        // (max_connections, per-database queries, other databases) → (main's extra, others').
        assert_eq!(split(3, 6, true), (1, 1));
        assert_eq!(split(3, 1, true), (0, 2));
        assert_eq!(split(3, 6, false), (2, 0));
        assert_eq!(split(2, 6, true), (0, 1));
        assert_eq!(split(1, 6, true), (0, 0));
        assert_eq!(split(8, 3, true), (2, 5));
    }
}
