//! A generated Claude Code history for usage and cost tests: conversations
//! in several projects and models, responses written as several lines with
//! one `message.id`, subagents in both layouts, damaged lines (some of them
//! broken assistant records carrying usage), a model without a price and
//! responses minutes either side of midnight. Beside the files it returns
//! every API response that should count, once, so that a test can sum the
//! expected figures itself (per local day, model, project, conversation).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::{encode_cwd, iso_timestamp};

/// Models written, the last one unknown to any price table.
pub const MODELS: [&str; 4] = [
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-6",
    "claude-haiku-4-5-20251001",
    "claude-nonesuch-9",
];
/// Projects written (one with a comma, for CSV quoting).
pub const PROJECTS: [&str; 3] = ["/home/alice/shop", "/home/bob/api,v2", "/srv/tools"];

/// Tokens of one response, by price category.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UsageTokens {
    pub input: u64,
    pub output: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub cache_read: u64,
}

impl UsageTokens {
    pub fn add(&mut self, o: &Self) {
        self.input += o.input;
        self.output += o.output;
        self.cache_write_5m += o.cache_write_5m;
        self.cache_write_1h += o.cache_write_1h;
        self.cache_read += o.cache_read;
    }

    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_write_5m + self.cache_write_1h + self.cache_read
    }
}

/// One API response that counts.
#[derive(Debug, Clone)]
pub struct Response {
    pub conversation: String,
    pub title: String,
    pub project: String,
    pub model: String,
    /// Timestamp of the response's first line, Unix epoch ms.
    pub at_ms: i64,
    pub tokens: UsageTokens,
    /// Written into a subagent's transcript.
    pub sidechain: bool,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub responses: Vec<Response>,
    pub conversations: Vec<String>,
    /// Damaged lines written (never counted).
    pub damaged_lines: u32,
}

