//! The vocabulary of connection parameters: environment access, SSL modes, origins, errors.

use std::collections::HashMap;
use std::fmt;

/// Where environment variables come from; tests substitute a map for the process environment.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

/// A fixed environment, for tests.
pub struct MapEnv(pub HashMap<String, String>);

impl Env for MapEnv {
    fn var(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub(super) fn parse(s: &str) -> Option<SslMode> {
        [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// libpq's target_session_attrs, limited to the values dbtool can check cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    Any,
    ReadWrite,
    Primary,
    Standby,
}

impl TargetSessionAttrs {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
        }
    }
}

/// Which source a value came from, so an error can point at the place to fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Dsn,
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Dsn => f.write_str("--dsn"),
            Origin::Env(var) => f.write_str(var),
        }
    }
}

/// Every message names the key and the fix; none quotes the raw DSN or anything that may be the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnInfoError {
    #[error("unknown connection option {key} in {origin}; see libpq's list of parameter keywords")]
    UnknownOption { key: String, origin: Origin },
    #[error("connection option '{key}' in {origin} is not supported by dbtool; remove it")]
    UnsupportedOption { key: String, origin: Origin },
    #[error("missing '=' after {key} in {origin}; write key=value pairs and quote values with spaces: key='a b'")]
    MissingEquals { key: String, origin: Origin },
    #[error("unterminated quoted value for '{key}' in {origin}; close it with a single quote (write \\' for a quote inside)")]
    UnterminatedQuote { key: String, origin: Origin },
    #[error("malformed URL in {origin}: {problem}")]
    MalformedUrl { problem: &'static str, origin: Origin },
    #[error("invalid percent-encoding in the {part} of the URL in {origin}; write a literal '%' as %25")]
    PercentEncoding { part: &'static str, origin: Origin },
    #[error("invalid {key} {value} in {origin}; expected {expected}")]
    InvalidValue {
        key: &'static str,
        value: String,
        origin: Origin,
        expected: &'static str,
    },
    #[error("{origin} gives {given} {what} for {hosts} hosts; give one for all hosts or one per host")]
    ListLength {
        what: &'static str,
        given: usize,
        hosts: usize,
        origin: Origin,
    },
    #[error("could not determine the current OS user name; set PGUSER or user= in --dsn")]
    NoUser,
}
