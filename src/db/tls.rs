//! rustls connector with libpq's sslmode semantics: verify nothing, the CA chain, or chain and host name.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::tls_stream::MakeTls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

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
    #[error("root certificate file {path} does not exist; either provide the file (sslrootcert= in --dsn or PGSSLROOTCERT), use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification")]
    RootCertMissing { path: String },
    #[error("weak sslmode={mode} may not be used with sslrootcert=system; use sslmode=verify-full")]
    SystemRootsNeedVerifyFull { mode: SslMode },
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

/// What the server's certificate is checked against.
#[derive(Clone, Default)]
pub struct Roots<'a> {
    pub sslrootcert: Option<&'a Path>,
    /// Locates libpq's default root certificate, ~/.postgresql/root.crt.
    pub home: Option<&'a Path>,
    /// sslcrl and sslcrldir (see [`super::ConnParams::crl_files`]): used, as by libpq, only
    /// when the chain is verified; a file or directory that is not there is no list.
    pub crl: (Option<PathBuf>, Option<PathBuf>),
}

/// A tokio-postgres TLS maker for `mode`, or None for sslmode=disable; `client` is the
/// certificate to present (see [`super::client_cert`]).
pub fn make_tls_connect(
    mode: SslMode,
    roots: &Roots<'_>,
    client: Option<ClientCert>,
) -> Result<Option<MakeTls>, TlsError> {
    Ok(client_config(mode, roots, client)?.map(MakeTls::new))
}

/// The rustls configuration behind [`make_tls_connect`].
pub fn client_config(
    mode: SslMode,
    roots: &Roots<'_>,
    client: Option<ClientCert>,
) -> Result<Option<ClientConfig>, TlsError> {
    let Some(verify) = policy(mode, roots.sslrootcert, roots.home)? else {
        return Ok(None);
    };
    // An explicit provider means nobody has to install a process-wide default first.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(verify, &crls(&roots.crl), &provider)?;
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
    // libpq 16+: the system's roots prove nothing without the host name check.
    if sslrootcert == Some(Path::new("system")) && !matches!(mode, SslMode::VerifyFull | SslMode::Disable) {
        return Err(TlsError::SystemRootsNeedVerifyFull { mode });
    }
    // libpq: verification without a root certificate is refused, not done against any roots.
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_file.is_none() {
        let path = home.map_or_else(
            || "~/.postgresql/root.crt".to_string(),
            |h| h.join(".postgresql").join("root.crt").display().to_string(),
        );
        return Err(TlsError::RootCertMissing { path });
    }
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

/// Roots from a PEM file; "system" means the bundled web PKI roots.
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

/// The revocation lists in the CRL file and in the directory's hashed files (NAME.rN, as
/// `openssl rehash` makes them: the only files OpenSSL's lookup opens). libpq ignores a list it
/// cannot load; so does dbtool, with a warning when the list was named explicitly.
fn crls((file, dir): &(Option<PathBuf>, Option<PathBuf>)) -> Vec<CertificateRevocationListDer<'static>> {
    let mut paths: Vec<PathBuf> = file.iter().filter(|f| f.exists()).cloned().collect();
    if let Some(entries) = dir.as_ref().and_then(|d| std::fs::read_dir(d).ok()) {
        let hashed = |name: &str| {
            name.split_once(".r").is_some_and(|(hash, n)| {
                hash.len() == 8
                    && hash.bytes().all(|c| c.is_ascii_hexdigit())
                    && !n.is_empty()
                    && n.bytes().all(|c| c.is_ascii_digit())
            })
        };
        let mut names: Vec<PathBuf> = (entries.flatten())
            .filter(|e| e.file_name().to_str().is_some_and(hashed))
            .map(|e| e.path())
            .collect();
        names.sort();
        paths.extend(names);
    }
    let mut out = Vec::new();
    for path in paths {
        let loaded = std::fs::read(&path).map_err(|e| e.to_string()).and_then(|pem| {
            CertificateRevocationListDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        });
        match loaded {
            Ok(lists) if !lists.is_empty() => out.extend(lists),
            Ok(_) => tracing::warn!(
                "CRL file {} holds no PEM CRL; not checking revocation with it",
                path.display()
            ),
            Err(e) => tracing::warn!(
                "could not read CRL file {}: {e}; not checking revocation with it",
                path.display()
            ),
        }
    }
    out
}

fn verifier(
    verify: Verify,
    crls: &[CertificateRevocationListDer<'static>],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let webpki = |roots: RootCertStore| {
        // libpq (X509_V_FLAG_CRL_CHECK_ALL): with lists given, every certificate of the chain
        // must be covered by one, as rustls' defaults (whole chain, unknown status denied) do.
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
            .with_crls(crls.iter().cloned())
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
#[path = "tls_tests.rs"]
mod tests;
