//! `dbtool config check FILE`: every problem in a configuration file, each with its line.

use std::io::Write;
use std::path::Path;

use anyhow::bail;

use crate::settings::Settings;

pub fn check(file: Option<&Path>) -> anyhow::Result<u8> {
    let Some(path) = file else {
        bail!("no file to check; give one (`dbtool config check FILE`) or set --config / DBTOOL_CONFIG");
    };
    match Settings::load(Some(path)) {
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
