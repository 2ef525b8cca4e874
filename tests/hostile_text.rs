//! Item 7: text from the database (query text, application names, identifiers) is anyone's to
//! set. Against a real cluster: the human-readable output carries no control character, while
//! JSON still carries the original text (escaped by JSON itself).

mod common;

use std::time::{Duration, Instant};

use common::{fresh_db, run_dbtool, strings};

/// A clear-screen, a window-title OSC ending in BEL, a CSI colour, C1 CSI, DEL, a CR that
/// would overwrite the line, a right-to-left override, and quotes.
const EVIL: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{1b}[31m\u{9b}1m\u{7f}\r\u{202e}'\"q";

/// Every character a terminal would act on, other than the line breaks of the output itself.
fn controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn table_output_escapes_control_characters_and_json_keeps_them() {
    let db = fresh_db("hostile_text").await;
    let admin = db.client().await;
    let ident = format!("\"t{}\"", EVIL.replace('"', "\"\""));
    let seq = format!("\"s{}\"", EVIL.replace('"', "\"\""));
    admin
        .batch_execute(&format!(
            "CREATE TABLE {ident} (id int);
             CREATE SEQUENCE {seq} MAXVALUE 100 OWNED BY {ident}.id;
             SELECT setval('{}', 99);",
            seq.replace('\'', "''")
        ))
        .await
        .expect("create hostile names");
    // A session idle in a transaction whose last query and application name carry the sequences.
    let session = db.client().await;
    session
        .batch_execute(&format!(
            "SET application_name = 'app{}'; BEGIN; SELECT 1 /* {EVIL} */",
            EVIL.replace('\'', "''")
        ))
        .await
        .expect("idle in transaction");

    let args = |format: &str| {
        strings(&[
            "health",
            "--format",
            format,
            "--dsn",
            &db.dsn(),
            "--check",
            "sequences",
            "--check",
            "long_transactions",
            "--set",
            "long_transactions.idle_warning_seconds=1",
        ])
    };
    // The idle session shows up once idle for over a second: poll, do not guess a delay.
    let until = Instant::now() + Duration::from_secs(30);
    let json = loop {
        let (_, out, err) = run_dbtool(args("json")).await;
        if out.contains("idle in transaction for") || Instant::now() > until {
            assert!(out.contains("idle in transaction for"), "{out}{err}");
            break out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let texts = report.to_string();
    assert!(controls(&json).is_empty(), "JSON escapes them itself");
    let decoded: Vec<String> = report["targets"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .flat_map(|c| c["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| format!("{} {}", f["object"], f["message"].as_str().unwrap_or_default()))
        .collect();
    assert!(
        decoded.iter().any(|f| f.contains(&format!("/* {EVIL} */"))),
        "the query text, unchanged: {texts}"
    );
    assert!(
        decoded.iter().any(|f| f.contains(&format!("t{EVIL}"))),
        "the table name, unchanged: {texts}"
    );

    let (code, table, err) = run_dbtool(args("table")).await;
    assert_eq!(code, 2, "the sequence at 99% is CRITICAL: {table}{err}");
    assert!(controls(&table).is_empty(), "{:?} in:\n{table}", controls(&table));
    assert!(controls(&err).is_empty(), "{err:?}");
    assert!(table.contains("\\x1b[2J\\x1b]0;pwned\\x07"), "{table}");
    assert!(table.contains("\\u{9b}1m\\x7f\\r\\u{202e}'\"q"), "{table}");
    drop(session);
}
