//! Applying retention to a destination: delete what `retention::decide` lets go, and the
//! unfinished `.ID.partial` leftovers older than a day (a crash's debris). Directories dbtool
//! did not write (no manifest) are reported, never deleted.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::error::BackupError;
use super::manifest::{self, Manifest};
use super::options::Retention;
use super::retention::{self, Point};

/// Unfinished backups younger than this may still be being written.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default)]
pub struct PruneReport {
    pub deleted: Vec<Manifest>,
    pub kept: Vec<(Manifest, Vec<&'static str>)>,
    /// Unfinished backups removed (or, with dry_run, that would be).
    pub leftovers: Vec<PathBuf>,
    /// Entries that are neither backups nor ours to delete.
    pub foreign: Vec<(PathBuf, String)>,
}

/// The newest modification time under a partial directory (its dump grows inside it).
fn newest_mtime(path: &Path) -> SystemTime {
    let own = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let inner = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max();
    inner.map_or(own, |i| i.max(own))
}

impl Point {
    /// A verified backup as retention sees it: its contents pick its series.
    pub fn of(m: &Manifest) -> Point {
        Point {
            id: m.id.clone(),
            database: m.database.clone(),
            at: m.finished_at,
            globals: m.globals.is_some(),
            files: m.files_archive.is_some(),
        }
    }
}

/// Retention over `databases` (None: every database in `dest`).
pub fn prune(
    dest: &Path,
    r: Retention,
    databases: Option<&[String]>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<PruneReport, BackupError> {
    let (backups, leftovers) = manifest::scan(dest)?;
    let backups: Vec<Manifest> = backups
        .into_iter()
        .filter(|m| databases.is_none_or(|d| d.contains(&m.database)))
        .collect();
    let points: Vec<Point> = backups.iter().map(Point::of).collect();
    let decision = retention::decide(&points, r);
    let mut report = PruneReport::default();
    for m in backups {
        match decision.keep.get(&m.id) {
            Some(why) => report.kept.push((m, why.clone())),
            None => {
                if !dry_run {
                    delete(dest, &m.id)?;
                }
                report.deleted.push(m);
            }
        }
    }
    let cutoff = SystemTime::from(now) - LEFTOVER_AGE;
    for l in leftovers {
        let is_partial = l
            .path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".partial"));
        if !is_partial {
            report.foreign.push((l.path, l.why));
        } else if newest_mtime(&l.path) < cutoff {
            if !dry_run {
                std::fs::remove_dir_all(&l.path).map_err(BackupError::io("remove", &l.path))?;
            }
            report.leftovers.push(l.path);
        }
    }
    Ok(report)
}

/// Renames the backup back to a partial name first, so an interrupted delete leaves a
/// leftover rather than a half-deleted backup that still looks finished.
fn delete(dest: &Path, id: &str) -> Result<(), BackupError> {
    let from = dest.join(id);
    let doomed = dest.join(format!(".{id}.deleting.partial"));
    std::fs::rename(&from, &doomed).map_err(BackupError::io("remove", &from))?;
    std::fs::remove_dir_all(&doomed).map_err(BackupError::io("remove", &doomed))
}
