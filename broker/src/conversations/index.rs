//! The in-memory conversation index: metadata of every transcript, keyed by
//! file, refreshed incrementally (unchanged files are skipped by size and
//! modification time, appended files are parsed from their last offset) and
//! broadcasting a [`ConversationEvent`] per changed conversation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dispatch_proto::time::now_ms;
use dispatch_proto::v1 as pb;
use tokio::sync::broadcast;

use super::pricing::{self, PriceTable};
use super::record::{Line, MAX_LINE_BYTES, scan_lines};
use super::scan::{self, FileStamp, Found, TranscriptKind};
use super::stats::{Tokens, TranscriptStats};
use super::usage::{self, ConversationFiles, UsageQuery, UsageSum};
use crate::sync;

/// Watch events buffered per subscriber before it is told it fell behind.
const EVENT_BUFFER: usize = 4096;

/// Where and how often the index looks.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// The Claude Code home (`$HOME/.claude` by default); only its
    /// `projects/` folder is read, and nothing is ever written under it.
    pub claude_home: PathBuf,
    /// Full rescan period, a safety net behind file notifications.
    pub rescan_interval: Duration,
    /// How long file notifications are collected before the index refreshes.
    pub debounce: Duration,
    /// Watch the tree for changes (inotify); without it, only the periodic
    /// rescan picks changes up.
    pub notifications: bool,
    /// Prices behind cost estimates.
    pub prices: Arc<PriceTable>,
}

impl IndexConfig {
    pub fn new(claude_home: impl Into<PathBuf>) -> Self {
        Self {
            claude_home: claude_home.into(),
            rescan_interval: Duration::from_secs(300),
            debounce: Duration::from_millis(50),
            notifications: true,
            prices: Arc::new(PriceTable::builtin()),
        }
    }

    /// `$HOME/.claude`.
    pub fn default_claude_home() -> PathBuf {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(".claude")
    }
}

/// One indexed transcript file.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    pub kind: TranscriptKind,
    pub stamp: FileStamp,
    /// Bytes parsed so far (through the last complete line).
    pub offset: u64,
    pub stats: TranscriptStats,
    pub readable: bool,
}

impl FileEntry {
    /// The conversation this file belongs to.
    pub fn conversation_id(&self) -> Option<&str> {
        match &self.kind {
            TranscriptKind::Main { id } => Some(id),
            TranscriptKind::Subagent { parent, .. } => Some(parent),
            TranscriptKind::LegacySubagent { .. } => self.stats.session_id.as_deref(),
        }
    }

