//! Terminals through the gateway, end to end: a real broker and gateway, a
//! tokio-tungstenite client. Attach, echo, resize, the order of size
//! announcements, reattach replay, two viewers, end, the live session list,
//! broker loss and recovery, a gateway restart, and 100 MB delivered in order
//! beside a stalled viewer.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn attach_echo_resize_replay_two_viewers_and_end() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, json!({"mode": "shell", "name": "t"})).await;
    let id = session["id"].as_str().unwrap();

    let mut first = Terminal::attach(&gateway, &cookie, id, (80, 24)).await;
    let reset = first.next_control().await;
    assert_eq!(reset["type"], "reset", "{reset}");
    first.type_text("echo hello-$((6*7))\r").await;
    first.wait_for("hello-42").await;

    first
        .control(json!({"type": "resize", "cols": 101, "rows": 33}))
        .await;
    first.type_text("stty size\r").await;
    first.wait_for("33 101").await;

    // A second viewer gets the screen replayed, then sees live output too.
    let mut second = Terminal::attach(&gateway, &cookie, id, (101, 33)).await;
    assert_eq!(second.next_control().await["type"], "reset");
    second.wait_for("hello-42").await;
    second.type_text("echo both-$((2*21))x\r").await;
    second.wait_for("both-42x").await;
    first.wait_for("both-42x").await;

    // Detach leaves the session running; reattaching replays the screen.
    first.control(json!({"type": "detach"})).await;
    assert_eq!(first.wait_closed().await, Some(1000));
    let mut again = Terminal::attach(&gateway, &cookie, id, (101, 33)).await;
    again.wait_for("both-42x").await;

    // A ping is answered with a pong.
    again.control(json!({"type": "ping"})).await;
    let mut pong = again.next_control().await;
    while pong["type"] == "session" {
        pong = again.next_control().await;
    }
    assert_eq!(pong, json!({"type": "pong"}));

    // Bad control messages: unknown types are refused, malformed JSON closes 4400.
    again.control(json!({"type": "dance"})).await;
    let mut error = again.next_control().await;
    while error["type"] == "session" {
        error = again.next_control().await;
    }
    assert_eq!(error["type"], "error", "{error}");

    second.control(json!({"type": "end"})).await;
    let exit = loop {
        let message = second.next_control().await;
        if message["type"] == "exit" {
            break message;
        }
    };
    assert!(
        exit.get("code").is_some() && exit.get("signal").is_some(),
        "{exit}"
    );
    assert_eq!(second.wait_closed().await, Some(1000));
    assert_eq!(again.wait_closed().await, Some(1000));

    use futures::SinkExt;
    let mut bad = Terminal::attach(&gateway, &cookie, id, (80, 24)).await;
    if bad.closed.is_none() {
        let _ = bad
            .socket
            .send(tokio_tungstenite::tungstenite::Message::text("{oops"))
            .await;
        let code = bad.wait_closed().await;
        assert!(matches!(code, Some(4400) | Some(1000)), "{code:?}");
    }
}

