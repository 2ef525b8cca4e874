//! Opens one tokio-postgres session from ConnParams, with dbtool's safety limits set at startup.

use std::time::Duration;

use super::tls_stream::MakeTls;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::{
    ChannelBinding as PgChannelBinding, SslMode as PgSslMode, SslNegotiation as PgSslNegotiation,
};
use tokio_postgres::{Client, Config, Connection, NoTls, SimpleQueryMessage};

use super::connect_error::{hint, render, Cause, ConnectError, Host, HostFailure};
use super::conninfo::{
    is_socket_host, ChannelBinding, ConnParams, SslMode, SslNegotiation, TargetSessionAttrs, DEFAULT_CONNECT_TIMEOUT,
};
use super::row::rows_from_messages;
use super::session::{self, Pooler, Session};
use super::{client_cert, tls};

/// Limits every dbtool session runs under, so a check can never block or change production.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub read_only: bool,
    pub idle_in_transaction_timeout: Option<Duration>,
    /// PgBouncer's admin console (database `pgbouncer`): it rejects the options startup
    /// parameter and reads SET as its own config command, so nothing above is sent there.
    pub admin_console: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_millis(100),
            read_only: true,
            idle_in_transaction_timeout: None,
            admin_console: false,
        }
    }
}

impl SessionSettings {
    pub(super) fn gucs(&self) -> Vec<(String, String)> {
        let read_only = if self.read_only { "on" } else { "off" };
        let mut gucs = vec![
            ("statement_timeout", millis(self.statement_timeout)),
            ("lock_timeout", millis(self.lock_timeout)),
            ("default_transaction_read_only", read_only.to_string()),
        ];
        if let Some(t) = self.idle_in_transaction_timeout {
            gucs.push(("idle_in_transaction_session_timeout", millis(t)));
        }
        if self.read_only {
            // Checks are short catalog queries, and the planner misestimates rows through
            // catalog views (pg_stats): the bloat estimate crossed jit_optimize_above_cost and
            // spent ~600 ms of server CPU compiling a query that runs in 12 ms (scripts/bench-health).
            gucs.push(("jit", "off".to_string()));
        }
        gucs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// Whole milliseconds, rounded up: PostgreSQL reads 0 as "no limit", which 0.5 ms must not become.
fn millis(d: Duration) -> String {
    d.as_millis().max(u128::from(!d.is_zero())).to_string()
}

/// Connects to the first host in `params` that accepts, trying them in order like libpq, for
/// work that keeps session state (advisory locks, session settings, pg_dump): a connection
/// pooler is refused, since transaction pooling would hand that state to other clients.
pub async fn connect(params: &ConnParams, settings: &SessionSettings) -> Result<Client, ConnectError> {
    let opened = connect_any(params, settings, Allow::DirectOnly).await?;
    Ok(opened.client)
}

/// Connects for read-only checks: directly, or through a transaction pooler, where every
/// statement then runs in a transaction of its own (see [`Session`]).
pub async fn connect_session(params: &ConnParams, settings: &SessionSettings) -> Result<Session, ConnectError> {
    let allow = if settings.read_only {
        Allow::Pooled
    } else {
        Allow::DirectOnly
    };
    let opened = connect_any(params, settings, allow).await?;
    Ok(match opened.pooler {
        None => Session::direct(opened.client, opened.connection),
        Some(pooler) => {
            Session::pooled(opened.client, opened.connection, pooler, params.options(), settings).map_err(|why| {
                ConnectError::Failed {
                    target: params.redacted(),
                    failures: vec![HostFailure {
                        host: opened.host,
                        cause: Cause::Refused(why),
                        hint: None,
                    }],
                }
            })?
        }
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Allow {
    DirectOnly,
    Pooled,
}

/// An open connection and what dbtool learnt about it.
struct Opened {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
    pooler: Option<Pooler>,
    host: String,
}

async fn connect_any(params: &ConnParams, settings: &SessionSettings, allow: Allow) -> Result<Opened, ConnectError> {
    let target = params.redacted();
    let any_tcp = (params.hosts().iter().zip(params.hostaddrs())).any(|(h, a)| a.is_some() || !is_socket_host(h));
    let tls = match params.sslmode() {
        SslMode::Disable => None,
        _ if !any_tcp => None,
        mode => {
            let (cert, key) = params.client_cert_files();
            let tls = client_cert::load(cert.as_deref(), key.as_deref(), params.sslpassword())
                .map_err(tls::TlsError::from)
                .and_then(|client| {
                    let roots = tls::Roots {
                        sslrootcert: params.sslrootcert(),
                        home: params.home_dir(),
                        crl: params.crl_files(),
                    };
                    tls::make_tls_connect(mode, &roots, client)
                });
            tls.map_err(|cause| ConnectError::Tls {
                target: target.clone(),
                cause,
            })?
        }
    };
    let timeout = params.connect_timeout().unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let mut failures = Vec::new();
    // One tokio-postgres Config per host rather than its own multi-host loop: sockets must go
    // without TLS, each host may have its own .pgpass password, and each failure gets a hint.
    for i in 0..params.hosts().len() {
        let host = Host::new(params, i);
        // Bounds the whole attempt (TCP, TLS, auth, fallback), not just the socket connect.
        let attempt = connect_host(params, &host, settings, tls.as_ref(), timeout, allow);
        let cause = match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(opened)) => return Ok(opened),
            Ok(Err(cause)) => cause,
            Err(_) => Cause::Timeout(timeout),
        };
        let hint = hint(&cause, params, &host);
        let failure = HostFailure {
            host: host.label,
            cause,
            hint,
        };
        tracing::debug!(host = %failure.host, "connection attempt failed: {failure}");
        failures.push(failure);
    }
    Err(ConnectError::Failed { target, failures })
}

async fn connect_host(
    params: &ConnParams,
    host: &Host,
    settings: &SessionSettings,
    tls: Option<&MakeTls>,
    timeout: Duration,
    allow: Allow,
) -> Result<Opened, Cause> {
    if host.is_socket() && host.name.starts_with('@') {
        let why =
            "abstract unix sockets ('@' hosts) are not supported by dbtool; give a socket directory or a TCP host";
        return Err(Cause::Refused(why.to_string()));
    }
    let opened = |(client, connection), pooler| Opened {
        client,
        connection,
        pooler,
        host: host.label.clone(),
    };
    if settings.admin_console {
        return Ok(opened(
            open(&config(params, host, None, timeout), host, tls).await?,
            None,
        ));
    }
    // User options first, dbtool's last: the server applies them in order, so the safety limits win.
    let mut startup: Vec<String> = params.options().map(str::to_string).into_iter().collect();
    startup.extend(settings.gucs().iter().map(|(k, v)| format!("-c {k}={v}")));
    let with_options = config(params, host, Some(&startup.join(" ")), timeout);
    let (client, connection) = match open(&with_options, host, tls).await {
        Err(e) if rejects_options(&e) => {
            tracing::debug!(host = %host.label, "server rejected startup options: a connection pooler");
            let plain = open(&config(params, host, None, timeout), host, tls).await?;
            refuse_unless_allowed(Pooler::RefusesOptions, allow, host)?;
            let o = opened(plain, Some(Pooler::RefusesOptions));
            check_role(&o, params, settings).await?;
            return Ok(o);
        }
        other => other?,
    };
    let in_force = limits_in_force(&client, settings).await?;
    let o = opened((client, connection), (!in_force).then_some(Pooler::DropsOptions));
    if let Some(pooler) = o.pooler {
        tracing::debug!(host = %host.label, "startup options accepted but not in force: a connection pooler");
        refuse_unless_allowed(pooler, allow, host)?;
    }
    check_role(&o, params, settings).await?;
    Ok(o)
}

fn refuse_unless_allowed(pooler: Pooler, allow: Allow, host: &Host) -> Result<(), Cause> {
    if allow == Allow::Pooled {
        return Ok(());
    }
    Err(Cause::Refused(format!(
        "{} {}; this command keeps session state (an advisory lock, session settings) that transaction pooling \
         would lose or hand to the application's clients: point --dsn at PostgreSQL's own port (usually 5432), \
         not the pooler's (usually 6432)",
        host.label,
        pooler.describe()
    )))
}

/// Whether the startup options took effect: a pooler may accept and silently drop them.
async fn limits_in_force(client: &Client, settings: &SessionSettings) -> Result<bool, Cause> {
    let sql = "/* dbtool */ SELECT name, setting FROM pg_catalog.pg_settings \
               WHERE name IN ('statement_timeout', 'lock_timeout', 'default_transaction_read_only')";
    let rows = rows_from_messages(client.simple_query(sql).await?);
    let wanted = settings.gucs();
    let in_force = |name: &str| {
        let want = wanted.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let have = rows
            .iter()
            .find(|r| r.str("name").ok() == Some(name))
            .and_then(|r| r.str("setting").ok());
        want.is_some() && want == have
    };
    Ok(["statement_timeout", "lock_timeout", "default_transaction_read_only"]
        .iter()
        .all(|n| in_force(n)))
}

fn config(params: &ConnParams, host: &Host, options: Option<&str>, timeout: Duration) -> Config {
    let mut c = Config::new();
    c.user(params.user())
        .dbname(params.dbname())
        .application_name(params.application_name())
        .port(host.port)
        .connect_timeout(timeout);
    if host.is_socket() {
        // PostgreSQL never offers TLS on unix sockets; libpq ignores sslmode there too.
        c.host_path(&host.name).ssl_mode(PgSslMode::Disable);
    } else {
        match host.addr {
            // The name is still what TLS verifies; a socket path is no name, so use the address.
            Some(addr) if is_socket_host(&host.name) => c.host(addr.to_string()).hostaddr(addr),
            Some(addr) => c.host(&host.name).hostaddr(addr),
            None => c.host(&host.name),
        };
        c.ssl_mode(match params.sslmode() {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        });
        if params.ssl_negotiation() == SslNegotiation::Direct {
            c.ssl_negotiation(PgSslNegotiation::Direct);
        }
        tcp_settings(&mut c, params);
    }
    c.channel_binding(match params.channel_binding() {
        ChannelBinding::Disable => PgChannelBinding::Disable,
        ChannelBinding::Prefer => PgChannelBinding::Prefer,
        ChannelBinding::Require => PgChannelBinding::Require,
    });
    if let Some(password) = params.password_for(host.index) {
        c.password(password);
    }
    if let Some(options) = options {
        c.options(options);
    }
    c
}

/// keepalives and tcp_user_timeout, which (as in libpq) only TCP connections have.
fn tcp_settings(c: &mut Config, params: &ConnParams) {
    let k = params.keepalives();
    c.keepalives(!k.off);
    if let Some(idle) = k.idle {
        c.keepalives_idle(idle);
    }
    if let Some(interval) = k.interval {
        c.keepalives_interval(interval);
    }
    if let Some(count) = k.count {
        c.keepalives_retries(count);
    }
    if let Some(t) = k.tcp_user_timeout {
        c.tcp_user_timeout(t);
    }
}

type Opening = (Client, tokio::task::JoinHandle<()>);

async fn open(config: &Config, host: &Host, tls: Option<&MakeTls>) -> Result<Opening, tokio_postgres::Error> {
    match tls {
        Some(tls) if !host.is_socket() => {
            let (client, connection) = config.connect(tls.clone()).await?;
            Ok((client, spawn(connection, &host.label)))
        }
        _ => {
            let (client, connection) = config.connect(NoTls).await?;
            Ok((client, spawn(connection, &host.label)))
        }
    }
}

fn spawn<S, T>(connection: Connection<S, T>, label: &str) -> tokio::task::JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let label = label.to_string();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(host = %label, "connection ended with an error: {}", render(&e));
        }
    })
}

