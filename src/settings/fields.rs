//! The keys a `Deserialize` struct accepts, read from the type itself, so that an unknown key in
//! a job table is reported with its line and the list of valid keys, without a second list
//! that could drift from the options type.

use serde::de::{self, Deserialize, Visitor};

/// Asks `T` for its field names: serde passes them to `deserialize_struct`, where this
/// deserializer stops with them.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut found: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe { found: &mut found });
    found
}

struct Probe<'a> {
    found: &'a mut &'static [&'static str],
}

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.found = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fields_of_an_options_type_are_its_keys() {
        let f = super::fields_of::<crate::checks::options::HealthOptions>();
        assert!(f.contains(&"checks") && f.contains(&"max_connections"), "{f:?}");
        // CLI-only flags are not keys.
        assert!(!f.contains(&"output") && !f.contains(&"set"), "{f:?}");
    }
}
