//! Pages of a transcript's messages, read from disk with work and memory
//! bounded by the page, not by the transcript.
//!
//! A [`MessageMap`] records, for each line that makes up a message, its byte
//! range and the messages it touches: the message it starts or continues,
//! and the message each of its tool results joins (or is appended to, when
//! its call is unknown). It is built in one pass that parses only ids (no
//! texts are kept) and is extended from its last offset when the file grows.
//! A page then reads just the lines touching its messages, with seeks, and
//! builds them with the same rules as [`super::messages::read_messages`].
//! [`MessageMaps`] caches recent maps within a memory budget.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, Metadata};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dispatch_proto::v1 as pb;
use pb::content_block::Kind as Block;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::messages::{
    Cursor, assistant_message, display_block, new_message, page_response, parse_content, user_parts,
};
use super::record::{Line, MAX_LINE_BYTES, Record, scan_lines, to_utf8};
use super::stats::{RECENT_MESSAGE_IDS, RecentIds, user_line_is_message};
use crate::sync::lock;

/// No message.
const NONE: u32 = u32::MAX;
/// Marks a tool result appended to a message as a block of its own (its
/// call is not pending) rather than joined to its call.
const APPENDED: u32 = 1 << 31;
/// Memory the cached maps may use together.
const CACHE_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// Most maps cached.
const CACHE_MAPS: usize = 64;

/// One line that contributes to messages.
#[derive(Debug, Clone, Copy)]
struct LineEntry {
    offset: u64,
    len: u32,
    /// The message this line's own content starts or continues, or [`NONE`].
    own: u32,
    /// Lowest and highest message this line touches.
    lo: u32,
    hi: u32,
    /// Index in [`MessageMap::targets`] of the target of its first tool result.
    first_target: u32,
}

/// The counting state after a prefix of the file, to extend the map from.
#[derive(Debug, Clone, Default)]
struct MapState {
    messages: u32,
    recent: RecentIds,
    /// `message.id` -> its message, for the last few responses.
    by_message_id: VecDeque<(Box<str>, u32)>,
    /// Tool calls awaiting a result: `tool_use.id` -> its message.
    pending: HashMap<Box<str>, u32>,
}

/// The file a map was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

/// Where the messages of one transcript are, line by line.
#[derive(Debug, Clone, Default)]
pub struct MessageMap {
    stamp: Option<Stamp>,
    /// Bytes through the last newline.
    consumed: u64,
    /// State after the complete lines (an unterminated last record is
    /// mapped on top of it and dropped when the file is extended).
    state: MapState,
    complete: (usize, usize, usize),
    lines: Vec<LineEntry>,
    /// Target message of each tool result, in file order ([`NONE`] when
    /// dropped; [`APPENDED`] set when appended rather than joined).
    targets: Vec<u32>,
    /// Message index -> index in `lines` of the line that starts it.
    starts: Vec<u32>,
}

/// A content block reduced to the ids that join tool results to calls.
#[derive(Deserialize)]
struct IdBlock<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_use_id: Option<&'a RawValue>,
}

/// The blocks of an array `content` (items that are not blocks are skipped).
fn id_blocks(content: Option<&RawValue>) -> Vec<IdBlock<'_>> {
    let Some(raw) = content.filter(|r| r.get().starts_with('[')) else {
        return Vec::new();
    };
    let items: Vec<&RawValue> = serde_json::from_str(raw.get()).unwrap_or_default();
    items
        .into_iter()
        .filter_map(|item| serde_json::from_str(item.get()).ok())
        .collect()
}

/// A JSON string's text, else "" (as the display reader treats it).
fn id_text(raw: Option<&RawValue>) -> Cow<'_, str> {
    raw.filter(|r| r.get().starts_with('"'))
        .and_then(|r| serde_json::from_str::<Cow<'_, str>>(r.get()).ok())
        .unwrap_or_default()
}

impl MessageMap {
    /// Messages in the transcript.
    pub fn total(&self) -> u32 {
        self.starts.len() as u32
    }

