//! The `dispatch-broker admin` client against a real broker: list with live
//! figures, notice to an attached viewer, end and kill, drain, status, and
//! refusal of wrong or missing admin tokens.

mod common;

use std::process::Output;

use common::{
    DEADLINE, TOKEN, TestBroker, Viewer, create_shell, eventually, process_exists, session_env,
};
use dispatch_proto::v1 as pb;
use serde_json::Value;

const ADMIN_TOKEN: &str = "admin-secret-9876543210";

async fn admin_broker() -> TestBroker {
    TestBroker::start_with(|command| {
        command.env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN);
    })
    .await
}

/// Runs `dispatch-broker admin <args>` against `broker` with `token`.
async fn admin_with(broker: &TestBroker, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch-broker"));
    command
        .arg("admin")
        .arg("--broker")
        .arg(broker.addr.to_string())
        .args(args)
        .env_remove("BROKER_ADMIN_TOKEN")
        .env_remove("BROKER_TOKEN")
        .env("BROKER_LISTEN", "127.0.0.1:1");
    if let Some(token) = token {
        command.env("BROKER_ADMIN_TOKEN", token);
    }
    tokio::time::timeout(DEADLINE * 3, command.output())
        .await
        .expect("admin command finishes")
        .expect("run dispatch-broker admin")
}

