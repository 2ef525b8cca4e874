//! Which per-database queries run in which database: those of every database the run visits
//! (listed by the server, narrowed by `--database`), and a custom check's named databases.

use super::lanes::failure;
use super::{Query, QueryFailure, Scope};
use crate::db::row::Row;

/// A database to visit and the queries to run there.
pub(super) type Visit = (String, Vec<&'static Query>);

/// The visits, and the failures of queries whose database cannot be visited (by query name).
pub(super) fn plan(
    listed: Result<Vec<Row>, tokio_postgres::Error>,
    wanted: &Option<Vec<String>>,
    queries: &[&'static Query],
) -> (Vec<Visit>, Vec<(&'static str, QueryFailure)>) {
    let listed: Vec<String> = match listed {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| r.str("datname").ok().map(str::to_string))
            .collect(),
        Err(e) => {
            let f = failure(None, &e);
            return (Vec::new(), queries.iter().map(|q| (q.name, f.clone())).collect());
        }
    };
    let (chosen, missing) = choose(&listed, wanted);
    let mut failures = Vec::new();
    let mut visits: Vec<Visit> = Vec::new();
    for q in queries {
        let (dbs, gone): (Vec<&String>, Vec<QueryFailure>) = match q.scope {
            Scope::Cluster => continue,
            Scope::EachDatabase => (chosen.iter().collect(), missing.clone()),
            Scope::Databases(named) => {
                let (here, gone): (Vec<&str>, Vec<&str>) = named.iter().partition(|d| listed.iter().any(|l| l == *d));
                let here = listed.iter().filter(|l| here.contains(&l.as_str())).collect();
                (here, gone.into_iter().map(cannot_visit).collect())
            }
        };
        failures.extend(gone.into_iter().map(|f| (q.name, f)));
        for db in dbs {
            match visits.iter_mut().find(|(d, _)| d == db) {
                Some((_, qs)) => qs.push(q),
                None => visits.push((db.clone(), vec![*q])),
            }
        }
    }
    (visits, failures)
}

fn cannot_visit(db: &str) -> QueryFailure {
    QueryFailure {
        database: Some(db.to_string()),
        message: format!("database {db} does not exist, does not accept connections, or the role lacks CONNECT on it"),
        ..Default::default()
    }
}

/// The databases per-table queries visit: listed by the server, narrowed by `--database`.
fn choose(listed: &[String], wanted: &Option<Vec<String>>) -> (Vec<String>, Vec<QueryFailure>) {
    let Some(wanted) = wanted else {
        return (listed.to_vec(), Vec::new());
    };
    let missing = wanted
        .iter()
        .filter(|w| !listed.contains(w))
        .map(|w| cannot_visit(w))
        .collect();
    (listed.iter().filter(|d| wanted.contains(d)).cloned().collect(), missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    static EACH: Query = Query {
        name: "each",
        scope: Scope::EachDatabase,
        variants: &[],
        snapshot_stats: false,
    };
    static NAMED: Query = Query {
        name: "named",
        scope: Scope::Databases(&["shop", "gone"]),
        variants: &[],
        snapshot_stats: false,
    };

    fn listed(names: &[&str]) -> Result<Vec<Row>, tokio_postgres::Error> {
        Ok(names.iter().map(|n| Row::from_pairs(&[("datname", Some(n))])).collect())
    }

    #[test]
    fn named_databases_are_visited_whatever_database_narrows_to() {
        let wanted = Some(vec!["app".to_string()]);
        let (visits, failures) = plan(listed(&["app", "shop", "other"]), &wanted, &[&EACH, &NAMED]);
        let got: Vec<(&str, Vec<&str>)> = visits
            .iter()
            .map(|(d, qs)| (d.as_str(), qs.iter().map(|q| q.name).collect()))
            .collect();
        assert_eq!(got, [("app", vec!["each"]), ("shop", vec!["named"])]);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, "named");
        assert_eq!(failures[0].1.database.as_deref(), Some("gone"));
    }
}
