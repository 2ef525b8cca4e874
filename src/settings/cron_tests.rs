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
fn errors_name_the_field_and_its_range_and_never_firing_is_refused() {
    let now = at("2026-11-21T05:00:00Z");
    let err = |e: &str| CronSchedule::parse_at(e, now).err().unwrap_or_default();
    // Regression: "Minutes must be less than 59", or a bare "^".
    assert!(
        err("61 * * * *").contains("minute field '61': 61 is out of range; write 0-59"),
        "{}",
        err("61 * * * *")
    );
    assert!(err("0 24 * * *").contains("hour field"), "{}", err("0 24 * * *"));
    assert!(
        err("0 0 32 * *").contains("day-of-month field"),
        "{}",
        err("0 0 32 * *")
    );
    assert!(err("0 0 * 13 *").contains("month field '13'"), "{}", err("0 0 * 13 *"));
    assert!(err("*/0 * * * *").contains("step of 0"), "{}", err("*/0 * * * *"));
    assert!(
        err("0 0 * FOO *").contains("month field 'FOO' is not understood"),
        "{}",
        err("0 0 * FOO *")
    );
    assert!(err("0 0 30 2 *").contains("never fires"), "{}", err("0 0 30 2 *"));
    assert!(
        err("0 0 0 1 1 * 2020").contains("never fires"),
        "{}",
        err("0 0 0 1 1 * 2020")
    );
    assert!(err("@reboot").contains("@daily"), "{}", err("@reboot"));
    for ok in [
        "@annually",
        "@midnight",
        "@weekly",
        "@monthly",
        "0 0 29 2 *",
        "0 0 31 * *",
    ] {
        assert!(CronSchedule::parse_at(ok, now).is_ok(), "{ok}: {}", err(ok));
    }
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
