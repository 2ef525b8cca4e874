//! `dbtool config check FILE [--target NAME | --dsn DSN]`: every problem in a configuration
//! file, each with its line; asked to connect, also whether the targets of its backup and
//! archive jobs carry the schema those jobs claim their runs in.

use std::io::Write;
use std::path::Path;

use anyhow::bail;

use crate::settings::Settings;

pub async fn check(file: Option<&Path>, target: &[String], dsn: &[String]) -> anyhow::Result<u8> {
    let Some(path) = file else {
        bail!("no file to check; give one (`dbtool config check FILE`) or set --config / DBTOOL_CONFIG");
    };
    match Settings::load(Some(path)) {
        Ok(settings) => {
            let connect = !target.is_empty() || !dsn.is_empty();
            if connect && !targets_ready(&settings, path, target, dsn).await? {
                return Ok(1);
            }
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

/// Connects to the chosen targets; false (each problem on stderr) when one cannot be reached
/// or lacks the schema a backup or archive job needs.
async fn targets_ready(settings: &Settings, path: &Path, target: &[String], dsn: &[String]) -> anyhow::Result<bool> {
    let all = target.iter().any(|t| t == "*");
    let conn = crate::cli::ConnArgs {
        dsn: dsn.to_vec(),
        target: if all { Vec::new() } else { target.to_vec() },
        ..crate::cli::ConnArgs::default()
    };
    let targets = crate::settings::targets::resolve(&conn, settings, &crate::db::ProcessEnv)?;
    let session = crate::settings::targets::bookkeeping(settings);
    let problems =
        crate::scheduler::preflight::check(&settings.schedule, &targets, !dsn.is_empty(), &session, path).await;
    for p in &problems {
        eprintln!("{}: {}", path.display(), p.message);
    }
    Ok(problems.is_empty())
}
