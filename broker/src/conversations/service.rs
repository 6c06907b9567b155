//! The `dispatch.v1.Conversations` gRPC service over a [`ConversationIndex`]:
//! request validation, typed errors mapped to precise status codes, paging,
//! and the streamed search and watch calls.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatch_proto::v1 as pb;
use futures::Stream;
use pb::conversations_server::{Conversations, ConversationsServer};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::index::{ConversationIndex, ListQuery, SortBy};
use super::messages::Cursor;
use super::pages::MessageMaps;
use super::search::{self, SearchQuery};
use super::usage::{GroupBy, UsageQuery, parse_time_zone};
use crate::error::{bounded, quote};

/// Default and largest page of conversations.
const LIST_PAGE: (u32, u32) = (50, 500);
/// Default and largest page of messages.
const MESSAGE_PAGE: (u32, u32) = (50, 500);
/// Default and largest number of search hits.
const SEARCH_HITS: (u32, u32) = (100, 1000);
/// Query length bounds, in characters.
const QUERY_CHARS: (usize, usize) = (2, 256);
/// Default and largest number of conversations named in a usage report.
const USAGE_TOP: (u32, u32) = (10, 100);
/// Time budget of one search.
const SEARCH_BUDGET: Duration = Duration::from_secs(20);
/// Hits buffered ahead of a slow client.
const SEARCH_BUFFER: usize = 64;

/// Errors at the RPC boundary.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("no conversation {0:?}")]
    NotFound(String),
    #[error("conversation {0:?} has no subagent {1:?}")]
    NoSubagent(String, String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("cannot read the transcript: {0}")]
    Unreadable(#[from] std::io::Error),
    #[error("the watch stream fell behind by {0} events; list again and re-watch")]
    Lagged(u64),
}

