//! Password lookup in a libpq password file (~/.pgpass), with libpq's matching and permission rules.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::conninfo::DEFAULT_SOCKET_DIR;

/// The password of the first line of `path` matching the connection, if any.
///
/// `host` is a host name, IP address or unix-socket directory. A missing file is not an
/// error; an unsafe or unreadable one is skipped with a warning, as libpq does.
pub fn lookup(path: &Path, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let text = read_if_private(path)?;
    // libpq: "localhost" matches an empty host and the default socket directory.
    let also_localhost = host.is_empty() || host == DEFAULT_SOCKET_DIR;
    let port = port.to_string();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some([h, p, d, u, password]) = split_fields(line) else {
            continue;
        };
        let host_ok = h.matches(host) || (also_localhost && h.matches("localhost"));
        if host_ok && p.matches(&port) && d.matches(dbname) && u.matches(user) {
            // An empty password is no password: the caller then connects without one.
            return Some(password.value).filter(|p| !p.is_empty());
        }
    }
    None
}

/// The file's text, or None when it is absent, not a plain file, too open or unreadable.
fn read_if_private(path: &Path) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("cannot read password file {}: {e}; ignoring it", path.display());
            return None;
        }
    };
    if !meta.is_file() {
        tracing::warn!("password file {} is not a plain file; ignoring it", path.display());
        return None;
    }
    // Same test as libpq: any group or other bit makes the file unsafe to trust.
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access; ignoring it. Fix with: chmod 0600 {}",
            path.display(),
            path.display()
        );
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::warn!("cannot read password file {}: {e}; ignoring it", path.display());
            None
        }
    }
}

/// One field of a line, with escapes removed; a bare `*` is a wildcard, `\*` a literal star.
struct Field {
    value: String,
    wildcard: bool,
}

impl Field {
    fn matches(&self, actual: &str) -> bool {
        self.wildcard || self.value == actual
    }
}

/// `host:port:database:username:password`, where `\:` and `\\` escape; the password takes the rest.
fn split_fields(line: &str) -> Option<[Field; 5]> {
    let mut fields: Vec<Field> = Vec::with_capacity(5);
    let (mut value, mut raw) = (String::new(), String::new());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                raw.push(c);
                if let Some(next) = chars.next() {
                    raw.push(next);
                    value.push(next);
                }
            }
            ':' if fields.len() < 4 => {
                fields.push(Field {
                    wildcard: raw == "*",
                    value: std::mem::take(&mut value),
                });
                raw.clear();
            }
            _ => {
                raw.push(c);
                value.push(c);
            }
        }
    }
    fields.push(Field { wildcard: false, value });
    fields.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn pgpass(dir: &tempfile::TempDir, text: &str, mode: u32) -> PathBuf {
        let path = dir.path().join("pgpass");
        fs::write(&path, text).expect("write pgpass");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn wildcards_and_first_match_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "# comment\n\ndb1:5432:app:alice:first\n*:*:*:alice:second\n*:*:*:*:third\n";
        let f = pgpass(&dir, text, 0o600);
        assert_eq!(lookup(&f, "db1", 5432, "app", "alice").as_deref(), Some("first"));
        assert_eq!(lookup(&f, "db1", 5433, "app", "alice").as_deref(), Some("second"));
        assert_eq!(lookup(&f, "db2", 5432, "other", "bob").as_deref(), Some("third"));
    }

    #[test]
    fn escapes_and_colons_in_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "h\\:x:5432:d\\\\b:u:pa\\:ss:w\\\\rd\nstar:5432:\\*:u:literal\n";
        let f = pgpass(&dir, text, 0o600);
        assert_eq!(lookup(&f, "h:x", 5432, "d\\b", "u").as_deref(), Some("pa:ss:w\\rd"));
        assert_eq!(lookup(&f, "star", 5432, "*", "u").as_deref(), Some("literal"));
        assert_eq!(lookup(&f, "star", 5432, "other", "u"), None, "\\* is not a wildcard");
    }

    #[test]
    fn short_lines_and_crlf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = pgpass(&dir, "h:5432:d:u\r\nh:5432:d:u:pw\r\n", 0o600);
        assert_eq!(lookup(&f, "h", 5432, "d", "u").as_deref(), Some("pw"));
    }

    #[test]
    fn socket_dir_matches_literally_and_default_dir_matches_localhost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "/tmp/sock:5432:*:u:sockpw\nlocalhost:5432:*:u:localpw\n";
        let f = pgpass(&dir, text, 0o600);
        assert_eq!(lookup(&f, "/tmp/sock", 5432, "d", "u").as_deref(), Some("sockpw"));
        assert_eq!(
            lookup(&f, DEFAULT_SOCKET_DIR, 5432, "d", "u").as_deref(),
            Some("localpw")
        );
        assert_eq!(lookup(&f, "", 5432, "d", "u").as_deref(), Some("localpw"));
        assert_eq!(lookup(&f, "/other/dir", 5432, "d", "u"), None);
    }

    #[test]
    fn group_or_world_access_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o640, 0o604, 0o620, 0o610] {
            let f = pgpass(&dir, "*:*:*:*:pw\n", mode);
            assert_eq!(lookup(&f, "h", 5432, "d", "u"), None, "mode {mode:o}");
        }
        let f = pgpass(&dir, "*:*:*:*:pw\n", 0o400);
        assert_eq!(lookup(&f, "h", 5432, "d", "u").as_deref(), Some("pw"));
    }

    #[test]
    fn missing_file_and_directory_are_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(lookup(&dir.path().join("absent"), "h", 5432, "d", "u"), None);
        assert_eq!(lookup(dir.path(), "h", 5432, "d", "u"), None);
    }

    #[test]
    fn empty_password_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = pgpass(&dir, "*:*:*:*:\n*:*:*:*:later\n", 0o600);
        assert_eq!(lookup(&f, "h", 5432, "d", "u"), None);
    }
}
