//! Session features as evidence: pg_stat_statements' calls at both ends of the window, so only
//! what ran inside it counts (a backup's SET and PREPARE before the window do not), and only
//! for the users and databases PgBouncer pools (dbtool's and pg_dump's direct sessions as
//! another role do not). dbtool's own statements are left out by the query itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::row::Row;

use super::BouncerFigures;

/// (user, database, queryid, feature) → calls so far.
pub type Calls = BTreeMap<(String, String, String, String), f64>;

/// One snapshot from `queries/pool_statements.sql`; a row it cannot read is skipped (the
/// evidence is then thinner, never invented).
pub fn snapshot(rows: &[Row]) -> Calls {
    rows.iter()
        .filter_map(|r| {
            let key = (
                r.str("usename").ok()?.to_string(),
                r.str("datname").ok()?.to_string(),
                r.str("queryid").ok()?.to_string(),
                r.str("feature").ok()?.to_string(),
            );
            Some((key, r.f64("calls").ok()?))
        })
        .collect()
}

/// The features used inside the window, each with its calls and who made them, e.g.
/// "SET (12 calls by app on shop)". An entry evicted and re-added in between (its calls
/// lower than before) counts from zero. `maintenance` ("user on db" of dbtool, pg_dump and
/// pg_restore sessions seen while sampling) marks calls that may be theirs rather than the
/// application's: pg_stat_statements cannot tell sessions of one user apart.
pub fn features(
    before: &Calls,
    after: &Calls,
    bouncer: Option<&BouncerFigures>,
    maintenance: &BTreeSet<String>,
) -> Vec<String> {
    let mut used: BTreeMap<&str, (f64, Vec<String>)> = BTreeMap::new();
    for ((user, db, queryid, feature), &now) in after {
        let then = before
            .get(&(user.clone(), db.clone(), queryid.clone(), feature.clone()))
            .copied()
            .unwrap_or(0.0);
        let delta = if now >= then { now - then } else { now };
        if delta <= 0.0 || !pooled(bouncer, user, db) {
            continue;
        }
        let entry = used.entry(feature).or_default();
        entry.0 += delta;
        let mut who = format!("{user} on {db}");
        if maintenance.contains(&who) {
            who.push_str(", where dbtool or pg_dump also ran: sample outside backups");
        }
        if !entry.1.contains(&who) {
            entry.1.push(who);
        }
    }
    used.into_iter()
        .map(|(feature, (calls, who))| format!("{feature} ({calls} calls by {})", who.join(", ")))
        .collect()
}

/// Whether `user` on `db` (PostgreSQL's names) is a PgBouncer pool: a pool's database is
/// PgBouncer's name, mapped to the real one by SHOW DATABASES, and its user may be forced.
/// Without PgBouncer every user and database counts.
fn pooled(bouncer: Option<&BouncerFigures>, user: &str, db: &str) -> bool {
    let Some(b) = bouncer else {
        return true;
    };
    b.user_pools().any(|p| {
        let entry = b.databases.iter().find(|d| d.name == p.database);
        let real_db = entry.map_or(p.database.as_str(), |d| d.database.as_str());
        let real_user = entry.and_then(|d| d.force_user.as_deref()).unwrap_or(p.user.as_str());
        real_db == db && real_user == user
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{DatabaseFigures, PoolFigures};

    fn calls(entries: &[(&str, &str, &str, &str, f64)]) -> Calls {
        entries
            .iter()
            .map(|(u, d, q, f, c)| ((u.to_string(), d.to_string(), q.to_string(), f.to_string()), *c))
            .collect()
    }

    #[test]
    fn only_calls_inside_the_window_by_pooled_users_count() {
        // Regression: a backup's SET and PREPARE before the window turned the advice into session mode.
        let before = calls(&[("app", "shop", "1", "SET", 40.0), ("app", "shop", "2", "PREPARE", 3.0)]);
        let after = calls(&[
            ("app", "shop", "1", "SET", 40.0),
            ("app", "shop", "2", "PREPARE", 3.0),
            ("backup", "shop", "3", "SET", 9.0),
            ("app", "shop", "4", "LISTEN", 2.0),
        ]);
        let bouncer = BouncerFigures {
            pools: vec![PoolFigures {
                database: "shop_pool".into(),
                user: "app".into(),
                ..Default::default()
            }],
            databases: vec![DatabaseFigures {
                name: "shop_pool".into(),
                database: "shop".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let none = BTreeSet::new();
        assert_eq!(
            features(&before, &after, Some(&bouncer), &none),
            ["LISTEN (2 calls by app on shop)"]
        );
        // Without PgBouncer every user counts, still only inside the window.
        assert_eq!(features(&before, &after, None, &none).len(), 2);
        // An entry reset in between counts from zero.
        let reset = calls(&[("app", "shop", "1", "SET", 5.0)]);
        assert_eq!(features(&before, &reset, None, &none), ["SET (5 calls by app on shop)"]);
        // A pg_dump of the same user in the window: counted, and said so.
        let dump = BTreeSet::from(["app on shop".to_string()]);
        let flagged = features(&before, &reset, None, &dump);
        assert!(
            flagged.iter().all(|f| f.contains("where dbtool or pg_dump also ran")),
            "{flagged:?}"
        );
    }
}
