//! Whether the sample window measured anything: too few transactions or no busy connection
//! say nothing about the peak, so the advice keeps the current pool settings and says why
//! instead of sizing pools from noise (a pool of one on a quiet server).

use super::model::{num, Demand};
use super::Measured;

/// Below this many busy + waiting connections on every database the window had no load.
const IDLE_DEMAND: f64 = 0.05;
/// Fewer transactions than this in the window measure nothing: the advice keeps the current
/// values instead of sizing pools from noise.
pub const MIN_XACTS: f64 = 100.0;
/// PgBouncer's own default_pool_size, kept when there is neither load nor a configured size.
pub(super) const PGBOUNCER_DEFAULT_POOL: i64 = 20;

/// Transactions completed in the window: through PgBouncer when it is sampled (the pooled
/// load), else on the whole server.
pub(super) fn window_xacts(m: &Measured) -> f64 {
    let rate = match &m.pgbouncer {
        Some(b) => b
            .stats
            .iter()
            .filter(|s| s.database != "pgbouncer")
            .map(|s| s.xact_rate)
            .sum(),
        None => m.postgres.xact_rate.unwrap_or(0.0),
    };
    rate * m.window_seconds
}

/// Why the window measured nothing, when it did not.
pub(super) fn too_little_load(m: &Measured) -> Option<String> {
    let xacts = window_xacts(m);
    (xacts < MIN_XACTS).then(|| {
        format!(
            "insufficient load to measure: {} transactions in {}s (at least {MIN_XACTS} are needed)",
            xacts.round(),
            num(m.window_seconds)
        )
    })
}

/// A window without traffic says nothing about the peak: keep the configured pool sizes
/// rather than advise shrinking them to one connection.
pub(super) fn keep_configured_when_idle(
    m: &Measured,
    b: &super::BouncerFigures,
    demands: &mut Vec<Demand>,
    assumed: &mut Vec<String>,
) {
    let idle = demands.iter().all(|d| d.busy + d.waiting < IDLE_DEMAND);
    let little = too_little_load(m);
    let Some(configured) = b.setting_i64("default_pool_size").filter(|n| *n > 0) else {
        return;
    };
    if !(idle || little.is_some()) {
        return;
    }
    let why = little.unwrap_or_else(|| "no load in the sampled window".to_string());
    assumed.push(format!(
        "{why}; pool sizes kept at the configured {configured}; sample at peak load"
    ));
    // No pool saw a transaction: one demand stands for them all, so the sizes are kept too.
    if demands.is_empty() {
        demands.push(Demand {
            name: "(every pooled database)".into(),
            users: 1,
            busy: 0.0,
            waiting: 0.0,
            wanted: configured,
            needed: configured,
            source: "",
            kept: true,
        });
    }
    for d in demands.iter_mut() {
        d.source = "no load in the window: the configured size is kept";
        d.wanted = configured * d.users;
        d.needed = d.wanted;
        d.kept = true;
    }
}

#[cfg(test)]
mod tests {
    use crate::pool::{model, Assumptions, Measured, PgFigures};

    #[test]
    fn a_quiet_server_without_pgbouncer_keeps_pgbouncer_s_default_and_says_why() {
        // Regression: an idle window advised default_pool_size 1.
        let m = Measured {
            window_seconds: 10.0,
            postgres: PgFigures {
                max_connections: 100,
                xact_rate: Some(2.0),
                busy_mean: Some(0.01),
                session_features: Some(Vec::new()),
                ..PgFigures::default()
            },
            pgbouncer: None,
        };
        let advice = model::advise(&m, &Assumptions::default());
        let size = advice.recommendations.iter().find(|r| r.setting == "default_pool_size");
        assert_eq!(size.map(|r| r.recommended.as_str()), Some("20"), "{advice:#?}");
        assert!(
            advice
                .assumed
                .iter()
                .any(|a| a.contains("insufficient load to measure: 20 transactions in 10s")),
            "{:?}",
            advice.assumed
        );
    }
}
