//! Test harness: starts the real `dispatch-broker` binary on an ephemeral
//! port with a temporary PTY_ROOT, and drives it with the generated tonic
//! client.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use dispatch_broker::ListenAddr;
use dispatch_broker::client::{self, BearerToken};
use dispatch_proto::v1 as pb;
use dispatch_proto::v1::sessions_client::SessionsClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tonic::Streaming;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const TOKEN: &str = "test-token-0123456789";
/// Generous deadline for anything that should happen "soon" on a loaded
/// machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub type Client = SessionsClient<InterceptedService<Channel, BearerToken>>;

/// A running `dispatch-broker` process.
pub struct TestBroker {
    pub child: Child,
    pub addr: ListenAddr,
    pub root: tempfile::TempDir,
}

impl TestBroker {
    /// Starts a broker on 127.0.0.1:0 with the test token.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a broker after `configure` adjusted its command.
    pub async fn start_with(configure: impl FnOnce(&mut Command)) -> Self {
        let root = tempfile::tempdir().unwrap();
        // Sessions get the broker's HOME: an empty one keeps shells free of
        // the machine's rc files (fast, deterministic, no shared history).
        let home = root.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_dispatch-broker"));
        command
            .env("BROKER_LISTEN", "127.0.0.1:0")
            .env("BROKER_TOKEN", TOKEN)
            .env("PTY_ROOT", root.path().join("sessions"))
            .env("RUST_LOG", "warn")
            .env("HOME", &home)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        configure(&mut command);
        let mut child = command.spawn().expect("start dispatch-broker");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("broker announces its address in time")
            .unwrap()
            .expect("broker printed its address");
        let addr = dispatch_testkit::announce::broker_address(&line)
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, addr, root }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("broker running")
    }

    pub async fn channel(&self) -> Channel {
        client::connect(&self.addr)
            .await
            .expect("connect to the broker")
    }

    /// A Sessions client with the right token.
    pub async fn client(&self) -> Client {
        self.client_with_token(TOKEN).await
    }

    pub async fn client_with_token(&self, token: &str) -> Client {
        SessionsClient::with_interceptor(self.channel().await, BearerToken::new(token).unwrap())
            .max_decoding_message_size(64 << 20)
    }

    /// Resident memory of the broker process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    dispatch_testkit::process::rss_kib(pid).expect("the process's VmRSS")
}

/// Creates a shell session of the given size.
pub async fn create_shell(client: &mut Client, cols: u32, rows: u32) -> pb::Session {
    client
        .create_session(pb::CreateSessionRequest {
            mode: pb::SessionMode::Shell as i32,
            cols,
            rows,
            name: "test".into(),
            ..Default::default()
        })
        .await
        .expect("create session")
        .into_inner()
}

/// One attach stream, with a terminal emulator fed everything it received.
pub struct Viewer {
    pub tx: mpsc::Sender<pb::AttachRequest>,
    pub rx: Streaming<pb::AttachResponse>,
    pub screen: vt100::Parser,
    /// Raw output received after the first replay.
    pub output: Vec<u8>,
    pub offset: u64,
    pub replays: usize,
    pub exit: Option<pb::ExitStatus>,
    pub acknowledge: bool,
}

impl Viewer {
    /// Attaches and waits for the first replay.
    pub async fn attach(
        client: &mut Client,
        id: &str,
        cols: u32,
        rows: u32,
        flow_control: bool,
    ) -> Self {
        let start = pb::AttachStart {
            session_id: id.into(),
            cols,
            rows,
            flow_control,
            ..Default::default()
        };
        Self::attach_with(client, start).await
    }

    /// Attaches with this `start` message and waits for the first replay.
    pub async fn attach_with(client: &mut Client, start: pb::AttachStart) -> Self {
        let (cols, rows, flow_control) = (start.cols, start.rows, start.flow_control);
        let (tx, requests) = mpsc::channel(64);
        tx.send(pb::AttachRequest {
            kind: Some(pb::attach_request::Kind::Start(start)),
        })
        .await
        .unwrap();
        let rx = client
            .attach(tokio_stream::wrappers::ReceiverStream::new(requests))
            .await
            .expect("attach")
            .into_inner();
        let mut viewer = Self {
            tx,
            rx,
            screen: parser(cols, rows),
            output: Vec::new(),
            offset: 0,
            replays: 0,
            exit: None,
            acknowledge: flow_control,
        };
        let first = viewer.next().await.expect("a first message");
        let pb::attach_response::Kind::Replay(replay) = first else {
            panic!("first message is a replay: {first:?}");
        };
        viewer.finish_replay(replay.continued).await;
        viewer
    }