/// Runs an admin command that must succeed and returns its stdout.
async fn admin(broker: &TestBroker, args: &[&str]) -> String {
    let output = admin_with(broker, Some(ADMIN_TOKEN), args).await;
    assert!(
        output.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn admin_json(broker: &TestBroker, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = admin(broker, &all).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn session_in<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
}

#[tokio::test]
async fn list_shows_live_figures_of_sessions() {
    let broker = admin_broker().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("sleep 1000 &\necho figures-$((6*7))\n").await;
    viewer.wait_for_output("figures-42").await;

    let list = admin_json(&broker, &["list"]).await;
    let figures = session_in(&list, &session.id).expect("the session is listed");
    assert_eq!(figures["status"], "running");
    assert_eq!(figures["viewers"], 1);
    assert_eq!(figures["pid"], session.pid);
    assert!(figures["bytes_in"].as_u64().unwrap() >= 20, "{figures}");
    assert!(figures["bytes_out"].as_u64().unwrap() > 0, "{figures}");
    assert!(figures["idle_ms"].as_u64().is_some());
    let process = &figures["process"];
    // The shell and its background sleep.
    assert!(process["processes"].as_u64().unwrap() >= 2, "{figures}");
    assert!(
        process["rss_bytes"].as_u64().unwrap() > 100_000,
        "{figures}"
    );
    assert!(process["cpu_seconds"].as_f64().unwrap() >= 0.0);
    assert!(process["cpu_percent"].as_f64().unwrap() >= 0.0);

    let text = admin(&broker, &["list"]).await;
    assert!(text.starts_with("ID "), "{text}");
    assert!(text.contains(&session.id), "{text}");
    assert!(text.contains("running"), "{text}");
}

/// Kills a process when dropped, so a failed test leaves no busy loop.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The figures of `id` in `admin --json list`, once `ready` accepts them.
async fn figures_when(
    broker: &TestBroker,
    id: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let list = admin_json(broker, &["list"]).await;
        let figures = session_in(&list, id)
            .expect("the session is listed")
            .clone();
        if ready(&figures) {
            return figures;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened: {figures}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn list_measures_cpu_of_background_jobs_and_idle_time() {
    let broker = admin_broker().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer
        .input("(while :; do :; done) & echo $! > busy.pid; echo busy-$((1+1))\n")
        .await;
    viewer.wait_for_output("busy-2").await;
    let busy: i32 = std::fs::read_to_string(std::path::Path::new(&session.cwd).join("busy.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _busy = KillOnDrop(busy);

    // A background job in its own process group still counts: its CPU
    // time adds up and shows as use since the previous listing.
    let figures = figures_when(&broker, &session.id, "CPU use", |f| {
        f["process"]["cpu_seconds"].as_f64().unwrap() >= 0.5
            && f["process"]["cpu_percent"].as_f64().unwrap() >= 10.0
    })
    .await;
    assert!(figures["process"]["processes"].as_u64().unwrap() >= 2);
    drop(_busy);
    eventually("the busy loop is gone", || !process_exists(busy)).await;

    // Idle time grows while nothing happens and restarts with input.
    let quiet = figures_when(&broker, &session.id, "idle time", |f| {
        f["idle_ms"].as_u64().unwrap() >= 1500
    })
    .await;
    viewer.input("echo awake-$((2+2))\n").await;
    viewer.wait_for_output("awake-4").await;
    let list = admin_json(&broker, &["list"]).await;
    let awake = session_in(&list, &session.id).unwrap();
    assert!(
        awake["idle_ms"].as_u64().unwrap() < quiet["idle_ms"].as_u64().unwrap(),
        "{quiet} then {awake}"
    );
}

#[tokio::test]
async fn notice_reaches_an_attached_viewer() {
    let broker = admin_broker().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;

    let text = admin(
        &broker,
        &["notice", &session.id, "maintenance", "in", "5", "minutes"],
    )
    .await;
    assert!(text.contains("1 viewer(s) of 1 session(s)"), "{text}");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no notice arrived");
        match viewer.next().await.expect("stream open") {
            pb::attach_response::Kind::Notice(notice) => {
                assert_eq!(notice.text, "maintenance in 5 minutes");
                break;
            }
            _ => continue,
        }
    }

    let all = admin_json(&broker, &["notice", "--all", "second"]).await;
    assert_eq!(all["sessions"], 1);
    assert_eq!(all["viewers"], 1);

    let missing = admin_with(
        &broker,
        Some(ADMIN_TOKEN),
        &["notice", "00000000-0000-4000-8000-000000000000", "hi"],
    )
    .await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NotFound"));
}

#[tokio::test]
async fn kill_ends_a_session_and_its_processes() {
    let broker = admin_broker().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer
        .input("trap '' HUP TERM; sleep 1000 & echo $! > bg.pid; echo written-$((1+1))\n")
        .await;
    viewer.wait_for_output("written-2").await;
    let bg: i32 = std::fs::read_to_string(std::path::Path::new(&session.cwd).join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_exists(bg));

    let killed = admin_json(&broker, &["kill", &session.id]).await;
    assert_eq!(killed["status"], "ended", "{killed}");
    assert_eq!(killed["exit"]["signal"], "SIGKILL", "{killed}");
    let exit = viewer.wait_for_exit().await;
    assert_eq!(exit.signal, "SIGKILL");
    eventually("the background sleep is gone", || !process_exists(bg)).await;
    let got = client
        .get_session(pb::GetSessionRequest {
            id: session.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, pb::SessionStatus::Exited as i32);

    // Killing it again is refused precisely.
    let again = admin_with(&broker, Some(ADMIN_TOKEN), &["kill", &session.id]).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("FailedPrecondition"));
}

#[tokio::test]
async fn end_hangs_up_then_kills_after_the_grace_period() {
    let broker = admin_broker().await;
    let mut client = broker.client().await;
    let polite = create_shell(&mut client, 80, 24).await;
    let text = admin(&broker, &["end", &polite.id]).await;
    assert!(text.starts_with(&format!("ended {}", polite.id)), "{text}");

    let stubborn = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &stubborn.id, 80, 24, true).await;
    viewer.input("trap '' HUP; echo trapped-$((1+1))\n").await;
    viewer.wait_for_output("trapped-2").await;
    let ended = admin_json(&broker, &["end", "--grace-ms", "300", &stubborn.id]).await;
    assert_eq!(ended["status"], "ended", "{ended}");
    assert_eq!(ended["exit"]["signal"], "SIGKILL", "{ended}");
}

#[tokio::test]
async fn drain_refuses_new_sessions_and_reports_running_ones() {
    let broker = admin_broker().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;

    let drained = admin_json(&broker, &["drain"]).await;
    assert_eq!(drained["draining"], true);
    let running = drained["running"].as_array().unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0]["id"], session.id);

    let refused = client
        .create_session(pb::CreateSessionRequest::default())
        .await
        .expect_err("draining broker refuses sessions");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(refused.message().contains("draining"), "{refused:?}");
    let status = admin_json(&broker, &["status"]).await;
    assert_eq!(status["draining"], true);
    // The running session is untouched.
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("echo still-$((2+3))\n").await;
    viewer.wait_for_output("still-5").await;

    let resumed = admin(&broker, &["drain", "--resume"]).await;
    assert!(resumed.starts_with("accepting new sessions"), "{resumed}");
    create_shell(&mut client, 80, 24).await;
}

#[tokio::test]
async fn status_reports_version_and_counts() {
    let home = tempfile::tempdir().unwrap();
    let claude = dispatch_testkit::generate(
        &home.path().join(".claude"),
        &dispatch_testkit::Spec {
            conversations: 2,
            projects: 1,
            damage: false,
            ..dispatch_testkit::Spec::default()
        },
    )
    .unwrap();
    let broker = TestBroker::start_with(|command| {
        command
            .env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOME", home.path());
    })
    .await;
    let mut client = broker.client().await;
    let first = create_shell(&mut client, 80, 24).await;
    create_shell(&mut client, 80, 24).await;
    admin(&broker, &["kill", &first.id]).await;

    let status = admin_json(&broker, &["status"]).await;
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["sessions_running"], 1);
    assert_eq!(status["sessions_ended"], 1);
    assert_eq!(status["sessions_created_total"], 2);
    assert_eq!(status["draining"], false);
    assert!(status["uptime_ms"].as_u64().is_some());
    let text = admin(&broker, &["status"]).await;
    assert!(text.contains("1 running / 256 max"), "{text}");

    // The conversation index of the broker's home, once scanned.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let index = loop {
        let status = admin_json(&broker, &["status"]).await;
        if status["conversations"]["scans"].as_u64().unwrap_or(0) >= 1 {
            break status["conversations"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no scan: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        index["conversations"],
        claude.conversations.len(),
        "{index}"
    );
    assert_eq!(index["transcripts"], claude.transcripts, "{index}");
    assert_eq!(index["bytes"], claude.total_bytes, "{index}");
    let text = admin(&broker, &["status"]).await;
    assert!(
        text.contains(&format!(
            "conversations {} in {} transcripts",
            claude.conversations.len(),
            claude.transcripts
        )),
        "{text}"
    );
}

#[tokio::test]
async fn wrong_or_missing_admin_tokens_are_refused() {
    let broker = admin_broker().await;
    for token in [Some("wrong-token"), Some(TOKEN)] {
        let output = admin_with(&broker, token, &["list"]).await;
        assert!(!output.status.success(), "{token:?} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("Unauthenticated"), "{stderr}");
    }
    let output = admin_with(&broker, None, &["list"]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("BROKER_ADMIN_TOKEN is not set"));

    // The gateway's token does not open Admin, nor the admin token Sessions.
    let mut sessions = broker.client_with_token(ADMIN_TOKEN).await;
    let refused = sessions
        .list_sessions(pb::ListSessionsRequest {})
        .await
        .expect_err("admin token is not a session token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

/// The services `broker` lists through server reflection (v1).
async fn reflected_services(broker: &TestBroker) -> Vec<String> {
    use tonic_reflection::pb::v1 as reflection;
    let channel = dispatch_broker::client::connect(&broker.addr)
        .await
        .unwrap();
    let token = dispatch_broker::client::BearerToken::new(common::TOKEN).unwrap();
    let mut client = reflection::server_reflection_client::ServerReflectionClient::with_interceptor(
        channel, token,
    );
    let request = reflection::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            reflection::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    match answer.message_response {
        Some(reflection::server_reflection_response::MessageResponse::ListServicesResponse(
            list,
        )) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_admin_only_while_it_is_served() {
    let on = admin_broker().await;
    let services = reflected_services(&on).await;
    for name in [
        "dispatch.v1.Admin",
        "dispatch.v1.Sessions",
        "dispatch.v1.Conversations",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(services.iter().any(|s| s == name), "{name} in {services:?}");
    }
    let off = TestBroker::start().await;
    let services = reflected_services(&off).await;
    assert!(
        !services.iter().any(|s| s == "dispatch.v1.Admin"),
        "{services:?}"
    );
    assert!(services.iter().any(|s| s == "dispatch.v1.Sessions"));
}

#[tokio::test]
async fn without_an_admin_token_the_service_is_off() {
    let broker = TestBroker::start().await;
    let output = admin_with(&broker, Some(ADMIN_TOKEN), &["status"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not serve the Admin service"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_admin_token_must_differ_from_the_session_token() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch-broker"))
        .env("BROKER_LISTEN", "127.0.0.1:0")
        .env("BROKER_TOKEN", TOKEN)
        .env("BROKER_ADMIN_TOKEN", TOKEN)
        .env("PTY_ROOT", tempfile::tempdir().unwrap().path().join("s"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("must differ"));
}

#[tokio::test]
async fn sessions_never_see_the_admin_token() {
    let broker = TestBroker::start_with(|command| {
        command
            .env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SESSION_ENV_PASSTHROUGH", "BROKER_ADMIN_TOKEN");
    })
    .await;
    let (_, text) = session_env(&broker).await;
    assert!(text.contains("HOME="), "{text}");
    assert!(!text.contains(ADMIN_TOKEN), "BROKER_ADMIN_TOKEN leaked");
    assert!(!text.contains("BROKER_ADMIN_TOKEN"), "{text}");
}
