//! `[probe]` and `[auth.NAME]` parsing: allow_hosts patterns, config errors with their line,
//! the secret files.

use super::*;

#[test]
fn globs_and_blocks_match_host_and_port() {
    let g = AllowHost::parse("db-*.prod.internal").unwrap();
    assert!(g.allows("DB-7.prod.internal", 5432));
    assert!(!g.allows("db-7.prod.internal", 6432));
    assert!(!g.allows("db-7.prod.internal.evil.com", 5432));
    assert!(AllowHost::parse("db-?:*").unwrap().allows("db-1", 6432));
    let c = AllowHost::parse("10.0.0.0/8").unwrap();
    assert!(c.allows("10.1.2.3", 5432));
    assert!(!c.allows("11.1.2.3", 5432));
    // Names are not resolved to match a block.
    assert!(!c.allows("localhost", 5432));
    let v6 = AllowHost::parse("[fd00::/8]:6432").unwrap();
    assert!(v6.allows("fd12::1", 6432));
    assert!(!v6.allows("fe80::1", 6432));
    assert!(AllowHost::parse("10.0.0.0/33").is_err());
    assert!(AllowHost::parse("db host").is_err());
    assert!(AllowHost::parse("db:port").is_err());
}

#[test]
fn config_errors_name_their_line_and_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret-in-file\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "[probe]\nallow_hosts = [\"10.0.0.0/40\"]\nmax_in_flight = 0\n\n[auth.mon]\nuser = \"m\"\npassword_file = \"{}\"\nsslmode = \"sometimes\"\n",
        pw.display()
    );
    let errors = crate::settings::Settings::parse(text, std::path::Path::new("d.toml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        errors.contains("d.toml:2:") && errors.contains("bad prefix length"),
        "{errors}"
    );
    assert!(
        errors.contains("d.toml:3:") && errors.contains("max_in_flight: 0"),
        "{errors}"
    );
    assert!(
        errors.contains("d.toml:5:") && errors.contains("chmod 0600"),
        "{errors}"
    );
    assert!(errors.contains("sslmode: 'sometimes'"), "{errors}");
    assert!(!errors.contains("secret-in-file"), "{errors}");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let auth = AuthConfig {
        user: "m".into(),
        password_file: Some(pw),
        sslmode: None,
        sslrootcert: None,
        sslcert: None,
        sslkey: None,
        sslpassword_file: None,
    };
    let params = params_for(&auth, "db-1", 5432, "app").unwrap();
    assert!(params.has_password() && !params.redacted().contains("secret-in-file"));
    assert_eq!((params.user(), params.dbname()), ("m", "app"));
}

#[test]
fn a_password_with_quotes_is_quoted() {
    assert_eq!(quoted(r"a'b\c"), r"'a\'b\\c'");
}

/// `[auth.NAME]` with an encrypted key: sslpassword_file follows password_file's rule (refused
/// when group/world readable, first line read), an encrypted key without it is an error naming
/// sslpassword_file at the section's line, and the password shows in no error or redaction.
#[test]
fn sslpassword_file_is_private_and_an_encrypted_key_needs_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (key, pw) = (dir.path().join("enc.key"), dir.path().join("keypw"));
    std::fs::write(
        &key,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(&pw, "key-secret-in-file\nsecond line\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
    let parse = |extra: &str| {
        let text = format!(
            "[probe]\nallow_hosts = [\"db-*\"]\n\n[auth.mon]\nuser = \"m\"\nsslkey = \"{}\"\n{extra}",
            key.display()
        );
        crate::settings::Settings::parse(text, std::path::Path::new("d.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let none = parse("");
    assert!(
        none.contains("d.toml:4:") && none.contains("is encrypted and no sslpassword_file is given"),
        "{none}"
    );
    let open = parse(&format!("sslpassword_file = \"{}\"\n", pw.display()));
    assert!(
        open.contains("d.toml:4:")
            && open.contains("[auth.mon] sslpassword_file")
            && open.contains(&format!("chmod 0600 {}", pw.display())),
        "{open}"
    );
    assert!(!open.contains("key-secret-in-file"), "{open}");
    let inline = parse("sslpassword = \"key-secret-inline\"\n");
    assert!(
        inline.contains("sslpassword"),
        "an inline password is refused: {inline}"
    );
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(parse(&format!("sslpassword_file = \"{}\"\n", pw.display())), "");
    let auth = AuthConfig {
        user: "m".into(),
        password_file: None,
        sslmode: None,
        sslrootcert: None,
        sslcert: None,
        sslkey: Some(key.clone()),
        sslpassword_file: Some(pw),
    };
    let params = params_for(&auth, "db-1", 5432, "app").unwrap();
    assert_eq!(params.sslpassword(), Some("key-secret-in-file"));
    assert!(!format!("{params:?}").contains("key-secret") && !params.redacted().contains("key-secret"));
    let without = AuthConfig {
        sslpassword_file: None,
        ..auth
    };
    let err = params_for(&without, "db-1", 5432, "app").unwrap_err();
    assert!(err.contains("sslpassword_file"), "{err}");
}
