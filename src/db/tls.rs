//! rustls connector with libpq's sslmode semantics: verify nothing, the CA chain, or chain and host name.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::client_cert::{ClientCert, ClientCertError};
use super::conninfo::SslMode;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read sslrootcert file {path}: {cause}; check sslrootcert= in --dsn or PGSSLROOTCERT")]
    RootCertUnreadable { path: String, cause: std::io::Error },
    #[error("sslrootcert file {path} is not valid PEM ({detail}); it must hold -----BEGIN CERTIFICATE----- blocks")]
    BadPem { path: String, detail: String },
    #[error("sslrootcert file {path} holds no usable CA certificate; put the server's CA certificate in it as PEM")]
    NoCertificates { path: String },
    #[error(transparent)]
    ClientCert(#[from] ClientCertError),
    #[error("could not set up TLS: {0}")]
    Setup(String),
}

/// What a TLS connection proves about the server.
enum Verify {
    /// Encryption only: protects against passive eavesdropping, not against an impostor.
    Nothing,
    /// The chain ends at a trusted root; any host name is accepted.
    Ca(RootCertStore),
    /// Chain and host name, as for HTTPS.
    Full(RootCertStore),
}

/// A tokio-postgres TLS maker for `mode`, or None for sslmode=disable.
///
/// `home` locates libpq's default root certificate, ~/.postgresql/root.crt; `client` is the
/// certificate to present (see [`super::client_cert`]).
pub fn make_tls_connect(
    mode: SslMode,
    sslrootcert: Option<&Path>,
    home: Option<&Path>,
    client: Option<ClientCert>,
) -> Result<Option<MakeRustlsConnect>, TlsError> {
    Ok(client_config(mode, sslrootcert, home, client)?.map(MakeRustlsConnect::new))
}

/// The rustls configuration behind [`make_tls_connect`].
pub fn client_config(
    mode: SslMode,
    sslrootcert: Option<&Path>,
    home: Option<&Path>,
    client: Option<ClientCert>,
) -> Result<Option<ClientConfig>, TlsError> {
    let Some(verify) = policy(mode, sslrootcert, home)? else {
        return Ok(None);
    };
    // An explicit provider means nobody has to install a process-wide default first.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(verify, &provider)?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => builder
            .with_client_auth_cert(c.chain, c.key)
            .map_err(|e| TlsError::Setup(format!("the client certificate and key do not fit together: {e}")))?,
    };
    // PostgreSQL 17 checks this ALPN name when a client offers ALPN; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(config))
}

fn policy(mode: SslMode, sslrootcert: Option<&Path>, home: Option<&Path>) -> Result<Option<Verify>, TlsError> {
    let default_root = home
        .map(|h| h.join(".postgresql").join("root.crt"))
        .filter(|p| p.exists());
    let root_file = sslrootcert.map(Path::to_path_buf).or(default_root);
    Ok(Some(match mode {
        SslMode::Disable => return Ok(None),
        SslMode::Allow | SslMode::Prefer => Verify::Nothing,
        // libpq: with a root certificate available, require behaves like verify-ca.
        SslMode::Require => match root_file {
            Some(file) => Verify::Ca(roots(Some(&file))?),
            None => Verify::Nothing,
        },
        SslMode::VerifyCa => Verify::Ca(roots(root_file.as_deref())?),
        SslMode::VerifyFull => Verify::Full(roots(root_file.as_deref())?),
    }))
}

/// Roots from a PEM file; "system" or no file at all means the bundled web PKI roots.
fn roots(file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let path = match file {
        Some(p) if p != Path::new("system") => p,
        _ => {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        }
    };
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|cause| TlsError::RootCertUnreadable {
        path: shown.clone(),
        cause,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::NoCertificates { path: shown });
    }
    Ok(store)
}

fn verifier(verify: Verify, provider: &Arc<CryptoProvider>) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let webpki = |roots: RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))
    };
    Ok(match verify {
        Verify::Nothing => Arc::new(EncryptOnly {
            algorithms: provider.signature_verification_algorithms,
        }),
        Verify::Ca(roots) => Arc::new(CaOnly { inner: webpki(roots)? }),
        Verify::Full(roots) => webpki(roots)?,
    })
}

