//! Metadata of one transcript, accumulated line by line so that an appended
//! file is parsed from its last offset only. The same counting rules are used
//! by [`super::messages`] when it reads a transcript for display.

use std::collections::{BTreeMap, VecDeque};

use super::record::{
    LiteBlock, LiteContent, Record, Usage, is_injected_prompt, parse_timestamp_ms, to_utf8,
};
use super::usage_log::{NO_MODEL, UsageLog};

/// How many recent `message.id`s are remembered to merge the lines of one API
/// response (they are written consecutively, possibly around tool results).
pub const RECENT_MESSAGE_IDS: usize = 8;

/// Longest title kept, in characters.
pub const TITLE_CHARS: usize = 120;

/// Token totals, counted once per API message.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Tokens {
    pub fn add_usage(&mut self, usage: &Usage) {
        self.input += usage.input_tokens.unwrap_or(0);
        self.output += usage.output_tokens.unwrap_or(0);
        self.cache_creation += usage.cache_creation_input_tokens.unwrap_or(0);
        self.cache_read += usage.cache_read_input_tokens.unwrap_or(0);
    }
}

/// Remembers the last few assistant `message.id`s.
#[derive(Debug, Default, Clone)]
pub struct RecentIds(VecDeque<Box<str>>);

impl RecentIds {
    /// Records `id`; true when it was already seen (a continuation line).
    pub fn seen_or_insert(&mut self, id: &str) -> bool {
        if self.0.iter().any(|known| &**known == id) {
            return true;
        }
        if self.0.len() == RECENT_MESSAGE_IDS {
            self.0.pop_front();
        }
        self.0.push_back(id.into());
        false
    }
}

/// Damage found while reading lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineDamage {
    pub corrupt: u32,
    pub invalid_utf8: u32,
    pub oversized: u32,
}

/// Metadata of one transcript file.
#[derive(Debug, Default, Clone)]
pub struct TranscriptStats {
    pub session_id: Option<String>,
    pub cwd: Option<String>,
    pub summary: Option<String>,
    pub first_prompt: Option<String>,
    pub created_ms: i64,
    pub last_ms: i64,
    pub message_count: u32,
    pub models: Vec<String>,
    pub tokens: Tokens,
    pub tool_uses: BTreeMap<String, u32>,
    pub git_branch: Option<String>,
    pub version: Option<String>,
    pub damage: LineDamage,
    /// Tokens by quarter hour and model (indexes into `models`).
    pub usage: UsageLog,
    /// The context of the last response: its input plus cache tokens.
    pub context_tokens: u64,
    /// The model of the last response.
    pub context_model: Option<u16>,
    recent_ids: RecentIds,
}

/// What kind of display message a user line makes.
pub fn user_line_is_message(content: &LiteContent<'_>) -> bool {
    match content {
        LiteContent::Text(text) => !text.is_empty(),
        LiteContent::Blocks(blocks) => blocks
            .iter()
            .any(|b| b.kind.as_deref() != Some("tool_result")),
        LiteContent::Other => false,
    }
}

impl TranscriptStats {
    /// The conversation title: the summary, else the first real prompt.
    pub fn title(&self) -> &str {
        self.summary
            .as_deref()
            .or(self.first_prompt.as_deref())
            .unwrap_or("")
    }

    /// Feeds one complete line.
    pub fn add_line(&mut self, line: &[u8]) {
        let (text, repaired) = to_utf8(line);
        if repaired {
            self.damage.invalid_utf8 += 1;
        }
        if text.trim().is_empty() {
            return;
        }
        match serde_json::from_str::<Record<'_>>(&text) {
            Ok(record) => self.add_record(&record),
            Err(_) => self.damage.corrupt += 1,
        }
    }

    /// Feeds an unterminated tail: it counts only if it is a whole record
    /// (a line still being written never parses). True when it was used.
    pub fn add_tail(&mut self, tail: &[u8]) -> bool {
        let (text, _) = to_utf8(tail);
        if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_err() {
            return false;
        }
        self.add_line(tail);
        true
    }

    fn add_record(&mut self, record: &Record<'_>) {
        if let Some(ts) = record.timestamp.as_deref().and_then(parse_timestamp_ms) {
            if self.created_ms == 0 || ts < self.created_ms {
                self.created_ms = ts;
            }
            self.last_ms = self.last_ms.max(ts);
        }
        set_once(&mut self.session_id, record.session_id.as_deref());
        set_once(&mut self.cwd, record.cwd.as_deref());
        if let Some(v) = record.version.as_deref() {
            self.version = Some(v.to_owned());
        }
        if let Some(b) = record.git_branch.as_deref().filter(|b| !b.is_empty()) {
            self.git_branch = Some(b.to_owned());
        }
        match record.kind.as_deref() {
            Some("summary") if self.summary.is_none() => {
                self.summary = record.summary.as_deref().map(one_line);
            }
            Some("user") => self.add_user(record),
            Some("assistant") => self.add_assistant(record),
            _ => {}
        }
    }

    fn add_user(&mut self, record: &Record<'_>) {
        let Some(message) = &record.message else {
            return;
        };
        let content = message.lite_content();
        if !user_line_is_message(&content) {
            return;
        }
        self.message_count += 1;
        let injected = record.is_meta == Some(true) || record.is_compact_summary == Some(true);
        if self.first_prompt.is_none() && !injected {
            let prompt = match &content {
                LiteContent::Text(t) => Some(t.as_ref()),
                LiteContent::Blocks(blocks) => first_text(blocks),
                LiteContent::Other => None,
            };
            if let Some(p) = prompt.filter(|p| !is_injected_prompt(p)) {
                self.first_prompt = Some(one_line(p));
            }
        }
    }

    fn add_assistant(&mut self, record: &Record<'_>) {
        let Some(message) = &record.message else {
            return;
        };
        let continuation = match message.id.as_deref() {
            Some(id) => self.recent_ids.seen_or_insert(id),
            None => false,
        };
        if !continuation {
            self.message_count += 1;
            let model = message.model.as_deref().map(|m| self.model_index(m));
            if let Some(usage) = &message.usage {
                self.tokens.add_usage(usage);
                let at = record.timestamp.as_deref().and_then(parse_timestamp_ms);
                let at = at.unwrap_or(self.last_ms);
                self.usage.add(at, model.unwrap_or(NO_MODEL), usage);
                self.context_tokens = usage.input_tokens.unwrap_or(0)
                    + usage.cache_creation_input_tokens.unwrap_or(0)
                    + usage.cache_read_input_tokens.unwrap_or(0);
                self.context_model = model;
            }
        }
        if let LiteContent::Blocks(blocks) = message.lite_content() {
            for block in blocks
                .iter()
                .filter(|b| b.kind.as_deref() == Some("tool_use"))
            {
                let name = block.name.as_deref().unwrap_or("unknown");
                *self.tool_uses.entry(name.to_owned()).or_default() += 1;
            }
        }
    }
}

