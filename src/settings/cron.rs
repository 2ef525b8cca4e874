//! Cron expressions and next run times in the configured timezone (`dbtool schedule --list`).

use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{DateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use cron::TimeUnitSpec;

/// A parsed cron expression together with what the user wrote.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    pub source: String,
    schedule: cron::Schedule,
}

impl CronSchedule {
    /// Accepts crontab's 5 fields, 6 (with seconds first) or 7 (with a year), and the
    /// @yearly/@monthly/@weekly/@daily/@hourly shortcuts.
    ///
    /// Day-of-week numbers follow crontab (0 or 7 = Sunday, 1 = Monday), not the cron crate's
    /// Quartz convention (1 = Sunday): numbers are rewritten to names, so "0 3 * * 1" runs on
    /// Mondays as every crontab user expects.
    pub fn parse(expr: &str) -> Result<CronSchedule, String> {
        let trimmed = expr.trim();
        let normalised = if trimmed.starts_with('@') {
            trimmed.to_string()
        } else {
            let mut fields: Vec<String> = trimmed.split_whitespace().map(str::to_string).collect();
            match fields.len() {
                5 => fields.insert(0, "0".into()),
                6 | 7 => {}
                n => {
                    return Err(format!(
                    "'{expr}' has {n} fields; write 5 (min hour day month weekday), 6 (with seconds first) or @daily"
                ))
                }
            }
            fields[5] = weekday_names(&fields[5])?;
            fields.join(" ")
        };
        let schedule = cron::Schedule::from_str(&normalised).map_err(|e| {
            // The crate's message repeats the expression with a caret; its last line says why.
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid")
                .trim()
                .to_string();
            format!("'{expr}' is not a cron expression: {why}")
        })?;
        Ok(CronSchedule {
            source: trimmed.to_string(),
            schedule,
        })
    }

    /// The first run time strictly after `after`, daylight-saving transitions handled as
    /// crontab users expect (Vixie cron's rule): a time in a skipped local hour runs once, at the
    /// jump; a time in a repeated hour runs once, at its first occurrence, unless the hour field
    /// is `*` (then every real hour runs). The cron crate alone skips the first and, for `*`
    /// hours, drops the second pass.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let every_hour = self.schedule.hours().is_all();
        let local = after.with_timezone(&tz).naive_local();
        // Within a few hours of a transition an earlier wall time may still have a later
        // instant (its second occurrence): start the walk before it.
        let near_transition = [-3, 3].iter().any(|h| {
            tz.offset_from_utc_datetime(&(after + chrono::Duration::hours(*h)).naive_utc())
                .fix()
                != tz.offset_from_utc_datetime(&after.naive_utc()).fix()
        });
        let from = if near_transition {
            local - chrono::Duration::hours(3)
        } else {
            local
        };
        let mut best: Option<DateTime<Utc>> = None;
        // Wall times as the cron crate sees them in a zone where every wall time exists once.
        let walls = self
            .schedule
            .after(&Utc.from_utc_datetime(&(from - chrono::Duration::seconds(1))));
        for wall in walls.take(1_000_000).map(|w| w.naive_utc()) {
            let (first, second) = match tz.from_local_datetime(&wall) {
                LocalResult::Single(t) => (t.with_timezone(&Utc), None),
                LocalResult::Ambiguous(a, b) => (a.with_timezone(&Utc), every_hour.then(|| b.with_timezone(&Utc))),
                LocalResult::None => (jump_after(wall, tz)?, None),
            };
            for t in [Some(first), second].into_iter().flatten().filter(|t| *t > after) {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
            // First occurrences grow with the wall time, and a second one lies after its first:
            // nothing later can be earlier than this.
            if first > after {
                return best;
            }
        }
        best
    }

