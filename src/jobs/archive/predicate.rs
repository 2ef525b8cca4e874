//! `--where`: proves the text is ONE condition before it is ANDed with the cutoff.
//!
//! The predicate is spliced into every batch as `cutoff AND (predicate)`. Text such as
//! `id > 90) OR (true` would close that parenthesis and select rows newer than the cutoff, so
//! this module lexes it the way PostgreSQL does for everything that decides where a token
//! ends: strings ('', E'', U&'', B''/X'', $tag$…$tag$), quoted identifiers, `--` and nested
//! `/* */` comments. Outside those, parentheses must never close more than they opened and
//! must all be closed at the end, and `;` is refused. Where PostgreSQL versions lex a spot
//! differently (a number glued to a letter or a quote), the text is refused rather than guessed.

use std::fmt;

/// Longest predicate accepted; a real condition is far shorter, and a cap keeps hostile input cheap.
pub const MAX_LEN: usize = 65_536;

/// Why a `--where` text was refused, with the 1-based character position it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PredicateError {
    /// 1-based character position (as PostgreSQL counts "at character N"); 0 for the whole text.
    pub at: usize,
    pub why: String,
}

impl fmt::Display for PredicateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.at > 0 {
            format!(" at character {}", self.at)
        } else {
            String::new()
        };
        write!(
            f,
            "--where is refused{place}: {}; it must be one condition on the source row (alias s), \
             e.g. --where \"channelid <> 'keep'\"",
            self.why
        )
    }
}

/// A `--where` text that passed [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate {
    text: String,
    /// It ends inside a `--` comment, which would swallow a `)` written after it on that line.
    open_line_comment: bool,
}

impl Predicate {
    /// `(text)`, safe to AND with other conditions.
    pub fn wrapped(&self) -> String {
        match self.open_line_comment {
            true => format!("({}\n)", self.text),
            false => format!("({})", self.text),
        }
    }
}

/// Whether backslashes escape quotes in plain '...' strings (`standard_conforming_strings = off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strings {
    Standard,
    BackslashEscapes,
}

struct Lexer<'a> {
    chars: Vec<(usize, char)>,
    text: &'a str,
    i: usize,
}

