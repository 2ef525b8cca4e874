//! postgres_exporter's queries.yaml (`--extend.query-path`), read so that its users can bring
//! their files: each top-level entry becomes a custom check of that name, run in the target's
//! database; each GAUGE or COUNTER column the series `dbtool_custom_<entry>_<column>`
//! (postgres_exporter's `<entry>_<column>`; a counter's name ends in `_total`, as Prometheus
//! wants it), labelled by its LABEL columns.
//!
//! As in postgres_exporter a NULL is NaN, a boolean 1 or 0 and a timestamp its Unix time.
//! DISCARD columns are left out, as there. MAPPEDMETRIC, DURATION and HISTOGRAM columns are not
//! exported, and every run's report says so; `runonserver` is not honoured (a note says so
//! too); `master` and `cache_seconds` are accepted: every run reads afresh, in the target's
//! database.

use yaml_rust2::{Yaml, YamlLoader};

use super::config::is_identifier;
use super::Parts;
use crate::checks::Scope;
use crate::report::finding::MetricKind;

/// The checks of a queries.yaml text, or every problem in it (each naming its entry).
pub(crate) fn parts(text: &str, file: &str) -> Result<Vec<Parts>, Vec<String>> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| {
        let m = e.marker();
        vec![format!(
            "{file}:{}:{}: not valid YAML: {}",
            m.line(),
            m.col() + 1,
            e.info()
        )]
    })?;
    let Some(Yaml::Hash(top)) = docs.into_iter().next() else {
        return Err(vec![format!(
            "{file}: expected a map of query names to queries, as postgres_exporter's queries.yaml"
        )]);
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (key, entry) in &top {
        let Some(name) = key.as_str() else {
            problems.push(format!("{file}: a query name is not a string"));
            continue;
        };
        match entry_parts(name, entry, file) {
            Ok(p) => out.push(p),
            Err(mut e) => problems.append(&mut e),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn entry_parts(name: &str, entry: &Yaml, file: &str) -> Result<Parts, Vec<String>> {
    let at = |what: String| format!("{file}: {name}: {what}");
    let Yaml::Hash(map) = entry else {
        return Err(vec![at("expected query: and metrics:".into())]);
    };
    let mut problems = Vec::new();
    if !is_identifier(name) {
        problems.push(at(
            "not a name dbtool takes for a check; use lowercase letters, digits and _".into(),
        ));
    }
    let mut sql = None;
    let mut notes = Vec::new();
    let (mut labels, mut values) = (Vec::new(), Vec::new());
    for (k, v) in map {
        match (k.as_str().unwrap_or(""), v) {
            ("query", Yaml::String(q)) => sql = Some(q.clone()),
            ("master", Yaml::Boolean(_)) | ("cache_seconds", Yaml::Integer(_)) => {}
            ("runonserver", Yaml::String(range)) => notes.push(format!(
                "runonserver \"{range}\" is not honoured by dbtool: the query runs on every server"
            )),
            ("metrics", Yaml::Array(columns)) => {
                for c in columns {
                    column(c, &mut labels, &mut values, &mut notes, &mut problems, &at, name);
                }
            }
            (k, _) => problems.push(at(format!(
                "key '{k}' is not one dbtool reads (query, metrics, master, cache_seconds, runonserver) or has the wrong type"
            ))),
        }
    }
    let Some(sql) = sql else {
        problems.push(at("has no query".into()));
        return Err(problems);
    };
    if values.is_empty() && problems.is_empty() {
        problems.push(at("has no GAUGE or COUNTER column: nothing to export".into()));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Parts {
        name: name.to_string(),
        help: format!("postgres_exporter query {name} from {file}."),
        sql,
        scope: Scope::Cluster,
        labels,
        values,
        thresholds: None,
        notes,
        exporter: true,
    })
}

/// One `- column: {usage, description}` of `metrics`.
fn column(
    c: &Yaml,
    labels: &mut Vec<String>,
    values: &mut Vec<(String, String, MetricKind, String)>,
    notes: &mut Vec<String>,
    problems: &mut Vec<String>,
    at: &dyn Fn(String) -> String,
    name: &str,
) {
    let Some((col, opts)) = c.as_hash().filter(|h| h.len() == 1).and_then(|h| h.iter().next()) else {
        problems.push(at("each metrics item is `- column: {usage: …, description: …}`".into()));
        return;
    };
    let col = col.as_str().unwrap_or("").to_string();
    let usage = opts["usage"].as_str().unwrap_or("").to_ascii_uppercase();
    let description = opts["description"].as_str().unwrap_or("").to_string();
    if !is_identifier(&col) {
        problems.push(at(format!(
            "column '{}' is not a lowercase name dbtool can read (alias it in the query)",
            col.escape_debug()
        )));
        return;
    }
    let kind = match usage.as_str() {
        "LABEL" => {
            if ["target", "database", "check"].contains(&col.as_str()) {
                problems.push(at(format!(
                    "label column '{col}' clashes with dbtool's own label; alias it in the query"
                )));
            } else {
                labels.push(col);
            }
            return;
        }
        "DISCARD" => return,
        "GAUGE" => MetricKind::Gauge,
        "COUNTER" => MetricKind::Counter,
        "MAPPEDMETRIC" | "DURATION" | "HISTOGRAM" => {
            notes.push(format!(
                "column {col}: usage {usage} is not supported by dbtool; it is not exported"
            ));
            return;
        }
        other => {
            problems.push(at(format!(
                "column {col}: usage '{other}' is not one of LABEL, GAUGE, COUNTER, DISCARD, MAPPEDMETRIC, DURATION, HISTOGRAM"
            )));
            return;
        }
    };
    let help = if description.trim().is_empty() {
        format!("{name} {col} (postgres_exporter query).")
    } else {
        description
    };
    values.push((
        col.clone(),
        super::family_name(&format!("{name}_{col}"), kind),
        kind,
        help,
    ));
}
