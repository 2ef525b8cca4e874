//! Helpers for evaluate() unit tests: fixture rows in, findings out.

use std::collections::BTreeMap;

use super::{Check, CheckOutput, EvalContext, EvalError, Query, QueryOutcome, Thresholds};
use crate::db::row::Row;

pub fn outcome(query: &'static Query, rows: Vec<Row>) -> (&'static str, QueryOutcome) {
    (
        query.name,
        QueryOutcome {
            rows,
            ..Default::default()
        },
    )
}

/// Evaluates with default thresholds, top 20, PostgreSQL 16.
pub fn eval(check: &dyn Check, outcomes: Vec<(&'static str, QueryOutcome)>) -> CheckOutput {
    eval_with(check, outcomes, Thresholds::defaults(check.thresholds()))
}

pub fn eval_with(
    check: &dyn Check,
    outcomes: Vec<(&'static str, QueryOutcome)>,
    thresholds: Thresholds,
) -> CheckOutput {
    match try_eval_with(check, outcomes, thresholds) {
        Ok(out) => out,
        Err(e) => panic!("evaluate failed: {e}"),
    }
}

/// Evaluates with default thresholds; the error when the rows cannot be used.
pub fn try_eval(check: &dyn Check, outcomes: Vec<(&'static str, QueryOutcome)>) -> Result<CheckOutput, EvalError> {
    try_eval_with(check, outcomes, Thresholds::defaults(check.thresholds()))
}

fn try_eval_with(
    check: &dyn Check,
    outcomes: Vec<(&'static str, QueryOutcome)>,
    thresholds: Thresholds,
) -> Result<CheckOutput, EvalError> {
    let outcomes: BTreeMap<_, _> = outcomes.into_iter().collect();
    let ctx = EvalContext {
        outcomes: &outcomes,
        thresholds: &thresholds,
        top_n: 20,
        server_version_num: 160000,
    };
    check.evaluate(&ctx)
}