    /// Receives the rest of a replay sent in pieces.
    async fn finish_replay(&mut self, mut continued: u64) {
        while continued > 0 {
            match self.next().await.expect("the rest of the replay") {
                pb::attach_response::Kind::Output(output) => {
                    continued -= output.data.len() as u64;
                }
                other => panic!("the replay continues before {other:?}"),
            }
        }
    }

    /// Receives and applies the next message.
    pub async fn next(&mut self) -> Option<pb::attach_response::Kind> {
        let Ok(message) = tokio::time::timeout(DEADLINE, self.rx.message()).await else {
            panic!(
                "no message within {DEADLINE:?}; output so far: {:?}\nscreen:\n{}",
                String::from_utf8_lossy(&self.output),
                self.screen.screen().contents()
            );
        };
        let message = message.ok()??;
        let kind = message.kind?;
        self.apply(kind).await
    }

    async fn apply(
        &mut self,
        kind: pb::attach_response::Kind,
    ) -> Option<pb::attach_response::Kind> {
        match &kind {
            pb::attach_response::Kind::Replay(replay) => {
                self.replays += 1;
                self.screen = parser(replay.cols, replay.rows);
                self.screen.process(&replay.scrollback);
                self.screen.process(&replay.screen);
                self.offset = replay.offset;
                if self.acknowledge {
                    self.ack(replay.offset).await;
                }
            }
            pb::attach_response::Kind::Output(output) if output.end_offset == self.offset => {
                // The rest of a replay: it ends where the replay does.
                self.screen.process(&output.data);
            }
            pb::attach_response::Kind::Output(output) => {
                self.screen.process(&output.data);
                self.output.extend_from_slice(&output.data);
                assert_eq!(
                    output.end_offset,
                    self.offset + output.data.len() as u64,
                    "offsets are contiguous"
                );
                self.offset = output.end_offset;
                if self.acknowledge {
                    self.ack(output.end_offset).await;
                }
            }
            pb::attach_response::Kind::Exit(exit) => self.exit = Some(exit.clone()),
            pb::attach_response::Kind::Session(session) => {
                let (rows, cols) = self.screen.screen().size();
                if (u32::from(cols.get()), u32::from(rows.get())) != (session.cols, session.rows) {
                    self.screen.set_size(
                        (session.rows as u16).try_into().unwrap(),
                        (session.cols as u16).try_into().unwrap(),
                    );
                }
            }
            pb::attach_response::Kind::Notice(_) | pb::attach_response::Kind::HandedOver(_) => {}
        }
        Some(kind)
    }

