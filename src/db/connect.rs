//! Opens one tokio-postgres session from ConnParams, with dbtool's safety limits set at startup.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use rustls::CertificateError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Connection, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conninfo::{is_socket_host, ConnParams, SslMode, TargetSessionAttrs, DEFAULT_CONNECT_TIMEOUT};
use super::row::rows_from_messages;
use super::session::{self, Pooler, Session};
use super::tls::{self, TlsError};

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

/// Why connecting failed; Display already includes each cause, so no `source` is chained
/// (an `{:#}` chain would print the causes twice).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("could not connect to {target}: {cause}")]
    Tls { target: String, cause: TlsError },
    #[error("could not connect to {target}: {}", render_failures(.failures))]
    Failed { target: String, failures: Vec<HostFailure> },
}

impl ConnectError {
    /// The server rejected the password, or wanted one and none was known.
    pub fn is_auth_failure(&self) -> bool {
        self.failures().iter().any(|f| match &f.cause {
            Cause::Postgres(e) => {
                e.code() == Some(&SqlState::INVALID_PASSWORD) || render(e).contains("password missing")
            }
            _ => false,
        })
    }

    /// Every host attempted ran out of time.
    pub fn is_timeout(&self) -> bool {
        let failures = self.failures();
        !failures.is_empty() && failures.iter().all(|f| matches!(f.cause, Cause::Timeout(_)))
    }

    /// The failures, one per host tried, in order.
    /// The server said the database does not exist (SQLSTATE 3D000), e.g. dropped a moment ago.
    pub fn is_missing_database(&self) -> bool {
        let failures = self.failures();
        !failures.is_empty()
            && failures.iter().all(|f| {
                f.postgres_error().and_then(|e| e.code())
                    == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
            })
    }

    pub fn failures(&self) -> &[HostFailure] {
        match self {
            ConnectError::Tls { .. } => &[],
            ConnectError::Failed { failures, .. } => failures,
        }
    }
}

/// One host's failed attempt, with a hint at the likely fix.
#[derive(Debug)]
pub struct HostFailure {
    pub host: String,
    cause: Cause,
    hint: Option<String>,
}

