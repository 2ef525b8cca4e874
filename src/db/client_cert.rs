//! libpq's client certificate: sslcert/sslkey (PGSSLCERT/PGSSLKEY), defaulting to
//! ~/.postgresql/postgresql.crt and postgresql.key, sent only when the certificate file exists;
//! the key's permissions checked as libpq does, its PEM read by [`super::client_key`].

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum ClientCertError {
    #[error("could not read client certificate file {path}: {cause}; check sslcert= in --dsn or PGSSLCERT")]
    CertUnreadable { path: String, cause: std::io::Error },
    #[error(
        "client certificate file {path} holds no PEM certificate; it must hold -----BEGIN CERTIFICATE----- blocks"
    )]
    NoCertificate { path: String },
    #[error("certificate present, but not private key file {path}; set sslkey= in --dsn or PGSSLKEY to the certificate's key")]
    KeyMissing { path: String },
    #[error("could not read private key file {path}: {cause}; check sslkey= in --dsn or PGSSLKEY")]
    KeyUnreadable { path: String, cause: std::io::Error },
    #[error("private key file {path} is not a regular file; point sslkey= or PGSSLKEY at the key file")]
    KeyNotRegular { path: String },
    #[error(
        "private key file {path} has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root (chmod 600 {path})"
    )]
    KeyPermissions { path: String },
    #[error("private key file {path} is encrypted and no sslpassword was given; dbtool never prompts for it: add sslpassword= to --dsn or to the service's entry in pg_service.conf (libpq has no environment variable for it), or sslpassword_file to a probe's [auth.NAME] section")]
    KeyNeedsPassword { path: String },
    #[error("could not load private key file {path}: bad decrypt; check sslpassword= in --dsn or the service file, or a probe's [auth.NAME] sslpassword_file")]
    KeyBadPassword { path: String },
    #[error("private key file {path} uses OpenSSL's legacy PEM encryption (Proc-Type: 4,ENCRYPTED), which dbtool cannot read; convert it to PKCS#8 with: {convert}")]
    KeyLegacyEncrypted { path: String, convert: String },
    #[error("private key file {path} is encrypted with a scheme dbtool cannot decrypt ({scheme}; dbtool reads PBES2 with AES-CBC and PBKDF2-HMAC-SHA-2 or scrypt); re-encrypt it with: {convert}")]
    KeyScheme {
        path: String,
        scheme: String,
        convert: String,
    },
    #[error("private key file {path} holds a malformed ENCRYPTED PRIVATE KEY block ({cause}); check sslkey= in --dsn or PGSSLKEY")]
    KeyMalformed { path: String, cause: String },
    #[error("private key file {path} holds no PEM private key; it must hold a -----BEGIN PRIVATE KEY----- (or RSA/EC) block")]
    NoKey { path: String },
}

/// A certificate chain and its key, ready for rustls.
pub struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The files libpq would use: the given ones, else the defaults under `home`.
pub fn files(sslcert: Option<&Path>, sslkey: Option<&Path>, home: Option<&Path>) -> (Option<PathBuf>, Option<PathBuf>) {
    let dir = home.map(|h| h.join(".postgresql"));
    let cert = sslcert
        .map(Path::to_path_buf)
        .or_else(|| dir.as_ref().map(|d| d.join("postgresql.crt")));
    let key = sslkey
        .map(Path::to_path_buf)
        .or_else(|| dir.as_ref().map(|d| d.join("postgresql.key")));
    (cert, key)
}

/// Loads the client certificate as libpq does: none when the certificate file does not exist
/// (given or default), else its key, which must exist and be private; an encrypted key is
/// decrypted with `password` (sslpassword).
pub fn load(
    cert: Option<&Path>,
    key: Option<&Path>,
    password: Option<&str>,
) -> Result<Option<ClientCert>, ClientCertError> {
    let Some(cert) = cert else { return Ok(None) };
    let shown = cert.display().to_string();
    let pem = match std::fs::read(cert) {
        Ok(pem) => pem,
        // libpq: a missing certificate file just means no certificate is sent.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => return Err(ClientCertError::CertUnreadable { path: shown, cause }),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(ClientCertError::NoCertificate { path: shown });
    }
    let Some(key) = key else {
        return Err(ClientCertError::KeyMissing {
            path: "(none: no sslkey and no home directory)".to_string(),
        });
    };
    Ok(Some(ClientCert {
        chain,
        key: load_key(key, password)?,
    }))
}

fn load_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>, ClientCertError> {
    let shown = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ClientCertError::KeyMissing { path: shown });
        }
        Err(cause) => return Err(ClientCertError::KeyUnreadable { path: shown, cause }),
    };
    if !meta.is_file() {
        return Err(ClientCertError::KeyNotRegular { path: shown });
    }
    if !private_enough(meta.uid(), meta.mode()) {
        return Err(ClientCertError::KeyPermissions { path: shown });
    }
    let pem = std::fs::read(path).map_err(|cause| ClientCertError::KeyUnreadable {
        path: shown.clone(),
        cause,
    })?;
    super::client_key::parse(&pem, &shown, password)
}

/// libpq's rule (fe-secure-openssl.c): a root-owned key may be u=rw,g=r (0640); any other
/// owner's must have no group or world bits at all.
fn private_enough(uid: u32, mode: u32) -> bool {
    const S_IRWXG: u32 = 0o070;
    const S_IRWXO: u32 = 0o007;
    const S_IWGRP: u32 = 0o020;
    const S_IXGRP: u32 = 0o010;
    let forbidden = if uid == 0 {
        S_IWGRP | S_IXGRP | S_IRWXO
    } else {
        S_IRWXG | S_IRWXO
    };
    mode & forbidden == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_permissions_follow_libpq() {
        assert!(private_enough(1000, 0o100600));
        assert!(private_enough(1000, 0o100400));
        assert!(!private_enough(1000, 0o100640));
        assert!(!private_enough(1000, 0o100604));
        assert!(private_enough(0, 0o100640));
        assert!(!private_enough(0, 0o100660));
        assert!(!private_enough(0, 0o100644));
    }

    #[test]
    fn defaults_live_under_home_and_a_missing_certificate_sends_none() {
        let home = tempfile::tempdir().expect("tempdir");
        let (cert, key) = files(None, None, Some(home.path()));
        assert_eq!(cert, Some(home.path().join(".postgresql/postgresql.crt")));
        assert_eq!(key, Some(home.path().join(".postgresql/postgresql.key")));
        assert!(load(cert.as_deref(), key.as_deref(), None).expect("no cert").is_none());
    }

    #[test]
    fn encrypted_and_public_keys_are_refused_by_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("k.key");
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = load_key(&key, None).expect_err("encrypted");
        assert!(err.to_string().contains("no sslpassword was given"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_key(&key, Some("pw")).expect_err("world readable");
        assert!(err.to_string().contains("has group or world access"), "{err}");
    }
}
