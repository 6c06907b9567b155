//! Synthetic Claude Code homes for tests and benchmarks. [`generate`] writes
//! `projects/<encoded cwd>/<sessionId>.jsonl` transcripts that follow the
//! on-disk format (multi-line assistant responses sharing a `message.id`,
//! thinking, tool calls and results, images, summaries, injected prompts,
//! subagents in both layouts) plus, on request, the damage real homes carry
//! (corrupt and partial lines, invalid UTF-8, a huge tool output, a broken
//! symlink, a symlink loop, unrelated files such as `.credentials.json`).
//! It returns a [`Manifest`] of what an index should report.
//! [`wsframe`] encodes raw WebSocket frames, malformed ones included;
//! [`announce`] parses the lines with which the binaries say where they
//! listen; [`launch`] starts them with a clean environment and waits for
//! those lines; [`process`] reads a process's memory figures;
//! [`conversations`] serves the broker's conversation service in process;
//! [`messages_api`] stands in for the Messages API behind a real `claude`.

pub mod announce;
pub mod conversations;
pub mod deflate_frames;
pub mod launch;
pub mod messages_api;
pub mod process;
pub mod prometheus;
pub mod usage_history;
pub mod wsframe;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    pub conversations: usize,
    pub projects: usize,
    /// Prompt/response turns per conversation (at least 1).
    pub turns: usize,
    /// Filler bytes added to each tool result.
    pub pad_bytes: usize,
    /// Add corrupt lines, broken links and the like.
    pub damage: bool,
    /// Timestamp of the first conversation's first record (epoch ms).
    pub base_time_ms: i64,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            seed: 1,
            conversations: 12,
            projects: 3,
            turns: 3,
            pad_bytes: 0,
            damage: true,
            base_time_ms: 1_763_632_800_000, // 2025-11-20T10:00:00Z
        }
    }
}

/// Token totals, counted once per API message.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Tokens {
    fn add(&mut self, other: Tokens) {
        self.input += other.input;
        self.output += other.output;
        self.cache_creation += other.cache_creation;
        self.cache_read += other.cache_read;
    }
}

/// A tool call written into a main transcript.
#[derive(Debug, Clone)]
pub struct ExpectedToolCall {
    /// Index of the (merged) assistant message holding the call.
    pub message_index: u32,
    pub id: String,
    pub name: String,
    /// The start of the joined result text.
    pub result_prefix: String,
    /// Length of the whole result text, in bytes.
    pub result_len: usize,
    pub is_error: bool,
}

/// A subagent transcript.
#[derive(Debug, Clone)]
pub struct ExpectedSubagent {
    pub agent_id: String,
    /// `<sessionId>/subagents/agent-*.jsonl` (else beside the parent).
    pub nested_layout: bool,
    pub message_count: u32,
    pub tokens: Tokens,
    /// Bytes written into the subagent's transcript.
    pub size_bytes: u64,
}

/// One conversation and the figures an index should report for it.
#[derive(Debug, Clone)]
pub struct ExpectedConversation {
    pub id: String,
    pub project: String,
    pub title: String,
    pub message_count: u32,
    pub tokens: Tokens,
    pub tool_uses: BTreeMap<String, u32>,
    pub models: Vec<String>,
    pub subagents: Vec<ExpectedSubagent>,
    pub created_ms: i64,
    pub last_ms: i64,
    /// A word found only in this conversation, and the message holding it.
    pub marker: String,
    pub marker_message_index: u32,
    pub tool_calls: Vec<ExpectedToolCall>,
    /// Corrupt lines written into this transcript.
    pub corrupt_lines: u32,
    /// The main transcript file.
    pub path: PathBuf,
    /// Bytes written into the main transcript and its subagents' ones.
    pub size_bytes: u64,
}

/// Everything [`generate`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub root: PathBuf,
    /// Most recently created last.
    pub conversations: Vec<ExpectedConversation>,
    pub corrupt_lines: u32,
    pub invalid_utf8_lines: u32,
    /// Dangling and looping symlinks under `projects/`.
    pub broken_links: u32,
    /// Transcript files, subagents included.
    pub transcripts: u32,
    pub total_bytes: u64,
}

impl Manifest {
    pub fn conversation(&self, id: &str) -> Option<&ExpectedConversation> {
        self.conversations.iter().find(|c| c.id == id)
    }
}

/// The project folder name Claude Code uses for a working directory.
pub fn encode_cwd(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c == '/' || c == '.' { '-' } else { c })
        .collect()
}

/// ISO 8601 UTC with milliseconds, as in the transcripts.
pub fn iso_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }
}

