//! Warm check sessions for the daemon: per target, one deadpool pool per database, kept across
//! scheduled runs, all of a target's pools together bounded by its `max_connections`.
//!
//! A fresh backend pays for its start and for warming its catalog caches on every query that
//! reads the catalog (on 5,000 tables the tables query takes about 47 ms of server time in a
//! fresh backend and 36 in a warm one; docs/src/performance.md). The one-shot command opens
//! and closes its sessions; the scheduler keeps them here instead.
//!
//! deadpool bounds one pool; the bound that matters to the watched server is per target, over
//! every database. So each live session holds a permit of the target's semaphore, and a
//! database that needs a new session when every permit is taken evicts an idle session of
//! another database first (closed before the new one opens, so the server never sees more).
//! A session is recycled when its connection is still open; a server restart closes them all,
//! and the next run opens new ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::session::BACKEND_EXIT_WAIT;
use super::{connect_session, ConnParams, ConnectError, Session, SessionSettings, Target};

/// A pooled session; derefs to [`Session`]. Dropping it gives it back to its pool.
pub type Lease = managed::Object<SessionManager>;

/// A live session and its share of the target's bound.
pub struct Warm {
    session: Session,
    /// Its backend, to see it gone when the session is closed to make room.
    pid: Option<i64>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Warm {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

/// Opens and recycles the sessions of one database of one target.
pub struct SessionManager {
    params: ConnParams,
    settings: SessionSettings,
    target: Weak<TargetPool>,
}

impl managed::Manager for SessionManager {
    type Type = Warm;
    type Error = ConnectError;

    async fn create(&self) -> Result<Warm, ConnectError> {
        let permit = match self.target.upgrade() {
            Some(target) => tokio::time::timeout(PERMIT_WAIT, target.live.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
            // The pool is being dropped with its target; nothing to bound against.
            None => Arc::new(Semaphore::new(1)).try_acquire_owned().ok(),
        };
        let Some(permit) = permit else {
            return Err(ConnectError::PoolBusy {
                target: self.params.redacted(),
                max: self.target.upgrade().map_or(1, |t| t.max),
                waited: PERMIT_WAIT,
            });
        };
        let session = connect_session(&self.params, &self.settings).await?;
        let pid = session.backend_pid().await;
        Ok(Warm {
            session,
            pid,
            _permit: permit,
        })
    }

    async fn recycle(&self, warm: &mut Warm, _: &Metrics) -> RecycleResult<ConnectError> {
        // The cheap check: a terminated backend or a restarted server closed the connection.
        if warm.session.is_closed() {
            return Err(RecycleError::message("the server closed the session"));
        }
        // A run gave up on it mid-statement (a probe's deadline): dropped, never lent again.
        if warm.session.interrupted() {
            return Err(RecycleError::message("a statement on the session was abandoned"));
        }
        Ok(())
    }
}

/// The pools of one target.
pub struct TargetPool {
    params: ConnParams,
    settings: SessionSettings,
    max: usize,
    live: Arc<Semaphore>,
    databases: Mutex<HashMap<String, managed::Pool<SessionManager>>>,
    /// Held while a session is closed to make room and its replacement opened, so the freed
    /// permit goes to the database that made room.
    making_room: tokio::sync::Mutex<()>,
    me: Weak<TargetPool>,
}

/// A session no run used for this long is closed: jobs that run more often keep theirs warm,
/// rarer ones pay the start-up again rather than hold a backend in between.
pub const IDLE_MAX: Duration = Duration::from_secs(600);

/// How long a database waits for one of the target's sessions to become free.
const PERMIT_WAIT: Duration = Duration::from_secs(30);

impl TargetPool {
    fn new(params: ConnParams, settings: SessionSettings, max: usize) -> Arc<TargetPool> {
        let max = max.max(1);
        Arc::new_cyclic(|me| TargetPool {
            params,
            settings,
            max,
            live: Arc::new(Semaphore::new(max)),
            databases: Mutex::new(HashMap::new()),
            making_room: tokio::sync::Mutex::new(()),
            me: me.clone(),
        })
    }

    /// A session to `dbname`: an idle one if the pool has it, else a new one. With every
    /// permit taken, an idle session of another database is closed first, and `main` (the
    /// run's main session) waits until the server no longer lists its backend, so the server
    /// never sees more than the bound.
    pub async fn get(&self, dbname: &str, main: Option<&Session>) -> Result<Lease, ConnectError> {
        let busy = || ConnectError::PoolBusy {
            target: self.params.redacted(),
            max: self.max,
            waited: PERMIT_WAIT,
        };
        let pool = self.pool(dbname).ok_or_else(busy)?;
        let lease = |pool: managed::Pool<SessionManager>| async move {
            pool.get().await.map_err(|e| match e {
                managed::PoolError::Backend(e) => e,
                _ => busy(),
            })
        };
        if pool.status().available > 0 || self.live.available_permits() > 0 {
            return lease(pool).await;
        }
        let _room = self.making_room.lock().await;
        if self.live.available_permits() == 0 {
            if let Some(Warm { session, pid, _permit }) = self.evict_idle_except(dbname) {
                session.close().await;
                if let (Some(main), Some(pid)) = (main, pid) {
                    main.wait_backend_gone(pid, BACKEND_EXIT_WAIT).await;
                }
            }
        }
        lease(pool).await
    }

    /// Sessions open now, idle or in use, over every database.
    pub fn open_sessions(&self) -> usize {
        self.max - self.live.available_permits()
    }

    fn pool(&self, dbname: &str) -> Option<managed::Pool<SessionManager>> {
        let mut dbs = self.databases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pool) = dbs.get(dbname) {
            return Some(pool.clone());
        }
        let manager = SessionManager {
            params: self.params.with_dbname(dbname),
            settings: self.settings.clone(),
            target: self.me.clone(),
        };
        // Fails only for timeouts without a runtime, which this pool does not set.
        let pool = managed::Pool::builder(manager).max_size(self.max).build().ok()?;
        dbs.insert(dbname.to_string(), pool.clone());
        Some(pool)
    }

    /// The pools of every database but `except`, taken out of the lock to be worked on.
    fn pools_except(&self, except: Option<&str>) -> Vec<managed::Pool<SessionManager>> {
        let dbs = self.databases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        dbs.iter()
            .filter(|(db, _)| Some(db.as_str()) != except)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Closes idle sessions: those unused for longer than `idle`, or every idle one with `None`.
    async fn close_idle(&self, idle: Option<Duration>) -> usize {
        let mut closed = 0;
        for pool in self.pools_except(None) {
            let removed = pool.retain(|_, m| idle.is_some_and(|max| m.last_used() < max)).removed;
            for Warm { session, .. } in removed {
                session.close().await;
                closed += 1;
            }
        }
        closed
    }

    fn evict_idle_except(&self, dbname: &str) -> Option<Warm> {
        for pool in self.pools_except(Some(dbname)) {
            let mut taken = false;
            let removed = pool.retain(|_, _| std::mem::replace(&mut taken, true));
            if let Some(warm) = removed.removed.into_iter().next() {
                return Some(warm);
            }
        }
        None
    }
}

/// Every target's pools, for one configuration of the daemon (a reload makes new ones, so a
/// target's connection parameters are fixed here): by target name, session limits and bound.
#[derive(Default)]
pub struct Pools {
    targets: Mutex<HashMap<(String, String, usize), Arc<TargetPool>>>,
}

impl Pools {
    /// The pools of `target` under these limits and this bound, made on first use: two jobs
    /// watching one target with different limits do not share sessions.
    /// A Redis target has no sessions to keep: an error.
    pub fn of(&self, target: &Target, settings: &SessionSettings, max: usize) -> Result<Arc<TargetPool>, ConnectError> {
        let params = target.params()?;
        let key = (target.name.clone(), format!("{settings:?}"), max);
        let mut all = self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(all
            .entry(key)
            .or_insert_with(|| TargetPool::new(params.clone(), settings.clone(), max))
            .clone())
    }

    /// Closes the sessions no run has used for `idle` (every idle session with `None`, at
    /// shutdown), so the server is not left with backends nobody will use soon.
    pub async fn close_idle(&self, idle: Option<Duration>) -> usize {
        let pools: Vec<Arc<TargetPool>> = {
            let all = self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            all.values().cloned().collect()
        };
        let mut closed = 0;
        for pool in pools {
            closed += pool.close_idle(idle).await;
        }
        closed
    }

    /// Sessions open now, idle or in use, per target name (summed over the target's pools
    /// when two jobs watch it with different limits).
    pub fn sizes(&self) -> std::collections::BTreeMap<String, usize> {
        let all = self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut sizes = std::collections::BTreeMap::new();
        for ((name, _, _), pool) in all.iter() {
            *sizes.entry(name.clone()).or_insert(0) += pool.open_sessions();
        }
        sizes
    }
}