    fn agent_id(&self) -> Option<&str> {
        match &self.kind {
            TranscriptKind::Main { .. } => None,
            TranscriptKind::Subagent { agent_id, .. }
            | TranscriptKind::LegacySubagent { agent_id } => Some(agent_id),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<PathBuf, FileEntry>,
    /// Main transcript of each conversation.
    mains: HashMap<String, PathBuf>,
    /// Subagent transcripts of each conversation.
    children: HashMap<String, BTreeSet<PathBuf>>,
    /// What the list filters and sorts on, per listed conversation.
    listed: HashMap<String, Listed>,
    /// Listed conversations by last activity, then id (kept sorted on every
    /// change, so a list call never sorts).
    by_activity: BTreeSet<(i64, String)>,
    /// Listed conversations by creation, then id.
    by_created: BTreeSet<(i64, String)>,
    /// Bytes read from transcripts since the index started.
    bytes_read: u64,
    broken_links: u32,
    unreadable_dirs: u32,
    last_scan_ms: i64,
    scans: u64,
}

impl State {
    fn link(&mut self, path: &Path) {
        let Some(entry) = self.files.get(path) else {
            return;
        };
        let Some(id) = entry.conversation_id().map(str::to_owned) else {
            return;
        };
        match entry.kind {
            TranscriptKind::Main { .. } => {
                self.mains.insert(id, path.to_owned());
            }
            _ => {
                self.children.entry(id).or_default().insert(path.to_owned());
            }
        }
    }

    fn unlink(&mut self, path: &Path) {
        let Some(entry) = self.files.get(path) else {
            return;
        };
        let Some(id) = entry.conversation_id().map(str::to_owned) else {
            return;
        };
        match entry.kind {
            TranscriptKind::Main { .. } => {
                if self.mains.get(&id).is_some_and(|p| p == path) {
                    self.mains.remove(&id);
                }
            }
            _ => {
                if let Some(set) = self.children.get_mut(&id) {
                    set.remove(path);
                    if set.is_empty() {
                        self.children.remove(&id);
                    }
                }
            }
        }
    }

    fn main_entry(&self, id: &str) -> Option<&FileEntry> {
        let entry = self.files.get(self.mains.get(id)?)?;
        entry.readable.then_some(entry)
    }

    /// Files conversation `id` again in the sort orders after a change (or
    /// takes it out when it is no longer listed).
    fn refile(&mut self, id: &str) {
        let listed = self.main_entry(id).map(|main| Listed {
            activity: last_activity(self, id, main),
            created: created(main),
            project: main.stats.cwd.clone().unwrap_or_default(),
            haystack: format!(
                "{}\n{}",
                main.stats.title().to_lowercase(),
                main.stats.cwd.as_deref().unwrap_or("").to_lowercase()
            ),
        });
        if let Some(old) = self.listed.remove(id) {
            self.by_activity.remove(&(old.activity, id.to_owned()));
            self.by_created.remove(&(old.created, id.to_owned()));
        }
        if let Some(listed) = listed {
            self.by_activity.insert((listed.activity, id.to_owned()));
            self.by_created.insert((listed.created, id.to_owned()));
            self.listed.insert(id.to_owned(), listed);
        }
    }
}

/// The list's view of one conversation.
#[derive(Debug)]
struct Listed {
    activity: i64,
    created: i64,
    project: String,
    /// Lowercased title and project, for the text filter.
    haystack: String,
}

/// Sort order of [`ConversationIndex::list`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    LastActivity,
    Created,
}

/// Filters and paging of [`ConversationIndex::list`].
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub project: Option<String>,
    pub text: Option<String>,
    pub active_since_ms: Option<i64>,
    pub active_until_ms: Option<i64>,
    pub sort: SortBy,
    pub ascending: bool,
    pub offset: usize,
    pub limit: usize,
}

/// A page of [`ConversationIndex::list`].
#[derive(Debug)]
pub struct ListPage {
    pub conversations: Vec<pb::Conversation>,
    pub total: usize,
    pub next_offset: Option<usize>,
}

/// The conversation index.
pub struct ConversationIndex {
    config: IndexConfig,
    projects: PathBuf,
    state: RwLock<State>,
    events: broadcast::Sender<pb::ConversationEvent>,
}

impl std::fmt::Debug for ConversationIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationIndex")
            .field("projects", &self.projects)
            .finish_non_exhaustive()
    }
}

/// A file to (re)parse and where to start.
struct Job {
    found: Found,
    prior: Option<(u64, TranscriptStats)>,
}

impl ConversationIndex {
    /// An empty index of `config.claude_home`; call [`Self::rescan`] to fill it.
    pub fn new(config: IndexConfig) -> Self {
        let projects = config.claude_home.join("projects");
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            config,
            projects,
            state: RwLock::new(State::default()),
            events,
        }
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// The `projects` folder read by the index.
    pub fn projects_dir(&self) -> &Path {
        &self.projects
    }

    /// Subscribes to conversation changes.
    pub fn subscribe(&self) -> broadcast::Receiver<pb::ConversationEvent> {
        self.events.subscribe()
    }

