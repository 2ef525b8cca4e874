//! Rows as text, the way the simple query protocol returns them, read by column name.
//!
//! Checks run over the simple query protocol (one round trip, no prepare, pipelined on one
//! connection; PgBouncer's admin console speaks nothing else), so every value arrives as text
//! or NULL. Accessors parse on demand and say which column was wrong when they cannot.

use std::sync::Arc;

use tokio_postgres::SimpleQueryMessage;

/// A row from a query: column names shared by the whole result set, values as text or NULL.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Option<String>>,
}

/// A column that is missing or does not hold what the reader expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowError {
    #[error("query result has no column '{0}'")]
    MissingColumn(String),
    #[error("column '{column}' holds '{value}', which is not {expected}")]
    BadValue {
        column: String,
        value: String,
        expected: &'static str,
    },
    #[error("column '{0}' is NULL where a value is required")]
    Null(String),
}

impl Row {
    /// Builds a row from names and values; used for fixtures and by the decoders below.
    pub fn new(columns: Arc<[String]>, values: Vec<Option<String>>) -> Row {
        Row { columns, values }
    }

    /// A fixture row: `Row::from_pairs(&[("state", Some("active")), ("n", Some("3"))])`.
    pub fn from_pairs(pairs: &[(&str, Option<&str>)]) -> Row {
        let columns: Arc<[String]> = pairs.iter().map(|(c, _)| c.to_string()).collect();
        let values = pairs.iter().map(|(_, v)| v.map(str::to_string)).collect();
        Row { columns, values }
    }

    /// The column names, in the order the source gave them.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    fn raw(&self, column: &str) -> Result<Option<&str>, RowError> {
        let idx = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| RowError::MissingColumn(column.to_string()))?;
        Ok(self.values.get(idx).and_then(|v| v.as_deref()))
    }

    /// Text value, NULL as None.
    pub fn opt_str(&self, column: &str) -> Result<Option<&str>, RowError> {
        self.raw(column)
    }

    /// Text value that must not be NULL.
    pub fn str(&self, column: &str) -> Result<&str, RowError> {
        self.raw(column)?.ok_or_else(|| RowError::Null(column.to_string()))
    }

    pub fn opt_i64(&self, column: &str) -> Result<Option<i64>, RowError> {
        self.parse(column, "an integer", |s| s.parse::<i64>().ok())
    }

    pub fn i64(&self, column: &str) -> Result<i64, RowError> {
        self.opt_i64(column)?.ok_or_else(|| RowError::Null(column.to_string()))
    }

    /// Floating point value; PostgreSQL spells infinities and NaN its own way.
    pub fn opt_f64(&self, column: &str) -> Result<Option<f64>, RowError> {
        self.parse(column, "a number", |s| match s {
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            _ => s.parse::<f64>().ok(),
        })
    }

    pub fn f64(&self, column: &str) -> Result<f64, RowError> {
        self.opt_f64(column)?.ok_or_else(|| RowError::Null(column.to_string()))
    }

    pub fn opt_bool(&self, column: &str) -> Result<Option<bool>, RowError> {
        self.parse(column, "a boolean", |s| match s {
            "t" | "true" | "on" | "1" => Some(true),
            "f" | "false" | "off" | "0" => Some(false),
            _ => None,
        })
    }

    pub fn bool(&self, column: &str) -> Result<bool, RowError> {
        self.opt_bool(column)?.ok_or_else(|| RowError::Null(column.to_string()))
    }

    fn parse<T>(
        &self,
        column: &str,
        expected: &'static str,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, RowError> {
        match self.raw(column)? {
            None => Ok(None),
            Some(s) => f(s).map(Some).ok_or_else(|| RowError::BadValue {
                column: column.to_string(),
                value: s.chars().take(40).collect(),
                expected,
            }),
        }
    }
}

/// Collects the rows of one simple query's answer (the last statement's rows if there were several).
pub fn rows_from_messages(messages: Vec<SimpleQueryMessage>) -> Vec<Row> {
    let mut out = Vec::new();
    let mut columns: Option<Arc<[String]>> = None;
    for msg in messages {
        if let SimpleQueryMessage::Row(r) = msg {
            let cols = columns
                .get_or_insert_with(|| r.columns().iter().map(|c| c.name().to_string()).collect())
                .clone();
            let values = (0..r.len()).map(|i| r.get(i).map(str::to_string)).collect();
            out.push(Row::new(cols, values));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_by_name_and_reports_nulls_and_bad_values() {
        let row = Row::from_pairs(&[("n", Some("42")), ("x", None), ("f", Some("abc"))]);
        assert_eq!(row.i64("n"), Ok(42));
        assert_eq!(row.opt_i64("x"), Ok(None));
        assert_eq!(row.i64("x"), Err(RowError::Null("x".into())));
        assert!(matches!(row.f64("f"), Err(RowError::BadValue { .. })));
        assert_eq!(row.i64("nope"), Err(RowError::MissingColumn("nope".into())));
    }

    #[test]
    fn parses_postgres_spellings() {
        let row = Row::from_pairs(&[("b", Some("t")), ("inf", Some("Infinity"))]);
        assert_eq!(row.bool("b"), Ok(true));
        assert_eq!(row.f64("inf"), Ok(f64::INFINITY));
    }
}