/// sslmode=require without a root certificate: any certificate, but the handshake must still be
/// signed by its key so the session keys are not trivially forged.
struct EncryptOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for EncryptOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptOnly")
    }
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// verify-ca: full web PKI verification, except that a host-name mismatch is forgiven.
/// rustls checks the name only after the chain, so that error implies a trusted chain.
#[derive(Debug)]
struct CaOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    // EC P-256 test certificates valid 2026-2126: a CA, a leaf it signed for db.example.test and
    // localhost, and an unrelated self-signed CA.
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIUcTHRqnLXY31CtqP6TuHgilVs2nswCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOZGJ0b29sIHRlc3QgQ0EwIBcNMjYxMTIxMDUyMDA2WhgPMjEy
NjEwMjgwNTIwMDZaMBkxFzAVBgNVBAMMDmRidG9vbCB0ZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAE+bWYY9g8IquMzUKdykJwfViXM1Jub+2dLbws6zYg
TDjT9sT/ywS4uYP3tPyvkOvhYx9zX6t2KcXtAAinq5jPr6NjMGEwHQYDVR0OBBYE
FM34eVtWIzfSwV1XclCgVnXfavaOMB8GA1UdIwQYMBaAFM34eVtWIzfSwV1XclCg
VnXfavaOMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49
BAMCA0gAMEUCIQDDgXrP3QYFjvVdJRlh8MNuj2KfeHwF8L5CRtHTNljrZAIgUspj
eZHEnnMox9Tynz12XmTsIKwPm8UZxj7GOWhzdAc=
-----END CERTIFICATE-----
";
    const LEAF: &str = "-----BEGIN CERTIFICATE-----
MIIBwzCCAWigAwIBAgIUO/GF/NArckDh9qsxIcGbk25JHqwwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOZGJ0b29sIHRlc3QgQ0EwIBcNMjYxMTIxMDUyMDA2WhgPMjEy
NjEwMjgwNTIwMDZaMBoxGDAWBgNVBAMMD2RiLmV4YW1wbGUudGVzdDBZMBMGByqG
SM49AgEGCCqGSM49AwEHA0IABCkftoYsXOUI05dvNcrfebLuDyRVjwFtTM0mOzJi
DeU1zUtwBO0ih2vSaH4oOKHOMi9pGZ8E3p4w6htl+nx8WjujgYowgYcwJQYDVR0R
BB4wHIIPZGIuZXhhbXBsZS50ZXN0gglsb2NhbGhvc3QwCQYDVR0TBAIwADATBgNV
HSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUz6gd/Fl//F3uYQeRlXrXJBeknbow
HwYDVR0jBBgwFoAUzfh5W1YjN9LBXVdyUKBWdd9q9o4wCgYIKoZIzj0EAwIDSQAw
RgIhANVO+LitBIzwGWr3zdOCwBZgWeJ948ZSsm3NKrf9qAWZAiEAiI4QNZ4xCSG1
GomDqA2GR3pcs+EvDT8iixPsYwfqpmQ=
-----END CERTIFICATE-----
";
    const OTHER: &str = "-----BEGIN CERTIFICATE-----
