//! `[probe]` and `[auth.NAME]`: what `/probe` may connect to, with which credentials, within
//! which bounds. Read once with the rest of the file; the listener only looks things up here.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::db::{ConnParams, MapEnv};
use crate::duration::HumanDuration;

/// `[probe]`: the `/probe` endpoint of `dbtool serve` and `dbtool schedule --listen`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// `?target=host:port/dbname` is probed only when it matches one of these: a host glob
    /// (`db-*.prod.internal`) or a CIDR block (`10.0.0.0/8`), each optionally followed by
    /// `:PORT` or `:*` (without it, port 5432 only). Default: none (only `[[targets]]` names).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Probes running at once, over every target (default 16).
    pub max_in_flight: Option<usize>,
    /// Probes running at once on one target (default 1): a second scrape of the same target
    /// waits for the first.
    pub max_in_flight_per_target: Option<usize>,
    /// Taken off Prometheus' scrape timeout, so the answer arrives before it (default "500ms").
    pub timeout_margin: Option<HumanDuration>,
    /// The deadline of a request without `X-Prometheus-Scrape-Timeout-Seconds` (default "10s").
    pub default_timeout: Option<HumanDuration>,
}

impl ProbeConfig {
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
    pub const DEFAULT_MAX_IN_FLIGHT_PER_TARGET: usize = 1;
    pub const DEFAULT_TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

/// `[auth.NAME]`: how `?target=host:port/dbname&auth=NAME` logs in. Nothing else is taken from
/// the daemon's environment: no PG* variable, no ~/.pgpass, no ~/.postgresql certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The role to log in as.
    pub user: String,
    /// A file holding the password on its first line, private to dbtool's user (mode 0600 or
    /// stricter, as libpq requires of .pgpass). Absent: no password (certificate, peer, trust).
    pub password_file: Option<PathBuf>,
    /// disable, allow, prefer, require, verify-ca or verify-full (default "prefer", as libpq).
    pub sslmode: Option<String>,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    /// A file holding the password of an encrypted (PKCS#8) `sslkey` on its first line, private
    /// to dbtool's user like `password_file`. Never inline: the TOML holds no secret.
    pub sslpassword_file: Option<PathBuf>,
}

/// The first line of a secret file (`key`: password_file or sslpassword_file); why it cannot be
/// used names the key, the file and the fix, never its content.
pub fn read_secret(key: &str, path: &std::path::Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{key} {} is not a plain file", path.display()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{key} {} has group or world access; fix with: chmod 0600 {}",
            path.display(),
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// An encrypted `sslkey` with no `sslpassword_file`, found before a scrape needs it. A key
/// that cannot be read now is left to the connection, which names it.
fn key_needs_password(auth: &AuthConfig) -> Result<(), String> {
    let (Some(key), None) = (&auth.sslkey, &auth.sslpassword_file) else {
        return Ok(());
    };
    let Ok(pem) = std::fs::read(key) else {
        return Ok(());
    };
    let pem = String::from_utf8_lossy(&pem);
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "sslkey {} is encrypted and no sslpassword_file is given; add sslpassword_file = \"FILE\", a file (mode 0600) holding the key's password on its first line",
            key.display()
        ));
    }
    Ok(())
}

/// `[probe]` and `[auth.*]`: every pattern parses, every bound is at least 1, every password
/// file is private and readable now (not first at 3 a.m. when a scrape needs it).
pub fn validate(settings: &super::Settings) -> Vec<super::ConfigError> {
    let (text, p) = (&settings.text, &settings.file.probe);
    let at = |key: &str| super::read::table_key_offset(text, "probe", key).unwrap_or(0);
    let mut errors = Vec::new();
    for entry in &p.allow_hosts {
        if let Err(why) = AllowHost::parse(entry) {
            errors.push(settings.at(at("allow_hosts"), format!("[probe] {why}")));
        }
    }
    for (key, v) in [
        ("max_in_flight", p.max_in_flight),
        ("max_in_flight_per_target", p.max_in_flight_per_target),
    ] {
        if v == Some(0) {
            errors.push(settings.at(
                at(key),
                format!("[probe] {key}: 0 is not accepted; write a whole number from 1 up"),
            ));
        }
    }
    let auth_at = text.find("[auth.").unwrap_or(0);
    for (name, auth) in &settings.file.auth {
        let here = text.find(&format!("[auth.{name}]")).unwrap_or(auth_at);
        let files = [
            ("password_file", &auth.password_file),
            ("sslpassword_file", &auth.sslpassword_file),
        ];
        for (key, file) in files {
            if let Some(Err(why)) = file.as_deref().map(|f| read_secret(key, f)) {
                errors.push(settings.at(here, format!("[auth.{name}] {why}")));
            }
        }
        if let Err(why) = key_needs_password(auth) {
            errors.push(settings.at(here, format!("[auth.{name}] {why}")));
        }
        if let Some(mode) = &auth.sslmode {
            if crate::db::SslMode::parse(mode).is_none() {
                errors.push(settings.at(
                    here,
                    format!("[auth.{name}] sslmode: '{mode}' is not one of disable, allow, prefer, require, verify-ca, verify-full"),
                ));
            }
        }
    }
    errors
}