    /// Walks the whole tree and refreshes what changed (blocking).
    pub fn rescan(&self) {
        let walk = scan::walk(&self.projects);
        let seen: HashSet<PathBuf> = walk.found.iter().map(|f| f.path.clone()).collect();
        let jobs = self.jobs_for(walk.found);
        let results = run_jobs(jobs);
        let mut changed = BTreeSet::new();
        let mut removed = BTreeSet::new();
        {
            let mut state = sync::write(&self.state);
            let gone: Vec<PathBuf> = state
                .files
                .keys()
                .filter(|p| !seen.contains(*p))
                .cloned()
                .collect();
            for path in gone {
                remove_file(&mut state, &path, &mut changed, &mut removed);
            }
            for entry in results {
                insert_file(&mut state, entry, &mut changed);
            }
            refile_all(&mut state, &changed, &removed);
            state.broken_links = walk.broken_links;
            state.unreadable_dirs = walk.unreadable;
            state.last_scan_ms = now_ms();
            state.scans += 1;
        }
        self.publish(changed, removed);
    }

    /// Refreshes the given paths (from file notifications). Paths that are
    /// not transcripts (folders, renames) trigger a full rescan.
    pub fn refresh_paths(&self, paths: &BTreeSet<PathBuf>) {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for path in paths {
            let Some(kind) = scan::classify(&self.projects, path) else {
                // A folder appeared, moved or vanished: walk everything.
                if path.starts_with(&self.projects) && !path.is_file() {
                    return self.rescan();
                }
                continue;
            };
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_file() => found.push(Found {
                    path: path.clone(),
                    kind,
                    stamp: FileStamp::of(&meta),
                }),
                _ => missing.push(path.clone()),
            }
        }
        let results = run_jobs(self.jobs_for(found));
        let mut changed = BTreeSet::new();
        let mut removed = BTreeSet::new();
        {
            let mut state = sync::write(&self.state);
            for path in missing {
                remove_file(&mut state, &path, &mut changed, &mut removed);
            }
            for entry in results {
                insert_file(&mut state, entry, &mut changed);
            }
            refile_all(&mut state, &changed, &removed);
        }
        self.publish(changed, removed);
    }

    fn jobs_for(&self, found: Vec<Found>) -> Vec<Job> {
        let state = sync::read(&self.state);
        found
            .into_iter()
            .filter_map(|f| {
                let prior = match state.files.get(&f.path) {
                    // Unchanged; an unreadable file is tried again, since a
                    // permission change does not touch size or mtime.
                    Some(old) if old.stamp == f.stamp && old.kind == f.kind && old.readable => {
                        return None;
                    }
                    Some(old)
                        if old.readable
                            && old.kind == f.kind
                            && f.stamp.len >= old.offset
                            && f.stamp.len >= old.stamp.len =>
                    {
                        Some((old.offset, old.stats.clone()))
                    }
                    _ => None,
                };
                Some(Job { found: f, prior })
            })
            .collect()
    }

    fn publish(&self, changed: BTreeSet<String>, removed: BTreeSet<String>) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let state = sync::read(&self.state);
        for id in removed.iter().filter(|id| !state.mains.contains_key(*id)) {
            let _ = self.events.send(pb::ConversationEvent {
                kind: pb::conversation_event::Kind::Removed as i32,
                id: id.clone(),
                conversation: None,
            });
        }
        for id in &changed {
            if let Some(conversation) = build_conversation(&state, id, &self.config.prices) {
                let _ = self.events.send(pb::ConversationEvent {
                    kind: pb::conversation_event::Kind::Changed as i32,
                    id: id.clone(),
                    conversation: Some(conversation),
                });
            }
        }
    }

    /// One conversation's metadata.
    pub fn get(&self, id: &str) -> Option<pb::Conversation> {
        let state = sync::read(&self.state);
        build_conversation(&state, id, &self.config.prices)
    }

    /// The transcript file of a conversation, or of one of its subagents.
    pub fn transcript_path(&self, id: &str, agent_id: Option<&str>) -> Option<PathBuf> {
        let state = sync::read(&self.state);
        state.main_entry(id)?;
        match agent_id {
            None => state.mains.get(id).cloned(),
            Some(agent) => state
                .children
                .get(id)?
                .iter()
                .find(|p| {
                    state
                        .files
                        .get(*p)
                        .is_some_and(|e| e.agent_id() == Some(agent))
                })
                .cloned(),
        }
    }

    /// Conversation ids, most recently active first (for search).
    pub fn ids_by_activity(&self) -> Vec<(String, PathBuf)> {
        let state = sync::read(&self.state);
        state
            .by_activity
            .iter()
            .rev()
            .filter_map(|(_, id)| Some((id.clone(), state.mains.get(id)?.clone())))
            .collect()
    }

    /// Lists conversations: walks the maintained sort order (never sorts),
    /// building only the requested page; filters are checked on the way.
    pub fn list(&self, query: &ListQuery) -> ListPage {
        let state = sync::read(&self.state);
        let text = query
            .text
            .as_deref()
            .map(str::to_lowercase)
            .filter(|t| !t.is_empty());
        let filtered = query.project.is_some()
            || text.is_some()
            || query.active_since_ms.is_some()
            || query.active_until_ms.is_some();
        let order = match query.sort {
            SortBy::LastActivity => &state.by_activity,
            SortBy::Created => &state.by_created,
        };
        let ids: Box<dyn Iterator<Item = &str>> = if query.ascending {
            Box::new(order.iter().map(|(_, id)| id.as_str()))
        } else {
            Box::new(order.iter().rev().map(|(_, id)| id.as_str()))
        };
        let end = query.offset.saturating_add(query.limit);
        if !filtered {
            let total = order.len();
            let conversations = ids
                .skip(query.offset)
                .take(query.limit)
                .filter_map(|id| build_conversation(&state, id, &self.config.prices))
                .collect();
            return ListPage {
                conversations,
                total,
                next_offset: (end < total).then_some(end),
            };
        }
        let matches = |id: &str| {
            let Some(listed) = state.listed.get(id) else {
                return false;
            };
            query.project.as_deref().is_none_or(|p| listed.project == p)
                && text
                    .as_deref()
                    .is_none_or(|t| listed.haystack.contains(t) || id.contains(t))
                && query.active_since_ms.is_none_or(|t| listed.activity >= t)
                && query.active_until_ms.is_none_or(|t| listed.activity <= t)
        };
        let mut total = 0;
        let mut conversations = Vec::new();
        for id in ids.filter(|id| matches(id)) {
            if total >= query.offset && total < end {
                conversations.extend(build_conversation(&state, id, &self.config.prices));
            }
            total += 1;
        }
        ListPage {
            conversations,
            total,
            next_offset: (end < total).then_some(end),
        }
    }

    /// Tokens and estimated cost over a period, summed from the buckets of
    /// every listed conversation (subagents included).
    pub fn usage(&self, query: UsageQuery) -> pb::UsageReport {
        let prices = Arc::clone(&self.config.prices);
        let mut sum = UsageSum::new(query, &prices);
        let state = sync::read(&self.state);
        let mut files = Vec::new();
        for (id, listed) in &state.listed {
            let Some(main) = state.main_entry(id) else {
                continue;
            };
            files.clear();
            files.push(&main.stats);
            files.extend(readable_children(&state, id).map(|e| &e.stats));
            sum.add(&ConversationFiles {
                id,
                title: main.stats.title(),
                project: &listed.project,
                files: &files,
            });
        }
        drop(state);
        sum.finish()
    }

    /// Index size and damage.
    pub fn status(&self) -> pb::IndexStatus {
        let state = sync::read(&self.state);
        let mut status = pb::IndexStatus {
            conversations: state.listed.len() as u32,
            broken_links: state.broken_links,
            unreadable: state.unreadable_dirs,
            last_scan_ms: state.last_scan_ms,
            scans: state.scans,
            bytes_read: state.bytes_read,
            ..Default::default()
        };
        for entry in state.files.values() {
            if !entry.readable {
                status.unreadable += 1;
                continue;
            }
            status.transcripts += 1;
            status.bytes += entry.stamp.len;
            status.corrupt_lines += entry.stats.damage.corrupt;
            status.invalid_utf8_lines += entry.stats.damage.invalid_utf8;
            status.oversized_lines += entry.stats.damage.oversized;
            status.usage_bytes += entry.stats.usage.heap_bytes() as u64;
        }
        status
    }
}

