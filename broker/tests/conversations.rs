//! The conversation index and its gRPC service, checked against what the
//! synthetic Claude Code home generator wrote: counts, titles, token totals,
//! subagents, damage, paging, joined tool results, search and watch.

mod conversations_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

use conversations_support::Harness;
use dispatch_proto::v1 as pb;
use dispatch_testkit::{HUGE_OUTPUT_BYTES, Spec, Tokens, iso_timestamp};
use futures::StreamExt;
use pb::content_block::Kind as Block;
use tonic::Code;

fn tokens(t: &Tokens) -> pb::TokenTotals {
    pb::TokenTotals {
        input: t.input,
        output: t.output,
        cache_creation: t.cache_creation,
        cache_read: t.cache_read,
    }
}

async fn list_all(h: &mut Harness, mut req: pb::ListConversationsRequest) -> Vec<pb::Conversation> {
    let mut out = Vec::new();
    req.page_size = 5;
    loop {
        let page = h
            .client
            .list_conversations(req.clone())
            .await
            .unwrap()
            .into_inner();
        out.extend(page.conversations);
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
}

async fn all_messages(h: &mut Harness, id: &str, from_end: bool, limit: u32) -> Vec<pb::Message> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let req = pb::GetMessagesRequest {
            id: id.into(),
            cursor: cursor.clone(),
            limit,
            from_end,
            agent_id: String::new(),
        };
        let page = h.client.get_messages(req).await.unwrap().into_inner();
        assert!(page.messages.len() <= limit as usize);
        let next = if from_end {
            page.before_cursor.clone()
        } else {
            page.after_cursor.clone()
        };
        pages.push(page.messages);
        if next.is_empty() {
            break;
        }
        cursor = next;
    }
    if from_end {
        pages.reverse();
    }
    pages.into_iter().flatten().collect()
}