impl HostFailure {
    pub fn postgres_error(&self) -> Option<&tokio_postgres::Error> {
        match &self.cause {
            Cause::Postgres(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for HostFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Postgres(e) => f.write_str(&render(e))?,
            Cause::Timeout(t) => write!(f, "timed out after {}s", t.as_secs_f64())?,
            Cause::Refused(why) => f.write_str(why)?,
        }
        match &self.hint {
            Some(hint) => write!(f, "; {hint}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
enum Cause {
    Postgres(tokio_postgres::Error),
    Timeout(Duration),
    /// dbtool itself turned the host down (unsupported socket kind, wrong role, untranslatable options).
    Refused(String),
}

impl From<tokio_postgres::Error> for Cause {
    fn from(e: tokio_postgres::Error) -> Self {
        Cause::Postgres(e)
    }
}

fn render_failures(failures: &[HostFailure]) -> String {
    match failures {
        [one] => one.to_string(),
        many => many
            .iter()
            .map(|f| format!("{}: {f}", f.host))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

/// tokio-postgres's Display omits the cause, so render the chain (a server error says it all).
fn render(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.to_string(),
        None => crate::errors::render(e),
    }
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
            tls::make_tls_connect(mode, params.sslrootcert(), params.home_dir()).map_err(|cause| ConnectError::Tls {
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

/// One entry of the host list, with what it takes to reach it.
struct Host {
    index: usize,
    name: String,
    port: u16,
    addr: Option<IpAddr>,
    label: String,
}

impl Host {
    fn new(params: &ConnParams, index: usize) -> Host {
        let name = params.hosts().get(index).cloned().unwrap_or_default();
        let port = params
            .ports()
            .get(index)
            .copied()
            .unwrap_or(super::conninfo::DEFAULT_PORT);
        let addr = params.hostaddrs().get(index).copied().flatten();
        let label = match name.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{name}]:{port}"),
            _ => format!("{name}:{port}"),
        };
        Host {
            index,
            name,
            port,
            addr,
            label,
        }
    }

    fn is_socket(&self) -> bool {
        self.addr.is_none() && is_socket_host(&self.name)
    }
}

async fn connect_host(
    params: &ConnParams,
    host: &Host,
    settings: &SessionSettings,
    tls: Option<&MakeRustlsConnect>,
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
    }
    if let Some(password) = params.password_for(host.index) {
        c.password(password);
    }
    if let Some(options) = options {
        c.options(options);
    }
    c
}

type Opening = (Client, tokio::task::JoinHandle<()>);

async fn open(config: &Config, host: &Host, tls: Option<&MakeRustlsConnect>) -> Result<Opening, tokio_postgres::Error> {
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

/// The likely fix for a failure, in terms of the settings the user controls.
fn hint(cause: &Cause, params: &ConnParams, host: &Host) -> Option<String> {
    let e = match cause {
        Cause::Postgres(e) => e,
        Cause::Timeout(_) => return Some(TIMEOUT_HINT.to_string()),
        Cause::Refused(_) => return None,
    };
    if let Some(code) = e.code() {
        return server_hint(code, params, host);
    }
    if let Some(tls) = chain(e).find_map(|c| {
        c.downcast_ref::<io::Error>()?
            .get_ref()?
            .downcast_ref::<rustls::Error>()
    }) {
        return tls_hint(tls, params);
    }
    let text = render(e);
    if text.contains("password missing") {
        return Some(NO_PASSWORD_HINT.to_string());
    }
    if text.contains("server does not support TLS") {
        let mode = params.sslmode();
        return Some(format!(
            "sslmode={mode} needs TLS, which the server does not offer; enable ssl on the server or use sslmode=prefer"
        ));
    }
    chain(e)
        .find_map(|c| c.downcast_ref::<io::Error>())
        .and_then(|io| io_hint(io, host))
}

const TIMEOUT_HINT: &str = "check the network path, or raise connect_timeout= in --dsn or PGCONNECT_TIMEOUT";
const NO_PASSWORD_HINT: &str =
    "no password was sent; set PGPASSWORD or add a host:port:database:user:password line to ~/.pgpass (chmod 0600)";

fn chain(e: &tokio_postgres::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    crate::errors::chain(e)
}

fn server_hint(code: &SqlState, params: &ConnParams, host: &Host) -> Option<String> {
    Some(match code {
        c if *c == SqlState::INVALID_PASSWORD => match params.password_origin(host.index) {
            Some(origin) => format!("the password came from {origin}; check it there"),
            None => NO_PASSWORD_HINT.to_string(),
        },
        c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => format!(
            "check that role '{}' exists and that the server's pg_hba.conf admits this user, database and client",
            params.user()
        ),
        c if *c == SqlState::INVALID_CATALOG_NAME => "check dbname= in --dsn or PGDATABASE".to_string(),
        c if *c == SqlState::TOO_MANY_CONNECTIONS => "the server has no free connection slots; retry later".to_string(),
        c if *c == SqlState::CANNOT_CONNECT_NOW => {
            "the server is starting up or shutting down; retry shortly".to_string()
        }
        _ => return None,
    })
}

fn tls_hint(e: &rustls::Error, params: &ConnParams) -> Option<String> {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return None;
    };
    let mode = params.sslmode();
    if matches!(
        cert,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    ) {
        return Some(format!(
            "sslmode={mode} checks the host name: connect by a name the certificate lists, or use sslmode=verify-ca"
        ));
    }
    let roots = match params.sslrootcert() {
        Some(path) => format!("sslrootcert {}", path.display()),
        None => "the default roots (~/.postgresql/root.crt, else the bundled web PKI roots)".to_string(),
    };
    Some(format!(
        "the server certificate is not trusted by {roots}; set sslrootcert= or PGSSLROOTCERT to the server's CA file"
    ))
}

fn io_hint(io: &io::Error, host: &Host) -> Option<String> {
    let (name, port) = (&host.name, host.port);
    Some(match io.kind() {
        io::ErrorKind::NotFound if host.is_socket() => {
            format!("no socket {name}/.s.PGSQL.{port}; is the server running locally? check PGHOST/host= and PGPORT/port=")
        }
        io::ErrorKind::ConnectionRefused if host.is_socket() => {
            "the socket exists but nothing listens on it; is the server running?".to_string()
        }
        io::ErrorKind::ConnectionRefused => format!(
            "is the server running on {name} and accepting TCP connections on port {port}? check PGHOST/PGPORT and the server's listen_addresses"
        ),
        io::ErrorKind::PermissionDenied if host.is_socket() => {
            format!("no permission to use the socket in {name}; check that directory's permissions")
        }
        io::ErrorKind::TimedOut => TIMEOUT_HINT.to_string(),
        _ if io.to_string().contains("lookup address") => {
            format!("could not resolve host name {name}; check PGHOST or host= in --dsn")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::conninfo::MapEnv;
    use std::collections::HashMap;
    use tokio_postgres::config::Host as PgHost;

    fn params(dsn: &str) -> ConnParams {
        let env = MapEnv(HashMap::from([("HOME".to_string(), "/nonexistent".to_string())]));
        ConnParams::resolve(Some(dsn), &env).expect("valid DSN")
    }

    #[test]
    fn default_settings_become_startup_gucs() {
        let gucs = SessionSettings::default().gucs();
        let expected = [
            ("statement_timeout", "5000"),
            ("lock_timeout", "100"),
            ("default_transaction_read_only", "on"),
            ("jit", "off"),
        ];
        let gucs: Vec<(&str, &str)> = gucs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(gucs, expected);
    }

    #[test]
    fn sub_millisecond_limits_round_up_not_to_zero() {
        assert_eq!(millis(Duration::from_micros(500)), "1");
        assert_eq!(millis(Duration::ZERO), "0");
        assert_eq!(millis(Duration::from_millis(1500)), "1500");
    }

    #[test]
    fn sockets_never_use_tls_and_tcp_follows_sslmode() {
        let p = params(
            "host=/tmp/sock,db.test,/tmp/x hostaddr=,10.0.0.9, port=5433 user=u sslmode=verify-full options=-cx=1",
        );
        let socket = config(&p, &Host::new(&p, 0), Some("-c a=1"), Duration::from_secs(3));
        assert_eq!(socket.get_ssl_mode(), PgSslMode::Disable);
        assert!(matches!(socket.get_hosts(), [PgHost::Unix(path)] if path.as_os_str() == "/tmp/sock"));
        assert_eq!(
            (socket.get_ports(), socket.get_options()),
            (&[5433][..], Some("-c a=1"))
        );
        assert_eq!(socket.get_application_name(), Some("dbtool"));
        assert_eq!(socket.get_connect_timeout(), Some(&Duration::from_secs(3)));
        let tcp = config(&p, &Host::new(&p, 1), None, Duration::from_secs(3));
        assert_eq!(tcp.get_ssl_mode(), PgSslMode::Require);
        assert!(matches!(tcp.get_hosts(), [PgHost::Tcp(h)] if h == "db.test"));
        assert_eq!(tcp.get_hostaddrs(), [IpAddr::from([10, 0, 0, 9])]);
        assert_eq!(tcp.get_options(), None);
        assert_eq!(params("host=h sslmode=allow").sslmode(), SslMode::Allow);
        let allow = params("host=h sslmode=allow user=u");
        assert_eq!(
            config(&allow, &Host::new(&allow, 0), None, Duration::ZERO).get_ssl_mode(),
            PgSslMode::Prefer
        );
    }

    #[tokio::test]
    async fn unreachable_socket_says_what_to_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = params(&format!(
            "host={} port=5999 user=u password=hunter2",
            dir.path().display()
        ));
        let err = connect(&p, &SessionSettings::default()).await.expect_err("no server");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("could not connect to {}: ", p.redacted())),
            "{text}"
        );
        assert!(
            text.contains("is the server running locally") && text.contains("PGHOST"),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
        assert!(!err.is_auth_failure() && !err.is_timeout());
    }

    #[tokio::test]
    async fn abstract_sockets_are_refused_by_name() {
        let p = params("host=@pg port=5999 user=u");
        let text = connect(&p, &SessionSettings::default())
            .await
            .expect_err("refused")
            .to_string();
        assert!(text.contains("abstract unix sockets"), "{text}");
    }
}
