//! A `/probe` query string, parsed and validated: `target`, `auth`, `check`, `skip`, `format`.

use crate::report::Format;

/// What a request asks for; nothing is looked up in the configuration yet.
#[derive(Debug, Default, PartialEq)]
pub struct ProbeRequest {
    pub target: String,
    pub auth: Option<String>,
    pub checks: Vec<String>,
    pub skip: Vec<String>,
    pub format: Option<Format>,
}

/// Where a URL-given target points: `host[:port][/dbname]`.
#[derive(Debug, PartialEq)]
pub struct Address {
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

/// Percent-decoding of a query string component (`+` is a space, as in forms).
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or("a % not followed by two hex digits")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "a % not followed by two hex digits")?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once decoded".to_string())
}

/// Parses the query string; an unknown or repeated single parameter is an error naming it.
pub fn parse(query: &str) -> Result<ProbeRequest, String> {
    let mut r = ProbeRequest::default();
    let mut target = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k)?, decode(v)?);
        let once = |slot: &mut Option<String>, v: String| {
            if slot.replace(v).is_some() {
                Err(format!("'{k}' given twice; give it once"))
            } else {
                Ok(())
            }
        };
        match k.as_str() {
            "target" => once(&mut target, v)?,
            "auth" => once(&mut r.auth, v)?,
            "check" => r.checks.push(v),
            "skip" => r.skip.push(v),
            "format" => {
                let f = match v.as_str() {
                    "prometheus" => Format::Prometheus,
                    "json" => Format::Json,
                    _ => {
                        return Err(format!(
                            "format '{v}' is not served here; use prometheus (default) or json"
                        ))
                    }
                };
                if r.format.replace(f).is_some() {
                    return Err("'format' given twice; give it once".into());
                }
            }
            _ => {
                return Err(format!(
                    "unknown parameter '{k}'; /probe takes target, auth, check, skip, format"
                ))
            }
        }
    }
    r.target = target
        .filter(|t| !t.is_empty())
        .ok_or("no target; give ?target=NAME or ?target=host:port/dbname&auth=NAME")?;
    Ok(r)
}

/// `host[:port][/dbname]`, `[v6]:port/dbname`; port 5432 and database `postgres` by default.
/// A socket directory or anything that is not a plain host name or address is refused.
pub fn address(target: &str) -> Result<Address, String> {
    let (hostport, dbname) = target.split_once('/').unwrap_or((target, "postgres"));
    let (host, port) = match hostport.strip_prefix('[') {
        Some(rest) => {
            let (h, tail) = rest.split_once(']').ok_or("an IPv6 address needs its closing ]")?;
            (h, tail.strip_prefix(':'))
        }
        None => match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port = match port {
        None => crate::db::conninfo::DEFAULT_PORT,
        Some(p) => p.parse().map_err(|_| format!("port '{p}' is not a number"))?,
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._:".contains(c);
    if host.is_empty() || !host.chars().all(plain) {
        return Err("the host must be a name or an IP address (no socket paths, no spaces)".into());
    }
    if dbname.is_empty() || dbname.contains(['/', '\0']) {
        return Err("the database name after / is empty or has a /".into());
    }
    Ok(Address {
        host: host.to_string(),
        port,
        dbname: dbname.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_and_checked() {
        let r = parse("target=db-1%3A6432%2Fapp&auth=mon&check=locks&check=waits&format=json").unwrap();
        assert_eq!(r.target, "db-1:6432/app");
        assert_eq!(r.auth.as_deref(), Some("mon"));
        assert_eq!(r.checks, ["locks", "waits"]);
        assert_eq!(r.format, Some(Format::Json));
        assert!(parse("target=a&password=x")
            .unwrap_err()
            .contains("unknown parameter 'password'"));
        assert!(parse("target=a&target=b").unwrap_err().contains("twice"));
        assert!(parse("auth=x").unwrap_err().contains("no target"));
        assert!(parse("target=a&format=table").is_err());
    }

    #[test]
    fn addresses_take_defaults_and_refuse_sockets() {
        let a = address("db-1.prod").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.dbname.as_str()),
            ("db-1.prod", 5432, "postgres")
        );
        let a = address("[::1]:6432/app").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.dbname.as_str()), ("::1", 6432, "app"));
        assert!(address("/var/run/postgresql").is_err());
        assert!(address("db:x/app").is_err());
        assert!(address("host=evil/app").is_err());
    }
}
