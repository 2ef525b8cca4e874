//! Connection parameters resolved the way libpq does: the --dsn string, then PG* variables, then defaults.

use std::ffi::{CStr, OsStr};
use std::fmt;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pgpass;

mod child_env;
mod keywords;
mod parse;
mod resolve;
#[cfg(test)]
mod secrecy_tests;
mod service;
#[cfg(test)]
mod tests;
mod transport;
mod types;

use resolve::{current_os_user, Resolver};
pub use transport::{ChannelBinding, Keepalives, SslNegotiation};
pub use types::*;

/// The effective OS user's home directory (from the password database, not HOME): where a
/// program run by cron or systemd without HOME finds its dotfiles.
pub fn os_user_home() -> Option<PathBuf> {
    current_os_user().map(|(_, home)| home)
}

/// Debian's libpq DEFAULT_PGSOCKET_DIR (upstream builds use /tmp; dbtool targets Debian-style installs).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
pub const DEFAULT_PORT: u16 = 5432;
/// Used when neither connect_timeout nor PGCONNECT_TIMEOUT is set: a health check must not hang.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Sent unless the user names one, so a DBA can find dbtool in pg_stat_activity.
pub const DEFAULT_APPLICATION_NAME: &str = "dbtool";

/// A resolved, immutable set of connection parameters.
#[derive(Clone)]
pub struct ConnParams {
    hosts: Vec<String>,
    /// One entry per host; `Some` only where a hostaddr was given.
    hostaddrs: Vec<Option<IpAddr>>,
    /// One entry per host.
    ports: Vec<u16>,
    user: String,
    dbname: String,
    password: Option<(String, Origin)>,
    passfile: Option<PathBuf>,
    /// Per host, from the passfile; only filled when no password was given.
    passfile_passwords: Vec<Option<String>>,
    sslmode: SslMode,
    sslrootcert: Option<PathBuf>,
    sslcert: Option<PathBuf>,
    sslkey: Option<PathBuf>,
    /// The encrypted key's password: from the DSN or a service file only (libpq has no
    /// environment variable for it); never shown.
    sslpassword: Option<String>,
    sslcrl: Option<PathBuf>,
    sslcrldir: Option<PathBuf>,
    ssl_negotiation: SslNegotiation,
    channel_binding: ChannelBinding,
    keepalives: Keepalives,
    home: Option<PathBuf>,
    connect_timeout: Option<Duration>,
    application_name: String,
    options: Option<String>,
    target_session_attrs: TargetSessionAttrs,
}

