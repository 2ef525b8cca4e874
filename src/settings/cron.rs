//! Cron expressions and next run times in the configured timezone (`dbtool schedule --list`).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

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

    /// The first run time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&after.with_timezone(&tz))
            .next()
            .map(|t| t.with_timezone(&Utc))
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
            for t in self.schedule.after(&(at - back).with_timezone(&tz)).take(100_000) {
                let t = t.with_timezone(&Utc);
                if t > at {
                    break;
                }
                latest = Some(t);
            }
            if latest.is_some() {
                return latest;
            }
        }
        None
    }

    /// The next `n` run times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Tz>> {
        self.schedule.after(&after.with_timezone(&tz)).take(n).collect()
    }
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
}