const MODEL: &str = "claude-sonnet-4-5-20250929";
const SUBAGENT_MODEL: &str = "claude-haiku-4-5-20251001";
const VERSION: &str = "2.1.39";
/// A 1x1 PNG.
pub const TINY_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
/// Size of the huge tool output written when damage is on.
pub const HUGE_OUTPUT_BYTES: usize = 3 * 1024 * 1024;

/// Writes one transcript, line by line, tracking what it should index to.
struct Writer {
    out: BufWriter<File>,
    session_id: String,
    cwd: String,
    clock_ms: i64,
    last_uuid: Option<String>,
    sidechain: Option<String>,
    messages: u32,
    tokens: Tokens,
    tool_uses: BTreeMap<String, u32>,
    bytes: u64,
}

impl Writer {
    fn create(path: &Path, session_id: &str, cwd: &str, clock_ms: i64) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        Ok(Self {
            out: BufWriter::with_capacity(256 * 1024, File::create(path)?),
            session_id: session_id.to_owned(),
            cwd: cwd.to_owned(),
            clock_ms,
            last_uuid: None,
            sidechain: None,
            messages: 0,
            tokens: Tokens::default(),
            tool_uses: BTreeMap::new(),
            bytes: 0,
        })
    }

    fn raw(&mut self, line: &[u8]) -> io::Result<()> {
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// A record with the common fields.
    fn record(&mut self, kind: &str, uuid: &str, extra: Value) -> Value {
        self.clock_ms += 1500;
        let mut record = json!({
            "parentUuid": self.last_uuid,
            "isSidechain": self.sidechain.is_some(),
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": VERSION,
            "gitBranch": "main",
            "type": kind,
            "uuid": uuid,
            "timestamp": iso_timestamp(self.clock_ms),
        });
        if let Some(agent) = &self.sidechain {
            record["agentId"] = json!(agent);
        }
        if let (Value::Object(r), Value::Object(e)) = (&mut record, extra) {
            r.extend(e);
        }
        self.last_uuid = Some(uuid.to_owned());
        record
    }

    fn write(&mut self, record: &Value) -> io::Result<()> {
        let line = serde_json::to_vec(record).map_err(io::Error::other)?;
        self.raw(&line)
    }

    /// A user message (counts as one message). Returns its index.
    fn user(&mut self, rng: &mut Rng, content: Value, flags: Value) -> io::Result<u32> {
        let uuid = rng.uuid();
        let mut extra = json!({"message": {"role": "user", "content": content}});
        if let (Value::Object(e), Value::Object(f)) = (&mut extra, flags) {
            e.extend(f);
        }
        let record = self.record("user", &uuid, extra);
        self.write(&record)?;
        self.messages += 1;
        Ok(self.messages - 1)
    }

    /// One API response written as one line per block, all sharing the
    /// message id and usage. Returns the message index.
    fn assistant(
        &mut self,
        rng: &mut Rng,
        model: &str,
        blocks: Vec<Value>,
        usage: Tokens,
    ) -> io::Result<u32> {
        let message_id = format!("msg_{:016x}", rng.next());
        let request_id = format!("req_{:016x}", rng.next());
        let count = blocks.len();
        for (i, block) in blocks.into_iter().enumerate() {
            if block["type"] == "tool_use" {
                let name = block["name"].as_str().unwrap_or("unknown").to_owned();
                *self.tool_uses.entry(name).or_default() += 1;
            }
            let uuid = rng.uuid();
            let stop = if i + 1 == count {
                json!("end_turn")
            } else {
                Value::Null
            };
            let record = self.record(
                "assistant",
                &uuid,
                json!({
                    "message": {
                        "model": model, "id": message_id, "type": "message", "role": "assistant",
                        "content": [block], "stop_reason": stop, "stop_sequence": null,
                        "usage": {
                            "input_tokens": usage.input,
                            "cache_creation_input_tokens": usage.cache_creation,
                            "cache_read_input_tokens": usage.cache_read,
                            "cache_creation": {"ephemeral_5m_input_tokens": usage.cache_creation, "ephemeral_1h_input_tokens": 0},
                            "output_tokens": usage.output,
                            "service_tier": "standard"
                        }
                    },
                    "requestId": request_id,
                }),
            );
            self.write(&record)?;
        }
        self.messages += 1;
        self.tokens.add(usage);
        Ok(self.messages - 1)
    }

    /// A tool result line (joined to its call: not a message).
    fn tool_result(
        &mut self,
        rng: &mut Rng,
        tool_use_id: &str,
        content: Value,
        is_error: bool,
    ) -> io::Result<()> {
        let uuid = rng.uuid();
        let stdout = content.as_str().unwrap_or("").to_owned();
        let record = self.record(
            "user",
            &uuid,
            json!({
                "message": {"role": "user", "content": [
                    {"tool_use_id": tool_use_id, "type": "tool_result", "content": content, "is_error": is_error}
                ]},
                "toolUseResult": {"stdout": stdout, "stderr": "", "interrupted": false, "isImage": false},
            }),
        );
        self.write(&record)
    }

    /// A record that is neither a message nor damage.
    fn noise(&mut self, rng: &mut Rng) -> io::Result<()> {
        let uuid = rng.uuid();
        let system = self.record(
            "system",
            &uuid,
            json!({"subtype": "info", "content": "Hook ran", "level": "info"}),
        );
        self.write(&system)?;
        let snapshot = json!({"type": "file-history-snapshot", "messageId": uuid, "snapshot": {"trackedFileBackups": {}}});
        self.write(&snapshot)
    }

    fn finish(mut self) -> io::Result<u64> {
        self.out.flush()?;
        Ok(self.bytes)
    }
}