    /// Applies messages until none arrives for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Ok(Ok(Some(message))) = tokio::time::timeout(quiet, self.rx.message()).await {
            // Re-dispatch through `apply`.
            if let Some(kind) = message.kind {
                self.apply(kind).await;
            }
        }
    }

    pub async fn ack(&self, offset: u64) {
        let _ = self
            .tx
            .send(pb::AttachRequest {
                kind: Some(pb::attach_request::Kind::Ack(offset)),
            })
            .await;
    }

    pub async fn input(&self, data: &str) {
        self.tx
            .send(pb::AttachRequest {
                kind: Some(pb::attach_request::Kind::Input(
                    data.as_bytes().to_vec().into(),
                )),
            })
            .await
            .unwrap();
    }

    pub async fn resize(&self, cols: u32, rows: u32) {
        self.send_resize(cols, rows, false).await;
    }

    /// Resizes and takes over driving the PTY's size ("fit to this screen").
    pub async fn fit(&self, cols: u32, rows: u32) {
        self.send_resize(cols, rows, true).await;
    }

    async fn send_resize(&self, cols: u32, rows: u32, fit: bool) {
        self.tx
            .send(pb::AttachRequest {
                kind: Some(pb::attach_request::Kind::Resize(pb::Resize {
                    cols,
                    rows,
                    fit,
                })),
            })
            .await
            .unwrap();
    }

    /// Asks for a handover; applies messages until `handed_over` and
    /// returns its token (the old stream ends after it).
    pub async fn hand_over(&mut self) -> String {
        self.tx
            .send(pb::AttachRequest {
                kind: Some(pb::attach_request::Kind::Handover(pb::Handover {})),
            })
            .await
            .unwrap();
        loop {
            if let pb::attach_response::Kind::HandedOver(handed_over) = self
                .next()
                .await
                .expect("handed_over before the stream ends")
            {
                return handed_over.token;
            }
        }
    }

    /// Carries on over a new stream claiming the handed-over viewer.
    pub async fn resume(
        &mut self,
        client: &mut Client,
        session_id: &str,
        token: &str,
    ) -> Result<(), tonic::Status> {
        let start = pb::AttachStart {
            session_id: session_id.into(),
            resume: token.into(),
            ..Default::default()
        };
        let (tx, requests) = mpsc::channel(64);
        tx.send(pb::AttachRequest {
            kind: Some(pb::attach_request::Kind::Start(start)),
        })
        .await
        .unwrap();
        let stream = tokio_stream::wrappers::ReceiverStream::new(requests);
        self.rx = client.attach(stream).await?.into_inner();
        self.tx = tx;
        Ok(())
    }

    pub async fn detach(&self) {
        let _ = self
            .tx
            .send(pb::AttachRequest {
                kind: Some(pb::attach_request::Kind::Detach(pb::Detach {})),
            })
            .await;
    }

    /// Reads until the raw output contains `needle`.
    pub async fn wait_for_output(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut search = OutputSearch::new(needle);
        while !search.found_in(&self.output) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {needle:?}; got {:?}",
                String::from_utf8_lossy(&self.output)
            );
            if self.next().await.is_none() {
                panic!("stream ended waiting for {needle:?}");
            }
        }
    }

    /// Reads until the emulated screen contains `needle`.
    pub async fn wait_for_screen(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !self.screen.screen().contents().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {needle:?} on screen:\n{}",
                self.screen.screen().contents()
            );
            if self.next().await.is_none() {
                panic!("stream ended waiting for {needle:?}");
            }
        }
    }

    /// Reads until the exit event.
    pub async fn wait_for_exit(&mut self) -> pb::ExitStatus {
        while self.exit.is_none() {
            if self.next().await.is_none() {
                break;
            }
        }
        self.exit.clone().expect("an exit event")
    }
}

/// A new shell session of `broker` and what `env` prints in it.
pub async fn session_env(broker: &TestBroker) -> (pb::Session, String) {
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 200, 50).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 200, 50, true).await;
    viewer.input("env; echo env-dump-''done\r").await;
    viewer.wait_for_output("env-dump-done").await;
    let text = String::from_utf8_lossy(&viewer.output).into_owned();
    (session, text)
}

/// Ends a session and returns it as ended, checking it is reported so.
pub async fn end_session(client: &mut Client, id: &str) -> pb::Session {
    let ended = client
        .end_session(pb::EndSessionRequest { id: id.to_owned() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ended.status, pb::SessionStatus::Exited as i32, "{ended:?}");
    ended
}

/// Polls `condition` until it holds or the deadline passes.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn process_exists(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Live processes whose command line is `command` (arguments joined by
/// spaces).
pub fn processes_running(command: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| {
                let words: Vec<&[u8]> = line.split(|&b| b == 0).filter(|w| !w.is_empty()).collect();
                words.join(&b' ') == command.as_bytes()
            }) && process_exists(pid)
        })
        .collect()
}

/// Threads of process `pid` named `name`.
pub fn threads_named(pid: u32, name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .count()
}

/// A terminal emulator of the given size (0 means 80x24).
pub fn parser(cols: u32, rows: u32) -> vt100::Parser {
    let nz = |v: u32, d: u16| std::num::NonZeroU16::new(if v == 0 { d } else { v as u16 }).unwrap();
    vt100::Parser::new(nz(rows, 24), nz(cols, 80), 0)
}

/// Looks for a needle in output that keeps growing: each call searches only
/// what arrived since the last (plus the needle's length before it, for a
/// needle split between messages), so many small messages cost linear time.
pub struct OutputSearch<'a> {
    finder: memchr::memmem::Finder<'a>,
    searched: usize,
}

impl<'a> OutputSearch<'a> {
    pub fn new(needle: &'a str) -> Self {
        Self {
            finder: memchr::memmem::Finder::new(needle.as_bytes()),
            searched: 0,
        }
    }

    /// Whether `output` (the same buffer, grown since the last call) holds
    /// the needle.
    pub fn found_in(&mut self, output: &[u8]) -> bool {
        let found = self
            .finder
            .find(&output[self.searched.min(output.len())..])
            .is_some();
        self.searched = output.len().saturating_sub(self.finder.needle().len());
        found
    }
}
