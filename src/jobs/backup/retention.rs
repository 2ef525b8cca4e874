//! Grandfather-father-son retention as a pure function over (id, database, time) points, so
//! it is tested over a synthetic history without a single file.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Utc};

use super::options::Retention;

/// One verified backup as retention sees it.
#[derive(Clone, Debug)]
pub struct Point {
    pub id: String,
    pub database: String,
    pub at: DateTime<Utc>,
}

/// What retention decided: ids to keep with why, and ids to delete (oldest first).
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub keep: BTreeMap<String, Vec<&'static str>>,
    pub delete: Vec<String>,
}

/// A calendar bucket of a time: its day, ISO week or month.
type BucketKey = fn(&DateTime<Utc>) -> (i32, u32);

/// Keeps, per database: the newest backup always; the `keep_last` newest; and the newest
/// backup of each of the last `keep_daily` days, `keep_weekly` ISO weeks and `keep_monthly`
/// months that have a backup (as restic and the popular backup containers count them).
pub fn decide(points: &[Point], r: Retention) -> Decision {
    let mut by_db: BTreeMap<&str, Vec<&Point>> = BTreeMap::new();
    for p in points {
        by_db.entry(&p.database).or_default().push(p);
    }
    let mut d = Decision::default();
    for (_, mut list) in by_db {
        list.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
        let mut keep = |id: &str, why: &'static str| d.keep.entry(id.to_string()).or_default().push(why);
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
        for p in list.iter().rev() {
            if !d.keep.contains_key(&p.id) {
                d.delete.push(p.id.clone());
            }
        }
    }
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
}