fn usage_for(c: usize, t: usize, k: u64) -> Tokens {
    Tokens {
        input: 3 + t as u64 + k,
        output: 10 * (t as u64 + 1) + k,
        cache_creation: 100 * (c as u64 % 3),
        cache_read: 1000 + 7 * t as u64,
    }
}

fn filler(len: usize) -> String {
    const WORDS: &str =
        "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ";
    WORDS.chars().cycle().take(len).collect()
}

/// Writes a Claude Code home under `root` (created) and returns its manifest.
pub fn generate(root: &Path, spec: &Spec) -> io::Result<Manifest> {
    let projects_dir = root.join("projects");
    fs::create_dir_all(&projects_dir)?;
    write_unrelated_files(root)?;
    let mut rng = Rng(spec.seed);
    let mut manifest = Manifest {
        root: root.to_owned(),
        ..Manifest::default()
    };
    for c in 0..spec.conversations {
        let conversation = write_conversation(&projects_dir, spec, c, &mut rng, &mut manifest)?;
        manifest.conversations.push(conversation);
    }
    if spec.damage {
        write_damage(&projects_dir, spec, &mut manifest)?;
    }
    Ok(manifest)
}

fn project_cwd(p: usize) -> String {
    match p {
        0 => "/home/alice/demo-app".to_owned(),
        1 => "/home/alice/site.example.org".to_owned(),
        _ => format!("/srv/work/project-{p}"),
    }
}

