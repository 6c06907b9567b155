//! A stand-in for the Anthropic Messages API on loopback, for end-to-end
//! tests with the real `claude` CLI (`ANTHROPIC_BASE_URL` pointed at it).
//!
//! It answers `GET /api/claude_code/*` with `{}` and `POST /v1/messages`
//! (streamed or not) by a fixed script: a request offering the Bash tool
//! and carrying no `tool_result` gets a `tool_use` of Bash running
//! [`MessagesApi::command`]; any other request gets a short text answer.
//! Every request body is kept, so a test can see the `tool_result` arrive.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The running stand-in.
#[derive(Clone)]
pub struct MessagesApi {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The Bash command the `tool_use` asks for.
    pub command: String,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl MessagesApi {
    /// Serves on an ephemeral loopback port until the runtime ends.
    pub async fn start(command: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let api = Self {
            url: format!("http://{}", listener.local_addr()?),
            command: command.to_owned(),
            requests: Arc::default(),
        };
        let serving = api.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let api = serving.clone();
                tokio::spawn(async move { api.serve(stream).await });
            }
        });
        Ok(api)
    }

    /// The bodies of the `POST /v1/messages` requests so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// Whether a request carried a `tool_result` (the tool ran, or was refused).
    pub fn tool_result(&self) -> Option<Value> {
        self.requests().iter().find_map(find_tool_result)
    }

    async fn serve(&self, mut stream: TcpStream) {
        while let Some((head, body)) = read_request(&mut stream).await {
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let answer = if path.starts_with("/v1/messages") {
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                self.requests.lock().unwrap().push(request.clone());
                self.answer(&request)
            } else {
                http_response("application/json", "{}")
            };
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// The response to one Messages API request.
    fn answer(&self, request: &Value) -> String {
        let offers_bash = request["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == "Bash"));
        let content = if offers_bash && find_tool_result(request).is_none() {
            json!({"type": "tool_use", "id": "toolu_standin_1", "name": "Bash",
                   "input": {"command": self.command, "description": "Run the command"}})
        } else {
            json!({"type": "text", "text": "Done."})
        };
        if request["stream"] == true {
            http_response("text/event-stream", &stream_events(&content))
        } else {
            http_response("application/json", &message(&content).to_string())
        }
    }
}

fn find_tool_result(body: &Value) -> Option<Value> {
    body["messages"].as_array()?.iter().find_map(|message| {
        message["content"]
            .as_array()?
            .iter()
            .find(|block| block["type"] == "tool_result")
            .cloned()
    })
}

fn stop_reason(content: &Value) -> &'static str {
    if content["type"] == "tool_use" {
        "tool_use"
    } else {
        "end_turn"
    }
}

/// A whole (non-streamed) message.
fn message(content: &Value) -> Value {
    json!({
        "id": "msg_standin", "type": "message", "role": "assistant",
        "model": "claude-standin", "content": [content],
        "stop_reason": stop_reason(content), "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    })
}

/// The server-sent events of a streamed message with one content block.
fn stream_events(content: &Value) -> String {
    let (start, delta) = if content["type"] == "tool_use" {
        let mut start = content.clone();
        start["input"] = json!({});
        let partial = content["input"].to_string();
        (
            start,
            json!({"type": "input_json_delta", "partial_json": partial}),
        )
    } else {
        (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": content["text"]}),
        )
    };
    let mut started = message(content);
    started["content"] = json!([]);
    started["stop_reason"] = Value::Null;
    let events = [
        json!({"type": "message_start", "message": started}),
        json!({"type": "content_block_start", "index": 0, "content_block": start}),
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(content), "stop_sequence": null},
               "usage": {"output_tokens": 5}}),
        json!({"type": "message_stop"}),
    ];
    events
        .iter()
        .map(|event| {
            format!(
                "event: {}\ndata: {event}\n\n",
                event["type"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn http_response(content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one HTTP/1.1 request (body by `content-length` or chunked);
/// `None` when the connection ends.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let rest = &data[end + 4..];
            if let Some(body) = complete_body(&head, rest) {
                return Some((head, body));
            }
        }
        let read = stream.read(&mut buf).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..read]);
    }
}

/// The body when all of it is in `rest`.
fn complete_body(head: &str, rest: &[u8]) -> Option<Vec<u8>> {
    if head.contains("transfer-encoding: chunked") {
        return dechunk(rest);
    }
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    (rest.len() >= length).then(|| rest[..length].to_vec())
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if rest.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
