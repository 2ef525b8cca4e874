//! Connection parameters resolved the way libpq does: the --dsn string, then PG* variables, then defaults.

use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::fmt;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pgpass;

/// Debian's libpq DEFAULT_PGSOCKET_DIR (upstream builds use /tmp; dbtool targets Debian-style installs).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
pub const DEFAULT_PORT: u16 = 5432;
/// Used when neither connect_timeout nor PGCONNECT_TIMEOUT is set: a health check must not hang.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Sent unless the user names one, so a DBA can find dbtool in pg_stat_activity.
pub const DEFAULT_APPLICATION_NAME: &str = "dbtool";
const HIDDEN: &str = "(value hidden: it may contain the password)";

/// Where environment variables come from; tests substitute a map for the process environment.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

/// A fixed environment, for tests.
pub struct MapEnv(pub HashMap<String, String>);

impl Env for MapEnv {
    fn var(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Option<SslMode> {
        [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// libpq's target_session_attrs, limited to the values dbtool can check cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    Any,
    ReadWrite,
    Primary,
    Standby,
}

impl TargetSessionAttrs {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
        }
    }
}

/// Which source a value came from, so an error can point at the place to fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Dsn,
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Dsn => f.write_str("--dsn"),
            Origin::Env(var) => f.write_str(var),
        }
    }
}