fn write_conversation(
    projects_dir: &Path,
    spec: &Spec,
    c: usize,
    rng: &mut Rng,
    manifest: &mut Manifest,
) -> io::Result<ExpectedConversation> {
    let id = rng.uuid();
    let cwd = project_cwd(c % spec.projects);
    let dir = projects_dir.join(encode_cwd(&cwd));
    let path = dir.join(format!("{id}.jsonl"));
    let start_ms = spec.base_time_ms + c as i64 * 3_600_000;
    let mut w = Writer::create(&path, &id, &cwd, start_ms)?;
    let damage = spec.damage;
    let marker = format!("zebra{c}quartz");
    let mut corrupt_lines = 0;

    let summary = c
        .is_multiple_of(3)
        .then(|| format!("Summary title {c}: fix the date util"));
    if let Some(summary) = &summary {
        w.write(&json!({"type": "summary", "summary": summary, "leafUuid": rng.uuid()}))?;
    }
    if c % 4 == 1 {
        w.user(
            rng,
            json!("Caveat: The messages below were generated by the user while running local commands."),
            json!({"isMeta": true}),
        )?;
    }
    let prompt = format!("Please fix task {c} about the {marker} module");
    let typed = if damage && c == 2 {
        format!("{prompt} caf\u{FFFD} \u{FFFD}")
    } else {
        prompt.clone()
    };
    let title = summary.clone().unwrap_or(typed);
    let marker_message_index = if damage && c == 2 {
        // A prompt with invalid UTF-8 inside its text: repaired, not lost.
        let record = w.record(
            "user",
            &rng.uuid(),
            json!({"message": {"role": "user", "content": "PLACEHOLDER"}}),
        );
        let line = serde_json::to_string(&record).map_err(io::Error::other)?;
        let (head, tail) = line.split_once("PLACEHOLDER").unwrap_or((&line, ""));
        let mut bytes = head.as_bytes().to_vec();
        bytes.extend_from_slice(prompt.as_bytes());
        bytes.extend_from_slice(b" caf\xe9 \xff");
        bytes.extend_from_slice(tail.as_bytes());
        w.raw(&bytes)?;
        w.messages += 1;
        manifest.invalid_utf8_lines += 1;
        w.messages - 1
    } else {
        w.user(rng, json!(prompt), json!({}))?
    };

    let mut tool_calls = Vec::new();
    let mut subagents = Vec::new();
    for t in 0..spec.turns {
        if t > 0 {
            let content = if c % 6 == 4 && t == 1 {
                json!([
                    {"type": "text", "text": format!("Here is a screenshot for turn {t}")},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": TINY_PNG_BASE64}}
                ])
            } else {
                json!(format!("Now continue with step {t} of task {c}"))
            };
            w.user(rng, content, json!({}))?;
        }
        if damage && c == 0 && t == 0 {
            w.raw(b"{\"type\":\"assistant\",\"message\":{\"id\":\"msg_broken\",\"content\":[{\"type\":\"te")?;
            corrupt_lines += 1;
        }
        // Response 1: thinking, text and a tool call, three lines, one id.
        let tool_id = format!("toolu_{:016x}", rng.next());
        let (name, input) = if t % 2 == 0 {
            (
                "Bash",
                json!({"command": format!("npm test -- step{t}"), "description": format!("Run the tests of step {t}")}),
            )
        } else {
            (
                "Read",
                json!({"file_path": format!("{cwd}/src/step{t}.js")}),
            )
        };
        let mut blocks = vec![
            json!({"type": "text", "text": format!("I'll look at step {t} with **{name}**.")}),
            json!({"type": "tool_use", "id": tool_id, "name": name, "input": input}),
        ];
        if t % 2 == 0 {
            blocks.insert(0, json!({"type": "thinking", "thinking": format!("Step {t}: run it first."), "signature": "EqQBCkgIBxAB"}));
        }
        let message_index = w.assistant(rng, MODEL, blocks, usage_for(c, t, 0))?;
        let is_error = t == 1;
        let mut result = if is_error {
            format!("Error: step{t}.js not found")
        } else {
            format!("PASS step {t} of task {c}\n")
        };
        if damage && c == 3 && t == 0 {
            result.push_str(&filler(HUGE_OUTPUT_BYTES));
        } else if spec.pad_bytes > 0 {
            result.push_str(&filler(spec.pad_bytes));
        }
        w.tool_result(rng, &tool_id, json!(result), is_error)?;
        tool_calls.push(ExpectedToolCall {
            message_index,
            id: tool_id,
            name: name.to_owned(),
            result_prefix: result.chars().take(24).collect(),
            result_len: result.len(),
            is_error,
        });
        if t == 0 {
            w.noise(rng)?;
        }
        // A subagent, launched through the Task tool.
        if t == 0 && (c.is_multiple_of(5) || c % 5 == 2) {
            let agent_id = format!("{:08x}", rng.next() as u32);
            let task_id = format!("toolu_{:016x}", rng.next());
            let task = json!({"type": "tool_use", "id": task_id, "name": "Task",
                "input": {"description": "Explore the code", "prompt": "Find the date helpers", "subagent_type": "Explore"}});
            let task_index = w.assistant(rng, MODEL, vec![task], usage_for(c, t, 5))?;
            let nested = c.is_multiple_of(5);
            let sub = write_subagent(
                &dir, &id, &cwd, &agent_id, nested, w.clock_ms, rng, manifest,
            )?;
            w.clock_ms += 10_000;
            w.tool_result(
                rng,
                &task_id,
                json!([{"type": "text", "text": "The helpers live in src/date.js"}]),
                false,
            )?;
            tool_calls.push(ExpectedToolCall {
                message_index: task_index,
                id: task_id,
                name: "Task".to_owned(),
                result_prefix: "The helpers live in src/d".chars().take(24).collect(),
                result_len: "The helpers live in src/date.js".len(),
                is_error: false,
            });
            subagents.push(sub);
        }
        // Response 2: the answer.
        let answer = format!(
            "Step {t} is done. The `formatDate` helper now uses UTC.\n\n- item one\n- item two"
        );
        w.assistant(
            rng,
            MODEL,
            vec![json!({"type": "text", "text": answer})],
            usage_for(c, t, 1),
        )?;
    }
    let partial = damage && c == 1;
    let last_ms = w.clock_ms;
    let (messages, tokens, tool_uses) = (w.messages, w.tokens, w.tool_uses.clone());
    let mut bytes = w.finish()?;
    if partial {
        // A line still being written: no newline, cut mid-record.
        let mut f = fs::OpenOptions::new().append(true).open(&path)?;
        let tail = b"{\"parentUuid\":\"x\",\"type\":\"user\",\"message\":{\"role\":\"us";
        f.write_all(tail)?;
        bytes += tail.len() as u64;
    }
    manifest.corrupt_lines += corrupt_lines;
    manifest.transcripts += 1;
    let size_bytes = bytes + subagents.iter().map(|s| s.size_bytes).sum::<u64>();
    manifest.total_bytes += size_bytes;
    Ok(ExpectedConversation {
        id,
        project: cwd,
        title,
        message_count: messages,
        tokens,
        tool_uses,
        models: if subagents.is_empty() {
            vec![MODEL.to_owned()]
        } else {
            vec![MODEL.to_owned(), SUBAGENT_MODEL.to_owned()]
        },
        subagents,
        created_ms: start_ms + 1500,
        last_ms,
        marker,
        marker_message_index,
        tool_calls,
        corrupt_lines,
        path,
        size_bytes,
    })
}

