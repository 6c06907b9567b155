//! Connection handling and WebSocket close codes, through a real gateway in
//! front of a real broker: idle, slow-header and slow-body connections are
//! closed, one client address cannot take the connections others need, a
//! kept-alive connection serves a bounded number of requests, and terminal
//! sockets close with 1009 for messages the broker would refuse and with
//! 1002/1007 for protocol errors sent as raw frames after a real upgrade.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use dispatch_testkit::wsframe;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const BYSTANDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    connect_from_port(from, 0, addr).await
}

/// A TCP connection to `addr` from `from:port` (0: any port).
async fn connect_from_port(
    from: Ipv4Addr,
    port: u16,
    addr: SocketAddr,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), port))?;
    socket.connect(addr).await
}

/// Waits until the server closes `stream` (EOF or reset); returns how long it took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

/// One HTTP/1.1 response read off `stream`: (head, body).
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .expect("a response within the deadline")
            .expect("reading a response");
        assert_eq!(n, 1, "connection closed mid-response: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// `GET /healthz` on `stream` (kept alive).
async fn healthz(stream: &mut TcpStream, addr: SocketAddr) -> (String, String) {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

async fn closes_counted(gateway: &GatewayProc, reason: &str) -> f64 {
    metrics(gateway)
        .await
        .get(
            "dispatch_gateway_connections_closed_total",
            &[("reason", reason)],
        )
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("HTTP_IDLE_TIMEOUT_SECS", "1")]).await;
    let mut silent = TcpStream::connect(gateway.addr).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("a connection that sends nothing is closed");
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(closes_counted(&gateway, "idle_timeout").await >= 1.0);

    // A connection between requests is idle too.
    let mut kept = TcpStream::connect(gateway.addr).await.unwrap();
    let (head, _) = healthz(&mut kept, gateway.addr).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    closed_within(&mut kept, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection is closed");

    // And an HTTP/2 connection (prior knowledge) that opens no stream.
    let mut h2 = TcpStream::connect(gateway.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let took = closed_within(&mut h2, Duration::from_secs(5))
        .await
        .expect("an idle HTTP/2 connection is closed");
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("HTTP_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut slow = TcpStream::connect(gateway.addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        .await
        .unwrap();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut buf = [0u8; 256];
        match slow.try_read(&mut buf) {
            Ok(0) => closed = true,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => closed = true,
            _ => {}
        }
        if closed || slow.write_all(b"a").await.is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "a slowloris header was still being read after 6 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(closes_counted(&gateway, "header_timeout").await >= 1.0);
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_refused_with_408() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("HTTP_BODY_TIMEOUT_SECS", "1")]).await;
    let addr = gateway.addr;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"ke"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (head, body) = read_response(&mut slow).await;
    assert!(head.starts_with("http/1.1 408"), "{head}{body}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(body.contains("did not arrive within 1 s"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    closed_within(&mut slow, Duration::from_secs(2))
        .await
        .expect("the connection closes after the 408");
    assert!(closes_counted(&gateway, "body_timeout").await >= 1.0);
}

#[tokio::test]
async fn a_kept_alive_connection_serves_a_bounded_number_of_requests() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("HTTP_MAX_REQUESTS_PER_CONNECTION", "3")]).await;
    let mut kept = TcpStream::connect(gateway.addr).await.unwrap();
    for n in 1..=3 {
        let (head, _) = healthz(&mut kept, gateway.addr).await;
        assert!(head.starts_with("http/1.1 200"), "request {n}: {head}");
        assert_eq!(
            head.contains("connection: close"),
            n == 3,
            "request {n}: {head}"
        );
    }
    closed_within(&mut kept, Duration::from_secs(2))
        .await
        .expect("the connection closes after its last request");
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("MAX_CONNECTIONS_PER_CLIENT", "4")]).await;
    let addr = gateway.addr;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from(ATTACKER, addr).await.unwrap();
        let (head, _) = healthz(&mut stream, addr).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        held.push(stream);
    }
    let mut fifth = connect_from(ATTACKER, addr).await.unwrap();
    let (head, body) = healthz(&mut fifth, addr).await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("retry-after"), "{head}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("too many connections"),
        "{body}"
    );

    let mut other = connect_from(BYSTANDER, addr).await.unwrap();
    let (head, _) = healthz(&mut other, addr).await;
    assert!(head.starts_with("http/1.1 200"), "another address: {head}");

    // A closed connection gives its slot back.
    held.pop();
    eventually("a slot is given back", || async {
        let mut stream = connect_from(ATTACKER, addr).await.unwrap();
        healthz(&mut stream, addr)
            .await
            .0
            .starts_with("http/1.1 200")
    })
    .await;
    let refused = metrics(&gateway)
        .await
        .get(
            "dispatch_gateway_connections_refused_total",
            &[("reason", "client_limit")],
        )
        .unwrap();
    assert!(refused >= 1.0);
}

