//! `--listen`: a minimal HTTP/1.1 responder for `/metrics`, `/healthz` and `/probe`. One
//! request per connection, bounded reads and a read timeout, so a slow client costs nothing
//! but a task; a probe is bounded by its own deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::probe::{Answer, Prober};

/// How long a client may take to send its request line and headers.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds now (so a busy port is an error at start), then serves until `stop`.
pub async fn serve(
    addr: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    prober: Arc<Prober>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}; pick a free port with --listen"))?;
    tracing::info!(%addr, "serving /metrics, /probe and /healthz");
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let (metrics, prober) = (metrics.clone(), prober.clone());
                        tokio::spawn(async move {
                            let _ = respond(stream, &metrics, &prober).await;
                        });
                    }
                }
            }
        }
    }))
}

/// The request line and the one header /probe reads, or `None` for a client too slow or gone.
async fn read_head(stream: &mut TcpStream) -> Option<(String, String, Option<String>)> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    let read = async {
        while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                break;
            }
            len += n;
        }
        Some(())
    };
    tokio::time::timeout(READ_TIMEOUT, read).await.ok()??;
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut lines = head.lines();
    let mut parts = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let timeout = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("x-prometheus-scrape-timeout-seconds")
            .then(|| v.trim().to_string())
    });
    Some((method.to_string(), target.to_string(), timeout))
}

async fn respond(mut stream: TcpStream, metrics: &Metrics, prober: &Prober) -> std::io::Result<()> {
    let Some((method, target, timeout)) = read_head(&mut stream).await else {
        return Ok(());
    };
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let text = |status, body: &[u8]| Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_vec(),
    };
    let answer = match (method.as_str(), path) {
        ("GET" | "HEAD", "/metrics") => {
            let mut body = metrics.render(super::metrics::Sink::Http);
            body.extend_from_slice(prober.render_stats().as_bytes());
            Answer {
                status: "200 OK",
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body,
            }
        }
        ("GET" | "HEAD", "/probe") => prober.handle(query, timeout.as_deref()).await,
        ("GET" | "HEAD", "/healthz") => text("200 OK", b"ok\n"),
        ("GET" | "HEAD", _) => text("404 Not Found", b"not found; try /metrics or /probe?target=NAME\n"),
        _ => text("405 Method Not Allowed", b"GET only\n"),
    };
    let header = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    );
    let write = async {
        stream.write_all(header.as_bytes()).await?;
        if method != "HEAD" {
            stream.write_all(&answer.body).await?;
        }
        stream.shutdown().await
    };
    tokio::time::timeout(READ_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}
