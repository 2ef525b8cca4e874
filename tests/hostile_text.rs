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
    // A session idle in a transaction whose last query and application name carry the sequences;
    // REPEATABLE READ keeps its snapshot, so xmin_horizon quotes it too.
    let session = db.client().await;
    session
        .batch_execute(&format!(
            "SET application_name = 'app{}'; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1 /* {EVIL} */",
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
            "--check",
            "xmin_horizon",
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
    // The server turns application_name into printable ASCII itself; the query is the client's,
    // on one line (CR and LF become spaces), everything else kept for JSON.
    let one_line = EVIL.replace('\r', " ");
    assert!(
        decoded
            .iter()
            .any(|f| f.contains("xmin horizon") && f.contains(&format!("/* {one_line} */"))),
        "the horizon's holder and its query: {texts}"
    );

    let (code, table, err) = run_dbtool(args("table")).await;
    assert_eq!(code, 2, "the sequence at 99% is CRITICAL: {table}{err}");
    assert!(controls(&table).is_empty(), "{:?} in:\n{table}", controls(&table));
    assert!(controls(&err).is_empty(), "{err:?}");
    assert!(table.contains("\\x1b[2J\\x1b]0;pwned\\x07"), "{table}");
    assert!(table.contains("\\u{9b}1m\\x7f\\r\\u{202e}'\"q"), "{table}");
    drop(session);
}

/// The daemon's text log quotes server errors, which quote names: a CR/LF in one must not
/// forge a log line, an ESC must not reach the terminal of whoever tails the log.
#[test]
fn the_text_log_escapes_control_characters_in_what_it_quotes() {
    let db = common::fresh_db_blocking("hostile_log");
    let out = common::dbtool()
        .args(["migrate", "--dsn", &db.dsn()])
        .output()
        .expect("migrate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("d.toml");
    let dsn = db.dsn().replace('\\', "\\\\").replace('"', "\\\"");
    // The table does not exist: the server's error names it, control bytes and all (TOML escapes).
    let table = r#"table = "public.\"p\r\nFORGED line\u001b[2J\u0007\"""#;
    let jobs = "[[jobs]]\nname = \"a\"\nkind = \"archive\"\nschedule = \"* * * * * *\"\ncatch_up = false\n\
                column = \"create_at\"\ncolumn_type = \"epoch-ms\"\nolder_than = \"2y\"\n";
    let text = format!("[[targets]]\nname = \"main\"\ndsn = \"{dsn}\"\n\n{jobs}{table}\n");
    std::fs::write(&config, text).expect("config");
    let log_path = dir.path().join("d.log");
    let mut child = common::dbtool()
        .arg("--config")
        .arg(&config)
        .arg("schedule")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log"))
        .spawn()
        .expect("start dbtool schedule");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let until = Instant::now() + Duration::from_secs(30);
    while !log().contains("FORGED") {
        assert!(
            Instant::now() < until,
            "the job's error never reached the log: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = log();
    assert!(controls(&text).is_empty(), "{:?} in:\n{text}", controls(&text));
    assert!(!text.lines().any(|l| l.starts_with("FORGED")), "{text}");
    assert!(text.contains("\\r\\nFORGED line\\x1b[2J\\x07"), "{text}");
}
