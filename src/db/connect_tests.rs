//! Unit tests of db::connect.

use super::*;
use crate::db::connect_error::Host;
use crate::db::conninfo::MapEnv;
use std::collections::HashMap;
use std::net::IpAddr;
use tokio_postgres::config::Host as PgHost;

fn params(dsn: &str) -> ConnParams {
    let env = MapEnv(HashMap::from([("HOME".to_string(), "/nonexistent".to_string())]));
    ConnParams::resolve(Some(dsn), &env).expect("valid DSN")
}

#[test]
fn default_settings_become_startup_gucs() {
    let gucs = SessionSettings::default().gucs();
    let expected = [
        ("statement_timeout", "5000"),
        ("lock_timeout", "100"),
        ("default_transaction_read_only", "on"),
        ("jit", "off"),
    ];
    let gucs: Vec<(&str, &str)> = gucs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(gucs, expected);
}

#[test]
fn sub_millisecond_limits_round_up_not_to_zero() {
    assert_eq!(millis(Duration::from_micros(500)), "1");
    assert_eq!(millis(Duration::ZERO), "0");
    assert_eq!(millis(Duration::from_millis(1500)), "1500");
}

#[test]
fn sockets_never_use_tls_and_tcp_follows_sslmode() {
    let p =
        params("host=/tmp/sock,db.test,/tmp/x hostaddr=,10.0.0.9, port=5433 user=u sslmode=verify-full options=-cx=1");
    let socket = config(&p, &Host::new(&p, 0), Some("-c a=1"), Duration::from_secs(3));
    assert_eq!(socket.get_ssl_mode(), PgSslMode::Disable);
    assert!(matches!(socket.get_hosts(), [PgHost::Unix(path)] if path.as_os_str() == "/tmp/sock"));
    assert_eq!(
        (socket.get_ports(), socket.get_options()),
        (&[5433][..], Some("-c a=1"))
    );
    assert_eq!(socket.get_application_name(), Some("dbtool"));
    assert_eq!(socket.get_connect_timeout(), Some(&Duration::from_secs(3)));
    let tcp = config(&p, &Host::new(&p, 1), None, Duration::from_secs(3));
    assert_eq!(tcp.get_ssl_mode(), PgSslMode::Require);
    assert!(matches!(tcp.get_hosts(), [PgHost::Tcp(h)] if h == "db.test"));
    assert_eq!(tcp.get_hostaddrs(), [IpAddr::from([10, 0, 0, 9])]);
    assert_eq!(tcp.get_options(), None);
    assert_eq!(params("host=h sslmode=allow").sslmode(), SslMode::Allow);
    let allow = params("host=h sslmode=allow user=u");
    assert_eq!(
        config(&allow, &Host::new(&allow, 0), None, Duration::ZERO).get_ssl_mode(),
        PgSslMode::Prefer
    );
}

#[tokio::test]
async fn unreachable_socket_says_what_to_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = params(&format!(
        "host={} port=5999 user=u password=hunter2",
        dir.path().display()
    ));
    let err = connect(&p, &SessionSettings::default()).await.expect_err("no server");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("could not connect to {}: ", p.redacted())),
        "{text}"
    );
    assert!(
        text.contains("is the server running locally") && text.contains("PGHOST"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
    assert!(!err.is_auth_failure() && !err.is_timeout());
}

#[tokio::test]
async fn abstract_sockets_are_refused_by_name() {
    let p = params("host=@pg port=5999 user=u");
    let text = connect(&p, &SessionSettings::default())
        .await
        .expect_err("refused")
        .to_string();
    assert!(text.contains("abstract unix sockets"), "{text}");
}

#[test]
fn transport_settings_reach_the_tcp_config() {
    let p = params(
        "host=db.test,/tmp/s user=u sslmode=require sslnegotiation=direct channel_binding=require \
         keepalives_idle=30 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=9000",
    );
    let c = config(&p, &Host::new(&p, 0), None, Duration::from_secs(3));
    assert!(c.get_keepalives());
    assert_eq!(c.get_keepalives_idle(), Duration::from_secs(30));
    assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(5)));
    assert_eq!(c.get_keepalives_retries(), Some(3));
    assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_millis(9000)));
    assert_eq!(c.get_ssl_negotiation(), PgSslNegotiation::Direct);
    assert_eq!(c.get_channel_binding(), PgChannelBinding::Require);
    // A socket has no TCP settings and no TLS, but channel binding still applies (and fails there).
    let socket = config(&p, &Host::new(&p, 1), None, Duration::from_secs(3));
    assert_eq!(socket.get_tcp_user_timeout(), None);
    assert_eq!(socket.get_ssl_negotiation(), PgSslNegotiation::Postgres);
    assert_eq!(socket.get_channel_binding(), PgChannelBinding::Require);
    let off = params("host=db.test user=u keepalives=0");
    assert!(!config(&off, &Host::new(&off, 0), None, Duration::from_secs(3)).get_keepalives());
}
