//! Splits a DSN (URL or key=value) into raw values; resolution and validation of values come later.
//!
//! No error quotes the input, not even a word of it: in a mistyped DSN the password can be
//! anywhere. Errors give the 1-based character position and the problem instead.

use super::keywords::keyword;
use super::resolve::port_number;
use super::{ConnInfoError, Origin, Place};
use std::collections::HashMap;

const ORIGIN: Origin = Origin::Dsn;

#[derive(Default)]
pub(super) struct Dsn {
    pub(super) values: HashMap<&'static str, String>,
    /// Where each value starts (1-based character), so a bad value can be pointed at, not quoted.
    pub(super) at: HashMap<&'static str, usize>,
}

impl Dsn {
    /// Later values override earlier ones, as in libpq.
    fn set(&mut self, key: &'static str, value: String, at: usize) {
        // libpq rewrites the legacy requiressl as it stores it: a value starting with '1' is
        // sslmode=require, any other sslmode=prefer; whichever of the two comes last wins.
        let (key, value) = match key {
            "requiressl" => {
                let mode = if value.starts_with('1') { "require" } else { "prefer" };
                ("sslmode", mode.to_string())
            }
            _ => (key, value),
        };
        self.values.insert(key, value);
        self.at.insert(key, at);
    }

    /// URL user, password and path: libpq stores them only when non-empty, so the
    /// environment still applies to `postgres://host/`.
    fn set_url_part(&mut self, key: &'static str, value: String, at: usize) {
        if !value.is_empty() {
            self.set(key, value, at);
        }
    }
}

/// The whole DSN, to turn any slice of it into a character position.
#[derive(Clone, Copy)]
struct Input<'a>(&'a str);

impl Input<'_> {
    /// 1-based character position of `part`, which must be a slice of the input (every slice
    /// the parser takes is); the address difference is its byte offset.
    fn at(self, part: &str) -> usize {
        let byte = (part.as_ptr() as usize).saturating_sub(self.0.as_ptr() as usize);
        self.0.get(..byte).map_or(0, |s| s.chars().count()) + 1
    }
}

pub(super) fn parse_dsn(s: &str) -> Result<Dsn, ConnInfoError> {
    let input = Input(s);
    let t = s.trim();
    for scheme in ["postgresql://", "postgres://"] {
        if let Some(rest) = t.strip_prefix(scheme) {
            return parse_url(input, rest);
        }
    }
    refuse_other_urls(input, t)?;
    parse_kv(input, t)
}

/// A keyword never contains ':', so a first word with one is a URL dbtool does not read
/// (`jdbc:postgresql://`, `postgresql:/`, `mysql://`). Refused here, before the key=value parser
/// would call the whole thing one word.
fn refuse_other_urls(input: Input, s: &str) -> Result<(), ConnInfoError> {
    let first = s.split(|c: char| c.is_whitespace() || c == '=').next().unwrap_or("");
    if !first.contains(':') {
        return Ok(());
    }
    let lower = first.to_ascii_lowercase();
    let fix = if lower.starts_with("jdbc:") {
        "a JDBC URL; drop the 'jdbc:' prefix: postgresql://user@host:port/dbname"
    } else if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
        "write the scheme in lower case: postgresql://user@host:port/dbname"
    } else if lower.starts_with("postgresql:") || lower.starts_with("postgres:") {
        "the scheme needs two slashes: postgresql://user@host:port/dbname"
    } else {
        "not a postgresql:// or postgres:// URL, nor key=value pairs"
    };
    Err(ConnInfoError::UnknownScheme {
        at: input.at(s),
        fix,
        origin: ORIGIN,
    })
}

/// libpq's `key = value ...` syntax: values may be single-quoted; `\` escapes the next character.
fn parse_kv(input: Input, s: &str) -> Result<Dsn, ConnInfoError> {
    let b = s.as_bytes();
    let mut dsn = Dsn::default();
    let mut i = 0;
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
            let at = input.at(word);
            return Err(ConnInfoError::MissingEquals { at, origin: ORIGIN });
        }
        i += 1;
        let key = keyword(word, input.at(word))?;
        skip_ws(&mut i);
        let at = input.at(&s[i..]);
        let mut value = Vec::new();
        if b.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match b.get(i) {
                    Some(b'\'') => break,
                    Some(b'\\') if i + 1 < b.len() => i += 1,
                    Some(_) => {}
                    None => {
                        return Err(ConnInfoError::UnterminatedQuote {
                            key,
                            at,
                            origin: ORIGIN,
                        })
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
        dsn.set(key, String::from_utf8_lossy(&value).into_owned(), at);
    }
}