    /// Approximate heap memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.lines.capacity() * size_of::<LineEntry>()
            + (self.targets.capacity() + self.starts.capacity()) * size_of::<u32>()
            + self.state.pending.len() * 64
            + RECENT_MESSAGE_IDS * 2 * 48
    }

    /// Whether the map's part of the file is unchanged, so that it can be
    /// extended with what was appended.
    fn extends_to(&self, stamp: &Stamp, file: &mut File) -> bool {
        let Some(old) = self.stamp else {
            return false;
        };
        if (old.dev, old.ino) != (stamp.dev, stamp.ino) || stamp.len < self.consumed {
            return false;
        }
        if self.consumed == 0 {
            return true;
        }
        let mut last = [0u8];
        file.seek(SeekFrom::Start(self.consumed - 1)).is_ok()
            && file.read_exact(&mut last).is_ok()
            && last[0] == b'\n'
    }

    /// Maps what the file holds past the map's last complete line.
    fn update(&mut self, file: &mut File, stamp: Stamp) -> io::Result<()> {
        let (lines, targets, starts) = self.complete;
        self.lines.truncate(lines);
        self.targets.truncate(targets);
        self.starts.truncate(starts);
        file.seek(SeekFrom::Start(self.consumed))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut state = std::mem::take(&mut self.state);
        let mut offset = self.consumed;
        let end = scan_lines(&mut reader, MAX_LINE_BYTES, |line| match line {
            Line::Complete(bytes) => {
                self.add_line(&mut state, offset, bytes);
                offset += bytes.len() as u64 + 1;
            }
            Line::Oversized(len) => offset += len + 1,
        })?;
        self.consumed += end.consumed;
        self.complete = (self.lines.len(), self.targets.len(), self.starts.len());
        if !end.tail.is_empty() && !end.tail_oversized {
            let (text, _) = to_utf8(&end.tail);
            if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
                let mut tail_state = state.clone();
                self.add_line(&mut tail_state, self.consumed, &end.tail);
            }
        }
        self.state = state;
        self.stamp = Some(stamp);
        Ok(())
    }

    fn add_line(&mut self, st: &mut MapState, offset: u64, bytes: &[u8]) {
        let (text, _) = to_utf8(bytes);
        if text.trim().is_empty() {
            return;
        }
        let Ok(record) = serde_json::from_str::<Record<'_>>(&text) else {
            return;
        };
        let Some(message) = &record.message else {
            return;
        };
        let first_target = self.targets.len();
        let mut own = NONE;
        let mut starts_message = false;
        match record.kind.as_deref() {
            Some("user") => {
                if user_line_is_message(&message.lite_content()) {
                    (own, starts_message) = (st.messages, true);
                    st.messages += 1;
                }
                for block in id_blocks(message.content) {
                    if block.kind.as_deref() != Some("tool_result") {
                        continue;
                    }
                    let id = id_text(block.tool_use_id);
                    let target = match st.pending.remove(&*id) {
                        Some(m) => m,
                        None => st.messages.checked_sub(1).map_or(NONE, |m| m | APPENDED),
                    };
                    self.targets.push(target);
                }
            }
            Some("assistant") => {
                let known = match message.id.as_deref() {
                    Some(id) if st.recent.seen_or_insert(id) => st
                        .by_message_id
                        .iter()
                        .find(|(k, _)| &**k == id)
                        .map(|(_, m)| *m),
                    _ => None,
                };
                own = match known {
                    Some(m) => m,
                    None => {
                        starts_message = true;
                        let m = st.messages;
                        st.messages += 1;
                        if let Some(id) = message.id.as_deref() {
                            if st.by_message_id.len() == RECENT_MESSAGE_IDS {
                                st.by_message_id.pop_front();
                            }
                            st.by_message_id.push_back((id.into(), m));
                        }
                        m
                    }
                };
                for block in id_blocks(message.content) {
                    if block.kind.as_deref() == Some("tool_use") {
                        st.pending.insert(id_text(block.id).into(), own);
                    }
                }
            }
            _ => return,
        }
        let touched = std::iter::once(own)
            .chain(self.targets[first_target..].iter().copied())
            .filter(|&m| m != NONE)
            .map(|m| m & !APPENDED);
        let (lo, hi) = touched.fold((NONE, 0), |(lo, hi), m| (lo.min(m), hi.max(m)));
        if lo == NONE {
            self.targets.truncate(first_target);
            return;
        }
        if starts_message {
            self.starts.push(self.lines.len() as u32);
        }
        self.lines.push(LineEntry {
            offset,
            len: bytes.len() as u32,
            own,
            lo,
            hi,
            first_target: first_target as u32,
        });
    }

    /// Builds messages `start..end` from the lines that touch them.
    fn read_range(&self, file: &mut File, start: u32, end: u32) -> io::Result<PageRead> {
        let mut page = PageBuilder {
            start,
            slots: vec![None; (end - start) as usize],
        };
        let mut lines_read = 0;
        if start < end {
            let first = self.starts[start as usize] as usize;
            let mut reader = BufReader::with_capacity(64 * 1024, file);
            reader.seek(SeekFrom::Start(self.lines[first].offset))?;
            let mut pos = self.lines[first].offset;
            let mut buf = Vec::new();
            let touching = self.lines[first..]
                .iter()
                .filter(|e| e.lo < end && e.hi >= start);
            for entry in touching {
                reader.seek_relative(entry.offset as i64 - pos as i64)?;
                buf.resize(entry.len as usize, 0);
                reader.read_exact(&mut buf)?;
                pos = entry.offset + u64::from(entry.len);
                lines_read += 1;
                let targets = &self.targets[entry.first_target as usize..];
                page.add_line(entry, &buf, targets);
            }
        }
        let messages = page.slots.into_iter().flatten().collect();
        Ok(PageRead {
            response: page_response(messages, self.total(), start, end),
            lines_read,
        })
    }
}

