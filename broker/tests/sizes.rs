//! Who sizes a session's PTY, through the real broker binary and the
//! generated gRPC client: a viewer that only watches never changes the size;
//! the one that types, or resizes with `fit`, drives it; every viewer is told
//! the size and a replay to a narrower viewer keeps whole lines.

mod common;

use common::*;
use dispatch_proto::v1 as pb;

async fn pty_size(client: &mut Client, id: &str) -> (u32, u32) {
    let session = client
        .get_session(pb::GetSessionRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner();
    (session.cols, session.rows)
}

/// Reads until a `session` message announces `size` (cols, rows).
async fn wait_for_announced(viewer: &mut Viewer, size: (u32, u32)) {
    loop {
        if let Some(pb::attach_response::Kind::Session(session)) = viewer.next().await
            && (session.cols, session.rows) == size
        {
            return;
        }
    }
}

#[tokio::test]
async fn watching_viewers_never_resize_and_the_typing_viewer_drives() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = session.id.as_str();

    // The first viewer drives: its size is applied on attach.
    let mut desk = Viewer::attach(&mut client, id, 130, 30, true).await;
    assert_eq!(pty_size(&mut client, id).await, (130, 30));
    // 120 characters the command line itself does not contain.
    let line: String = (b'a'..=b'z')
        .flat_map(|a| (b'a'..=b'z').map(move |b| format!("{}{}", a as char, b as char)))
        .collect::<String>()[..120]
        .to_owned();
    desk.input("printf %s {a..z}{a..z} | head -c 120; echo\r")
        .await;
    desk.wait_for_screen(&line).await;

    // A narrower viewer attaches: the size stays, and its replay is drawn
    // at the PTY's size, so the whole line is there.
    let mut phone = Viewer::attach(&mut client, id, 47, 39, true).await;
    assert_eq!(pty_size(&mut client, id).await, (130, 30));
    let (rows, cols) = phone.screen.screen().size();
    assert_eq!(
        (cols.get(), rows.get()),
        (130, 30),
        "the replay has the PTY's size"
    );
    assert!(
        phone.screen.screen().contents().contains(&line),
        "the replay holds the whole line:\n{}",
        phone.screen.screen().contents()
    );

    // A watching viewer's resize is recorded, not applied.
    phone.resize(50, 40).await;
    phone.drain(std::time::Duration::from_millis(300)).await;
    desk.input("stty size\r").await;
    desk.wait_for_output("30 130").await;
    assert_eq!(pty_size(&mut client, id).await, (130, 30));

    // The driver's resize is applied and announced to the watcher.
    desk.resize(120, 35).await;
    wait_for_announced(&mut phone, (120, 35)).await;
    desk.input("stty size\r").await;
    desk.wait_for_output("35 120").await;

    // Typing makes the watcher the driver, at the size it recorded.
    phone.input("stty size\r").await;
    phone.wait_for_output("40 50").await;
    wait_for_announced(&mut desk, (50, 40)).await;
    assert_eq!(pty_size(&mut client, id).await, (50, 40));

    // Now the former driver only watches: its resize changes nothing ...
    desk.resize(110, 33).await;
    desk.drain(std::time::Duration::from_millis(300)).await;
    phone.input("stty size; echo done-$((1+2))\r").await;
    phone.wait_for_output("done-3").await;
    let out = String::from_utf8_lossy(&phone.output)
        .matches("40 50")
        .count();
    assert_eq!(out, 2, "still the phone's size");

    // ... until it asks to fit its screen.
    desk.fit(110, 33).await;
    wait_for_announced(&mut phone, (110, 33)).await;
    assert_eq!(pty_size(&mut client, id).await, (110, 33));
}

#[tokio::test]
async fn a_viewer_attaching_when_the_driver_left_drives() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = session.id.as_str();
    let desk = Viewer::attach(&mut client, id, 100, 30, true).await;
    let mut watcher = Viewer::attach(&mut client, id, 60, 20, true).await;
    assert_eq!(pty_size(&mut client, id).await, (100, 30));
    desk.detach().await;
    // The watcher still only watches (nobody asked it to drive) ...
    watcher.resize(61, 21).await;
    watcher.drain(std::time::Duration::from_millis(300)).await;
    assert_eq!(pty_size(&mut client, id).await, (100, 30));
    // ... and a viewer attaching now, with nobody driving, drives.
    let _again = Viewer::attach(&mut client, id, 90, 28, true).await;
    assert_eq!(pty_size(&mut client, id).await, (90, 28));
}
