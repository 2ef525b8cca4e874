//! `[[custom_checks]]` resolved into checks, every problem at its line; and the one place that
//! finds a check by name, built-in or custom.

use super::{read, ConfigError, Settings};
use crate::checks::custom::Catalog;
use crate::checks::{self, Check};

impl Settings {
    /// The built-in checks, then the custom ones: what `--check`, `--skip`, `--set` and
    /// `[checks.NAME]` accept, in report order.
    pub fn all_checks(&self) -> Vec<&'static dyn Check> {
        checks::REGISTRY
            .iter()
            .copied()
            .chain(self.custom.0.iter().copied())
            .collect()
    }

    /// A check by name, built-in or custom.
    pub fn find_check(&self, name: &str) -> Option<&'static dyn Check> {
        checks::find(name).or_else(|| self.custom.0.iter().copied().find(|c| c.name() == name))
    }

    /// The names `--check` accepts, for messages.
    pub fn check_names(&self) -> String {
        let names: Vec<&str> = self.all_checks().iter().map(|c| c.name()).collect();
        names.join(", ")
    }
}

/// The custom checks of the file, or every problem in their tables.
pub(super) fn resolve(settings: &Settings) -> Result<Catalog, Vec<ConfigError>> {
    let tables = &settings.file.custom_checks;
    let mut errors = Vec::new();
    let builtin = |name: &str| checks::find(name).is_some();
    let mut names = std::collections::HashSet::new();
    for (i, t) in tables.iter().enumerate() {
        let at = |key: &str| {
            read::key_offsets(&settings.text, "custom_checks", key)
                .get(i)
                .copied()
                .unwrap_or(0)
        };
        for (key, message) in t.problems(&builtin) {
            errors.push(settings.at(at(key), format!("[[custom_checks]] {key}: {message}")));
        }
        if !names.insert(t.name.as_str()) {
            errors.push(settings.at(
                at("name"),
                format!(
                    "[[custom_checks]] name: '{}' is used twice; give each check its own name",
                    t.name
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Catalog(tables.iter().map(|t| t.parts().build()).collect()))
}
