//! `dbtool config check FILE`: every problem in a configuration file, each with its line.

use std::path::Path;

use anyhow::bail;

use crate::settings::{ConfigError, Loaded};

pub fn check(file: Option<&Path>) -> anyhow::Result<u8> {
    let Some(path) = file else {
        bail!("no file to check; give one (`dbtool config check FILE`) or set --config / DBTOOL_CONFIG");
    };
    // Loaded::load stops at the first problem; collect every semantic one for the user.
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map_or(1, |s| crate::settings::line_of(&text, s.start));
            eprintln!("{}:{line}: {}", path.display(), e.message());
            return Ok(1);
        }
    };
    let loaded = Loaded {
        file,
        text,
        path: Some(path.to_path_buf()),
    };
    let errors = loaded.validate();
    for e in &errors {
        eprintln!("{e}");
    }
    if errors.is_empty() {
        println!("{}: OK", path.display());
        Ok(0)
    } else {
        Ok(1)
    }
}
