use super::*;

#[test]
fn labels_are_quoted_when_needed_and_quotes_doubled() {
    assert_eq!(quote("connections_usage_ratio"), "connections_usage_ratio");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("it's=x"), "'it''s=x'");
    assert_eq!(quote("a|b\n"), "'a¦b\\n'");
}

#[test]
fn numbers_have_no_exponent() {
    assert_eq!(number(1.3e20), "130000000000000000000");
    assert_eq!(number(42.0), "42");
    assert_eq!(number(0.1234567891), "0.123457");
    assert_eq!(number(-0.0000001), "0");
}

#[test]
fn a_pipe_in_text_does_not_start_perfdata() {
    assert_eq!(clean("x | y\x1b"), "x ¦ y\\x1b");
}
