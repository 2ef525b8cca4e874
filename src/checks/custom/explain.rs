//! `config check --dsn`: each custom check's statement validated where it will run, without
//! running it: `EXPLAIN` parses, plans and checks privileges, as `PREPARE` then `EXECUTE`
//! would, in the session's read-only transaction. Not `PREPARE` itself: a prepared statement is
//! not transactional (it outlives the failure of the statement after it), and behind a
//! transaction pooler a later `DEALLOCATE` may reach another server connection, leaving it on
//! the first. `EXPLAIN` leaves nothing on the session.

use crate::checks::{Check, Scope};
use crate::db::{connect_session, SessionSettings, Target};

/// What is wrong with each check's statement on `target`, one line each.
pub async fn problems(target: &Target, checks: &[&'static dyn Check], session: &SessionSettings) -> Vec<String> {
    let mut out = Vec::new();
    for check in checks {
        for q in check.queries() {
            let Ok(sql) = q.sql_for(u32::MAX) else { continue };
            let main = match target.params() {
                Ok(p) => p.dbname().to_string(),
                Err(e) => {
                    out.push(format!("custom check {} on target {}: {e}", check.name(), target.name));
                    continue;
                }
            };
            let dbs: Vec<String> = match q.scope {
                Scope::Cluster | Scope::EachDatabase => vec![main],
                Scope::Databases(named) => named.iter().map(|d| d.to_string()).collect(),
            };
            for db in dbs {
                if let Err(why) = explain(target, &db, sql, session).await {
                    out.push(format!(
                        "custom check {} on target {} (database {db}): {why}",
                        check.name(),
                        target.name
                    ));
                }
            }
        }
    }
    out
}

async fn explain(target: &Target, db: &str, sql: &str, session: &SessionSettings) -> Result<(), String> {
    let params = target.params().map_err(|e| e.to_string())?;
    let s = connect_session(&params.with_dbname(db), session)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let text = format!("EXPLAIN (COSTS OFF) {sql}");
    let result = s
        .simple_query(&text)
        .await
        .map(|_| ())
        .map_err(|e| match e.as_db_error() {
            Some(d) if d.code().code() == "42501" => {
                format!("{}; grant SELECT on it to {}", d.message(), params.user())
            }
            Some(d) => d.message().to_string(),
            None => e.to_string(),
        });
    s.close().await;
    result
}
