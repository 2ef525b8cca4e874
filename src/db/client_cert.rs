//! libpq's client certificate: sslcert/sslkey (PGSSLCERT/PGSSLKEY), defaulting to
//! ~/.postgresql/postgresql.crt and postgresql.key, sent only when the certificate file exists.

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
    #[error("private key file {path} is encrypted; dbtool does not support sslpassword: decrypt it (openssl pkey -in {path} -out NEW.key) and keep it at mode 0600")]
    KeyEncrypted { path: String },
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
/// (given or default), else its key, which must exist and be private.
pub fn load(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<ClientCert>, ClientCertError> {
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
        key: load_key(key)?,
    }))
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ClientCertError> {
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
    let text = String::from_utf8_lossy(&pem);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(ClientCertError::KeyEncrypted { path: shown });
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| ClientCertError::NoKey { path: shown })
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
        assert!(load(cert.as_deref(), key.as_deref()).expect("no cert").is_none());
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
        let err = load_key(&key).expect_err("encrypted");
        assert!(err.to_string().contains("sslpassword"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_key(&key).expect_err("world readable");
        assert!(err.to_string().contains("has group or world access"), "{err}");
    }
}