fn subagent_path(dir: &Path, parent: &str, agent_id: &str, nested: bool) -> PathBuf {
    if nested {
        dir.join(parent)
            .join("subagents")
            .join(format!("agent-{agent_id}.jsonl"))
    } else {
        dir.join(format!("agent-{agent_id}.jsonl"))
    }
}

#[allow(clippy::too_many_arguments)]
fn write_subagent(
    dir: &Path,
    parent: &str,
    cwd: &str,
    agent_id: &str,
    nested: bool,
    clock_ms: i64,
    rng: &mut Rng,
    manifest: &mut Manifest,
) -> io::Result<ExpectedSubagent> {
    let path = subagent_path(dir, parent, agent_id, nested);
    let mut w = Writer::create(&path, parent, cwd, clock_ms)?;
    w.sidechain = Some(agent_id.to_owned());
    w.user(rng, json!("Find the date helpers"), json!({}))?;
    let grep_id = format!("toolu_{:016x}", rng.next());
    w.assistant(
        rng,
        SUBAGENT_MODEL,
        vec![
            json!({"type": "text", "text": "Searching."}),
            json!({"type": "tool_use", "id": grep_id, "name": "Grep", "input": {"pattern": "formatDate"}}),
        ],
        Tokens { input: 11, output: 22, cache_creation: 33, cache_read: 44 },
    )?;
    w.tool_result(
        rng,
        &grep_id,
        json!("src/date.js:3: export function formatDate"),
        false,
    )?;
    w.assistant(
        rng,
        SUBAGENT_MODEL,
        vec![json!({"type": "text", "text": "The helpers live in src/date.js"})],
        Tokens {
            input: 5,
            output: 6,
            cache_creation: 0,
            cache_read: 7,
        },
    )?;
    let (messages, tokens) = (w.messages, w.tokens);
    let size_bytes = w.finish()?;
    manifest.transcripts += 1;
    Ok(ExpectedSubagent {
        agent_id: agent_id.to_owned(),
        nested_layout: nested,
        message_count: messages,
        tokens,
        size_bytes,
    })
}

/// Files outside `projects/` that must never be read or exposed.
fn write_unrelated_files(root: &Path) -> io::Result<()> {
    fs::create_dir_all(root.join("todos"))?;
    fs::create_dir_all(root.join("debug"))?;
    fs::write(
        root.join(".credentials.json"),
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-secret-never-exposed"}}"#,
    )?;
    fs::write(root.join("settings.json"), r#"{"model":"sonnet"}"#)?;
    fs::write(root.join("debug").join("session.txt"), "debug log")?;
    let latest = root.join("debug").join("latest");
    if fs::symlink_metadata(&latest).is_err() {
        std::os::unix::fs::symlink("session.txt", latest)?;
    }
    Ok(())
}

fn write_damage(projects_dir: &Path, spec: &Spec, manifest: &mut Manifest) -> io::Result<()> {
    let project = projects_dir.join(encode_cwd(&project_cwd(0)));
    fs::create_dir_all(&project)?;
    let links: [(PathBuf, PathBuf); 3] = [
        (
            project.join("dangling.jsonl"),
            PathBuf::from("/nonexistent/dispatch/transcript.jsonl"),
        ),
        (projects_dir.join("-loop-a"), PathBuf::from("-loop-b")),
        (projects_dir.join("-loop-b"), PathBuf::from("-loop-a")),
    ];
    for (link, target) in links {
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(target, link)?;
        }
    }
    manifest.broken_links += 3;
    // A folder cycle (a project folder linking back to `projects/`).
    let cycle = project.join("cycle");
    if fs::symlink_metadata(&cycle).is_err() {
        std::os::unix::fs::symlink("..", cycle)?;
    }
    let _ = spec;
    Ok(())
}
