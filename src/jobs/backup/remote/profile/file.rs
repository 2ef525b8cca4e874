//! The AWS shared config/credentials file format, as the AWS SDKs read it: `[NAME]` sections,
//! `key = value` lines (keys case-insensitive), `#`/`;` comments (inside a value only after
//! whitespace), and indented lines continuing the previous value, which is how a
//! sub-section (`s3 =` then `  addressing_style = path`) is written. Hand-written rather than a
//! general INI crate because those do not know the continuation and sub-section rules.

use std::collections::HashMap;

/// A section's keys (lower-cased) and values; a sub-section's value is its raw lines.
pub type Section = HashMap<String, String>;

/// One file's profiles and (config file only) `[services NAME]` sections.
#[derive(Debug, Default)]
pub struct Parsed {
    pub profiles: HashMap<String, Section>,
    pub services: HashMap<String, Section>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `~/.aws/config`: `[default]`, `[profile NAME]`, `[services NAME]`.
    Config,
    /// `~/.aws/credentials`: `[NAME]`.
    Credentials,
}

/// Where a section's lines go.
enum Target {
    Profile(String),
    /// `[default]` in the config file, which `[profile default]` overrides.
    BareDefault,
    Services(String),
    /// A section dbtool does not read (`[sso-session …]`, a bare name in the config file).
    Skipped,
}

/// A malformed line: its number and what is wrong (never its text, which may hold a secret).
pub type LineError = (usize, &'static str);

pub fn parse(text: &str, kind: Kind) -> Result<Parsed, LineError> {
    let mut out = Parsed::default();
    // `[profile default]` wins over `[default]` in the config file, as in the SDKs.
    let mut bare_default: Option<Section> = None;
    let mut target: Option<Target> = None;
    let mut last_key: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with('[') {
            let name = strip_comment(raw, false);
            let name = name
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .ok_or((n, "a section line must be `[NAME]`"))?;
            let t = section(name.trim(), kind);
            // An empty section is still a profile that exists.
            match &t {
                Target::Profile(p) => {
                    out.profiles.entry(p.clone()).or_default();
                }
                Target::BareDefault => {
                    bare_default.get_or_insert_with(Section::new);
                }
                Target::Services(s) => {
                    out.services.entry(s.clone()).or_default();
                }
                Target::Skipped => {}
            }
            target = Some(t);
            last_key = None;
            continue;
        }
        let Some(t) = &target else {
            return Err((n, "a setting before the first `[profile NAME]` section"));
        };
        let section = match t {
            Target::BareDefault => bare_default.get_or_insert_with(Section::new),
            Target::Profile(p) => out.profiles.entry(p.clone()).or_default(),
            Target::Services(s) => out.services.entry(s.clone()).or_default(),
            Target::Skipped => {
                // Still checked, so a malformed file is refused wherever the mistake is.
                if !raw.starts_with([' ', '\t']) {
                    property(raw, n)?;
                }
                continue;
            }
        };
        if raw.starts_with([' ', '\t']) {
            let key = last_key
                .as_ref()
                .ok_or((n, "an indented line with no setting above it to continue"))?;
            let value = section.entry(key.clone()).or_default();
            value.push('\n');
            value.push_str(strip_comment(raw, true).trim());
            continue;
        }
        let (key, value) = property(raw, n)?;
        section.insert(key.clone(), value.to_string());
        last_key = Some(key);
    }
    if let Some(d) = bare_default.filter(|_| !out.profiles.contains_key("default")) {
        out.profiles.insert("default".into(), d);
    }
    Ok(out)
}

fn section(name: &str, kind: Kind) -> Target {
    let mut words = name.split_whitespace();
    match (kind, words.next(), words.next(), words.next()) {
        (Kind::Credentials, _, _, _) => Target::Profile(name.to_string()),
        (Kind::Config, Some("default"), None, _) => Target::BareDefault,
        (Kind::Config, Some("profile"), Some(p), None) => Target::Profile(p.to_string()),
        (Kind::Config, Some("services"), Some(s), None) => Target::Services(s.to_string()),
        _ => Target::Skipped,
    }
}

fn property(raw: &str, n: usize) -> Result<(String, &str), LineError> {
    let line = strip_comment(raw, true);
    let (key, value) = line
        .split_once('=')
        .ok_or((n, "a setting line must be `key = value`"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err((n, "a setting with no name before `=`"));
    }
    Ok((key.to_ascii_lowercase(), value.trim()))
}

/// The line without its comment; in a setting a comment starts only after whitespace, so
/// a secret containing `#` survives.
fn strip_comment(line: &str, needs_space: bool) -> &str {
    let line = line.trim();
    let mut prev_space = false;
    for (i, c) in line.char_indices() {
        if (c == '#' || c == ';') && (prev_space || !needs_space) {
            return line[..i].trim();
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// A sub-section's setting: `key` among the `k = v` lines of `value` (`s3 =` then indented lines).
pub fn sub<'a>(value: &'a str, key: &str) -> Option<&'a str> {
    value.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}