/// The scenario the limits are for: 16,500 idle connections from one address
/// (more than the default total cap of 16,384) while another address logs in.
#[tokio::test]
async fn sixteen_thousand_idle_connections_from_one_address_do_not_starve_others() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let addr = gateway.addr;
    // Ports picked here, below the ephemeral range: binding to port 0 gets
    // slower with every port in use. 64 connects in flight at a time.
    let started = Instant::now();
    let attempts = futures::stream::iter(10_000u16..26_700)
        .map(|port| async move {
            let connect = connect_from_port(ATTACKER, port, addr);
            tokio::time::timeout(Duration::from_secs(2), connect).await
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let mut idle = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        match attempt {
            Ok(Ok(stream)) => idle.push(stream),
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EMFILE) => {
                panic!("out of file descriptors: raise `ulimit -n` to 20000")
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::AddrInUse => {}
            Ok(Err(e)) => panic!("connecting from {ATTACKER}: {e}"),
            // On a gateway without limits the accept queue is full by now.
            Err(_) => {}
        }
    }
    eprintln!(
        "{} connections opened in {:?}",
        idle.len(),
        started.elapsed()
    );
    let connected = idle.len();
    assert!(connected > 16_384, "only {connected} connections opened");
    let _ = http(); // installs the TLS provider reqwest needs
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(BYSTANDER))
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let health = client.get(gateway.url("/healthz")).send().await;
    assert_eq!(health.expect("/healthz answers").status(), 200);
    let login = client
        .post(gateway.url("/api/login"))
        .json(&serde_json::json!({"key": KEY}))
        .send()
        .await
        .expect("login answers");
    assert_eq!(login.status(), 204);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    eprintln!(
        "{connected} connections from {ATTACKER}; /healthz and login from {BYSTANDER} in {took:?}"
    );
    drop(idle);
}

