//! Why connecting failed, host by host, and the likely fix in terms of the settings the user
//! controls (connect.rs does the connecting).

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use rustls::CertificateError;
use tokio_postgres::error::SqlState;

use super::conninfo::{is_socket_host, ConnParams};
use super::tls::TlsError;

/// Why connecting failed; Display already includes each cause, so no `source` is chained
/// (an `{:#}` chain would print the causes twice).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("could not connect to {target}: {cause}")]
    Tls { target: String, cause: TlsError },
    #[error("could not connect to {target}: {}", render_failures(.failures))]
    Failed { target: String, failures: Vec<HostFailure> },
    /// The daemon's warm sessions of this target were all in use for too long.
    #[error("could not get a session to {target}: all {max} of its --max-connections stayed in use for {waited:?}")]
    PoolBusy {
        target: String,
        max: usize,
        waited: std::time::Duration,
    },
    /// A Redis target where a PostgreSQL server is needed.
    #[error(transparent)]
    NotSql(#[from] super::target::NotSql),
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
            ConnectError::PoolBusy { .. } | ConnectError::NotSql(_) => &[],
        }
    }
}

/// One host's failed attempt, with a hint at the likely fix.
#[derive(Debug)]
pub struct HostFailure {
    pub host: String,
    pub(super) cause: Cause,
    pub(super) hint: Option<String>,
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
pub(super) enum Cause {
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
pub(super) fn render(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.to_string(),
        None => crate::errors::render(e),
    }
}

/// One entry of the host list, with what it takes to reach it.
pub(super) struct Host {
    pub(super) index: usize,
    pub(super) name: String,
    pub(super) port: u16,
    pub(super) addr: Option<IpAddr>,
    pub(super) label: String,
}

impl Host {
    pub(super) fn new(params: &ConnParams, index: usize) -> Host {
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

    pub(super) fn is_socket(&self) -> bool {
        self.addr.is_none() && is_socket_host(&self.name)
    }
}

/// The likely fix for a failure, in terms of the settings the user controls.
pub(super) fn hint(cause: &Cause, params: &ConnParams, host: &Host) -> Option<String> {
    let e = match cause {
        Cause::Postgres(e) => e,
        Cause::Timeout(_) => return Some(TIMEOUT_HINT.to_string()),
        Cause::Refused(_) => return None,
    };
    if let Some(code) = e.code() {
        let message = e.as_db_error().map(|d| d.message()).unwrap_or_default();
        if let Some(hint) = certificate_hint(message, params) {
            return Some(hint);
        }
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
    if text.contains("channel binding") {
        return Some(CHANNEL_BINDING_HINT.to_string());
    }
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

/// libpq: "channel binding required, but server authenticated client without channel binding".
const CHANNEL_BINDING_HINT: &str =
    "channel_binding=require, but the server authenticated without channel binding: that \
     takes TLS (sslmode=require or stronger) and scram-sha-256 in pg_hba.conf (hostssl ... scram-sha-256); or set \
     channel_binding=prefer";
const TIMEOUT_HINT: &str = "check the network path, or raise connect_timeout= in --dsn or PGCONNECT_TIMEOUT";
const NO_PASSWORD_HINT: &str =
    "no password was sent; set PGPASSWORD or add a host:port:database:user:password line to ~/.pgpass (chmod 0600)";

fn chain(e: &tokio_postgres::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    crate::errors::chain(e)
}

/// `hostssl ... cert` refusals name the client certificate, not the role or pg_hba.conf.
fn certificate_hint(message: &str, params: &ConnParams) -> Option<String> {
    let (cert, key) = params.client_cert_files();
    let shown = |p: Option<std::path::PathBuf>| p.map_or_else(|| "(none)".to_string(), |p| p.display().to_string());
    if message.contains("requires a valid client certificate") {
        return Some(format!(
            "the server requires a client certificate and none was sent: certificate file {} was not found; set sslcert= and sslkey= in --dsn, or PGSSLCERT and PGSSLKEY, or put them at ~/.postgresql/postgresql.crt and postgresql.key",
            shown(cert)
        ));
    }
    if message.contains("certificate authentication failed") {
        return Some(format!(
            "the client certificate {} (key {}) was sent, but its common name does not match role '{}' (or the pg_ident.conf map); use a certificate issued for that role",
            shown(cert),
            shown(key),
            params.user()
        ));
    }
    None
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
    if matches!(cert, CertificateError::Revoked) {
        let (file, dir) = params.crl_files();
        let lists: Vec<String> = file.iter().chain(&dir).map(|p| p.display().to_string()).collect();
        return Some(format!(
            "the server certificate is revoked by the CRL in {}; the server needs a new certificate (ssl_cert_file)",
            lists.join(" and ")
        ));
    }
    if matches!(cert, CertificateError::UnknownRevocationStatus) {
        return Some("no CRL in sslcrl/sslcrldir covers the server certificate's issuer; add its CA's CRL".into());
    }
    // An expired certificate is trusted but out of date: pointing at sslrootcert would send the
    // reader after the wrong file.
    match cert {
        CertificateError::Expired => {
            return Some("the server certificate has expired; renew it on the server (ssl_cert_file) and reload".into())
        }
        CertificateError::ExpiredContext { not_after, .. } => {
            return Some(format!(
                "the server certificate expired at {}; renew it on the server (ssl_cert_file) and reload",
                unix_time_text(not_after.as_secs())
            ))
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            return Some(
                "the server certificate is not valid yet; check the clocks of this host and of the server".into(),
            )
        }
        _ => {}
    }
    let roots = match params.sslrootcert() {
        Some(path) => format!("sslrootcert {}", path.display()),
        None => "the default root certificate ~/.postgresql/root.crt".to_string(),
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

/// Seconds since the epoch as RFC 3339 in UTC, or the number when out of chrono's range.
fn unix_time_text(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || format!("{secs} (seconds since 1970)"),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}
