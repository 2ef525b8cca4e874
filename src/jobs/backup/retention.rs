//! Grandfather-father-son retention as a pure function over (id, contents, time) points, so
//! it is tested over a synthetic history without a single file.
//!
//! Backups with different contents are separate series: a plain ad-hoc backup once pruned
//! that day's earlier `--globals --files` backup as "older of the day", and the roles and
//! application files were gone. So GFS counts within (database, globals, files), and the
//! newest backup carrying globals and the newest carrying files are always kept.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Utc};

use super::options::Retention;

/// One verified backup as retention sees it.
#[derive(Clone, Debug)]
pub struct Point {
    pub id: String,
    pub database: String,
    pub at: DateTime<Utc>,
    /// It carries globals.sql (roles, tablespaces).
    pub globals: bool,
    /// It carries the application files (files.tar.gz).
    pub files: bool,
}

impl Point {
    /// The retention series, as shown to users: "app", "app+globals", "app+globals+files".
    pub fn series(&self) -> String {
        series(&self.database, self.globals, self.files)
    }
}

/// A series' name from a backup's contents.
pub fn series(database: &str, globals: bool, files: bool) -> String {
    let mut s = database.to_string();
    if globals {
        s.push_str("+globals");
    }
    if files {
        s.push_str("+files");
    }
    s
}

/// What retention decided: ids to keep with why, and ids to delete (oldest first).
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub keep: BTreeMap<String, Vec<&'static str>>,
    pub delete: Vec<String>,
}

/// A calendar bucket of a time: its day, ISO week or month.
type BucketKey = fn(&DateTime<Utc>) -> (i32, u32);