fn remove_file(
    state: &mut State,
    path: &Path,
    changed: &mut BTreeSet<String>,
    removed: &mut BTreeSet<String>,
) {
    if let Some(entry) = state.files.get(path)
        && let Some(id) = entry.conversation_id()
    {
        match entry.kind {
            TranscriptKind::Main { .. } => removed.insert(id.to_owned()),
            _ => changed.insert(id.to_owned()),
        };
    }
    state.unlink(path);
    state.files.remove(path);
}

fn insert_file(state: &mut State, parsed: Parsed, changed: &mut BTreeSet<String>) {
    let Parsed { path, entry, read } = parsed;
    state.bytes_read += read;
    // The conversation the file belonged to changes as well (a legacy
    // subagent's parent comes from its records).
    if let Some(id) = state.files.get(&path).and_then(FileEntry::conversation_id) {
        changed.insert(id.to_owned());
    }
    state.unlink(&path);
    if let Some(id) = entry.conversation_id() {
        changed.insert(id.to_owned());
    }
    state.files.insert(path.clone(), entry);
    state.link(&path);
}

/// Files every changed or removed conversation again in the sort orders.
fn refile_all(state: &mut State, changed: &BTreeSet<String>, removed: &BTreeSet<String>) {
    for id in changed.iter().chain(removed) {
        state.refile(id);
    }
}

