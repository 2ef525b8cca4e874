//! Finding the PostgreSQL server binaries and asking them what they are.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ClusterError;

/// DBTOOL_PG_BIN if set, else the highest /usr/lib/postgresql/<N>/bin (Debian's layout).
pub fn find_server_bin() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("DBTOOL_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(ClusterError::BadPgBinVar(dir))
        };
    }
    let entries = fs::read_dir("/usr/lib/postgresql").map_err(|_| ClusterError::NoServerBinaries)?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
        .ok_or(ClusterError::NoServerBinaries)
}

/// Debian keeps contrib modules in `<bin>/../lib`, relocatable builds in `<bin>/../lib/postgresql`.
pub(crate) fn has_pg_stat_statements(bin: &Path) -> bool {
    [
        "../lib/pg_stat_statements.so",
        "../lib/postgresql/pg_stat_statements.so",
    ]
    .iter()
    .any(|rel| bin.join(rel).is_file())
}

pub(crate) fn read_version_num(postgres: &Path) -> Result<u32, ClusterError> {
    // `postgres --version` is allowed as root; only starting a server is refused.
    let out = Command::new(postgres)
        .arg("--version")
        .output()
        .map_err(|source| ClusterError::Spawn {
            program: postgres.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_version_num(&text).ok_or(ClusterError::Version {
        program: postgres.to_path_buf(),
        output: text,
    })
}

/// "postgres (PostgreSQL) 15.18 (Debian …)" → 150018; "18beta1" → 180000; "9.6.24" → 90624.
fn parse_version_num(version_output: &str) -> Option<u32> {
    let version = version_output.split("(PostgreSQL)").nth(1)?.split_whitespace().next()?;
    let mut parts = version.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    if major >= 10 {
        return Some(major * 10_000 + minor);
    }
    let patch = parts.next().flatten().unwrap_or(0);
    Some(major * 10_000 + minor * 100 + patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_versions() {
        let cases = [
            ("postgres (PostgreSQL) 15.18", Some(150018)),
            ("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n", Some(150020)),
            ("postgres (PostgreSQL) 18beta1", Some(180000)),
            ("postgres (PostgreSQL) 9.6.24", Some(90624)),
            ("bash: postgres: not found", None),
        ];
        for (output, expected) in cases {
            assert_eq!(parse_version_num(output), expected, "{output}");
        }
    }
}
