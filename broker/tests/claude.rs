//! Claude mode: falls back to a shell when `claude` is missing, runs it (with
//! `claude_args`) when present.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use dispatch_proto::v1 as pb;

#[tokio::test]
async fn claude_mode_falls_back_to_a_shell_when_not_installed() {
    let broker = TestBroker::start_with(|cmd| {
        cmd.env("PATH", "/usr/bin:/bin");
    })
    .await;
    let mut client = broker.client().await;
    let session = client
        .create_session(pb::CreateSessionRequest {
            mode: pb::SessionMode::Claude as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(session.requested_mode, pb::SessionMode::Claude as i32);
    assert_eq!(session.mode, pb::SessionMode::Shell as i32);
    assert!(
        session.fallback_reason.contains("claude is not installed"),
        "{}",
        session.fallback_reason
    );
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    let first_lines = viewer.screen.screen().contents();
    assert!(
        first_lines.starts_with("dispatch: claude is not installed"),
        "{first_lines}"
    );
    viewer.input("echo she''ll-works\r").await;
    viewer.wait_for_output("shell-works").await;
}

#[tokio::test]
async fn pty_mode_claude_runs_claude_from_path_with_its_arguments() {
    let bin = tempfile::tempdir().unwrap();
    let claude = bin.path().join("claude");
    std::fs::write(
        &claude,
        "#!/bin/sh\necho \"stand-in claude: $*\"\necho \"cwd: $(pwd)\"\nexec sleep 1000\n",
    )
    .unwrap();
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let broker = TestBroker::start_with(|cmd| {
        cmd.env("PATH", &path).env("PTY_MODE", "claude");
    })
    .await;
    let mut client = broker.client().await;
    let project = tempfile::tempdir().unwrap();
    let session = client
        .create_session(pb::CreateSessionRequest {
            claude_args: vec!["--resume".into(), "0b7d5e1a-conversation".into()],
            cwd: project.path().display().to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(session.mode, pb::SessionMode::Claude as i32);
    assert_eq!(session.requested_mode, pb::SessionMode::Claude as i32);
    assert!(session.fallback_reason.is_empty());
    // The stand-in may print before the viewer attaches, so its lines can
    // arrive in the replay rather than as live output: read the screen.
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer
        .wait_for_screen("stand-in claude: --resume 0b7d5e1a-conversation")
        .await;
    viewer
        .wait_for_screen(&format!("cwd: {}", project.path().display()))
        .await;
    end_session(&mut client, &session.id).await;
}
