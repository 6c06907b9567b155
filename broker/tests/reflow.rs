//! A replay to a narrower viewer loses nothing: once the driver narrows the
//! PTY, a line printed at the wider size is re-wrapped, not cut, both on
//! the screen and once it has scrolled off into the scrollback. Through the
//! real broker binary and the generated gRPC client.

mod common;

use common::*;
use dispatch_proto::v1 as pb;

/// 120 characters the command that prints them does not contain.
fn long_line() -> String {
    (b'a'..=b'z')
        .flat_map(|a| (b'a'..=b'z').map(move |b| format!("{}{}", a as char, b as char)))
        .collect::<String>()[..120]
        .to_owned()
}

const PRINT_LINE: &str = "printf %s {a..z}{a..z} | head -c 120; echo\r";

/// The text of SGR-formatted output: escape sequences, CR and LF left out.
fn text_of(bytes: &[u8]) -> String {
    let mut plain = vt100::Parser::new(
        std::num::NonZeroU16::new(1).unwrap(),
        std::num::NonZeroU16::new(u16::MAX).unwrap(),
        0,
    );
    let mut text = String::new();
    for line in bytes.split(|&b| b == b'\n') {
        plain.process(b"\x1b[2J\x1b[H");
        plain.process(line);
        text.push_str(plain.screen().contents().trim_end());
    }
    text
}

/// Attaches a watching viewer of `cols` x `rows` and returns its replay.
async fn replay(client: &mut Client, id: &str, cols: u32, rows: u32) -> pb::Replay {
    let (tx, requests) = tokio::sync::mpsc::channel(4);
    let start = pb::AttachStart {
        session_id: id.into(),
        cols,
        rows,
        ..Default::default()
    };
    tx.send(pb::AttachRequest {
        kind: Some(pb::attach_request::Kind::Start(start)),
    })
    .await
    .unwrap();
    let mut stream = client
        .attach(tokio_stream::wrappers::ReceiverStream::new(requests))
        .await
        .expect("attach")
        .into_inner();
    match stream.message().await.unwrap().and_then(|m| m.kind) {
        Some(pb::attach_response::Kind::Replay(replay)) => replay,
        other => panic!("the first message is a replay: {other:?}"),
    }
}

#[tokio::test]
async fn a_line_printed_wide_is_whole_in_a_narrower_replay() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 120, 30).await;
    let id = session.id.as_str();
    let line = long_line();

    let mut desk = Viewer::attach(&mut client, id, 120, 30, true).await;
    desk.input(PRINT_LINE).await;
    desk.wait_for_screen(&line).await;
    // The driver narrows the PTY to 40 columns.
    desk.resize(40, 30).await;
    desk.input("stty size\r").await;
    desk.wait_for_output("30 40").await;

    // On the screen: a new viewer's replay has the line, wrapped.
    let phone = Viewer::attach(&mut client, id, 40, 30, true).await;
    let (_, cols) = phone.screen.screen().size();
    assert_eq!(cols.get(), 40, "the replay has the PTY's width");
    let screen = phone.screen.screen().contents();
    assert!(
        screen.replace('\n', "").contains(&line),
        "all 120 characters on the replayed screen:\n{screen}"
    );

    // In the scrollback: once the line has scrolled off at 40 columns.
    desk.input("seq 1001 1040; echo printed-$((2+3))\r").await;
    desk.wait_for_output("printed-5").await;
    let replay = replay(&mut client, id, 40, 30).await;
    let scrollback = text_of(&replay.scrollback);
    assert!(
        scrollback.contains(&line),
        "all 120 characters in the replayed scrollback:\n{scrollback}"
    );
    assert!(!text_of(&replay.screen).contains(&line[..40]));
}
