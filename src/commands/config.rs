//! `dbtool config check FILE [--target NAME | --dsn DSN]`: every problem in a configuration
//! file, each with its line; asked to connect, also whether the targets of its backup and
//! archive jobs carry the schema those jobs claim their runs in, and whether each custom
//! check's SQL plans there (EXPLAIN, not run).

use std::io::Write;
use std::path::Path;

use anyhow::bail;

use crate::settings::Settings;

/// With `json`, the verdict is one object on stdout: `{"schema", "file", "valid", "errors"}`.
pub async fn check(file: Option<&Path>, target: &[String], dsn: &[String], json: bool) -> anyhow::Result<u8> {
    let Some(path) = file else {
        bail!("no file to check; give one (`dbtool config check FILE`) or set --config / DBTOOL_CONFIG");
    };
    let loaded = Settings::load(Some(path));
    // Asked to connect, a file that loads is also checked against its targets.
    let problems = match &loaded {
        Ok(settings) if !target.is_empty() || !dsn.is_empty() => targets_ready(settings, path, target, dsn).await?,
        _ => Vec::new(),
    };
    if json {
        return check_json(path, loaded, &problems);
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{}: {p}", path.display());
        }
        return Ok(1);
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

/// Connects to the chosen targets; each problem (one cannot be reached, or lacks the schema a
/// backup or archive job needs) as a line.
async fn targets_ready(
    settings: &Settings,
    path: &Path,
    target: &[String],
    dsn: &[String],
) -> anyhow::Result<Vec<String>> {
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
    let mut lines: Vec<String> = problems.into_iter().map(|p| p.message).collect();
    // Each custom check's SQL, explained where it will run, on sessions opened as health's are.
    let health = crate::settings::targets::session(&conn, settings, true);
    for t in &targets {
        lines.extend(crate::checks::custom::explain::problems(t, &settings.custom.0, &health).await);
    }
    Ok(lines)
}

fn check_json(
    path: &Path,
    loaded: Result<Settings, crate::settings::Errors>,
    problems: &[String],
) -> anyhow::Result<u8> {
    let mut errors = match loaded {
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
    errors.extend(problems.iter().map(|p| format!("{}: {p}", path.display())));
    let v = serde_json::json!({
        "schema": 1, "file": path.display().to_string(), "valid": errors.is_empty(), "errors": errors,
    });
    writeln!(std::io::stdout().lock(), "{}", crate::report::json_text::to_string(&v)?)?;
    Ok(u8::from(!errors.is_empty()))
}
