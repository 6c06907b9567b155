//! Session lifecycle, terminal I/O, viewers and replay through the real
//! broker binary and the generated gRPC client.

mod common;

use common::*;
use dispatch_proto::v1 as pb;

#[tokio::test]
async fn echo_hello_round_trips() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    assert_eq!(session.status, pb::SessionStatus::Running as i32);
    assert_eq!(session.mode, pb::SessionMode::Shell as i32);
    assert!(session.pid > 0);
    let dir = std::path::Path::new(&session.cwd);
    // The folder is named by the id's first 8 characters, so a prompt fits a phone.
    assert_eq!(
        dir,
        broker.root.path().join("sessions").join(&session.id[..8])
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("echo hel''lo; pwd\r").await;
    viewer.wait_for_output("hello").await;
    viewer.wait_for_output(&session.cwd).await;
}

#[tokio::test]
async fn resize_changes_stty_size() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("stty size\r").await;
    viewer.wait_for_output("24 80").await;
    viewer.resize(132, 43).await;
    viewer.input("stty size\r").await;
    viewer.wait_for_output("43 132").await;
    let updated = client
        .get_session(pb::GetSessionRequest {
            id: session.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.cols, updated.rows), (132, 43));
    // Sizes are clamped to 1..=1000.
    viewer.resize(5000, 0).await;
    viewer.input("stty size\r").await;
    viewer.wait_for_output("24 1000").await;
}

#[tokio::test]
async fn a_slow_viewer_gets_a_size_change_between_the_output_around_it() {
    // A window that holds the whole output, so the slow viewer is never
    // resynchronised.
    let broker = TestBroker::start_with(|command| {
        command.env("BROKER_FLOW_WINDOW_BYTES", (32 << 20).to_string());
    })
    .await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut active = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    let mut slow = Viewer::attach(&mut client, &session.id, 80, 24, false).await;
    // More than the slow viewer's transport holds, so most stays queued in
    // the broker while the size changes and more output follows.
    active.input("seq 1 700000 | sed s/^/n/\r").await;
    active.wait_for_output("n700000\r\n").await;
    active.resize(100, 30).await;
    active.input("echo after-$((1+1))\r").await;
    active.wait_for_output("after-2").await;

    let mut resized_after = None;
    let mut after = OutputSearch::new("after-2");
    while !after.found_in(&slow.output) {
        let message = slow.next().await.expect("the stream stays open");
        if let pb::attach_response::Kind::Session(session) = message
            && (session.cols, session.rows) == (100, 30)
            && resized_after.is_none()
        {
            resized_after = Some(slow.output.len());
        }
    }
    let at = resized_after.expect("the size change reached the slow viewer");
    let before = String::from_utf8_lossy(&slow.output[..at]).to_string();
    assert!(
        before.contains("n700000\r\n"),
        "output before the change arrives first"
    );
    assert!(
        !before.contains("after-2"),
        "output after the change arrives after it"
    );
}

