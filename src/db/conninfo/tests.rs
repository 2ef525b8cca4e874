//! Unit tests of connection-parameter resolution: parsing, precedence, defaults, redaction.

use super::*;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

/// An environment with only HOME set, so the machine's PG* variables and ~/.pgpass never leak in.
fn env(vars: &[(&str, &str)]) -> (MapEnv, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.entry("HOME".into())
        .or_insert_with(|| home.path().display().to_string());
    (MapEnv(map), home)
}

fn resolve(dsn: &str, vars: &[(&str, &str)]) -> ConnParams {
    let (env, _home) = env(vars);
    ConnParams::resolve(Some(dsn), &env).expect("valid DSN")
}

fn resolve_err(dsn: &str) -> ConnInfoError {
    let (env, _home) = env(&[("PGUSER", "u")]);
    ConnParams::resolve(Some(dsn), &env).expect_err("invalid DSN")
}

#[test]
fn url_with_everything() {
    let p = resolve(
        "postgresql://alice:s%40cret@db.example.com:6543/app%201?sslmode=require&application_name=x",
        &[],
    );
    assert_eq!(p.hosts(), ["db.example.com"]);
    assert_eq!(p.ports(), [6543]);
    assert_eq!(
        (p.user(), p.dbname(), p.sslmode()),
        ("alice", "app 1", SslMode::Require)
    );
    assert_eq!(p.password_for(0), Some("s@cret"));
    assert_eq!(p.application_name(), "x");
    assert_eq!(resolve("postgres://bob@h/d", &[]).user(), "bob");
}

#[test]
fn url_multi_host_ipv6_and_unencoded_at() {
    let p = resolve("postgres://u:p@ss@h1:5432,h2:5433,[::1]/db", &[]);
    assert_eq!(p.hosts(), ["h1", "h2", "::1"]);
    assert_eq!(p.ports(), [5432, 5433, 5432]);
    assert_eq!(p.password_for(2), Some("p@ss"));
    assert_eq!(resolve("postgres://u:p?s@h/d", &[]).password_for(0), Some("p?s"));
    assert_eq!(p.target_label(), "h1:5432,h2:5433,[::1]:5432/db");
    let p = resolve("postgres://[::1]:5433/db", &[("PGUSER", "u")]);
    assert_eq!((p.hosts(), p.ports()), (&["::1".to_string()][..], &[5433][..]));
}

#[test]
fn url_socket_directories() {
    let p = resolve("postgresql:///app?host=/tmp/sock&port=5439", &[("PGUSER", "u")]);
    assert_eq!((p.hosts(), p.ports()), (&["/tmp/sock".to_string()][..], &[5439][..]));
    assert_eq!(p.target_label(), "/tmp/sock:5439/app");
    let p = resolve("postgresql://%2Fvar%2Frun%2Fpg/app", &[("PGUSER", "u")]);
    assert_eq!(p.hosts(), ["/var/run/pg"]);
    let p = resolve("postgresql:///app", &[("PGUSER", "u")]);
    assert_eq!(p.hosts(), [DEFAULT_SOCKET_DIR]);
    assert_eq!(p.target_label(), "/var/run/postgresql:5432/app");
    assert_eq!(
        resolve("postgres://h?ssl=true", &[("PGUSER", "u")]).sslmode(),
        SslMode::Require
    );
}

#[test]
fn key_value_quoting_and_escapes() {
    let dsn = r"host = h  port= 5433 user =bob dbname='my db' password='it\'s \\ x' application_name=a\ b
                options='-c search_path=s' sslrootcert=/r.crt connect_timeout=7 fallback_application_name=z";
    let p = resolve(dsn, &[]);
    assert_eq!((p.hosts(), p.ports()), (&["h".to_string()][..], &[5433][..]));
    assert_eq!((p.user(), p.dbname()), ("bob", "my db"));
    assert_eq!(p.password_for(0), Some(r"it's \ x"));
    assert_eq!(p.application_name(), "a b");
    assert_eq!(p.options(), Some("-c search_path=s"));
    assert_eq!(p.sslrootcert(), Some(Path::new("/r.crt")));
    assert_eq!(p.connect_timeout(), Some(Duration::from_secs(7)));
    assert_eq!(p.redacted(), "host=h port=5433 user=bob dbname='my db' sslmode=prefer");
}