impl TranscriptStats {
    /// The position of `model` in `models`, added when new.
    fn model_index(&mut self, model: &str) -> u16 {
        let at = match self.models.iter().position(|m| m == model) {
            Some(at) => at,
            None => {
                self.models.push(model.to_owned());
                self.models.len() - 1
            }
        };
        u16::try_from(at).unwrap_or(NO_MODEL)
    }
}

fn first_text<'b>(blocks: &'b [LiteBlock<'_>]) -> Option<&'b str> {
    blocks
        .iter()
        .find(|b| b.kind.as_deref() == Some("text"))
        .and_then(|b| b.text.as_deref())
}

fn set_once(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none()
        && let Some(v) = value.filter(|v| !v.is_empty())
    {
        *slot = Some(v.to_owned());
    }
}

/// The first non-empty line of `text`, trimmed to [`TITLE_CHARS`].
pub fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    truncate_chars(line, TITLE_CHARS)
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"type":"summary","summary":"Fix failing date util test","leafUuid":"u5"}
{"parentUuid":null,"cwd":"/home/alice/demo-app","sessionId":"s1","type":"user","message":{"role":"user","content":"The formatDate test fails, please fix it"},"uuid":"u1","timestamp":"2025-11-20T10:00:00.000Z"}
{"parentUuid":"u1","cwd":"/home/alice/demo-app","sessionId":"s1","message":{"model":"claude-sonnet-4-5","id":"msg_01A","role":"assistant","content":[{"type":"thinking","thinking":"Run the test first.","signature":"Eq"}],"usage":{"input_tokens":3,"cache_creation_input_tokens":1200,"cache_read_input_tokens":11442,"output_tokens":9}},"type":"assistant","uuid":"u2","timestamp":"2025-11-20T10:00:03.100Z"}
{"parentUuid":"u2","cwd":"/home/alice/demo-app","sessionId":"s1","message":{"model":"claude-sonnet-4-5","id":"msg_01A","role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"npm test"}}],"usage":{"input_tokens":3,"cache_creation_input_tokens":1200,"cache_read_input_tokens":11442,"output_tokens":9}},"type":"assistant","uuid":"u3","timestamp":"2025-11-20T10:00:04.000Z"}
{"parentUuid":"u3","cwd":"/home/alice/demo-app","sessionId":"s1","type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_1","type":"tool_result","content":"FAIL","is_error":false}]},"uuid":"u4","timestamp":"2025-11-20T10:00:06.500Z"}
{"parentUuid":"u4","cwd":"/home/alice/demo-app","sessionId":"s1","message":{"model":"claude-sonnet-4-5","id":"msg_01B","role":"assistant","content":[{"type":"text","text":"Fixed."}],"usage":{"input_tokens":5,"cache_read_input_tokens":12642,"output_tokens":48}},"type":"assistant","uuid":"u5","timestamp":"2025-11-20T10:00:09.200Z"}
not json
"#;

    #[test]
    fn reference_example_counts_usage_once_per_message_id() {
        let mut stats = TranscriptStats::default();
        for line in EXAMPLE.lines() {
            stats.add_line(line.as_bytes());
        }
        assert_eq!(stats.title(), "Fix failing date util test");
        assert_eq!(stats.message_count, 3);
        assert_eq!(
            stats.tokens,
            Tokens {
                input: 8,
                output: 57,
                cache_creation: 1200,
                cache_read: 24084
            }
        );
        assert_eq!(stats.tool_uses.get("Bash"), Some(&1));
        assert_eq!(stats.cwd.as_deref(), Some("/home/alice/demo-app"));
        assert_eq!(stats.damage.corrupt, 1);
        assert_eq!(stats.last_ms - stats.created_ms, 9200);
    }
}
