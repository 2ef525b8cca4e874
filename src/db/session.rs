//! A read-only dbtool session that is safe on a pooled server connection.
//!
//! Directly connected, dbtool's limits travel as startup options and hold for the whole
//! session. Behind a transaction pooler (PgBouncer with `pool_mode = transaction` or
//! `statement`) a session is not ours: the server connection goes back to the application
//! after each transaction, with whatever session state we left on it. There every statement
//! runs as `BEGIN READ ONLY; SET LOCAL …; statement; COMMIT` in one simple-protocol message,
//! so no setting outlives dbtool's own transaction.

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::connect::SessionSettings;

/// How long a closed session's backend is given to leave the server before dbtool goes on.
pub const BACKEND_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why dbtool treats a server as a connection pooler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooler {
    /// It refused the `options` startup parameter, as PgBouncer does.
    RefusesOptions,
    /// It accepted the startup options but they are not in force (PgBouncer with
    /// `ignore_startup_parameters = options`).
    DropsOptions,
}

impl Pooler {
    pub fn describe(self) -> &'static str {
        match self {
            Pooler::RefusesOptions => "refuses startup options, as a pooler such as PgBouncer does",
            Pooler::DropsOptions => "ignored dbtool's startup options (PgBouncer's ignore_startup_parameters?)",
        }
    }
}

/// One connection for checks: direct, or wrapped for a pooler.
pub struct Session {
    client: Client,
    connection: Option<JoinHandle<()>>,
    wrap: Option<Wrap>,
    /// Statements sent and not yet answered. Counted down only when the answer is read, so a
    /// caller that gave up mid-statement (a probe past its deadline) leaves it above zero:
    /// the session is then in an unknown state and must not be lent again.
    in_flight: std::sync::atomic::AtomicUsize,
}

struct Wrap {
    pooler: Pooler,
    /// `BEGIN READ ONLY; SET LOCAL …` sent before every statement.
    begin: String,
    /// One transaction at a time: a failed one must be rolled back before the next is sent,
    /// or pipelined statements would run in (or be refused by) an aborted transaction.
    turn: Mutex<()>,
}

impl Session {
    pub(super) fn direct(client: Client, connection: JoinHandle<()>) -> Session {
        Session {
            client,
            connection: Some(connection),
            wrap: None,
            in_flight: Default::default(),
        }
    }

    pub(super) fn pooled(
        client: Client,
        connection: JoinHandle<()>,
        pooler: Pooler,
        user_options: Option<&str>,
        settings: &SessionSettings,
    ) -> Result<Session, String> {
        Ok(Session {
            client,
            connection: Some(connection),
            wrap: Some(Wrap {
                pooler,
                begin: begin_statements(user_options, settings)?,
                turn: Mutex::new(()),
            }),
            in_flight: Default::default(),
        })
    }

    /// The connection is gone: the server ended the session or restarted.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Why this session runs each statement in its own transaction, if it does.
    pub fn pooler(&self) -> Option<Pooler> {
        self.wrap.as_ref().map(|w| w.pooler)
    }

