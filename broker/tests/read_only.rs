//! Read-only attachments (`AttachStart.read_only`, what a share link's
//! viewer gets), straight over gRPC with no gateway in front: such a viewer
//! sees live output, but its input and resizes end its stream with
//! PERMISSION_DENIED before they reach the PTY, and it never drives the
//! PTY's size.

mod common;

use common::*;
use dispatch_proto::v1 as pb;
use tonic::Code;

fn read_only(id: &str, cols: u32, rows: u32) -> pb::AttachStart {
    pb::AttachStart {
        session_id: id.into(),
        cols,
        rows,
        flow_control: true,
        read_only: true,
        ..Default::default()
    }
}

async fn pty_size(client: &mut Client, id: &str) -> (u32, u32) {
    let session = client
        .get_session(pb::GetSessionRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner();
    (session.cols, session.rows)
}

/// Reads the viewer's stream until it ends; returns the error it ended with.
async fn stream_error(viewer: &mut Viewer) -> tonic::Status {
    loop {
        match tokio::time::timeout(DEADLINE, viewer.rx.message()).await {
            Err(_) => panic!("the stream did not end within {DEADLINE:?}"),
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => panic!("the stream ended without an error"),
            Ok(Err(status)) => return status,
        }
    }
}

#[tokio::test]
async fn a_read_only_viewer_sees_output_and_its_input_never_reaches_the_pty() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = session.id.as_str();
    let mut owner = Viewer::attach(&mut client, id, 100, 30, true).await;
    let mut watcher = Viewer::attach_with(&mut client, read_only(id, 50, 10)).await;

    owner.input("echo live-$((6*7))\r").await;
    owner.wait_for_output("live-42").await;
    watcher.wait_for_output("live-42").await;

    // Typing ends the watcher's stream, and the shell never runs it.
    watcher.input("echo typed-$((2*3))\r").await;
    let status = stream_error(&mut watcher).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("read-only"), "{status:?}");
    owner.input("echo after-$((3*3))\r").await;
    owner.wait_for_output("after-9").await;
    let seen = String::from_utf8_lossy(&owner.output).to_string();
    assert!(
        !seen.contains("typed"),
        "refused input reached the PTY: {seen}"
    );

    // A resize, even with `fit`, is refused too and changes nothing.
    let mut resizer = Viewer::attach_with(&mut client, read_only(id, 50, 10)).await;
    resizer.fit(40, 12).await;
    let status = stream_error(&mut resizer).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("resize"), "{status:?}");
    assert_eq!(pty_size(&mut client, id).await, (100, 30));

    // The session is unharmed for its owner.
    owner.input("echo still-$((5*5))\r").await;
    owner.wait_for_output("still-25").await;
}

#[tokio::test]
async fn a_read_only_viewer_never_drives_the_size() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = session.id.as_str();

    // Alone, it attaches at its own size: the PTY keeps its size, and the
    // replay tells it the PTY's size.
    let watcher = Viewer::attach_with(&mut client, read_only(id, 50, 10)).await;
    assert_eq!(pty_size(&mut client, id).await, (80, 24));
    let (rows, cols) = watcher.screen.screen().size();
    assert_eq!((cols.get(), rows.get()), (80, 24));

    // It did not take the driver's place: the next viewer to attach drives.
    let _owner = Viewer::attach(&mut client, id, 120, 40, true).await;
    assert_eq!(pty_size(&mut client, id).await, (120, 40));
    drop(watcher);
}