#[tokio::test]
async fn an_attached_terminal_is_not_subject_to_the_http_timeouts() {
    let broker = BrokerProc::start().await;
    let env = [
        ("HTTP_IDLE_TIMEOUT_SECS", "1"),
        ("HTTP_HEADER_TIMEOUT_SECS", "1"),
        ("HTTP_MAX_REQUESTS_PER_CONNECTION", "1"),
    ];
    let gateway = GatewayProc::start(&broker, &env).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(&gateway, &cookie, id, (80, 24)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    terminal.type_text("echo alive-$((40+2))\n").await;
    terminal.wait_for("alive-42").await;
}

/// A logged-in gateway with one shell session.
async fn session(gateway: &GatewayProc) -> (String, String) {
    let cookie = login(gateway).await;
    let session = create_session(gateway, &cookie, serde_json::json!({})).await;
    (cookie, session["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_one_mib_input_frame_is_refused_by_the_gateway_with_1009() {
    // The refusal comes from the frame's header, before its payload is read:
    // only the header is sent, so no unread payload turns the gateway's close
    // into a TCP reset.
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let (cookie, id) = session(&gateway).await;
    let frame = wsframe::encode(0x82, &vec![b'a'; 1 << 20], true);
    let header = &frame[..2 + 8 + 4];
    let terminal = format!("/ws/sessions/{id}?cols=80&rows=24");
    assert_eq!(
        close_code_after(&gateway, &cookie, &terminal, header).await,
        1009
    );
}

#[tokio::test]
async fn the_largest_input_the_broker_accepts_reaches_the_session() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let (cookie, id) = session(&gateway).await;
    let mut terminal = Terminal::attach(&gateway, &cookie, &id, (80, 24)).await;
    let largest =
        dispatch_proto::limits::max_input_bytes(dispatch_proto::limits::MAX_MESSAGE_BYTES);
    // The echoed command line shows `N-7+7`, never N itself.
    terminal
        .type_text(&format!(
            "stty raw -echo; echo ready-$((1+1)); head -c $(({}+7)) | wc -c\n",
            largest - 7
        ))
        .await;
    terminal.wait_for("ready-2").await;
    terminal
        .socket
        .send(Message::binary(vec![b'a'; largest]))
        .await
        .unwrap();
    terminal.wait_for(&largest.to_string()).await;
}

/// A broker that accepts messages of at most `max_message` bytes.
async fn broker_with_limit(max_message: usize) -> (tokio::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let url = format!("unix:{}", dir.path().join("broker.sock").display());
    let mut child = dispatch_testkit::launch::command(&broker_bin())
        .env("BROKER_LISTEN", &url)
        .env("BROKER_TOKEN", "broker-token-test")
        .env("BROKER_MAX_MESSAGE_BYTES", max_message.to_string())
        .env("PTY_ROOT", dir.path().join("sessions"))
        .env("HOME", dir.path())
        .env("SHELL", "/bin/bash")
        .spawn()
        .unwrap();
    let announced = dispatch_testkit::announce::BROKER_LISTENING;
    dispatch_testkit::launch::announced(&mut child, announced, DEADLINE)
        .await
        .expect("the broker listens");
    (child, dir)
}

#[tokio::test]
async fn a_frame_the_broker_refuses_closes_with_1009_not_4503() {
    // The broker was given a smaller limit than the gateway knows of.
    let (_broker, dir) = broker_with_limit(64 << 10).await;
    let url = format!("unix:{}", dir.path().join("broker.sock").display());
    let env = [
        ("BROKER_URL", url.as_str()),
        ("BROKER_TOKEN", "broker-token-test"),
    ];
    let gateway = GatewayProc::start_with(&env).await;
    let (cookie, id) = session(&gateway).await;
    let mut terminal = Terminal::attach(&gateway, &cookie, &id, (80, 24)).await;
    terminal
        .socket
        .send(Message::binary(vec![b'a'; 100 << 10]))
        .await
        .unwrap();
    assert_eq!(terminal.wait_closed().await, Some(1009));
}

/// Upgrades a raw TCP connection to the WebSocket at `path`.
async fn raw_socket(gateway: &GatewayProc, cookie: &str, path: &str) -> TcpStream {
    let addr = gateway.addr;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\
         Origin: http://{addr}\r\nCookie: {cookie}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// The close code the socket at `path` sends after `frame`.
async fn close_code_after(gateway: &GatewayProc, cookie: &str, path: &str, frame: &[u8]) -> u16 {
    let mut stream = raw_socket(gateway, cookie, path).await;
    stream.write_all(frame).await.unwrap();
    let mut socket = WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
    tokio::time::timeout(DEADLINE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map_or(1005, |f| u16::from(f.code));
                }
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame")
}

#[tokio::test]
async fn protocol_errors_close_with_1002_and_invalid_text_with_1007() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let (cookie, id) = session(&gateway).await;
    let cases: [(&str, Vec<u8>, u16); 8] = [
        (
            "text that is not UTF-8",
            wsframe::encode(0x81, &[0x68, 0xff, 0xfe], true),
            1007,
        ),
        (
            "close reason that is not UTF-8",
            wsframe::encode(0x88, &[0x03, 0xe8, 0xff], true),
            1007,
        ),
        (
            "unmasked frame",
            wsframe::encode(0x82, b"ls\n", false),
            1002,
        ),
        ("RSV1 bit", wsframe::encode(0xc2, b"x", true), 1002),
        (
            "reserved data opcode",
            wsframe::encode(0x83, b"x", true),
            1002,
        ),
        (
            "reserved control opcode",
            wsframe::encode(0x8b, b"", true),
            1002,
        ),
        (
            "126-byte ping",
            wsframe::encode(0x89, &[0; 126], true),
            1002,
        ),
        ("fragmented ping", wsframe::encode(0x09, b"x", true), 1002),
    ];
    let terminal = format!("/ws/sessions/{id}?cols=80&rows=24");
    for (what, frame, expected) in cases {
        for path in [terminal.as_str(), "/ws/events"] {
            let code = close_code_after(&gateway, &cookie, path, &frame).await;
            assert_eq!(code, expected, "{what} on {path}");
        }
    }
    // The session survives its sockets' errors.
    let mut terminal = Terminal::attach(&gateway, &cookie, &id, (80, 24)).await;
    terminal.type_text("echo fine-$((20+1))\n").await;
    terminal.wait_for("fine-21").await;
}
