//! JSON whose strings are safe to `cat`: serde_json escapes C0 controls itself, but writes DEL,
//! C1 controls and bidi overrides raw (valid JSON, yet live on a terminal). This formatter
//! writes those as `\uXXXX` too, so a reader still decodes the original text.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// Pretty JSON of `value`, every terminal-active character escaped.
pub fn to_writer_pretty<W: Write + ?Sized, T: Serialize + ?Sized>(out: &mut W, value: &T) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, Escaping(PrettyFormatter::new()));
    value.serialize(&mut ser).map_err(io::Error::from)
}

/// Compact (one-line) JSON of `value`, escaped the same way.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> io::Result<String> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, Escaping(CompactFormatter));
    value.serialize(&mut ser).map_err(io::Error::from)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn needs_escape(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Another formatter's layout; only string fragments are written differently.
struct Escaping<F>(F);

impl<F: Formatter> Formatter for Escaping<F> {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| needs_escape(*c)) {
            w.write_all(&rest.as_bytes()[..at])?;
            write!(w, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_active_characters_are_escaped_and_decode_back() {
        let text = "a\u{1b}[2J\u{7f}\u{9b}\u{202e}é\"\\z";
        let pretty = {
            let mut buf = Vec::new();
            super::to_writer_pretty(&mut buf, &serde_json::json!({ "t": text })).expect("json");
            String::from_utf8(buf).expect("utf-8")
        };
        for json in [pretty, super::to_string(&[text]).expect("json")] {
            assert!(json.contains(r#"a\u001b[2J\u007f\u009b\u202eé\"\\z"#), "{json}");
            let back: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
            assert!(back.to_string().contains("é"), "{json}");
            assert_eq!(back.get("t").or(back.get(0)).and_then(|v| v.as_str()), Some(text));
        }
    }
}
