//! A Redis server as a target: its URL resolved once (password from the URL or
//! `REDISCLI_AUTH`), a label without the password, and a connection bounded by a timeout.

use std::time::Duration;

use redis::IntoConnectionInfo;

use super::Env;

/// Used when the URL says nothing: a health run must not hang on a dead server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis server to check.
#[derive(Clone, Debug)]
pub struct RedisConn {
    info: redis::ConnectionInfo,
    /// `host:port/db`, or the socket path: never the password.
    pub label: String,
}

/// A `--redis` URL that does not parse; never quotes the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum RedisUrlError {
    #[error("not a Redis URL ({0}); write redis://[user:password@]host:port[/db], rediss:// for TLS, or unix:///path/to/redis.sock")]
    Parse(String),
}

impl RedisConn {
    /// Parses `url`; a URL without a password takes `REDISCLI_AUTH`, as redis-cli does.
    pub fn resolve(url: &str, env: &dyn Env) -> Result<RedisConn, RedisUrlError> {
        let info = url
            .into_connection_info()
            .map_err(|e| RedisUrlError::Parse(redact(&e.to_string(), None)))?;
        let mut settings = info.redis_settings().clone();
        if settings.password().is_none() {
            if let Some(p) = env.var("REDISCLI_AUTH").filter(|p| !p.is_empty()) {
                settings = settings.set_password(p);
            }
        }
        let label = format!("{}/{}", info.addr(), settings.db());
        Ok(RedisConn {
            info: info.set_redis_settings(settings),
            label,
        })
    }

    /// Connects (TLS for rediss://) and authenticates within `timeout`; every command after
    /// that is bounded by `timeout` too. The error names the server, never the password.
    pub async fn connect(&self, timeout: Duration) -> Result<redis::aio::MultiplexedConnection, String> {
        let client = redis::Client::open(self.info.clone()).map_err(|e| self.error(&e))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.error(&e))
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
}
