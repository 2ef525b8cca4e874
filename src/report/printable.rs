//! Text from the database made safe for a terminal or a log line. Query text, application
//! names and identifiers are anyone's to set; an ESC sequence in one must not clear the DBA's
//! screen, retitle the window or forge a line of output.
//!
//! C0 controls, DEL, C1 controls and the bidi overrides/isolates are written as escapes:
//! `\n`, `\r`, `\t`, `\x1b` (other C0 and DEL), `\u{9b}` (C1, bidi). Everything else, a
//! backslash included, is kept: the point is a harmless terminal, not a reversible encoding.
//! JSON and Prometheus text carry the original text under their own escaping rules.

use std::borrow::Cow;
use std::fmt::Write;

/// For one-line contexts (names, log fields, table cells): every control character escaped.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, &[])
}

/// For multi-line messages (an error chain): as [`printable`], but '\n' kept as a line break.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    escape(s, &['\n'])
}

/// The text log's writer: each event escaped but for its final newline. tracing escapes ESC and
/// C1 in fields itself, not CR, LF or the other C0 controls, which forge or hide log lines; with
/// colours on, a raw ESC in the event is tracing's own colour code and is kept.
pub struct LogWriter<W> {
    inner: W,
    keep: &'static [char],
}

impl<W: std::io::Write> LogWriter<W> {
    pub fn new(inner: W, ansi: bool) -> LogWriter<W> {
        let keep: &'static [char] = if ansi { &['\x1b'] } else { &[] };
        LogWriter { inner, keep }
    }
}

impl<W: std::io::Write> std::io::Write for LogWriter<W> {
    /// tracing hands over one whole event per call; all of it is always taken.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let line = format!("{}{end}", escape(body, self.keep));
        self.inner.write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn needs_escape(c: char, keep: &[char]) -> bool {
    match c {
        c if keep.contains(&c) => false,
        // C0, DEL and C1 are exactly what char::is_control matches.
        c if c.is_control() => true,
        // LRE, RLE, PDF, LRO, RLO and LRI, RLI, FSI, PDI: they reorder what follows on screen.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn escape<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !s.chars().any(|c| needs_escape(c, keep)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c, keep) {
            out.push(c);
            continue;
        }
        // Writing to a String cannot fail.
        let _ = match c {
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            c if u32::from(c) < 0x80 => write!(out, "\\x{:02x}", u32::from(c)),
            c => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain ünïcode \\ 'q'"), "plain ünïcode \\ 'q'");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(printable("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(printable("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(printable("x\x7fy\u{9b}z"), "x\\x7fy\\u{9b}z");
        assert_eq!(printable("l1\nl2\r\t"), "l1\\nl2\\r\\t");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(printable_lines("l1\nl2\x1b"), "l1\nl2\\x1b");
        let mut log = LogWriter::new(Vec::new(), false);
        std::io::Write::write_all(&mut log, b"job=a\x1b[2J\rforged\n").expect("write");
        assert_eq!(log.inner, b"job=a\\x1b[2J\\rforged\n");
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let out = printable(&c.to_string()).into_owned();
            assert!(out.chars().all(|o| !o.is_control()), "{c:?} -> {out:?}");
        }
    }
}
