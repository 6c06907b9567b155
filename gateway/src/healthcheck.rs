//! `dispatch-gateway healthcheck`: exits 0 when `GET /healthz` on the
//! configured port answers 200 (for container health checks without curl).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asks `/healthz` on the gateway configured by `host` and `port`.
pub async fn check(host: IpAddr, port: u16) -> anyhow::Result<()> {
    let host = match host {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(host, port);
    tokio::time::timeout(Duration::from_secs(5), ask(addr))
        .await
        .context("no answer within 5 s")?
}

async fn ask(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response).await?;
    let status_line = String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    if !status_line.starts_with("HTTP/1.1 200") {
        bail!("unhealthy: {status_line:?}");
    }
    Ok(())
}
