//! The `--where` lexer against hostile text: each refusal names the spot, and what PostgreSQL
//! reads as a string or comment never counts as a parenthesis.

use super::*;

fn ok(s: &str) -> bool {
    check(s, Strings::Standard).is_ok()
}

fn refused_at(s: &str) -> usize {
    match check(s, Strings::Standard) {
        Ok(p) => panic!("{s:?} was accepted as {}", p.wrapped()),
        Err(e) => e.at,
    }
}

#[test]
fn conditions_with_parentheses_inside_quotes_and_comments_pass() {
    for good in [
        "channelid <> 'keep'",
        "id > 0 /* ) */",
        "x = ')'",
        "x = '('' )'",
        "x = E'\\')'",
        "x = e'\\\\' AND y = '('",
        "\"odd)name\" = 1",
        "\"a\"\"b)\" = 1",
        "x = $$)$$",
        "x = $t$ ) $$ ( $t$",
        "x = $1",
        "a$$b = 1",
        "/* /* ) */ ( */ true",
        "/* //* */ true",
        "-- )\ntrue",
        "true -- (",
        "x IN (1, (2), 3) AND (y OR z)",
        "date'2024-01-01' < x AND b'1010' = y AND x'1f' = z AND n'(' = w",
        "U&'d\\0061t)' = x AND U&\"c)\" = 1",
        "0x1F > x AND 1.5e3 > y AND 1E-3 < z AND 0b101 = w AND 1_000 < v",
        "名前 = 'ü)' AND ümlaut > 0",
        "s.message ~ '\\)'",
    ] {
        assert!(
            ok(good),
            "{good:?} refused: {}",
            check(good, Strings::Standard).unwrap_err()
        );
    }
}

#[test]
fn text_that_escapes_the_parentheses_or_the_statement_is_refused() {
    assert_eq!(refused_at("id > 90) OR (true"), 8);
    assert_eq!(refused_at("true) OR (true"), 5);
    assert_eq!(refused_at("a); DELETE FROM posts; --"), 2);
    assert_eq!(refused_at("x = 1; DROP TABLE posts"), 6);
    assert_eq!(refused_at("x = 1 /* ) */ ) OR (true"), 15);
    assert_eq!(refused_at("x = ')' ) OR (true"), 9);
    assert_eq!(refused_at("x = $$ ) $$ ) OR (true"), 13);
    assert_eq!(
        refused_at("/* //* */ ) OR (true"),
        11,
        "PostgreSQL ends this comment at the first */"
    );
    for bad in [
        "(x",
        "((x)",
        "x)",
        ")(",
        "'abc",
        "E'\\'",
        "\"abc",
        "/* abc",
        "/* /* */",
        "$$abc",
        "$t$abc$u$",
        "x = U&'a",
        "",
        "   ",
        "-- only a comment",
        "/* c */",
        "\n\t",
        "1e'x'",
        "1'x'",
        "0x1f$$ ) $$",
        "1abc$$ ) OR (true $$",
        "x = 1;",
    ] {
        assert!(!ok(bad), "{bad:?} was accepted");
    }
}

#[test]
fn errors_name_the_spot_and_the_fix() {
    let e = check("id > 90) OR (true", Strings::Standard).unwrap_err().to_string();
    assert!(
        e.contains("at character 8") && e.contains("closes a parenthesis it did not open"),
        "{e}"
    );
    assert!(e.contains("one condition"), "{e}");
    let e = check("x = 'abc", Strings::Standard).unwrap_err().to_string();
    assert!(e.contains("at character 5") && e.contains("never closed"), "{e}");
    let e = check("", Strings::Standard).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn backslashes_escape_quotes_only_where_the_server_says_so() {
    let s = "x = '\\' AND y = ')'";
    assert!(check(s, Strings::Standard).is_ok());
    assert!(check(s, Strings::BackslashEscapes).is_err());
    let s = "x = '\\' ) OR (true) OR ( '";
    assert!(check(s, Strings::Standard).is_err());
    assert!(check(s, Strings::BackslashEscapes).is_ok());
}

#[test]
fn control_bytes_and_huge_input_are_refused_quickly() {
    assert_eq!(refused_at("x = 1\u{0}"), 6);
    assert_eq!(refused_at("x = '\u{1b}[2J'"), 6);
    assert_eq!(refused_at("é = 1\u{7f}"), 6, "positions count characters, not bytes");
    let huge = format!("x IN ({})", vec!["1"; 40_000].join(","));
    let e = check(&huge, Strings::Standard).unwrap_err();
    assert!(e.to_string().contains("more than 65536"), "{e}");
    let deep = format!("{}x{}", "(".repeat(30_000), ")".repeat(30_000));
    assert!(ok(&deep), "deep nesting is the server's to judge");
}

#[test]
fn a_line_comment_at_the_end_cannot_swallow_the_closing_parenthesis() {
    let p = check("x = 1 -- why", Strings::Standard).expect("valid");
    assert_eq!(p.wrapped(), "(x = 1 -- why\n)");
    let p = check("x = 1", Strings::Standard).expect("valid");
    assert_eq!(p.wrapped(), "(x = 1)");
}

/// Bytes that matter to the lexer, for the arbitrary-text round.
const PIECES: &[u8] = b"()'\";$-/*\\eE0x1 \nt$\x00\xc3\xa9";

/// xorshift, so a failure replays from the printed seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Balanced conditions built from pieces that hide parentheses, then broken on purpose.
#[test]
fn random_balanced_conditions_pass_and_every_escape_from_them_is_refused() {
    let pieces = [
        "x = ')'",
        "y <> '(('",
        "/* ) */ true",
        "z = $q$ ) $q$",
        "\"c)\" > 1",
        "E'\\')' = w",
        "-- )\n true",
        "a IN (1, 2)",
        "名 = 'é'",
        "$$(($$ = v",
        "f(g(1), 'h)')",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000 {
        let mut text = String::new();
        for i in 0..(1 + rng.below(6)) {
            if i > 0 {
                text.push_str([" AND ", " OR "][rng.below(2)]);
            }
            let piece = pieces[rng.below(pieces.len())];
            if rng.below(3) == 0 {
                text.push_str(&format!("({piece}\n)"));
            } else {
                text.push_str(piece);
            }
        }
        assert!(ok(&text), "{text:?}");
        for escape in [
            ") OR (true",
            "); DELETE FROM posts; --",
            "; SELECT 1",
            ")",
            "(",
            "'",
            "/*",
            "$$",
        ] {
            let broken = format!("{text}\n{escape}");
            assert!(!ok(&broken), "{broken:?}");
        }
    }
    // Arbitrary text never panics the lexer, whatever it decides.
    for _ in 0..5_000 {
        let bytes: Vec<u8> = (0..rng.below(40)).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        let _ = check(&String::from_utf8_lossy(&bytes), Strings::Standard);
        let _ = check(&String::from_utf8_lossy(&bytes), Strings::BackslashEscapes);
    }
}
