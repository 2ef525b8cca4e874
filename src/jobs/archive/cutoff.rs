//! The cutoff: `--older-than 2y` turned into a PostgreSQL interval, evaluated ONCE on the
//! server's clock, and rendered as a literal of the time column's own type.
//!
//! Computing it once means a long run has one fixed boundary (rows crossing it during the run
//! stay), and the server's clock decides, not the (possibly skewed) host running dbtool.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::db::Columns;

use super::ident::{quote_ident, quote_literal};
use super::plan::Source;
use super::ArchiveError;

/// How the time column stores time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ColumnType {
    /// integer milliseconds since 1970 (Mattermost's CreateAt)
    EpochMs,
    /// integer seconds since 1970
    EpochS,
    Timestamptz,
    Timestamp,
    Date,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::EpochMs => "epoch-ms",
            ColumnType::EpochS => "epoch-s",
            ColumnType::Timestamptz => "timestamptz",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Date => "date",
        }
    }

    /// Whether a column of SQL type `sql_type` can hold this kind of time.
    fn fits(self, sql_type: &str) -> bool {
        match self {
            ColumnType::EpochMs | ColumnType::EpochS => {
                matches!(sql_type, "bigint" | "integer" | "numeric" | "double precision")
                    || sql_type.starts_with("numeric(")
            }
            ColumnType::Timestamptz => sql_type.starts_with("timestamp") && sql_type.ends_with("with time zone"),
            ColumnType::Timestamp => sql_type.starts_with("timestamp") && sql_type.ends_with("without time zone"),
            ColumnType::Date => sql_type == "date",
        }
    }
}

/// The fixed boundary of a run: rows whose time column is below `literal` are archived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cutoff {
    /// SQL literal, e.g. `1700000000000` or `'2024-11-21 05:00:00+00'::timestamp with time zone`.
    pub literal: String,
    /// The cutoff as a timestamptz, for humans.
    pub at: String,
    pub column_type: ColumnType,
}

/// `2y` → `2 years`; anything PostgreSQL accepts as an interval passes through.
pub fn interval_text(older_than: &str) -> String {
    let s = older_than.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = match unit.trim() {
        "y" => "years",
        "mo" | "mon" => "months",
        "w" => "weeks",
        "d" => "days",
        "h" => "hours",
        "m" | "min" => "minutes",
        "s" => "seconds",
        _ => return s.to_string(),
    };
    if num.is_empty() {
        return s.to_string();
    }
    format!("{num} {unit}")
}

/// Chooses the column type: the flag, checked against the column, or detected from it.
pub async fn column_type(
    client: &Client,
    source: &Source,
    column: &str,
    flag: Option<ColumnType>,
) -> Result<ColumnType, ArchiveError> {
    let col = source
        .column(column)
        .ok_or_else(|| ArchiveError::Refused(format!("table {} has no column {}", source.name, quote_ident(column))))?;
    let t = col.sql_type.as_str();
    if let Some(flag) = flag {
        if flag.fits(t) {
            return Ok(flag);
        }
        return Err(ArchiveError::Refused(format!(
            "--column-type {} does not fit column {}.{} of type {t}",
            flag.as_str(),
            source.name,
            quote_ident(column)
        )));
    }
    for candidate in [ColumnType::Timestamptz, ColumnType::Timestamp, ColumnType::Date] {
        if candidate.fits(t) {
            return Ok(candidate);
        }
    }
    if ColumnType::EpochMs.fits(t) {
        let sample = sample_value(client, source, column).await?;
        let guess = match sample.as_deref().and_then(|s| s.parse::<f64>().ok()) {
            Some(v) if v.abs() >= 1e11 => " (it looks like epoch-ms)",
            Some(_) => " (it looks like epoch-s)",
            None => "",
        };
        return Err(ArchiveError::Refused(format!(
            "column {}.{} is {t}, which could hold epoch seconds or milliseconds; sample value {}{guess}; \
             pass --column-type epoch-ms or --column-type epoch-s",
            source.name,
            quote_ident(column),
            sample.as_deref().unwrap_or("(none: the table is empty)")
        )));
    }
    Err(ArchiveError::Refused(format!(
        "column {}.{} is {t}, not a time; archive needs timestamptz, timestamp, date or an epoch number",
        source.name,
        quote_ident(column)
    )))
}

async fn sample_value(client: &Client, source: &Source, column: &str) -> Result<Option<String>, ArchiveError> {
    let sql = format!(
        "/* dbtool archive */ SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL LIMIT 1",
        c = quote_ident(column),
        t = source.name.quoted()
    );
    let row = client.query_opt(&sql, &[]).await.map_err(|source| ArchiveError::Db {
        what: "reading a sample value of the time column".into(),
        source,
    })?;
    match row {
        Some(r) => Ok(r.try_get::<_, Option<String>>(0).map_err(|source| ArchiveError::Db {
            what: "reading a sample value of the time column".into(),
            source,
        })?),
        None => Ok(None),
    }
}

/// Evaluates `now() - interval` once on the server and renders it for `column_type`.
pub async fn compute(
    client: &Client,
    older_than: &str,
    column_type: ColumnType,
    sql_type: &str,
) -> Result<Cutoff, ArchiveError> {
    let interval = interval_text(older_than);
    let bad = |why: String| {
        ArchiveError::Config(format!(
            "--older-than '{older_than}': {why}; write e.g. 2y, 90d, 12h or a PostgreSQL interval such as '18 months'"
        ))
    };
    let row = client
        .query_one(include_str!("../../../queries/archive_cutoff.sql"), &[&interval])
        .await
        .map_err(|e| {
            bad(e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string()))
        })?;
    if !row.col::<bool>("positive")? {
        return Err(bad("the interval must be positive".into()));
    }
    let at: String = row.col("at")?;
    let literal = match column_type {
        ColumnType::EpochMs => row.col::<i64>("epoch_ms")?.to_string(),
        ColumnType::EpochS => row.col::<i64>("epoch_s")?.to_string(),
        ColumnType::Timestamptz => format!("{}::{sql_type}", quote_literal(&at)),
        ColumnType::Timestamp => format!("{}::{sql_type}", quote_literal(&row.col::<String>("ts")?)),
        ColumnType::Date => format!("{}::date", quote_literal(&row.col::<String>("d")?)),
    };
    Ok(Cutoff {
        literal,
        at,
        column_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_becomes_a_postgres_interval() {
        assert_eq!(interval_text("2y"), "2 years");
        assert_eq!(interval_text("18mo"), "18 months");
        assert_eq!(interval_text("90d"), "90 days");
        assert_eq!(interval_text("30 days"), "30 days");
        assert_eq!(interval_text("1 year 2 months"), "1 year 2 months");
    }

    #[test]
    fn column_types_fit_their_sql_types() {
        assert!(ColumnType::EpochMs.fits("bigint"));
        assert!(!ColumnType::EpochMs.fits("text"));
        assert!(ColumnType::Timestamptz.fits("timestamp(3) with time zone"));
        assert!(!ColumnType::Timestamptz.fits("timestamp without time zone"));
        assert!(ColumnType::Date.fits("date"));
    }
}