#[test]
fn defaults() {
    let (env, _home) = env(&[]);
    let p = ConnParams::resolve(None, &env).expect("defaults resolve");
    let os_user = current_os_user().expect("OS user").0;
    assert_eq!(
        (p.hosts(), p.ports()),
        (&[DEFAULT_SOCKET_DIR.to_string()][..], &[5432][..])
    );
    assert_eq!((p.user(), p.dbname()), (os_user.as_str(), os_user.as_str()));
    assert_eq!(p.sslmode(), SslMode::Prefer);
    assert_eq!(p.application_name(), "dbtool");
    assert_eq!((p.connect_timeout(), p.has_password()), (None, false));
    assert_eq!(p.target_session_attrs(), TargetSessionAttrs::Any);
}

#[test]
fn dsn_beats_environment_beats_defaults() {
    let vars = [
        ("PGHOST", "envhost"),
        ("PGPORT", "6000"),
        ("PGUSER", "envuser"),
        ("PGPASSWORD", "envpw"),
        ("PGDATABASE", "envdb"),
        ("PGSSLMODE", "disable"),
        ("PGAPPNAME", "envapp"),
        ("PGCONNECT_TIMEOUT", "1"),
        ("PGTARGETSESSIONATTRS", "read-write"),
    ];
    let p = resolve("host=dsnhost user=dsnuser password=dsnpw", &vars);
    assert_eq!((p.hosts(), p.ports()), (&["dsnhost".to_string()][..], &[6000][..]));
    assert_eq!(
        (p.user(), p.dbname(), p.sslmode()),
        ("dsnuser", "envdb", SslMode::Disable)
    );
    assert_eq!((p.password_for(0), p.application_name()), (Some("dsnpw"), "envapp"));
    assert_eq!(
        p.connect_timeout(),
        Some(Duration::from_secs(2)),
        "libpq raises 1 s to 2 s"
    );
    assert_eq!(p.target_session_attrs(), TargetSessionAttrs::ReadWrite);
    let p = resolve("dbname=d", &vars);
    assert_eq!((p.hosts()[0].as_str(), p.password_for(0)), ("envhost", Some("envpw")));
    assert_eq!(p.password_origin(0).as_deref(), Some("PGPASSWORD"));
    // An explicitly empty DSN value hides the variable and means the default.
    assert_eq!(resolve("host='' dbname=d", &vars).hosts(), [DEFAULT_SOCKET_DIR]);
    // As in libpq, the value after "= " is the next word, even one that looks like a pair.
    assert_eq!(resolve("host= dbname=d", &vars).hosts(), ["dbname=d"]);
    assert_eq!(resolve("connect_timeout=0", &vars).connect_timeout(), None);
}

#[test]
fn hostaddr_is_a_host() {
    let p = resolve("hostaddr=127.0.0.1 user=u", &[]);
    assert_eq!(p.hosts(), ["127.0.0.1"]);
    assert_eq!(p.hostaddrs(), [Some(IpAddr::from([127, 0, 0, 1]))]);
    let p = resolve("host=db.test,db2.test hostaddr=10.0.0.1,10.0.0.2 port=1,2 user=u", &[]);
    assert_eq!(p.hosts(), ["db.test", "db2.test"]);
    assert!(
        p.redacted().contains("hostaddr=10.0.0.1,10.0.0.2 port=1,2"),
        "{}",
        p.redacted()
    );
}

