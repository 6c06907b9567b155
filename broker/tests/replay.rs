//! A viewer that attaches later is restored exactly: the replayed screen
//! equals what a terminal emulator fed the whole output shows.

mod common;

use std::time::Duration;

use common::*;
use dispatch_proto::v1 as pb;

/// Draws a full-screen page on the alternate screen with tput: colours,
/// attributes, positioned text, hidden cursor, application cursor keys.
const DRAW: &str = "seq 1 300; tput smcup; tput clear; tput cup 2 4; tput bold; tput setaf 2; \
printf 'green bold'; tput sgr0; tput cup 7 10; tput setab 4; tput setaf 7; printf 'white on %s' blue; \
tput sgr0; tput cup 20 0; tput rev; printf 'status line %s' DR''AWN; tput sgr0; tput smkx; \
printf '\\033[38;5;208morange\\033[m'; tput civis; tput cup 12 33; sleep 1000\r";

fn assert_same_screen(restored: &vt100::Parser, reference: &vt100::Parser) {
    let (restored, reference) = (restored.screen(), reference.screen());
    assert_eq!(restored.contents(), reference.contents(), "text");
    assert_eq!(
        restored.contents_formatted(),
        reference.contents_formatted(),
        "formatting"
    );
    assert_eq!(
        restored.cursor_position(),
        reference.cursor_position(),
        "cursor"
    );
    assert_eq!(
        restored.hide_cursor(),
        reference.hide_cursor(),
        "cursor visibility"
    );
    assert_eq!(
        restored.alternate_screen(),
        reference.alternate_screen(),
        "alternate screen"
    );
    assert_eq!(
        restored.application_cursor(),
        reference.application_cursor(),
        "cursor keys mode"
    );
    assert_eq!(
        restored.application_keypad(),
        reference.application_keypad(),
        "keypad mode"
    );
    assert_eq!(
        restored.bracketed_paste(),
        reference.bracketed_paste(),
        "bracketed paste"
    );
}