    /// The latest run time at or before `at`, looking back at most `horizon` runs' worth of
    /// schedule (found by walking forward from a day/year back; bounded so it cannot spin).
    pub fn latest_at_or_before(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        for back in [
            chrono::Duration::hours(1),
            chrono::Duration::days(2),
            chrono::Duration::days(400),
        ] {
            let mut latest = None;
            let mut t = at - back;
            for _ in 0..100_000 {
                match self.next_after(t, tz) {
                    Some(next) if next <= at => {
                        latest = Some(next);
                        t = next;
                    }
                    _ => break,
                }
            }
            if latest.is_some() {
                return latest;
            }
        }
        None
    }

    /// The next `n` run times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Tz>> {
        let mut times = Vec::with_capacity(n);
        let mut t = after;
        while times.len() < n {
            let Some(next) = self.next_after(t, tz) else { break };
            times.push(next.with_timezone(&tz));
            t = next;
        }
        times
    }
}

/// The instant a skipped wall time's gap ends: the first existing wall minute after it.
fn jump_after(wall: chrono::NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let minute = wall.with_second(0)?;
    // Gaps are an hour or two; a zone that skipped a whole day (Samoa, 2011) is covered too.
    (1..=2 * 24 * 60).find_map(|m| {
        tz.from_local_datetime(&(minute + chrono::Duration::minutes(m)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// Rewrites crontab weekday numbers (0-7, 0 and 7 = Sunday) as names; steps (`*/2`) stay.
fn weekday_names(field: &str) -> Result<String, String> {
    const NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let mut out = String::with_capacity(field.len() + 8);
    let mut digits = String::new();
    let mut after_slash = false;
    let flush = |digits: &mut String, out: &mut String, after_slash: bool| -> Result<(), String> {
        if digits.is_empty() {
            return Ok(());
        }
        if after_slash {
            out.push_str(digits);
        } else {
            let n: usize = digits.parse().map_err(|_| format!("bad weekday '{digits}'"))?;
            let name = NAMES
                .get(n)
                .ok_or_else(|| format!("weekday {n} is out of range; use 0-7 (0 and 7 are Sunday) or MON-SUN"))?;
            out.push_str(name);
        }
        digits.clear();
        Ok(())
    };
    for c in field.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out, after_slash)?;
        after_slash = c == '/';
        out.push(c);
    }
    flush(&mut digits, &mut out, after_slash)?;
    // "5-7" became "FRI-SUN", a range the cron crate cannot wrap; crontab's 7 is Sunday at the end.
    Ok(out.replace("-SUN", "-SAT,SUN").replace("SUN-SAT,SUN", "SUN-SAT"))
}

/// Parses a timezone name such as "UTC" or "Europe/Berlin".
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    Tz::from_str(name.trim())
        .map_err(|_| format!("unknown timezone '{name}'; use an IANA name such as UTC or Europe/Berlin"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn five_fields_get_seconds_and_crontab_weekdays() {
        let s = CronSchedule::parse("0 3 * * 1").ok();
        // 2026-11-21 is a Saturday: the next Monday is the 23rd.
        let next = s.and_then(|s| s.next_after(at("2026-11-21T05:00:00Z"), chrono_tz::UTC));
        assert_eq!(next, Some(at("2026-11-23T03:00:00Z")));
        let s = CronSchedule::parse("0 0 * * 5-7").ok();
        let next = s.and_then(|s| s.next_after(at("2026-11-21T05:00:00Z"), chrono_tz::UTC));
        assert_eq!(next, Some(at("2026-11-22T00:00:00Z")));
        assert!(CronSchedule::parse("0 0 * * 8").is_err());
        assert!(CronSchedule::parse("* * *").is_err());
        assert!(CronSchedule::parse("61 * * * *").is_err());
    }

    #[test]
    fn shortcuts_seconds_and_timezones() {
        let daily = CronSchedule::parse("@daily").ok();
        let berlin = parse_tz("Europe/Berlin").unwrap_or(chrono_tz::UTC);
        let next = daily.and_then(|d| d.next_after(at("2026-11-21T05:00:00Z"), berlin));
        // Midnight in Berlin (CET, UTC+1) is 23:00 UTC.
        assert_eq!(next, Some(at("2026-11-21T23:00:00Z")));
        let every = CronSchedule::parse("*/2 * * * * *").ok();
        let times = every.map(|e| e.upcoming(at("2026-11-21T05:00:00Z"), chrono_tz::UTC, 3));
        assert_eq!(times.map(|t| t.len()), Some(3));
        assert!(parse_tz("Mars/Olympus").is_err());
        let hourly = CronSchedule::parse("@hourly").ok();
        let latest = hourly.and_then(|h| h.latest_at_or_before(at("2026-11-21T05:30:00Z"), chrono_tz::UTC));
        assert_eq!(
            latest,
            Some(
                chrono_tz::UTC
                    .with_ymd_and_hms(2026, 11, 21, 5, 0, 0)
                    .unwrap()
                    .with_timezone(&Utc)
            )
        );
    }

    /// Run times of `expr` in Berlin from `from` to `to` (UTC), as the daemon walks them:
    /// each next time strictly after the previous one.
    fn berlin_runs(expr: &str, from: &str, to: &str) -> Vec<DateTime<Utc>> {
        let berlin = parse_tz("Europe/Berlin").unwrap_or(chrono_tz::UTC);
        let s = CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        let (mut t, end) = (at(from), at(to));
        let mut runs = Vec::new();
        while let Some(next) = s.next_after(t, berlin).filter(|n| *n <= end) {
            runs.push(next);
            t = next;
        }
        runs
    }

    #[test]
    fn a_time_in_the_skipped_spring_hour_runs_once_right_after_the_jump() {
        // 2026-03-29 in Berlin: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 never happens.
        let runs = berlin_runs("30 2 * * *", "2026-03-27T12:00:00Z", "2026-03-31T12:00:00Z");
        assert_eq!(
            runs,
            [
                at("2026-03-28T01:30:00Z"), // 02:30 CET
                at("2026-03-29T01:00:00Z"), // the jump: 03:00 CEST, once
                at("2026-03-30T00:30:00Z"), // 02:30 CEST
                at("2026-03-31T00:30:00Z"),
            ]
        );
        // An hourly job loses no real hour and gains none.
        let hourly = berlin_runs("0 * * * *", "2026-03-28T22:30:00Z", "2026-03-29T03:30:00Z");
        let expected: Vec<_> = (23..=27)
            .map(|h| at("2026-03-28T00:00:00Z") + chrono::Duration::hours(h))
            .collect();
        assert_eq!(hourly, expected);
    }

    #[test]
    fn a_time_in_the_repeated_autumn_hour_runs_once() {
        // 2026-10-25 in Berlin: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let runs = berlin_runs("30 2 * * *", "2026-10-23T12:00:00Z", "2026-10-26T12:00:00Z");
        assert_eq!(
            runs,
            [
                at("2026-10-24T00:30:00Z"), // 02:30 CEST
                at("2026-10-25T00:30:00Z"), // the first 02:30 (CEST) only
                at("2026-10-26T01:30:00Z"), // 02:30 CET
            ]
        );
        // An hourly job runs every real hour, the repeated one included.
        let hourly = berlin_runs("0 * * * *", "2026-10-24T22:30:00Z", "2026-10-25T03:30:00Z");
        let expected: Vec<_> = (23..=27)
            .map(|h| at("2026-10-24T00:00:00Z") + chrono::Duration::hours(h))
            .collect();
        assert_eq!(hourly, expected);
        // The catch-up after downtime agrees: the latest time is the first 02:30, not a second one.
        let s = CronSchedule::parse("30 2 * * *").unwrap_or_else(|e| panic!("{e}"));
        let berlin = parse_tz("Europe/Berlin").unwrap_or(chrono_tz::UTC);
        assert_eq!(
            s.latest_at_or_before(at("2026-10-25T02:00:00Z"), berlin),
            Some(at("2026-10-25T00:30:00Z"))
        );
    }
}
