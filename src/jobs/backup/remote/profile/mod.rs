//! The AWS settings of an `s3://` destination, resolved as the AWS SDKs and CLI do: the
//! environment first, then the profile (`AWS_PROFILE`, default `default`) of the shared
//! credentials file, then of the shared config file. object_store reads only the environment.
//!
//! Environment credentials win as a whole set (`AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`,
//! with `AWS_SESSION_TOKEN`): a file's keys or token never mix with them. Within one profile a
//! key of the credentials file beats the same key of the config file.

mod file;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::db::Env;

use super::super::error::BackupError;
use file::{Kind, Parsed, Section};

/// Profile settings that fetch credentials by other means; dbtool refuses them rather than
/// silently falling back to other credentials.
const UNSUPPORTED: [&str; 10] = [
    "credential_process",
    "role_arn",
    "source_profile",
    "credential_source",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "sso_role_name",
    "login_session",
];

/// Everything an S3 client needs from the environment and the shared files.
#[derive(Debug, Default, PartialEq)]
pub struct Aws {
    /// None: object_store's own chain (web identity, container, instance metadata).
    pub keys: Option<Keys>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`'s value, or the profile's `s3 = addressing_style`.
    pub virtual_hosted: Option<String>,
}

#[derive(PartialEq)]
pub struct Keys {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

/// Never the key id, the secret or the token.
impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys { .. }")
    }
}

/// Secrets read from a file, for `redact` (the environment's are read there directly).
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn file_secrets() -> Vec<String> {
    SECRETS.lock().map(|s| s.clone()).unwrap_or_default()
}

/// The two files and the profile in force.
struct Files {
    profile: String,
    explicit: bool,
    config: Option<(PathBuf, Parsed)>,
    credentials: Option<(PathBuf, Parsed)>,
}

pub fn resolve(env: &dyn Env) -> Result<Aws, BackupError> {
    let var = |k: &str| env.var(k).filter(|v| !v.is_empty());
    let files = Files::load(env)?;
    let profile = files.profile()?;
    let get = |k: &str| profile.iter().find_map(|(s, path)| Some((s.get(k)?.as_str(), *path)));
    let keys = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some(Keys {
            id,
            secret,
            token: var("AWS_SESSION_TOKEN"),
        }),
        (Some(_), None) | (None, Some(_)) => {
            return Err(BackupError::Options(
                "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set: set both, or neither to use the shared credentials file".into(),
            ))
        }
        (None, None) => files.keys(&profile)?,
    };
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .or_else(|| get("region").map(|(v, _)| v.to_string()));
    let virtual_hosted = match var("AWS_VIRTUAL_HOSTED_STYLE_REQUEST") {
        Some(v) => Some(v),
        None => match get("s3").and_then(|(v, p)| Some((file::sub(v, "addressing_style")?, p))) {
            None | Some(("auto", _)) => None,
            Some(("virtual", _)) => Some("true".into()),
            Some(("path", _)) => Some("false".into()),
            Some((_, path)) => {
                return Err(files.err(
                    path,
                    "s3 addressing_style is not path, virtual or auto; write one of them",
                ))
            }
        },
    };
    let ignore = var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .or_else(|| get("ignore_configured_endpoint_urls").map(|(v, _)| v.to_string()))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = match ignore {
        true => None,
        false => var("AWS_ENDPOINT_URL_S3")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| var("AWS_ENDPOINT"))
            .or_else(|| files.service_endpoint(get("services").map(|(v, _)| v)))
            .or_else(|| get("endpoint_url").map(|(v, _)| v.to_string())),
    };
    Ok(Aws {
        keys,
        region,
        endpoint: endpoint.filter(|e| !e.is_empty()),
        virtual_hosted,
    })
}

impl Files {
    fn load(env: &dyn Env) -> Result<Files, BackupError> {
        let var = |k: &str| env.var(k).filter(|v| !v.is_empty());
        let home = var("HOME")
            .map(PathBuf::from)
            .or_else(crate::db::conninfo::os_user_home);
        let path = |var_name: &str, default: &str| match var(var_name) {
            Some(p) => Some(expand(&p, home.as_deref())),
            None => home.as_ref().map(|h| h.join(".aws").join(default)),
        };
        let explicit = var("AWS_PROFILE");
        Ok(Files {
            profile: explicit.clone().unwrap_or_else(|| "default".into()),
            explicit: explicit.is_some(),
            config: read(path("AWS_CONFIG_FILE", "config"), Kind::Config, "AWS_CONFIG_FILE")?,
            credentials: read(
                path("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
                Kind::Credentials,
                "AWS_SHARED_CREDENTIALS_FILE",
            )?,
        })
    }

    /// The profile's sections, the credentials file's first: each key is looked up in order.
    fn profile(&self) -> Result<Vec<(&Section, &Path)>, BackupError> {
        let found: Vec<(&Section, &Path)> = [&self.credentials, &self.config]
            .into_iter()
            .flatten()
            .filter_map(|(path, parsed)| Some((parsed.profiles.get(&self.profile)?, path.as_path())))
            .collect();
        if found.is_empty() && self.explicit {
            let name = &self.profile;
            let looked = [&self.credentials, &self.config]
                .into_iter()
                .flatten()
                .map(|(p, _)| p.display().to_string())
                .collect::<Vec<_>>();
            let looked = match looked.is_empty() {
                true => "no shared config or credentials file exists".to_string(),
                false => format!("not in {}", looked.join(" nor ")),
            };
            return Err(BackupError::Options(format!(
                "AWS_PROFILE={name}: no such profile ({looked}); add [{name}] to the credentials file or [profile {name}] to the config file, or unset AWS_PROFILE"
            )));
        }
        Ok(found)
    }

    /// The profile's static keys; a setting that gets credentials another way is refused.
    fn keys(&self, profile: &[(&Section, &Path)]) -> Result<Option<Keys>, BackupError> {
        for (section, path) in profile {
            if let Some(k) = UNSUPPORTED.iter().find(|k| section.contains_key(**k)) {
                return Err(self.err(path, &format!(
                    "{k} is not supported; export the credentials in the environment instead (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, e.g. from `aws configure export-credentials --profile {} --format env`)",
                    self.profile
                )));
            }
        }
        let get = |k: &str| {
            profile
                .iter()
                .find_map(|(s, p)| Some((s.get(k).filter(|v| !v.is_empty())?, *p)))
        };
        let (id, secret) = match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some((id, _)), Some((secret, _))) => (id.clone(), secret.clone()),
            (None, None) => return Ok(None),
            (Some((_, p)), None) => return Err(self.err(p, "aws_access_key_id without aws_secret_access_key; add it")),
            (None, Some((_, p))) => return Err(self.err(p, "aws_secret_access_key without aws_access_key_id; add it")),
        };
        let token = get("aws_session_token").map(|(t, _)| t.clone());
        if let Ok(mut known) = SECRETS.lock() {
            for s in [Some(&secret), token.as_ref()].into_iter().flatten() {
                if !known.contains(s) {
                    known.push(s.clone());
                }
            }
        }
        Ok(Some(Keys { id, secret, token }))
    }

    /// `[services NAME]`'s `s3 =` `endpoint_url`, for the profile's `services = NAME`.
    fn service_endpoint(&self, services: Option<&str>) -> Option<String> {
        let (_, config) = self.config.as_ref()?;
        let s3 = config.services.get(services?)?.get("s3")?;
        file::sub(s3, "endpoint_url").map(String::from)
    }

    fn err(&self, path: &Path, what: &str) -> BackupError {
        BackupError::Options(format!("{}: profile {}: {what}", path.display(), self.profile))
    }
}

/// `~/` at the start of a file setting is the home directory, as in the AWS CLI.
fn expand(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(path),
    }
}

/// A missing file is no profile (as in the SDKs); an unreadable or malformed one is an error.
fn read(path: Option<PathBuf>, kind: Kind, var: &str) -> Result<Option<(PathBuf, Parsed)>, BackupError> {
    let Some(path) = path else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BackupError::Options(format!(
                "cannot read {}: {e}; fix its permissions, or set {var} to another file",
                path.display()
            )))
        }
    };
    match file::parse(&text, kind) {
        Ok(parsed) => Ok(Some((path, parsed))),
        Err((line, what)) => Err(BackupError::Options(format!(
            "{}:{line}: {what}; fix that line (the format: docs backup.md, Object storage)",
            path.display()
        ))),
    }
}