#[tokio::test]
async fn two_viewers_see_the_same_output() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut first = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    let mut second = Viewer::attach(&mut client, &session.id, 80, 24, false).await;
    first
        .input("for i in 1 2 3; do echo line-$i-done; done\r")
        .await;
    first.wait_for_output("line-3-done").await;
    second.wait_for_output("line-3-done").await;
    let listed = client
        .get_session(pb::GetSessionRequest {
            id: session.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(listed.into_inner().viewers, 2);
    second.input("echo from-sec''ond\r").await;
    first.wait_for_output("from-second").await;
}

#[tokio::test]
async fn ending_kills_background_grandchildren() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("sleep 1000 & echo grand''child=$!=\r").await;
    let pid = loop {
        let text = String::from_utf8_lossy(&viewer.output).to_string();
        let found = text
            .split("grandchild=")
            .nth(1)
            .and_then(|rest| rest.split_once('='))
            .and_then(|(digits, _)| digits.parse::<i32>().ok());
        if let Some(pid) = found {
            break pid;
        }
        viewer.next().await.expect("more output");
    };
    assert!(process_exists(pid));
    let ended = client
        .end_session(pb::EndSessionRequest {
            id: session.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ended.status, pb::SessionStatus::Exited as i32);
    assert_eq!(ended.pid, 0);
    assert!(ended.exit.is_some());
    eventually("the grandchild is gone", || !process_exists(pid)).await;
    eventually("the shell is gone", || !process_exists(session.pid as i32)).await;
    let exit = viewer.wait_for_exit().await;
    assert_eq!(exit.signal, "SIGKILL");
    // Still listed as ended.
    let listed = client
        .list_sessions(pb::ListSessionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .sessions
            .iter()
            .any(|s| s.id == session.id && s.status == pb::SessionStatus::Exited as i32)
    );
}

#[tokio::test]
async fn ending_kills_processes_that_left_the_session() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    // Unique command lines, to find these processes among any others.
    let tag = std::process::id();
    let on_terminal = format!("sleep 1001.{tag}");
    let detached = format!("sleep 1002.{tag}");
    viewer
        .input(&format!(
            "setsid -f {on_terminal}; setsid -f {detached} </dev/null >/dev/null 2>&1; echo st''arted\r"
        ))
        .await;
    viewer.wait_for_output("started").await;
    eventually("both escaped processes run", || {
        processes_running(&on_terminal).len() == 1 && processes_running(&detached).len() == 1
    })
    .await;
    end_session(&mut client, &session.id).await;
    eventually("the process on the terminal is gone", || {
        processes_running(&on_terminal).is_empty()
    })
    .await;
    eventually("the detached process is gone", || {
        processes_running(&detached).is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_terminal_held_open_from_outside_still_ends_with_its_session() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    // Out of the session and without its environment, but on its terminal.
    let holder = format!("sleep 1003.{}", std::process::id());
    viewer
        .input(&format!("setsid -f env -i {holder}; echo st''arted\r"))
        .await;
    viewer.wait_for_output("started").await;
    eventually("the holder runs", || processes_running(&holder).len() == 1).await;
    let started = std::time::Instant::now();
    end_session(&mut client, &session.id).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    viewer.wait_for_exit().await;
    eventually("the holder is gone", || {
        processes_running(&holder).is_empty()
    })
    .await;
}

#[tokio::test]
async fn each_running_session_has_one_reader_thread_until_it_ends() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    assert_eq!(threads_named(broker.pid(), "pty-reader"), 0);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(create_shell(&mut client, 80, 24).await.id);
    }
    // A thread names itself once it runs.
    eventually("a reader thread per session", || {
        threads_named(broker.pid(), "pty-reader") == 8
    })
    .await;
    for id in ids {
        client
            .end_session(pb::EndSessionRequest { id })
            .await
            .unwrap();
    }
    eventually("every reader thread ended", || {
        threads_named(broker.pid(), "pty-reader") == 0
    })
    .await;
}

#[tokio::test]
async fn child_exit_ends_the_session_with_its_status() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("exit 7\r").await;
    let exit = viewer.wait_for_exit().await;
    assert_eq!(exit.code, Some(7));
    let got = client
        .get_session(pb::GetSessionRequest { id: session.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, pb::SessionStatus::Exited as i32);
    assert_eq!(got.exit.and_then(|e| e.code), Some(7));
    assert!(got.ended_at_ms >= got.created_at_ms);
}

#[tokio::test]
async fn session_environment_holds_no_secret() {
    let broker = TestBroker::start_with(|cmd| {
        cmd.env("TERMINAL_KEY", "terminal-key-secret-value")
            .env("SOME_BROKER_VAR", "not-for-sessions")
            .env("EXTRA_ALLOWED", "passed-through")
            .env("SESSION_ENV_PASSTHROUGH", "EXTRA_ALLOWED,BROKER_TOKEN");
    })
    .await;
    let (session, text) = session_env(&broker).await;
    assert!(!text.contains(TOKEN), "BROKER_TOKEN leaked");
    assert!(
        !text.contains("terminal-key-secret-value"),
        "TERMINAL_KEY leaked"
    );
    assert!(!text.contains("not-for-sessions"));
    assert!(text.contains("EXTRA_ALLOWED=passed-through"));
    assert!(text.contains("TERM=xterm-256color"));
    assert!(text.contains(&format!("DISPATCH_SESSION_ID={}", session.id)));
}

#[tokio::test]
async fn rename_list_and_watch() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let mut events = client
        .watch_sessions(pb::WatchSessionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let snapshot = events.message().await.unwrap().unwrap();
    assert_eq!(snapshot.kind, pb::session_event::Kind::Snapshot as i32);
    assert!(snapshot.sessions.is_empty());
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("project".to_owned(), "dispatch".to_owned());
    let session = client
        .create_session(pb::CreateSessionRequest {
            metadata,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((session.cols, session.rows), (80, 24));
    assert_eq!(session.requested_mode, pb::SessionMode::Shell as i32);
    assert_eq!(session.metadata["project"], "dispatch");
    let created = events.message().await.unwrap().unwrap();
    assert_eq!(created.kind, pb::session_event::Kind::Created as i32);
    let renamed = client
        .rename_session(pb::RenameSessionRequest {
            id: session.id.clone(),
            name: "build".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.name, "build");
    loop {
        let event = events.message().await.unwrap().unwrap();
        if event.kind == pb::session_event::Kind::Updated as i32
            && event.sessions[0].name == "build"
        {
            break;
        }
    }
    let listed = client
        .list_sessions(pb::ListSessionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sessions.len(), 1);
    assert_eq!(listed.sessions[0].name, "build");
}
