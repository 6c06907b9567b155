//! Bad input gets precise gRPC codes and never breaks a session.

mod common;

use common::*;
use dispatch_proto::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn bad_ids_and_unknown_sessions() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let status = client
        .get_session(pb::GetSessionRequest {
            id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let unknown = "6f1c0a52-4d8e-4f3e-9d2a-0c7b5e9a1f00".to_owned();
    let status = client
        .get_session(pb::GetSessionRequest {
            id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .end_session(pb::EndSessionRequest {
            id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .rename_session(pb::RenameSessionRequest {
            id: unknown,
            name: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn invalid_create_requests() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let cases = [
        pb::CreateSessionRequest {
            name: "n".repeat(129),
            ..Default::default()
        },
        pb::CreateSessionRequest {
            cwd: "relative/dir".into(),
            ..Default::default()
        },
        pb::CreateSessionRequest {
            cwd: "/definitely/not/here".into(),
            ..Default::default()
        },
        pb::CreateSessionRequest {
            mode: 42,
            ..Default::default()
        },
    ];
    for request in cases {
        let status = client.create_session(request.clone()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{request:?}: {status:?}"
        );
        assert!(!status.message().is_empty());
    }
    // A requested cwd is used and reported.
    let dir = tempfile::tempdir().unwrap();
    let session = client
        .create_session(pb::CreateSessionRequest {
            cwd: dir.path().display().to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(session.cwd, dir.path().display().to_string());
    let status = client
        .rename_session(pb::RenameSessionRequest {
            id: session.id.clone(),
            name: "é".repeat(129),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn session_limit_is_resource_exhausted() {
    let broker = TestBroker::start_with(|cmd| {
        cmd.env("BROKER_MAX_SESSIONS", "2");
    })
    .await;
    let mut client = broker.client().await;
    let first = create_shell(&mut client, 80, 24).await;
    create_shell(&mut client, 80, 24).await;
    let status = client
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // Ending one frees a slot.
    client
        .end_session(pb::EndSessionRequest { id: first.id })
        .await
        .unwrap();
    create_shell(&mut client, 80, 24).await;
}

#[tokio::test]
async fn oversized_messages_are_out_of_range_and_the_session_survives() {
    let broker = TestBroker::start_with(|cmd| {
        cmd.env("BROKER_MAX_MESSAGE_BYTES", "65536");
    })
    .await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input(&"x".repeat(70_000)).await;
    let status = loop {
        match tokio::time::timeout(DEADLINE, viewer.rx.message())
            .await
            .unwrap()
        {
            Err(status) => break status,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without an error"),
        }
    };
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let got = client
        .get_session(pb::GetSessionRequest {
            id: session.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, pb::SessionStatus::Running as i32);
    let mut again = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    again.input("echo still-al''ive\r").await;
    again.wait_for_output("still-alive").await;
}

#[tokio::test]
async fn attach_must_start_with_start() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let requests = tokio_stream::iter([pb::AttachRequest {
        kind: Some(pb::attach_request::Kind::Input(b"ls\r".to_vec().into())),
    }]);
    let status = client.attach(requests).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let requests = tokio_stream::iter([pb::AttachRequest {
        kind: Some(pb::attach_request::Kind::Start(pb::AttachStart {
            session_id: "nope".into(),
            ..Default::default()
        })),
    }]);
    let status = client.attach(requests).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn ended_sessions_replay_then_exit_and_expire() {
    let broker = TestBroker::start_with(|cmd| {
        cmd.env("BROKER_RETENTION_SECS", "1");
    })
    .await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("echo last-wo''rds; exit 3\r").await;
    assert_eq!(viewer.wait_for_exit().await.code, Some(3));
    let mut late = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    assert!(late.screen.screen().contents().contains("last-words"));
    assert_eq!(late.wait_for_exit().await.code, Some(3));
    let status = loop {
        match client
            .get_session(pb::GetSessionRequest {
                id: session.id.clone(),
            })
            .await
        {
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::NotFound);
}