/// Messages of one page, built line by line.
struct PageBuilder {
    start: u32,
    slots: Vec<Option<pb::Message>>,
}

impl PageBuilder {
    fn slot(&mut self, message: u32) -> Option<&mut Option<pb::Message>> {
        let i = message.checked_sub(self.start)?;
        self.slots.get_mut(i as usize)
    }

    fn add_line(&mut self, entry: &LineEntry, bytes: &[u8], targets: &[u32]) {
        let (text, _) = to_utf8(bytes);
        let Ok(record) = serde_json::from_str::<Record<'_>>(&text) else {
            return;
        };
        let Some(message) = &record.message else {
            return;
        };
        match record.kind.as_deref() {
            Some("user") => {
                let (blocks, results) = user_parts(parse_content(message.content));
                if let Some(slot) = self.slot(entry.own) {
                    let mut msg = new_message(&record, pb::MessageRole::User, entry.own as usize);
                    msg.blocks = blocks;
                    *slot = Some(msg);
                }
                for (result, &target) in results.into_iter().zip(targets) {
                    if target != NONE {
                        self.place(result, target);
                    }
                }
            }
            Some("assistant") => {
                let Some(slot) = self.slot(entry.own) else {
                    return;
                };
                let msg = slot
                    .get_or_insert_with(|| assistant_message(&record, message, entry.own as usize));
                if let Value::Array(items) = parse_content(message.content) {
                    msg.blocks.extend(items.iter().filter_map(display_block));
                }
            }
            _ => {}
        }
    }

    /// Joins a result to its call (the last call with its id in the target
    /// message), or appends it to the target message.
    fn place(&mut self, result: pb::ToolResult, target: u32) {
        let Some(Some(msg)) = self.slot(target & !APPENDED) else {
            return;
        };
        if target & APPENDED == 0 {
            let call = msg.blocks.iter_mut().rev().find_map(|b| match &mut b.kind {
                Some(Block::ToolCall(call)) if call.id == result.tool_use_id => Some(call),
                _ => None,
            });
            if let Some(call) = call {
                call.result = Some(result);
                return;
            }
        }
        msg.blocks.push(pb::ContentBlock {
            kind: Some(Block::ToolResult(result)),
        });
    }
}

/// One page and the work it took.
#[derive(Debug)]
pub struct PageRead {
    pub response: pb::GetMessagesResponse,
    /// Transcript lines read and parsed for the page.
    pub lines_read: usize,
}

