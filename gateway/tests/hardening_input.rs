//! Input the broker refuses reaches HTTP clients as a 400 with a short JSON
//! message (never a 502), and the Markdown export carries no byte a
//! terminal would interpret: a real broker and a real gateway.

mod common;

use common::{BrokerProc, GatewayProc, http, login};

const CONVERSATION: &str = "5b0c8a3e-6f1d-4e2a-9c7b-0d4f3e2a1b6c";

/// A transcript whose text carries escape sequences, an OSC hyperlink and
/// title, bidirectional overrides and zero-width characters.
fn write_transcript(claude_home: &std::path::Path) {
    let dir = claude_home.join("projects").join("-work-demo");
    std::fs::create_dir_all(&dir).unwrap();
    let record = |kind: &str, uuid: &str, time: &str, message: serde_json::Value| {
        serde_json::json!({
            "parentUuid": null, "isSidechain": false, "userType": "external",
            "cwd": "/work/demo", "sessionId": CONVERSATION, "version": "2.0.0",
            "type": kind, "uuid": uuid, "timestamp": time, "message": message,
        })
        .to_string()
    };
    let lines = [
        record(
            "user",
            "00000000-0000-4000-8000-000000000001",
            "2026-01-02T03:04:05.000Z",
            serde_json::json!({"role": "user",
                "content": "title\u{1b}]0;owned\u{7}here \u{1b}[31mred\u{1b}[0m"}),
        ),
        record(
            "assistant",
            "00000000-0000-4000-8000-000000000002",
            "2026-01-02T03:04:06.000Z",
            serde_json::json!({"role": "assistant", "model": "claude-test", "id": "msg_1",
                "type": "message", "stop_reason": "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 1},
                "content": [{"type": "text", "text":
                    "see \u{1b}]8;;https://evil.example\u{1b}\\link\u{1b}]8;;\u{1b}\\ \
                     cod\u{202e}exe.txt zero\u{200b}width back\u{8}space cr\rover \u{9b}2J"}]}),
        ),
    ];
    std::fs::write(
        dir.join(format!("{CONVERSATION}.jsonl")),
        lines.join("\n") + "\n",
    )
    .unwrap();
}

/// A broker whose Claude home holds the transcript, and a gateway.
async fn start() -> (BrokerProc, GatewayProc) {
    let mut broker = BrokerProc::start().await;
    // The broker's home is its directory; restart it so that its first
    // scan finds the transcript.
    write_transcript(&broker.dir.path().join(".claude"));
    broker.kill().await;
    broker.spawn().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    (broker, gateway)
}

async fn get(gateway: &GatewayProc, cookie: &str, path: &str) -> reqwest::Response {
    http()
        .get(gateway.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Asserts a 400 with a short JSON `error`.
async fn assert_bad_request(response: reqwest::Response, what: &str) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 400, "{what}: {body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty() && error.len() <= 512, "{what}: {body}");
}

#[tokio::test]
async fn oversized_and_invisible_input_is_a_clean_400() {
    let (_broker, gateway) = start().await;
    let cookie = login(&gateway).await;
    let huge = "a".repeat(17_000);
    let path = format!("/api/conversations/{CONVERSATION}/messages?agent={huge}");
    assert_bad_request(get(&gateway, &cookie, &path).await, "a 17k agent").await;
    let path = format!("/api/conversations/{CONVERSATION}/messages?cursor={huge}");
    assert_bad_request(get(&gateway, &cookie, &path).await, "a 17k cursor").await;
    for name in ["cod\u{202e}txt.exe", "zero\u{200b}width", "\u{2067}isolate"] {
        let response = http()
            .post(gateway.url("/api/sessions"))
            .header("cookie", &cookie)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_bad_request(response, &format!("session name {name:?}")).await;
    }
}

#[tokio::test]
async fn the_markdown_export_shows_text_without_escape_sequences() {
    let (_broker, gateway) = start().await;
    let cookie = login(&gateway).await;
    let path = format!("/api/conversations/{CONVERSATION}/export.md");
    let response = get(&gateway, &cookie, &path).await;
    assert_eq!(response.status(), 200);
    let markdown = response.text().await.unwrap();
    // The words are all there...
    for words in [
        "title", "here", "red", "link", "exe.txt", "width", "space", "over",
    ] {
        assert!(markdown.contains(words), "{words:?} missing:\n{markdown}");
    }
    // ... and nothing a terminal or an editor would act on.
    let hidden: Vec<String> = markdown
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?} in:\n{markdown:?}");
}
