//! Splits a DSN (URL or key=value) into raw values; resolution and validation of values come later.

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
