//! End to end with the real `claude` CLI in a session of local mode, pointed
//! at a stand-in Messages API on loopback that answers with a `tool_use` of
//! Bash for a command that needs permission: the permission prompt appears,
//! the session gets `attention` with the reason `permission` (through the
//! Notification hook the broker gives `claude`), the test answers `1` in
//! the terminal, the stand-in receives the `tool_result`, and `attention`
//! clears. `scripts/setup.sh` installs the CLI when it is missing.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use dispatch_testkit::messages_api::MessagesApi;
use serde_json::{Value, json};

const API_KEY: &str = "sk-ant-standin-0123456789abcdefghijklmnop";

/// The real CLI: `CLAUDE_BIN`, `claude` on PATH, or the copy
/// `scripts/setup.sh` installs into the test cache.
fn claude_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("CLAUDE_BIN") {
        return bin.into();
    }
    let on_path = std::env::var("PATH").ok().and_then(|path| {
        path.split(':')
            .map(|dir| Path::new(dir).join("claude"))
            .find(|candidate| candidate.is_file())
    });
    let cache = std::env::var("DISPATCH_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(&std::env::var("HOME").unwrap()).join(".cache/dispatch-test")
        });
    let cached = cache.join("claude/node_modules/.bin/claude");
    on_path
        .or_else(|| cached.is_file().then_some(cached))
        .expect("the claude CLI (run scripts/setup.sh, or set CLAUDE_BIN)")
}

/// A home whose `.claude.json` skips the first-run screens for `project`.
fn claude_home(home: &Path, project: &Path) {
    let key_tail = &API_KEY[API_KEY.len() - 20..];
    let mut projects = serde_json::Map::new();
    projects.insert(
        project.display().to_string(),
        json!({"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true}),
    );
    let config = json!({
        "hasCompletedOnboarding": true,
        "theme": "dark",
        "projects": projects,
        "customApiKeyResponses": {"approved": [key_tail], "rejected": []},
    });
    std::fs::write(home.join(".claude.json"), config.to_string()).unwrap();
}

async fn attention(gateway: &GatewayProc, cookie: &str, id: &str) -> Value {
    let session: Value = http()
        .get(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["attention"].clone()
}

#[tokio::test]
async fn a_claude_permission_prompt_sets_attention_until_answered() {
    let claude = claude_bin();
    let api = MessagesApi::start("touch x").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (home, project, root, state) = (
        dir.path().join("home"),
        dir.path().join("project"),
        dir.path().join("sessions"),
        dir.path().join("state"),
    );
    for path in [&home, &project] {
        std::fs::create_dir(path).unwrap();
    }
    let project = project.canonicalize().unwrap();
    claude_home(&home, &project);
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        claude.parent().unwrap().display()
    );
    let broker = broker_bin();
    let gateway = GatewayProc::start_with(&[
        ("BROKER_BIN", broker.to_str().unwrap()),
        ("PTY_ROOT", root.to_str().unwrap()),
        ("STATE_DIR", state.to_str().unwrap()),
        ("LOCAL_BROKER_IDLE_EXIT_SECS", "1"),
        ("HOME", home.to_str().unwrap()),
        ("PATH", &path),
        ("ANTHROPIC_BASE_URL", &api.url),
        ("ANTHROPIC_API_KEY", API_KEY),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        (
            "SESSION_ENV_PASSTHROUGH",
            "ANTHROPIC_BASE_URL,ANTHROPIC_API_KEY,CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        ),
    ])
    .await;
    wait_ready(&gateway, "the local broker answers").await;
    let cookie = login(&gateway).await;
    let session = create_session(
        &gateway,
        &cookie,
        json!({"mode": "claude", "cwd": project, "cols": 120, "rows": 40,
               "claudeArgs": ["Create the file x"]}),
    )
    .await;
    assert_eq!(session["mode"], "claude", "{session}");
    let id = session["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(&gateway, &cookie, id, (120, 40)).await;
    let set = read_until(
        &mut terminal,
        "the permission prompt sets the attention",
        || async { attention(&gateway, &cookie, id).await },
    )
    .await;
    assert_eq!(set["reason"], "permission", "{set}");
    let shown = printed_text(&terminal.screen);
    assert!(
        shown.contains("touch x"),
        "the prompt shows the command: {shown}"
    );
    assert!(shown.contains("Do you want to proceed?"), "{shown}");
    assert!(api.tool_result().is_none(), "nothing ran before the answer");
    assert!(!project.join("x").exists());
    terminal.type_text("1").await;
    read_until(
        &mut terminal,
        "the stand-in receives the tool_result",
        || async { api.tool_result().unwrap_or(Value::Null) },
    )
    .await;
    assert!(project.join("x").exists(), "the command ran");
    assert!(attention(&gateway, &cookie, id).await.is_null());
    // The local broker stops once it has no session and its socket is gone.
    let ended = http()
        .delete(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
}

/// Reads the terminal (so `claude` is never held up) until `check` gives
/// something other than null; returns it.
async fn read_until<F, Fut>(terminal: &mut Terminal, what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let found = check().await;
        if !found.is_null() {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not in time; the terminal shows: {}",
            printed_text(&terminal.screen)
        );
        let _ = terminal.next_event(Duration::from_millis(300)).await;
    }
}

/// The terminal's output with control sequences turned into spaces.
fn printed_text(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let mut printed = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            printed.push(' ');
        } else if !c.is_control() || c == '\n' {
            printed.push(c);
        }
    }
    printed.split_whitespace().collect::<Vec<_>>().join(" ")
}
