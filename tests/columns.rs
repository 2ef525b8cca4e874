//! Columns of extended-protocol rows are read with `db::Columns::col`: a NULL, a type change or
//! a renamed column is an error naming the column, where `Row::get` panicked.

mod common;

use dbtool::db::Columns;

#[tokio::test]
async fn a_null_a_wrong_type_and_a_missing_column_are_errors_naming_the_column() {
    let db = common::fresh_db("columns").await;
    let c = db.client().await;
    // pg_relation_size of a table dropped mid-run is NULL: archive's page walk read it with
    // Row::get::<i64>, which panicked the whole run.
    let row = c
        .query_one("SELECT NULL::bigint AS blocks, 'x'::text AS name", &[])
        .await
        .expect("query");
    let null = row.col::<i64>("blocks").map_err(|e| e.to_string());
    assert!(matches!(&null, Err(m) if m.starts_with("column blocks: ")), "{null:?}");
    let wrong = row.col::<i64>("name").map_err(|e| e.to_string());
    assert!(matches!(&wrong, Err(m) if m.starts_with("column name: ")), "{wrong:?}");
    let missing = row.col::<i64>("gone").map_err(|e| e.to_string());
    assert!(matches!(&missing, Err(m) if m.contains("gone")), "{missing:?}");
    assert_eq!(row.col::<Option<i64>>("blocks").ok(), Some(None));
}
