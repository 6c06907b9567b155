//! The proxy's side of HTTP/1.1: reading one request head (bounded in size
//! and time) and answering with a status line and a one-line reason.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::audit::{Refusal, Refused};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Headers accepted in a request.
const MAX_HEADERS: usize = 32;

/// A request head.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The request target (`host:port` for `CONNECT`).
    pub target: String,
    pub proxy_authorization: Option<Vec<u8>>,
    /// Bytes that followed the head (a client may send its TLS hello
    /// before our answer).
    pub early: Vec<u8>,
}

/// Reads a request head within `timeout`.
pub async fn read_head(stream: &mut TcpStream, timeout: Duration) -> Result<Head, Refused> {
    match tokio::time::timeout(timeout, read(stream)).await {
        Ok(result) => result,
        Err(_) => Err(Refused::new(
            Refusal::BadRequest,
            "no complete request in time",
        )),
    }
}

async fn read(stream: &mut TcpStream) -> Result<Head, Refused> {
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0; 1024];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| Refused::new(Refusal::BadRequest, e.to_string()))?;
        if n == 0 {
            return Err(Refused::new(Refusal::BadRequest, "closed before a request"));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(head) = parse(&buffer)? {
            return Ok(head);
        }
        if buffer.len() > MAX_HEAD {
            return Err(Refused::new(
                Refusal::BadRequest,
                format!("request head over {MAX_HEAD} bytes"),
            ));
        }
    }
}

/// The head, once `buffer` holds all of it.
fn parse(buffer: &[u8]) -> Result<Option<Head>, Refused> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let length = match request.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Refused::new(Refusal::BadRequest, e.to_string())),
    };
    let proxy_authorization = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|h| h.value.to_vec());
    Ok(Some(Head {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        proxy_authorization,
        early: buffer[length..].to_vec(),
    }))
}

/// `200 Connection established`: the tunnel is open.
pub async fn established(stream: &mut TcpStream) -> std::io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
}

/// The refusal's status and one-line reason, then the connection closes.
pub async fn refuse(stream: &mut TcpStream, refused: &Refused) {
    let (code, phrase) = refused.why.status();
    let body = format!("{}\n", refused.message());
    let mut head = format!(
        "HTTP/1.1 {code} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    match refused.why {
        Refusal::CredentialsRequired | Refusal::BadCredentials => {
            head.push_str("Proxy-Authenticate: Basic realm=\"dispatch egress\"\r\n");
        }
        Refusal::Method => head.push_str("Allow: CONNECT\r\n"),
        _ => {}
    }
    head.push_str("\r\n");
    head.push_str(&body);
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_keeps_early_bytes() {
        let raw = b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\nProxy-Authorization: Basic eDp5\r\n\r\n\x16\x03\x01";
        let head = parse(raw).unwrap().unwrap();
        assert_eq!(head.method, "CONNECT");
        assert_eq!(head.target, "api.anthropic.com:443");
        assert_eq!(
            head.proxy_authorization.as_deref(),
            Some(&b"Basic eDp5"[..])
        );
        assert_eq!(head.early, b"\x16\x03\x01");
        assert!(parse(b"CONNECT x:443 HTTP/1.1\r\n").unwrap().is_none());
        assert!(parse(b"\x16\x03\x01 nonsense\r\n\r\n").is_err());
    }
}