/// A conninfo value, quoted.
fn quoted(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The connection parameters of a URL-given target under `auth`: only what the URL and the
/// `[auth]` section say, resolved with an empty environment and no password file.
pub fn params_for(auth: &AuthConfig, host: &str, port: u16, dbname: &str) -> Result<ConnParams, String> {
    let mut conninfo = format!(
        "host={} port={port} dbname={} user={} connect_timeout=10",
        quoted(host),
        quoted(dbname),
        quoted(&auth.user)
    );
    if let Some(file) = &auth.password_file {
        conninfo.push_str(&format!(" password={}", quoted(&read_secret("password_file", file)?)));
    }
    key_needs_password(auth)?;
    if let Some(file) = &auth.sslpassword_file {
        let password = read_secret("sslpassword_file", file)?;
        conninfo.push_str(&format!(" sslpassword={}", quoted(&password)));
    }
    let mode = auth.sslmode.as_deref().unwrap_or("prefer");
    conninfo.push_str(&format!(" sslmode={}", quoted(mode)));
    for (key, path) in [
        ("sslrootcert", &auth.sslrootcert),
        ("sslcert", &auth.sslcert),
        ("sslkey", &auth.sslkey),
    ] {
        if let Some(p) = path {
            conninfo.push_str(&format!(" {key}={}", quoted(&p.to_string_lossy())));
        }
    }
    let env = MapEnv(std::collections::HashMap::new());
    ConnParams::resolve(Some(&conninfo), &env)
        .map(ConnParams::detached)
        .map_err(|e| e.to_string())
}

/// One `allow_hosts` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum AllowHost {
    Glob { host: String, port: Option<u16> },
    Cidr { net: IpAddr, bits: u8, port: Option<u16> },
}

impl AllowHost {
    /// `db-*.internal`, `db-*.internal:6432`, `10.0.0.0/8:*`, `[fd00::/8]:5432`. `port`
    /// `None` is any port (`:*`); no port written is 5432.
    pub fn parse(s: &str) -> Result<AllowHost, String> {
        let bad = |why: &str| format!("allow_hosts entry '{s}': {why}");
        let (host, port) = match s.strip_prefix('[') {
            Some(rest) => {
                let (h, tail) = rest.split_once(']').ok_or_else(|| bad("no closing ]"))?;
                (h, tail.strip_prefix(':'))
            }
            None => match s.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                _ => (s, None),
            },
        };
        let port = match port {
            None => Some(crate::db::conninfo::DEFAULT_PORT),
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("the port is not a number or *"))?),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if let Some((net, bits)) = host.split_once('/') {
            let net: IpAddr = net.parse().map_err(|_| bad("not an IP network (write 10.0.0.0/8)"))?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let bits = bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| bad("bad prefix length"))?;
            return Ok(AllowHost::Cidr { net, bits, port });
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || "-.*?_:".contains(c)) {
            return Err(bad("a host glob takes letters, digits, '-', '.', '_', '*' and '?'"));
        }
        Ok(AllowHost::Glob {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether `host:port` as written in the URL is allowed. A CIDR block matches only an IP
    /// address written as such: names are not resolved, so a DNS answer cannot widen the list.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        match self {
            AllowHost::Glob { host: pat, port: p } => {
                p.is_none_or(|p| p == port) && glob(pat.as_bytes(), host.to_ascii_lowercase().as_bytes())
            }
            AllowHost::Cidr { net, bits, port: p } => {
                p.is_none_or(|p| p == port) && host.parse::<IpAddr>().is_ok_and(|ip| in_net(ip, *net, *bits))
            }
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `*` any run of characters, `?` one character.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
