//! Reading a column of an extended-protocol row (`tokio_postgres::Row`) by name, as a typed
//! error naming the column: `Row::get` panics when a column's type or name changes under us
//! (a server upgrade, an edited query), and a panic is no way to tell a DBA what went wrong.

use tokio_postgres::types::FromSql;

/// A column that is missing or does not decode to the type dbtool reads it as.
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {}", crate::errors::render(.cause))]
pub struct ColumnError {
    pub column: &'static str,
    cause: tokio_postgres::Error,
}

/// `row.col::<T>("name")`: `try_get` with the column's name in the error.
pub trait Columns {
    fn col<'a, T: FromSql<'a>>(&'a self, column: &'static str) -> Result<T, ColumnError>;
}

impl Columns for tokio_postgres::Row {
    fn col<'a, T: FromSql<'a>>(&'a self, column: &'static str) -> Result<T, ColumnError> {
        self.try_get(column).map_err(|cause| ColumnError { column, cause })
    }
}
