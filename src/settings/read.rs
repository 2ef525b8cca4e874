//! The file read section by section, so that one bad value does not hide the next: serde
//! stops at the first error of a type, so each top-level key is deserialized alone (with its
//! position), and a section that fails is read again key by key to find every bad key in it.
//! A section that fails is left at its default, so that the checks after it still run.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use toml::{Spanned, Value};

use super::fields::fields_of;
use super::file::FileConfig;

/// A problem at a byte offset of the file.
#[derive(Debug)]
pub struct Problem {
    pub offset: usize,
    pub message: String,
}

/// Reads the file; every problem found is returned beside the (partly defaulted) file.
pub fn read(text: &str) -> (FileConfig, Vec<Problem>) {
    let mut r = Reader {
        text,
        problems: Vec::new(),
    };
    // A syntax error leaves nothing to read further: TOML cannot resume after it.
    let top = match toml::from_str::<BTreeMap<String, IgnoredAny>>(text) {
        Ok(top) => top,
        Err(e) => {
            r.problems.push(Problem {
                offset: e.span().map_or(0, |s| s.start),
                message: format!("not valid TOML: {}", tidy(e.message())),
            });
            return (FileConfig::default(), r.problems);
        }
    };
    let known = fields_of::<FileConfig>();
    for key in top.keys() {
        if !known.contains(&key.as_str()) {
            r.problems.push(Problem {
                offset: offset_of_key(text, key),
                message: format!("{key}: unknown key; the file takes {}", known.join(", ")),
            });
        }
    }
    // A struct literal: a new field of FileConfig does not compile until it is read here.
    let file = FileConfig {
        statement_timeout: r.section("statement_timeout"),
        lock_timeout: r.section("lock_timeout"),
        targets: r.section("targets"),
        health: r.section("health"),
        backup: r.section("backup"),
        notify: r.section("notify"),
        pool_advise: r.section("pool_advise"),
        checks: r.section("checks"),
        custom_checks: r.section("custom_checks"),
        custom_queries_file: r.section("custom_queries_file"),
        archive: r.section("archive"),
        schedule: r.section("schedule"),
        probe: r.section("probe"),
        auth: r.section("auth"),
        jobs: r.section("jobs"),
    };
    if let Err(message) = file.notify.validate() {
        r.problems.push(Problem {
            offset: offset_of_key(text, "notify"),
            message: format!("[notify] {message}"),
        });
    }
    (file, r.problems)
}

struct Reader<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    /// The top-level key `key` as a `T`, or its default and the problems in it.
    fn section<T: DeserializeOwned + Default>(&mut self, key: &'static str) -> T {
        match only::<T>(self.text, key) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                let before = self.problems.len();
                self.each_key::<T>(key);
                if self.problems.len() == before {
                    self.problems.push(Problem {
                        offset: e.span().map_or(0, |s| s.start),
                        message: format!("{key}: {}", tidy(e.message())),
                    });
                }
                T::default()
            }
        }
    }

    /// Each key of a table section (or of each table of an array of tables) alone, so that
    /// every bad key is reported with its own position. "missing field" is left to the whole
    /// read: one key alone always misses the others.
    fn each_key<T: DeserializeOwned>(&mut self, key: &'static str) {
        type Table = BTreeMap<String, Spanned<Value>>;
        let (tables, array): (Vec<Table>, bool) = match only::<Table>(self.text, key) {
            Ok(Some(t)) => (vec![t], false),
            _ => match only::<Vec<Table>>(self.text, key) {
                Ok(Some(ts)) => (ts, true),
                _ => return,
            },
        };
        for table in tables {
            for (k, v) in &table {
                let one = Value::Table(toml::Table::from_iter([(k.clone(), v.get_ref().clone())]));
                let one = if array { Value::Array(vec![one]) } else { one };
                if let Err(e) = one.try_into::<T>() {
                    if !e.message().starts_with("missing field") {
                        self.problems.push(Problem {
                            offset: v.span().start,
                            message: format!("[{key}] {k}: {}", tidy(e.message())),
                        });
                    }
                }
            }
        }
    }
}

