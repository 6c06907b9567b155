//! A session that needs its user: `attention` in the session JSON and on the
//! events socket, and one POST to `NOTIFY_WEBHOOK_URL` per signal (a storm
//! coalesced by the broker), carrying the session's name and the reason but
//! no terminal content, and none for a session a viewer just typed in. The
//! webhook is a stand-in HTTP server on loopback.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// The bodies of the POSTs a stand-in webhook received.
#[derive(Clone, Default)]
struct Webhook(Arc<Mutex<Vec<Value>>>);

impl Webhook {
    /// Serves on loopback; returns the stand-in and its URL.
    async fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook/topic", listener.local_addr().unwrap());
        let hook = Self::default();
        let received = hook.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let received = received.clone();
                tokio::spawn(async move {
                    let (head, body) = read_request(&mut stream).await;
                    assert!(head.starts_with("POST /hook/topic "), "{head}");
                    assert!(
                        head.to_ascii_lowercase()
                            .contains("content-type: application/json")
                    );
                    received
                        .0
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        (hook, url)
    }

    fn posts(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 request: its head and its body (by `content-length`).
async fn read_request(stream: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = stream.read(&mut buf).await.unwrap();
        assert!(read > 0, "request ended early");
        data.extend_from_slice(&buf[..read]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        if data.len() >= end + 4 + length {
            return (head, data[end + 4..end + 4 + length].to_vec());
        }
    }
}

async fn session_json(gateway: &GatewayProc, cookie: &str, id: &str) -> Value {
    let response = http()
        .get(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn attention_is_shown_and_posted_once_per_signal_without_terminal_content() {
    let broker = BrokerProc::start().await;
    let (webhook, url) = Webhook::start().await;
    let gateway = GatewayProc::start(
        &broker,
        &[
            ("NOTIFY_WEBHOOK_URL", &url),
            ("NOTIFY_QUIET_AFTER_INPUT_SECS", "2"),
        ],
    )
    .await;
    let cookie = login(&gateway).await;
    let origin = gateway.url("");
    let mut events = ws_connect(&gateway, "/ws/events", Some(&cookie), Some(&origin))
        .await
        .unwrap();
    // A session whose viewer just typed: attention, but no POST.
    let typing = create_session(&gateway, &cookie, json!({"name": "typing-here"})).await;
    let typing_id = typing["id"].as_str().unwrap();
    assert_eq!(typing["attention"], Value::Null);
    let mut terminal = Terminal::attach(&gateway, &cookie, typing_id, (80, 24)).await;
    terminal.type_text("printf '\\a'; echo rang-''now\r").await;
    terminal.wait_for("rang-now").await;
    eventually("the bell sets the attention", || async {
        session_json(&gateway, &cookie, typing_id).await["attention"]["reason"] == "bell"
    })
    .await;
    // A session that signals later (a notification, then a storm of bells).
    let away = create_session(&gateway, &cookie, json!({"name": "away-one"})).await;
    let away_id = away["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(&gateway, &cookie, away_id, (80, 24)).await;
    terminal
        .type_text(
            "sleep 3; printf '\\033]777;notify;secret-title;secret-body\\007'; \
             yes \"$(printf '\\a')\" | head -c 200000 >/dev/null; yes \"$(printf '\\a')\" | head -c 100000; echo storm-''over\r",
        )
        .await;
    terminal
        .wait_for_within("storm-over", Duration::from_secs(30))
        .await;
    let mut attention = Value::Null;
    while attention.is_null() {
        let Some(Ok(Message::Text(text))) =
            tokio::time::timeout(DEADLINE, events.next()).await.unwrap()
        else {
            panic!("events socket ended");
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        if event["type"] == "updated" && event["session"]["id"] == away_id {
            attention = event["session"]["attention"].clone();
        }
    }
    assert_eq!(attention["reason"], "notification");
    assert_eq!(attention["title"], "secret-title: secret-body");
    assert!(attention["at"].as_i64().unwrap() > 0);
    eventually("the webhook gets its POST", || async {
        !webhook.posts().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let posts = webhook.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["session"], "away-one");
    assert_eq!(posts[0]["reason"], "notification");
    assert_eq!(posts[0]["title"], "dispatch");
    assert!(posts[0]["message"].as_str().unwrap().contains("away-one"));
    assert!(!posts[0].to_string().contains("secret"), "{}", posts[0]);
    // Input clears the attention.
    terminal.type_text("\r").await;
    eventually("input clears the attention", || async {
        session_json(&gateway, &cookie, away_id).await["attention"].is_null()
    })
    .await;
}
