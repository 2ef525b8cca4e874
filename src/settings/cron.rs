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
        CronSchedule::parse_at(expr, Utc::now())
    }

    /// `parse`, judging "never fires" from `now`.
    pub fn parse_at(expr: &str, now: DateTime<Utc>) -> Result<CronSchedule, String> {
        let trimmed = expr.trim();
        let normalised = if let Some(word) = trimmed.strip_prefix('@') {
            match word {
                "yearly" | "annually" => "0 0 0 1 1 *",
                "monthly" => "0 0 0 1 * *",
                "weekly" => "0 0 0 * * SUN",
                "daily" | "midnight" => "0 0 0 * * *",
                "hourly" => "0 0 * * * *",
                _ => {
                    return Err(format!(
                        "'{expr}' is not a schedule dbtool knows; write @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or 5 fields (min hour day month weekday)"
                    ))
                }
            }
            .to_string()
        } else {
            let mut fields: Vec<String> = trimmed.split_whitespace().map(str::to_string).collect();
            match fields.len() {
                5 => fields.insert(0, "0".into()),
                6 | 7 => {}
                n => {
                    return Err(format!(
                    "'{expr}' has {n} fields; write 5 (min hour day month weekday), 6 (with seconds first), 7 (with a year last) or @daily"
                ))
                }
            }
            for (field, unit) in fields.iter().zip(UNITS) {
                unit.check(field).map_err(|why| format!("'{expr}': {why}"))?;
            }
            fields[5] = weekday_names(&fields[5])?;
            fields.join(" ")
        };
        let schedule = cron::Schedule::from_str(&normalised).map_err(|_| {
            // The crate's own message is a caret under the expression: name the field instead.
            let fields: Vec<&str> = normalised.split_whitespace().collect();
            let bad = UNITS.iter().zip(&fields).enumerate().find(|(i, (_, f))| {
                let mut probe = ["0", "*", "*", "*", "*", "*"].map(str::to_string).to_vec();
                match probe.get_mut(*i) {
                    Some(slot) => *slot = f.to_string(),
                    None => probe.push(f.to_string()),
                }
                cron::Schedule::from_str(&probe.join(" ")).is_err()
            });
            match bad {
                Some((_, (unit, field))) => format!(
                    "'{expr}': the {} field '{field}' is not understood; {}",
                    unit.name,
                    unit.accepted()
                ),
                None => format!("'{expr}' is not a cron expression; write e.g. \"*/5 * * * *\" or @daily"),
            }
        })?;
        let parsed = CronSchedule {
            source: trimmed.to_string(),
            schedule,
        };
        // A schedule that never fires is a job that silently never runs.
        let horizon = now + chrono::Duration::days(NEVER_FIRES_YEARS * 366);
        match parsed.next_after(now, chrono_tz::UTC) {
            Some(t) if t <= horizon => Ok(parsed),
            _ => Err(format!(
                "'{expr}' never fires in the next {NEVER_FIRES_YEARS} years (a date that does not exist, such as 30 February, or a year in the past); check the day, month and year fields"
            )),
        }
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

/// How far ahead a schedule must fire at least once.
const NEVER_FIRES_YEARS: i64 = 5;

/// One field of an expression (after the seconds field is added): its name and range.
struct Unit {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static str,
}

const UNITS: [Unit; 7] = [
    Unit {
        name: "second",
        min: 0,
        max: 59,
        names: "",
    },
    Unit {
        name: "minute",
        min: 0,
        max: 59,
        names: "",
    },
    Unit {
        name: "hour",
        min: 0,
        max: 23,
        names: "",
    },
    Unit {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: "",
    },
    Unit {
        name: "month",
        min: 1,
        max: 12,
        names: " or JAN-DEC",
    },
    Unit {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: " (0 and 7 are Sunday) or SUN-SAT",
    },
    Unit {
        name: "year",
        min: 1970,
        max: 2100,
        names: "",
    },
];

impl Unit {
    fn accepted(&self) -> String {
        format!(
            "write {}-{}{}, a range a-b, a list a,b, a step */n or *",
            self.min, self.max, self.names
        )
    }

    /// The numbers of a field, each within range, and steps of at least 1. Names and
    /// anything else are left to the cron crate.
    fn check(&self, field: &str) -> Result<(), String> {
        for part in field.split(',') {
            let (range, step) = part.split_once('/').map_or((part, None), |(r, s)| (r, Some(s)));
            if let Some(step) = step {
                match step.parse::<u32>() {
                    Ok(0) => {
                        return Err(format!(
                            "the {} field '{field}' has a step of 0; a step is 1 or more",
                            self.name
                        ))
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(format!(
                            "the {} field '{field}' has a step '{step}' that is not a number; {}",
                            self.name,
                            self.accepted()
                        ))
                    }
                }
            }
            for n in range.split('-').filter_map(|n| n.parse::<u32>().ok()) {
                if n < self.min || n > self.max {
                    return Err(format!(
                        "the {} field '{field}': {n} is out of range; {}",
                        self.name,
                        self.accepted()
                    ));
                }
            }
        }
        Ok(())
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
#[path = "cron_tests.rs"]
mod tests;
