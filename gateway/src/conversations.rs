//! The conversation browser's HTTP routes, in front of the broker's
//! `dispatch.v1.Conversations` service: the paged list with filters, one
//! conversation, its messages, search, a live feed (server-sent events) and
//! a streamed Markdown export. All of them sit behind the gateway's
//! authentication (their lines in [`crate::routes::ROUTES`] say so).
//!
//! Responses never carry transcript file paths; list entries carry metadata
//! only (no message text, no tool inputs).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use dispatch_proto::time::now_ms;
use dispatch_proto::v1 as pb;
use futures::StreamExt;
use pb::content_block::Kind as Block;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::error::{ApiError, json_response};
use crate::protocol::conversations::{
    self as wire, ActivityStatus, Block as WireBlock, ConversationContext, ConversationPage,
    ConversationQuery, FeedEvent, ImageType, MessagePage, MessageQuery, Role, SearchQuery,
    SearchResults, Subagent, Tokens,
};
use crate::protocol::errors::ErrorBody;
use crate::router::ApiRequest;
use crate::state::AppState;

/// A conversation counts as active for this long after its last record.
const ACTIVE_MS: i64 = 2 * 60 * 1000;
/// ... and as recent for this long.
const RECENT_MS: i64 = 60 * 60 * 1000;
/// Messages fetched per broker call while exporting.
const EXPORT_PAGE: u32 = 200;
/// Keep-alive comment period of the live feed.
const FEED_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Query parameters, percent-decoded.
fn query<T: for<'de> Deserialize<'de>>(request: &ApiRequest) -> Result<T, ApiError> {
    serde_urlencoded::from_str(request.query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("bad query: {e}")))
}

/// `GET /api/conversations`.
pub async fn list(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let params: ConversationQuery = query(request)?;
    let sort = match params.sort.as_deref() {
        None | Some("activity") => pb::ConversationSort::LastActivity,
        Some("created") => pb::ConversationSort::Created,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort must be activity or created, not {other:?}"
            )));
        }
    };
    let ascending = match params.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "order must be asc or desc, not {other:?}"
            )));
        }
    };
    let req = pb::ListConversationsRequest {
        project: params.project.unwrap_or_default(),
        text: params.q.unwrap_or_default(),
        active_since_ms: params.since.unwrap_or(0),
        active_until_ms: params.until.unwrap_or(0),
        sort: sort as i32,
        ascending,
        page_size: params.limit.unwrap_or(0),
        page_token: params.cursor.unwrap_or_default(),
    };
    let mut client = state.broker.conversations();
    let page = client
        .list_conversations(state.broker.request(req, &request.id))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    let now = now_ms();
    let conversations = page
        .conversations
        .iter()
        .map(|c| conversation(c, now))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &ConversationPage {
            conversations,
            total: page.total,
            next_cursor: non_empty(page.next_page_token),
        },
    ))
}

/// A conversation id ([`dispatch_proto::limits::is_conversation_id`]).
fn check_id(id: &str) -> Result<(), ApiError> {
    if dispatch_proto::limits::is_conversation_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request("invalid conversation id"))
    }
}

/// `GET /api/conversations/{id}`.
pub async fn get(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = request.param("id");
    check_id(id)?;
    let mut client = state.broker.conversations();
    let conversation = client
        .get_conversation(state.broker.request(
            pb::GetConversationRequest { id: id.to_owned() },
            &request.id,
        ))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(json_response(
        StatusCode::OK,
        &self::conversation(&conversation, now_ms()),
    ))
}

/// `GET /api/conversations/{id}/messages`.
pub async fn messages(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = request.param("id");
    check_id(id)?;
    let params: MessageQuery = query(request)?;
    let from_end = match params.from.as_deref() {
        None | Some("start") => false,
        Some("end") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "from must be start or end, not {other:?}"
            )));
        }
    };
    if let Some(agent) = params.agent.as_deref() {
        check_id(agent).map_err(|_| ApiError::bad_request("invalid agent id"))?;
    }
    let req = pb::GetMessagesRequest {
        id: id.to_owned(),
        cursor: params.cursor.unwrap_or_default(),
        limit: params.limit.unwrap_or(0),
        from_end,
        agent_id: params.agent.unwrap_or_default(),
    };
    let mut client = state.broker.conversations();
    let page = client
        .get_messages(state.broker.request(req, &request.id))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(json_response(
        StatusCode::OK,
        &MessagePage {
            messages: page.messages.iter().map(message).collect(),
            total: page.total,
            before_cursor: non_empty(page.before_cursor),
            after_cursor: non_empty(page.after_cursor),
        },
    ))
}