impl ConnParams {
    /// `dsn` is the explicit --dsn / DATABASE_URL value (None: libpq environment + defaults only).
    pub fn resolve(dsn: Option<&str>, env: &dyn Env) -> Result<ConnParams, ConnInfoError> {
        let parsed = match dsn {
            Some(s) => parse::parse_dsn(s)?,
            None => parse::Dsn::default(),
        };
        let home = match env.var("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Some(PathBuf::from(h)),
            None => current_os_user().map(|u| u.1),
        };
        let service_name = match parsed.values.get("service") {
            Some(name) => Some(name.clone()).filter(|n| !n.is_empty()),
            None => env.var("PGSERVICE").filter(|n| !n.is_empty()),
        };
        let service = match service_name {
            Some(name) => Some(service::lookup(&name, &service::files(env, home.as_deref()))?),
            None => None,
        };
        let r = Resolver {
            dsn: &parsed,
            service: service.as_ref(),
            env,
        };
        let (hosts, hostaddrs) = r.hosts()?;
        let ports = r.ports(hosts.len())?;
        let user = match r.get("user", "PGUSER") {
            Some((u, _)) => u,
            None => current_os_user().ok_or(ConnInfoError::NoUser)?.0,
        };
        let dbname = r.get("dbname", "PGDATABASE").map_or_else(|| user.clone(), |d| d.0);
        let passfile = match r.get("passfile", "PGPASSFILE") {
            Some((p, _)) => Some(PathBuf::from(p)),
            None => home.as_ref().map(|h| h.join(".pgpass")),
        };
        r.check_gssencmode()?;
        let sslmode = r.sslmode()?;
        keywords::warn_ignored_env(env);
        let mut params = ConnParams {
            hosts,
            hostaddrs,
            ports,
            user,
            dbname,
            password: r.get("password", "PGPASSWORD"),
            passfile,
            passfile_passwords: Vec::new(),
            sslmode,
            sslrootcert: r.get("sslrootcert", "PGSSLROOTCERT").map(|p| PathBuf::from(p.0)),
            sslcert: r.get("sslcert", "PGSSLCERT").map(|p| PathBuf::from(p.0)),
            sslkey: r.get("sslkey", "PGSSLKEY").map(|p| PathBuf::from(p.0)),
            sslpassword: r.get("sslpassword", "").map(|p| p.0),
            sslcrl: r.get("sslcrl", "PGSSLCRL").map(|p| PathBuf::from(p.0)),
            sslcrldir: r.get("sslcrldir", "PGSSLCRLDIR").map(|p| PathBuf::from(p.0)),
            ssl_negotiation: r.ssl_negotiation(sslmode)?,
            channel_binding: r.channel_binding()?,
            keepalives: r.keepalives()?,
            home,
            connect_timeout: r.connect_timeout()?,
            // fallback_application_name is accepted but never used: dbtool always names itself.
            application_name: r
                .get("application_name", "PGAPPNAME")
                .map_or_else(|| DEFAULT_APPLICATION_NAME.to_string(), |a| a.0),
            options: r.get("options", "PGOPTIONS").map(|o| o.0),
            target_session_attrs: r.target_session_attrs()?,
        };
        params.lookup_passfile();
        Ok(params)
    }

    /// The same target with another database, e.g. to visit every database of a cluster.
    pub fn with_dbname(&self, dbname: &str) -> ConnParams {
        let mut p = self.clone();
        p.dbname = dbname.to_string();
        // why: .pgpass lines can be per database, so the password may differ.
        p.lookup_passfile();
        p
    }

    /// The same parameters without the daemon user's files: no password file, no home
    /// directory (~/.postgresql certificates). For targets named by a request, not by the
    /// daemon's own configuration.
    pub fn detached(mut self) -> ConnParams {
        self.passfile = None;
        self.home = None;
        self.lookup_passfile();
        self
    }

    fn lookup_passfile(&mut self) {
        self.passfile_passwords = match (&self.password, &self.passfile) {
            (None, Some(file)) => (self.hosts.iter().zip(&self.ports))
                .map(|(host, port)| pgpass::lookup(file, host, *port, &self.dbname, &self.user))
                .collect(),
            _ => vec![None; self.hosts.len()],
        };
    }

