//! The transport settings libpq reads besides sslmode: TCP keepalives and tcp_user_timeout,
//! channel_binding, sslnegotiation, and the certificate revocation lists.

use super::resolve::Resolver;
use super::{ConnInfoError, SslMode};
use std::time::Duration;

/// Linux's limits for TCP_KEEPIDLE / TCP_KEEPINTVL (seconds) and TCP_KEEPCNT: libpq hands the
/// values to setsockopt, which refuses anything outside them, so libpq fails the connection.
const MAX_KEEPALIVE_SECS: i32 = 32767;
const MAX_KEEPALIVE_COUNT: i32 = 127;

/// libpq's keepalives, keepalives_idle/interval/count and tcp_user_timeout (TCP only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keepalives {
    /// keepalives=0: no keepalive probes, and (as in libpq) none of the settings below is read.
    pub off: bool,
    /// keepalives_idle, whole seconds; None: the usual system default of 2 hours.
    pub idle: Option<Duration>,
    /// keepalives_interval, whole seconds; None: the system default.
    pub interval: Option<Duration>,
    /// keepalives_count; None: the system default.
    pub count: Option<u32>,
    /// tcp_user_timeout, milliseconds; None (or 0, or negative, as in libpq): the system default.
    pub tcp_user_timeout: Option<Duration>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    /// libpq's default: SCRAM-SHA-256-PLUS whenever the connection is TLS and the server offers it.
    #[default]
    Prefer,
    Require,
}

impl ChannelBinding {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        }
    }
}

/// How TLS starts: PostgreSQL's SSLRequest first, or (PostgreSQL 17+) the TLS handshake at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslNegotiation {
    #[default]
    Postgres,
    Direct,
}

impl SslNegotiation {
    pub fn as_str(self) -> &'static str {
        match self {
            SslNegotiation::Postgres => "postgres",
            SslNegotiation::Direct => "direct",
        }
    }
}

/// libpq's parse_int_param: an int, surrounding whitespace allowed, nothing else.
fn libpq_int(v: &str) -> Option<i32> {
    v.trim_matches(|c: char| c.is_ascii_whitespace()).parse::<i32>().ok()
}

impl Resolver<'_> {
    /// libpq reads these only on TCP connections with keepalives on; dbtool checks them
    /// whenever given, so a typo is found before the host list reaches a TCP host.
    pub(super) fn keepalives(&self) -> Result<Keepalives, ConnInfoError> {
        if let Some((v, origin)) = self.get("keepalives", "") {
            let on = libpq_int(&v).ok_or_else(|| self.invalid("keepalives", None, &v, origin, "1 (on) or 0 (off)"))?;
            if on == 0 {
                return Ok(Keepalives {
                    off: true,
                    ..Keepalives::default()
                });
            }
        }
        let seconds = |key: &'static str, max: i32, expected: &'static str| -> Result<Option<i32>, ConnInfoError> {
            let Some((v, origin)) = self.get(key, "") else {
                return Ok(None);
            };
            // libpq raises a negative value to 0, which setsockopt then refuses.
            match libpq_int(&v) {
                Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(self.invalid(key, None, &v, origin, expected)),
            }
        };
        let secs = |n: Option<i32>| n.map(|n| Duration::from_secs(n.unsigned_abs().into()));
        let idle = seconds("keepalives_idle", MAX_KEEPALIVE_SECS, "whole seconds from 1 to 32767")?;
        let interval = seconds(
            "keepalives_interval",
            MAX_KEEPALIVE_SECS,
            "whole seconds from 1 to 32767",
        )?;
        let count = seconds(
            "keepalives_count",
            MAX_KEEPALIVE_COUNT,
            "a number of probes from 1 to 127",
        )?;
        let tcp_user_timeout = match self.get("tcp_user_timeout", "") {
            None => None,
            Some((v, origin)) => match libpq_int(&v) {
                Some(n) if n <= 0 => None,
                Some(n) => Some(Duration::from_millis(n.unsigned_abs().into())),
                None => {
                    let expected = "whole milliseconds up to 2147483647 (0: the system default)";
                    return Err(self.invalid("tcp_user_timeout", None, &v, origin, expected));
                }
            },
        };
        Ok(Keepalives {
            off: false,
            idle: secs(idle),
            interval: secs(interval),
            count: count.map(i32::unsigned_abs),
            tcp_user_timeout,
        })
    }

    pub(super) fn channel_binding(&self) -> Result<ChannelBinding, ConnInfoError> {
        let Some((v, origin)) = self.get("channel_binding", "PGCHANNELBINDING") else {
            return Ok(ChannelBinding::Prefer);
        };
        [ChannelBinding::Disable, ChannelBinding::Prefer, ChannelBinding::Require]
            .into_iter()
            .find(|c| c.as_str() == v)
            .ok_or_else(|| self.invalid("channel_binding", None, &v, origin, "one of disable, prefer, require"))
    }

    /// libpq 17: direct TLS has no plaintext fallback, so it needs sslmode require or stronger.
    pub(super) fn ssl_negotiation(&self, sslmode: SslMode) -> Result<SslNegotiation, ConnInfoError> {
        let Some((v, origin)) = self.get("sslnegotiation", "PGSSLNEGOTIATION") else {
            return Ok(SslNegotiation::Postgres);
        };
        let negotiation = [SslNegotiation::Postgres, SslNegotiation::Direct]
            .into_iter()
            .find(|n| n.as_str() == v)
            .ok_or_else(|| self.invalid("sslnegotiation", None, &v, origin, "postgres or direct"))?;
        let weak = matches!(sslmode, SslMode::Disable | SslMode::Allow | SslMode::Prefer);
        if negotiation == SslNegotiation::Direct && weak {
            return Err(ConnInfoError::WeakSslModeForDirect { sslmode });
        }
        Ok(negotiation)
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