/// Recently used message maps, within a memory budget.
#[derive(Debug, Default)]
pub struct MessageMaps {
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    maps: Vec<(PathBuf, Arc<MessageMap>, u64)>,
    clock: u64,
}

impl MessageMaps {
    /// The page of the transcript at `path` at `cursor`.
    pub fn page(&self, path: &Path, cursor: Cursor, limit: u32) -> io::Result<PageRead> {
        let mut file = File::open(path)?;
        let map = self.map(path, &mut file)?;
        let (start, end) = cursor.bounds(map.total(), limit);
        map.read_range(&mut file, start, end)
    }

    /// The current map of `path`: cached, extended, or built.
    pub fn map(&self, path: &Path, file: &mut File) -> io::Result<Arc<MessageMap>> {
        let stamp = Stamp::of(&file.metadata()?);
        let cached = {
            let mut cache = lock(&self.cache);
            match cache.maps.iter().position(|(p, _, _)| p == path) {
                Some(i) if cache.maps[i].1.stamp == Some(stamp) => {
                    cache.clock += 1;
                    cache.maps[i].2 = cache.clock;
                    return Ok(Arc::clone(&cache.maps[i].1));
                }
                Some(i) => Some(cache.maps.swap_remove(i).1),
                None => None,
            }
        };
        let mut map = match cached {
            Some(map) if map.extends_to(&stamp, file) => Arc::unwrap_or_clone(map),
            _ => MessageMap::default(),
        };
        map.update(file, stamp)?;
        let map = Arc::new(map);
        self.insert(path, Arc::clone(&map));
        Ok(map)
    }

