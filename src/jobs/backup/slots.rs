//! `--jobs N` bounded by what the server can give: pg_dump opens N + 1 connections (its
//! leader and N workers), pg_restore N. Asking for more than are free used up
//! max_connections, locked the application out and aborted the dump; so the server is asked
//! first, and a number that does not fit is refused before the tool starts.

use tokio_postgres::Client;

use crate::db::row::{Row, RowError};

use super::error::BackupError;
use super::session;

const SLOTS_SQL: &str = include_str!("../../../queries/backup_slots.sql");

/// Which tool the workers are for: how many connections it opens for `--jobs N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// The leader plus N workers (pg_dump's documentation: "open njobs + 1 connections").
    PgDump,
    /// N workers; the leader disconnects before they start.
    PgRestore,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::PgDump => "pg_dump",
            Tool::PgRestore => "pg_restore",
        }
    }

    /// Connections the tool opens for `jobs` workers.
    pub fn connections(self, jobs: u32) -> i64 {
        i64::from(jobs) + i64::from(self == Tool::PgDump)
    }
}

/// What the server reported, as read from `backup_slots.sql`.
#[derive(Clone, Debug, PartialEq)]
pub struct Slots {
    pub max_connections: i64,
    pub superuser_reserved: i64,
    pub reserved: i64,
    pub in_use: i64,
    /// (CONNECTION LIMIT, connections) of the login role, when one binds it.
    pub role: Option<(i64, i64)>,
    /// (CONNECTION LIMIT, connections) of the database, when one binds it.
    pub database: Option<(i64, i64)>,
}

impl Slots {
    fn from_row(r: &Row) -> Result<Slots, RowError> {
        let superuser = r.opt_bool("superuser")?.unwrap_or(false);
        // -1 is "no limit"; a superuser is exempt from both limits.
        let limit = |limit: &str, used: &str| -> Result<Option<(i64, i64)>, RowError> {
            match r.opt_i64(limit)? {
                Some(l) if l >= 0 && !superuser => Ok(Some((l, r.i64(used)?))),
                _ => Ok(None),
            }
        };
        Ok(Slots {
            max_connections: r.i64("max_connections")?,
            superuser_reserved: r.i64("superuser_reserved")?,
            reserved: r.i64("reserved")?,
            in_use: r.i64("in_use")?,
            role: limit("role_limit", "role_in_use")?,
            database: limit("db_limit", "db_in_use")?,
        })
    }

    /// Free connections, and the limit that binds, in words.
    pub fn free(&self) -> (i64, String) {
        let server = self.max_connections - self.superuser_reserved - self.reserved - self.in_use;
        let mut best = (
            server,
            format!(
                "max_connections {} - {} superuser_reserved_connections - {} reserved_connections - {} in use",
                self.max_connections, self.superuser_reserved, self.reserved, self.in_use
            ),
        );
        for (what, limit) in [("the role", self.role), ("the database", self.database)] {
            if let Some((l, used)) = limit {
                if l - used < best.0 {
                    best = (l - used, format!("{what}'s CONNECTION LIMIT {l} - {used} in use"));
                }
            }
        }
        (best.0.max(0), best.1)
    }

    /// Ok when `tool` with `jobs` workers fits; else the one-line refusal with the fix.
    pub fn check(&self, tool: Tool, jobs: u32) -> Result<(), BackupError> {
        let need = tool.connections(jobs);
        let (free, why) = self.free();
        if need <= free {
            return Ok(());
        }
        let most = free - (need - i64::from(jobs));
        let fix = if most >= 2 {
            format!("use --jobs {most} or less, or free connections (raise max_connections)")
        } else {
            "run without --jobs, or free connections (raise max_connections)".to_string()
        };
        Err(BackupError::Slots(format!(
            "--jobs {jobs}: {} would open {need} connections, but the server has {free} free ({why}); {fix}",
            tool.name()
        )))
    }
}

/// Asks the server on `client` and checks. `in_database`: the client is connected to the
/// database the tool will use, so its CONNECTION LIMIT counts too.
pub async fn ensure(
    client: &Client,
    database: &str,
    in_database: bool,
    tool: Tool,
    jobs: u32,
) -> Result<(), BackupError> {
    let what = "counting free connections for --jobs";
    let rows = session::query(client, database, what, SLOTS_SQL).await?;
    let bad = |e: String| BackupError::Query {
        database: database.into(),
        what,
        message: e,
    };
    let row = rows.first().ok_or_else(|| bad("no row".into()))?;
    let mut slots = Slots::from_row(row).map_err(|e| bad(e.to_string()))?;
    if !in_database {
        slots.database = None;
    }
    slots.check(tool, jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(max: i64, in_use: i64) -> Slots {
        Slots {
            max_connections: max,
            superuser_reserved: 3,
            reserved: 0,
            in_use,
            role: None,
            database: None,
        }
    }

    #[test]
    fn pg_dump_needs_a_leader_connection_besides_its_workers() {
        // 20 - 3 - 5 = 12 free: pg_dump --jobs 11 opens 12, pg_restore --jobs 12 opens 12.
        let s = slots(20, 5);
        assert!(s.check(Tool::PgDump, 11).is_ok());
        assert!(s.check(Tool::PgRestore, 12).is_ok());
        let e = s
            .check(Tool::PgDump, 12)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("would open 13") && e.contains("12 free"), "{e}");
        assert!(e.contains("use --jobs 11 or less"), "{e}");
        let e = s
            .check(Tool::PgRestore, 13)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("use --jobs 12 or less"), "{e}");
    }

    #[test]
    fn the_tightest_limit_binds_and_a_full_server_says_run_without_jobs() {
        let mut s = slots(100, 10);
        s.database = Some((4, 1));
        let e = s
            .check(Tool::PgDump, 8)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("3 free") && e.contains("database's CONNECTION LIMIT 4"),
            "{e}"
        );
        assert!(e.contains("--jobs 2 or less"), "{e}");
        let e = slots(10, 12).check(Tool::PgDump, 2).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("0 free") && e.contains("run without --jobs")));
    }
}