/// What the web UI relies on to ignore stale sizes: one socket's resizes are
/// applied in order, every change of the PTY's size is announced in order,
/// and a resize that changes nothing announces nothing.
#[tokio::test(flavor = "multi_thread")]
async fn resizes_are_announced_in_the_order_of_the_changes() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, json!({"cols": 80, "rows": 24})).await;
    let id = session["id"].as_str().unwrap();

    let mut terminal = Terminal::attach(&gateway, &cookie, id, (80, 24)).await;
    assert_eq!(terminal.next_control().await["type"], "reset");
    for (cols, rows) in [(100, 30), (90, 28), (90, 28), (100, 30), (80, 24)] {
        terminal
            .control(json!({"type": "resize", "cols": cols, "rows": rows}))
            .await;
    }
    let sizes = |terminal: &Terminal| -> Vec<(u64, u64)> {
        let announced = terminal.controls.iter().filter(|c| c["type"] == "session");
        announced
            .map(|c| {
                let size = |field: &str| c["session"][field].as_u64().unwrap();
                (size("cols"), size("rows"))
            })
            .collect()
    };
    // The attach (a viewer more, same size), then one announcement per change.
    let expected = vec![(80, 24), (100, 30), (90, 28), (100, 30), (80, 24)];
    while sizes(&terminal).len() < expected.len() {
        terminal.next_control().await;
    }
    // Typed after the resizes: by the time its output is in, nothing more is announced.
    terminal.type_text("stty size\r").await;
    terminal.wait_for("24 80\r\n").await;
    assert_eq!(sizes(&terminal), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_sessions_oversized_frames_and_malformed_messages() {
    // A 64 KiB message limit: a frame just over it fits in the sockets'
    // buffers, so the gateway's close is read rather than raced by a reset
    // while the client is still writing a megabyte the gateway will not read.
    const MAX_MESSAGE: usize = 64 * 1024;
    let broker = BrokerProc::start().await;
    let max_message = MAX_MESSAGE.to_string();
    let gateway = GatewayProc::start(&broker, &[("BROKER_MAX_MESSAGE_BYTES", &max_message)]).await;
    let cookie = login(&gateway).await;
    let origin = format!("http://{}", gateway.addr);
    let path = "/ws/sessions/7f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01";
    let socket = ws_connect(&gateway, path, Some(&cookie), Some(&origin))
        .await
        .unwrap();
    let mut unknown = Terminal::over(socket);
    assert_eq!(unknown.wait_closed().await, Some(4404));

    let session = create_session(&gateway, &cookie, json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(&gateway, &cookie, id, (80, 24)).await;
    let over = dispatch_proto::limits::max_input_bytes(MAX_MESSAGE) + 1;
    terminal.type_text(&"x".repeat(over)).await;
    assert_eq!(terminal.wait_closed().await, Some(1009));

    let mut terminal = Terminal::attach(&gateway, &cookie, id, (80, 24)).await;
    use futures::SinkExt;
    terminal
        .socket
        .send(tokio_tungstenite::tungstenite::Message::text("{not json"))
        .await
        .unwrap();
    assert_eq!(terminal.wait_closed().await, Some(4400));
}

#[tokio::test(flavor = "multi_thread")]
async fn event_socket_follows_the_session_list() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let origin = format!("http://{}", gateway.addr);
    let socket = ws_connect(&gateway, "/ws/events", Some(&cookie), Some(&origin))
        .await
        .unwrap();
    let mut events = Terminal::over(socket);
    let snapshot = events.next_control().await;
    assert_eq!(snapshot["type"], "sessions", "{snapshot}");
    let session = create_session(&gateway, &cookie, json!({"name": "watched"})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let wait_kind = |kind: &'static str| {
        let id = id.clone();
        move |m: &serde_json::Value| m["type"] == kind && m["session"]["id"] == id.as_str()
    };
    let created = wait_kind("created");
    while !created(&events.next_control().await) {}
    // A ping is answered with a pong; anything else the client sends is ignored.
    events.control(json!({"type": "hello"})).await;
    events.control(json!({"type": "ping"})).await;
    assert_eq!(events.next_control().await, json!({"type": "pong"}));
    http()
        .delete(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let ended = wait_kind("ended");
    let updated = wait_kind("updated");
    loop {
        let message = events.next_control().await;
        if ended(&message) || (updated(&message) && message["session"]["status"] == "exited") {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_killed_gives_503_then_recovers() {
    let mut broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let client = http();
    let session = create_session(&gateway, &cookie, json!({})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let mut terminal = Terminal::attach(&gateway, &cookie, &id, (80, 24)).await;

    broker.kill().await;
    assert_eq!(
        terminal.wait_closed().await,
        Some(4503),
        "open terminals are told"
    );
    let list = client
        .get(gateway.url("/api/sessions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 503);
    let body: serde_json::Value = list.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("broker unreachable"),
        "{body}"
    );
    let ready = client.get(gateway.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(
        ready.json::<serde_json::Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("broker")
    );
    assert_eq!(
        client
            .get(gateway.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still alive"
    );
    let origin = format!("http://{}", gateway.addr);
    let socket = ws_connect(
        &gateway,
        &format!("/ws/sessions/{id}"),
        Some(&cookie),
        Some(&origin),
    )
    .await
    .unwrap();
    let mut refused = Terminal::over(socket);
    assert_eq!(refused.wait_closed().await, Some(4503));

    broker.spawn().await;
    eventually("REST recovers by itself", || async {
        client
            .get(gateway.url("/api/sessions"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    assert_eq!(
        client
            .get(gateway.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let session = create_session(&gateway, &cookie, json!({})).await;
    let mut terminal =
        Terminal::attach(&gateway, &cookie, session["id"].as_str().unwrap(), (80, 24)).await;
    terminal.type_text("echo back-$((40+2))\r").await;
    terminal.wait_for("back-42").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_restart_keeps_the_session_and_its_screen() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, json!({})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let mut terminal = Terminal::attach(&gateway, &cookie, &id, (80, 24)).await;
    terminal.type_text("echo before-$((3*3))-restart\r").await;
    terminal.wait_for("before-9-restart").await;

    let status = gateway.stop().await;
    assert!(status.success(), "{status:?}");
    assert_eq!(
        terminal.wait_closed().await,
        Some(1001),
        "going away: reconnect"
    );

    let gateway = GatewayProc::start(&broker, &[]).await;
    // The same login still holds after the restart.
    let mut terminal = Terminal::attach(&gateway, &cookie, &id, (80, 24)).await;
    terminal.wait_for("before-9-restart").await;
    terminal.type_text("echo after-$((4*4))\r").await;
    terminal.wait_for("after-16").await;
}

/// 100 MB of `seq` output reaches a reading, acknowledging viewer complete
/// and in order while another viewer stops reading; the gateway's memory
/// stays bounded and the stalled viewer is resynchronised afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn hundred_megabytes_in_order_beside_a_stalled_viewer() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, json!({"cols": 200, "rows": 50})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let mut reader = Terminal::attach(&gateway, &cookie, &id, (200, 50)).await;
    reader.type_text("stty -echo\r").await;
    reader.type_text("echo ready-$((1+1))\r").await;
    reader.wait_for("ready-2").await;
    let mut stalled = Terminal::attach(&gateway, &cookie, &id, (200, 50)).await;
    stalled.auto_ack = false;
    let baseline = gateway.rss_kib();

    const LAST: u64 = 12_000_000; // about 100 MB with CR LF
    reader.screen.clear();
    reader
        .type_text(&format!("seq 1 {LAST}; echo done-$((5+5))\r"))
        .await;
    let started = Instant::now();
    let mut expected = 1u64;
    let mut partial: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    let mut peak = baseline;
    let mut next_sample = 500_000;
    let deadline = Instant::now() + Duration::from_secs(600);
    while expected <= LAST {
        let left = deadline.saturating_duration_since(Instant::now());
        match reader.next_event(left).await {
            Some(Event::Output(data)) => {
                bytes += data.len() as u64;
                partial.extend_from_slice(&data);
                let mut start = 0;
                while let Some(nl) = partial[start..].iter().position(|b| *b == b'\n') {
                    let line = &partial[start..start + nl];
                    start += nl + 1;
                    let line = String::from_utf8_lossy(line);
                    let line = line.trim_end_matches('\r');
                    if expected == 1 && line != "1" {
                        continue; // the prompt and anything before the first number
                    }
                    if expected <= LAST {
                        assert_eq!(
                            line,
                            expected.to_string(),
                            "output out of order after {bytes} bytes"
                        );
                        expected += 1;
                    }
                }
                partial.drain(..start);
                reader.screen.clear();
                if expected >= next_sample {
                    next_sample += 500_000;
                    peak = peak.max(gateway.rss_kib());
                }
            }
            Some(Event::Control(value)) => assert_ne!(
                value["type"], "reset",
                "the reading viewer never needs a resync"
            ),
            other => panic!("reader stopped after {bytes} bytes, at {expected}: {other:?}"),
        }
        reader.ack().await;
    }
    let elapsed = started.elapsed();
    peak = peak.max(gateway.rss_kib());
    eprintln!(
        "{bytes} bytes in {elapsed:?} ({:.1} MB/s); gateway RSS {baseline} KiB -> peak {peak} KiB",
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    assert!(bytes >= 100_000_000, "{bytes} bytes");
    assert!(
        peak - baseline < 48 * 1024,
        "gateway memory grew by {} KiB beside a stalled viewer",
        peak - baseline
    );

    // The stalled viewer reads again: it is resynchronised with the final screen.
    stalled.auto_ack = true;
    stalled
        .wait_for_within("done-10", Duration::from_secs(120))
        .await;
    assert!(
        stalled
            .controls
            .iter()
            .filter(|c| c["type"] == "reset")
            .count()
            >= 2,
        "resynchronised"
    );
}
