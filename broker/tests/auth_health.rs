//! Authentication, health, reflection, listeners and the `healthcheck`
//! subcommand.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command as StdCommand;

use common::*;
use dispatch_broker::client;
use dispatch_proto::v1 as pb;
use dispatch_proto::v1::sessions_client::SessionsClient;
use tonic::Code;

#[tokio::test]
async fn missing_or_wrong_token_is_unauthenticated() {
    let broker = TestBroker::start().await;
    let mut anonymous = SessionsClient::new(broker.channel().await);
    let status = anonymous
        .list_sessions(pb::ListSessionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut wrong = broker.client_with_token("test-token-012345678X").await;
    let status = wrong
        .list_sessions(pb::ListSessionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = wrong
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut right = broker.client().await;
    assert!(
        right
            .list_sessions(pb::ListSessionsRequest {})
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn health_answers_without_token_and_reflection_needs_it() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let broker = TestBroker::start().await;
    let mut health = HealthClient::new(broker.channel().await);
    for service in ["", "dispatch.v1.Sessions"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "{service}");
    }

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut anonymous = ServerReflectionClient::new(broker.channel().await);
    let status = match anonymous
        .server_reflection_info(tokio_stream::iter([request.clone()]))
        .await
    {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(status.code(), Code::Unauthenticated);

    let token = client::BearerToken::new(TOKEN).unwrap();
    let mut reflection = ServerReflectionClient::with_interceptor(broker.channel().await, token);
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"dispatch.v1.Sessions"), "{names:?}");
}

#[tokio::test]
async fn healthcheck_subcommand_reports_serving() {
    let broker = TestBroker::start().await;
    let exe = env!("CARGO_BIN_EXE_dispatch-broker");
    let ok = tokio::task::spawn_blocking({
        let addr = broker.addr.to_string();
        move || {
            StdCommand::new(exe)
                .arg("healthcheck")
                .env("BROKER_LISTEN", addr)
                .status()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(ok.success());
    // Nothing listens on a fresh Unix socket path.
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("unix:{}", dir.path().join("none.sock").display());
    let failed = tokio::task::spawn_blocking(move || {
        StdCommand::new(exe)
            .arg("healthcheck")
            .env("BROKER_LISTEN", missing)
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!failed.success());
}

#[tokio::test]
async fn refuses_public_address_without_token() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch-broker"))
        .env("BROKER_LISTEN", "0.0.0.0:0")
        .env_remove("BROKER_TOKEN")
        .env("PTY_ROOT", tempfile::tempdir().unwrap().path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without BROKER_TOKEN"), "{stderr}");
}

#[tokio::test]
async fn unix_socket_is_private_and_stale_files_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run").join("broker.sock");
    // A stale socket file left behind by a dead process.
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());

    let listen = format!("unix:{}", socket.display());
    let broker = TestBroker::start_with(|cmd| {
        cmd.env("BROKER_LISTEN", &listen);
    })
    .await;
    assert_eq!(broker.addr.to_string(), listen);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("echo over-un''ix\r").await;
    viewer.wait_for_output("over-unix").await;

    // A second broker on the same live socket refuses to start.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch-broker"))
        .env("BROKER_LISTEN", &listen)
        .env("PTY_ROOT", dir.path().join("other"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
}

#[tokio::test]
async fn sigterm_tells_viewers_ends_sessions_and_exits_zero() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("echo read''y\r").await;
    viewer.wait_for_output("ready").await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(broker.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut notice = false;
    while let Some(kind) = viewer.next().await {
        if let pb::attach_response::Kind::Notice(n) = &kind {
            notice |= n.text.contains("shutting down");
        }
        if viewer.exit.is_some() {
            break;
        }
    }
    assert!(notice, "viewers are told");
    assert!(viewer.exit.is_some(), "viewers get the exit");
    let status = tokio::time::timeout(DEADLINE, broker.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    eventually("the shell is gone", || !process_exists(session.pid as i32)).await;
}
