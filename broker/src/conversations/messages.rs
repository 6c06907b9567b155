//! Reads one transcript from disk for display: merges the lines of each API
//! response into one message, joins tool results to their calls, bounds
//! large texts and images, and pages the result by cursor. Counting follows
//! the same rules as [`super::stats`], so `total` equals the index's
//! message count.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use dispatch_proto::v1 as pb;
use pb::content_block::Kind as Block;
use serde_json::Value;

use super::record::{
    Line, MAX_LINE_BYTES, Record, RecordMessage, parse_timestamp_ms, scan_lines, to_utf8,
};
use super::stats::{RECENT_MESSAGE_IDS, RecentIds, Tokens, truncate_chars, user_line_is_message};

/// Longest tool result text kept per call, in bytes.
pub const RESULT_TEXT_BYTES: usize = 64 * 1024;
/// Longest pretty-printed tool input kept per call, in bytes.
pub const INPUT_JSON_BYTES: usize = 16 * 1024;
/// Largest image (base64) sent; larger ones keep only their size.
pub const IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Longest one-line tool call summary, in characters.
const SUMMARY_CHARS: usize = 120;

/// Reads every message of a transcript at once, in one pass. Serving uses
/// [`super::pages`], whose memory is bounded by the page; this whole-file
/// reader is the reference it is checked against.
pub fn read_messages(path: &Path) -> io::Result<Vec<pb::Message>> {
    let file = File::open(path)?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut builder = Builder::default();
    let end = scan_lines(&mut reader, MAX_LINE_BYTES, |line| {
        if let Line::Complete(bytes) = line {
            builder.add_line(bytes);
        }
    })?;
    if !end.tail.is_empty() && !end.tail_oversized {
        let (text, _) = to_utf8(&end.tail);
        if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
            builder.add_line(&end.tail);
        }
    }
    Ok(builder.messages)
}

#[derive(Default)]
struct Builder {
    messages: Vec<pb::Message>,
    recent: RecentIds,
    /// `message.id` -> index of its message, for the last few responses.
    by_message_id: VecDeque<(Box<str>, usize)>,
    /// Tool calls awaiting a result: `tool_use.id` -> (message, block).
    pending: HashMap<String, (usize, usize)>,
}

impl Builder {
    fn add_line(&mut self, line: &[u8]) {
        let (text, _) = to_utf8(line);
        if text.trim().is_empty() {
            return;
        }
        let Ok(record) = serde_json::from_str::<Record<'_>>(&text) else {
            return;
        };
        match record.kind.as_deref() {
            Some("user") => self.add_user(&record),
            Some("assistant") => self.add_assistant(&record),
            _ => {}
        }
    }

    fn add_user(&mut self, record: &Record<'_>) {
        let Some(message) = &record.message else {
            return;
        };
        let is_message = user_line_is_message(&message.lite_content());
        let (blocks, results) = user_parts(parse_content(message.content));
        if is_message {
            let mut msg = new_message(record, pb::MessageRole::User, self.messages.len());
            msg.blocks = blocks;
            self.messages.push(msg);
        }
        for result in results {
            self.join(result);
        }
    }

    fn add_assistant(&mut self, record: &Record<'_>) {
        let Some(message) = &record.message else {
            return;
        };
        let index = match message.id.as_deref() {
            Some(id) if self.recent.seen_or_insert(id) => self
                .by_message_id
                .iter()
                .find(|(known, _)| &**known == id)
                .map(|(_, i)| *i),
            _ => None,
        };
        let index = match index {
            Some(i) => i,
            None => {
                let msg = assistant_message(record, message, self.messages.len());
                self.messages.push(msg);
                let i = self.messages.len() - 1;
                if let Some(id) = message.id.as_deref() {
                    if self.by_message_id.len() == RECENT_MESSAGE_IDS {
                        self.by_message_id.pop_front();
                    }
                    self.by_message_id.push_back((id.into(), i));
                }
                i
            }
        };
        if let Value::Array(items) = parse_content(message.content) {
            for item in items {
                let Some(block) = display_block(&item) else {
                    continue;
                };
                let msg = &mut self.messages[index];
                if let Some(Block::ToolCall(call)) = &block.kind {
                    self.pending
                        .insert(call.id.clone(), (index, msg.blocks.len()));
                }
                msg.blocks.push(block);
            }
        }
    }

    /// Attaches a result to its call, or to the latest message when the
    /// call is not in the transcript.
    fn join(&mut self, result: pb::ToolResult) {
        if let Some((m, b)) = self.pending.remove(&result.tool_use_id)
            && let Some(Block::ToolCall(call)) = self
                .messages
                .get_mut(m)
                .and_then(|msg| msg.blocks.get_mut(b))
                .and_then(|b| b.kind.as_mut())
        {
            call.result = Some(result);
            return;
        }
        if let Some(last) = self.messages.last_mut() {
            last.blocks.push(pb::ContentBlock {
                kind: Some(Block::ToolResult(result)),
            });
        }
    }
}