    pub fn dbname(&self) -> &str {
        &self.dbname
    }
    pub fn user(&self) -> &str {
        &self.user
    }
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }
    /// One port per entry of `hosts()`.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }
    /// One entry per entry of `hosts()`; `Some` where a numeric hostaddr overrides the lookup.
    pub fn hostaddrs(&self) -> &[Option<IpAddr>] {
        &self.hostaddrs
    }
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }
    pub fn sslrootcert(&self) -> Option<&Path> {
        self.sslrootcert.as_deref()
    }
    /// The client certificate and key files libpq would use (given, else ~/.postgresql/postgresql.*).
    pub fn client_cert_files(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        super::client_cert::files(self.sslcert.as_deref(), self.sslkey.as_deref(), self.home.as_deref())
    }
    /// The password of an encrypted client key; crate-private so it cannot leak into reports.
    pub(crate) fn sslpassword(&self) -> Option<&str> {
        self.sslpassword.as_deref()
    }
    /// The CRL file and directory libpq would use (given, else ~/.postgresql/root.crl when neither is).
    pub fn crl_files(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        match (&self.sslcrl, &self.sslcrldir, &self.home) {
            (None, None, Some(home)) => (Some(home.join(".postgresql").join("root.crl")), None),
            (file, dir, _) => (file.clone(), dir.clone()),
        }
    }
    pub fn ssl_negotiation(&self) -> SslNegotiation {
        self.ssl_negotiation
    }
    pub fn channel_binding(&self) -> ChannelBinding {
        self.channel_binding
    }
    pub fn keepalives(&self) -> Keepalives {
        self.keepalives
    }
    /// The home directory used for ~/.pgpass and ~/.postgresql/root.crt.
    pub fn home_dir(&self) -> Option<&Path> {
        self.home.as_deref()
    }
    pub fn application_name(&self) -> &str {
        &self.application_name
    }
    /// The user's own `options` (server command-line switches), without dbtool's session settings.
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
    }
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.target_session_attrs
    }
    pub fn has_password(&self) -> bool {
        self.password.is_some() || self.passfile_passwords.iter().any(Option::is_some)
    }
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The password given (DSN, PGPASSWORD, service file), not a pgpass file's; crate-private.
    pub(crate) fn given_password(&self) -> Option<&str> {
        self.password.as_ref().map(|(p, _)| p.as_str())
    }
    /// The password to send to host `i`; crate-private so it cannot leak into reports.
    pub(crate) fn password_for(&self, i: usize) -> Option<&str> {
        match &self.password {
            Some((p, _)) => Some(p),
            None => self.passfile_passwords.get(i)?.as_deref(),
        }
    }

    /// Where host `i`'s password came from, for error hints ("PGPASSWORD", "passfile /home/a/.pgpass").
    pub(crate) fn password_origin(&self, i: usize) -> Option<String> {
        match (&self.password, &self.passfile) {
            (Some((_, origin)), _) => Some(origin.to_string()),
            (None, Some(file)) if self.password_for(i).is_some() => Some(format!("passfile {}", file.display())),
            _ => None,
        }
    }

    /// "host=/tmp/x port=5432 user=alice dbname=app sslmode=prefer" — never the password.
    pub fn redacted(&self) -> String {
        let mut s = format!("host={}", quote(&self.hosts.join(",")));
        if self.hostaddrs.iter().any(Option::is_some) {
            s.push_str(&format!(" hostaddr={}", self.hostaddr_list()));
        }
        s.push_str(&format!(
            " port={} user={} dbname={} sslmode={}",
            self.port_list(),
            quote(&self.user),
            quote(&self.dbname),
            self.sslmode
        ));
        s
    }

    /// Short stable label for metrics, no user/password: "host:port/dbname".
    pub fn target_label(&self) -> String {
        let hosts: Vec<String> = (self.hosts.iter().zip(&self.ports))
            .map(|(h, p)| match h.parse::<IpAddr>() {
                Ok(IpAddr::V6(_)) => format!("[{h}]:{p}"),
                _ => format!("{h}:{p}"),
            })
            .collect();
        format!("{}/{}", hosts.join(","), self.dbname)
    }

    fn port_list(&self) -> String {
        match self.ports.first() {
            Some(p) if self.ports.iter().all(|q| q == p) => p.to_string(),
            _ => self.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
        }
    }

    fn hostaddr_list(&self) -> String {
        let addrs: Vec<String> = (self.hostaddrs.iter())
            .map(|a| a.map(|a| a.to_string()).unwrap_or_default())
            .collect();
        addrs.join(",")
    }
}

impl fmt::Debug for ConnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.has_password() { "<redacted>" } else { "<none>" };
        f.debug_struct("ConnParams")
            .field("conninfo", &self.redacted())
            .field("password", &password)
            .finish()
    }
}

/// A host that names a unix-socket directory (libpq: absolute path, or '@' for the abstract namespace).
pub fn is_socket_host(host: &str) -> bool {
    host.starts_with('/') || host.starts_with('@')
}

/// Quote a value the way a key=value conninfo string needs it.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}
