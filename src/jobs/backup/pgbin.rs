//! Which pg_dump / pg_restore / pg_dumpall to run. `DBTOOL_PG_BIN` is the user's choice and is
//! used whenever it can dump the server. Otherwise the tools of the server's own major win
//! (a newer pg_restore writes settings an older server does not know), then the lowest newer
//! major (an older pg_dump refuses a newer server), looked for on PATH, in
//! `pg_config --bindir` and in /usr/lib/postgresql/N/bin.

use std::path::{Path, PathBuf};

/// The client tools of one PostgreSQL installation.
#[derive(Clone, Debug)]
pub struct PgBin {
    pub dir: PathBuf,
    /// e.g. "15.14"
    pub version: String,
    pub major: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("no pg_dump of version {needed} or newer found (the server is {needed}; looked in: {looked}); install postgresql-client-{needed} or point DBTOOL_PG_BIN at its bin directory")]
pub struct PgBinError {
    pub needed: u32,
    pub looked: String,
}

impl PgBin {
    pub fn pg_dump(&self) -> PathBuf {
        self.dir.join("pg_dump")
    }
    pub fn pg_restore(&self) -> PathBuf {
        self.dir.join("pg_restore")
    }
    pub fn pg_dumpall(&self) -> PathBuf {
        self.dir.join("pg_dumpall")
    }
    pub fn psql(&self) -> PathBuf {
        self.dir.join("psql")
    }
}

/// "pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" → ("15.14", 15).
pub fn parse_version(output: &str) -> Option<(String, u32)> {
    let rest = output.split(')').nth(1)?.trim();
    let version: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let major = version.split('.').next()?.parse().ok()?;
    Some((version, major))
}

/// "15.14" → 15.
pub fn major_of(version: &str) -> Option<u32> {
    version.split(['.', ' ']).next()?.parse().ok()
}

async fn probe(dir: &Path) -> Option<PgBin> {
    let pg_dump = dir.join("pg_dump");
    if !pg_dump.is_file() || !dir.join("pg_restore").is_file() {
        return None;
    }
    let out = tokio::process::Command::new(&pg_dump)
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    let (version, major) = parse_version(&String::from_utf8_lossy(&out.stdout))?;
    Some(PgBin {
        dir: dir.to_path_buf(),
        version,
        major,
    })
}

async fn pg_config_bindir() -> Option<PathBuf> {
    let out = tokio::process::Command::new("pg_config")
        .arg("--bindir")
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// PATH's directories holding a real pg_dump. Debian's /usr/bin/pg_dump is pg_wrapper, which
/// picks a version by its own rules; the directories it chooses from are searched anyway.
fn path_dirs() -> Vec<PathBuf> {
    let Some(path) = std::env::var_os("PATH") else {
        return Vec::new();
    };
    std::env::split_paths(&path)
        .filter(|dir| {
            std::fs::canonicalize(dir.join("pg_dump"))
                .is_ok_and(|real| real.file_name().is_some_and(|n| n == "pg_dump"))
        })
        .collect()
}

fn debian_dirs() -> Vec<PathBuf> {
    let mut majors: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    majors.sort_unstable_by(|a, b| b.cmp(a));
    majors
        .into_iter()
        .map(|m| PathBuf::from(format!("/usr/lib/postgresql/{m}/bin")))
        .collect()
}

/// Among installations found in search order: the first of the server's own major, else the
/// first of the lowest newer major; None when every one is older than the server.
pub fn choose(found: &[PgBin], server_major: u32) -> Option<&PgBin> {
    let newer = found.iter().filter(|b| b.major >= server_major);
    let lowest = newer.clone().map(|b| b.major).min()?;
    newer.into_iter().find(|b| b.major == lowest)
}

/// The installation to dump (or restore into) a server of `server_major` with; see the
/// module comment for the order.
pub async fn find(server_major: u32) -> Result<PgBin, PgBinError> {
    let mut looked = Vec::new();
    if let Some(dir) = std::env::var_os("DBTOOL_PG_BIN").map(PathBuf::from) {
        match probe(&dir).await {
            Some(bin) if bin.major >= server_major => return Ok(bin),
            Some(bin) => looked.push(format!("{} ({})", dir.display(), bin.version)),
            None => looked.push(format!("{} (no pg_dump)", dir.display())),
        }
    }
    let mut dirs = path_dirs();
    dirs.extend(pg_config_bindir().await);
    dirs.extend(debian_dirs());
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    for dir in dirs {
        // The same installation reached twice (PATH and pg_config) is probed once.
        if !seen.insert(std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone())) {
            continue;
        }
        match probe(&dir).await {
            Some(bin) => {
                looked.push(format!("{} ({})", dir.display(), bin.version));
                found.push(bin);
            }
            None => looked.push(format!("{} (no pg_dump)", dir.display())),
        }
    }
    if let Some(bin) = choose(&found, server_major) {
        return Ok(bin.clone());
    }
    Err(PgBinError {
        needed: server_major,
        looked: if looked.is_empty() {
            "nowhere".into()
        } else {
            looked.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(dir: &str, major: u32) -> PgBin {
        PgBin {
            dir: dir.into(),
            version: format!("{major}.1"),
            major,
        }
    }

    #[test]
    fn parses_pg_dump_versions() {
        assert_eq!(
            parse_version("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n"),
            Some(("15.14".into(), 15))
        );
        assert_eq!(parse_version("pg_dump (PostgreSQL) 17beta1"), Some(("17".into(), 17)));
        assert_eq!(parse_version("nonsense"), None);
        assert_eq!(major_of("15.14"), Some(15));
        assert_eq!(major_of("17beta1"), None);
    }

    /// The cross-version trap: with 18 first on PATH and 16 installed, a 16 server gets 16.
    #[test]
    fn prefers_the_servers_own_major_then_the_lowest_newer() {
        let found = [
            bin("/path/18", 18),
            bin("/deb/15", 15),
            bin("/deb/16", 16),
            bin("/x/17", 17),
        ];
        let dir = |major| choose(&found, major).map(|b| b.dir.clone());
        assert_eq!(dir(16), Some("/deb/16".into()));
        assert_eq!(dir(15), Some("/deb/15".into()));
        assert_eq!(dir(13), Some("/deb/15".into()));
        assert_eq!(dir(18), Some("/path/18".into()));
        assert_eq!(dir(19), None);
        let twice = [bin("/first/17", 17), bin("/second/17", 17)];
        assert_eq!(choose(&twice, 16).map(|b| b.dir.clone()), Some("/first/17".into()));
    }
}
