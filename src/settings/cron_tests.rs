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