/// The displayable blocks and the tool results of a user line's content.
pub(super) fn user_parts(content: Value) -> (Vec<pb::ContentBlock>, Vec<pb::ToolResult>) {
    let mut blocks = Vec::new();
    let mut results = Vec::new();
    match content {
        Value::String(text) => blocks.push(pb::ContentBlock {
            kind: Some(Block::Text(text)),
        }),
        Value::Array(items) => {
            for item in items {
                match item.get("type").and_then(Value::as_str) {
                    Some("tool_result") => results.push(tool_result(&item)),
                    _ => blocks.extend(display_block(&item)),
                }
            }
        }
        _ => {}
    }
    (blocks, results)
}

/// A new assistant message from the first line of its API response.
pub(super) fn assistant_message(
    record: &Record<'_>,
    message: &RecordMessage<'_>,
    index: usize,
) -> pb::Message {
    let mut msg = new_message(record, pb::MessageRole::Assistant, index);
    msg.model = message.model.as_deref().unwrap_or_default().to_owned();
    if let Some(usage) = &message.usage {
        let mut t = Tokens::default();
        t.add_usage(usage);
        msg.usage = Some(pb::TokenTotals {
            input: t.input,
            output: t.output,
            cache_creation: t.cache_creation,
            cache_read: t.cache_read,
        });
    }
    msg
}

pub(super) fn parse_content(raw: Option<&serde_json::value::RawValue>) -> Value {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Value::Null)
}

pub(super) fn new_message(record: &Record<'_>, role: pb::MessageRole, index: usize) -> pb::Message {
    pb::Message {
        index: index as u32,
        uuid: record.uuid.as_deref().unwrap_or_default().to_owned(),
        role: role as i32,
        timestamp_ms: record
            .timestamp
            .as_deref()
            .and_then(parse_timestamp_ms)
            .unwrap_or(0),
        is_meta: record.is_meta == Some(true),
        is_compact_summary: record.is_compact_summary == Some(true),
        ..Default::default()
    }
}

/// A displayable block (text, thinking, tool call, image).
pub(super) fn display_block(item: &Value) -> Option<pb::ContentBlock> {
    let kind = match item.get("type").and_then(Value::as_str)? {
        "text" => Block::Text(item.get("text")?.as_str()?.to_owned()),
        "thinking" => Block::Thinking(item.get("thinking")?.as_str()?.to_owned()),
        "tool_use" => Block::ToolCall(tool_call(item)),
        "image" => Block::Image(image(item)?),
        _ => return None,
    };
    Some(pb::ContentBlock { kind: Some(kind) })
}

fn tool_call(item: &Value) -> pb::ToolCall {
    let name = item
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let input = item.get("input").cloned().unwrap_or(Value::Null);
    let pretty = serde_json::to_string_pretty(&input).unwrap_or_default();
    let (input_json, input_truncated) = bounded(&pretty, INPUT_JSON_BYTES);
    pb::ToolCall {
        id: item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        summary: tool_summary(&name, &input),
        name,
        input_json,
        input_truncated,
        result: None,
    }
}

/// One line describing a tool call from its most telling input field.
pub fn tool_summary(name: &str, input: &Value) -> String {
    let field = |key: &str| input.get(key).and_then(Value::as_str);
    let text = match name {
        "Bash" => field("description").or(field("command")).map(str::to_owned),
        "Read" | "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => field("file_path")
            .or(field("notebook_path"))
            .map(str::to_owned),
        "Grep" | "Glob" => field("pattern").map(str::to_owned),
        "WebFetch" => field("url").map(str::to_owned),
        "WebSearch" => field("query").map(str::to_owned),
        "Task" | "Agent" => field("description").map(str::to_owned),
        "TodoWrite" => input
            .get("todos")
            .and_then(Value::as_array)
            .map(|t| format!("{} todos", t.len())),
        _ => None,
    };
    let text = text.or_else(|| {
        input
            .as_object()?
            .values()
            .find_map(|v| v.as_str().map(str::to_owned))
    });
    let line = text
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    truncate_chars(&line, SUMMARY_CHARS)
}

