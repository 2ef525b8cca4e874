//! Picks each connection field by precedence: DSN value, then environment, then libpq's default.

use super::*;

/// Picks each field by precedence: DSN value, then environment; an empty value means the default.
pub(super) struct Resolver<'a> {
    pub(super) dsn: &'a parse::Dsn,
    pub(super) service: Option<&'a service::Service>,
    pub(super) env: &'a dyn Env,
}

impl Resolver<'_> {
    pub(super) fn get(&self, key: &'static str, var: &'static str) -> Option<(String, Origin)> {
        // libpq: a key present in the DSN, even empty, hides the environment variable.
        if let Some(v) = self.dsn.values.get(key) {
            return Some((v.clone(), Origin::Dsn)).filter(|_| !v.is_empty());
        }
        // libpq: then the service file, and only then the environment.
        if let Some((v, _)) = self.service.and_then(|s| s.values.get(key)) {
            return Some((v.clone(), Origin::Service)).filter(|_| !v.is_empty());
        }
        // An empty `var`: libpq has no environment variable for this key.
        let v = Some(var).filter(|v| !v.is_empty()).and_then(|var| self.env.var(var));
        Some((v.filter(|v| !v.is_empty())?, Origin::Env(var)))
    }

    /// A bad value: pointed at by position when it came from the DSN, shown when from a variable.
    pub(super) fn invalid(
        &self,
        key: &'static str,
        entry: Option<usize>,
        value: &str,
        origin: Origin,
        expected: &'static str,
    ) -> ConnInfoError {
        let place = match origin {
            Origin::Dsn => Place::Dsn {
                at: self.dsn.at.get(key).copied().unwrap_or(1),
            },
            Origin::Service => Place::Service {
                path: self.service.map(|s| s.path.display().to_string()).unwrap_or_default(),
                line: (self.service).and_then(|s| s.values.get(key)).map_or(0, |v| v.1),
            },
            Origin::Env(var) => Place::Env {
                var,
                value: value.to_string(),
            },
        };
        ConnInfoError::InvalidValue {
            key,
            entry,
            place,
            expected,
        }
    }

    pub(super) fn hosts(&self) -> Result<(Vec<String>, Vec<Option<IpAddr>>), ConnInfoError> {
        let mut addrs = Vec::new();
        if let Some((list, origin)) = self.get("hostaddr", "PGHOSTADDR") {
            let many = list.contains(',');
            for (n, a) in list.split(',').map(str::trim).enumerate() {
                // libpq: an empty entry means "look this host up by name".
                if a.is_empty() {
                    addrs.push(None);
                    continue;
                }
                let ip = a.parse::<IpAddr>().map_err(|_| {
                    let entry = many.then_some(n + 1);
                    self.invalid(
                        "hostaddr",
                        entry,
                        a,
                        origin,
                        "a numeric IP address such as 10.0.0.5 or ::1",
                    )
                })?;
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

    pub(super) fn ports(&self, hosts: usize) -> Result<Vec<u16>, ConnInfoError> {
        let Some((list, origin)) = self.get("port", "PGPORT") else {
            return Ok(vec![DEFAULT_PORT; hosts]);
        };
        let mut ports = Vec::new();
        let many = list.contains(',');
        for (n, p) in list.split(',').map(str::trim).enumerate() {
            ports.push(match p {
                // libpq: an empty entry in a port list means the default port.
                "" => DEFAULT_PORT,
                _ => port_number(p).ok_or_else(|| {
                    self.invalid(
                        "port",
                        many.then_some(n + 1),
                        p,
                        origin,
                        "a port number from 1 to 65535",
                    )
                })?,
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

    pub(super) fn sslmode(&self) -> Result<SslMode, ConnInfoError> {
        let Some((v, origin)) = self.get("sslmode", "PGSSLMODE") else {
            // libpq: the deprecated PGREQUIRESSL, when it starts with '1', below PGSSLMODE.
            let required = self.env.var("PGREQUIRESSL").is_some_and(|v| v.starts_with('1'));
            return Ok(if required { SslMode::Require } else { SslMode::Prefer });
        };
        SslMode::parse(&v).ok_or_else(|| {
            let expected = "one of disable, allow, prefer, require, verify-ca, verify-full";
            self.invalid("sslmode", None, &v, origin, expected)
        })
    }

    /// libpq: zero or negative waits forever, 1 is raised to 2 seconds.
    pub(super) fn connect_timeout(&self) -> Result<Option<Duration>, ConnInfoError> {
        let Some((v, origin)) = self.get("connect_timeout", "PGCONNECT_TIMEOUT") else {
            return Ok(None);
        };
        match v.trim().parse::<i64>() {
            Ok(n) if n <= 0 => Ok(None),
            Ok(n) => Ok(Some(Duration::from_secs(n.max(2).unsigned_abs()))),
            Err(_) => Err(self.invalid("connect_timeout", None, &v, origin, "whole seconds, e.g. 10")),
        }
    }

    pub(super) fn target_session_attrs(&self) -> Result<TargetSessionAttrs, ConnInfoError> {
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
                Err(self.invalid("target_session_attrs", None, &v, origin, expected))
            }
        }
    }

    /// dbtool never uses GSSAPI encryption, which satisfies disable and prefer but not require.
    pub(super) fn check_gssencmode(&self) -> Result<(), ConnInfoError> {
        match self.get("gssencmode", "PGGSSENCMODE") {
            None => Ok(()),
            Some((v, _)) if v == "disable" || v == "prefer" => Ok(()),
            Some((v, origin)) => {
                let expected = "disable or prefer (dbtool does not support GSSAPI encryption)";
                Err(self.invalid("gssencmode", None, &v, origin, expected))
            }
        }
    }
}

/// A TCP port: 1 to 65535, digits only.
pub(super) fn port_number(p: &str) -> Option<u16> {
    p.parse::<u16>()
        .ok()
        .filter(|n| *n > 0 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// The effective OS user's name and home directory, via the thread-safe getpwuid_r.
pub(super) fn current_os_user() -> Option<(String, PathBuf)> {
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
