//! Local mode across gateway restarts: the broker the gateway started keeps
//! running when the gateway is killed (`kill -9`) or stopped (SIGTERM), the
//! next gateway on the same `STATE_DIR` takes its sessions back with their
//! screens, `dispatch-gateway stop` ends the broker and its sessions, and an
//! orphaned broker stops by itself when idle or when its socket is removed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use dispatch_gateway::local_broker;

/// A gateway in local mode on `state` (sessions under `state/sessions`).
async fn local_gateway(state: &Path, extra: &[(&str, &str)]) -> GatewayProc {
    let bin = broker_bin();
    let root = state.join("sessions");
    std::fs::create_dir_all(&root).unwrap();
    let mut env = vec![
        ("BROKER_BIN", bin.to_str().unwrap()),
        ("PTY_ROOT", root.to_str().unwrap()),
        ("STATE_DIR", state.to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    let gateway = GatewayProc::start_with(&env).await;
    wait_ready(&gateway, "the local broker answers").await;
    gateway
}

/// The broker's process id from the runtime directory.
fn broker_pid(state: &Path) -> i32 {
    let path = state
        .join(local_broker::RUNTIME_DIR)
        .join(local_broker::PID_FILE);
    std::fs::read_to_string(path)
        .expect("the broker's pid file")
        .trim()
        .parse()
        .unwrap()
}

/// `dispatch-gateway stop` on `state`; returns its output.
async fn stop_command(state: &Path) -> String {
    let output = gateway_command(&[("STATE_DIR", state.to_str().unwrap())])
        .arg("stop")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "stop failed: {stdout}");
    stdout
}

async fn session_ids(gateway: &GatewayProc, cookie: &str) -> Vec<String> {
    let list: serde_json::Value = http()
        .get(gateway.url("/api/sessions"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = list.get("sessions").unwrap_or(&list);
    list.as_array()
        .expect("a list of sessions")
        .iter()
        .map(|session| session["id"].as_str().unwrap().to_string())
        .collect()
}

/// Attaches to `id` and waits for `marker` in the replayed screen.
async fn screen_shows(gateway: &GatewayProc, id: &str, marker: &str) {
    let cookie = login(gateway).await;
    assert!(
        session_ids(gateway, &cookie).await.iter().any(|s| s == id),
        "session {id} is listed again"
    );
    let mut terminal = Terminal::attach(gateway, &cookie, id, (80, 24)).await;
    terminal.wait_for(marker).await;
}

async fn wait_gone(pid: i32, what: &str) {
    eventually(what, || async { !local_broker::is_broker(pid) }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_survive_a_killed_and_a_stopped_gateway() {
    let state = tempfile::tempdir().unwrap();
    let gateway = local_gateway(state.path(), &[]).await;
    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let mut terminal = Terminal::attach(&gateway, &cookie, &id, (80, 24)).await;
    terminal.type_text("echo SURVIVED-$((6*7))\r").await;
    terminal.wait_for("SURVIVED-42").await;
    let broker = broker_pid(state.path());
    drop(terminal);

    // kill -9: nothing runs in the gateway, the broker stays.
    let mut gateway = gateway;
    gateway.child.kill().await.unwrap();
    assert!(
        local_broker::is_broker(broker),
        "the broker outlives kill -9"
    );
    let gateway = local_gateway(state.path(), &[]).await;
    screen_shows(&gateway, &id, "SURVIVED-42").await;
    assert_eq!(broker_pid(state.path()), broker, "the same broker");

    // A clean stop (SIGTERM) leaves it too.
    assert!(gateway.stop().await.success());
    assert!(
        local_broker::is_broker(broker),
        "the broker outlives SIGTERM"
    );
    let gateway = local_gateway(state.path(), &[]).await;
    screen_shows(&gateway, &id, "SURVIVED-42").await;

    // `stop` ends the gateway, the broker and the session for good.
    let gateway_pid = gateway.pid();
    let report = stop_command(state.path()).await;
    assert!(report.contains("stopped dispatch-gateway"), "{report}");
    assert!(report.contains("stopped dispatch-broker"), "{report}");
    wait_gone(broker, "the broker ends").await;
    let status = tokio::time::timeout(DEADLINE, async move {
        let mut gateway = gateway;
        gateway.child.wait().await
    })
    .await
    .expect("the gateway exits")
    .unwrap();
    assert!(status.success(), "{status:?} of gateway {gateway_pid}");
    let gateway = local_gateway(state.path(), &[]).await;
    let cookie = login(&gateway).await;
    assert!(
        session_ids(&gateway, &cookie).await.is_empty(),
        "a new broker without the old sessions"
    );
    assert_ne!(broker_pid(state.path()), broker);
    stop_command(state.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_keeps_its_token_out_of_sessions_and_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let gateway = local_gateway(state.path(), &[]).await;
    let runtime = state.path().join(local_broker::RUNTIME_DIR);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&runtime), 0o700);
    assert_eq!(mode(&runtime.join(local_broker::TOKEN_FILE)), 0o600);
    assert_eq!(mode(&runtime.join(local_broker::SOCKET_FILE)), 0o600);
    let token = std::fs::read_to_string(runtime.join(local_broker::TOKEN_FILE)).unwrap();
    assert!(token.len() >= 32, "a generated token");

    let cookie = login(&gateway).await;
    let session = create_session(&gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(&gateway, &cookie, id, (200, 24)).await;
    terminal.type_text("env; echo ENV-$((1+1))\r").await;
    terminal.wait_for("ENV-2").await;
    let screen = String::from_utf8_lossy(&terminal.screen).to_string();
    assert!(
        !screen.contains(token.trim()),
        "the token never reaches a session"
    );
    let broker = broker_pid(state.path());
    let cmdline = std::fs::read(format!("/proc/{broker}/cmdline")).unwrap();
    assert!(
        !contains(&cmdline, token.trim().as_bytes()),
        "nor the command line"
    );
    drop(terminal);
    drop(gateway);
    stop_command(state.path()).await;
    wait_gone(broker, "the broker ends").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_orphaned_broker_stops_when_idle_or_unreachable() {
    // No session and no gateway for LOCAL_BROKER_IDLE_EXIT_SECS: it stops.
    // The idle time is three of the gateway's one-second health checks, so a
    // check delayed on a loaded machine does not end a supervised broker.
    let idle = [("LOCAL_BROKER_IDLE_EXIT_SECS", "3")];
    let state = tempfile::tempdir().unwrap();
    let mut gateway = local_gateway(state.path(), &idle).await;
    let broker = broker_pid(state.path());
    // While the gateway runs, the broker stays even without sessions.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(local_broker::is_broker(broker), "kept while a gateway runs");
    gateway.child.kill().await.unwrap();
    let killed = Instant::now();
    wait_gone(broker, "the idle orphan stops").await;
    // The idle time counts from the last health check, up to one second
    // before the kill.
    assert!(
        killed.elapsed() >= Duration::from_millis(1900),
        "not before the idle time: {:?}",
        killed.elapsed()
    );

    // With a session, it stays until its socket is removed.
    let state = tempfile::tempdir().unwrap();
    let mut gateway = local_gateway(state.path(), &idle).await;
    let cookie = login(&gateway).await;
    create_session(&gateway, &cookie, serde_json::json!({})).await;
    let broker = broker_pid(state.path());
    gateway.child.kill().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        local_broker::is_broker(broker),
        "kept while it has a session"
    );
    drop(state);
    wait_gone(broker, "the broker stops once its socket is gone").await;
}