#[tokio::test]
async fn index_matches_generated_counts_titles_tokens_and_subagents() {
    let mut h = Harness::start(Spec::default()).await;
    let listed = list_all(&mut h, Default::default()).await;
    assert_eq!(listed.len(), h.manifest.conversations.len());
    for expected in &h.manifest.conversations {
        let got = listed
            .iter()
            .find(|c| c.id == expected.id)
            .unwrap_or_else(|| panic!("{} missing", expected.id));
        assert_eq!(got.title, expected.title, "title of {}", expected.id);
        assert_eq!(got.project, expected.project);
        assert_eq!(
            got.message_count, expected.message_count,
            "messages of {}",
            expected.title
        );
        assert_eq!(
            got.tokens,
            Some(tokens(&expected.tokens)),
            "tokens of {}",
            expected.title
        );
        let tools: BTreeMap<String, u32> = got.tool_uses.clone().into_iter().collect();
        assert_eq!(tools, expected.tool_uses);
        assert_eq!(got.models, expected.models);
        assert_eq!(got.created_at_ms, expected.created_ms);
        assert!(
            got.last_activity_ms >= expected.last_ms - 10_000
                && got.last_activity_ms <= expected.last_ms
        );
        assert_eq!(got.subagents.len(), expected.subagents.len());
        for sub in &expected.subagents {
            let s = got
                .subagents
                .iter()
                .find(|s| s.agent_id == sub.agent_id)
                .expect("subagent listed");
            assert_eq!(s.message_count, sub.message_count);
            assert_eq!(s.tokens, Some(tokens(&sub.tokens)));
        }
        assert_eq!(got.damaged_lines, expected.corrupt_lines);
        // The list never carries transcript paths.
        assert!(!format!("{got:?}").contains(".jsonl"));
    }
    // Subagents in both layouts are grouped under their parent, not listed.
    let layouts: BTreeSet<bool> = h
        .manifest
        .conversations
        .iter()
        .flat_map(|c| &c.subagents)
        .map(|s| s.nested_layout)
        .collect();
    assert_eq!(layouts.len(), 2);

    let status = h
        .client
        .get_index_status(pb::GetIndexStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.conversations as usize,
        h.manifest.conversations.len()
    );
    assert_eq!(status.transcripts, h.manifest.transcripts);
    assert_eq!(status.corrupt_lines, h.manifest.corrupt_lines);
    assert_eq!(status.invalid_utf8_lines, h.manifest.invalid_utf8_lines);
    assert_eq!(status.broken_links, h.manifest.broken_links);
    assert_eq!(status.bytes, h.manifest.total_bytes);

    let one = &h.manifest.conversations[4];
    let got = h
        .client
        .get_conversation(pb::GetConversationRequest { id: one.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.title, one.title);
    let missing = h
        .client
        .get_conversation(pb::GetConversationRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let bad = h
        .client
        .get_conversation(pb::GetConversationRequest {
            id: "../../.credentials".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn conversation_sizes_equal_the_bytes_written_with_their_subagents() {
    let mut h = Harness::start(Spec::default()).await;
    let listed = list_all(&mut h, Default::default()).await;
    let with_subagents = h
        .manifest
        .conversations
        .iter()
        .filter(|c| !c.subagents.is_empty())
        .count();
    assert!(
        with_subagents >= 2,
        "the tree has conversations with subagents"
    );
    for expected in &h.manifest.conversations {
        let got = listed.iter().find(|c| c.id == expected.id).unwrap();
        assert_eq!(
            got.size_bytes, expected.size_bytes,
            "size of {}",
            expected.id
        );
        for sub in &expected.subagents {
            let s = got
                .subagents
                .iter()
                .find(|s| s.agent_id == sub.agent_id)
                .unwrap();
            assert_eq!(
                s.size_bytes, sub.size_bytes,
                "size of agent {}",
                sub.agent_id
            );
        }
        let one = h
            .client
            .get_conversation(pb::GetConversationRequest {
                id: expected.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(one.size_bytes, expected.size_bytes);
    }
    let sum: u64 = listed.iter().map(|c| c.size_bytes).sum();
    assert_eq!(sum, h.manifest.total_bytes);
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    let mut h = Harness::start(Spec {
        conversations: 14,
        ..Spec::default()
    })
    .await;
    let m = h.manifest.clone();

    let by_created = list_all(
        &mut h,
        pb::ListConversationsRequest {
            sort: pb::ConversationSort::Created as i32,
            ascending: true,
            ..Default::default()
        },
    )
    .await;
    let ids: Vec<&str> = by_created.iter().map(|c| c.id.as_str()).collect();
    let expected: Vec<&str> = m.conversations.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, expected);
    let newest_first = list_all(&mut h, Default::default()).await;
    assert_eq!(
        newest_first.first().map(|c| &c.id),
        m.conversations.last().map(|c| &c.id)
    );

    let project = m.conversations[1].project.clone();
    let in_project = list_all(
        &mut h,
        pb::ListConversationsRequest {
            project: project.clone(),
            ..Default::default()
        },
    )
    .await;
    let expected = m
        .conversations
        .iter()
        .filter(|c| c.project == project)
        .count();
    assert_eq!(in_project.len(), expected);
    assert!(in_project.iter().all(|c| c.project == project));

    let text = list_all(
        &mut h,
        pb::ListConversationsRequest {
            text: "SUMMARY TITLE".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        text.len(),
        m.conversations
            .iter()
            .filter(|c| c.title.starts_with("Summary title"))
            .count()
    );

    let (from, to) = (m.conversations[3].created_ms, m.conversations[6].last_ms);
    let ranged = list_all(
        &mut h,
        pb::ListConversationsRequest {
            active_since_ms: from,
            active_until_ms: to,
            ..Default::default()
        },
    )
    .await;
    let expected: BTreeSet<&str> = m
        .conversations
        .iter()
        .filter(|c| c.last_ms >= from && c.last_ms <= to)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        ranged
            .iter()
            .map(|c| c.id.as_str())
            .collect::<BTreeSet<_>>(),
        expected
    );

    let page = h
        .client
        .list_conversations(pb::ListConversationsRequest {
            page_size: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.conversations.len(), 4);
    assert_eq!(page.total as usize, m.conversations.len());
    assert_eq!(page.next_page_token, "4");

    let bad = h
        .client
        .list_conversations(pb::ListConversationsRequest {
            page_token: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = h
        .client
        .list_conversations(pb::ListConversationsRequest {
            active_since_ms: 10,
            active_until_ms: 5,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn messages_page_from_both_ends_with_tool_results_joined() {
    let mut h = Harness::start(Spec::default()).await;
    let m = h.manifest.clone();
    for expected in &m.conversations {
        let forward = all_messages(&mut h, &expected.id, false, 3).await;
        let backward = all_messages(&mut h, &expected.id, true, 4).await;
        assert_eq!(
            forward.len() as u32,
            expected.message_count,
            "{}",
            expected.title
        );
        assert_eq!(forward, backward);
        assert!(
            forward
                .iter()
                .enumerate()
                .all(|(i, msg)| msg.index as usize == i)
        );
        for call in &expected.tool_calls {
            let message = &forward[call.message_index as usize];
            assert_eq!(message.role, pb::MessageRole::Assistant as i32);
            let found = message.blocks.iter().find_map(|b| match &b.kind {
                Some(Block::ToolCall(c)) if c.id == call.id => Some(c),
                _ => None,
            });
            let found = found.unwrap_or_else(|| {
                panic!("tool call {} in message {}", call.id, call.message_index)
            });
            assert_eq!(found.name, call.name);
            assert!(!found.summary.is_empty() && !found.summary.contains('\n'));
            let result = found.result.as_ref().expect("result joined");
            assert!(
                result.text.starts_with(&call.result_prefix),
                "{:?}",
                &result.text[..40.min(result.text.len())]
            );
            assert_eq!(result.is_error, call.is_error);
            assert_eq!(result.size_bytes as usize, call.result_len);
            assert_eq!(result.truncated, call.result_len > 64 * 1024);
        }
        // No orphan results: every result found its call.
        assert!(
            forward
                .iter()
                .flat_map(|m| &m.blocks)
                .all(|b| !matches!(b.kind, Some(Block::ToolResult(_))))
        );
    }
    // Multi-line responses are merged: thinking, text and a call in one message.
    let first = &m.conversations[4];
    let messages = all_messages(&mut h, &first.id, false, 50).await;
    let call_msg = &messages[first.tool_calls[0].message_index as usize];
    assert!(matches!(call_msg.blocks[0].kind, Some(Block::Thinking(_))));
    assert!(matches!(call_msg.blocks[1].kind, Some(Block::Text(_))));
    assert!(matches!(call_msg.blocks[2].kind, Some(Block::ToolCall(_))));
    // The huge tool output is bounded.
    let huge = m.conversations[3]
        .tool_calls
        .iter()
        .find(|c| c.result_len > HUGE_OUTPUT_BYTES)
        .unwrap();
    assert!(huge.result_len > HUGE_OUTPUT_BYTES);
    // An image prompt keeps its image.
    let with_image = &m.conversations[4];
    let msgs = all_messages(&mut h, &with_image.id, false, 100).await;
    assert!(
        msgs.iter()
            .flat_map(|m| &m.blocks)
            .any(|b| matches!(&b.kind, Some(Block::Image(i)) if !i.data_base64.is_empty()))
    );

    // A subagent transcript reads through its parent.
    let parent = m
        .conversations
        .iter()
        .find(|c| !c.subagents.is_empty())
        .unwrap();
    let agent = &parent.subagents[0];
    let sub = h
        .client
        .get_messages(pb::GetMessagesRequest {
            id: parent.id.clone(),
            agent_id: agent.agent_id.clone(),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sub.total, agent.message_count);

    let errors = [
        (
            pb::GetMessagesRequest {
                id: "missing".into(),
                ..Default::default()
            },
            Code::NotFound,
        ),
        (
            pb::GetMessagesRequest {
                id: parent.id.clone(),
                cursor: "z9".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::GetMessagesRequest {
                id: "a/../b".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::GetMessagesRequest {
                id: parent.id.clone(),
                agent_id: "nobody".into(),
                ..Default::default()
            },
            Code::NotFound,
        ),
    ];
    for (req, code) in errors {
        let err = h.client.get_messages(req.clone()).await.unwrap_err();
        assert_eq!(err.code(), code, "{req:?}: {}", err.message());
    }
}

async fn search(
    h: &mut Harness,
    query: &str,
    conversation_id: &str,
    limit: u32,
) -> Result<Vec<pb::SearchHit>, tonic::Status> {
    let req = pb::SearchConversationsRequest {
        query: query.into(),
        conversation_id: conversation_id.into(),
        limit,
    };
    let mut stream = h.client.search_conversations(req).await?.into_inner();
    let mut hits = Vec::new();
    while let Some(hit) = stream.next().await {
        hits.push(hit?);
    }
    Ok(hits)
}

#[tokio::test]
async fn search_across_and_within_conversations() {
    let mut h = Harness::start(Spec::default()).await;
    let m = h.manifest.clone();
    for target in [&m.conversations[2], &m.conversations[5]] {
        let hits = search(&mut h, &target.marker.to_uppercase(), "", 0)
            .await
            .unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].conversation_id, target.id);
        assert_eq!(hits[0].message_index, target.marker_message_index);
        assert!(hits[0].snippet.contains(&target.marker));
        assert_eq!(hits[0].title, target.title);
    }
    let within = search(&mut h, "step 1", &m.conversations[7].id, 0)
        .await
        .unwrap();
    assert!(within.len() >= 2);
    assert!(
        within
            .iter()
            .all(|hit| hit.conversation_id == m.conversations[7].id)
    );
    let bounded = search(&mut h, "task", "", 3).await.unwrap();
    assert_eq!(bounded.len(), 3);
    // Newest conversations first.
    assert_eq!(
        bounded[0].conversation_id,
        m.conversations.last().unwrap().id
    );
    // Files outside projects/ are never searched.
    assert!(
        search(&mut h, "sk-ant-secret", "", 0)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        search(&mut h, "x", "", 0).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        search(&mut h, "task", "missing", 0)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

fn user_line(session: &str, cwd: &str, text: &str, ms: i64) -> String {
    serde_json::json!({
        "parentUuid": null, "isSidechain": false, "cwd": cwd, "sessionId": session, "type": "user",
        "message": {"role": "user", "content": text}, "uuid": format!("appended-{ms}"), "timestamp": iso_timestamp(ms),
    })
    .to_string()
}

async fn next_event_for(
    stream: &mut tonic::Streaming<pb::ConversationEvent>,
    id: &str,
    want: impl Fn(&pb::ConversationEvent) -> bool,
) -> pb::ConversationEvent {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no matching event for {id}"))
            .expect("stream open")
            .expect("event");
        if event.id == id && want(&event) {
            return event;
        }
    }
}

#[tokio::test]
async fn appends_new_files_and_removals_reach_the_watch_stream() {
    let mut h = Harness::start(Spec::default()).await;
    let target = h.manifest.conversations[6].clone();
    let mut stream = h
        .client
        .watch_conversations(pb::WatchConversationsRequest {})
        .await
        .unwrap()
        .into_inner();

    let appended_at = target.last_ms + 60_000;
    let line = user_line(
        &target.id,
        &target.project,
        "One more thing: a walrus appeared",
        appended_at,
    );
    let started = Instant::now();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&target.path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
    let event = next_event_for(&mut stream, &target.id, |e| {
        e.conversation
            .as_ref()
            .is_some_and(|c| c.message_count == target.message_count + 1)
    })
    .await;
    eprintln!("append to watch event: {:?}", started.elapsed());
    let conversation = event.conversation.unwrap();
    assert_eq!(event.kind, pb::conversation_event::Kind::Changed as i32);
    assert_eq!(conversation.last_activity_ms, appended_at);
    assert_eq!(
        conversation.tokens,
        Some(tokens(&target.tokens)),
        "appending does not recount"
    );

    // A line being written shows up only once complete.
    let line = user_line(
        &target.id,
        &target.project,
        "and a narwhal",
        appended_at + 1000,
    );
    let (head, tail) = line.split_at(line.len() / 2);
    write!(file, "{head}").unwrap();
    file.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    writeln!(file, "{tail}").unwrap();
    let event = next_event_for(&mut stream, &target.id, |e| {
        e.conversation
            .as_ref()
            .is_some_and(|c| c.message_count == target.message_count + 2)
    })
    .await;
    assert_eq!(
        event.conversation.unwrap().damaged_lines,
        target.corrupt_lines
    );
    let hits = search(&mut h, "narwhal", &target.id, 0).await.unwrap();
    assert_eq!(hits.len(), 1);

    // A new conversation in a new project folder.
    let project = h.root().join("projects").join("-tmp-fresh");
    std::fs::create_dir_all(&project).unwrap();
    let new_id = "0b5e6a61-0000-4000-8000-000000000001";
    let path = project.join(format!("{new_id}.jsonl"));
    std::fs::write(
        &path,
        user_line(new_id, "/tmp/fresh", "Brand new conversation", appended_at) + "\n",
    )
    .unwrap();
    let event = next_event_for(&mut stream, new_id, |e| e.conversation.is_some()).await;
    assert_eq!(event.conversation.unwrap().title, "Brand new conversation");

    std::fs::remove_file(&path).unwrap();
    let event = next_event_for(&mut stream, new_id, |e| {
        e.kind == pb::conversation_event::Kind::Removed as i32
    })
    .await;
    assert!(event.conversation.is_none());
    let gone = h
        .client
        .get_conversation(pb::GetConversationRequest { id: new_id.into() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

fn tree_snapshot(
    root: &std::path::Path,
) -> BTreeMap<std::path::PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_home_is_never_written() {
    let home = tempfile::tempdir().unwrap();
    dispatch_testkit::generate(home.path(), &Spec::default()).unwrap();
    let before = tree_snapshot(home.path());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let index = dispatch_broker::conversations::ConversationIndex::open(
        dispatch_broker::conversations::IndexConfig::new(home.path()),
        shutdown.clone(),
    )
    .await;
    let mut client = conversations_support::serve(index, shutdown.clone()).await;
    let list = client
        .list_conversations(pb::ListConversationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    for c in &list.conversations {
        client
            .get_messages(pb::GetMessagesRequest {
                id: c.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let req = pb::SearchConversationsRequest {
        query: "step".into(),
        ..Default::default()
    };
    let mut hits = client.search_conversations(req).await.unwrap().into_inner();
    while hits.next().await.is_some() {}
    shutdown.cancel();
    assert_eq!(tree_snapshot(home.path()), before);
}

async fn status(h: &mut Harness) -> pb::IndexStatus {
    h.client
        .get_index_status(pb::GetIndexStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

async fn watch(h: &mut Harness) -> tonic::Streaming<pb::ConversationEvent> {
    h.client
        .watch_conversations(pb::WatchConversationsRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn append(path: &std::path::Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[tokio::test]
async fn unchanged_files_are_not_read_again_and_appends_only_from_their_offset() {
    let mut h = Harness::start(Spec::default()).await;
    let first = status(&mut h).await;
    assert_eq!(
        first.bytes_read, h.manifest.total_bytes,
        "the first scan reads every byte once"
    );
    let index = std::sync::Arc::clone(&h.index);
    tokio::task::spawn_blocking(move || index.rescan())
        .await
        .unwrap();
    let second = status(&mut h).await;
    assert_eq!(second.scans, first.scans + 1);
    assert_eq!(
        second.bytes_read, first.bytes_read,
        "a rescan of an unchanged tree reads nothing"
    );

    let target = h.manifest.conversations[6].clone();
    let mut stream = watch(&mut h).await;
    let line = user_line(&target.id, &target.project, "appended", target.last_ms + 1) + "\n";
    append(&target.path, &line);
    next_event_for(&mut stream, &target.id, |e| {
        e.conversation
            .as_ref()
            .is_some_and(|c| c.message_count == target.message_count + 1)
    })
    .await;
    let third = status(&mut h).await;
    assert_eq!(
        third.bytes_read,
        second.bytes_read + line.len() as u64,
        "an appended file is read from where the last read ended"
    );
}

async fn ids(h: &mut Harness, req: pb::ListConversationsRequest) -> Vec<String> {
    list_all(h, req).await.into_iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn list_orders_follow_appends_and_removals() {
    let mut h = Harness::start(Spec::default()).await;
    let m = h.manifest.clone();
    let by_created: Vec<String> = m.conversations.iter().map(|c| c.id.clone()).collect();
    let oldest = m.conversations[0].clone();
    let newest_ms = m.conversations.iter().map(|c| c.last_ms).max().unwrap();
    let mut stream = watch(&mut h).await;

    // The oldest conversation becomes the most recently active one.
    let line = user_line(
        &oldest.id,
        &oldest.project,
        "back again",
        newest_ms + 60_000,
    );
    append(&oldest.path, &(line + "\n"));
    next_event_for(&mut stream, &oldest.id, |e| {
        e.conversation
            .as_ref()
            .is_some_and(|c| c.last_activity_ms == newest_ms + 60_000)
    })
    .await;
    let newest_first = ids(&mut h, Default::default()).await;
    assert_eq!(newest_first[0], oldest.id);
    assert_eq!(newest_first.len(), m.conversations.len());
    let oldest_first = ids(
        &mut h,
        pb::ListConversationsRequest {
            ascending: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(oldest_first.last(), Some(&oldest.id));
    assert_eq!(
        oldest_first.iter().rev().collect::<Vec<_>>(),
        newest_first.iter().collect::<Vec<_>>(),
        "ascending is the exact reverse of descending"
    );
    let created = pb::ListConversationsRequest {
        sort: pb::ConversationSort::Created as i32,
        ascending: true,
        ..Default::default()
    };
    assert_eq!(ids(&mut h, created.clone()).await, by_created);
    let since = pb::ListConversationsRequest {
        active_since_ms: newest_ms + 1,
        ..Default::default()
    };
    assert_eq!(ids(&mut h, since).await, vec![oldest.id.clone()]);

    // A removed conversation leaves every order.
    let gone = m.conversations[3].clone();
    std::fs::remove_file(&gone.path).unwrap();
    next_event_for(&mut stream, &gone.id, |e| {
        e.kind == pb::conversation_event::Kind::Removed as i32
    })
    .await;
    let expected: Vec<String> = by_created.into_iter().filter(|id| *id != gone.id).collect();
    assert_eq!(ids(&mut h, created).await, expected);
    let page = h
        .client
        .list_conversations(pb::ListConversationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total as usize, m.conversations.len() - 1);
}

#[tokio::test]
async fn a_burst_of_appends_is_debounced_into_one_refresh() {
    let mut h = Harness::start_with(Spec::default(), |config| {
        config.debounce = Duration::from_secs(1);
    })
    .await;
    let target = h.manifest.conversations[6].clone();
    let mut stream = watch(&mut h).await;
    const APPENDS: u32 = 8;
    for i in 0..APPENDS {
        let line = user_line(
            &target.id,
            &target.project,
            "burst",
            target.last_ms + 1 + i as i64,
        );
        append(&target.path, &(line + "\n"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut complete = false;
    // Count this conversation's events until the last append shows, and
    // for a debounce period after.
    loop {
        let until = if complete {
            Instant::now() + Duration::from_millis(1500)
        } else {
            deadline
        };
        let left = until.saturating_duration_since(Instant::now());
        let Ok(event) = tokio::time::timeout(left, stream.next()).await else {
            assert!(complete, "the appends never showed");
            break;
        };
        let event = event.expect("stream open").expect("event");
        if event.id != target.id {
            continue;
        }
        events += 1;
        if event
            .conversation
            .is_some_and(|c| c.message_count == target.message_count + APPENDS)
        {
            complete = true;
        }
    }
    assert!(
        events <= 3,
        "{APPENDS} appends within the debounce made {events} events"
    );
}

#[tokio::test]
async fn the_periodic_rescan_picks_up_changes_without_notifications() {
    let mut h = Harness::start_with(Spec::default(), |config| {
        config.notifications = false;
        config.rescan_interval = Duration::from_millis(300);
    })
    .await;
    let before = status(&mut h).await;
    let target = h.manifest.conversations[6].clone();
    let mut stream = watch(&mut h).await;
    let line = user_line(
        &target.id,
        &target.project,
        "seen by a rescan",
        target.last_ms + 1,
    );
    append(&target.path, &(line + "\n"));
    next_event_for(&mut stream, &target.id, |e| {
        e.conversation
            .as_ref()
            .is_some_and(|c| c.message_count == target.message_count + 1)
    })
    .await;
    assert!(status(&mut h).await.scans > before.scans);
}

/// Opens the tree to every user (folders 0755, files 0644).
fn open_to_all(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            open_to_all(&entry.path());
        } else if meta.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// Rescans with the file permissions of an unprivileged user (the scan
/// threads inherit the file-system user id), so that modes apply as they
/// would to a broker that does not run as root.
fn rescan_unprivileged(index: &std::sync::Arc<dispatch_broker::conversations::ConversationIndex>) {
    let index = std::sync::Arc::clone(index);
    std::thread::spawn(move || {
        // Only root can switch; for anyone else the modes apply already.
        let _ = nix::unistd::setfsuid(nix::unistd::Uid::from_raw(65534));
        index.rescan();
    })
    .join()
    .unwrap();
}

#[tokio::test]
async fn an_unreadable_transcript_is_counted_and_the_rest_listed() {
    use dispatch_broker::conversations::{ConversationIndex, IndexConfig};
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let manifest = dispatch_testkit::generate(home.path(), &Spec::default()).unwrap();
    open_to_all(home.path());
    let victim = &manifest.conversations[6];
    std::fs::set_permissions(&victim.path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let index = std::sync::Arc::new(ConversationIndex::new(IndexConfig::new(home.path())));
    rescan_unprivileged(&index);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut client =
        conversations_support::serve(std::sync::Arc::clone(&index), shutdown.clone()).await;

    let status = client
        .get_index_status(pb::GetIndexStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.unreadable, 1);
    assert_eq!(
        status.conversations as usize,
        manifest.conversations.len() - 1
    );
    let list = client
        .list_conversations(pb::ListConversationsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.conversations.len(), manifest.conversations.len() - 1);
    assert!(list.conversations.iter().all(|c| c.id != victim.id));
    let err = client
        .get_conversation(pb::GetConversationRequest {
            id: victim.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Readable again: the next scan lists it in full.
    std::fs::set_permissions(&victim.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    rescan_unprivileged(&index);
    let back = client
        .get_conversation(pb::GetConversationRequest {
            id: victim.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.message_count, victim.message_count);
    assert_eq!(back.tokens, Some(tokens(&victim.tokens)));
    shutdown.cancel();
}
