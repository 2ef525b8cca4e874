//! The TLS stream tokio-postgres runs over: tokio-rustls, plus the tls-server-end-point
//! channel binding (RFC 5929) that SCRAM-SHA-256-PLUS sends. tokio-postgres-rustls 0.13 reads
//! the certificate's signature algorithm from the wrong DER structure, finds none, and so never
//! binds: channel_binding=require could not connect at all.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::{InvalidDnsNameError, ServerName};
use rustls::ClientConfig;
use sha2::{Digest, Sha256, Sha384, Sha512};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use x509_cert::der::Decode;

/// Makes one TLS connector per host name, like tokio-postgres-rustls' `MakeRustlsConnect`.
#[derive(Clone)]
pub struct MakeTls {
    config: Arc<ClientConfig>,
}

impl MakeTls {
    pub fn new(config: ClientConfig) -> MakeTls {
        MakeTls {
            config: Arc::new(config),
        }
    }
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Connector;
    type Error = InvalidDnsNameError;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Connector, InvalidDnsNameError> {
        Ok(Connector {
            name: ServerName::try_from(hostname)?.to_owned(),
            connector: Arc::clone(&self.config).into(),
        })
    }
}

pub struct Connector {
    name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl<S> TlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connect = self.connector.connect(self.name, stream);
        Box::pin(async move { connect.await.map(TlsStream) })
    }
}

pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        match session.peer_certificates().and_then(|c| c.first()) {
            Some(cert) => end_point(cert).map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point),
            None => ChannelBinding::none(),
        }
    }
}

/// RFC 5929 tls-server-end-point: the certificate hashed with its signature's hash, MD5 and
/// SHA-1 raised to SHA-256. None where PostgreSQL offers no binding either (Ed25519, RSA-PSS).
pub(super) fn end_point(der: &[u8]) -> Option<Vec<u8>> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(match cert.signature_algorithm.oid.to_string().as_str() {
        // md5WithRSA, sha1WithRSA, sha256WithRSA, ecdsa-with-SHA1, ecdsa-with-SHA256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2" => Sha256::digest(der).to_vec(),
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => Sha384::digest(der).to_vec(),
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => Sha512::digest(der).to_vec(),
        _ => return None,
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
