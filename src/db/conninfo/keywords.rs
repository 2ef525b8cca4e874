//! libpq's connection keywords: those dbtool reads, those it refuses by name, and a "did you
//! mean" for the rest that never quotes what was typed.

use super::{ConnInfoError, Origin};

const ORIGIN: Origin = Origin::Dsn;

const KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "connect_timeout",
    "application_name",
    "fallback_application_name",
    "options",
    "target_session_attrs",
    "passfile",
    "gssencmode",
    "service",
    "requiressl",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "channel_binding",
    "sslnegotiation",
    "sslcrl",
    "sslcrldir",
];
/// libpq keywords dbtool knows but does not implement: named as unsupported rather than unknown.
const UNSUPPORTED: &[&str] = &[
    "sslsni",
    "sslcompression",
    "sslcertmode",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requirepeer",
    "require_auth",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "client_encoding",
    "load_balance_hosts",
];

/// Other drivers' names for libpq keywords, for a "did you mean" that quotes nothing.
const ALIASES: &[(&str, &str)] = &[
    ("database", "dbname"),
    ("db", "dbname"),
    ("username", "user"),
    ("pass", "password"),
    ("pwd", "password"),
    ("ssl", "sslmode"),
    ("timeout", "connect_timeout"),
];

/// The keyword for `word`, or an error naming where it is and (maybe) what was meant.
pub(super) fn keyword(word: &str, at: usize) -> Result<&'static str, ConnInfoError> {
    if let Some(k) = KEYS.iter().find(|k| **k == word) {
        return Ok(k);
    }
    if let Some(key) = UNSUPPORTED.iter().find(|k| **k == word) {
        return Err(ConnInfoError::UnsupportedOption {
            key,
            at,
            origin: ORIGIN,
        });
    }
    let lower = word.to_ascii_lowercase();
    // Typos (edit distance up to 2, for words long enough to tell apart) of keywords and aliases.
    let candidates = KEYS.iter().map(|k| (*k, *k)).chain(ALIASES.iter().copied());
    let hint = candidates
        .map(|(name, key)| (edit_distance(&lower, name), key))
        .filter(|(d, _)| *d == 0 || (lower.len() >= 4 && *d <= 2))
        .min_by_key(|(d, _)| *d)
        .map_or_else(String::new, |(_, k)| format!(" (did you mean '{k}'?)"));
    Err(ConnInfoError::UnknownOption {
        at,
        hint,
        origin: ORIGIN,
    })
}

/// Levenshtein distance, for short ASCII keywords.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// libpq variables dbtool does not act on, with what each would have set. Read and ignored with
/// a warning: refusing them would break shells that export them for psql.
pub const IGNORED_ENV: &[(&str, &str)] = &[
    ("PGSSLCOMPRESSION", "sslcompression"),
    ("PGSSLCERTMODE", "sslcertmode"),
    ("PGSSLSNI", "sslsni"),
    ("PGREQUIREPEER", "requirepeer"),
    ("PGREQUIREAUTH", "require_auth"),
    ("PGSSLMINPROTOCOLVERSION", "ssl_min_protocol_version"),
    ("PGSSLMAXPROTOCOLVERSION", "ssl_max_protocol_version"),
    ("PGKRBSRVNAME", "krbsrvname"),
    ("PGGSSLIB", "gsslib"),
    ("PGGSSDELEGATION", "gssdelegation"),
    ("PGCLIENTENCODING", "client_encoding"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
    ("PGDATESTYLE", "the DateStyle setting"),
    ("PGTZ", "the TimeZone setting"),
    ("PGGEQO", "the geqo setting"),
];

/// The ignored variables set (non-empty) in `env`.
pub(super) fn ignored_env(env: &dyn super::Env) -> Vec<&'static str> {
    (IGNORED_ENV.iter())
        .filter(|(var, _)| env.var(var).is_some_and(|v| !v.is_empty()))
        .map(|(var, _)| *var)
        .collect()
}

/// Warns once per process about the ignored variables set, naming each and never its value.
pub(super) fn warn_ignored_env(env: &dyn super::Env) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let set = ignored_env(env);
    if set.is_empty() {
        return;
    }
    WARNED.call_once(|| {
        for var in set {
            let what = IGNORED_ENV.iter().find(|(v, _)| *v == var).map_or("", |(_, w)| w);
            tracing::warn!("{var} is set but dbtool does not support {what}; ignoring it");
        }
    });
}
