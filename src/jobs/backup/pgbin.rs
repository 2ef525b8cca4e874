//! Which pg_dump / pg_restore / pg_dumpall to run: one whose major version is at least the
//! server's (an older pg_dump refuses a newer server), looked for in DBTOOL_PG_BIN,
//! `pg_config --bindir`, then /usr/lib/postgresql/N/bin from the newest N down.

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
}

/// "pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" → ("15.14", 15).
pub fn parse_version(output: &str) -> Option<(String, u32)> {
    let rest = output.split(')').nth(1)?.trim();
    let version: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let major = version.split('.').next()?.parse().ok()?;
    Some((version, major))
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

/// The first installation, in search order, whose pg_dump can dump a server of `server_major`.
pub async fn find(server_major: u32) -> Result<PgBin, PgBinError> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("DBTOOL_PG_BIN") {
        candidates.push(PathBuf::from(dir));
    }
    candidates.extend(pg_config_bindir().await);
    candidates.extend(debian_dirs());
    let mut looked = Vec::new();
    for dir in candidates {
        match probe(&dir).await {
            Some(bin) if bin.major >= server_major => return Ok(bin),
            Some(bin) => looked.push(format!("{} ({})", dir.display(), bin.version)),
            None => looked.push(format!("{} (no pg_dump)", dir.display())),
        }
    }
    looked.dedup();
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
    #[test]
    fn parses_pg_dump_versions() {
        assert_eq!(
            super::parse_version("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n"),
            Some(("15.14".into(), 15))
        );
        assert_eq!(
            super::parse_version("pg_dump (PostgreSQL) 17beta1"),
            Some(("17".into(), 17))
        );
        assert_eq!(super::parse_version("nonsense"), None);
    }
}
