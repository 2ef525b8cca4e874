//! Warm check sessions for the daemon: per target, one deadpool pool per database, kept across
//! scheduled runs, all of a target's pools together bounded by its `max_connections`.
//!
//! A fresh backend pays for its start and for warming its catalog caches on every query that
//! reads the catalog: on 5,000 tables the per-database check queries cost about 270 ms of
//! server CPU in fresh backends and 165 ms in warm ones (scripts/bench-health). The one-shot
//! command opens and closes its sessions; the scheduler keeps them here instead.
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

use super::{connect_session, ConnParams, ConnectError, Session, SessionSettings, Target};

/// A pooled session; derefs to [`Session`]. Dropping it gives it back to its pool.
pub type Lease = managed::Object<SessionManager>;

/// A live session and its share of the target's bound.
pub struct Warm {
    session: Session,
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
            Some(target) => target.permit(self.params.dbname()).await,
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
        Ok(Warm {
            session,
            _permit: permit,
        })
    }

    async fn recycle(&self, warm: &mut Warm, _: &Metrics) -> RecycleResult<ConnectError> {
        // The cheap check: a terminated backend or a restarted server closed the connection.
        if warm.session.is_closed() {
            return Err(RecycleError::message("the server closed the session"));
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
    me: Weak<TargetPool>,
}

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
            me: me.clone(),
        })
    }

    /// A session to `dbname`: an idle one if the pool has it, else a new one.
    pub async fn get(&self, dbname: &str) -> Result<Lease, ConnectError> {
        let busy = || ConnectError::PoolBusy {
            target: self.params.redacted(),
            max: self.max,
            waited: PERMIT_WAIT,
        };
        let pool = self.pool(dbname).ok_or_else(busy)?;
        pool.get().await.map_err(|e| match e {
            managed::PoolError::Backend(e) => e,
            _ => busy(),
        })
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

    /// A permit for a new session of `dbname`; with none free, an idle session of another
    /// database is closed for it.
    async fn permit(&self, dbname: &str) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.live.clone().try_acquire_owned() {
            return Some(p);
        }
        if let Some(idle) = self.evict_idle_except(dbname) {
            // Closed before the permit is released, so the new session never overlaps it.
            let Warm { session, _permit } = idle;
            session.close().await;
            return Some(_permit);
        }
        tokio::time::timeout(PERMIT_WAIT, self.live.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }

    fn evict_idle_except(&self, dbname: &str) -> Option<Warm> {
        let pools: Vec<managed::Pool<SessionManager>> = {
            let dbs = self.databases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            dbs.iter()
                .filter(|(db, _)| *db != dbname)
                .map(|(_, p)| p.clone())
                .collect()
        };
        for pool in pools {
            let mut taken = false;
            let removed = pool.retain(|_, _| std::mem::replace(&mut taken, true));
            if let Some(warm) = removed.removed.into_iter().next() {
                return Some(warm);
            }
        }
        None
    }
}

/// Every target's pools, for one configuration of the daemon.
#[derive(Default)]
pub struct Pools {
    targets: Mutex<HashMap<String, Arc<TargetPool>>>,
}

impl Pools {
    /// The pools of `target`, made on first use; a target whose connection parameters,
    /// limits or bound changed gets new ones.
    pub fn of(&self, target: &Target, settings: &SessionSettings, max: usize) -> Arc<TargetPool> {
        let key = format!("{}\n{:?}\n{settings:?}\n{max}", target.name, target.params);
        let mut all = self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.entry(key)
            .or_insert_with(|| TargetPool::new(target.params.clone(), settings.clone(), max))
            .clone()
    }

    /// Sessions open now, per target name.
    pub fn sizes(&self) -> Vec<(String, usize)> {
        let all = self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.iter()
            .map(|(k, p)| (k.split('\n').next().unwrap_or_default().to_string(), p.open_sessions()))
            .collect()
    }
}