/// `GET /api/search`.
pub async fn search(state: &Arc<AppState>, request: &ApiRequest) -> Result<Response, ApiError> {
    let params: SearchQuery = query(request)?;
    let q = params.q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::bad_request("q is required"));
    }
    let conversation_id = params.conversation.unwrap_or_default();
    if !conversation_id.is_empty() {
        check_id(&conversation_id)?;
    }
    let req = pb::SearchConversationsRequest {
        query: q,
        conversation_id,
        limit: params.limit.unwrap_or(0),
    };
    let mut client = state.broker.conversations();
    let mut stream = client
        .search_conversations(state.broker.stream_request(req, &request.id))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    let mut hits = Vec::new();
    let mut complete = true;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(found))) => hits.push(hit(&found)),
            Ok(Some(Err(status))) => return Err(ApiError::from_status(&status)),
            Ok(None) => break,
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &SearchResults { hits, complete },
    ))
}

/// The live feed: `ready` once subscribed, then `changed` / `removed`
/// events; an `error` event ends it (the browser reconnects by itself). It
/// also ends, with an `error` event, when the login it was opened with is
/// revoked or expires.
/// `GET /api/conversations/events`: the live feed.
pub async fn feed(state: &Arc<AppState>, request: &ApiRequest) -> Response {
    let (tx, rx) = mpsc::channel::<Result<warp::sse::Event, Infallible>>(64);
    let mut client = state.broker.conversations();
    let call = client.watch_conversations(
        state
            .broker
            .stream_request(pb::WatchConversationsRequest {}, &request.id),
    );
    let upstream = match call.await {
        Ok(response) => response.into_inner(),
        Err(status) => return ApiError::from_status(&status).into_response(),
    };
    let shutdown = state.shutdown.clone();
    let (state, credential) = (Arc::clone(state), request.credential.clone());
    tokio::spawn(async move {
        let mut upstream = upstream;
        let ready = warp::sse::Event::default().event("ready").data("{}");
        if tx.send(Ok(ready)).await.is_err() {
            return;
        }
        let ended = crate::auth::stream_ended(&state.auth, credential.as_ref());
        tokio::pin!(ended);
        loop {
            let item = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tx.closed() => break,
                reason = &mut ended => {
                    let _ = tx.send(Ok(error_event(reason))).await;
                    break;
                }
                item = upstream.next() => item,
            };
            let last = !matches!(item, Some(Ok(_)));
            let event = match item {
                Some(Ok(event)) => feed_event(&event),
                Some(Err(status)) => error_event(&ApiError::from_status(&status).message),
                None => error_event("the broker ended the feed"),
            };
            if tx.send(Ok(event)).await.is_err() || last {
                break;
            }
        }
    });
    let stream = warp::sse::keep_alive()
        .interval(FEED_KEEP_ALIVE)
        .stream(ReceiverStream::new(rx));
    let mut response = warp::sse::reply(stream).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn feed_event(event: &pb::ConversationEvent) -> warp::sse::Event {
    let now = now_ms();
    let body = match pb::conversation_event::Kind::try_from(event.kind) {
        Ok(pb::conversation_event::Kind::Removed) => FeedEvent::Removed {
            id: event.id.clone(),
        },
        _ => FeedEvent::Changed {
            id: event.id.clone(),
            conversation: (event.conversation.as_ref()).map(|c| Box::new(conversation(c, now))),
        },
    };
    warp::sse::Event::default()
        .event(body.name())
        .data(serde_json::to_string(&body).unwrap_or_default())
}

fn error_event(message: &str) -> warp::sse::Event {
    warp::sse::Event::default()
        .event("error")
        .data(serde_json::to_string(&ErrorBody::new(message)).unwrap_or_default())
}