MIIBfjCCASOgAwIBAgIUJ25a+YCQgHomTin4/DHvX/FfVYgwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIb3RoZXIgQ0EwIBcNMjYxMTIxMDUyMDA2WhgPMjEyNjEwMjgw
NTIwMDZaMBMxETAPBgNVBAMMCG90aGVyIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEwUGm6AwJBWJtQJgYdzoLmz61goWensRmMcNqFabHZkIYj8hZ5C9q9Q8z
rv5gFD/YmzUGYi5Xb/V3eI7/fRoHgaNTMFEwHQYDVR0OBBYEFLZIau5CtQRiNGf6
CKqiTwN5PozwMB8GA1UdIwQYMBaAFLZIau5CtQRiNGf6CKqiTwN5PozwMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAP2XxthrXMhViD+igfurLTAe
xsnLSENkasTe6JML3mynAiEAjOOVtsnDStCdfvrsOVPBVAOMhEMa+QRR52MfUmU/
llo=
-----END CERTIFICATE-----
";

    fn cert(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("test certificate")
    }

    /// 2030-01-01, inside the test certificates' validity whatever the machine's clock says.
    fn now() -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(1_893_456_000))
    }

    fn check(mode: SslMode, rootcert: &Path, leaf: &str, name: &str) -> bool {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify = policy(mode, Some(rootcert), None).expect("policy").expect("tls on");
        let v = verifier(verify, &provider).expect("verifier");
        let name = ServerName::try_from(name.to_string()).expect("server name");
        v.verify_server_cert(&cert(leaf), &[], &name, &[], now()).is_ok()
    }

    fn root_file(dir: &tempfile::TempDir, pem: &str) -> PathBuf {
        let path = dir.path().join("root.crt");
        std::fs::write(&path, pem).expect("write root cert");
        path
    }

    #[test]
    fn verify_ca_ignores_the_name_but_not_the_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = root_file(&dir, CA);
        assert!(check(SslMode::VerifyCa, &roots, LEAF, "db.example.test"));
        assert!(check(SslMode::VerifyCa, &roots, LEAF, "elsewhere.test"));
        assert!(check(SslMode::VerifyCa, &roots, LEAF, "10.1.2.3"));
        assert!(!check(SslMode::VerifyCa, &roots, OTHER, "db.example.test"));
    }

    #[test]
    fn verify_full_checks_chain_and_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = root_file(&dir, CA);
        assert!(check(SslMode::VerifyFull, &roots, LEAF, "db.example.test"));
        assert!(!check(SslMode::VerifyFull, &roots, LEAF, "elsewhere.test"));
        assert!(!check(SslMode::VerifyFull, &roots, OTHER, "db.example.test"));
    }

    #[test]
    fn a_root_file_may_hold_several_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = root_file(&dir, &format!("{OTHER}\n{CA}"));
        assert!(check(SslMode::VerifyFull, &roots, LEAF, "localhost"));
    }

    #[test]
    fn require_verifies_the_ca_when_a_root_cert_exists_as_in_libpq() {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = root_file(&dir, CA);
        assert!(!check(SslMode::Require, &roots, OTHER, "db.example.test"));
        let home = tempfile::tempdir().expect("tempdir");
        let verify = policy(SslMode::Require, None, Some(home.path())).expect("policy");
        assert!(matches!(verify, Some(Verify::Nothing)), "no root.crt: encrypt only");
        std::fs::create_dir(home.path().join(".postgresql")).expect("mkdir");
        std::fs::write(home.path().join(".postgresql/root.crt"), CA).expect("write");
        let verify = policy(SslMode::Require, None, Some(home.path())).expect("policy");
        assert!(matches!(verify, Some(Verify::Ca(_))));
    }

    #[test]
    fn encrypt_only_accepts_any_certificate() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v = verifier(Verify::Nothing, &provider).expect("verifier");
        let name = ServerName::try_from("x.test").expect("name");
        assert!(v.verify_server_cert(&cert(OTHER), &[], &name, &[], now()).is_ok());
        assert!(!v.supported_verify_schemes().is_empty());
    }

    #[test]
    fn modes_build_configs_and_disable_builds_none() {
        assert!(client_config(SslMode::Disable, None, None, None)
            .expect("disable")
            .is_none());
        for mode in [
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert!(
                client_config(mode, None, None, None).expect("config").is_some(),
                "{mode}"
            );
        }
    }

    #[test]
    fn root_file_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.crt");
        let err = client_config(SslMode::VerifyFull, Some(&missing), None, None).expect_err("missing");
        assert!(err.to_string().contains(&missing.display().to_string()), "{err}");
        let junk = root_file(&dir, "not a certificate\n");
        let err = client_config(SslMode::VerifyCa, Some(&junk), None, None).expect_err("junk");
        assert!(matches!(err, TlsError::NoCertificates { .. }), "{err}");
        assert!(err.to_string().contains(&junk.display().to_string()), "{err}");
    }
}
