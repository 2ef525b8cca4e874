//! `[[custom_checks]]` and `custom_queries_file` resolved into checks, every problem at its
//! line; and the one place that finds a check by name, built-in or custom.

use std::collections::HashSet;

use super::{read, ConfigError, Settings};
use crate::checks::custom::{yaml, Catalog, Parts};
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
    let mut errors = Vec::new();
    let builtin = |name: &str| checks::find(name).is_some();
    // Each check's parts with where a clash of its names is reported.
    let mut all: Vec<(Parts, usize, &str)> = Vec::new();
    for (i, t) in settings.file.custom_checks.iter().enumerate() {
        let at = |key: &str| {
            read::key_offsets(&settings.text, "custom_checks", key)
                .get(i)
                .copied()
                .unwrap_or(0)
        };
        let problems = t.problems(&builtin);
        for (key, message) in &problems {
            errors.push(settings.at(at(key), format!("[[custom_checks]] {key}: {message}")));
        }
        if problems.is_empty() {
            all.push((t.parts(), at("name"), "[[custom_checks]] name"));
        }
    }
    if let Some(path) = &settings.file.custom_queries_file {
        let at = read::offset_of_key(&settings.text, "custom_queries_file");
        let full = match settings.path.as_deref().and_then(|p| p.parent()) {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.clone(),
        };
        let shown = path.display().to_string();
        match std::fs::read_to_string(&full) {
            Err(e) => errors.push(settings.at(at, format!("custom_queries_file: cannot read {}: {e}", full.display()))),
            Ok(text) => match yaml::parts(&text, &shown) {
                Err(problems) => errors.extend(
                    problems
                        .into_iter()
                        .map(|p| settings.at(at, format!("custom_queries_file: {p}"))),
                ),
                Ok(parts) => {
                    for p in parts {
                        if builtin(&p.name) {
                            errors.push(settings.at(
                                at,
                                format!(
                                    "custom_queries_file: {shown}: {} is a built-in check's name; rename the query",
                                    p.name
                                ),
                            ));
                        } else {
                            all.push((p, at, "custom_queries_file"));
                        }
                    }
                }
            },
        }
    }
    let (mut names, mut families) = (HashSet::new(), HashSet::new());
    for (p, at, what) in &all {
        if !names.insert(p.name.clone()) {
            errors.push(settings.at(
                *at,
                format!("{what}: '{}' is used twice; give each check its own name", p.name),
            ));
        }
        for (_, family, _, _) in &p.values {
            if !families.insert(family.clone()) {
                errors.push(settings.at(
                    *at,
                    format!("{what}: metric {family} is made by two custom checks; rename one"),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Catalog(all.into_iter().map(|(p, _, _)| p.build()).collect()))
}
