//! Memory per idle viewer on a session with a full scrollback (about
//! 1.8 MB): viewers attach (half of them with compressed output), take their
//! replay and sit idle. Each costs the gateway under 64 KiB and the broker
//! under 150 KiB, whatever the scrollback, and the memory is handed back
//! once they leave. Measured as resident memory of the real processes.
//!
//! One viewer first takes a replay alone, so that what a session builds once
//! for replays is there before measuring; then two rounds of viewers come
//! and go, each measured. Both processes hand freed memory back after a
//! burst of replays, so the second round does not hide its cost in pages
//! the first one left behind, and neither keeps what its viewers used.
//! Each viewer's broker stream is handed over once it is quiet after its
//! replay, so the buffers the replay grew go with the old stream (the
//! settling time covers it).

mod common;

use std::time::Duration;

use common::*;
use dispatch_testkit::deflate_frames::{Inflater, PROTOCOL};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Viewers attached at once (enough that resident memory, which moves by a
/// megabyte or so from run to run, says what one viewer costs).
const VIEWERS: usize = 80;
/// Lines printed to fill the scrollback: about 1.8 MB.
const LINES: u64 = 260_000;
/// Bounds per idle viewer, in KiB.
const GATEWAY_KIB_PER_VIEWER: u64 = 64;
const BROKER_KIB_PER_VIEWER: u64 = 150;
/// What may stay behind once every viewer left, in KiB: at most 64 KiB a
/// viewer (without handing memory back, a round kept about 300 KiB a
/// viewer in each process). Pages that freed memory shares with live data
/// stay, and the session's own screen may have grown, so this is not zero.
const KEPT_KIB: u64 = 64 * VIEWERS as u64;
/// Time for idle sockets to drop their compressors and for freed memory to settle.
const SETTLE: Duration = Duration::from_secs(4);

/// A terminal socket, read until `marker` shows in its decoded output.
async fn viewer(
    gateway: &GatewayProc,
    cookie: &str,
    id: &str,
    deflate: bool,
    marker: &str,
) -> Socket {
    let path = format!("/ws/sessions/{id}?cols=80&rows=24");
    let protocol = deflate.then_some(PROTOCOL);
    let (mut socket, _) = ws_connect_offering(gateway, &path, cookie, protocol)
        .await
        .unwrap();
    let mut inflater = Inflater::default();
    let (mut output, mut acked) = (Vec::new(), 0);
    while !contains(
        &output[output.len().saturating_sub(64 * 1024)..],
        marker.as_bytes(),
    ) {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("the replay comes")
            .expect("the socket stays open")
            .unwrap();
        match message {
            Message::Binary(frame) if deflate => output.extend(inflater.frame(&frame).unwrap()),
            Message::Binary(frame) => output.extend_from_slice(&frame),
            _ => continue,
        }
        if output.len() - acked >= 32 * 1024 {
            acked = output.len();
            let ack = serde_json::json!({"type": "ack", "bytes": acked}).to_string();
            socket.send(Message::text(ack)).await.unwrap();
        }
    }
    socket
}

/// Resident memory of (gateway, broker) in KiB once things settled.
async fn settled_rss(gateway: &GatewayProc, broker: &BrokerProc) -> (u64, u64) {
    tokio::time::sleep(SETTLE).await;
    (gateway.rss_kib(), rss_kib(broker.pid()))
}

/// Resident memory (gateway, broker) before, while and after [`VIEWERS`]
/// idle viewers of session `id` were attached.
async fn round(
    gateway: &GatewayProc,
    broker: &BrokerProc,
    cookie: &str,
    id: &str,
) -> [(u64, u64); 3] {
    let before = settled_rss(gateway, broker).await;
    let mut viewers = Vec::new();
    for n in 0..VIEWERS {
        viewers.push(viewer(gateway, cookie, id, n % 2 == 0, "fill-done").await);
    }
    let attached = settled_rss(gateway, broker).await;
    for mut socket in viewers {
        let _ = socket.close(None).await;
    }
    let after = settled_rss(gateway, broker).await;
    eprintln!(
        "gateway, broker RSS in KiB: before {before:?}, attached {attached:?}, after {after:?}"
    );
    [before, attached, after]
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_viewers_of_a_full_scrollback_cost_little_and_give_it_back() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut filler = Terminal::attach(&gateway, &cookie, id, (80, 24)).await;
    filler
        .type_text(&format!("stty -echo; seq 1 {LINES}; echo fill''-done\r"))
        .await;
    filler.wait_for("fill-done").await;
    drop(filler);

    drop(viewer(&gateway, &cookie, id, true, "fill-done").await);
    for _ in 0..2 {
        check_round(round(&gateway, &broker, &cookie, id).await);
    }
}

/// Checks one round's figures against the bounds.
fn check_round([before, attached, after]: [(u64, u64); 3]) {
    let per_viewer = |during: u64, base: u64| during.saturating_sub(base) / VIEWERS as u64;
    let gateway_each = per_viewer(attached.0, before.0);
    let broker_each = per_viewer(attached.1, before.1);
    eprintln!("per idle viewer: gateway {gateway_each} KiB, broker {broker_each} KiB");
    assert!(
        gateway_each < GATEWAY_KIB_PER_VIEWER,
        "gateway: {gateway_each} KiB per idle viewer"
    );
    assert!(
        broker_each < BROKER_KIB_PER_VIEWER,
        "broker: {broker_each} KiB per idle viewer"
    );
    for (what, base, left) in [
        ("gateway", before.0, after.0),
        ("broker", before.1, after.1),
    ] {
        let kept = left.saturating_sub(base);
        assert!(
            kept <= KEPT_KIB,
            "{what}: {kept} KiB kept after the viewers left"
        );
    }
}
