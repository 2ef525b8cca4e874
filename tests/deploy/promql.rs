//! The metric names a PromQL expression reads, for checking shipped rules and dashboards
//! against what dbtool really emits.
//!
//! Deliberately errs towards reporting too much: any identifier that is not a function, an
//! aggregation, a keyword, a label name (inside `{…}` or a `by (…)`-style list) or a Grafana
//! variable counts as a metric name. A misread identifier then shows up as an "unknown metric"
//! and fails the test loudly, rather than a real metric slipping past unseen.

use std::collections::BTreeSet;

/// PromQL functions (Prometheus 2.x), always followed by `(`; listed so that a function
/// written with a space before its parenthesis is still recognised.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Aggregation operators; they may be followed by `by`/`without` before their parenthesis.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_KEYWORDS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Other keywords and literals that are not metric names.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"];

/// Metric names read by `expr`. Err for what this extractor does not understand (a selector
/// by `__name__`), so such an expression cannot pass unchecked.
pub fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i)?;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '{' {
            let end = skip_until(&chars, i, '}')?;
            let inside: String = chars[i..end].iter().collect();
            if inside.contains("__name__") {
                return Err(format!("selects by __name__, which this check cannot follow: {expr}"));
            }
            i = end;
        } else if c == '[' {
            i = skip_until(&chars, i, ']')?;
        } else if c == '$' {
            i = skip_variable(&chars, i);
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // Numbers, durations (5m), hex and exponents (1e9, 0x1f): one token.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let next = next_non_space(&chars, i);
            if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                if next.map(|(_, c)| c) == Some('(') {
                    i = skip_until(&chars, next.map_or(i, |(at, _)| at), ')')?;
                }
            } else if FUNCTIONS.contains(&lower.as_str())
                || AGGREGATIONS.contains(&lower.as_str())
                || KEYWORDS.contains(&lower.as_str())
                || next.map(|(_, c)| c) == Some('(')
            {
                // Not a metric: a function, aggregation, keyword or (unknown) function call.
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    Ok(names)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<(usize, char)> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    chars.get(i).map(|c| (i, *c))
}

/// Index just past the closing quote of the string starting at `start`.
fn skip_string(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(format!("unterminated string at {start}"))
}

/// Index just past `close`, skipping strings on the way (a label value may contain `}`).
fn skip_until(chars: &[char], start: usize, close: char) -> Result<usize, String> {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i)?,
            c if c == close => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(format!("no closing {close:?} for the one at {start}"))
}

/// A Grafana variable: `$name`, `${name}` or `${name:format}`.
fn skip_variable(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    if chars.get(i) == Some(&'{') {
        while i < chars.len() && chars[i] != '}' {
            i += 1;
        }
        return i + 1;
    }
    while i < chars.len() && is_ident_char(chars[i]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .collect()
    }

    #[test]
    fn a_bare_name_and_a_selector() {
        assert_eq!(names("dbtool_up == 0"), ["dbtool_up"]);
        assert_eq!(names(r#"dbtool_up{target="a}b",x!~'y'} > 0"#), ["dbtool_up"]);
    }

    #[test]
    fn functions_aggregations_and_label_lists_are_not_metrics() {
        let expr = "sum by (target, database) (rate(a_total[10m])) / ignoring(kind) group_left (x) \
                    max without(instance) (b) and on (target) c unless d or time() - e offset 5m";
        assert_eq!(names(expr), ["a_total", "b", "c", "d", "e"]);
    }

    #[test]
    fn numbers_durations_and_strings_are_skipped() {
        assert_eq!(
            names(r#"x > 1.3e9 and y[1h:5m] < 0x1F and label_replace(z, "dst", "$1", "src", "(.*)") > Inf"#),
            ["x", "y", "z"]
        );
        assert_eq!(names("26 * 3600 < time() - m"), ["m"]);
    }

    #[test]
    fn grafana_variables_are_skipped() {
        assert_eq!(
            names(r#"rate(q{target=~"$target"}[$__rate_interval]) * ${factor} + $other"#),
            ["q"]
        );
    }

    #[test]
    fn multi_line_expressions_with_comments() {
        assert_eq!(names("a # comment with fake_metric\n  and\nb"), ["a", "b"]);
    }

    #[test]
    fn a_function_with_a_space_before_its_parenthesis() {
        assert_eq!(names("rate (m[5m]) + topk (3, n)"), ["m", "n"]);
    }

    #[test]
    fn a_name_selector_is_refused_not_ignored() {
        assert!(metric_names(r#"{__name__="dbtool_up"}"#).is_err());
        assert!(metric_names("m{unterminated").is_err());
    }
}
