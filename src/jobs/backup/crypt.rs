//! Client-side encryption in the age format (age-encryption.org/v1), so the standard `age`
//! tool can decrypt a backup by hand: recipients (public keys) to encrypt to, identities
//! (secret keys) to decrypt with, and the manifest's record of both hashes.
//!
//! Only X25519 keys (`age1…` / `AGE-SECRET-KEY-1…`) are accepted: ssh and plugin keys are
//! refused with a message saying so, rather than half-supported.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::BackupError;

/// What the manifest of an encrypted backup records. `Manifest::sha256` and `files` hash the
/// encrypted bytes (verify needs no key); this hashes what decrypts (restore checks it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// "age".
    pub scheme: String,
    /// The public keys the dump was encrypted to (never a secret key).
    pub recipients: Vec<String>,
    /// sha256 of the plaintext dump (pg_dump's compressed archive).
    pub plaintext_sha256: String,
    pub plaintext_bytes: u64,
}

/// The public keys a backup is encrypted to, checked and deduplicated.
#[derive(Clone, Debug, Default)]
pub struct Recipients(Vec<age::x25519::Recipient>);

fn parse_recipient(text: &str, from: &str) -> Result<age::x25519::Recipient, String> {
    let t = text.trim();
    if t.starts_with("ssh-") {
        return Err(format!(
            "{from}: {} keys are not supported; generate an age key with `age-keygen` and pass its age1… public key",
            t.split_whitespace().next().unwrap_or("ssh")
        ));
    }
    if t.starts_with("AGE-SECRET-KEY-") {
        // Never echo it back: it is a secret key.
        return Err(format!(
            "{from}: this is a secret key (AGE-SECRET-KEY-…); pass its public key (age1…, `age-keygen -y FILE` prints it)"
        ));
    }
    age::x25519::Recipient::from_str(t)
        .map_err(|_| format!("{from}: {t:?} is not an age X25519 public key (age1… as printed by `age-keygen`; plugin recipients are not supported)"))
}

impl Recipients {
    /// `--encrypt-to` values and the lines of `--recipients-file` (age's format: one key a
    /// line, blank lines and `#` comments ignored).
    pub fn load(keys: &[String], file: Option<&Path>) -> Result<Recipients, BackupError> {
        let mut out: Vec<age::x25519::Recipient> = Vec::new();
        fn push(out: &mut Vec<age::x25519::Recipient>, r: age::x25519::Recipient) {
            if !out.iter().any(|o| o.to_string() == r.to_string()) {
                out.push(r);
            }
        }
        for k in keys {
            push(
                &mut out,
                parse_recipient(k, "--encrypt-to").map_err(BackupError::Options)?,
            );
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                BackupError::Options(format!("--recipients-file {}: cannot read it: {e}", path.display()))
            })?;
            let before = out.len();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let from = format!("--recipients-file {} line {}", path.display(), n + 1);
                push(&mut out, parse_recipient(line, &from).map_err(BackupError::Options)?);
            }
            if out.len() == before {
                return Err(BackupError::Options(format!(
                    "--recipients-file {}: no recipient in it (one age1… key a line)",
                    path.display()
                )));
            }
        }
        Ok(Recipients(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The public keys as written (`age1…`), for the manifest.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// A writer that encrypts into `out`; `finish()` it, or the file is truncated.
    pub fn encrypt<W: std::io::Write>(&self, out: W) -> Result<age::stream::StreamWriter<W>, String> {
        let encryptor = age::Encryptor::with_recipients(self.0.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| format!("cannot set up encryption: {e}"))?;
        encryptor
            .wrap_output(out)
            .map_err(|e| format!("cannot write the age header: {e}"))
    }
}

/// Secret keys read from an age identity file (`age-keygen -o FILE`), for restore and verify.
#[derive(Clone)]
pub struct Identities {
    path: PathBuf,
    keys: Vec<age::x25519::Identity>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are secrets: only the file is ever shown.
        write!(f, "Identities({})", self.path.display())
    }
}

impl Identities {
    pub fn load(path: &Path) -> Result<Identities, BackupError> {
        let bad = |why: String| BackupError::Options(format!("--identity {}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let first = text.trim_start();
        if first.starts_with("age-encryption.org/") || first.starts_with("-----BEGIN AGE ENCRYPTED FILE-----") {
            return Err(bad(
                "a passphrase-protected identity file is not supported; decrypt it first (`age -d -o key.txt FILE`) onto a protected path".into(),
            ));
        }
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The line itself is never shown: it may be a secret key with a typo.
            let key = age::x25519::Identity::from_str(line).map_err(|_| {
                bad(format!(
                    "line {} is not an age secret key (AGE-SECRET-KEY-1…); ssh and plugin identities are not supported",
                    n + 1
                ))
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(bad("no AGE-SECRET-KEY-1… line in it".into()));
        }
        Ok(Identities {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// The identity file they were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens an age file for reading: Err(None) when none of these keys is one of its
    /// recipients, Err(Some(why)) when the file is not a readable age file.
    pub fn open<R: std::io::Read>(&self, input: R) -> Result<age::stream::StreamReader<R>, Option<String>> {
        let d = age::Decryptor::new(input).map_err(|e| Some(format!("not a readable age file: {e}")))?;
        d.decrypt(self.keys.iter().map(|k| k as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => None,
                other => Some(format!("cannot decrypt: {other}")),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_age_public_keys_and_secrets_are_never_echoed() {
        let key = age::x25519::Identity::generate();
        let public = key.to_public().to_string();
        let r = Recipients::load(&[public.clone(), public.clone()], None).map_err(|e| e.to_string());
        assert_eq!(r.map(|r| r.names()), Ok(vec![public]));
        let secret = {
            use age::secrecy::ExposeSecret;
            key.to_string().expose_secret().to_string()
        };
        let e = Recipients::load(std::slice::from_ref(&secret), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("secret key") && !e.contains(&secret), "{e}");
        let e = Recipients::load(&["ssh-ed25519 AAAA x".into()], None)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("ssh-ed25519 keys are not supported")));
        assert!(Recipients::load(&["age1nope".into()], None).is_err());
    }
}