#[tokio::test]
async fn reattach_restores_a_full_screen_program_exactly() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 100, 30).await;
    let mut first = Viewer::attach(&mut client, &session.id, 100, 30, true).await;
    first.input(DRAW).await;
    first.wait_for_screen("status line DRAWN").await;
    first.drain(Duration::from_millis(500)).await;
    assert!(first.screen.screen().alternate_screen());
    assert!(first.screen.screen().hide_cursor());
    first.detach().await;

    let mut client = broker.client().await;
    let (tx, requests) = tokio::sync::mpsc::channel(4);
    tx.send(pb::AttachRequest {
        kind: Some(pb::attach_request::Kind::Start(pb::AttachStart {
            session_id: session.id.clone(),
            flow_control: true,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut stream = client
        .attach(tokio_stream::wrappers::ReceiverStream::new(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(pb::attach_response::Kind::Replay(replay)) =
        stream.message().await.unwrap().unwrap().kind
    else {
        panic!("the first message is a replay");
    };
    assert_eq!((replay.cols, replay.rows), (100, 30));
    let mut restored = parser(replay.cols, replay.rows);
    restored.process(&replay.scrollback);
    restored.process(&replay.screen);
    assert_same_screen(&restored, &first.screen);

    // The scrollback holds the lines that scrolled off before the program
    // took the screen, and nothing of the alternate screen.
    let scrollback = String::from_utf8_lossy(&replay.scrollback);
    for line in ["\n1\r", "\n150\r", "\n260\r"] {
        assert!(scrollback.contains(line), "scrollback lacks {line:?}");
    }
    assert!(!scrollback.contains("white on blue"));

    // Leaving the program restores the shell, and output continues from the
    // replay's offset.
    tx.send(pb::AttachRequest {
        kind: Some(pb::attach_request::Kind::Input(
            b"\x03tput rmcup; tput cnorm; echo back-in-sh''ell\r"
                .to_vec()
                .into(),
        )),
    })
    .await
    .unwrap();
    let mut offset = replay.offset;
    let mut text = Vec::new();
    while !String::from_utf8_lossy(&text).contains("back-in-shell") {
        let message = tokio::time::timeout(DEADLINE, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(pb::attach_response::Kind::Output(output)) = message.kind {
            assert_eq!(output.end_offset, offset + output.data.len() as u64);
            offset = output.end_offset;
            restored.process(&output.data);
            text.extend_from_slice(&output.data);
        }
    }
    assert!(!restored.screen().alternate_screen());
}

#[tokio::test]
async fn replay_of_a_plain_shell_matches_and_keeps_history() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut first = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    first
        .input("for i in $(seq 1 12000); do echo \"history line $i\"; done; echo fini''shed\r")
        .await;
    first.wait_for_output("\r\nfinished").await;
    first.drain(Duration::from_millis(300)).await;

    let second = Viewer::attach(&mut client, &session.id, 80, 24, false).await;
    assert_same_screen(&second.screen, &first.screen);
    let mut replayed = parser(80, 24);
    let mut client2 = broker.client().await;
    let (tx, requests) = tokio::sync::mpsc::channel(1);
    tx.send(pb::AttachRequest {
        kind: Some(pb::attach_request::Kind::Start(pb::AttachStart {
            session_id: session.id.clone(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut stream = client2
        .attach(tokio_stream::wrappers::ReceiverStream::new(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(pb::attach_response::Kind::Replay(replay)) =
        stream.message().await.unwrap().unwrap().kind
    else {
        panic!("replay first");
    };
    // The replay is its scrollback then its screen, the rest of it in
    // `Output` messages when it is larger than one message.
    let mut whole = [replay.scrollback.as_ref(), replay.screen.as_ref()].concat();
    while whole.len() < replay.scrollback.len() + replay.screen.len() + replay.continued as usize {
        match stream.message().await.unwrap().and_then(|m| m.kind) {
            Some(pb::attach_response::Kind::Output(output)) => {
                assert_eq!(output.end_offset, replay.offset, "a piece of the replay");
                whole.extend_from_slice(&output.data);
            }
            other => panic!("the replay continues before {other:?}"),
        }
    }
    replayed.process(&whole);
    assert_same_screen(&replayed, &first.screen);
    // At least the last 10,000 lines are kept.
    let text = String::from_utf8_lossy(&whole);
    assert!(
        text.contains("history line 2000\r\n"),
        "10,000 lines of history"
    );
    assert!(text.contains("history line 11970\r\n"));
    assert!(whole.len() <= (2 << 20) + 2 * 4096);
}

/// The highest `line NNNNNN` number on a viewer's screen.
fn last_line_number(viewer: &Viewer) -> u32 {
    viewer
        .screen
        .screen()
        .contents()
        .lines()
        .filter_map(|line| line.strip_prefix("line ")?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// Reads until the screen shows line `number` or a later one.
async fn read_past_line(viewer: &mut Viewer, number: u32) {
    while last_line_number(viewer) < number {
        assert!(
            viewer.next().await.is_some(),
            "stream ended before line {number}"
        );
    }
}

/// Viewers that attach while bulk output streams in (plain and coloured
/// lines, parsed later than they are sent) get the screen at the offset
/// of their replay: exactly what a terminal fed every byte up to that
/// offset shows. Then they follow the stream to the same final screen.
#[tokio::test]
async fn viewers_attaching_while_output_streams_get_the_screen_at_their_offset() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut first = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    let start = first.offset;
    let start_state = first.screen.screen().state_formatted();
    first
        .input(
            "seq -f 'line %06g' 1 400000 | sed 's/^.*7$/\\x1b[1;32m&\\x1b[m/'; \
             tput cup 3 7; printf 'E''ND'; sleep 1000\r",
        )
        .await;
    let mut later = Vec::new();
    for line in [50_000, 150_000, 300_000] {
        read_past_line(&mut first, line).await;
        later.push(Viewer::attach(&mut client, &session.id, 80, 24, false).await);
    }
    first.wait_for_screen("END").await;
    first.drain(Duration::from_millis(300)).await;
    for viewer in &mut later {
        let seen = usize::try_from(viewer.offset - start).unwrap();
        assert!(seen < first.output.len(), "attached mid-stream");
        let mut reference = parser(80, 24);
        reference.process(start_state.as_bytes());
        reference.process(&first.output[..seen]);
        assert_same_screen(&viewer.screen, &reference);
        viewer.wait_for_screen("END").await;
        viewer.drain(Duration::from_millis(300)).await;
        assert_same_screen(&viewer.screen, &first.screen);
    }
    assert!(first.screen.screen().contents().contains("line 400000"));
}
