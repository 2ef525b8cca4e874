//! `dbtool config check FILE`: every problem in a configuration file, each with its line.

use std::io::Write;
use std::path::Path;

use anyhow::bail;

use crate::settings::Settings;

/// With `json`, the verdict is one object on stdout: `{"schema", "file", "valid", "errors"}`.
pub fn check(file: Option<&Path>, json: bool) -> anyhow::Result<u8> {
    let Some(path) = file else {
        bail!("no file to check; give one (`dbtool config check FILE`) or set --config / DBTOOL_CONFIG");
    };
    let loaded = Settings::load(Some(path));
    if json {
        return check_json(path, loaded);
    }
    match loaded {
        Ok(_) => {
            // Locked stdout, error returned: a closed pipe ends the command quietly in main.
            writeln!(std::io::stdout().lock(), "{}: OK", path.display())?;
            Ok(0)
        }
        Err(errors) => {
            for e in &errors.0 {
                // A file that cannot be read is not a verdict on its contents: exit 3 as before.
                if matches!(e, crate::settings::ConfigError::Read { .. }) {
                    return Err(errors.into());
                }
                eprintln!("{e}");
            }
            Ok(1)
        }
    }
}

fn check_json(path: &Path, loaded: Result<Settings, crate::settings::Errors>) -> anyhow::Result<u8> {
    let errors = match loaded {
        Ok(_) => Vec::new(),
        Err(errors) => {
            if errors
                .0
                .iter()
                .any(|e| matches!(e, crate::settings::ConfigError::Read { .. }))
            {
                return Err(errors.into());
            }
            errors.0.iter().map(ToString::to_string).collect()
        }
    };
    let v = serde_json::json!({
        "schema": 1, "file": path.display().to_string(), "valid": errors.is_empty(), "errors": errors,
    });
    writeln!(std::io::stdout().lock(), "{}", crate::report::json_text::to_string(&v)?)?;
    Ok(u8::from(!errors.is_empty()))
}