/// `GET /api/conversations/{id}/export.md`: the whole conversation as
/// Markdown, streamed page by page.
pub async fn export(state: &Arc<AppState>, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = request.param("id");
    check_id(id)?;
    let mut client = state.broker.conversations();
    let conversation = client
        .get_conversation(state.broker.request(
            pb::GetConversationRequest { id: id.to_owned() },
            &request.id,
        ))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    let filename = format!(
        "attachment; filename=\"conversation-{}.md\"",
        conversation.id
    );
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(8);
    let broker = state.broker.clone();
    let request_id = request.id.clone();
    let shutdown = state.shutdown.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        if tx
            .send(Ok(printable(markdown_header(&conversation))))
            .await
            .is_err()
        {
            return;
        }
        let mut cursor = String::new();
        loop {
            let req = pb::GetMessagesRequest {
                id: id.clone(),
                cursor: cursor.clone(),
                limit: EXPORT_PAGE,
                ..Default::default()
            };
            let page = tokio::select! {
                _ = shutdown.cancelled() => return,
                page = client.get_messages(broker.request(req, &request_id)) => page,
            };
            let page = match page {
                Ok(page) => page.into_inner(),
                Err(status) => {
                    let _ = tx
                        .send(Err(std::io::Error::other(status.message().to_owned())))
                        .await;
                    return;
                }
            };
            let mut chunk = String::new();
            for message in &page.messages {
                chunk.push_str(&markdown_message(message));
            }
            if tx.send(Ok(printable(chunk))).await.is_err() || page.after_cursor.is_empty() {
                return;
            }
            cursor = page.after_cursor;
        }
    });
    let mut response = warp::reply::stream(ReceiverStream::new(rx)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn markdown_header(c: &pb::Conversation) -> String {
    let title = if c.title.is_empty() {
        "Untitled conversation"
    } else {
        &c.title
    };
    let tokens = c.tokens.unwrap_or_default();
    format!(
        "# {}\n\n- Conversation: `{}`\n- Project: `{}`\n- Messages: {}\n- Models: {}\n- Tokens: {} in, {} out, {} cache write, {} cache read\n\n",
        title.replace('\n', " "),
        c.id,
        c.project,
        c.message_count,
        c.models.join(", "),
        tokens.input,
        tokens.output,
        tokens.cache_creation,
        tokens.cache_read,
    )
}

/// `text` without what a terminal or an editor would interpret rather than
/// show: control characters other than newline and tab (escape sequences,
/// OSC titles and hyperlinks, carriage returns, backspaces) and invisible
/// formatting characters (bidirectional overrides, zero-width characters),
/// so that `cat export.md` shows exactly what the transcript says. The same
/// set of characters that the broker refuses in session names.
fn printable(text: String) -> String {
    if !text.chars().any(is_hidden_char) {
        return text;
    }
    text.chars().filter(|&c| !is_hidden_char(c)).collect()
}

/// Characters [`printable`] removes.
fn is_hidden_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || dispatch_proto::text::is_invisible(c)
}

fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

fn markdown_message(m: &pb::Message) -> String {
    let who = match pb::MessageRole::try_from(m.role) {
        Ok(pb::MessageRole::Assistant) => "Assistant",
        Ok(pb::MessageRole::User) if m.is_meta => "Context",
        Ok(pb::MessageRole::User) => "User",
        _ => "System",
    };
    let mut out = format!("## {who}\n\n");
    for block in &m.blocks {
        match &block.kind {
            Some(Block::Text(text)) => out.push_str(&format!("{text}\n\n")),
            Some(Block::Thinking(text)) => {
                let quoted: Vec<String> = text.lines().map(|l| format!("> {l}")).collect();
                out.push_str(&format!("> *Thinking*\n>\n{}\n\n", quoted.join("\n")));
            }
            Some(Block::ToolCall(call)) => {
                let f = fence(&call.input_json);
                out.push_str(&format!(
                    "**Tool: {}** {}\n\n{f}json\n{}\n{f}\n\n",
                    call.name, call.summary, call.input_json
                ));
                if let Some(result) = &call.result {
                    out.push_str(&markdown_result(result));
                }
            }
            Some(Block::ToolResult(result)) => out.push_str(&markdown_result(result)),
            Some(Block::Image(image)) => out.push_str(&format!(
                "*[image {}, {} bytes]*\n\n",
                image.media_type, image.size_bytes
            )),
            None => {}
        }
    }
    out
}

