//! Telling someone how a backup or archive run went: a JSON document POSTed to each URL of
//! `--notify` / `[notify]`, after the run, whatever happened. A notification that cannot be
//! delivered is logged (the URL redacted) and counted; it never changes the run's result.

pub mod send;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::duration::{parse_human, HumanDuration};

pub use send::{failures_total, redact, FAILURES};

/// Where and how to notify: the `[notify]` section and the `--notify*` flags, one type.
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct NotifyOptions {
    /// POST the run's result to URL, on success and on failure (repeatable; `urls` in
    /// [notify]). A healthchecks.io ping URL gets `/fail` appended on failure
    #[arg(long = "notify", value_name = "URL")]
    #[serde(default)]
    pub urls: Vec<String>,
    /// URLs told only when a run succeeds (default none).
    #[arg(skip)]
    #[serde(default)]
    pub on_success: Vec<String>,
    /// URLs told only when a run fails (default none).
    #[arg(skip)]
    #[serde(default)]
    pub on_failure: Vec<String>,
    /// Give up on one attempt after this long [default: 10s]
    #[arg(long = "notify-timeout", value_name = "DURATION", value_parser = parse_human)]
    pub timeout: Option<HumanDuration>,
    /// Retries after a timeout, a connection error, a 429 or a 5xx, with backoff [default: 2]
    #[arg(long = "notify-retries", value_name = "N")]
    pub retries: Option<u32>,
    /// healthchecks: append `/fail` on failure; json: never [default: healthchecks for
    /// hc-ping.com, else json]
    #[arg(long = "notify-style", value_enum, value_name = "STYLE")]
    pub style: Option<Style>,
}

impl NotifyOptions {
    pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
    pub const RETRIES: u32 = 2;

    /// The flags laid over the file's section: `--notify` replaces `urls`.
    pub fn over(&self, file: &NotifyOptions) -> NotifyOptions {
        NotifyOptions {
            urls: if self.urls.is_empty() {
                file.urls.clone()
            } else {
                self.urls.clone()
            },
            on_success: file.on_success.clone(),
            on_failure: file.on_failure.clone(),
            timeout: self.timeout.or(file.timeout),
            retries: self.retries.or(file.retries),
            style: self.style.or(file.style),
        }
    }

    /// Nobody to tell.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty() && self.on_success.is_empty() && self.on_failure.is_empty()
    }

    /// The URLs to tell about a run with this status.
    pub fn urls_for(&self, status: Status) -> Vec<&str> {
        let extra = match status {
            Status::Success => &self.on_success,
            Status::Failure => &self.on_failure,
        };
        let mut out: Vec<&str> = Vec::new();
        for u in self.urls.iter().chain(extra) {
            if !out.contains(&u.as_str()) {
                out.push(u);
            }
        }
        out
    }

    /// Every URL parses as http(s): a typo is an error before the run, not a silent miss after.
    pub fn validate(&self) -> Result<(), String> {
        for u in self.urls.iter().chain(&self.on_success).chain(&self.on_failure) {
            send::check_url(u)?;
        }
        Ok(())
    }
}

/// How a URL is told about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// The document, to the URL as given.
    Json,
    /// healthchecks.io: the same, to URL/fail when the run failed.
    Healthchecks,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failure,
}

/// The document POSTed (schema 1). `text` is a one-line summary, the field Slack and
/// Mattermost incoming webhooks display; other receivers read the rest.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub schema: u32,
    /// The scheduled job's name, or the command ("backup", "archive") run by hand.
    pub job: String,
    /// "backup" or "archive".
    pub kind: String,
    pub target: String,
    pub database: String,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: f64,
    /// Bytes written (a backup's files), when the kind has them.
    pub bytes: Option<u64>,
    /// Rows moved (archive), when the kind has them.
    pub rows: Option<i64>,
    /// What was made, e.g. the backup id.
    pub detail: Option<String>,
    /// Why the run failed (one line, never a password).
    pub error: Option<String>,
    pub host: String,
    pub text: String,
}

impl Event {
    /// An event with `text` filled in from the rest.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job: &str,
        kind: &str,
        target: &str,
        database: &str,
        started_at: DateTime<Utc>,
        bytes: Option<u64>,
        rows: Option<i64>,
        result: Result<Option<String>, String>,
    ) -> Event {
        let finished_at = Utc::now();
        let duration_seconds = (finished_at - started_at).num_milliseconds().max(0) as f64 / 1000.0;
        let host = crate::host::name();
        let (status, detail, error) = match result {
            Ok(detail) => (Status::Success, detail, None),
            Err(e) => (Status::Failure, None, Some(e)),
        };
        let what = if job == kind {
            format!("dbtool {kind}")
        } else {
            format!("dbtool {kind} job {job}")
        };
        let text = match &error {
            None => format!(
                "{what} of {database} on {target} succeeded in {duration_seconds:.1}s{}{} ({host})",
                bytes
                    .map(|b| format!(", {}", indicatif::HumanBytes(b)))
                    .unwrap_or_default(),
                rows.map(|r| format!(", {r} rows")).unwrap_or_default(),
            ),
            Some(e) => format!("{what} of {database} on {target} FAILED after {duration_seconds:.1}s ({host}): {e}"),
        };
        Event {
            schema: 1,
            job: job.to_string(),
            kind: kind.to_string(),
            target: target.to_string(),
            database: database.to_string(),
            status,
            started_at,
            finished_at,
            duration_seconds,
            bytes,
            rows,
            detail,
            error,
            host,
            text,
        }
    }
}

/// Sends `event` to every URL for its status; the endpoints (scheme://host) that could not
/// be told, each already logged and counted.
pub async fn notify(opts: &NotifyOptions, event: &Event) -> Vec<String> {
    let urls: Vec<String> = opts.urls_for(event.status).into_iter().map(String::from).collect();
    if urls.is_empty() {
        return Vec::new();
    }
    let body = match serde_json::to_vec(event) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "could not render the notification");
            return urls.iter().map(|u| redact(u)).collect();
        }
    };
    let settings = send::Settings {
        timeout: opts.timeout.map_or(NotifyOptions::TIMEOUT, |t| t.0),
        retries: opts.retries.unwrap_or(NotifyOptions::RETRIES),
    };
    let mut failed = Vec::new();
    for url in urls {
        let to = send::destination(&url, opts.style, event.status);
        let body = body.clone();
        let done = tokio::task::spawn_blocking(move || send::post(&to, &body, settings)).await;
        let result = done.unwrap_or_else(|e| Err(format!("the sending task failed: {e}")));
        if let Err(why) = result {
            let endpoint = redact(&url);
            tracing::warn!(url = %endpoint, error = %why, "notification not delivered; the run's result stands");
            send::count_failure(&endpoint);
            failed.push(endpoint);
        }
    }
    failed
}
