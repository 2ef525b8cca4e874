//! Durations as people write them ("5s", "100ms", "2m"), in flags and in the config file. A leaf:
//! the flags, the settings and the jobs all read durations the same way.

use std::time::Duration;

use serde::Deserialize;

/// A duration written as "5s", "100ms", "2m" in the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(HumanDuration).map_err(serde::de::Error::custom)
    }
}

/// "5s", "100ms", "2m", "1h30m".
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("'{s}' is not a duration ({e}); write e.g. 5s, 100ms, 2m"))
}

/// `parse_duration` for a flag whose value is also a config key: both become a `HumanDuration`.
pub fn parse_human(s: &str) -> Result<HumanDuration, String> {
    parse_duration(s).map(HumanDuration)
}
