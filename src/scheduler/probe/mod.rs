//! `GET /probe`: Prometheus' multi-target pattern. The scraper names the target; dbtool checks
//! it now, within the scrape's deadline, on the warm sessions the daemon keeps per target.
//!
//! Only what the configuration allows is probed: a `[[targets]]` name, or a `host:port/dbname`
//! that matches `[probe] allow_hosts`, logged into with an `[auth.NAME]` section. Anything else
//! is refused before any connection is attempted, so /probe cannot make dbtool connect
//! somewhere its configuration did not name.

pub mod request;
pub mod stats;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::checks::options::HealthOptions;
use crate::checks::partial::run_target_until;
use crate::db::pool::Pools;
use crate::db::{Target, TargetKind};
use crate::report::{Format, Report, TargetReport};
use crate::settings::probe::{params_for, AllowHost, ProbeConfig};
use crate::settings::Settings;
use request::ProbeRequest;
use stats::{ProbeStats, Refusal};

/// The kinds of target /probe serves; a new kind is one more arm in [`probe_kind`].
const KINDS: &[&str] = &["postgres", "pgbouncer", "redis"];

/// The least time a probe must have left to start checking once it has its slots.
const MIN_RUN: Duration = Duration::from_millis(100);

/// An HTTP answer: status line, content type, body.
pub struct Answer {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Answer {
    fn text(status: &'static str, line: String) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{line}\n").into_bytes(),
        }
    }
}

/// One configuration's view: a reload swaps it (the pools go with their configuration).
pub struct View {
    pub settings: Arc<Settings>,
    pub targets: Arc<Vec<Target>>,
    pub pools: Arc<Pools>,
    allow: Vec<AllowHost>,
}

impl View {
    pub fn new(settings: Arc<Settings>, targets: Arc<Vec<Target>>, pools: Arc<Pools>) -> View {
        // Validated with the file: an entry that does not parse never reaches here.
        let allow = settings
            .file
            .probe
            .allow_hosts
            .iter()
            .filter_map(|a| AllowHost::parse(a).ok())
            .collect();
        View {
            settings,
            targets,
            pools,
            allow,
        }
    }
}

/// The probe endpoint's state; shared by every request, outlives reloads.
pub struct Prober {
    view: Mutex<Arc<View>>,
    overall: Arc<Semaphore>,
    per_target: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_target_max: usize,
    pub stats: ProbeStats,
}

/// What a request resolved to: the target to check and the key of its pool and bound.
struct Resolved {
    target: Target,
    /// Distinguishes two `[auth]` sections on one address: their sessions are not shared.
    pool_key: String,
    kind: TargetKind,
}

impl Prober {
    /// The bounds are read once, at start (a reload keeps them).
    pub fn new(view: View) -> Prober {
        let p = &view.settings.file.probe;
        let overall = p.max_in_flight.unwrap_or(ProbeConfig::DEFAULT_MAX_IN_FLIGHT).max(1);
        let per_target_max = p
            .max_in_flight_per_target
            .unwrap_or(ProbeConfig::DEFAULT_MAX_IN_FLIGHT_PER_TARGET)
            .max(1);
        Prober {
            view: Mutex::new(Arc::new(view)),
            overall: Arc::new(Semaphore::new(overall)),
            per_target: Mutex::new(HashMap::new()),
            per_target_max,
            stats: ProbeStats::default(),
        }
    }

    pub fn replace(&self, view: View) {
        *self.view.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(view);
    }

    fn view(&self) -> Arc<View> {
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The exposition of the probe's own families, for `/metrics`.
    pub fn render_stats(&self) -> String {
        self.stats.render(KINDS)
    }

    fn refuse(&self, why: Refusal, line: String) -> Answer {
        self.stats.refuse(why);
        tracing::info!(reason = why.label(), "probe refused: {line}");
        let status = match why {
            Refusal::BadRequest => "400 Bad Request",
            Refusal::TooManyInFlight => "503 Service Unavailable",
            _ => "403 Forbidden",
        };
        Answer::text(status, line)
    }

    /// Answers `GET /probe?{query}`; `scrape_timeout` is Prometheus' header, in seconds.
    pub async fn handle(&self, query: &str, scrape_timeout: Option<&str>) -> Answer {
        let started = Instant::now();
        let view = self.view();
        let req = match request::parse(query) {
            Ok(r) => r,
            Err(why) => return self.refuse(Refusal::BadRequest, why),
        };
        let deadline = match deadline(&view.settings.file.probe, scrape_timeout) {
            Ok(d) => d,
            Err(why) => return self.refuse(Refusal::BadRequest, why),
        };
        let resolved = match resolve(&view, &req) {
            Ok(r) => r,
            Err((why, line)) => return self.refuse(why, line),
        };
        let options = HealthOptions {
            checks: req.checks.clone(),
            skip: req.skip.clone(),
            ..HealthOptions::default()
        }
        .over(&view.settings.file.health);
        let session = crate::settings::targets::session(&crate::cli::ConnArgs::default(), &view.settings, true);
        let plan = match crate::settings::health::plan(&options, &view.settings, session) {
            Ok(p) => p,
            Err(e) => return self.refuse(Refusal::BadRequest, format!("{e:#}")),
        };
        // A slot that frees only as the deadline ends leaves no time to check anything.
        let until = started + deadline.saturating_sub(MIN_RUN);
        let permits = self.permits(&resolved.pool_key, until).await;
        let Some(_permits) = permits else {
            return self.refuse(
                Refusal::TooManyInFlight,
                format!(
                    "no probe slot within the deadline ({} in flight); raise [probe] max_in_flight or max_in_flight_per_target, or scrape less often",
                    self.stats.in_flight()
                ),
            );
        };
        let _in_flight = self.stats.start();
        let left = deadline.saturating_sub(started.elapsed());
        let report = probe_kind(&resolved, &plan, left, &view.pools).await;
        self.stats
            .observe(resolved.kind.as_str(), started.elapsed().as_secs_f64());
        render(report, req.format.unwrap_or(Format::Prometheus), started)
    }

    /// A slot overall and one on the target, waiting no later than `until`.
    async fn permits(&self, key: &str, until: Instant) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let target = {
            let mut all = self
                .per_target
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.entry(key.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_target_max)))
                .clone()
        };
        let until = tokio::time::Instant::from_std(until);
        let both = async {
            let t = target.acquire_owned().await.ok()?;
            let o = self.overall.clone().acquire_owned().await.ok()?;
            Some((o, t))
        };
        tokio::time::timeout_at(until, both).await.ok().flatten()
    }
}