/// Every message names the key and the fix; none quotes the raw DSN or anything that may be the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnInfoError {
    #[error("unknown connection option {key} in {origin}; see libpq's list of parameter keywords")]
    UnknownOption { key: String, origin: Origin },
    #[error("connection option '{key}' in {origin} is not supported by dbtool; remove it")]
    UnsupportedOption { key: String, origin: Origin },
    #[error("missing '=' after {key} in {origin}; write key=value pairs and quote values with spaces: key='a b'")]
    MissingEquals { key: String, origin: Origin },
    #[error("unterminated quoted value for '{key}' in {origin}; close it with a single quote (write \\' for a quote inside)")]
    UnterminatedQuote { key: String, origin: Origin },
    #[error("malformed URL in {origin}: {problem}")]
    MalformedUrl { problem: &'static str, origin: Origin },
    #[error("invalid percent-encoding in the {part} of the URL in {origin}; write a literal '%' as %25")]
    PercentEncoding { part: &'static str, origin: Origin },
    #[error("invalid {key} {value} in {origin}; expected {expected}")]
    InvalidValue {
        key: &'static str,
        value: String,
        origin: Origin,
        expected: &'static str,
    },
    #[error("{origin} gives {given} {what} for {hosts} hosts; give one for all hosts or one per host")]
    ListLength {
        what: &'static str,
        given: usize,
        hosts: usize,
        origin: Origin,
    },
    #[error("could not determine the current OS user name; set PGUSER or user= in --dsn")]
    NoUser,
}

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
        let r = Resolver { dsn: &parsed, env };
        let (hosts, hostaddrs) = r.hosts()?;
        let ports = r.ports(hosts.len())?;
        let user = match r.get("user", "PGUSER") {
            Some((u, _)) => u,
            None => current_os_user().ok_or(ConnInfoError::NoUser)?.0,
        };
        let dbname = r.get("dbname", "PGDATABASE").map_or_else(|| user.clone(), |d| d.0);
        let home = match env.var("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Some(PathBuf::from(h)),
            None => current_os_user().map(|u| u.1),
        };
        let passfile = match r.get("passfile", "PGPASSFILE") {
            Some((p, _)) => Some(PathBuf::from(p)),
            None => home.as_ref().map(|h| h.join(".pgpass")),
        };
        r.check_gssencmode()?;
        let mut params = ConnParams {
            hosts,
            hostaddrs,
            ports,
            user,
            dbname,
            password: r.get("password", "PGPASSWORD"),
            passfile,
            passfile_passwords: Vec::new(),
            sslmode: r.sslmode()?,
            sslrootcert: r.get("sslrootcert", "PGSSLROOTCERT").map(|p| PathBuf::from(p.0)),
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

    /// libpq-style env for child processes (pg_dump etc.), so they reach the same server the same way.
    pub fn libpq_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PGHOST", self.hosts.join(",")),
            ("PGPORT", self.port_list()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.dbname.clone()),
            ("PGSSLMODE", self.sslmode.to_string()),
            ("PGAPPNAME", self.application_name.clone()),
        ];
        if self.hostaddrs.iter().any(Option::is_some) {
            env.push(("PGHOSTADDR", self.hostaddr_list()));
        }
        if let Some(cert) = &self.sslrootcert {
            env.push(("PGSSLROOTCERT", cert.display().to_string()));
        }
        match (&self.password, &self.passfile) {
            (Some((p, _)), _) => env.push(("PGPASSWORD", p.clone())),
            // why: the child then picks the right line per host itself, as we did.
            (None, Some(file)) => env.push(("PGPASSFILE", file.display().to_string())),
            (None, None) => {}
        }
        // The effective limit, so a child never waits longer than dbtool itself would.
        let timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        env.push(("PGCONNECT_TIMEOUT", timeout.as_secs().to_string()));
        if let Some(o) = &self.options {
            env.push(("PGOPTIONS", o.clone()));
        }
        if self.target_session_attrs != TargetSessionAttrs::Any {
            env.push(("PGTARGETSESSIONATTRS", self.target_session_attrs.as_str().to_string()));
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
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

/// A value for an error message, unless it may be (part of) a password.
fn shown(value: &str, secrets: &[String]) -> String {
    let suspicious = secrets
        .iter()
        .any(|s| !s.is_empty() && (s.contains(value) || value.contains(s.as_str())));
    if suspicious && !value.is_empty() {
        return HIDDEN.to_string();
    }
    let short: String = value.chars().take(64).collect();
    format!("'{}'", short.escape_debug())
}

/// Picks each field by precedence: DSN value, then environment; an empty value means the default.
struct Resolver<'a> {
    dsn: &'a parse::Dsn,
    env: &'a dyn Env,
}

impl Resolver<'_> {
    fn get(&self, key: &'static str, var: &'static str) -> Option<(String, Origin)> {
        // libpq: a key present in the DSN, even empty, hides the environment variable.
        if let Some(v) = self.dsn.values.get(key) {
            return Some((v.clone(), Origin::Dsn)).filter(|_| !v.is_empty());
        }
        let v = self.env.var(var).filter(|v| !v.is_empty())?;
        Some((v, Origin::Env(var)))
    }

    fn invalid(&self, key: &'static str, value: &str, origin: Origin, expected: &'static str) -> ConnInfoError {
        let value = shown(value, &self.dsn.secrets);
        ConnInfoError::InvalidValue {
            key,
            value,
            origin,
            expected,
        }
    }

    fn hosts(&self) -> Result<(Vec<String>, Vec<Option<IpAddr>>), ConnInfoError> {
        let mut addrs = Vec::new();
        if let Some((list, origin)) = self.get("hostaddr", "PGHOSTADDR") {
            for a in list.split(',').map(str::trim) {
                // libpq: an empty entry means "look this host up by name".
                if a.is_empty() {
                    addrs.push(None);
                    continue;
                }
                let ip = a
                    .parse::<IpAddr>()
                    .map_err(|_| self.invalid("hostaddr", a, origin, "a numeric IP address such as 10.0.0.5 or ::1"))?;
                addrs.push(Some(ip));
            }
        }
        let mut hosts: Vec<String> = match self.get("host", "PGHOST") {
            Some((list, origin)) => {
                let hosts: Vec<String> = list.split(',').map(|h| h.trim().to_string()).collect();
                if !addrs.is_empty() && addrs.len() != hosts.len() {
                    let (what, given) = ("hostaddrs", addrs.len());
                    return Err(ConnInfoError::ListLength {
                        what,
                        given,
                        hosts: hosts.len(),
                        origin,
                    });
                }
                hosts
            }
            None => vec![String::new(); addrs.len().max(1)],
        };
        for (i, h) in hosts.iter_mut().enumerate() {
            if h.is_empty() {
                *h = match addrs.get(i).copied().flatten() {
                    Some(ip) => ip.to_string(),
                    None => DEFAULT_SOCKET_DIR.to_string(),
                };
            }
        }
        if addrs.is_empty() {
            addrs = vec![None; hosts.len()];
        }
        Ok((hosts, addrs))
    }

    fn ports(&self, hosts: usize) -> Result<Vec<u16>, ConnInfoError> {
        let Some((list, origin)) = self.get("port", "PGPORT") else {
            return Ok(vec![DEFAULT_PORT; hosts]);
        };
        let mut ports = Vec::new();
        for p in list.split(',').map(str::trim) {
            ports.push(match p {
                // libpq: an empty entry in a port list means the default port.
                "" => DEFAULT_PORT,
                _ => match p.parse::<u16>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(self.invalid("port", p, origin, "a port number from 1 to 65535")),
                },
            });
        }
        match ports.as_slice() {
            [one] => Ok(vec![*one; hosts]),
            _ if ports.len() == hosts => Ok(ports),
            _ => Err(ConnInfoError::ListLength {
                what: "ports",
                given: ports.len(),
                hosts,
                origin,
            }),
        }
    }

    fn sslmode(&self) -> Result<SslMode, ConnInfoError> {
        let Some((v, origin)) = self.get("sslmode", "PGSSLMODE") else {
            return Ok(SslMode::Prefer);
        };
        SslMode::parse(&v).ok_or_else(|| {
            let expected = "one of disable, allow, prefer, require, verify-ca, verify-full";
            self.invalid("sslmode", &v, origin, expected)
        })
    }

    /// libpq: zero or negative waits forever, 1 is raised to 2 seconds.
    fn connect_timeout(&self) -> Result<Option<Duration>, ConnInfoError> {
        let Some((v, origin)) = self.get("connect_timeout", "PGCONNECT_TIMEOUT") else {
            return Ok(None);
        };
        match v.trim().parse::<i64>() {
            Ok(n) if n <= 0 => Ok(None),
            Ok(n) => Ok(Some(Duration::from_secs(n.max(2).unsigned_abs()))),
            Err(_) => Err(self.invalid("connect_timeout", &v, origin, "whole seconds, e.g. 10")),
        }
    }

    fn target_session_attrs(&self) -> Result<TargetSessionAttrs, ConnInfoError> {
        let Some((v, origin)) = self.get("target_session_attrs", "PGTARGETSESSIONATTRS") else {
            return Ok(TargetSessionAttrs::Any);
        };
        match v.as_str() {
            "any" => Ok(TargetSessionAttrs::Any),
            "read-write" => Ok(TargetSessionAttrs::ReadWrite),
            "primary" => Ok(TargetSessionAttrs::Primary),
            "standby" => Ok(TargetSessionAttrs::Standby),
            _ => {
                let expected = "one of any, read-write, primary, standby (others are not supported by dbtool)";
                Err(self.invalid("target_session_attrs", &v, origin, expected))
            }
        }
    }

    /// dbtool never uses GSSAPI encryption, which satisfies disable and prefer but not require.
    fn check_gssencmode(&self) -> Result<(), ConnInfoError> {
        match self.get("gssencmode", "PGGSSENCMODE") {
            None => Ok(()),
            Some((v, _)) if v == "disable" || v == "prefer" => Ok(()),
            Some((v, origin)) => {
                let expected = "disable or prefer (dbtool does not support GSSAPI encryption)";
                Err(self.invalid("gssencmode", &v, origin, expected))
            }
        }
    }
}