fn markdown_result(r: &pb::ToolResult) -> String {
    let label = if r.is_error { "Error" } else { "Result" };
    let f = fence(&r.text);
    let cut = if r.truncated {
        format!("\n*(cut, {} bytes in all)*", r.size_bytes)
    } else {
        String::new()
    };
    format!("{label}:\n\n{f}\n{}\n{f}{cut}\n\n", r.text)
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn tokens(t: Option<&pb::TokenTotals>) -> Tokens {
    let t = t.copied().unwrap_or_default();
    Tokens {
        input: t.input,
        output: t.output,
        cache_creation: t.cache_creation,
        cache_read: t.cache_read,
    }
}

fn tool_uses(tools: &std::collections::HashMap<String, u32>) -> BTreeMap<String, u32> {
    tools.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// `active` (a record in the last two minutes), `recent` (the last hour) or `idle`.
pub fn activity_status(last_activity_ms: i64, now_ms: i64) -> ActivityStatus {
    let age = now_ms - last_activity_ms;
    if age < ACTIVE_MS {
        ActivityStatus::Active
    } else if age < RECENT_MS {
        ActivityStatus::Recent
    } else {
        ActivityStatus::Idle
    }
}

fn subagent(s: &pb::Subagent) -> Subagent {
    Subagent {
        agent_id: s.agent_id.clone(),
        message_count: s.message_count,
        tokens: tokens(s.tokens.as_ref()),
        tool_uses: tool_uses(&s.tool_uses),
        created_at: s.created_at_ms,
        last_activity: s.last_activity_ms,
        size_bytes: s.size_bytes,
    }
}

/// A conversation's metadata (no file paths, no message content).
pub fn conversation(c: &pb::Conversation, now: i64) -> wire::Conversation {
    wire::Conversation {
        id: c.id.clone(),
        project: c.project.clone(),
        title: c.title.clone(),
        created_at: c.created_at_ms,
        last_activity: c.last_activity_ms,
        status: activity_status(c.last_activity_ms, now),
        message_count: c.message_count,
        models: c.models.clone(),
        tokens: tokens(c.tokens.as_ref()),
        tool_uses: tool_uses(&c.tool_uses),
        subagents: c.subagents.iter().map(subagent).collect(),
        size_bytes: c.size_bytes,
        git_branch: c.git_branch.clone(),
        version: c.version.clone(),
        damaged_lines: c.damaged_lines,
        cost_usd: c.cost_usd,
        unpriced_models: c.unpriced_models.clone(),
        context: ConversationContext {
            tokens: c.context_tokens,
            window: c.context_window,
            model: c.context_model.clone(),
        },
    }
}

fn role(role: i32) -> Role {
    match pb::MessageRole::try_from(role) {
        Ok(pb::MessageRole::User) => Role::User,
        Ok(pb::MessageRole::Assistant) => Role::Assistant,
        _ => Role::System,
    }
}

fn image(i: &pb::Image) -> wire::Image {
    wire::Image {
        kind: ImageType::Image,
        media_type: i.media_type.clone(),
        data: non_empty(i.data_base64.clone()),
        size_bytes: i.size_bytes,
    }
}

fn tool_result(r: &pb::ToolResult) -> wire::ToolResult {
    wire::ToolResult {
        tool_use_id: r.tool_use_id.clone(),
        text: r.text.clone(),
        is_error: r.is_error,
        truncated: r.truncated,
        size_bytes: r.size_bytes,
        images: r.images.iter().map(image).collect(),
    }
}

fn block(block: &pb::ContentBlock) -> Option<WireBlock> {
    Some(match block.kind.as_ref()? {
        Block::Text(text) => WireBlock::Text { text: text.clone() },
        Block::Thinking(text) => WireBlock::Thinking {
            thinking: text.clone(),
        },
        Block::ToolCall(call) => WireBlock::ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            summary: call.summary.clone(),
            input: call.input_json.clone(),
            input_truncated: call.input_truncated,
            result: call.result.as_ref().map(tool_result),
        },
        Block::Image(i) => WireBlock::Image(image(i)),
        Block::ToolResult(result) => WireBlock::ToolResult(tool_result(result)),
    })
}

/// A message of a conversation.
pub fn message(m: &pb::Message) -> wire::Message {
    wire::Message {
        index: m.index,
        uuid: m.uuid.clone(),
        role: role(m.role),
        timestamp: m.timestamp_ms,
        model: non_empty(m.model.clone()),
        is_meta: m.is_meta,
        is_compact_summary: m.is_compact_summary,
        usage: m.usage.as_ref().map(|u| tokens(Some(u))),
        blocks: m.blocks.iter().filter_map(block).collect(),
    }
}

fn hit(h: &pb::SearchHit) -> wire::SearchHit {
    wire::SearchHit {
        conversation_id: h.conversation_id.clone(),
        title: h.title.clone(),
        project: h.project.clone(),
        message_index: h.message_index,
        role: role(h.role),
        snippet: h.snippet.clone(),
        timestamp: h.timestamp_ms,
    }
}