fn rejects_options(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        let message = db.message();
        message.contains("unsupported startup parameter") && message.contains("options")
    })
}

/// target_session_attrs checked by recovery state: tokio-postgres's own check reads
/// transaction_read_only, which dbtool's read-only default makes "on" everywhere. Behind a
/// pooler the query runs in its own transaction like every other.
async fn check_role(o: &Opened, params: &ConnParams, settings: &SessionSettings) -> Result<(), Cause> {
    let want = params.target_session_attrs();
    let want_standby = match want {
        TargetSessionAttrs::Any => return Ok(()),
        TargetSessionAttrs::ReadWrite | TargetSessionAttrs::Primary => false,
        TargetSessionAttrs::Standby => true,
    };
    const SQL: &str = "/* dbtool */ SELECT pg_catalog.pg_is_in_recovery()";
    let messages = match o.pooler {
        None => o.client.simple_query(SQL).await?,
        Some(_) => {
            let begin = session::begin_statements(params.options(), settings).map_err(Cause::Refused)?;
            session::in_transaction(&o.client, &begin, SQL).await?
        }
    };
    let in_recovery = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.try_get(0).ok().flatten(),
        _ => None,
    }) == Some("t");
    if in_recovery == want_standby {
        return Ok(());
    }
    let is = if in_recovery { "a standby" } else { "a primary" };
    Err(Cause::Refused(format!(
        "server is {is}, but target_session_attrs={} was asked for",
        want.as_str()
    )))
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
