//! One notification over HTTP(S) (ureq, rustls): bounded by a timeout, retried with backoff
//! on what may pass (timeouts, connection errors, 429, 5xx), never on a 4xx that will not.
//! Webhook URLs carry their secret in the path, so only `scheme://host/…` is ever logged.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::report::finding::{MetricFamily, MetricKind, Sample};

use super::{Status, Style};

pub static FAILURES: MetricFamily = MetricFamily {
    name: "dbtool_notify_failures_total",
    help: "Notifications that could not be delivered after their retries, by endpoint (scheme://host).",
    kind: MetricKind::Counter,
};

fn counter() -> &'static Mutex<BTreeMap<String, u64>> {
    static C: OnceLock<Mutex<BTreeMap<String, u64>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

pub fn count_failure(endpoint: &str) {
    if let Ok(mut c) = counter().lock() {
        *c.entry(endpoint.to_string()).or_default() += 1;
    }
}

/// This process's undelivered notifications by endpoint (the daemon's /metrics).
pub fn failures_total() -> BTreeMap<String, u64> {
    counter().lock().map(|c| c.clone()).unwrap_or_default()
}

/// Samples of `FAILURES` for counts kept elsewhere (a backup destination's state file).
pub fn samples(counts: &BTreeMap<String, u64>) -> Vec<Sample> {
    counts
        .iter()
        .map(|(endpoint, n)| Sample::new(&FAILURES, *n as f64).label("endpoint", endpoint))
        .collect()
}

/// `https://hooks.slack.com/…`: the scheme and host only; the path may be the secret.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("?", url));
    let after_userinfo = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = after_userinfo.split(['/', '?', '#']).next().unwrap_or_default();
    let more = after_userinfo.len() > host.len();
    format!("{scheme}://{host}{}", if more { "/…" } else { "" })
}

/// An http(s) URL with a host, or why not (the message shows the redacted URL).
pub fn check_url(url: &str) -> Result<(), String> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && !redact(url).ends_with("://")
        && !redact(url).contains(":///");
    if ok {
        return Ok(());
    }
    Err(format!(
        "notify URL {} is not an http:// or https:// URL with a host",
        redact(url)
    ))
}

fn is_healthchecks(url: &str) -> bool {
    let host = redact(url);
    let host = host.split("://").nth(1).unwrap_or_default().trim_end_matches("/…");
    let host = host.split(':').next().unwrap_or_default();
    host == "hc-ping.com" || host.ends_with(".hc-ping.com")
}

/// The URL to POST to: a healthchecks ping URL gets `/fail` on failure.
pub fn destination(url: &str, style: Option<Style>, status: Status) -> String {
    let healthchecks = match style {
        Some(Style::Healthchecks) => true,
        Some(Style::Json) => false,
        None => is_healthchecks(url),
    };
    if healthchecks && status == Status::Failure {
        let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
        let base = base.trim_end_matches('/');
        return match query {
            Some(q) => format!("{base}/fail?{q}"),
            None => format!("{base}/fail"),
        };
    }
    url.to_string()
}

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub timeout: Duration,
    pub retries: u32,
}

/// Why one attempt failed, and whether another may succeed. Never ureq's own Display: it
/// starts with the whole URL.
fn attempt(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(), (String, bool)> {
    let sent = agent
        .post(url)
        .set("Content-Type", "application/json")
        .set("User-Agent", concat!("dbtool/", env!("CARGO_PKG_VERSION")))
        .send_bytes(body);
    match sent {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, _)) => Err((format!("HTTP {code}"), code == 429 || code >= 500)),
        Err(ureq::Error::Transport(t)) => {
            let why = match std::error::Error::source(&t) {
                Some(s) => format!("{}: {s}", t.kind()),
                None => t.kind().to_string(),
            };
            let retry = !matches!(t.kind(), ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme);
            Err((why, retry))
        }
    }
}

/// POSTs `body` to `url`: 1 + `retries` attempts, each bounded by `timeout`, 0.5 s, 1 s, 2 s …
/// (at most 8 s) apart. Err: the last reason, with the number of attempts.
pub fn post(url: &str, body: &[u8], s: Settings) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(s.timeout)
        // A redirect could carry the document somewhere else; receivers answer directly.
        .redirects(0)
        .build();
    let mut delay = Duration::from_millis(500);
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(&agent, url, body) {
            Ok(()) => return Ok(()),
            Err((why, retry)) if !retry || tries > s.retries => {
                return Err(format!(
                    "{why} (after {tries} attempt{})",
                    if tries == 1 { "" } else { "s" }
                ))
            }
            Err((why, _)) => {
                tracing::info!(url = %redact(url), error = %why, "notification attempt failed; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(8));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_to_scheme_and_host() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("http://user:pw@example.com:8080/x?token=1"),
            "http://example.com:8080/…"
        );
        assert_eq!(redact("https://hc-ping.com"), "https://hc-ping.com");
        assert!(check_url("ftp://x/y").is_err());
        assert!(check_url("https:///path").is_err());
        assert!(check_url("http://127.0.0.1:9/hook").is_ok());
    }

    #[test]
    fn healthchecks_urls_get_fail_on_failure_only() {
        let hc = "https://hc-ping.com/0f9e-uuid";
        assert_eq!(
            destination(hc, None, Status::Failure),
            "https://hc-ping.com/0f9e-uuid/fail"
        );
        assert_eq!(destination(hc, None, Status::Success), hc);
        assert_eq!(destination(hc, Some(Style::Json), Status::Failure), hc);
        let own = "http://hc.example/ping/abc/?create=1";
        assert_eq!(
            destination(own, Some(Style::Healthchecks), Status::Failure),
            "http://hc.example/ping/abc/fail?create=1"
        );
        assert_eq!(
            destination("https://x.example/hook", None, Status::Failure),
            "https://x.example/hook"
        );
    }
}
