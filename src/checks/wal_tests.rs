use super::*;
use crate::checks::testing::{eval, outcome};
use crate::db::row::Row;

fn wal(size: &str, generated: Option<&str>) -> Row {
    Row::from_pairs(&[
        ("wal_bytes", Some(size)),
        ("wal_files", Some("10")),
        ("ready_files", Some("2")),
        ("segment_bytes", Some("16777216")),
        ("max_wal_bytes", Some("1073741824")),
        ("max_slot_keep_bytes", Some("-1")),
        ("wal_records", generated),
        ("wal_fpi", generated),
        ("wal_generated_bytes", generated),
        ("wal_buffers_full", generated),
    ])
}

fn slot(name: &str, retained: Option<&str>, safe: Option<&str>) -> Row {
    Row::from_pairs(&[
        ("slot_name", Some(name)),
        ("slot_type", Some("physical")),
        ("database", Some("")),
        ("active", Some("f")),
        ("wal_status", Some("extended")),
        ("safe_wal_size", safe),
        ("retained_bytes", retained),
    ])
}

#[test]
fn a_big_pg_wal_warns_and_names_the_slot_retaining_most() {
    let out = eval(
        &Wal,
        vec![
            outcome(&WAL, vec![wal("3221225472", Some("5"))]),
            outcome(
                &SLOTS,
                vec![
                    slot("small", Some("1048576"), None),
                    slot("gone", Some("3000000000"), Some("0")),
                ],
            ),
        ],
    );
    let f = &out.findings[0];
    assert_eq!((f.severity, f.object.as_str()), (Severity::Warning, "pg_wal"));
    assert!(f.message.contains("slot gone retains 2861.0 MB"), "{}", f.message);
    assert_eq!(out.findings[1].object, "slot gone");
    assert!(out
        .samples
        .iter()
        .any(|s| s.family.name == GENERATED.name && s.value == 5.0));
    assert_eq!(
        out.samples.iter().filter(|s| s.family.name == SLOT_SAFE.name).count(),
        1
    );
}

#[test]
fn before_14_no_counters_and_no_slots_is_ok() {
    let out = eval(
        &Wal,
        vec![outcome(&WAL, vec![wal("16777216", None)]), outcome(&SLOTS, vec![])],
    );
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert!(!out.samples.iter().any(|s| s.family.name == GENERATED.name));
    assert!(
        out.summary
            .starts_with("pg_wal 16.0 MB (0.0× max_wal_size); 32.0 MB waiting"),
        "{}",
        out.summary
    );
}
