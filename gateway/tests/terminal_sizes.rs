//! Who sizes a session's PTY, through the gateway's terminal WebSocket with
//! a tokio-tungstenite client, a real broker and gateway: a second viewer
//! that attaches and resizes only watches; `"fit": true` makes it drive.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// Runs `stty size` from `terminal` after `label=` and returns "rows cols".
async fn stty(terminal: &mut Terminal, label: &str) -> String {
    terminal
        .type_text(&format!("echo {label}=$(stty size)=\r"))
        .await;
    loop {
        terminal.wait_for(&format!("{label}=")).await;
        let text = String::from_utf8_lossy(&terminal.screen).into_owned();
        // The echo of the command holds `{label}=$(`; the answer holds digits.
        if let Some(answer) = text
            .split(&format!("{label}="))
            .skip(1)
            .find(|part| part.starts_with(|c: char| c.is_ascii_digit()) && part.contains('='))
        {
            return answer.split('=').next().unwrap().to_owned();
        }
        let _ = terminal.next_event(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watching_viewer_resizes_nothing_until_it_asks_to_fit() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, json!({"cols": 80, "rows": 24})).await;
    let id = session["id"].as_str().unwrap();

    let mut desk = Terminal::attach(&gateway, &cookie, id, (120, 40)).await;
    assert_eq!(stty(&mut desk, "first").await, "40 120");

    let mut phone = Terminal::attach(&gateway, &cookie, id, (47, 39)).await;
    let reset = phone.next_control().await;
    assert_eq!(
        (
            reset["type"].as_str(),
            reset["cols"].as_u64(),
            reset["rows"].as_u64()
        ),
        (Some("reset"), Some(120), Some(40)),
        "the phone is told the PTY's size: {reset}"
    );
    phone
        .control(json!({"type": "resize", "cols": 50, "rows": 30}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stty(&mut desk, "watched").await, "40 120");

    phone
        .control(json!({"type": "resize", "cols": 50, "rows": 30, "fit": true}))
        .await;
    loop {
        let message = desk.next_control().await;
        if message["type"] == "session" && message["session"]["cols"] == 50 {
            assert_eq!(message["session"]["rows"], 30);
            break;
        }
    }
    assert_eq!(stty(&mut phone, "fitted").await, "30 50");
}
