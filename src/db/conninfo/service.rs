//! libpq's connection service file: `service=NAME` or PGSERVICE, looked up in PGSERVICEFILE (else
//! ~/.pg_service.conf), then PGSYSCONFDIR/pg_service.conf (else Debian's compiled-in
//! /etc/postgresql-common). The first file with a `[NAME]` section wins, as in libpq.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{keywords, ConnInfoError, Env};

/// Debian's libpq SYSCONFDIR (`pg_config --sysconfdir`).
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// The settings of one service section, each with its line for error messages.
pub(super) struct Service {
    pub(super) path: PathBuf,
    pub(super) values: HashMap<&'static str, (String, usize)>,
}

/// The files searched for a service, in libpq's order.
pub(super) fn files(env: &dyn Env, home: Option<&Path>) -> Vec<PathBuf> {
    let nonempty = |var: &str| env.var(var).filter(|v| !v.is_empty());
    let user = nonempty("PGSERVICEFILE")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".pg_service.conf")));
    let sysconf = nonempty("PGSYSCONFDIR").unwrap_or_else(|| DEFAULT_SYSCONFDIR.to_string());
    user.into_iter()
        .chain(std::iter::once(Path::new(&sysconf).join("pg_service.conf")))
        .collect()
}

/// The `[name]` section of the first file that has one.
pub(super) fn lookup(name: &str, files: &[PathBuf]) -> Result<Service, ConnInfoError> {
    for path in files {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            // libpq: a file that is not there is skipped.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(cause) => {
                return Err(ConnInfoError::ServiceUnreadable {
                    path: path.display().to_string(),
                    cause,
                })
            }
        };
        if let Some(values) = section(name, path, &text)? {
            return Ok(Service {
                path: path.clone(),
                values,
            });
        }
    }
    let searched: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    Err(ConnInfoError::ServiceNotFound {
        name: name.to_string(),
        searched: searched.join(", "),
    })
}

type Values = HashMap<&'static str, (String, usize)>;

/// The settings of section `name` in `text`, or None when it has no such section.
fn section(name: &str, path: &Path, text: &str) -> Result<Option<Values>, ConnInfoError> {
    let bad = |line: usize, problem: String| ConnInfoError::ServiceFile {
        path: path.display().to_string(),
        line,
        problem,
    };
    let mut found: Option<Values> = None;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            if rest.strip_suffix(']') == Some(name) {
                found = Some(HashMap::new());
            }
            continue;
        }
        let Some(values) = found.as_mut() else { continue };
        // libpq splits at the first '=' and trims nothing around it.
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad(line_no, "a line without '='; write key=value".into()));
        };
        // libpq rewrites requiressl only in connection strings; in a service file it is a syntax error.
        if key == "requiressl" {
            return Err(bad(
                line_no,
                "requiressl is not accepted in a service file; write sslmode=require".into(),
            ));
        }
        if key == "service" {
            return Err(bad(line_no, "nested service specifications are not supported".into()));
        }
        let key = keywords::keyword(key, 1).map_err(|e| {
            let problem = match e {
                ConnInfoError::UnsupportedOption { key, .. } => {
                    format!("connection option '{key}' is not supported by dbtool; remove it")
                }
                _ if key.ends_with(' ') => "a space before '='; write key=value without spaces".into(),
                _ => "unknown connection option; see libpq's list of parameter keywords".into(),
            };
            bad(line_no, problem)
        })?;
        values.insert(key, (value.to_string(), line_no));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::conninfo::MapEnv;

    fn env(vars: &[(&str, &str)]) -> MapEnv {
        MapEnv(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn ignored_variables_are_named() {
        let e = env(&[("PGSSLSNI", "0"), ("PGTZ", ""), ("PGHOST", "h")]);
        assert_eq!(keywords::ignored_env(&e), vec!["PGSSLSNI"]);
    }

    #[test]
    fn files_follow_libpq_order() {
        let e = env(&[]);
        assert_eq!(
            files(&e, Some(Path::new("/home/a"))),
            vec![
                PathBuf::from("/home/a/.pg_service.conf"),
                PathBuf::from("/etc/postgresql-common/pg_service.conf")
            ]
        );
        let e = env(&[("PGSERVICEFILE", "/x/s.conf"), ("PGSYSCONFDIR", "/y")]);
        assert_eq!(
            files(&e, Some(Path::new("/home/a"))),
            vec![PathBuf::from("/x/s.conf"), PathBuf::from("/y/pg_service.conf")]
        );
    }

    #[test]
    fn the_first_file_with_the_section_wins_and_lines_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user.conf");
        let system = dir.path().join("system.conf");
        std::fs::write(
            &user,
            "# mine\n[other]\nhost=o\n\n[app]\nhost=db1\nport=5433\n[next]\nhost=n\n",
        )
        .expect("write");
        std::fs::write(&system, "[app]\nhost=sys\n[sys]\nhost=s\npassword=hunter2\n").expect("write");
        let both = [dir.path().join("missing.conf"), user.clone(), system.clone()];
        let s = lookup("app", &both).expect("app");
        assert_eq!(s.path, user);
        assert_eq!(s.values.get("host").map(|v| v.0.as_str()), Some("db1"));
        assert_eq!(s.values.get("port").map(|v| v.1), Some(7));
        assert_eq!(s.values.len(), 2);
        assert_eq!(lookup("sys", &both).expect("sys").path, system);
        let err = lookup("nope", &both).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("nope") && err.contains(&system.display().to_string()),
            "{err}"
        );
        std::fs::write(&user, "[app]\nhost = db1\npassword=hunter2 x\n").expect("write");
        let err = lookup("app", &both).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 2") && err.contains("space before '='"), "{err}");
        std::fs::write(&user, "[app]\npassword=hunter2\nhunter2\n").expect("write");
        let err = lookup("app", &both).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 3") && !err.contains("hunter2"), "{err}");
        std::fs::write(&user, "[app]\nservice=x\n").expect("write");
        let err = lookup("app", &both).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("nested"), "{err}");
    }
}
