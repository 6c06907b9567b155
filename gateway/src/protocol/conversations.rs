//! The conversation browser's JSON: pages of conversations and messages,
//! search hits, and the live feed's server-sent events. Metadata only in
//! lists (no message text, no tool inputs), never a transcript's file path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Token counts of a conversation, a subagent or one message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

/// How recently a conversation was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ActivityStatus {
    /// A record in the last two minutes.
    Active,
    /// A record in the last hour.
    Recent,
    Idle,
}

/// A subagent's transcript within a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Subagent {
    pub agent_id: String,
    pub message_count: u32,
    pub tokens: Tokens,
    /// Calls per tool name.
    pub tool_uses: BTreeMap<String, u32>,
    pub created_at: i64,
    pub last_activity: i64,
    pub size_bytes: u64,
}

/// The context window as of a conversation's last response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ConversationContext {
    /// The last response's input plus cache tokens.
    pub tokens: u64,
    pub window: u64,
    pub model: String,
}

/// A conversation's metadata (timestamps in Unix epoch milliseconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    /// The working directory it ran in.
    pub project: String,
    pub title: String,
    pub created_at: i64,
    pub last_activity: i64,
    pub status: ActivityStatus,
    pub message_count: u32,
    pub models: Vec<String>,
    pub tokens: Tokens,
    /// Calls per tool name.
    pub tool_uses: BTreeMap<String, u32>,
    pub subagents: Vec<Subagent>,
    pub size_bytes: u64,
    pub git_branch: String,
    /// The claude version that wrote it.
    pub version: String,
    /// Transcript lines that could not be read.
    pub damaged_lines: u32,
    /// Estimated cost in USD (subagents included) of the models with a price.
    pub cost_usd: f64,
    /// Models used that have no price (left out of `costUsd`).
    pub unpriced_models: Vec<String>,
    pub context: ConversationContext,
}

/// `GET /api/conversations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    pub conversations: Vec<Conversation>,
    /// Matches in all pages.
    pub total: u32,
    /// `cursor` of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
}

/// `Image::type`: always `"image"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ImageType {
    Image,
}

/// An image of a message or a tool result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(rename = "type")]
    pub kind: ImageType,
    pub media_type: String,
    /// Base64; `null` when too large to send.
    pub data: Option<String>,
    pub size_bytes: u64,
}

/// What a tool answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    pub tool_use_id: String,
    pub text: String,
    pub is_error: bool,
    /// `text` was cut; `sizeBytes` is the whole.
    pub truncated: bool,
    pub size_bytes: u64,
    pub images: Vec<Image>,
}

/// One block of a message's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
    },
    /// A tool call with its result when the transcript has it.
    #[serde(rename_all = "camelCase")]
    ToolCall {
        id: String,
        name: String,
        summary: String,
        /// The input as JSON text.
        input: String,
        input_truncated: bool,
        result: Option<ToolResult>,
    },
    /// A result whose call is not in the same message.
    ToolResult(ToolResult),
    /// Carries its own `type: "image"`.
    #[serde(untagged)]
    Image(Image),
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Its position in the conversation.
    pub index: u32,
    pub uuid: String,
    pub role: Role,
    pub timestamp: i64,
    pub model: Option<String>,
    /// Context injected by claude rather than typed by the user.
    pub is_meta: bool,
    pub is_compact_summary: bool,
    pub usage: Option<Tokens>,
    pub blocks: Vec<Block>,
}

/// `GET /api/conversations/{id}/messages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Messages in the conversation.
    pub total: u32,
    /// `cursor` of the page before; `null` at the start.
    pub before_cursor: Option<String>,
    /// `cursor` of the page after; `null` at the end.
    pub after_cursor: Option<String>,
}

/// One search match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub conversation_id: String,
    pub title: String,
    pub project: String,
    pub message_index: u32,
    pub role: Role,
    pub snippet: String,
    pub timestamp: i64,
}

/// `GET /api/search`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// `false` when the search ran out of time and `hits` is partial.
    pub complete: bool,
}

/// The data of a live-feed event (`GET /api/conversations/events`); the
/// SSE event name is its `type`. The feed opens with a `ready` event
/// (data `{}`), and an `error` event (data an [`ErrorBody`](super::errors::ErrorBody)) ends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FeedEvent {
    /// A conversation was added or changed.
    Changed {
        id: String,
        conversation: Option<Box<Conversation>>,
    },
    Removed {
        id: String,
    },
}

impl FeedEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Changed { .. } => "changed",
            Self::Removed { .. } => "removed",
        }
    }
}

/// How `GET /api/conversations` sorts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ConversationSort {
    /// By last activity (the default).
    Activity,
    Created,
}

/// Which way a list runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    /// The default.
    Desc,
}

/// Where an empty `cursor` starts a page of messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum MessagesFrom {
    /// The default.
    Start,
    End,
}

/// The query string of `GET /api/conversations`. The handler checks the
/// enumerated values itself, so that its refusal names the choices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(optional_fields)]
pub struct ConversationQuery {
    /// An exact working directory.
    pub project: Option<String>,
    /// A case-insensitive substring of the title or project.
    pub q: Option<String>,
    /// Last activity at or after, epoch ms.
    pub since: Option<i64>,
    /// Last activity before, epoch ms.
    pub until: Option<i64>,
    #[ts(as = "Option<ConversationSort>")]
    pub sort: Option<String>,
    #[ts(as = "Option<SortOrder>")]
    pub order: Option<String>,
    pub limit: Option<u32>,
    /// A page's `nextCursor`.
    pub cursor: Option<String>,
}

/// The query string of `GET /api/conversations/{id}/messages`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(optional_fields)]
pub struct MessageQuery {
    /// A page's `beforeCursor` or `afterCursor`.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    #[ts(as = "Option<MessagesFrom>")]
    pub from: Option<String>,
    /// A subagent's transcript instead of the main one.
    pub agent: Option<String>,
}

/// The query string of `GET /api/search`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(optional_fields)]
pub struct SearchQuery {
    /// The text to find (required).
    pub q: Option<String>,
    /// Search this conversation only.
    pub conversation: Option<String>,
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_block_carries_one_type_and_a_tool_result_its_own() {
        let image = Block::Image(Image {
            kind: ImageType::Image,
            media_type: "image/png".into(),
            data: None,
            size_bytes: 68,
        });
        assert_eq!(
            serde_json::to_string(&image).unwrap(),
            r#"{"type":"image","mediaType":"image/png","data":null,"sizeBytes":68}"#
        );
        let result = Block::ToolResult(ToolResult {
            tool_use_id: "t1".into(),
            text: "ok".into(),
            is_error: false,
            truncated: false,
            size_bytes: 2,
            images: Vec::new(),
        });
        assert_eq!(
            serde_json::to_value(&result).unwrap()["type"],
            serde_json::json!("tool_result")
        );
    }
}