/// The local calendar day (`YYYY-MM-DD`) of `at_ms` at a fixed UTC offset.
pub fn local_day(at_ms: i64, offset_minutes: i64) -> String {
    iso_timestamp(at_ms + offset_minutes * 60_000)[..10].to_owned()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One transcript being written.
struct Transcript {
    out: BufWriter<File>,
    session: String,
    cwd: String,
    agent: Option<String>,
    clock_ms: i64,
    serial: u64,
}

impl Transcript {
    fn create(
        path: &Path,
        session: &str,
        cwd: &str,
        agent: Option<&str>,
        clock_ms: i64,
    ) -> io::Result<Self> {
        fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        Ok(Self {
            out: BufWriter::new(File::create(path)?),
            session: session.to_owned(),
            cwd: cwd.to_owned(),
            agent: agent.map(str::to_owned),
            clock_ms,
            serial: 0,
        })
    }

    fn line(&mut self, kind: &str, at_ms: i64, extra: Value) -> io::Result<()> {
        self.serial += 1;
        let mut record = json!({
            "parentUuid": null, "isSidechain": self.agent.is_some(), "cwd": self.cwd,
            "sessionId": self.session, "version": "2.1.39", "type": kind,
            "uuid": format!("{}-{}", self.session, self.serial), "timestamp": iso_timestamp(at_ms),
        });
        if let Some(agent) = &self.agent {
            record["agentId"] = json!(agent);
        }
        if let (Value::Object(r), Value::Object(e)) = (&mut record, extra) {
            r.extend(e);
        }
        writeln!(self.out, "{record}")
    }

    fn user(&mut self, text: &str) -> io::Result<()> {
        self.clock_ms += 20_000;
        let at = self.clock_ms;
        self.line(
            "user",
            at,
            json!({"message": {"role": "user", "content": text}}),
        )
    }

    /// One response in `lines` lines sharing its id and usage, a tool
    /// result between the first two when there are several.
    fn response(
        &mut self,
        rng: &mut Rng,
        model: &str,
        tokens: UsageTokens,
        lines: u32,
    ) -> io::Result<i64> {
        // Minutes to hours apart, so that days and quarter hours are crossed.
        self.clock_ms += 60_000 * (1 + rng.below(50) as i64) + rng.below(60_000) as i64;
        let first = self.clock_ms;
        let id = format!("msg_{:016x}", rng.next());
        let usage = usage_json(rng, &tokens);
        for n in 0..lines {
            let at = first + i64::from(n) * 700;
            let message = json!({"model": model, "id": id, "type": "message", "role": "assistant",
                "content": [{"type": "text", "text": format!("part {n}")}], "usage": usage});
            self.line(
                "assistant",
                at,
                json!({"message": message, "requestId": format!("req_{id}")}),
            )?;
            if n == 0 && lines > 1 {
                let result = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]});
                self.line("user", at + 300, json!({"message": result}))?;
            }
        }
        self.clock_ms = first + i64::from(lines) * 700;
        Ok(first)
    }

    fn damage(&mut self, rng: &mut Rng) -> io::Result<()> {
        let usage = json!({"input_tokens": 999_999, "output_tokens": 999_999});
        let broken = json!({"type": "assistant", "timestamp": iso_timestamp(self.clock_ms),
            "message": {"model": MODELS[0], "id": format!("msg_broken_{}", rng.next()), "usage": usage}})
        .to_string();
        // A record cut in the middle, then plain garbage.
        writeln!(self.out, "{}", &broken[..broken.len() / 2])?;
        writeln!(self.out, "not json at all {{")
    }

    fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The `usage` object of a response: with the 5m/1h split, or (older
/// transcripts) only `cache_creation_input_tokens`, all of them 5-minute.
fn usage_json(rng: &mut Rng, t: &UsageTokens) -> Value {
    let mut usage = json!({
        "input_tokens": t.input, "output_tokens": t.output,
        "cache_creation_input_tokens": t.cache_write_5m + t.cache_write_1h,
        "cache_read_input_tokens": t.cache_read, "service_tier": "standard",
    });
    if t.cache_write_1h > 0 || rng.below(2) == 0 {
        usage["cache_creation"] = json!({"ephemeral_5m_input_tokens": t.cache_write_5m,
            "ephemeral_1h_input_tokens": t.cache_write_1h});
    }
    usage
}

fn tokens(rng: &mut Rng) -> UsageTokens {
    let with_1h = rng.below(3) == 0;
    UsageTokens {
        input: 1 + rng.below(5_000),
        output: 1 + rng.below(3_000),
        cache_write_5m: rng.below(20_000),
        cache_write_1h: if with_1h { rng.below(10_000) } else { 0 },
        cache_read: rng.below(200_000),
    }
}

/// Writes `conversations` conversations under `root/projects`, starting at
/// `start_ms`, and returns the responses that count.
pub fn generate(
    root: &Path,
    conversations: usize,
    start_ms: i64,
    seed: u64,
) -> io::Result<History> {
    let mut rng = Rng(seed);
    let mut history = History::default();
    for c in 0..conversations {
        write_conversation(
            root,
            c,
            start_ms + c as i64 * 5 * 3_600_000,
            &mut rng,
            &mut history,
        )?;
    }
    Ok(history)
}

fn write_conversation(
    root: &Path,
    c: usize,
    clock_ms: i64,
    rng: &mut Rng,
    history: &mut History,
) -> io::Result<()> {
    let project = PROJECTS[c % PROJECTS.len()];
    let id = format!("00000000-0000-4000-8000-{c:012x}");
    let title = format!("Usage task {c}");
    let dir = root.join("projects").join(encode_cwd(project));
    let mut main = Transcript::create(
        &dir.join(format!("{id}.jsonl")),
        &id,
        project,
        None,
        clock_ms,
    )?;
    main.user(&title)?;
    let mut add =
        |model: &str, at_ms: i64, tokens: UsageTokens, sidechain: bool, history: &mut History| {
            history.responses.push(Response {
                conversation: id.clone(),
                title: title.clone(),
                project: project.to_owned(),
                model: model.to_owned(),
                at_ms,
                tokens,
                sidechain,
            });
        };
    for r in 0..3 + rng.below(5) {
        let model = if c % 4 == 3 && r == 1 {
            MODELS[3]
        } else {
            MODELS[(c + r as usize) % 2]
        };
        let t = tokens(rng);
        let lines = 1 + rng.below(3) as u32;
        let at = main.response(rng, model, t, lines)?;
        add(model, at, t, false, history);
        if r == 1 {
            main.damage(rng)?;
            history.damaged_lines += 2;
        }
        main.user("next")?;
    }
    if c.is_multiple_of(2) {
        let agent = format!("a{c:04x}");
        let path = dir
            .join(&id)
            .join("subagents")
            .join(format!("agent-{agent}.jsonl"));
        write_subagent(
            &path,
            &id,
            project,
            &agent,
            main.clock_ms,
            rng,
            history,
            &mut add,
        )?;
    }
    if c.is_multiple_of(5) {
        let agent = format!("l{c:04x}");
        let path = dir.join(format!("agent-{agent}.jsonl"));
        write_subagent(
            &path,
            &id,
            project,
            &agent,
            main.clock_ms,
            rng,
            history,
            &mut add,
        )?;
    }
    main.finish()?;
    history.conversations.push(id);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_subagent(
    path: &Path,
    parent: &str,
    project: &str,
    agent: &str,
    clock_ms: i64,
    rng: &mut Rng,
    history: &mut History,
    add: &mut impl FnMut(&str, i64, UsageTokens, bool, &mut History),
) -> io::Result<()> {
    let mut sub = Transcript::create(path, parent, project, Some(agent), clock_ms)?;
    sub.user("Search the code")?;
    for _ in 0..2 + rng.below(3) {
        let t = tokens(rng);
        let lines = 1 + rng.below(2) as u32;
        let at = sub.response(rng, MODELS[2], t, lines)?;
        add(MODELS[2], at, t, true, history);
    }
    sub.finish()
}
