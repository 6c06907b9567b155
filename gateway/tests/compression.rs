//! Compressed terminal output (the `dispatch.deflate-raw` subprotocol): a
//! WebSocket client that offers it gets binary frames that decode, in one
//! raw DEFLATE stream, to exactly what the session printed, at under a third
//! of its size; a client that does not offer it, or a gateway started with
//! `TERMINAL_COMPRESSION=false`, gets raw frames.

mod common;

use common::*;
use dispatch_testkit::deflate_frames::{Inflater, PROTOCOL};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::{self, Message};

/// Lines the session prints: about 1.3 MB through the PTY.
const LINES: u64 = 200_000;
/// Largest binary frame the gateway sends.
const MAX_FRAME: usize = 16 * 1024;

/// The terminal socket of session `id` at 80x24.
fn terminal_path(id: &str) -> String {
    format!("/ws/sessions/{id}?cols=80&rows=24")
}

/// Runs `seq` and reads until its last line, acknowledging decoded bytes;
/// (decoded output, bytes on the wire, largest frame).
async fn read_seq(
    socket: &mut Socket,
    mut decode: impl FnMut(&[u8]) -> Vec<u8>,
) -> (Vec<u8>, usize, usize) {
    let command = format!("stty -echo; seq 1 {LINES}; echo seq-''done\r");
    socket
        .send(Message::binary(command.into_bytes()))
        .await
        .unwrap();
    let (mut output, mut wire, mut largest) = (Vec::new(), 0, 0);
    let mut acked = 0;
    while !contains(&output, b"seq-done") {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("output keeps coming")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Binary(frame) = message {
            wire += frame.len();
            largest = largest.max(frame.len());
            output.extend_from_slice(&decode(&frame));
            if output.len() - acked >= 32 * 1024 {
                acked = output.len();
                let ack = serde_json::json!({"type": "ack", "bytes": acked});
                socket.send(Message::text(ack.to_string())).await.unwrap();
            }
        }
    }
    (output, wire, largest)
}

#[tokio::test(flavor = "multi_thread")]
async fn offered_compression_decodes_to_the_exact_output_at_under_a_third_of_its_size() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let (mut socket, chosen) =
        ws_connect_offering(&gateway, &terminal_path(id), &cookie, Some(PROTOCOL))
            .await
            .unwrap();
    assert_eq!(chosen.as_deref(), Some(PROTOCOL));

    let mut inflater = Inflater::default();
    let (output, wire, _) = read_seq(&mut socket, |frame| inflater.frame(frame).unwrap()).await;
    eprintln!(
        "{wire} bytes on the wire for {} bytes of output",
        output.len()
    );
    let expected = seq_output(LINES);
    assert!(
        contains(&output, &expected),
        "the decoded output holds every line of seq, byte for byte"
    );
    assert!(
        wire * 3 <= output.len(),
        "{wire} bytes on the wire for {} bytes of output",
        output.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_offer_or_with_compression_off_frames_are_raw_and_small() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let (mut socket, chosen) = ws_connect_offering(&gateway, &terminal_path(id), &cookie, None)
        .await
        .unwrap();
    assert_eq!(chosen, None);
    let (output, wire, largest) = read_seq(&mut socket, |frame| frame.to_vec()).await;
    assert!(contains(&output, &seq_output(LINES)));
    assert_eq!(wire, output.len());
    assert!(largest <= MAX_FRAME, "a {largest}-byte frame");

    let off = GatewayProc::start(&broker, &[("TERMINAL_COMPRESSION", "false")]).await;
    let cookie = login(&off).await;
    // The client offered only this subprotocol and none was chosen: the
    // client refuses the handshake, as RFC 6455 lets it.
    let refused = ws_connect_offering(&off, &terminal_path(id), &cookie, Some(PROTOCOL)).await;
    assert!(
        matches!(
            refused,
            Err(tungstenite::Error::Protocol(
                ProtocolError::SecWebSocketSubProtocolError(SubProtocolError::NoSubProtocol)
            ))
        ),
        "{refused:?}"
    );
}