    /// Runs `sql` (one or more statements) over the simple query protocol. Behind a pooler it
    /// runs inside its own read-only transaction with dbtool's limits as `SET LOCAL`.
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        use std::sync::atomic::Ordering;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = match &self.wrap {
            None => self.client.simple_query(sql).await,
            Some(wrap) => {
                let _turn = wrap.turn.lock().await;
                in_transaction(&self.client, &wrap.begin, sql).await
            }
        };
        // Not reached when the caller drops this future: see `interrupted`.
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// A statement was abandoned before its answer came back: the server may still be
    /// running it, and its answer would go to the next caller.
    pub fn interrupted(&self) -> bool {
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Asks the server to cancel what an interrupted session is running (a cancel request on a
    /// connection of its own, as libpq's PQcancel), so an abandoned check stops now rather than
    /// at its statement_timeout. Nothing to do for a session that is not interrupted.
    pub fn cancel_if_interrupted(&self) {
        if !self.interrupted() || self.client.is_closed() {
            return;
        }
        let token = self.client.cancel_token();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // The cancel request is answered before any authentication or TLS requirement of
            // pg_hba.conf applies, so a plain connection serves for TLS sessions too.
            rt.spawn(async move {
                if let Err(e) = token.cancel_query(tokio_postgres::NoTls).await {
                    tracing::debug!(error = %e, "cancel request for an abandoned statement not delivered");
                }
            });
        }
    }

    /// The server process serving this session; `None` behind a pooler (the backend is the
    /// pooler's) or when the server would not say.
    pub async fn backend_pid(&self) -> Option<i64> {
        if self.wrap.is_some() {
            return None;
        }
        let sql = "/* dbtool */ SELECT pg_catalog.pg_backend_pid() AS pid";
        let rows = super::row::rows_from_messages(self.simple_query(sql).await.ok()?);
        rows.first().and_then(|r| r.i64("pid").ok())
    }

    /// Waits, at most `limit`, until the server no longer lists backend `pid`: a closed
    /// session's backend still counts against the server's connections while it exits.
    /// Returns whether it is gone.
    pub async fn wait_backend_gone(&self, pid: i64, limit: std::time::Duration) -> bool {
        let sql = format!("/* dbtool */ SELECT count(*) AS n FROM pg_catalog.pg_stat_activity WHERE pid = {pid}");
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            let listed = self.simple_query(&sql).await.ok().and_then(|m| {
                let rows = super::row::rows_from_messages(m);
                rows.first().and_then(|r| r.i64("n").ok())
            });
            if listed == Some(0) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        false
    }

    /// Ends the session and waits until the connection is closed, so a caller bounding its
    /// sessions can open the next one without exceeding the bound.
    pub async fn close(mut self) {
        let connection = self.connection.take();
        drop(self);
        if let Some(handle) = connection {
            let _ = handle.await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // An abandoned statement: cancel it and drop the socket rather than let the
        // connection task wait for its answer.
        if self.interrupted() {
            self.cancel_if_interrupted();
            if let Some(handle) = self.connection.take() {
                handle.abort();
            }
        }
    }
}

/// `sql` between `begin` (from [`begin_statements`]) and COMMIT, in one message.
pub(super) async fn in_transaction(
    client: &Client,
    begin: &str,
    sql: &str,
) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
    // Newlines, not spaces: a trailing `-- comment` in `sql` must not swallow the COMMIT.
    let result = client.simple_query(&format!("{begin};\n{sql}\n;COMMIT")).await;
    if result.is_err() {
        // An error inside an explicit transaction leaves it aborted and open: the pooler
        // would keep the server connection for us and the next statement would fail.
        let _ = client.simple_query("ROLLBACK").await;
    }
    result
}

/// `BEGIN READ ONLY` and the user's options and dbtool's limits as `SET LOCAL`, in that order so
/// the limits win.
pub(super) fn begin_statements(user_options: Option<&str>, settings: &SessionSettings) -> Result<String, String> {
    let mut gucs = match user_options {
        Some(options) => option_gucs(options)?,
        None => Vec::new(),
    };
    gucs.extend(
        settings
            .gucs()
            .into_iter()
            // BEGIN READ ONLY says it for this transaction; the default is session state.
            .filter(|(name, _)| name != "default_transaction_read_only"),
    );
    let sets: Vec<String> = (gucs.iter())
        .map(|(name, value)| format!("SET LOCAL {name} = '{}'", value.replace('\'', "''")))
        .collect();
    let begin = if settings.read_only { "BEGIN READ ONLY" } else { "BEGIN" };
    Ok(format!("/* dbtool */ {begin}; {}", sets.join("; ")))
}

/// The `-c name=value` and `--name=value` switches of an options string (split like the
/// server does: whitespace separates, backslash escapes). Anything else cannot become a SET.
fn option_gucs(options: &str) -> Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => words.extend((!word.is_empty()).then(|| std::mem::take(&mut word))),
            c => word.push(c),
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    let untranslatable = |w: &str| {
        format!("the server (likely PgBouncer) refuses startup options and '{w}' in options/PGOPTIONS cannot be sent as SET LOCAL; use only -c name=value there")
    };
    let mut gucs = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let setting = match (w.as_str(), w.strip_prefix("--"), w.strip_prefix("-c")) {
            ("-c", _, _) => words.next().ok_or_else(|| untranslatable(&w))?,
            (_, Some(s), _) => s.replace('-', "_"),
            (_, _, Some(s)) => s.to_string(),
            _ => return Err(untranslatable(&w)),
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(untranslatable(&setting));
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(untranslatable(&setting));
        }
        gucs.push((name.to_string(), value.to_string()));
    }
    Ok(gucs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pooled_statements_set_everything_locally_user_options_first() {
        let settings = SessionSettings {
            idle_in_transaction_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let sql =
            begin_statements(Some(r"-c search_path=a\ b --work-mem=64MB -cjit=off"), &settings).expect("translatable");
        assert_eq!(
            sql,
            "/* dbtool */ BEGIN READ ONLY; SET LOCAL search_path = 'a b'; SET LOCAL work_mem = '64MB'; \
             SET LOCAL jit = 'off'; SET LOCAL statement_timeout = '5000'; SET LOCAL lock_timeout = '100'; \
             SET LOCAL idle_in_transaction_session_timeout = '60000'; SET LOCAL jit = 'off'"
        );
        assert!(!sql.contains("SET search_path") && !sql.contains("default_transaction_read_only"));
        assert_eq!(
            option_gucs("-c x='it''s'").expect("quoted"),
            [("x".to_string(), "'it''s'".to_string())]
        );
        assert!(begin_statements(Some("-c a='"), &settings)
            .expect("ok")
            .contains("SET LOCAL a = ''''"));
        for bad in ["-d 2", "-c", "-c novalue", "-c bad;name=1"] {
            let err = option_gucs(bad).expect_err(bad);
            assert!(err.contains("PgBouncer") && err.contains("-c name=value"), "{err}");
        }
    }
}