/// A parsed transcript, ready to enter the index.
struct Parsed {
    path: PathBuf,
    entry: FileEntry,
    /// Bytes read from disk to parse it.
    read: u64,
}

/// Parses the jobs, on two threads when there are many.
fn run_jobs(jobs: Vec<Job>) -> Vec<Parsed> {
    if jobs.len() < 16 {
        return jobs.into_iter().map(parse_job).collect();
    }
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let queue = std::sync::Mutex::new(jobs.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let job = sync::lock(&queue).next();
                    let Some(job) = job else { break };
                    let entry = parse_job(job);
                    sync::lock(&results).push(entry);
                }
            });
        }
    });
    sync::into_inner(results)
}

fn parse_job(job: Job) -> Parsed {
    let Job { found, prior } = job;
    let (start, stats) = prior.unwrap_or_default();
    let read = found.stamp.len.saturating_sub(start);
    let (offset, stats, readable) = match parse_from(&found.path, start, found.stamp.len, stats) {
        Ok((offset, stats)) => (offset, stats, true),
        Err(_) => (0, TranscriptStats::default(), false),
    };
    let entry = FileEntry {
        kind: found.kind,
        stamp: found.stamp,
        offset,
        stats,
        readable,
    };
    Parsed {
        path: found.path,
        entry,
        read: if readable { read } else { 0 },
    }
}

/// Parses `path` from byte `start` up to `len`; returns the new offset.
fn parse_from(
    path: &Path,
    start: u64,
    len: u64,
    mut stats: TranscriptStats,
) -> io::Result<(u64, TranscriptStats)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file.take(len.saturating_sub(start)));
    let end = scan_lines(&mut reader, MAX_LINE_BYTES, |line| match line {
        Line::Complete(bytes) => stats.add_line(bytes),
        Line::Oversized(_) => stats.damage.oversized += 1,
    })?;
    let mut offset = start + end.consumed;
    if !end.tail.is_empty() && !end.tail_oversized && stats.add_tail(&end.tail) {
        offset += end.tail.len() as u64;
    }
    Ok((offset, stats))
}

