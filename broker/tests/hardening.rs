//! The broker as the authority on who may call it and what it accepts:
//! no TCP listener without a token, session names free of control and
//! invisible characters, and error messages that never repeat a request
//! whole (a status message travels in an HTTP/2 header).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::{DEADLINE, TOKEN, TestBroker};
use dispatch_broker::client::BearerToken;
use dispatch_proto::v1 as pb;
use dispatch_proto::v1::conversations_client::ConversationsClient;
use tonic::Code;

/// Starts the broker with `listen` and the given token variable; returns
/// its exit status and stderr, or `None` when it was still running after
/// the deadline (it served).
async fn start_without_token(listen: &str, token: Option<&str>) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch-broker"));
    command
        .env("BROKER_LISTEN", listen)
        .env_remove("BROKER_TOKEN")
        .env_remove("BROKER_ADMIN_TOKEN")
        .env("PTY_ROOT", dir.path().join("sessions"))
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(token) = token {
        command.env("BROKER_TOKEN", token);
    }
    let child = command.spawn().unwrap();
    let output = tokio::time::timeout(DEADLINE / 3, child.wait_with_output())
        .await
        .ok()?
        .unwrap();
    Some((
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn every_tcp_listener_needs_a_token() {
    for listen in ["127.0.0.1:0", "[::1]:0", "0.0.0.0:0"] {
        for token in [None, Some("")] {
            let Some((success, stderr)) = start_without_token(listen, token).await else {
                panic!("a broker on TCP {listen} without BROKER_TOKEN ({token:?}) served");
            };
            assert!(!success, "{listen}: exit status");
            assert!(
                stderr.contains("without BROKER_TOKEN") && stderr.contains("unix:"),
                "{listen}: the refusal says why and what to do instead: {stderr}"
            );
        }
    }
}

#[tokio::test]
async fn a_private_unix_socket_may_go_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("broker.sock");
    let listen = format!("unix:{}", socket.display());
    let broker = TestBroker::start_with(|cmd| {
        cmd.env("BROKER_LISTEN", &listen).env_remove("BROKER_TOKEN");
    })
    .await;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the broker's user may connect");
    let mut client = broker.client_with_token("").await;
    let session = common::create_shell(&mut client, 80, 24).await;
    assert!(!session.id.is_empty());
}

/// Names a client could use to disguise a session, with what they hide.
const HIDDEN_NAMES: &[(&str, &str)] = &[
    ("title\x1b]0;pwned\x07", "OSC sequence"),
    ("red\x1b[31m", "CSI sequence"),
    ("two\nlines", "newline"),
    ("tab\there", "tab"),
    ("del\x7f", "DEL"),
    ("c1\u{9b}31m", "C1 CSI"),
    ("cod\u{202e}txt.exe", "right-to-left override"),
    ("iso\u{2067}late", "right-to-left isolate"),
    ("mark\u{200f}", "right-to-left mark"),
    ("zero\u{200b}width", "zero-width space"),
    ("joi\u{200d}ner", "zero-width joiner"),
    ("\u{feff}bom", "byte order mark"),
    ("word\u{2060}joiner", "word joiner"),
    ("line\u{2028}sep", "line separator"),
    ("tag\u{e0041}", "tag character"),
];

#[tokio::test]
async fn names_with_control_or_invisible_characters_are_refused() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    for (name, what) in HIDDEN_NAMES {
        let status = client
            .create_session(pb::CreateSessionRequest {
                name: (*name).into(),
                ..Default::default()
            })
            .await
            .expect_err(&format!("create with a {what} in the name"));
        assert_eq!(status.code(), Code::InvalidArgument, "create, {what}");
        assert!(
            status.message().contains("name contains"),
            "{what}: {status:?}"
        );
        assert!(
            !status.message().contains(['\x1b', '\u{202e}', '\u{200b}']),
            "the refusal does not repeat the characters: {status:?}"
        );
    }
    // Plain text in any script, with spaces and punctuation, is fine.
    let visible = "café — 日本語 «build» #2 🚀";
    let session = client
        .create_session(pb::CreateSessionRequest {
            name: visible.into(),
            ..Default::default()
        })
        .await
        .expect("a visible name is accepted")
        .into_inner();
    assert_eq!(session.name, visible);
    for (name, what) in HIDDEN_NAMES {
        let status = client
            .rename_session(pb::RenameSessionRequest {
                id: session.id.clone(),
                name: (*name).into(),
            })
            .await
            .expect_err(&format!("rename to a name with a {what}"));
        assert_eq!(status.code(), Code::InvalidArgument, "rename, {what}");
    }
    let listed = client
        .get_session(pb::GetSessionRequest {
            id: session.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.name, visible, "refused renames changed nothing");
}

/// 17,000 characters: more than an HTTP/2 header may carry by default.
fn huge() -> String {
    "a".repeat(17_000)
}

/// A refusal that names the problem in a short message.
fn assert_short_refusal(result: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{what}: {}",
        &status.message()[..status.message().len().min(200)]
    );
    assert!(
        status.message().len() <= 512,
        "{what}: a {}-byte status message",
        status.message().len()
    );
}

#[tokio::test]
async fn refusals_never_echo_unbounded_input() {
    let broker = TestBroker::start().await;
    let mut sessions = broker.client().await;
    let mut conversations = ConversationsClient::with_interceptor(
        broker.channel().await,
        BearerToken::new(TOKEN).unwrap(),
    );
    let huge = huge();
    assert_short_refusal(
        conversations
            .get_messages(pb::GetMessagesRequest {
                id: "conversation-1".into(),
                agent_id: huge.clone(),
                ..Default::default()
            })
            .await,
        "a 17k agent id",
    );
    assert_short_refusal(
        conversations
            .get_messages(pb::GetMessagesRequest {
                id: huge.clone(),
                ..Default::default()
            })
            .await,
        "a 17k conversation id",
    );
    assert_short_refusal(
        conversations
            .get_conversation(pb::GetConversationRequest { id: huge.clone() })
            .await,
        "a 17k conversation id",
    );
    assert_short_refusal(
        conversations
            .list_conversations(pb::ListConversationsRequest {
                page_token: huge.clone(),
                ..Default::default()
            })
            .await,
        "a 17k page token",
    );
    assert_short_refusal(
        sessions
            .create_session(pb::CreateSessionRequest {
                cwd: format!("relative/{huge}"),
                ..Default::default()
            })
            .await,
        "a 17k cwd",
    );
    assert_short_refusal(
        sessions
            .get_session(pb::GetSessionRequest { id: huge.clone() })
            .await,
        "a 17k session id",
    );
    // The message still says what was wrong, with the start of the value.
    let status = conversations
        .get_messages(pb::GetMessagesRequest {
            id: "conversation-1".into(),
            cursor: format!("x{huge}"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("invalid cursor \"xaaa")
            && status.message().contains("17001 characters"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_token_on_the_command_line_is_refused() {
    // Every local user can read a command line (ps, /proc/<pid>/cmdline).
    let dir = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch-broker"))
        .args(["--token", "visible-to-ps-0123456789"])
        .env("BROKER_LISTEN", "127.0.0.1:0")
        .env_remove("BROKER_TOKEN")
        .env("PTY_ROOT", dir.path().join("sessions"))
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(DEADLINE / 3, child.wait_with_output())
        .await
        .expect("the broker refuses to start")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--token") && stderr.contains("set the BROKER_TOKEN environment variable"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("visible-to-ps"),
        "the refusal does not repeat it"
    );
}