/// Checks `text` as described in the module comment.
pub fn check(text: &str, strings: Strings) -> Result<Predicate, PredicateError> {
    if text.len() > MAX_LEN {
        return Err(err(0, format!("it is {} bytes long, more than {MAX_LEN}", text.len())));
    }
    let mut lx = Lexer {
        chars: text.char_indices().collect(),
        text,
        i: 0,
    };
    if let Some((at, c)) = text
        .chars()
        .enumerate()
        .find(|&(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(err(at + 1, format!("control character U+{:04X}", u32::from(c))));
    }
    let (mut depth, mut tokens, mut open_line_comment) = (0usize, 0usize, false);
    while let Some(c) = lx.peek(0) {
        let at = lx.i + 1;
        open_line_comment = false;
        if c.is_ascii_whitespace() {
            lx.i += 1;
        } else if lx.starts_with("--") {
            while lx.peek(0).is_some_and(|c| c != '\n' && c != '\r') {
                lx.i += 1;
            }
            open_line_comment = lx.peek(0).is_none();
        } else if lx.starts_with("/*") {
            lx.block_comment()?;
        } else {
            tokens += 1;
            match c {
                ';' => {
                    return Err(err(
                        at,
                        "';' ends the statement; a condition has none outside quotes".into(),
                    ))
                }
                ')' if depth == 0 => return Err(err(at, "this ')' closes a parenthesis it did not open".into())),
                ')' => {
                    depth -= 1;
                    lx.i += 1;
                }
                '(' => {
                    depth += 1;
                    lx.i += 1;
                }
                '\'' => lx.quoted(at, '\'', strings == Strings::BackslashEscapes)?,
                '"' => lx.quoted(at, '"', false)?,
                '$' => lx.dollar()?,
                c if c.is_ascii_digit() => lx.number()?,
                c if is_ident_start(c) => lx.word(strings)?,
                _ => lx.i += 1,
            }
        }
    }
    if depth > 0 {
        return Err(err(
            lx.chars.len(),
            format!("{depth} parenthesis(es) opened and never closed"),
        ));
    }
    if tokens == 0 {
        return Err(err(0, "it is empty (or only comments)".into()));
    }
    Ok(Predicate {
        text: text.to_string(),
        open_line_comment,
    })
}

fn err(at: usize, why: String) -> PredicateError {
    PredicateError { at, why }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_cont(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).map(|&(_, c)| c)
    }

    fn starts_with(&self, s: &str) -> bool {
        self.chars
            .get(self.i)
            .is_some_and(|&(byte, _)| self.text[byte..].starts_with(s))
    }

    /// A `/* */` comment, nested as PostgreSQL nests them.
    fn block_comment(&mut self) -> Result<(), PredicateError> {
        let at = self.i + 1;
        let mut depth = 0usize;
        while self.i < self.chars.len() {
            if self.starts_with("/*") {
                depth += 1;
                self.i += 2;
            } else if self.starts_with("//") {
                // PostgreSQL reads a run of slashes as one piece, so `//*` opens nothing.
                while self.peek(0) == Some('/') {
                    self.i += 1;
                }
            } else if self.starts_with("*/") {
                depth -= 1;
                self.i += 2;
                if depth == 0 {
                    return Ok(());
                }
            } else {
                self.i += 1;
            }
        }
        Err(err(at, "this /* comment is never closed with */".into()))
    }

    /// A string or quoted identifier starting at the current quote; a doubled quote is one
    /// quote, and with `backslash` a backslash escapes the next character.
    fn quoted(&mut self, at: usize, quote: char, backslash: bool) -> Result<(), PredicateError> {
        self.i += 1;
        while let Some(c) = self.peek(0) {
            if backslash && c == '\\' {
                self.i += 2;
                continue;
            }
            if c == quote && self.peek(1) == Some(quote) {
                self.i += 2;
                continue;
            }
            self.i += 1;
            if c == quote {
                return Ok(());
            }
        }
        let what = if quote == '"' { "quoted identifier" } else { "string" };
        Err(err(at, format!("this {what} is never closed with {quote}")))
    }

    /// `$1` (a parameter, left to the server to refuse), or a `$tag$ … $tag$` string.
    fn dollar(&mut self) -> Result<(), PredicateError> {
        let at = self.i + 1;
        let mut end = self.i + 1;
        while self.chars.get(end).is_some_and(|&(_, c)| is_ident_cont(c) && c != '$') {
            end += 1;
        }
        let tag_ok = self.peek(1).is_none_or(|c| !c.is_ascii_digit());
        if !tag_ok || self.chars.get(end).map(|&(_, c)| c) != Some('$') {
            // Not a dollar quote: skip `$` and any digits of a parameter.
            self.i += 1;
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            return Ok(());
        }
        let (start, stop) = (self.chars[self.i].0, self.chars[end].0 + 1);
        let delimiter = &self.text[start..stop];
        self.i = end + 1;
        while self.i < self.chars.len() {
            if self.starts_with(delimiter) {
                self.i += delimiter.chars().count();
                return Ok(());
            }
            self.i += 1;
        }
        Err(err(
            at,
            format!("this {delimiter} string is never closed with {delimiter}"),
        ))
    }

    /// A numeric literal (decimal, 0x/0o/0b, exponent). One glued to a letter, `$` or a quote
    /// is lexed differently by different PostgreSQL versions, so it is refused.
    fn number(&mut self) -> Result<(), PredicateError> {
        let radix_digit: Option<fn(char) -> bool> = match (self.peek(0), self.peek(1).map(|c| c.to_ascii_lowercase())) {
            (Some('0'), Some('x')) => Some(|c: char| c.is_ascii_hexdigit() || c == '_'),
            (Some('0'), Some('o')) => Some(|c: char| matches!(c, '0'..='7' | '_')),
            (Some('0'), Some('b')) => Some(|c: char| matches!(c, '0' | '1' | '_')),
            _ => None,
        };
        let digits = |lx: &mut Self, ok: fn(char) -> bool| {
            while lx.peek(0).is_some_and(ok) {
                lx.i += 1;
            }
        };
        let decimal = |c: char| c.is_ascii_digit() || c == '_';
        if let Some(ok) = radix_digit.filter(|ok| self.peek(2).is_some_and(ok)) {
            self.i += 2;
            digits(self, ok);
        } else {
            digits(self, decimal);
            if self.peek(0) == Some('.') && self.peek(1) != Some('.') {
                self.i += 1;
                digits(self, decimal);
            }
            let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
            if matches!(self.peek(0), Some('e' | 'E')) && self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1 + sign;
                digits(self, decimal);
            }
        }
        match self.peek(0) {
            Some(c) if is_ident_cont(c) || c == '\'' || c == '"' => Err(err(
                self.i + 1,
                format!("a number directly followed by {c:?} (PostgreSQL versions read this differently); put a space between them"),
            )),
            _ => Ok(()),
        }
    }

    /// An identifier or keyword; `E'…'`, `B'…'`, `X'…'`, `N'…'`, `U&'…'` and `U&"…"` prefixes.
    fn word(&mut self, strings: Strings) -> Result<(), PredicateError> {
        let start = self.i;
        while self.peek(0).is_some_and(is_ident_cont) {
            self.i += 1;
        }
        let word: String = self.chars[start..self.i].iter().map(|&(_, c)| c).collect();
        let at = self.i + 1;
        match (word.to_ascii_lowercase().as_str(), self.peek(0), self.peek(1)) {
            ("e", Some('\''), _) => self.quoted(at, '\'', true),
            ("b" | "x", Some('\''), _) => self.quoted(at, '\'', false),
            ("u", Some('&'), Some(q @ ('\'' | '"'))) => {
                self.i += 1;
                self.quoted(at + 1, q, false)
            }
            (_, Some('\''), _) => self.quoted(at, '\'', strings == Strings::BackslashEscapes),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