#[test]
fn password_from_passfile_per_database() {
    let (env, home) = env(&[("PGUSER", "u")]);
    let file = home.path().join("pw");
    std::fs::write(&file, "h:5432:one:u:pw1\n*:*:*:u:pwany\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let dsn = format!("host=h dbname=one passfile={}", file.display());
    let p = ConnParams::resolve(Some(&dsn), &env).expect("resolve");
    assert_eq!(p.password_for(0), Some("pw1"));
    assert!(p.has_password());
    assert_eq!(p.with_dbname("two").password_for(0), Some("pwany"));
    assert_eq!(p.with_dbname("two").dbname(), "two");
    assert!(p.password_origin(0).is_some_and(|o| o.contains("passfile")));
    let env_vars = p.libpq_env();
    assert!(env_vars.contains(&("PGPASSFILE".into(), file.display().to_string())));
    assert!(!env_vars.iter().any(|(k, _)| k == "PGPASSWORD"));
    // ~/.pgpass via HOME, used when neither passfile nor PGPASSFILE is given.
    std::fs::rename(&file, home.path().join(".pgpass")).expect("rename");
    let p = ConnParams::resolve(Some("host=h dbname=one"), &env).expect("resolve");
    assert_eq!(p.password_for(0), Some("pw1"));
}

#[test]
fn libpq_env_for_children() {
    let p = resolve(
        "postgres://u:pw@h1,h2:5433/db?sslrootcert=/ca.pem&options=-c%20x%3Dy",
        &[],
    );
    let env: HashMap<String, String> = p.libpq_env().into_iter().collect();
    assert_eq!(env["PGHOST"], "h1,h2");
    assert_eq!(env["PGPORT"], "5432,5433");
    assert_eq!((env["PGUSER"].as_str(), env["PGDATABASE"].as_str()), ("u", "db"));
    assert_eq!(
        (env["PGSSLMODE"].as_str(), env["PGSSLROOTCERT"].as_str()),
        ("prefer", "/ca.pem")
    );
    assert_eq!(env["PGAPPNAME"], "dbtool");
    // The password goes in db::child_service's memfd, and no PGPASSFILE beside it.
    assert!(
        !env.contains_key("PGPASSWORD") && !env.contains_key("PGPASSFILE"),
        "{env:?}"
    );
    assert!(!env.values().any(|v| v.contains("pw@") || v == "pw"), "{env:?}");
    assert_eq!(env["PGOPTIONS"], "-c x=y");
    assert_eq!(env["PGCONNECT_TIMEOUT"], "10", "dbtool's default, not libpq's forever");
}

#[test]
fn invalid_values_name_position_and_fix() {
    let msg = |dsn: &str| resolve_err(dsn).to_string();
    let m = msg("foo=1");
    assert!(
        m.contains("unknown connection option at character 1 of --dsn") && m.contains("libpq"),
        "{m}"
    );
    assert!(msg("postgres://h/d?foo=1").contains("at character 16"));
    assert!(msg("host=h databse=d").contains("did you mean 'dbname'?"));
    assert!(msg("postgres://h/d?username=u").contains("did you mean 'user'?"));
    assert!(msg("sslsni=0").contains("'sslsni' at character 1 of --dsn is not supported by dbtool"));
    let m = msg("sslmode=sometimes");
    assert!(
        m.contains("invalid sslmode at character 9") && m.contains("verify-full"),
        "{m}"
    );
    assert!(msg("port=99999").contains("port number from 1 to 65535"));
    assert!(msg("postgres://h:0/d").contains("invalid port at character 14 of --dsn"));
    assert!(msg("postgres://h:+5/d").contains("invalid port at character 14"));
    assert!(msg("host=a,b port=1,x").contains("invalid port (entry 2 of the list) at character 15"));
    assert!(msg("host=a,b,c port=1,2").contains("2 ports for 3 hosts"));
    assert!(msg("hostaddr=db.test").contains("numeric IP address"));
    assert!(msg("connect_timeout=soon").contains("whole seconds"));
    assert!(msg("target_session_attrs=prefer-standby").contains("read-write"));
    assert!(msg("gssencmode=require").contains("GSSAPI"));
    assert!(msg("dbname").contains("missing '=' after the word at character 1"));
    assert!(msg(" host=h dbname='x").contains("unterminated quoted value for 'dbname' at character 16"));
    assert!(msg("postgres://h/%zz").contains("percent-encoding in the database name of the URL at character 14"));
    assert!(msg("postgres://[::1/d").contains("IPv6"));
    let env = MapEnv(HashMap::from([("PGPORT".to_string(), "abc".to_string())]));
    let m = ConnParams::resolve(Some("user=u"), &env)
        .expect_err("bad PGPORT")
        .to_string();
    assert!(
        m.contains("'abc' in PGPORT"),
        "an environment variable holds no password: {m}"
    );
}

/// Regression (item 5): `postgresql:/…` and `jdbc:postgresql://…` were one word without '='
/// to the key=value parser, which quoted the whole DSN, password included.
#[test]
fn other_schemes_are_named_not_echoed() {
    let msg = |dsn: &str| resolve_err(dsn).to_string();
    let m = msg("postgresql:/u:pw@h/db");
    assert!(m.contains("at character 1") && m.contains("two slashes"), "{m}");
    assert!(msg("jdbc:postgresql://u:pw@h/db").contains("drop the 'jdbc:' prefix"));
    assert!(msg("  POSTGRES://u:pw@h/db").contains("at character 3 of --dsn: write the scheme in lower case"));
    assert!(msg("mysql://u:pw@h/db").contains("not a postgresql:// or postgres:// URL"));
    assert!(msg("u:pw@h/db").contains("not a postgresql:// or postgres:// URL"));
}

/// Regression (item 5): libpq ends the credentials at the first '/', so a password with '/'
/// made host "u", port 57 and dbname "pw@h/db", and the password reached the target label.
#[test]
fn an_unencoded_slash_in_the_password_is_refused_not_labelled() {
    let m = resolve_err("postgres://u:57/pw@h/db").to_string();
    assert!(
        m.contains("'@' after the host of the URL at character 19") && m.contains("%2F"),
        "{m}"
    );
    assert!(resolve_err("postgres://h/app@corp").to_string().contains("%40"));
    assert_eq!(resolve("postgres://u:57%2Fpw@h/db", &[]).password_for(0), Some("57/pw"));
    assert_eq!(resolve("postgres://u@h/app%40corp", &[]).dbname(), "app@corp");
    // An '@' after the '?' is a value's business (user=alice@corp is a real Azure user name).
    assert_eq!(resolve("postgres://h/db?user=alice@corp", &[]).user(), "alice@corp");
}

#[test]
fn the_password_never_shows() {
    let p = resolve("postgres://alice:hunter2@h/app", &[]);
    for shown in [p.redacted(), format!("{p:?}"), p.target_label()] {
        assert!(!shown.contains("hunter2") && !shown.contains("alice:"), "{shown}");
    }
    assert!(format!("{p:?}").contains("<redacted>"));
    let malformed = [
        "postgres://u:hunter2@h:notaport/db",
        "postgres://u:hun/ter2@h/db",
        "postgres://u:hun:ter2@h:x/db",
        "postgres://u:hunter2@h/db?foo=bar",
        "postgres://u:hunter2@h/db?sslmode=bogus",
        "postgres://u:hunt%zzer2@h/db",
        "postgres://u:hunter2@[::1/db",
        "postgres://u@h/db?password=hunter2&port=hunter2",
        "password=hunter2 sslmode=nope",
        "password=hunter 2",
        "password=hunter2 hunter3",
        "password=hunter2 hunter3=x",
        "password='hunter2",
        "password=hunter2 port=hunter2x",
        "user=u password=hunter2 foo=1",
        "postgresql:/u:hunter2@h/db",
        "jdbc:postgresql://u:hunter2@h/db",
        "postgres://u:57/hunter2@h/db",
        "hunter2",
        "u:hunter2@h/db",
    ];
    for dsn in malformed {
        let err = resolve_err(dsn);
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("hunt") && !text.contains("ter2"), "{dsn} -> {text}");
        }
    }
}
