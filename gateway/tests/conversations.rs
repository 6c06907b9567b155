//! The conversation browser's HTTP API through a real gateway and a real
//! gRPC conversation service: authentication, list filters and paging, one
//! conversation, messages with joined tool results, search, the live feed
//! and the Markdown export, checked against the generated home.

mod conversations_support;

use std::io::Write;
use std::time::{Duration, Instant};

use conversations_support::Stack;
use serde_json::Value;

fn encode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)])
        .unwrap()
        .trim_start_matches("v=")
        .to_owned()
}

#[tokio::test]
async fn every_conversation_route_requires_authentication() {
    let stack = Stack::start().await;
    let id = &stack.manifest.conversations[0].id;
    for path in [
        "/api/conversations".to_owned(),
        "/api/conversations/events".to_owned(),
        format!("/api/conversations/{id}"),
        format!("/api/conversations/{id}/messages"),
        format!("/api/conversations/{id}/export.md"),
        "/api/search?q=task".to_owned(),
    ] {
        let response = stack
            .http
            .get(format!("{}{path}", stack.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "authentication required");
        let wrong = stack
            .http
            .get(format!("{}{path}", stack.base))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{path}");
    }
    let post = stack
        .http
        .post(format!("{}/api/conversations", stack.base))
        .bearer_auth(conversations_support::KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
}

#[tokio::test]
async fn list_pages_filters_and_hides_paths_and_inputs() {
    let stack = Stack::start().await;
    let m = &stack.manifest;
    let (status, all) = stack.get_json("/api/conversations?limit=500").await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], m.conversations.len());
    let text = all.to_string();
    assert!(
        !text.contains(".jsonl") && !text.contains("/projects/"),
        "no file paths"
    );
    assert!(
        !text.contains("npm test") && !text.contains("file_path"),
        "no tool inputs"
    );
    let first = &all["conversations"][0];
    assert_eq!(first["id"], m.conversations.last().unwrap().id);
    for key in [
        "title",
        "project",
        "messageCount",
        "tokens",
        "toolUses",
        "subagents",
        "lastActivity",
        "status",
    ] {
        assert!(first.get(key).is_some(), "{key}");
    }
    for expected in &m.conversations {
        let got = all["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == expected.id.as_str())
            .unwrap();
        assert_eq!(got["title"], expected.title.as_str());
        assert_eq!(got["messageCount"], expected.message_count);
        assert_eq!(got["sizeBytes"], expected.size_bytes);
        assert_eq!(got["tokens"]["output"], expected.tokens.output);
        assert_eq!(got["tokens"]["cacheRead"], expected.tokens.cache_read);
        assert_eq!(got["status"], "idle");
    }

    // Paging with the cursor walks everything once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/conversations?limit=5&cursor={c}"),
            None => "/api/conversations?limit=5".to_owned(),
        };
        let (_, page) = stack.get_json(&path).await;
        seen.extend(
            page["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), m.conversations.len());

    let project = &m.conversations[1].project;
    let (_, filtered) = stack
        .get_json(&format!(
            "/api/conversations?project={}&sort=created&order=asc",
            encode(project)
        ))
        .await;
    let expected: Vec<&str> = m
        .conversations
        .iter()
        .filter(|c| &c.project == project)
        .map(|c| c.id.as_str())
        .collect();
    let got: Vec<&str> = filtered["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);

    let (_, text) = stack
        .get_json(&format!("/api/conversations?q={}", encode("summary title")))
        .await;
    assert_eq!(
        text["total"],
        m.conversations
            .iter()
            .filter(|c| c.title.starts_with("Summary title"))
            .count()
    );
    let since = m.conversations[5].created_ms;
    let (_, recent) = stack
        .get_json(&format!("/api/conversations?since={since}"))
        .await;
    assert_eq!(recent["total"], m.conversations.len() - 5);

    for bad in [
        "sort=size",
        "order=up",
        "since=yesterday",
        "cursor=zzz",
        "limit=-1",
    ] {
        let (status, body) = stack.get_json(&format!("/api/conversations?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn one_conversation_its_messages_search_and_export() {
    let stack = Stack::start().await;
    let target = stack.manifest.conversations[4].clone();
    let (status, one) = stack
        .get_json(&format!("/api/conversations/{}", target.id))
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["title"], target.title.as_str());
    let (status, missing) = stack.get_json("/api/conversations/0000-missing").await;
    assert_eq!((status, missing["error"].is_string()), (404, true));
    let (status, _) = stack.get_json("/api/conversations/..%2F..%2Fsecret").await;
    assert!(status == 400 || status == 404, "{status}");

    // Forward paging with cursors, then the last page from the end.
    let mut messages: Vec<Value> = Vec::new();
    let mut path = format!("/api/conversations/{}/messages?limit=4", target.id);
    loop {
        let (status, page) = stack.get_json(&path).await;
        assert_eq!(status, 200);
        assert_eq!(page["total"], target.message_count);
        messages.extend(page["messages"].as_array().unwrap().iter().cloned());
        match page["afterCursor"].as_str() {
            Some(c) => {
                path = format!(
                    "/api/conversations/{}/messages?limit=4&cursor={c}",
                    target.id
                )
            }
            None => break,
        }
    }
    assert_eq!(messages.len() as u32, target.message_count);
    let (_, last) = stack
        .get_json(&format!(
            "/api/conversations/{}/messages?limit=2&from=end",
            target.id
        ))
        .await;
    assert_eq!(last["messages"][1], messages[messages.len() - 1]);
    assert!(last["afterCursor"].is_null() && last["beforeCursor"].is_string());
    for call in &target.tool_calls {
        let blocks = messages[call.message_index as usize]["blocks"]
            .as_array()
            .unwrap();
        let block = blocks
            .iter()
            .find(|b| b["type"] == "tool_call" && b["id"] == call.id.as_str())
            .unwrap();
        assert_eq!(block["name"], call.name.as_str());
        assert!(
            block["result"]["text"]
                .as_str()
                .unwrap()
                .starts_with(&call.result_prefix)
        );
        assert_eq!(block["result"]["isError"], call.is_error);
    }
    let (status, _) = stack
        .get_json(&format!(
            "/api/conversations/{}/messages?cursor=nope",
            target.id
        ))
        .await;
    assert_eq!(status, 400);

    let (status, found) = stack
        .get_json(&format!("/api/search?q={}", target.marker))
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["hits"].as_array().unwrap().len(), 1);
    assert_eq!(found["hits"][0]["conversationId"], target.id.as_str());
    assert_eq!(
        found["hits"][0]["messageIndex"],
        target.marker_message_index
    );
    let (_, within) = stack
        .get_json(&format!("/api/search?q=step&conversation={}", target.id))
        .await;
    assert!(
        within["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["conversationId"] == target.id.as_str())
    );
    assert_eq!(stack.get_json("/api/search").await.0, 400);
    assert_eq!(stack.get_json("/api/search?q=a").await.0, 400);

    let export = stack
        .get(&format!("/api/conversations/{}/export.md", target.id))
        .await;
    assert_eq!(export.status().as_u16(), 200);
    assert!(
        export.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let markdown = export.text().await.unwrap();
    assert!(markdown.starts_with(&format!("# {}", target.title)));
    assert!(markdown.contains("**Tool: Bash**"));
    assert!(markdown.contains(&target.tool_calls[0].result_prefix));
    assert_eq!(
        markdown.matches("\n## ").count() as u32,
        target.message_count
    );
}

/// Reads server-sent events until one of kind `event` whose data satisfies `want`.
async fn next_sse(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    event: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let kind = frame
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim)
                .unwrap_or("message");
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            if kind == event {
                let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                if want(&value) {
                    return value;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .expect("no matching event")
            .unwrap()
            .expect("feed open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn an_append_reaches_the_live_feed() {
    let stack = Stack::start().await;
    let target = stack.manifest.conversations[7].clone();
    let response = stack.get("/api/conversations/events").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = response;
    let mut buffer = String::new();
    next_sse(&mut stream, &mut buffer, "ready", |_| true).await;

    let line = serde_json::json!({
        "type": "user", "cwd": target.project, "sessionId": target.id, "uuid": "appended",
        "timestamp": dispatch_testkit::iso_timestamp(target.last_ms + 5000),
        "message": {"role": "user", "content": "one more question"},
    });
    let started = Instant::now();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&target.path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
    let event = next_sse(&mut stream, &mut buffer, "changed", |v| {
        v["id"] == target.id.as_str()
            && v["conversation"]["messageCount"] == target.message_count + 1
    })
    .await;
    eprintln!("append to feed event: {:?}", started.elapsed());
    assert_eq!(event["conversation"]["title"], target.title.as_str());
    assert!(!event.to_string().contains(".jsonl"));
}