impl From<ConversationError> for Status {
    fn from(err: ConversationError) -> Self {
        let message = bounded(err.to_string());
        match err {
            ConversationError::NotFound(_) | ConversationError::NoSubagent(..) => {
                Status::not_found(message)
            }
            ConversationError::InvalidArgument(_) => Status::invalid_argument(message),
            ConversationError::Unreadable(_) => Status::unavailable(message),
            ConversationError::Lagged(_) => Status::resource_exhausted(message),
        }
    }
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct ConversationsService {
    index: Arc<ConversationIndex>,
    maps: Arc<MessageMaps>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ConversationEvent, Status>> + Send>>;

impl ConversationsService {
    pub fn new(index: Arc<ConversationIndex>) -> Self {
        Self {
            index,
            maps: Arc::default(),
        }
    }

    /// The tonic server wrapper, ready to add to a router.
    pub fn into_server(self) -> ConversationsServer<Self> {
        ConversationsServer::new(self)
    }
}

/// A conversation or agent id ([`dispatch_proto::limits::is_conversation_id`]).
fn check_id(what: &str, id: &str) -> Result<(), ConversationError> {
    if dispatch_proto::limits::is_conversation_id(id) {
        Ok(())
    } else {
        Err(ConversationError::InvalidArgument(format!(
            "invalid {what} {}",
            quote(id)
        )))
    }
}

fn page_size(requested: u32, (default, max): (u32, u32)) -> u32 {
    if requested == 0 {
        default
    } else {
        requested.min(max)
    }
}

fn list_query(req: &pb::ListConversationsRequest) -> Result<ListQuery, ConversationError> {
    let offset = match req.page_token.as_str() {
        "" => 0,
        token => token.parse::<usize>().map_err(|_| {
            ConversationError::InvalidArgument(format!("invalid page token {}", quote(token)))
        })?,
    };
    if req.active_since_ms < 0 || req.active_until_ms < 0 {
        return Err(ConversationError::InvalidArgument(
            "dates must not be negative".into(),
        ));
    }
    if req.active_until_ms != 0 && req.active_since_ms > req.active_until_ms {
        return Err(ConversationError::InvalidArgument(
            "active_since_ms is after active_until_ms".into(),
        ));
    }
    if req.text.chars().count() > QUERY_CHARS.1 {
        return Err(ConversationError::InvalidArgument(
            "text filter is too long".into(),
        ));
    }
    let sort = match pb::ConversationSort::try_from(req.sort) {
        Ok(pb::ConversationSort::Created) => SortBy::Created,
        Ok(_) => SortBy::LastActivity,
        Err(_) => {
            return Err(ConversationError::InvalidArgument(format!(
                "unknown sort {}",
                req.sort
            )));
        }
    };
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(ListQuery {
        project: nonempty(&req.project),
        text: nonempty(&req.text),
        active_since_ms: (req.active_since_ms != 0).then_some(req.active_since_ms),
        active_until_ms: (req.active_until_ms != 0).then_some(req.active_until_ms),
        sort,
        ascending: req.ascending,
        offset,
        limit: page_size(req.page_size, LIST_PAGE) as usize,
    })
}

impl ConversationsService {
    fn search_query(
        &self,
        req: &pb::SearchConversationsRequest,
    ) -> Result<SearchQuery, ConversationError> {
        let chars = req.query.trim().chars().count();
        if chars < QUERY_CHARS.0 || chars > QUERY_CHARS.1 {
            return Err(ConversationError::InvalidArgument(format!(
                "the query must have {} to {} characters",
                QUERY_CHARS.0, QUERY_CHARS.1
            )));
        }
        let conversation_id = match req.conversation_id.as_str() {
            "" => None,
            id => {
                check_id("conversation id", id)?;
                self.index
                    .get(id)
                    .ok_or_else(|| ConversationError::NotFound(id.to_owned()))?;
                Some(id.to_owned())
            }
        };
        Ok(SearchQuery {
            needle: req.query.trim().to_lowercase(),
            conversation_id,
            limit: page_size(req.limit, SEARCH_HITS) as usize,
            deadline: Instant::now() + SEARCH_BUDGET,
        })
    }
}

fn usage_query(req: &pb::UsageRequest) -> Result<UsageQuery, ConversationError> {
    let group_by = match pb::UsageGroupBy::try_from(req.group_by) {
        Ok(pb::UsageGroupBy::Unspecified | pb::UsageGroupBy::Day) => GroupBy::Day,
        Ok(pb::UsageGroupBy::Model) => GroupBy::Model,
        Ok(pb::UsageGroupBy::Project) => GroupBy::Project,
        Err(_) => {
            return Err(ConversationError::InvalidArgument(format!(
                "unknown group_by {}",
                req.group_by
            )));
        }
    };
    if req.since_ms < 0 || req.until_ms < 0 || (req.until_ms > 0 && req.until_ms < req.since_ms) {
        return Err(ConversationError::InvalidArgument(
            "the period needs 0 <= since_ms <= until_ms".to_owned(),
        ));
    }
    if req.time_zone.len() > 64 {
        return Err(ConversationError::InvalidArgument(
            "time_zone is at most 64 bytes".to_owned(),
        ));
    }
    Ok(UsageQuery {
        since_ms: (req.since_ms > 0).then_some(req.since_ms),
        until_ms: (req.until_ms > 0).then_some(req.until_ms),
        group_by,
        time_zone: parse_time_zone(&req.time_zone).map_err(ConversationError::InvalidArgument)?,
        top: page_size(req.top_conversations, USAGE_TOP) as usize,
    })
}

#[tonic::async_trait]
impl Conversations for ConversationsService {
    async fn get_usage(
        &self,
        request: Request<pb::UsageRequest>,
    ) -> Result<Response<pb::UsageReport>, Status> {
        let query = usage_query(request.get_ref())?;
        let index = Arc::clone(&self.index);
        let report = tokio::task::spawn_blocking(move || index.usage(query))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(report))
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        let query = list_query(request.get_ref())?;
        let page = self.index.list(&query);
        Ok(Response::new(pb::ListConversationsResponse {
            conversations: page.conversations,
            next_page_token: page.next_offset.map(|n| n.to_string()).unwrap_or_default(),
            total: page.total as u32,
        }))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let id = &request.get_ref().id;
        check_id("conversation id", id)?;
        let conversation = self
            .index
            .get(id)
            .ok_or_else(|| ConversationError::NotFound(id.clone()))?;
        Ok(Response::new(conversation))
    }

    async fn get_messages(
        &self,
        request: Request<pb::GetMessagesRequest>,
    ) -> Result<Response<pb::GetMessagesResponse>, Status> {
        let req = request.into_inner();
        check_id("conversation id", &req.id)?;
        let agent = (!req.agent_id.is_empty()).then_some(req.agent_id.as_str());
        if let Some(agent) = agent {
            check_id("agent id", agent)?;
        }
        let cursor = match req.cursor.as_str() {
            "" if req.from_end => Cursor::Before(u32::MAX),
            "" => Cursor::After(0),
            text => Cursor::parse(text).ok_or_else(|| {
                ConversationError::InvalidArgument(format!("invalid cursor {}", quote(text)))
            })?,
        };
        let limit = page_size(req.limit, MESSAGE_PAGE);
        let path = self
            .index
            .transcript_path(&req.id, agent)
            .ok_or_else(|| match agent {
                Some(agent) if self.index.get(&req.id).is_some() => {
                    ConversationError::NoSubagent(req.id.clone(), agent.to_owned())
                }
                _ => ConversationError::NotFound(req.id.clone()),
            })?;
        let span = tracing::debug_span!("get_messages", conversation = %req.id);
        let maps = Arc::clone(&self.maps);
        let page =
            tokio::task::spawn_blocking(move || span.in_scope(|| maps.page(&path, cursor, limit)))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(ConversationError::from)?;
        Ok(Response::new(page.response))
    }

    type SearchConversationsStream = ReceiverStream<Result<pb::SearchHit, Status>>;

    async fn search_conversations(
        &self,
        request: Request<pb::SearchConversationsRequest>,
    ) -> Result<Response<Self::SearchConversationsStream>, Status> {
        let query = self.search_query(request.get_ref())?;
        let (tx, rx) = mpsc::channel(SEARCH_BUFFER);
        let index = Arc::clone(&self.index);
        let maps = Arc::clone(&self.maps);
        tokio::task::spawn_blocking(move || {
            search::run(&index, &maps, &query, |hit| {
                tx.blocking_send(Ok(hit)).is_ok()
            });
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type WatchConversationsStream = EventStream;

    async fn watch_conversations(
        &self,
        _request: Request<pb::WatchConversationsRequest>,
    ) -> Result<Response<Self::WatchConversationsStream>, Status> {
        let mut events = self.index.subscribe();
        let stream = async_stream(move |tx| async move {
            loop {
                let item = match events.recv().await {
                    Ok(event) => Ok(event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Err(ConversationError::Lagged(n).into())
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn get_index_status(
        &self,
        _request: Request<pb::GetIndexStatusRequest>,
    ) -> Result<Response<pb::IndexStatus>, Status> {
        Ok(Response::new(self.index.status()))
    }
}

/// A stream fed by a task through a bounded channel; the task ends when the
/// client goes away (its `send` fails).
fn async_stream<F, Fut>(producer: F) -> EventStream
where
    F: FnOnce(mpsc::Sender<Result<pb::ConversationEvent, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(producer(tx));
    Box::pin(ReceiverStream::new(rx))
}