fn tool_result(item: &Value) -> pb::ToolResult {
    let mut text = String::new();
    let mut images = Vec::new();
    match item.get("content") {
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(parts)) => {
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    Some("image") => images.extend(image(part)),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    let size_bytes = text.len() as u64;
    let (text, truncated) = bounded(&text, RESULT_TEXT_BYTES);
    pb::ToolResult {
        tool_use_id: item
            .get("tool_use_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        text,
        is_error: item
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        truncated,
        size_bytes,
        images,
    }
}

fn image(item: &Value) -> Option<pb::Image> {
    let source = item.get("source")?;
    let data = source.get("data").and_then(Value::as_str).unwrap_or("");
    let media_type = source
        .get("media_type")
        .and_then(Value::as_str)
        .unwrap_or("image/png");
    let allowed = matches!(
        media_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    );
    Some(pb::Image {
        media_type: media_type.to_owned(),
        data_base64: if allowed && data.len() <= IMAGE_BYTES {
            data.to_owned()
        } else {
            String::new()
        },
        size_bytes: data.len() as u64 * 3 / 4,
    })
}

/// `text` cut to at most `max` bytes on a character boundary.
fn bounded(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_owned(), false);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (text[..cut].to_owned(), true)
}

/// A position in a transcript's message list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Messages from this index on.
    After(u32),
    /// Messages before this index.
    Before(u32),
}

impl Cursor {
    /// Parses an opaque cursor (`a<index>` or `b<index>`).
    pub fn parse(text: &str) -> Option<Self> {
        let (dir, n) = text.split_at_checked(1)?;
        let n: u32 = n.parse().ok()?;
        match dir {
            "a" => Some(Self::After(n)),
            "b" => Some(Self::Before(n)),
            _ => None,
        }
    }

    /// The message range `start..end` of a page of at most `limit` out of
    /// `total` messages.
    pub fn bounds(self, total: u32, limit: u32) -> (u32, u32) {
        match self {
            Self::After(n) => {
                let start = n.min(total);
                (start, start.saturating_add(limit).min(total))
            }
            Self::Before(n) => {
                let end = n.min(total);
                (end.saturating_sub(limit), end)
            }
        }
    }

    pub fn encode(self) -> String {
        match self {
            Self::After(n) => format!("a{n}"),
            Self::Before(n) => format!("b{n}"),
        }
    }
}

/// The page of `messages` at `cursor`.
pub fn page(mut messages: Vec<pb::Message>, cursor: Cursor, limit: u32) -> pb::GetMessagesResponse {
    let total = messages.len() as u32;
    let (start, end) = cursor.bounds(total, limit);
    messages.truncate(end as usize);
    messages.drain(..start as usize);
    page_response(messages, total, start, end)
}

/// The response for messages `start..end` of `total`.
pub(super) fn page_response(
    messages: Vec<pb::Message>,
    total: u32,
    start: u32,
    end: u32,
) -> pb::GetMessagesResponse {
    pb::GetMessagesResponse {
        messages,
        total,
        before_cursor: if start > 0 {
            Cursor::Before(start).encode()
        } else {
            String::new()
        },
        after_cursor: if end < total {
            Cursor::After(end).encode()
        } else {
            String::new()
        },
    }
}

/// The searchable text of a message, lowercased.
pub fn message_text(message: &pb::Message) -> String {
    let mut out = String::new();
    for block in &message.blocks {
        match &block.kind {
            Some(Block::Text(t)) | Some(Block::Thinking(t)) => push_line(&mut out, t),
            Some(Block::ToolCall(call)) => {
                push_line(&mut out, &call.name);
                push_line(&mut out, &call.input_json);
                if let Some(result) = &call.result {
                    push_line(&mut out, &result.text);
                }
            }
            Some(Block::ToolResult(result)) => push_line(&mut out, &result.text),
            Some(Block::Image(_)) | None => {}
        }
    }
    out
}

fn push_line(out: &mut String, text: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(Cursor::parse("a12"), Some(Cursor::After(12)));
        assert_eq!(Cursor::parse("b0"), Some(Cursor::Before(0)));
        assert_eq!(Cursor::parse("c1"), None);
        assert_eq!(Cursor::parse("a-1"), None);
        assert_eq!(Cursor::parse(""), None);
        assert_eq!(Cursor::Before(7).encode(), "b7");
    }

    #[test]
    fn pages_from_both_ends() {
        let messages: Vec<pb::Message> = (0..10)
            .map(|i| pb::Message {
                index: i,
                ..Default::default()
            })
            .collect();
        let first = page(messages.clone(), Cursor::After(0), 4);
        assert_eq!(first.messages.len(), 4);
        assert_eq!(first.before_cursor, "");
        assert_eq!(first.after_cursor, "a4");
        let last = page(messages, Cursor::Before(10), 4);
        assert_eq!(
            last.messages.iter().map(|m| m.index).collect::<Vec<_>>(),
            [6, 7, 8, 9]
        );
        assert_eq!(last.before_cursor, "b6");
        assert_eq!(last.after_cursor, "");
    }

    #[test]
    fn summaries_pick_the_telling_field() {
        let input = serde_json::json!({"command": "npm test", "description": "Run tests"});
        assert_eq!(tool_summary("Bash", &input), "Run tests");
        let input = serde_json::json!({"file_path": "/src/a.rs"});
        assert_eq!(tool_summary("Read", &input), "/src/a.rs");
    }
}