/// For each table of the array of tables `section`, where its `key` is written (the table's
/// own position when the key is absent).
pub fn key_offsets(text: &str, section: &str, key: &str) -> Vec<usize> {
    let tables: Vec<Spanned<BTreeMap<String, Spanned<IgnoredAny>>>> =
        only(text, section).ok().flatten().unwrap_or_default();
    tables
        .iter()
        .map(|t| t.get_ref().get(key).map_or(t.span().start, |v| v.span().start))
        .collect()
}

/// Where `key` of the table `section` is written, when it is.
pub fn table_key_offset(text: &str, section: &str, key: &str) -> Option<usize> {
    let table: BTreeMap<String, Spanned<IgnoredAny>> = only(text, section).ok().flatten()?;
    table.get(key).map(|v| v.span().start)
}

/// Where a top-level key is written: its value's span when toml has one (an implicit table,
/// `[a.b]` without `[a]`, has none), else the first line that starts with it.
pub(crate) fn offset_of_key(text: &str, key: &str) -> usize {
    if let Ok(Some(v)) = only::<Spanned<IgnoredAny>>(text, key) {
        // The key itself when it starts its line (`key = …`, `[key]`), else the value.
        let at = v.span().start;
        let line_start = text.get(..at).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
        let line = text.get(line_start..).unwrap_or("");
        let bare = line.trim_start_matches(|c: char| c == '[' || c.is_whitespace());
        return if bare.starts_with(key) {
            line_start + (line.len() - bare.len())
        } else {
            at
        };
    }
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_start().trim_start_matches('[').trim_start();
        if bare.starts_with(key) {
            return offset + (line.len() - bare.len());
        }
        offset += line.len();
    }
    0
}

/// serde's wording, made to read as the rest of dbtool's messages: Rust's type names become
/// what would be accepted.
pub fn tidy(message: &str) -> String {
    let mut m = message.trim().replace('`', "'").replace('\n', "; ");
    // serde quotes the string it could not use; it may be a DSN with a password in it.
    if let Some(start) = m.find("invalid type: string \"") {
        let from = start + "invalid type: string".len();
        if let Some(end) = m[from..].find("\", expected") {
            m.replace_range(from..from + end + 1, "");
        }
    }
    for (rust, plain) in [
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected u32", "expected a whole number, 0 or more"),
        ("expected u16", "expected a whole number, 0 or more"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        m = m.replace(rust, plain);
    }
    m
}

/// The value of one top-level key as a `T` (None when absent), read from the whole text so
/// that an error carries its position; every other key is skipped.
fn only<T: DeserializeOwned>(text: &str, key: &str) -> Result<Option<T>, toml::de::Error> {
    de::Deserializer::deserialize_map(toml::Deserializer::new(text), Only::<T>(key, PhantomData))
}

struct Only<'k, T>(&'k str, PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for Only<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(k) = map.next_key::<String>()? {
            if k == self.0 {
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_bad_section_and_key_is_found_with_its_position() {
        let text = "bogus = 1\n[health]\ntop = \"x\"\nmax_connections = \"y\"\n[backup]\nnope = 1\n";
        let (_, problems) = super::read(text);
        let found: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| (crate::settings::position(text, p.offset).0, p.message.as_str()))
            .collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().any(|(l, m)| *l == 1 && m.contains("bogus")), "{found:?}");
        assert!(found.iter().any(|(l, m)| *l == 3 && m.contains("top")), "{found:?}");
        assert!(
            found.iter().any(|(l, m)| *l == 4 && m.contains("max_connections")),
            "{found:?}"
        );
        assert!(found.iter().any(|(l, m)| *l == 6 && m.contains("nope")), "{found:?}");
    }
}