    fn insert(&self, path: &Path, map: Arc<MessageMap>) {
        let mut cache = lock(&self.cache);
        cache.maps.retain(|(p, _, _)| p != path);
        cache.clock += 1;
        let clock = cache.clock;
        cache.maps.push((path.to_owned(), map, clock));
        loop {
            let bytes: usize = cache.maps.iter().map(|(_, m, _)| m.heap_bytes()).sum();
            if cache.maps.len() <= 1
                || (bytes <= CACHE_BUDGET_BYTES && cache.maps.len() <= CACHE_MAPS)
            {
                break;
            }
            let oldest = (0..cache.maps.len())
                .min_by_key(|&i| cache.maps[i].2)
                .unwrap_or(0);
            cache.maps.swap_remove(oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use dispatch_testkit::{Spec, generate};

    use super::*;
    use crate::conversations::messages::{page, read_messages};

    fn transcripts(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let Ok(kind) = std::fs::symlink_metadata(&path).map(|m| m.file_type()) else {
                continue;
            };
            if kind.is_dir() {
                transcripts(&path, out);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "jsonl") {
                out.push(path);
            }
        }
    }

    /// Walks every page of `path` both ways and compares each with the
    /// same page cut from the whole-file reader.
    fn assert_pages_match_whole_reads(maps: &MessageMaps, path: &Path) {
        let whole = read_messages(path).unwrap();
        let total = whole.len() as u32;
        for limit in [1, 3, 7, 50] {
            for mut cursor in [Cursor::After(0), Cursor::Before(u32::MAX)] {
                loop {
                    let got = maps.page(path, cursor, limit).unwrap().response;
                    let want = page(whole.clone(), cursor, limit);
                    assert_eq!(got, want, "{} at {cursor:?} by {limit}", path.display());
                    let next = match cursor {
                        Cursor::After(_) => &got.after_cursor,
                        Cursor::Before(_) => &got.before_cursor,
                    };
                    match Cursor::parse(next) {
                        Some(next) => cursor = next,
                        None => break,
                    }
                }
            }
        }
        assert_eq!(
            maps.page(path, Cursor::After(0), 1).unwrap().response.total,
            total
        );
    }

    #[test]
    fn conversation_pages_equal_the_whole_file_reader_across_damage_and_appends() {
        let home = tempfile::tempdir().unwrap();
        generate(home.path(), &Spec::default()).unwrap();
        let mut paths = Vec::new();
        transcripts(&home.path().join("projects"), &mut paths);
        assert!(paths.len() > 12, "main and subagent transcripts");
        let maps = MessageMaps::default();
        for path in &paths {
            assert_pages_match_whole_reads(&maps, path);
        }

        // Appends are mapped from the last offset: a tool call whose result
        // arrives later, a result for an unknown call, a continuation line
        // of a response, and finally a record completed after a partial write.
        let path = &paths[0];
        let line = |v: serde_json::Value| format!("{v}\n");
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(line(serde_json::json!({"type": "assistant", "uuid": "x1", "message": {"id": "msg_x", "content": [{"type": "tool_use", "id": "toolu_late", "name": "Bash", "input": {"command": "ls"}}]}})).as_bytes()).unwrap();
        assert_pages_match_whole_reads(&maps, path);
        f.write_all(line(serde_json::json!({"type": "user", "uuid": "x2", "message": {"content": [{"type": "tool_result", "tool_use_id": "toolu_unknown", "content": "orphan"}, {"type": "tool_result", "tool_use_id": "toolu_late", "content": "late result"}]}})).as_bytes()).unwrap();
        f.write_all(line(serde_json::json!({"type": "assistant", "uuid": "x3", "message": {"id": "msg_x", "content": [{"type": "text", "text": "continued"}]}})).as_bytes()).unwrap();
        assert_pages_match_whole_reads(&maps, path);
        f.write_all(br#"{"type":"user","uuid":"x4","message":{"content":"half"#)
            .unwrap();
        assert_pages_match_whole_reads(&maps, path);
        f.write_all(b" written\"}}\n").unwrap();
        assert_pages_match_whole_reads(&maps, path);
        let last = maps
            .page(path, Cursor::Before(u32::MAX), 1)
            .unwrap()
            .response;
        assert!(format!("{:?}", last.messages[0].blocks).contains("half written"));
    }

    #[test]
    fn a_conversation_page_reads_only_its_lines_whatever_the_transcript_size() {
        let home = tempfile::tempdir().unwrap();
        let spec = Spec {
            conversations: 1,
            turns: 2000,
            pad_bytes: 8000,
            damage: false,
            ..Spec::default()
        };
        let manifest = generate(home.path(), &spec).unwrap();
        let expected = &manifest.conversations[0];
        let size = std::fs::metadata(&expected.path).unwrap().len();
        assert!(size > 24_000_000, "a large transcript: {size} bytes");
        let maps = MessageMaps::default();
        let limit = 50;
        let total = expected.message_count;
        for cursor in [
            Cursor::After(0),
            Cursor::After(total / 2),
            Cursor::Before(u32::MAX),
        ] {
            let read = maps.page(&expected.path, cursor, limit).unwrap();
            let messages = &read.response.messages;
            assert_eq!(read.response.total, total);
            assert_eq!(messages.len(), limit as usize, "{cursor:?}");
            let (start, _) = cursor.bounds(total, limit);
            let indices: Vec<u32> = messages.iter().map(|m| m.index).collect();
            assert_eq!(indices, (start..start + limit).collect::<Vec<_>>());
            // A message is at most a few lines (a response's blocks and the
            // results joined to its calls): the page never reads the rest.
            assert!(
                read.lines_read <= 3 * limit as usize,
                "{} lines read",
                read.lines_read
            );
            // Every call in the page got its result, read from past the page.
            for call in expected
                .tool_calls
                .iter()
                .filter(|c| indices.contains(&c.message_index))
            {
                let message = &messages[(call.message_index - start) as usize];
                let result = message.blocks.iter().find_map(|b| match &b.kind {
                    Some(Block::ToolCall(c)) if c.id == call.id => c.result.as_ref(),
                    _ => None,
                });
                let result = result.unwrap_or_else(|| panic!("result of {}", call.id));
                assert!(result.text.starts_with(&call.result_prefix));
            }
        }
        // The map keeps a few words per line, not the transcript's text
        // (here about 6 lines of 2.5 KB on average per turn).
        let mut file = File::open(&expected.path).unwrap();
        let map = maps.map(&expected.path, &mut file).unwrap();
        assert_eq!(map.total(), total);
        assert!(
            map.heap_bytes() < size as usize / 20,
            "map of {} bytes for {size} bytes",
            map.heap_bytes()
        );
    }
}
