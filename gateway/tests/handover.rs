//! An idle viewer moves to a fresh broker stream after a burst (shedding
//! the buffers the burst left in its stream), through the real gateway,
//! broker and a WebSocket client: the browser sees no reset, loses no
//! output, and its input still reaches the shell.

mod common;

use common::*;

/// Counts the viewers handed over so far.
const HANDOVERS: &str = "dispatch_gateway_broker_stream_handovers_total";

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_viewer_moves_to_a_fresh_stream_without_reset_or_loss() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(&gateway, &cookie, id, (80, 24)).await;
    terminal
        .type_text("stty -echo; seq 1 20000; echo burst''-done\r")
        .await;
    terminal.wait_for("burst-done").await;
    assert_eq!(metrics(&gateway).await.sum(HANDOVERS), 0.0);

    // Quiet after a burst: the viewer is handed over.
    eventually("the idle viewer is handed over", || async {
        metrics(&gateway).await.sum(HANDOVERS) == 1.0
    })
    .await;
    let shown = http()
        .get(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(shown["viewers"], 1, "{shown}");

    terminal
        .type_text("seq 20001 20500; echo after''-done\r")
        .await;
    terminal.wait_for("after-done").await;
    let resets = terminal.controls.iter().filter(|c| c["type"] == "reset");
    assert_eq!(resets.count(), 1, "only the first attach resets the screen");
    let text = String::from_utf8_lossy(&terminal.screen).replace("\r\n", "\n");
    let lines = |from, to| (from..=to).map(|n| format!("{n}\n")).collect::<String>();
    assert!(
        text.contains(&lines(1, 20000)),
        "the burst, every line in order"
    );
    assert!(
        text.contains(&lines(20001, 20500)),
        "after: every line in order"
    );
}
