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

    pub fn parse(s: &str) -> Option<SslMode> {
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
    /// The service file section named by service= or PGSERVICE.
    Service,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Dsn => f.write_str("--dsn"),
            Origin::Env(var) => f.write_str(var),
            Origin::Service => f.write_str("the service file"),
        }
    }
}

/// Where a bad value sits. A DSN's text is never quoted, not even in part: a password typed
/// into the wrong place (or a DSN split at the wrong '/') can be any part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// 1-based character position in the DSN.
    Dsn { at: usize },
    /// An environment variable (PGPORT, ...) holds a single setting, never the password.
    Env { var: &'static str, value: String },
    /// A line of a service file (the value is not shown: it may sit next to a password).
    Service { path: String, line: usize },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Dsn { at } => write!(f, "at character {at} of --dsn"),
            Place::Service { path, line } => write!(f, "at line {line} of service file {path}"),
            Place::Env { var, value } => {
                let short: String = value.chars().take(64).collect();
                write!(f, "'{}' in {var}", short.escape_debug())
            }
        }
    }
}

/// " (entry 2 of the list)" for a value in a comma-separated list, else nothing.
fn entry_text(entry: &Option<usize>) -> String {
    entry.map_or_else(String::new, |n| format!(" (entry {n} of the list)"))
}

/// Every message names the position or key and the fix; none quotes the DSN or any part of it.
#[derive(Debug, thiserror::Error)]
pub enum ConnInfoError {
    #[error("unrecognised connection string at character {at} of {origin}: {fix}")]
    UnknownScheme {
        at: usize,
        fix: &'static str,
        origin: Origin,
    },
    #[error("unknown connection option at character {at} of {origin}{hint}; see libpq's list of parameter keywords")]
    UnknownOption { at: usize, hint: String, origin: Origin },
    #[error("connection option '{key}' at character {at} of {origin} is not supported by dbtool; remove it")]
    UnsupportedOption {
        key: &'static str,
        at: usize,
        origin: Origin,
    },
    #[error("missing '=' after the word at character {at} of {origin}; write key=value pairs and quote values with spaces: key='a b'")]
    MissingEquals { at: usize, origin: Origin },
    #[error("unterminated quoted value for '{key}' at character {at} of {origin}; close it with a single quote (write \\' for a quote inside)")]
    UnterminatedQuote {
        key: &'static str,
        at: usize,
        origin: Origin,
    },
    #[error("malformed URL at character {at} of {origin}: {problem}")]
    MalformedUrl {
        problem: &'static str,
        at: usize,
        origin: Origin,
    },
    #[error(
        "invalid percent-encoding in the {part} of the URL at character {at} of {origin}; write a literal '%' as %25"
    )]
    PercentEncoding {
        part: &'static str,
        at: usize,
        origin: Origin,
    },
    #[error(
        "unencoded '@' after the host of the URL at character {at} of {origin}; a password containing '/' \
         must be percent-encoded ('/' as %2F, '@' as %40), and so must an '@' in a database name"
    )]
    StrayAt { at: usize, origin: Origin },
    #[error("invalid {key}{} {place}; expected {expected}", entry_text(.entry))]
    InvalidValue {
        key: &'static str,
        entry: Option<usize>,
        place: Place,
        expected: &'static str,
    },
    #[error("{origin} gives {given} {what} for {hosts} hosts; give one for all hosts or one per host")]
    ListLength {
        what: &'static str,
        given: usize,
        hosts: usize,
        origin: Origin,
    },
    #[error("definition of service '{name}' not found; searched {searched}: add a [{name}] section, or point PGSERVICEFILE at the file that has one")]
    ServiceNotFound { name: String, searched: String },
    #[error("service file {path}, line {line}: {problem}")]
    ServiceFile { path: String, line: usize, problem: String },
    #[error("could not read service file {path}: {cause}; check its permissions, or point PGSERVICEFILE elsewhere")]
    ServiceUnreadable { path: String, cause: std::io::Error },
    #[error("weak sslmode={sslmode} may not be used with sslnegotiation=direct (direct TLS has no plaintext fallback); use sslmode=require, verify-ca or verify-full, or sslnegotiation=postgres")]
    WeakSslModeForDirect { sslmode: SslMode },
    #[error("could not determine the current OS user name; set PGUSER or user= in --dsn")]
    NoUser,
}