/// postgres[ql]://[user[:password]@][host][:port][,...][/dbname][?key=value&...]
fn parse_url(input: Input, rest: &str) -> Result<Dsn, ConnInfoError> {
    let mut dsn = Dsn::default();
    let authority_end = rest.find('/').unwrap_or(rest.len());
    // The last '@' wins so an unencoded '@' in a password still parses.
    let after_userinfo = match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            dsn.set_url_part("user", decode(input, user, "user name")?, input.at(user));
            if let Some(p) = password {
                dsn.set_url_part("password", decode(input, p, "password")?, input.at(p));
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    let host_end = after_userinfo.find(['/', '?']).unwrap_or(after_userinfo.len());
    parse_url_hosts(input, &after_userinfo[..host_end], &mut dsn)?;
    let mut tail = &after_userinfo[host_end..];
    if let Some(path) = tail.strip_prefix('/') {
        let end = path.find('?').unwrap_or(path.len());
        let name = &path[..end];
        // why: libpq ends the credentials at the first '/', so `u:57/pw@h/db` (a password with
        // a '/') becomes host u, port 57, dbname "pw@h/db": the password in the target label.
        if let Some(at) = name.find('@') {
            let at = input.at(&name[at..]);
            return Err(ConnInfoError::StrayAt { at, origin: ORIGIN });
        }
        dsn.set_url_part("dbname", decode(input, name, "database name")?, input.at(name));
        tail = &path[end..];
    }
    let query = tail.strip_prefix('?').unwrap_or("");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            let at = input.at(pair);
            return Err(ConnInfoError::MissingEquals { at, origin: ORIGIN });
        };
        let (word, value) = (decode(input, k, "query")?, decode(input, v, "query")?);
        // JDBC-style ssl=true, which libpq also accepts in URLs.
        if word == "ssl" && value == "true" {
            dsn.set("sslmode", "require".to_string(), input.at(v));
            continue;
        }
        let key = keyword(&word, input.at(k))?;
        dsn.set(key, value, input.at(v));
    }
    Ok(dsn)
}

/// `h1:5432,[::1]:5433,h3` → host "h1,::1,h3", port "5432,5433,"; empty entries mean defaults.
/// Ports are checked here, where each one's position is known.
fn parse_url_hosts(input: Input, list: &str, dsn: &mut Dsn) -> Result<(), ConnInfoError> {
    let (mut hosts, mut ports) = (Vec::new(), Vec::new());
    for item in list.split(',') {
        let (host, port) = match item.strip_prefix('[') {
            Some(bracketed) => {
                let Some((host, after)) = bracketed.split_once(']') else {
                    return Err(malformed(
                        input.at(item),
                        "unmatched '[' in an IPv6 host; write [addr]:port",
                    ));
                };
                let port = match after {
                    "" => "",
                    _ => after
                        .strip_prefix(':')
                        .ok_or_else(|| malformed(input.at(after), "unexpected text after ']'; write [addr]:port"))?,
                };
                (host.to_string(), port)
            }
            None => match item.split_once(':') {
                Some((h, p)) => (decode(input, h, "host")?, p),
                None => (decode(input, item, "host")?, ""),
            },
        };
        if !port.is_empty() && port_number(port).is_none() {
            return Err(ConnInfoError::InvalidValue {
                key: "port",
                entry: None,
                place: Place::Dsn { at: input.at(port) },
                expected: "a port number from 1 to 65535 (a password containing ':' or '/' must be percent-encoded)",
            });
        }
        hosts.push(host);
        ports.push(port);
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        dsn.set("host", hosts.join(","), input.at(list));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        dsn.set("port", ports.join(","), input.at(list));
    }
    Ok(())
}

fn malformed(at: usize, problem: &'static str) -> ConnInfoError {
    ConnInfoError::MalformedUrl {
        problem,
        at,
        origin: ORIGIN,
    }
}

fn decode(input: Input, s: &str, part: &'static str) -> Result<String, ConnInfoError> {
    let err = |from: &str| ConnInfoError::PercentEncoding {
        part,
        at: input.at(from),
        origin: ORIGIN,
    };
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let bad = || err(&s[i..]);
            let hex = b.get(i + 1..i + 3).ok_or_else(bad)?;
            // from_str_radix alone would also accept a sign, as in "%+f".
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(bad());
            }
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| err(s))
}