fn created(entry: &FileEntry) -> i64 {
    if entry.stats.created_ms != 0 {
        entry.stats.created_ms
    } else {
        mtime_ms(entry)
    }
}

fn mtime_ms(entry: &FileEntry) -> i64 {
    (entry.stamp.mtime_ns / 1_000_000) as i64
}

fn last_activity(state: &State, id: &str, main: &FileEntry) -> i64 {
    let own = if main.stats.last_ms != 0 {
        main.stats.last_ms
    } else {
        mtime_ms(main)
    };
    state
        .children
        .get(id)
        .into_iter()
        .flatten()
        .filter_map(|p| state.files.get(p))
        .map(|e| e.stats.last_ms)
        .fold(own, i64::max)
}

fn tokens(t: &Tokens) -> pb::TokenTotals {
    pb::TokenTotals {
        input: t.input,
        output: t.output,
        cache_creation: t.cache_creation,
        cache_read: t.cache_read,
    }
}

fn tool_map(tools: &BTreeMap<String, u32>) -> HashMap<String, u32> {
    tools.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

fn readable_children<'s>(state: &'s State, id: &str) -> impl Iterator<Item = &'s FileEntry> {
    state
        .children
        .get(id)
        .into_iter()
        .flatten()
        .filter_map(|p| state.files.get(p).filter(|e| e.readable))
}

fn build_conversation(state: &State, id: &str, prices: &PriceTable) -> Option<pb::Conversation> {
    let main = state.main_entry(id)?;
    let stats = &main.stats;
    let mut conversation = pb::Conversation {
        id: id.to_owned(),
        project: stats.cwd.clone().unwrap_or_default(),
        title: stats.title().to_owned(),
        created_at_ms: created(main),
        last_activity_ms: last_activity(state, id, main),
        message_count: stats.message_count,
        models: stats.models.clone(),
        tokens: Some(tokens(&stats.tokens)),
        tool_uses: tool_map(&stats.tool_uses),
        subagents: Vec::new(),
        size_bytes: main.stamp.len,
        git_branch: stats.git_branch.clone().unwrap_or_default(),
        version: stats.version.clone().unwrap_or_default(),
        damaged_lines: stats.damage.corrupt + stats.damage.oversized,
        modified_at_ms: mtime_ms(main),
        cost_usd: 0.0,
        unpriced_models: Vec::new(),
        context_tokens: stats.context_tokens,
        context_window: pricing::context_window(stats.context_tokens),
        context_model: stats
            .context_model
            .and_then(|m| stats.models.get(usize::from(m)).cloned())
            .unwrap_or_default(),
    };
    let files: Vec<&TranscriptStats> = std::iter::once(stats)
        .chain(readable_children(state, id).map(|e| &e.stats))
        .collect();
    (conversation.cost_usd, conversation.unpriced_models) =
        usage::conversation_cost(&files, prices);
    for path in state.children.get(id).into_iter().flatten() {
        let Some(child) = state.files.get(path).filter(|e| e.readable) else {
            continue;
        };
        let s = &child.stats;
        conversation.size_bytes += child.stamp.len;
        conversation.damaged_lines += s.damage.corrupt + s.damage.oversized;
        for model in &s.models {
            if !conversation.models.contains(model) {
                conversation.models.push(model.clone());
            }
        }
        conversation.subagents.push(pb::Subagent {
            agent_id: child.agent_id().unwrap_or_default().to_owned(),
            message_count: s.message_count,
            tokens: Some(tokens(&s.tokens)),
            tool_uses: tool_map(&s.tool_uses),
            created_at_ms: s.created_ms,
            last_activity_ms: s.last_ms,
            size_bytes: child.stamp.len,
        });
    }
    conversation.subagents.sort_by(|a, b| {
        a.created_at_ms
            .cmp(&b.created_at_ms)
            .then_with(|| a.agent_id.cmp(&b.agent_id))
    });
    Some(conversation)
}
