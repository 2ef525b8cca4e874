//! Unit tests of the transport settings: libpq's units, ranges and precedence (the values
//! libpq itself accepts and refuses are pinned against psql in tests/libpq_transport.rs).

use super::super::{ConnParams, MapEnv};
use super::*;
use std::collections::HashMap;

fn resolve(dsn: &str, vars: &[(&str, &str)]) -> Result<ConnParams, ConnInfoError> {
    let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.insert("HOME".into(), "/nonexistent".into());
    map.insert("PGUSER".into(), "u".into());
    ConnParams::resolve(Some(dsn), &MapEnv(map))
}

fn ok(dsn: &str) -> ConnParams {
    resolve(dsn, &[]).unwrap_or_else(|e| panic!("{dsn}: {e}"))
}

#[test]
fn keepalive_values_in_libpq_units() {
    let k = ok(
        "host=h keepalives=1 keepalives_idle=' 30 ' keepalives_interval=+5 keepalives_count=127 tcp_user_timeout=1500",
    )
    .keepalives();
    assert_eq!(
        k,
        Keepalives {
            off: false,
            idle: Some(Duration::from_secs(30)),
            interval: Some(Duration::from_secs(5)),
            count: Some(127),
            tcp_user_timeout: Some(Duration::from_millis(1500)),
        }
    );
    assert_eq!(ok("host=h").keepalives(), Keepalives::default());
    // libpq: 0 or a negative tcp_user_timeout means the system default; any non-zero keepalives is on.
    assert_eq!(
        ok("host=h tcp_user_timeout=-1 keepalives=-1").keepalives(),
        Keepalives::default()
    );
    // keepalives=0: libpq reads none of the others, so a bad one does not matter.
    assert!(
        ok("host=h keepalives=0 keepalives_idle=abc tcp_user_timeout=x")
            .keepalives()
            .off
    );
}

#[test]
fn bad_keepalive_values_name_the_keyword() {
    for (dsn, key) in [
        ("keepalives=yes", "keepalives"),
        ("keepalives_idle=0", "keepalives_idle"),
        ("keepalives_idle=32768", "keepalives_idle"),
        ("keepalives_idle=1.5", "keepalives_idle"),
        ("keepalives_interval=-3", "keepalives_interval"),
        ("keepalives_count=128", "keepalives_count"),
        ("tcp_user_timeout=2147483648", "tcp_user_timeout"),
        ("tcp_user_timeout=10s", "tcp_user_timeout"),
    ] {
        let e = resolve(&format!("host=h {dsn}"), &[]).expect_err(dsn).to_string();
        assert!(e.starts_with(&format!("invalid {key} at character")), "{dsn}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn channel_binding_from_dsn_then_environment() {
    assert_eq!(ok("host=h").channel_binding(), ChannelBinding::Prefer);
    let p = resolve("host=h", &[("PGCHANNELBINDING", "require")]).expect("valid");
    assert_eq!(p.channel_binding(), ChannelBinding::Require);
    let p = resolve("host=h channel_binding=disable", &[("PGCHANNELBINDING", "require")]).expect("valid");
    assert_eq!(p.channel_binding(), ChannelBinding::Disable);
    let e = resolve("host=h", &[("PGCHANNELBINDING", "bogus")]).expect_err("bogus");
    assert!(e.to_string().contains("channel_binding"), "{e}");
}

#[test]
fn direct_tls_needs_require_or_stronger() {
    let p = ok("host=h sslmode=require sslnegotiation=direct");
    assert_eq!(p.ssl_negotiation(), SslNegotiation::Direct);
    assert_eq!(ok("host=h").ssl_negotiation(), SslNegotiation::Postgres);
    for mode in ["disable", "allow", "prefer"] {
        let e = resolve(&format!("host=h sslmode={mode} sslnegotiation=direct"), &[]).expect_err(mode);
        assert!(e.to_string().starts_with(&format!(
            "weak sslmode={mode} may not be used with sslnegotiation=direct"
        )));
    }
    let e = resolve("host=h", &[("PGSSLNEGOTIATION", "direct")]).expect_err("prefer by default");
    assert!(e.to_string().contains("sslnegotiation=direct"), "{e}");
    let e = resolve("host=h sslnegotiation=tls", &[]).expect_err("bogus");
    assert!(e.to_string().starts_with("invalid sslnegotiation"), "{e}");
}

#[test]
fn requiressl_is_rewritten_to_sslmode_as_libpq_stores_it() {
    let mode = |dsn: &str, vars: &[(&str, &str)]| resolve(dsn, vars).expect("valid").sslmode();
    assert_eq!(
        mode("host=h requiressl=1", &[("PGSSLMODE", "disable")]),
        SslMode::Require
    );
    assert_eq!(mode("host=h requiressl=10", &[]), SslMode::Require);
    assert_eq!(
        mode("host=h requiressl=0", &[("PGSSLMODE", "require")]),
        SslMode::Prefer
    );
    assert_eq!(mode("host=h requiressl=1 sslmode=disable", &[]), SslMode::Disable);
    assert_eq!(mode("host=h sslmode=disable requiressl=1", &[]), SslMode::Require);
    assert_eq!(mode("host=h", &[("PGREQUIRESSL", "1")]), SslMode::Require);
    let both = [("PGREQUIRESSL", "1"), ("PGSSLMODE", "disable")];
    assert_eq!(mode("host=h", &both), SslMode::Disable);
}

#[test]
fn crl_files_default_to_root_crl_only_when_neither_is_given() {
    let p = ok("host=h");
    assert_eq!(p.crl_files(), (Some("/nonexistent/.postgresql/root.crl".into()), None));
    let p = resolve("host=h sslcrldir=/d", &[("PGSSLCRL", "/f.crl")]).expect("valid");
    assert_eq!(p.crl_files(), (Some("/f.crl".into()), Some("/d".into())));
    let env: Vec<(String, String)> = p.libpq_env();
    assert!(env.contains(&("PGSSLCRL".into(), "/f.crl".into())));
    assert!(env.contains(&("PGSSLCRLDIR".into(), "/d".into())));
}
