//! SQL identifiers from the command line: parsed, validated, and only ever spliced quoted.
//!
//! `public.posts`, `"Weird Name".posts`, `posts` (schema `public`). Anything that is not one
//! or two identifiers separated by a dot is refused, so a name like `posts"; DROP TABLE x; --`
//! never reaches SQL; the catalog lookup then proves the table exists.

use std::fmt;

/// Longest identifier PostgreSQL keeps (NAMEDATALEN - 1); longer ones it would silently truncate.
const MAX_IDENT: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a valid table name: {why}; write schema.table, quoting odd names as \"My Table\"")]
pub struct NameError {
    pub input: String,
    pub why: &'static str,
}

/// A schema-qualified name, as stored in the catalog (case already folded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    /// Parses `schema.table` or `table` (→ `default_schema`), with PostgreSQL's quoting rules:
    /// unquoted parts are folded to lower case and must look like identifiers.
    pub fn parse(input: &str, default_schema: &str) -> Result<QualifiedName, NameError> {
        let err = |why| NameError {
            input: input.to_string(),
            why,
        };
        let mut parts = Vec::new();
        let mut rest = input.trim();
        loop {
            let (part, after) = parse_part(rest).map_err(err)?;
            parts.push(part);
            match after.strip_prefix('.') {
                Some(next) => rest = next,
                None if after.is_empty() => break,
                None => return Err(err("unexpected characters after a name")),
            }
        }
        match parts.as_slice() {
            [name] => Ok(QualifiedName {
                schema: default_schema.to_string(),
                name: name.clone(),
            }),
            [schema, name] => Ok(QualifiedName {
                schema: schema.clone(),
                name: name.clone(),
            }),
            _ => Err(err("more than two dotted parts (database names are not allowed)")),
        }
    }

    /// `"schema"."name"`, safe to splice.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quoted_if_needed())
    }
}

impl QualifiedName {
    /// `public.posts`, quoting only the parts that need it (for messages).
    fn quoted_if_needed(&self) -> String {
        let q = |s: &str| {
            let plain = s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && s.chars().next().is_some_and(|c| !c.is_ascii_digit());
            if plain {
                s.to_string()
            } else {
                quote_ident(s)
            }
        };
        format!("{}.{}", q(&self.schema), q(&self.name))
    }
}

/// One identifier at the start of `s`; returns it and the rest.
pub(super) fn parse_part(s: &str) -> Result<(String, &str), &'static str> {
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                out.push(c);
                continue;
            }
            if body[i + 1..].starts_with('"') {
                out.push('"');
                chars.next();
                continue;
            }
            return check(out, &body[i + 1..]);
        }
        return Err("unterminated quoted identifier");
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(s.len());
    let (word, rest) = s.split_at(end);
    if word.is_empty() {
        return Err("empty name or a character that needs quoting");
    }
    if word.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
        return Err("an unquoted name cannot start with a digit or '$'");
    }
    check(word.to_lowercase(), rest)
}

fn check(ident: String, rest: &str) -> Result<(String, &str), &'static str> {
    if ident.is_empty() {
        return Err("empty quoted identifier");
    }
    if ident.len() > MAX_IDENT {
        return Err("longer than 63 bytes, which PostgreSQL would truncate");
    }
    if ident.chars().any(char::is_control) {
        return Err("control characters in a name");
    }
    Ok((ident, rest))
}

/// Parses a plain column name (one identifier, quoting allowed).
pub fn parse_column(input: &str) -> Result<String, NameError> {
    let err = |why| NameError {
        input: input.to_string(),
        why,
    };
    match parse_part(input.trim()).map_err(err)? {
        (name, "") => Ok(name),
        _ => Err(err("a column name is one identifier")),
    }
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled; for values the server itself produced.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<(String, String), NameError> {
        QualifiedName::parse(s, "public").map(|q| (q.schema, q.name))
    }

    #[test]
    fn parses_plain_quoted_and_folded_names() {
        assert_eq!(parse("posts"), Ok(("public".into(), "posts".into())));
        assert_eq!(parse("Archive.Posts"), Ok(("archive".into(), "posts".into())));
        assert_eq!(
            parse("\"My Schema\".\"Posts\""),
            Ok(("My Schema".into(), "Posts".into()))
        );
        assert_eq!(parse("\"a\"\"b\".c"), Ok(("a\"b".into(), "c".into())));
        assert_eq!(
            QualifiedName::parse("\"a\"\"b\".c", "public").map(|q| q.quoted()),
            Ok("\"a\"\"b\".\"c\"".into())
        );
    }

    #[test]
    fn rejects_injection_shaped_and_odd_names() {
        for bad in [
            "posts\"; DROP TABLE x; --",
            "posts; DROP TABLE x",
            "public.posts.extra",
            "",
            "\"unterminated",
            "1posts",
            "posts--",
            "a b",
            "public.",
            "\"\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse(&"x".repeat(64)).is_err());
        assert!(parse_column("createat").is_ok());
        assert!(parse_column("a.b").is_err());
    }

    #[test]
    fn a_quoted_injection_stays_one_identifier() {
        let q = QualifiedName::parse("\"posts\"\"; DROP TABLE x; --\"", "public");
        assert_eq!(
            q.map(|q| q.quoted()),
            Ok("\"public\".\"posts\"\"; DROP TABLE x; --\"".into())
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