/// The effective OS user's name and home directory, via the thread-safe getpwuid_r.
fn current_os_user() -> Option<(String, PathBuf)> {
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: passwd is plain C data for which all-zero is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live locals, and buf's real length is passed.
        let rc = unsafe { libc::getpwuid_r(libc::geteuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        // SAFETY: on success both fields point to NUL-terminated strings inside buf, which is still alive.
        let (name, dir) = unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
        let name = name.to_str().ok()?.to_string();
        return Some((name, PathBuf::from(OsStr::from_bytes(dir.to_bytes()))));
    }
}

/// Splits a DSN (URL or key=value) into raw values; resolution and validation of values come later.
mod parse {
    use super::{shown, ConnInfoError, Origin, HIDDEN};
    use std::collections::HashMap;

    const KEYS: &[&str] = &[
        "host",
        "hostaddr",
        "port",
        "user",
        "password",
        "dbname",
        "sslmode",
        "sslrootcert",
        "connect_timeout",
        "application_name",
        "fallback_application_name",
        "options",
        "target_session_attrs",
        "passfile",
        "gssencmode",
    ];
    /// libpq keywords dbtool knows but does not implement: named as unsupported rather than unknown.
    const UNSUPPORTED: &[&str] = &[
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "sslcompression",
        "sslnegotiation",
        "sslcertmode",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "requiressl",
        "requirepeer",
        "require_auth",
        "channel_binding",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "service",
        "client_encoding",
        "load_balance_hosts",
    ];

    #[derive(Default)]
    pub(super) struct Dsn {
        pub(super) values: HashMap<&'static str, String>,
        /// Text that may hold a password: no error message may quote anything overlapping it.
        pub(super) secrets: Vec<String>,
    }

    impl Dsn {
        /// Later values override earlier ones, as in libpq.
        fn set(&mut self, key: &'static str, value: String) {
            if key == "password" {
                self.secrets.push(value.clone());
            }
            self.values.insert(key, value);
        }

        /// URL user, password and path: libpq stores them only when non-empty, so the
        /// environment still applies to `postgres://host/`.
        fn set_url_part(&mut self, key: &'static str, value: String) {
            if !value.is_empty() {
                self.set(key, value);
            }
        }

        fn key(&self, key: &str, hide: bool) -> Result<&'static str, ConnInfoError> {
            if let Some(k) = KEYS.iter().find(|k| **k == key) {
                return Ok(k);
            }
            let origin = Origin::Dsn;
            if UNSUPPORTED.contains(&key) {
                return Err(ConnInfoError::UnsupportedOption {
                    key: key.to_string(),
                    origin,
                });
            }
            let key = if hide {
                HIDDEN.to_string()
            } else {
                shown(key, &self.secrets)
            };
            Err(ConnInfoError::UnknownOption { key, origin })
        }
    }

    pub(super) fn parse_dsn(s: &str) -> Result<Dsn, ConnInfoError> {
        let s = s.trim();
        for scheme in ["postgresql://", "postgres://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                return parse_url(rest);
            }
        }
        parse_kv(s)
    }

    /// libpq's `key = value ...` syntax: values may be single-quoted; `\` escapes the next character.
    fn parse_kv(s: &str) -> Result<Dsn, ConnInfoError> {
        let b = s.as_bytes();
        let mut dsn = Dsn::default();
        let mut i = 0;
        // why: a stray word right after password=... is likely the rest of an unquoted password.
        let mut after_password = false;
        let skip_ws = |i: &mut usize| {
            while b.get(*i).is_some_and(u8::is_ascii_whitespace) {
                *i += 1;
            }
        };
        loop {
            skip_ws(&mut i);
            if i >= b.len() {
                return Ok(dsn);
            }
            let start = i;
            while b.get(i).is_some_and(|c| !c.is_ascii_whitespace() && *c != b'=') {
                i += 1;
            }
            let word = &s[start..i];
            skip_ws(&mut i);
            if b.get(i) != Some(&b'=') {
                let key = if after_password {
                    HIDDEN.to_string()
                } else {
                    shown(word, &dsn.secrets)
                };
                return Err(ConnInfoError::MissingEquals {
                    key,
                    origin: Origin::Dsn,
                });
            }
            i += 1;
            let key = dsn.key(word, after_password)?;
            skip_ws(&mut i);
            let mut value = Vec::new();
            if b.get(i) == Some(&b'\'') {
                i += 1;
                loop {
                    match b.get(i) {
                        Some(b'\'') => break,
                        Some(b'\\') if i + 1 < b.len() => i += 1,
                        Some(_) => {}
                        None => {
                            let key = key.to_string();
                            return Err(ConnInfoError::UnterminatedQuote {
                                key,
                                origin: Origin::Dsn,
                            });
                        }
                    }
                    value.push(b[i]);
                    i += 1;
                }
                i += 1;
            } else {
                while let Some(&c) = b.get(i).filter(|c| !c.is_ascii_whitespace()) {
                    if c == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    value.push(b[i]);
                    i += 1;
                }
            }
            // Only ASCII delimiters were removed from valid UTF-8, so nothing is lost here.
            dsn.set(key, String::from_utf8_lossy(&value).into_owned());
            after_password = key == "password";
        }
    }

    /// postgres[ql]://[user[:password]@][host][:port][,...][/dbname][?key=value&...]
    fn parse_url(rest: &str) -> Result<Dsn, ConnInfoError> {
        let mut dsn = Dsn::default();
        // why: whatever precedes the last '@' may be credentials, even in a URL too broken to parse.
        if let Some(at) = rest.rfind('@') {
            dsn.secrets.push(rest[..at].to_string());
        }
        let authority_end = rest.find('/').unwrap_or(rest.len());
        // The last '@' wins so an unencoded '@' in a password still parses.
        let after_userinfo = match rest[..authority_end].rfind('@') {
            Some(at) => {
                let userinfo = &rest[..at];
                let (user, password) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                dsn.set_url_part("user", decode(user, "user name")?);
                if let Some(p) = password {
                    dsn.set_url_part("password", decode(p, "password")?);
                }
                &rest[at + 1..]
            }
            None => rest,
        };
        let host_end = after_userinfo.find(['/', '?']).unwrap_or(after_userinfo.len());
        parse_url_hosts(&after_userinfo[..host_end], &mut dsn)?;
        let mut tail = &after_userinfo[host_end..];
        if let Some(path) = tail.strip_prefix('/') {
            let end = path.find('?').unwrap_or(path.len());
            dsn.set_url_part("dbname", decode(&path[..end], "database name")?);
            tail = &path[end..];
        }
        let query = tail.strip_prefix('?').unwrap_or("");
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                let key = shown(&decode(pair, "query")?, &dsn.secrets);
                return Err(ConnInfoError::MissingEquals {
                    key,
                    origin: Origin::Dsn,
                });
            };
            let (k, v) = (decode(k, "query")?, decode(v, "query")?);
            // JDBC-style ssl=true, which libpq also accepts in URLs.
            if k == "ssl" && v == "true" {
                dsn.set("sslmode", "require".to_string());
                continue;
            }
            let key = dsn.key(&k, false)?;
            dsn.set(key, v);
        }
        Ok(dsn)
    }

    /// `h1:5432,[::1]:5433,h3` → host "h1,::1,h3", port "5432,5433,"; empty entries mean defaults.
    fn parse_url_hosts(list: &str, dsn: &mut Dsn) -> Result<(), ConnInfoError> {
        let (mut hosts, mut ports) = (Vec::new(), Vec::new());
        for item in list.split(',') {
            let (host, port) = match item.strip_prefix('[') {
                Some(bracketed) => {
                    let Some((host, after)) = bracketed.split_once(']') else {
                        return Err(malformed("unmatched '[' in an IPv6 host; write [addr]:port"));
                    };
                    let port = match after {
                        "" => "",
                        _ => after
                            .strip_prefix(':')
                            .ok_or_else(|| malformed("unexpected text after ']'; write [addr]:port"))?,
                    };
                    (host.to_string(), port)
                }
                None => match item.split_once(':') {
                    Some((h, p)) => (decode(h, "host")?, p),
                    None => (decode(item, "host")?, ""),
                },
            };
            hosts.push(host);
            ports.push(port);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            dsn.set("host", hosts.join(","));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            dsn.set("port", ports.join(","));
        }
        Ok(())
    }

    fn malformed(problem: &'static str) -> ConnInfoError {
        ConnInfoError::MalformedUrl {
            problem,
            origin: Origin::Dsn,
        }
    }

    fn decode(s: &str, part: &'static str) -> Result<String, ConnInfoError> {
        let err = || ConnInfoError::PercentEncoding {
            part,
            origin: Origin::Dsn,
        };
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            if c == b'%' {
                let hex = b.get(i + 1..i + 3).ok_or_else(err)?;
                // from_str_radix alone would also accept a sign, as in "%+f".
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(err());
                }
                let hex = std::str::from_utf8(hex).map_err(|_| err())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| err())?);
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An environment with only HOME set, so the machine's PG* variables and ~/.pgpass never leak in.
    fn env(vars: &[(&str, &str)]) -> (MapEnv, tempfile::TempDir) {
        let home = tempfile::tempdir().expect("tempdir");
        let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.entry("HOME".into())
            .or_insert_with(|| home.path().display().to_string());
        (MapEnv(map), home)
    }

    fn resolve(dsn: &str, vars: &[(&str, &str)]) -> ConnParams {
        let (env, _home) = env(vars);
        ConnParams::resolve(Some(dsn), &env).expect("valid DSN")
    }

    fn resolve_err(dsn: &str) -> ConnInfoError {
        let (env, _home) = env(&[("PGUSER", "u")]);
        ConnParams::resolve(Some(dsn), &env).expect_err("invalid DSN")
    }

    #[test]
    fn url_with_everything() {
        let p = resolve(
            "postgresql://alice:s%40cret@db.example.com:6543/app%201?sslmode=require&application_name=x",
            &[],
        );
        assert_eq!(p.hosts(), ["db.example.com"]);
        assert_eq!(p.ports(), [6543]);
        assert_eq!(
            (p.user(), p.dbname(), p.sslmode()),
            ("alice", "app 1", SslMode::Require)
        );
        assert_eq!(p.password_for(0), Some("s@cret"));
        assert_eq!(p.application_name(), "x");
        assert_eq!(resolve("postgres://bob@h/d", &[]).user(), "bob");
    }

    #[test]
    fn url_multi_host_ipv6_and_unencoded_at() {
        let p = resolve("postgres://u:p@ss@h1:5432,h2:5433,[::1]/db", &[]);
        assert_eq!(p.hosts(), ["h1", "h2", "::1"]);
        assert_eq!(p.ports(), [5432, 5433, 5432]);
        assert_eq!(p.password_for(2), Some("p@ss"));
        assert_eq!(resolve("postgres://u:p?s@h/d", &[]).password_for(0), Some("p?s"));
        assert_eq!(p.target_label(), "h1:5432,h2:5433,[::1]:5432/db");
        let p = resolve("postgres://[::1]:5433/db", &[("PGUSER", "u")]);
        assert_eq!((p.hosts(), p.ports()), (&["::1".to_string()][..], &[5433][..]));
    }

    #[test]
    fn url_socket_directories() {
        let p = resolve("postgresql:///app?host=/tmp/sock&port=5439", &[("PGUSER", "u")]);
        assert_eq!((p.hosts(), p.ports()), (&["/tmp/sock".to_string()][..], &[5439][..]));
        assert_eq!(p.target_label(), "/tmp/sock:5439/app");
        let p = resolve("postgresql://%2Fvar%2Frun%2Fpg/app", &[("PGUSER", "u")]);
        assert_eq!(p.hosts(), ["/var/run/pg"]);
        let p = resolve("postgresql:///app", &[("PGUSER", "u")]);
        assert_eq!(p.hosts(), [DEFAULT_SOCKET_DIR]);
        assert_eq!(p.target_label(), "/var/run/postgresql:5432/app");
        assert_eq!(
            resolve("postgres://h?ssl=true", &[("PGUSER", "u")]).sslmode(),
            SslMode::Require
        );
    }

    #[test]
    fn key_value_quoting_and_escapes() {
        let dsn = r"host = h  port= 5433 user =bob dbname='my db' password='it\'s \\ x' application_name=a\ b
                    options='-c search_path=s' sslrootcert=/r.crt connect_timeout=7 fallback_application_name=z";
        let p = resolve(dsn, &[]);
        assert_eq!((p.hosts(), p.ports()), (&["h".to_string()][..], &[5433][..]));
        assert_eq!((p.user(), p.dbname()), ("bob", "my db"));
        assert_eq!(p.password_for(0), Some(r"it's \ x"));
        assert_eq!(p.application_name(), "a b");
        assert_eq!(p.options(), Some("-c search_path=s"));
        assert_eq!(p.sslrootcert(), Some(Path::new("/r.crt")));
        assert_eq!(p.connect_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(p.redacted(), "host=h port=5433 user=bob dbname='my db' sslmode=prefer");
    }

    #[test]
    fn defaults() {
        let (env, _home) = env(&[]);
        let p = ConnParams::resolve(None, &env).expect("defaults resolve");
        let os_user = current_os_user().expect("OS user").0;
        assert_eq!(
            (p.hosts(), p.ports()),
            (&[DEFAULT_SOCKET_DIR.to_string()][..], &[5432][..])
        );
        assert_eq!((p.user(), p.dbname()), (os_user.as_str(), os_user.as_str()));
        assert_eq!(p.sslmode(), SslMode::Prefer);
        assert_eq!(p.application_name(), "dbtool");
        assert_eq!((p.connect_timeout(), p.has_password()), (None, false));
        assert_eq!(p.target_session_attrs(), TargetSessionAttrs::Any);
    }

    #[test]
    fn dsn_beats_environment_beats_defaults() {
        let vars = [
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpw"),
            ("PGDATABASE", "envdb"),
            ("PGSSLMODE", "disable"),
            ("PGAPPNAME", "envapp"),
            ("PGCONNECT_TIMEOUT", "1"),
            ("PGTARGETSESSIONATTRS", "read-write"),
        ];
        let p = resolve("host=dsnhost user=dsnuser password=dsnpw", &vars);
        assert_eq!((p.hosts(), p.ports()), (&["dsnhost".to_string()][..], &[6000][..]));
        assert_eq!(
            (p.user(), p.dbname(), p.sslmode()),
            ("dsnuser", "envdb", SslMode::Disable)
        );
        assert_eq!((p.password_for(0), p.application_name()), (Some("dsnpw"), "envapp"));
        assert_eq!(
            p.connect_timeout(),
            Some(Duration::from_secs(2)),
            "libpq raises 1 s to 2 s"
        );
        assert_eq!(p.target_session_attrs(), TargetSessionAttrs::ReadWrite);
        let p = resolve("dbname=d", &vars);
        assert_eq!((p.hosts()[0].as_str(), p.password_for(0)), ("envhost", Some("envpw")));
        assert_eq!(p.password_origin(0).as_deref(), Some("PGPASSWORD"));
        // An explicitly empty DSN value hides the variable and means the default.
        assert_eq!(resolve("host='' dbname=d", &vars).hosts(), [DEFAULT_SOCKET_DIR]);
        // As in libpq, the value after "= " is the next word, even one that looks like a pair.
        assert_eq!(resolve("host= dbname=d", &vars).hosts(), ["dbname=d"]);
        assert_eq!(resolve("connect_timeout=0", &vars).connect_timeout(), None);
    }

    #[test]
    fn hostaddr_is_a_host() {
        let p = resolve("hostaddr=127.0.0.1 user=u", &[]);
        assert_eq!(p.hosts(), ["127.0.0.1"]);
        assert_eq!(p.hostaddrs(), [Some(IpAddr::from([127, 0, 0, 1]))]);
        let p = resolve("host=db.test,db2.test hostaddr=10.0.0.1,10.0.0.2 port=1,2 user=u", &[]);
        assert_eq!(p.hosts(), ["db.test", "db2.test"]);
        assert!(
            p.redacted().contains("hostaddr=10.0.0.1,10.0.0.2 port=1,2"),
            "{}",
            p.redacted()
        );
    }

    #[test]
    fn password_from_passfile_per_database() {
        let (env, home) = env(&[("PGUSER", "u")]);
        let file = home.path().join("pw");
        std::fs::write(&file, "h:5432:one:u:pw1\n*:*:*:u:pwany\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let dsn = format!("host=h dbname=one passfile={}", file.display());
        let p = ConnParams::resolve(Some(&dsn), &env).expect("resolve");
        assert_eq!(p.password_for(0), Some("pw1"));
        assert!(p.has_password());
        assert_eq!(p.with_dbname("two").password_for(0), Some("pwany"));
        assert_eq!(p.with_dbname("two").dbname(), "two");
        assert!(p.password_origin(0).is_some_and(|o| o.contains("passfile")));
        let env_vars = p.libpq_env();
        assert!(env_vars.contains(&("PGPASSFILE".into(), file.display().to_string())));
        assert!(!env_vars.iter().any(|(k, _)| k == "PGPASSWORD"));
        // ~/.pgpass via HOME, used when neither passfile nor PGPASSFILE is given.
        std::fs::rename(&file, home.path().join(".pgpass")).expect("rename");
        let p = ConnParams::resolve(Some("host=h dbname=one"), &env).expect("resolve");
        assert_eq!(p.password_for(0), Some("pw1"));
    }

    #[test]
    fn libpq_env_for_children() {
        let p = resolve(
            "postgres://u:pw@h1,h2:5433/db?sslrootcert=/ca.pem&options=-c%20x%3Dy",
            &[],
        );
        let env: HashMap<String, String> = p.libpq_env().into_iter().collect();
        assert_eq!(env["PGHOST"], "h1,h2");
        assert_eq!(env["PGPORT"], "5432,5433");
        assert_eq!((env["PGUSER"].as_str(), env["PGDATABASE"].as_str()), ("u", "db"));
        assert_eq!(
            (env["PGSSLMODE"].as_str(), env["PGSSLROOTCERT"].as_str()),
            ("prefer", "/ca.pem")
        );
        assert_eq!(
            (env["PGPASSWORD"].as_str(), env["PGAPPNAME"].as_str()),
            ("pw", "dbtool")
        );
        assert_eq!(env["PGOPTIONS"], "-c x=y");
        assert_eq!(env["PGCONNECT_TIMEOUT"], "10", "dbtool's default, not libpq's forever");
    }

    #[test]
    fn invalid_values_name_key_and_fix() {
        let msg = |dsn: &str| resolve_err(dsn).to_string();
        let m = msg("foo=1");
        assert!(
            m.contains("unknown connection option 'foo' in --dsn") && m.contains("libpq"),
            "{m}"
        );
        assert!(msg("postgres://h/d?foo=1").contains("'foo'"));
        assert!(msg("sslcert=/x").contains("not supported by dbtool"));
        let m = msg("sslmode=sometimes");
        assert!(m.contains("'sometimes'") && m.contains("verify-full"), "{m}");
        assert!(msg("port=99999").contains("port number from 1 to 65535"));
        assert!(msg("postgres://h:0/d").contains("invalid port '0'"));
        assert!(msg("host=a,b,c port=1,2").contains("2 ports for 3 hosts"));
        assert!(msg("hostaddr=db.test").contains("numeric IP address"));
        assert!(msg("connect_timeout=soon").contains("whole seconds"));
        assert!(msg("target_session_attrs=prefer-standby").contains("read-write"));
        assert!(msg("gssencmode=require").contains("GSSAPI"));
        assert!(msg("dbname").contains("missing '='"));
        assert!(msg("dbname='x").contains("unterminated quoted value for 'dbname'"));
        assert!(msg("postgres://h/%zz").contains("percent-encoding"));
        assert!(msg("postgres://[::1/d").contains("IPv6"));
        let env = MapEnv(HashMap::from([("PGPORT".to_string(), "abc".to_string())]));
        let m = ConnParams::resolve(Some("user=u"), &env)
            .expect_err("bad PGPORT")
            .to_string();
        assert!(m.contains("'abc' in PGPORT"), "{m}");
    }

    #[test]
    fn the_password_never_shows() {
        let p = resolve("postgres://alice:hunter2@h/app", &[]);
        for shown in [p.redacted(), format!("{p:?}"), p.target_label()] {
            assert!(!shown.contains("hunter2") && !shown.contains("alice:"), "{shown}");
        }
        assert!(format!("{p:?}").contains("<redacted>"));
        let malformed = [
            "postgres://u:hunter2@h:notaport/db",
            "postgres://u:hun/ter2@h/db",
            "postgres://u:hun:ter2@h:x/db",
            "postgres://u:hunter2@h/db?foo=bar",
            "postgres://u:hunter2@h/db?sslmode=bogus",
            "postgres://u:hunt%zzer2@h/db",
            "postgres://u:hunter2@[::1/db",
            "postgres://u@h/db?password=hunter2&port=hunter2",
            "password=hunter2 sslmode=nope",
            "password=hunter 2",
            "password=hunter2 hunter3",
            "password=hunter2 hunter3=x",
            "password='hunter2",
            "password=hunter2 port=hunter2x",
            "user=u password=hunter2 foo=1",
        ];
        for dsn in malformed {
            let err = resolve_err(dsn);
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(!text.contains("hunt") && !text.contains("ter2"), "{dsn} -> {text}");
            }
        }
    }
}
