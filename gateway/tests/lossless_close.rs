//! A session that prints a lot and exits, watched by a client that reads
//! slowly (a small receive buffer, paced reads, acknowledgements as it
//! reads): the client gets every byte, then the `exit` message, then a
//! WebSocket close (1000) and an orderly end of the TCP stream, never a
//! reset.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

/// Lines the session prints (`seq 1 LINES`), about 2.7 MB through the PTY.
const LINES: u64 = 400_000;
/// Bytes the client reads per second, at most.
const READ_RATE: u64 = 1 << 20;

/// What `seq 1 LINES` prints through a PTY (`\n` becomes `\r\n`).
fn seq_bytes(lines: u64) -> u64 {
    (1..=lines).map(|n| n.to_string().len() as u64 + 2).sum()
}

/// A WebSocket over a TCP connection with a small receive buffer.
async fn slow_socket(
    gateway: &GatewayProc,
    cookie: &str,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&gateway.addr.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let stream = tokio::net::TcpStream::from_std(socket.into()).unwrap();
    let mut request = gateway.ws_url(path).into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
    let origin = format!("http://{}", gateway.addr);
    headers.insert("origin", HeaderValue::from_str(&origin).unwrap());
    let config = tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(64 << 20));
    let (socket, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .expect("terminal upgrade");
    socket
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_gets_every_byte_the_exit_and_a_clean_close() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let path = format!("/ws/sessions/{id}?cols=80&rows=24");
    let mut socket = slow_socket(&gateway, &cookie, &path).await;
    socket
        .send(Message::binary(
            format!("stty -echo; seq 1 {LINES}; exit 7\r").into_bytes(),
        ))
        .await
        .unwrap();

    let started = Instant::now();
    let mut output = Vec::new();
    let mut received = 0u64;
    let mut acked = 0u64;
    let mut exit = None;
    let close = loop {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("the socket goes on until it closes");
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(err)) => panic!(
                "the connection failed after {received} bytes (exit seen: {}): {err}",
                exit.is_some()
            ),
            None => panic!("the stream ended without a close frame after {received} bytes"),
        };
        match message {
            Message::Binary(data) => {
                received += data.len() as u64;
                output.extend_from_slice(&data);
                if received - acked >= 64 * 1024 {
                    acked = received;
                    let ack = serde_json::json!({"type": "ack", "bytes": received});
                    socket.send(Message::text(ack.to_string())).await.unwrap();
                }
                // Paced: READ_RATE bytes a second at most.
                let due = Duration::from_secs_f64(received as f64 / READ_RATE as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            Message::Text(text) => {
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "exit" {
                    exit = Some(value);
                }
            }
            Message::Close(frame) => break frame.map(|f| u16::from(f.code)),
            _ => {}
        }
    };
    let expected = seq_bytes(LINES);
    let last = format!("{}\r\n{LINES}\r\n", LINES - 1);
    assert!(
        received >= expected && contains(&output, last.as_bytes()),
        "received {received} bytes, at least {expected} expected"
    );
    let exit = exit.expect("the exit message before the close");
    assert_eq!(exit["code"], 7, "{exit}");
    assert_eq!(close, Some(1000));
    // The close handshake completes and the TCP stream ends without a reset.
    let rest = tokio::time::timeout(DEADLINE, async {
        let mut rest = Vec::new();
        while let Some(item) = socket.next().await {
            rest.push(item.map_err(|e| e.to_string()));
        }
        rest
    })
    .await
    .expect("the stream ends after the close");
    assert!(
        rest.iter().all(|item| item.is_ok()),
        "after the close: {rest:?}"
    );
}
