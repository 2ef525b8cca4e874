//! S3-compatible destinations (`s3://bucket/prefix`): the same layout as a backup directory,
//! `PREFIX/ID/FILE…` with `PREFIX/ID/manifest.json` written last, so a backup lists only once
//! every object of it is in place and checked.
//!
//! Reading commands (`backups list|verify|prune`, `restore`) work on a private local mirror
//! (`mirror.rs`): the manifests, or one backup's objects, downloaded into a 0700 temporary
//! directory and read by the same code as a backup directory (checksums, pg_restore).
//! Writing: `stream.rs` streams pg_dump's output (custom format) straight into the store;
//! `upload.rs` ships each file of a sealed local backup (`--copy-to`, directory format); both
//! through `multipart.rs`, whose markers let the next run abort what a killed one left.
//! The metrics state of a `--dest s3://…` run is one object at the top of the prefix
//! (`state.rs`), never under an `ID/`.

pub mod mirror;
pub mod multipart;
pub mod place;
pub mod profile;
pub mod read;
pub mod restore;
pub mod retain;
pub mod source;
pub mod state;
pub mod stream;
pub mod upload;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use super::error::BackupError;

pub const SCHEME: &str = "s3://";

/// An `s3://bucket/prefix` destination and its client, built from the standard AWS settings:
/// the environment, then the shared credentials and config files (`profile.rs`).
#[derive(Clone, Debug)]
pub struct Remote {
    pub store: Arc<AmazonS3>,
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

/// Whether a `--dest`/`--copy-to` value names object storage rather than a directory.
pub fn is_remote(dest: &Path) -> bool {
    dest.to_str().is_some_and(|s| s.starts_with(SCHEME))
}

impl Remote {
    /// Parses `s3://bucket/prefix` and builds the client; a bad URL or setting is one line
    /// naming the fix (never a credential: only the URL and the setting's name are shown).
    pub fn parse(dest: &Path) -> Result<Remote, BackupError> {
        let url = dest.to_str().unwrap_or_default();
        let rest = url.strip_prefix(SCHEME).unwrap_or_default();
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BackupError::Options(format!(
                "--dest {url}: no bucket; write s3://BUCKET/PREFIX"
            )));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(BackupError::Options(format!(
                "--dest {url}: the prefix has an empty, `.` or `..` segment; write s3://BUCKET/a/b"
            )));
        }
        let aws =
            profile::resolve(&crate::db::ProcessEnv).map_err(|e| BackupError::Options(format!("--dest {url}: {e}")))?;
        let built = builder(aws).with_bucket_name(bucket).with_retry(retry()).build();
        let store = built.map_err(|e| {
            BackupError::Options(format!(
                "--dest {url}: {}; check the region, the endpoint URL and the other AWS settings (docs: backup.md, Object storage)",
                redact(&e.to_string())
            ))
        })?;
        Ok(Remote {
            store: Arc::new(store),
            bucket: bucket.to_string(),
            prefix,
        })
    }

    pub fn url(&self) -> String {
        match self.prefix.is_empty() {
            true => format!("{SCHEME}{}", self.bucket),
            false => format!("{SCHEME}{}/{}", self.bucket, self.prefix),
        }
    }

    /// The object key of `rel` (a manifest path, checked by `manifest::inside`) in backup `id`.
    pub fn key(&self, id: &str, rel: &str) -> Key {
        Key::from(self.join(&format!("{id}/{rel}")))
    }

    /// The prefix every object of this destination starts with.
    pub fn root(&self) -> Option<Key> {
        (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()))
    }

    fn join(&self, rest: &str) -> String {
        match self.prefix.is_empty() {
            true => rest.to_string(),
            false => format!("{}/{rest}", self.prefix),
        }
    }

    /// A failed store call as a backup error naming the object and the destination.
    pub fn err(&self, what: &str, e: object_store::Error) -> BackupError {
        BackupError::Remote {
            url: self.url(),
            message: format!(
                "{what}: {}; check the bucket, the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the AWS profile), the region and the endpoint URL",
                redact(&e.to_string())
            ),
        }
    }
}

/// object_store's `from_env` without the settings `profile::resolve` decides (credentials,
/// region, endpoint, addressing), then those; an explicit http:// endpoint (MinIO, a test
/// server) is what the user asked for.
fn builder(aws: profile::Aws) -> AmazonS3Builder {
    use object_store::aws::AmazonS3ConfigKey as K;
    // Client options first: the AWS_* variables may adjust them, not replace them.
    let mut b = AmazonS3Builder::new().with_client_options(ClientOptions::new().with_timeout(Duration::from_secs(120)));
    for (key, value) in std::env::vars_os() {
        let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else {
            continue;
        };
        let Some(name) = key.strip_prefix("AWS_") else { continue };
        match format!("aws_{}", name.to_ascii_lowercase()).parse::<K>() {
            Ok(K::AccessKeyId | K::SecretAccessKey | K::Token | K::Region | K::DefaultRegion)
            | Ok(K::Endpoint | K::VirtualHostedStyleRequest)
            | Err(_) => {}
            Ok(k) => b = b.with_config(k, value),
        }
    }
    if let Some(k) = aws.keys {
        b = b.with_access_key_id(k.id).with_secret_access_key(k.secret);
        if let Some(t) = k.token {
            b = b.with_token(t);
        }
    }
    if let Some(r) = aws.region {
        b = b.with_region(r);
    }
    if let Some(v) = aws.virtual_hosted {
        b = b.with_config(K::VirtualHostedStyleRequest, v);
    }
    if let Some(e) = aws.endpoint {
        b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
    }
    b
}

/// 5xx, timeouts and connection errors are retried with exponential backoff (object_store's
/// rules: only idempotent requests, and multipart parts, which are); 4xx are not.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: 6,
        retry_timeout: Duration::from_secs(180),
    }
}

/// Error texts of the client may quote a request; no secret of the environment survives.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    let env = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].map(|v| std::env::var(v).ok());
    for secret in env.into_iter().flatten().chain(profile::file_secrets()) {
        if secret.len() >= 4 {
            out = out.replace(&secret, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let r = Remote::parse(Path::new("s3://b/x/y/")).expect("parse");
        assert_eq!((r.bucket.as_str(), r.prefix.as_str()), ("b", "x/y"));
        assert_eq!(r.key("app_1", "app.dump").as_ref(), "x/y/app_1/app.dump");
        assert_eq!(r.url(), "s3://b/x/y");
        let r = Remote::parse(Path::new("s3://b")).expect("parse");
        assert_eq!(r.key("i", "m.json").as_ref(), "i/m.json");
    }

    #[test]
    fn refuses_bad_urls() {
        for bad in ["s3://", "s3:///p", "s3://b/../p", "s3://b/a//c"] {
            let e = Remote::parse(Path::new(bad)).expect_err(bad).to_string();
            assert!(e.contains("s3://"), "{e}");
        }
        assert!(is_remote(Path::new("s3://b/p")) && !is_remote(Path::new("/var/s3:")));
    }
}