/// Keeps, per series (database, globals, files): the newest backup always; the `keep_last`
/// newest; and the newest backup of each of the last `keep_daily` days, `keep_weekly` ISO
/// weeks and `keep_monthly` months that have a backup (as restic and the popular backup
/// containers count them). Over all: the newest backup with globals and the newest with files.
pub fn decide(points: &[Point], r: Retention) -> Decision {
    let mut by_series: BTreeMap<(&str, bool, bool), Vec<&Point>> = BTreeMap::new();
    for p in points {
        by_series.entry((&p.database, p.globals, p.files)).or_default().push(p);
    }
    let mut d = Decision::default();
    let mut keep = |id: &str, why: &'static str| d.keep.entry(id.to_string()).or_default().push(why);
    for (_, mut list) in by_series {
        list.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
        if let Some(newest) = list.first() {
            keep(&newest.id, "newest");
        }
        for p in list.iter().take(r.keep_last as usize) {
            keep(&p.id, "last");
        }
        let buckets: [(&'static str, u32, BucketKey); 3] = [
            ("daily", r.keep_daily, |t| (t.year(), t.ordinal())),
            ("weekly", r.keep_weekly, |t| (t.iso_week().year(), t.iso_week().week())),
            ("monthly", r.keep_monthly, |t| (t.year(), t.month())),
        ];
        for (why, n, key) in buckets {
            let mut seen = HashSet::new();
            for p in &list {
                if seen.len() >= n as usize {
                    break;
                }
                if seen.insert(key(&p.at)) {
                    keep(&p.id, why);
                }
            }
        }
    }
    // Globals are the whole cluster's roles, files the application's: whatever the series,
    // the newest copy of each stays (a series' newest already does; this says so, and holds
    // should a series ever be split finer).
    let newest_with = |with: fn(&Point) -> bool| {
        points
            .iter()
            .filter(|p| with(p))
            .max_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)))
    };
    if let Some(p) = newest_with(|p| p.globals) {
        keep(&p.id, "newest with globals");
    }
    if let Some(p) = newest_with(|p| p.files) {
        keep(&p.id, "newest with files");
    }
    let mut gone: Vec<&Point> = points.iter().filter(|p| !d.keep.contains_key(&p.id)).collect();
    gone.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    d.delete = gone.into_iter().map(|p| p.id.clone()).collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn history(db: &str, days: i64) -> Vec<Point> {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 3, 0, 0).single().unwrap_or_default();
        (0..days)
            .map(|i| {
                let at = start + Duration::days(i);
                Point {
                    id: format!("{db}_{}", at.format("%Y%m%d")),
                    database: db.into(),
                    at,
                    globals: false,
                    files: false,
                }
            })
            .collect()
    }

    #[test]
    fn defaults_over_200_daily_backups_keep_7_daily_4_weekly_6_monthly() {
        // 2026-01-01 .. 2026-07-19, one backup a day at 03:00.
        let points = history("app", 200);
        let d = decide(&points, Retention::default());
        let kept: Vec<&str> = d.keep.keys().map(String::as_str).collect();
        // 7 daily: Jul 13..19. Weekly (ISO weeks, newest of each): Jul 19 (Sun, week 29),
        // Jul 12, Jul 5, Jun 28. Monthly (newest of each month): Jul 19, Jun 30, May 31,
        // Apr 30, Mar 31, Feb 28.
        let want = [
            "app_20260228",
            "app_20260331",
            "app_20260430",
            "app_20260531",
            "app_20260628",
            "app_20260630",
            "app_20260705",
            "app_20260712",
            "app_20260713",
            "app_20260714",
            "app_20260715",
            "app_20260716",
            "app_20260717",
            "app_20260718",
            "app_20260719",
        ];
        assert_eq!(kept, want);
        assert_eq!(d.delete.len(), 200 - want.len());
        assert_eq!(d.delete.first().map(String::as_str), Some("app_20260101"));
        assert_eq!(d.keep.get("app_20260719").map(|w| w.contains(&"newest")), Some(true));
    }

    #[test]
    fn several_backups_a_day_keep_the_newest_of_the_day() {
        let mut points = history("app", 3);
        let extra = points[2].at + Duration::hours(5);
        points.push(Point {
            id: "app_late".into(),
            database: "app".into(),
            at: extra,
            globals: false,
            files: false,
        });
        let r = Retention {
            keep_last: 0,
            keep_daily: 2,
            keep_weekly: 0,
            keep_monthly: 0,
        };
        let d = decide(&points, r);
        let kept: Vec<&str> = d.keep.keys().map(String::as_str).collect();
        assert_eq!(kept, ["app_20260102", "app_late"]);
        assert_eq!(d.delete, ["app_20260101", "app_20260103"]);
    }

    #[test]
    fn the_newest_backup_survives_a_policy_of_zero() {
        let points = history("app", 10);
        let d = decide(
            &points,
            Retention {
                keep_last: 0,
                keep_daily: 0,
                keep_weekly: 0,
                keep_monthly: 0,
            },
        );
        assert_eq!(d.keep.keys().collect::<Vec<_>>(), ["app_20260110"]);
        assert_eq!(d.delete.len(), 9);
    }

    #[test]
    fn databases_are_retained_separately_and_keep_last_counts() {
        let mut points = history("a", 5);
        points.extend(history("b", 2));
        let d = decide(
            &points,
            Retention {
                keep_last: 3,
                keep_daily: 0,
                keep_weekly: 0,
                keep_monthly: 0,
            },
        );
        assert_eq!(d.keep.len(), 3 + 2);
        assert_eq!(d.delete, ["a_20260101", "a_20260102"]);
    }

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn point(id: &str, at: DateTime<Utc>, globals: bool, files: bool) -> Point {
        Point {
            id: id.into(),
            database: "app".into(),
            at,
            globals,
            files,
        }
    }

    const TIGHT: Retention = Retention {
        keep_last: 0,
        keep_daily: 1,
        keep_weekly: 0,
        keep_monthly: 0,
    };

    #[test]
    fn a_plain_backup_does_not_prune_that_days_backup_with_globals_and_files() {
        // The issue: --globals --files at 03:00, a plain ad-hoc backup at 10:00 the same day.
        let points = [
            point("rich", at(5, 3), true, true),
            point("plain", at(5, 10), false, false),
        ];
        let d = decide(&points, TIGHT);
        assert!(d.delete.is_empty(), "{d:?}");
        assert_eq!(
            d.keep.get("rich").cloned().unwrap_or_default(),
            ["newest", "daily", "newest with globals", "newest with files"]
        );
        assert_eq!(d.keep.get("plain").cloned().unwrap_or_default(), ["newest", "daily"]);
        assert_eq!(points[0].series(), "app+globals+files");
    }

    #[test]
    fn each_series_gets_its_own_grandfather_father_son() {
        let mut points = Vec::new();
        for day in 1..=5 {
            points.push(point(&format!("rich{day}"), at(day, 3), true, true));
            points.push(point(&format!("globals{day}"), at(day, 4), true, false));
            points.push(point(&format!("plain{day}"), at(day, 12), false, false));
        }
        let r = Retention { keep_daily: 2, ..TIGHT };
        let d = decide(&points, r);
        let kept: Vec<&str> = d.keep.keys().map(String::as_str).collect();
        assert_eq!(kept, ["globals4", "globals5", "plain4", "plain5", "rich4", "rich5"]);
        // Oldest first, across series.
        assert_eq!(d.delete.first().map(String::as_str), Some("rich1"));
        assert_eq!(d.delete.len(), 9);
        // The newest with globals is globals5 (04:00), later than rich5 (03:00).
        assert!(d
            .keep
            .get("globals5")
            .is_some_and(|w| w.contains(&"newest with globals")));
        assert!(d.keep.get("rich5").is_some_and(|w| w.contains(&"newest with files")));
    }
}
