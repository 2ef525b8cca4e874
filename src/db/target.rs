//! A database server dbtool talks to: a label for reports and metrics, and how to reach it.

use super::ConnParams;

/// A database server: its label (`target="main"`) and resolved connection parameters.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub params: ConnParams,
}
