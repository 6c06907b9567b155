//! Flow control: a detached session never blocks.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn detached_session_keeps_running() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer
        .input("sleep 0.5; for i in $(seq 1 3000); do echo detached-$i; done; echo all-''done\r")
        .await;
    // The shell got the line (it echoes it); detach before the output comes.
    viewer.wait_for_output("all-''done").await;
    viewer.detach().await;
    drop(viewer);
    // Nobody reads: the program must still finish on its own.
    let mut late = None;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let v = Viewer::attach(&mut client, &session.id, 80, 24, false).await;
        if v.screen.screen().contents().contains("all-done") {
            late = Some(v);
            break;
        }
    }
    let late = late.expect("the detached program completed");
    assert!(late.screen.screen().contents().contains("detached-3000"));
}
