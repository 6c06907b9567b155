//! Case-insensitive text search over transcripts, read from disk. Files are
//! first screened on their raw bytes, streamed (cheap); only files that may
//! match are read as messages, page by page. Memory is bounded by a page,
//! whatever the transcript's size; the search is bounded by a hit count and
//! a deadline, and stopped as soon as the receiver is gone.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use dispatch_proto::v1 as pb;

use super::index::ConversationIndex;
use super::messages::{Cursor, message_text};
use super::pages::MessageMaps;
use super::stats::truncate_chars;

/// Messages read at a time.
const SEARCH_PAGE: u32 = 256;
/// Bytes screened at a time.
const SCREEN_CHUNK: usize = 1024 * 1024;

/// Characters of context on each side of a match in a snippet.
const SNIPPET_CONTEXT: usize = 60;

/// A validated search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Lowercased query text.
    pub needle: String,
    pub conversation_id: Option<String>,
    pub limit: usize,
    pub deadline: Instant,
}

/// Runs `query`, handing each hit to `emit` until it returns false.
pub fn run(
    index: &ConversationIndex,
    maps: &MessageMaps,
    query: &SearchQuery,
    mut emit: impl FnMut(pb::SearchHit) -> bool,
) {
    let targets = match &query.conversation_id {
        Some(id) => match index.transcript_path(id, None) {
            Some(path) => vec![(id.clone(), path)],
            None => Vec::new(),
        },
        None => index.ids_by_activity(),
    };
    let mut hits = 0;
    for (id, path) in targets {
        if hits >= query.limit || Instant::now() >= query.deadline {
            return;
        }
        if query.conversation_id.is_none() && !may_contain(&path, &query.needle) {
            continue;
        }
        let meta = index.get(&id);
        let (title, project) = meta.map(|c| (c.title, c.project)).unwrap_or_default();
        let mut cursor = Cursor::After(0);
        while let Ok(page) = maps.page(&path, cursor, SEARCH_PAGE) {
            for message in &page.response.messages {
                let text = message_text(message).to_lowercase();
                let Some(at) = text.find(&query.needle) else {
                    continue;
                };
                let hit = pb::SearchHit {
                    conversation_id: id.clone(),
                    title: title.clone(),
                    project: project.clone(),
                    message_index: message.index,
                    role: message.role,
                    snippet: snippet(&text, at, query.needle.len()),
                    timestamp_ms: message.timestamp_ms,
                };
                hits += 1;
                if !emit(hit) || hits >= query.limit {
                    return;
                }
            }
            match Cursor::parse(&page.response.after_cursor) {
                Some(next) if Instant::now() < query.deadline => cursor = next,
                _ => break,
            }
        }
    }
}

/// Cheap screen on raw bytes: false only when the file cannot match.
fn may_contain(path: &Path, needle: &str) -> bool {
    // JSON escapes (quotes, backslashes, control and non-ASCII characters)
    // make the raw bytes differ from the text: parse those files.
    if !needle.bytes().all(|b| b.is_ascii_graphic() || b == b' ') || needle.contains(['"', '\\']) {
        return true;
    }
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    // Each chunk starts with the end of the previous one, so that a match
    // across the boundary is found.
    let keep = needle.len().saturating_sub(1);
    let mut buf = vec![0u8; keep + SCREEN_CHUNK];
    let mut kept = 0;
    loop {
        let n = match file.read(&mut buf[kept..]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let filled = kept + n;
        buf[kept..filled].make_ascii_lowercase();
        if finder.find(&buf[..filled]).is_some() {
            return true;
        }
        kept = keep.min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
}

/// One line of text around a match.
fn snippet(text: &str, at: usize, len: usize) -> String {
    let before: String = {
        let head = &text[..at];
        let chars: Vec<char> = head.chars().rev().take(SNIPPET_CONTEXT).collect();
        chars.into_iter().rev().collect()
    };
    let after = &text[at..];
    let tail = truncate_chars(after, SNIPPET_CONTEXT + len);
    let joined = format!("{}{}", before, tail);
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}
