//! What holds back vacuum: the oldest xmin among sessions, prepared transactions, replication
//! slots and standbys with hot_standby_feedback. Rows deleted after that xmin cannot be
//! removed anywhere in the cluster, so one forgotten holder bloats every table.

use super::shared::{sees_all_sessions, ROLE};
use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::row::Row;
use crate::query;
use crate::report::finding::{Finding, MainThreshold, MetricFamily, MetricKind, Sample, Severity};

query!(XMIN_HORIZON, "xmin_horizon", Cluster, [0 => "xmin_horizon.sql"]);

pub struct XminHorizon;

pub static AGE_XIDS: MetricFamily = MetricFamily {
    name: "dbtool_xmin_horizon_age_xids",
    help: "Transactions behind the current one of the oldest xmin held, per kind of holder (0 when none holds one).",
    kind: MetricKind::Gauge,
};
pub static AGE_SECONDS: MetricFamily = MetricFamily {
    name: "dbtool_xmin_horizon_age_seconds",
    help: "Age of the oldest transaction holding an xmin, for sessions and prepared transactions (0 when none).",
    kind: MetricKind::Gauge,
};

/// The kinds of holder, the `holder` label's whole value set.
const HOLDERS: [&str; 4] = ["session", "prepared_xact", "slot", "standby"];

/// One row of the query: something that keeps an xmin.
struct Holder<'a> {
    kind: &'a str,
    name: &'a str,
    age_xids: f64,
    age_seconds: Option<f64>,
    row: &'a Row,
}

fn holder(row: &Row) -> Result<Holder<'_>, EvalError> {
    let q = &XMIN_HORIZON;
    Ok(Holder {
        kind: row.str("holder").in_query(q)?,
        name: row.str("name").in_query(q)?,
        age_xids: row.f64("age_xids").in_query(q)?,
        age_seconds: row.opt_f64("age_seconds").in_query(q)?,
        row,
    })
}

/// "session pid 4242 (user app, db shop, application 'psql', idle in transaction, transaction
/// open 2h01m): SELECT …"; each kind says what a DBA needs to find and end it.
fn describe(h: &Holder<'_>) -> Result<String, EvalError> {
    let q = &XMIN_HORIZON;
    let r = h.row;
    let user = r.str("usename").in_query(q)?;
    let db = r.str("datname").in_query(q)?;
    let open = h.age_seconds.map_or_else(|| "-".into(), human_secs);
    Ok(match h.kind {
        "session" => format!(
            "session pid {} (user {user}, db {db}, application '{}', {}, transaction open {open}): {}",
            h.name,
            r.str("application_name").in_query(q)?,
            r.opt_str("state").in_query(q)?.unwrap_or("state not visible"),
            r.opt_str("query").in_query(q)?.unwrap_or("").replace(['\n', '\r'], " "),
        ),
        "prepared_xact" => format!(
            "prepared transaction '{}' (owner {user}, db {db}, prepared {open} ago): \
             COMMIT PREPARED or ROLLBACK PREPARED it",
            h.name
        ),
        "slot" => format!(
            "{} replication slot {} (db {}, {}): its consumer has not confirmed past this xmin; \
             drop the slot if the consumer is gone",
            r.opt_str("state").in_query(q)?.unwrap_or("?"),
            h.name,
            if db.is_empty() { "-" } else { db },
            if r.opt_bool("active").in_query(q)?.unwrap_or(false) {
                "active"
            } else {
                "inactive"
            },
        ),
        _ => format!(
            "standby {} with hot_standby_feedback: a query or slot on it holds this xmin",
            h.name
        ),
    })
}

impl Check for XminHorizon {
    fn name(&self) -> &'static str {
        "xmin_horizon"
    }
    fn description(&self) -> &'static str {
        "What holds back vacuum: the oldest xmin among sessions, prepared transactions, replication slots and standbys"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&XMIN_HORIZON, &ROLE];
        L
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "warning_xids",
            critical: "critical_xids",
            family: &AGE_XIDS,
            scale: 1.0,
            uom: "",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning_xids",
                default: 10_000_000.0,
                help: "the horizon is this many transactions behind",
            },
            ThresholdSpec {
                key: "critical_xids",
                default: 100_000_000.0,
                help: "the horizon is this many transactions behind",
            },
            ThresholdSpec {
                key: "warning_seconds",
                default: 3600.0,
                help: "the transaction holding the horizon is this old (sessions, prepared transactions)",
            },
            ThresholdSpec {
                key: "critical_seconds",
                default: 0.0,
                help: "the transaction holding the horizon is this old (0: off)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&AGE_XIDS, &AGE_SECONDS];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let holders = ctx
            .rows(&XMIN_HORIZON)
            .iter()
            .map(holder)
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = CheckOutput::default();
        for kind in HOLDERS {
            let of_kind = || holders.iter().filter(move |h| h.kind == kind);
            let xids = of_kind().map(|h| h.age_xids).fold(0.0, f64::max);
            out.samples.push(Sample::new(&AGE_XIDS, xids).label("holder", kind));
            if matches!(kind, "session" | "prepared_xact") {
                let secs = of_kind().filter_map(|h| h.age_seconds).fold(0.0, f64::max);
                out.samples.push(Sample::new(&AGE_SECONDS, secs).label("holder", kind));
            }
        }
        let hidden = sees_all_sessions(ctx, self.name())?;
        let t = ctx.thresholds;
        // The pinning holder is the oldest by xids; ties go to the longest-open transaction.
        let pin = holders.iter().max_by(|a, b| {
            (a.age_xids.total_cmp(&b.age_xids))
                .then(a.age_seconds.unwrap_or(0.0).total_cmp(&b.age_seconds.unwrap_or(0.0)))
        });
        match pin {
            None => out.summary = "nothing holds the xmin horizon back".into(),
            Some(h) => {
                let by_xids = Severity::above(h.age_xids, t.get("warning_xids"), t.get("critical_xids"));
                let by_secs = h.age_seconds.map_or(Severity::Ok, |s| {
                    Severity::above(s, t.get("warning_seconds"), t.get("critical_seconds"))
                });
                let behind = format!("{} transactions behind", h.age_xids);
                out.findings.push(
                    Finding::new(
                        by_xids.worst(by_secs),
                        format!("{} {}", h.kind.replace('_', " "), h.name),
                        format!("xmin horizon {behind}, held by {}", describe(h)?),
                    )
                    .with_value(h.age_xids),
                );
                out.summary = format!("horizon {behind}, held by {} {}", h.kind.replace('_', " "), h.name);
            }
        }
        if let Some(f) = hidden {
            out.summary = format!("{}; other roles' sessions not visible", out.summary);
            out.findings.push(f);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "xmin_horizon_tests.rs"]
mod tests;