/// Prometheus' scrape timeout minus the margin; the configured default without the header.
fn deadline(p: &ProbeConfig, header: Option<&str>) -> Result<Duration, String> {
    let Some(h) = header else {
        return Ok(p.default_timeout.map_or(ProbeConfig::DEFAULT_TIMEOUT, |d| d.0));
    };
    let secs: f64 = h
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("X-Prometheus-Scrape-Timeout-Seconds '{h}' is not a positive number of seconds"))?;
    let margin = p.timeout_margin.map_or(ProbeConfig::DEFAULT_TIMEOUT_MARGIN, |d| d.0);
    // A margin as long as the timeout would leave nothing: keep a tenth of it.
    let total = Duration::from_secs_f64(secs.min(86_400.0));
    Ok(total.saturating_sub(margin).max(total / 10))
}

/// The target a request names, if the configuration allows it; the refusal otherwise.
fn resolve(view: &View, req: &ProbeRequest) -> Result<Resolved, (Refusal, String)> {
    if let Some(t) = view.targets.iter().find(|t| t.name == req.target) {
        if req.auth.is_some() {
            let line = format!(
                "target '{}' is a [[targets]] entry with its own credentials; drop &auth",
                req.target
            );
            return Err((Refusal::BadRequest, line));
        }
        return Ok(Resolved {
            target: t.clone(),
            pool_key: t.name.clone(),
            kind: t.kind,
        });
    }
    let Some(auth_name) = &req.auth else {
        let line = format!(
            "target '{}' is no [[targets]] name; name one, or give host:port/dbname with &auth=NAME",
            req.target
        );
        return Err((Refusal::UnknownTarget, line));
    };
    let addr = request::address(&req.target).map_err(|why| (Refusal::BadRequest, format!("target: {why}")))?;
    let Some(auth) = view.settings.file.auth.get(auth_name) else {
        return Err((
            Refusal::UnknownAuth,
            format!("auth '{auth_name}' is no [auth.NAME] section of the configuration"),
        ));
    };
    if !view.allow.iter().any(|a| a.allows(&addr.host, addr.port)) {
        let line = format!(
            "{}:{} is not in [probe] allow_hosts; add a pattern that matches it",
            addr.host, addr.port
        );
        return Err((Refusal::HostNotAllowed, line));
    }
    let params = params_for(auth, &addr.host, addr.port, &addr.dbname)
        .map_err(|why| (Refusal::AuthUnusable, format!("[auth.{auth_name}] {why}")))?;
    Ok(Resolved {
        target: Target::postgres(req.target.clone(), TargetKind::Postgres, params),
        pool_key: format!("{} auth={auth_name}", req.target),
        kind: TargetKind::Postgres,
    })
}

/// Runs the probe for the target's kind: the one place a new kind plugs in.
async fn probe_kind(
    r: &Resolved,
    plan: &crate::checks::plan::Plan,
    left: Duration,
    pools: &crate::db::pool::Pools,
) -> TargetReport {
    match r.kind {
        TargetKind::Postgres => {
            // Warm sessions are kept per pool key: a [[targets]] name, or address and auth.
            let mut keyed = r.target.clone();
            keyed.name.clone_from(&r.pool_key);
            match pools.of(&keyed, &plan.session, plan.max_connections) {
                Ok(pool) => run_target_until(&r.target, plan, left, &pool).await,
                Err(e) => TargetReport::down(r.target.name.clone(), e.to_string(), Duration::ZERO),
            }
        }
        // PgBouncer's console and Redis answer in one round trip per run: the whole run is
        // bounded by the deadline, with nothing to keep warm.
        TargetKind::Pgbouncer | TargetKind::Redis => {
            crate::checks::runner::run_target_with_timeout(&r.target, plan, left, None, None).await
        }
    }
}

fn render(report: TargetReport, format: Format, started: Instant) -> Answer {
    let report = Report {
        generated_at: chrono::Utc::now(),
        duration: started.elapsed(),
        targets: vec![report],
    };
    let mut body = Vec::with_capacity(16 * 1024);
    let content_type = match format {
        Format::Json => "application/json",
        _ => "text/plain; version=0.0.4; charset=utf-8",
    };
    match crate::report::render(&report, format, &mut body, crate::report::Style::plain()) {
        Ok(()) => Answer {
            status: "200 OK",
            content_type,
            body,
        },
        Err(e) => Answer::text("500 Internal Server Error", format!("rendering the report: {e}")),
    }
}
