//! A Redis server as a target: its URL resolved once (password from the URL or
//! `REDISCLI_AUTH`; for rediss://, the CA from `?sslrootcert=FILE` as in a PostgreSQL URL, else
//! the system's roots), a label without the password, and a connection bounded by a timeout.

use std::time::Duration;

use redis::IntoConnectionInfo;

use super::Env;

/// Used when the URL says nothing: a health run must not hang on a dead server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis server to check.
#[derive(Clone, Debug)]
pub struct RedisConn {
    info: redis::ConnectionInfo,
    /// The PEM of `sslrootcert`: the only roots trusted for this server when given.
    root_cert: Option<Vec<u8>>,
    /// `host:port/db`, or the socket path: never the password.
    pub label: String,
}

/// A `--redis` URL that does not parse; never quotes the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum RedisUrlError {
    #[error("not a Redis URL ({0}); write redis://[user:password@]host:port[/db], rediss:// for TLS, or unix:///path/to/redis.sock")]
    Parse(String),
    #[error("sslrootcert {path}: {error}; give the PEM file of the CA that signed the Redis server's certificate")]
    RootCert { path: String, error: String },
    #[error("sslrootcert is for TLS: write rediss:// to use it, or drop it")]
    RootCertWithoutTls,
}

/// The URL without its `sslrootcert` parameter, and that parameter. Only a URL that has one
/// is rewritten; the rest is redis-rs' to read.
fn take_sslrootcert(url: &str) -> Result<(String, Option<String>), RedisUrlError> {
    if !url.contains("sslrootcert") {
        return Ok((url.to_string(), None));
    }
    let mut parsed = url::Url::parse(url).map_err(|e| RedisUrlError::Parse(e.to_string()))?;
    let (root, kept): (Vec<_>, Vec<_>) = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .partition(|(k, _)| k == "sslrootcert");
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.to_string(), root.into_iter().next_back().map(|(_, v)| v)))
}

impl RedisConn {
    /// Parses `url`; a URL without a password takes `REDISCLI_AUTH`, as redis-cli does.
    pub fn resolve(url: &str, env: &dyn Env) -> Result<RedisConn, RedisUrlError> {
        let (url, root_path) = take_sslrootcert(url)?;
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| RedisUrlError::Parse(redact(&e.to_string(), None)))?;
        let mut settings = info.redis_settings().clone();
        if settings.password().is_none() {
            if let Some(p) = env.var("REDISCLI_AUTH").filter(|p| !p.is_empty()) {
                settings = settings.set_password(p);
            }
        }
        let label = format!("{}/{}", info.addr(), settings.db());
        let root_cert = match root_path {
            None => None,
            Some(_) if !matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) => {
                return Err(RedisUrlError::RootCertWithoutTls)
            }
            Some(path) => Some(std::fs::read(&path).map_err(|e| RedisUrlError::RootCert {
                path,
                error: e.to_string(),
            })?),
        };
        Ok(RedisConn {
            info: info.set_redis_settings(settings),
            root_cert,
            label,
        })
    }

    /// Connects (TLS for rediss://) and authenticates within `timeout`; every command after
    /// that is bounded by `timeout` too. The error names the server, never the password.
    pub async fn connect(&self, timeout: Duration) -> Result<redis::aio::MultiplexedConnection, String> {
        let client = match &self.root_cert {
            Some(pem) => redis::Client::build_with_tls(
                self.info.clone(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(self.info.clone()),
        }
        .map_err(|e| self.error(&e))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| {
                let message = self.error(&e);
                if message.contains("certificate") && message.contains("invalid") {
                    format!("{message}; the server's certificate is not trusted: give the CA that signed it as rediss://HOST:PORT?sslrootcert=/path/to/ca.crt")
                } else {
                    message
                }
            })
    }

    /// The ACL user it logs in as (`default` when the URL names none).
    pub fn user(&self) -> &str {
        self.info.redis_settings().username().unwrap_or("default")
    }

    /// A failed command's message, without the password.
    pub fn error(&self, e: &redis::RedisError) -> String {
        redact(&e.to_string(), self.info.redis_settings().password())
    }
}

/// Removes a password from a message, should a library ever echo it.
fn redact(message: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => message.replace(p, "********"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::MapEnv;

    #[test]
    fn the_password_comes_from_the_url_or_rediscli_auth_and_never_reaches_the_label() {
        let env = MapEnv([("REDISCLI_AUTH".to_string(), "from-env".to_string())].into());
        let r = RedisConn::resolve("redis://:s3cret@127.0.0.1:6380/2", &env).expect("parses");
        assert_eq!(r.label, "127.0.0.1:6380/2");
        assert_eq!(r.info.redis_settings().password(), Some("s3cret"));
        let r = RedisConn::resolve("redis://127.0.0.1", &env).expect("parses");
        assert_eq!(r.info.redis_settings().password(), Some("from-env"));
        assert_eq!(r.label, "127.0.0.1:6379/0");
        let e = RedisConn::resolve("http://:pw@x", &env).expect_err("not redis");
        assert!(!e.to_string().contains("pw@"), "{e}");
    }

    #[test]
    fn sslrootcert_is_read_from_the_url_and_only_for_tls() {
        let env = MapEnv(Default::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").expect("write");
        let url = format!("rediss://:s3cret@db:6380/1?sslrootcert={}", ca.display());
        let r = RedisConn::resolve(&url, &env).expect("parses");
        assert_eq!(r.root_cert.as_deref(), Some(&b"-----BEGIN CERTIFICATE-----\n"[..]));
        assert_eq!(r.label, "db:6380/1");
        assert_eq!(r.info.redis_settings().password(), Some("s3cret"));
        let e = RedisConn::resolve("rediss://db?sslrootcert=/nonexistent/ca.crt", &env).expect_err("no file");
        assert!(e.to_string().starts_with("sslrootcert /nonexistent/ca.crt: "), "{e}");
        let e = RedisConn::resolve(&format!("redis://db?sslrootcert={}", ca.display()), &env).expect_err("no TLS");
        assert!(e.to_string().contains("rediss://"), "{e}");
    }
}
