//! Handing a viewer over to a new attach stream, through the real broker
//! binary and the generated gRPC client: the viewer carries on where its old
//! stream ended, with no replay and no byte lost, keeps driving the PTY's
//! size and its place in the viewer count; a token claims once, an unknown
//! one is NOT_FOUND, an unclaimed viewer leaves, and a read-only viewer
//! stays read-only.

mod common;

use std::time::{Duration, Instant};

use common::*;
use dispatch_proto::v1 as pb;

async fn session_of(client: &mut Client, id: &str) -> pb::Session {
    client
        .get_session(pb::GetSessionRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_handed_over_viewer_carries_on_without_replay_or_loss_and_keeps_driving() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = session.id.as_str();
    let mut desk = Viewer::attach(&mut client, id, 130, 30, true).await;
    assert_eq!(session_of(&mut client, id).await.viewers, 1);

    // Output keeps coming while the viewer moves between streams.
    desk.input("stty -echo; sleep 0.2; seq 1 30000; echo moved''-done\r")
        .await;
    let token = desk.hand_over().await;
    assert_eq!(
        session_of(&mut client, id).await.viewers,
        1,
        "a viewer awaiting its new stream still counts"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    desk.resume(&mut client, id, &token).await.unwrap();
    desk.wait_for_output("moved-done").await;

    // `apply` asserts every output's offsets follow on from the last.
    assert_eq!(desk.replays, 1, "no replay after the handover");
    let printed = String::from_utf8_lossy(&desk.output).replace("\r\n", "\n");
    let expected: String = (1..=30000).map(|n| format!("{n}\n")).collect();
    assert!(
        printed.contains(&expected),
        "every line arrives once, in order"
    );
    assert_eq!(session_of(&mut client, id).await.viewers, 1);

    // Still the driver: a new viewer does not resize the PTY, and the
    // resumed viewer's resize does.
    let _phone = Viewer::attach(&mut client, id, 47, 39, true).await;
    let pty = session_of(&mut client, id).await;
    assert_eq!((pty.cols, pty.rows, pty.viewers), (130, 30, 2));
    desk.resize(120, 35).await;
    let resized = Instant::now();
    while session_of(&mut client, id).await.cols != 120 {
        assert!(resized.elapsed() < DEADLINE, "the driver's resize applies");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_token_claims_once_and_an_unknown_one_is_not_found() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = session.id.as_str();
    let mut viewer = Viewer::attach(&mut client, id, 80, 24, true).await;

    let unknown = viewer.resume(&mut client, id, "no-such-token").await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);

    let token = viewer.hand_over().await;
    viewer.resume(&mut client, id, &token).await.unwrap();
    let mut other = Viewer::attach(&mut client, id, 80, 24, true).await;
    let again = other.resume(&mut client, id, &token).await;
    assert_eq!(again.unwrap_err().code(), tonic::Code::NotFound);

    viewer.input("echo still''-here\r").await;
    viewer.wait_for_output("still-here").await;
}

#[tokio::test]
async fn an_unclaimed_viewer_leaves_and_a_detached_one_at_once() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = session.id.as_str();

    let mut left = Viewer::attach(&mut client, id, 80, 24, true).await;
    let token = left.hand_over().await;
    let handed_at = Instant::now();
    assert_eq!(session_of(&mut client, id).await.viewers, 1);
    while session_of(&mut client, id).await.viewers == 1 {
        assert!(handed_at.elapsed() < DEADLINE, "the unclaimed viewer stays");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        handed_at.elapsed() >= Duration::from_secs(4),
        "the viewer waited for its new stream ({:?})",
        handed_at.elapsed()
    );
    let late = left.resume(&mut client, id, &token).await;
    assert_eq!(late.unwrap_err().code(), tonic::Code::NotFound);

    // Detaching the old stream during a handover ends the viewer at once.
    let gone = Viewer::attach(&mut client, id, 80, 24, true).await;
    gone.tx
        .send(pb::AttachRequest {
            kind: Some(pb::attach_request::Kind::Handover(pb::Handover {})),
        })
        .await
        .unwrap();
    gone.detach().await;
    let detached_at = Instant::now();
    while session_of(&mut client, id).await.viewers == 1 {
        assert!(
            detached_at.elapsed() < Duration::from_secs(3),
            "the viewer stays"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_read_only_viewer_stays_read_only_on_its_new_stream() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = session.id.as_str();
    let start = pb::AttachStart {
        session_id: id.into(),
        read_only: true,
        ..Default::default()
    };
    let mut watcher = Viewer::attach_with(&mut client, start).await;
    let token = watcher.hand_over().await;
    // The new stream asks for nothing read-only; the viewer still is.
    watcher.resume(&mut client, id, &token).await.unwrap();
    watcher.input("echo typed''-through\r").await;
    let status = loop {
        match tokio::time::timeout(DEADLINE, watcher.rx.message()).await {
            Ok(Err(status)) => break status,
            Ok(Ok(Some(_))) => continue,
            other => panic!("the stream ends with an error: {other:?}"),
        }
    };
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}
