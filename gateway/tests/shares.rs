//! Read-only share links through a real gateway and broker: a share viewer
//! sees live output; its input, resizes and `end` are refused; its cookie
//! opens no other route (a walk of the route table) and no other share;
//! revocation closes its socket with 4401; links expire, are bounded, die
//! with their session and with a key change, survive a restart under the
//! same key; wrong secrets spend the failure budget that wrong keys spend;
//! a viewer offering `dispatch.deflate-raw` gets compressed output, as the
//! owner's terminal socket does, unless `TERMINAL_COMPRESSION=false`.

mod common;

use std::time::Duration;

use common::*;
use dispatch_gateway::routes::{Audience, ROUTES};
use dispatch_testkit::deflate_frames::{Inflater, PROTOCOL};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};

/// A share link as its creator got it.
struct Link {
    id: String,
    secret: String,
}

async fn create_share(gateway: &GatewayProc, cookie: &str, session: &str, body: Value) -> Link {
    let response = http()
        .post(gateway.url(&format!("/api/sessions/{session}/shares")))
        .header("cookie", cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "create share");
    let created: Value = response.json().await.unwrap();
    let path = created["path"].as_str().unwrap();
    let (id, secret) = path
        .strip_prefix("/share#")
        .and_then(|rest| rest.split_once('.'))
        .unwrap_or_else(|| panic!("the secret is in the fragment: {path}"));
    assert_eq!(created["share"]["id"], id);
    assert!(secret.len() >= 22, "at least 128 bits: {secret}");
    Link {
        id: id.to_owned(),
        secret: secret.to_owned(),
    }
}

async fn open_share(gateway: &GatewayProc, id: &str, secret: &str) -> reqwest::Response {
    http()
        .post(gateway.url(&format!("/api/shares/{id}/open")))
        .json(&json!({ "secret": secret }))
        .send()
        .await
        .unwrap()
}

/// Opens a link; returns the share cookie (`name=value`) and the page's data.
async fn share_cookie(gateway: &GatewayProc, link: &Link) -> (String, Value) {
    let response = open_share(gateway, &link.id, &link.secret).await;
    assert_eq!(response.status(), 200, "open share");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path=/api/shares/{}", link.id),
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(&link.secret),
        "the cookie is not the secret"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    (cookie, response.json().await.unwrap())
}

async fn page(gateway: &GatewayProc, id: &str, cookie: &str) -> reqwest::StatusCode {
    http()
        .get(gateway.url(&format!("/api/shares/{id}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

async fn watch(gateway: &GatewayProc, id: &str, cookie: &str) -> Terminal {
    let socket = ws_connect(
        gateway,
        &format!("/api/shares/{id}/terminal"),
        Some(cookie),
        Some(&format!("http://{}", gateway.addr)),
    )
    .await
    .expect("share terminal upgrade");
    let mut terminal = Terminal::over(socket);
    terminal.auto_ack = true;
    let first = terminal.next_control().await;
    assert_eq!(first["type"], "attached", "first message: {first}");
    terminal
}

/// The next `error` control message's text.
async fn next_error(terminal: &mut Terminal) -> String {
    loop {
        let control = terminal.next_control().await;
        if control["type"] == "error" {
            return control["message"].as_str().unwrap().to_owned();
        }
    }
}

async fn session_json(gateway: &GatewayProc, cookie: &str, id: &str) -> Value {
    http()
        .get(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_share_viewer_watches_live_and_cannot_type_resize_or_end() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let owner_cookie = login(&gateway).await;
    let session = create_session(&gateway, &owner_cookie, json!({"name": "demo"})).await;
    let id = session["id"].as_str().unwrap();
    let mut owner = Terminal::attach(&gateway, &owner_cookie, id, (100, 30)).await;
    let link = create_share(&gateway, &owner_cookie, id, json!({"expiresInSecs": 600})).await;
    let (cookie, view) = share_cookie(&gateway, &link).await;
    assert_eq!(view["sessionName"], "demo");
    assert_eq!(view["readOnly"], true);
    assert!(view["host"].as_str().is_some_and(|h| !h.is_empty()));
    let mut viewer = watch(&gateway, &link.id, &cookie).await;
    let attached = &viewer.controls[0]["session"];
    assert_eq!(attached["name"], "demo");
    assert!(
        attached["cwd"] == "" && attached["metadata"] == json!({}),
        "a share viewer learns no directory or metadata: {attached}"
    );

    owner.type_text("echo live-$((6*7))\r").await;
    viewer.wait_for("live-42").await;

    viewer.type_text("echo typed-$((2*3))\r").await;
    assert_eq!(
        next_error(&mut viewer).await,
        "read-only share: input refused"
    );
    viewer
        .control(json!({"type": "resize", "cols": 40, "rows": 12, "fit": true}))
        .await;
    assert_eq!(
        next_error(&mut viewer).await,
        "read-only share: resize refused"
    );
    viewer.control(json!({"type": "end"})).await;
    assert_eq!(
        next_error(&mut viewer).await,
        "read-only share: ending the session refused"
    );

    owner.type_text("echo after-$((3*3))\r").await;
    owner.wait_for("after-9").await;
    viewer.wait_for("after-9").await;
    assert!(
        !contains(&owner.screen, b"typed"),
        "refused input reached the PTY"
    );
    let now = session_json(&gateway, &owner_cookie, id).await;
    assert_eq!(
        (now["cols"].clone(), now["rows"].clone()),
        (json!(100), json!(30))
    );
    assert_eq!(now["status"], "running");

    // The owner's list counts the viewer.
    let list: Value = http()
        .get(gateway.url(&format!("/api/sessions/{id}/shares")))
        .header("cookie", &owner_cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["shares"][0]["id"], link.id.as_str());
    assert_eq!(list["shares"][0]["viewers"], 1);
    assert!(list["shares"][0]["expiresAt"].as_i64().unwrap() > 0);
    assert!(
        !list.to_string().contains(&link.secret),
        "the list never shows a secret"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_share_cookie_opens_no_other_route_and_no_other_share() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("LOGIN_BURST", "100")]).await;
    let owner_cookie = login(&gateway).await;
    let session = create_session(&gateway, &owner_cookie, json!({})).await;
    let id = session["id"].as_str().unwrap();
    let link = create_share(&gateway, &owner_cookie, id, json!({})).await;
    let other = create_share(&gateway, &owner_cookie, id, json!({})).await;
    let (cookie, _) = share_cookie(&gateway, &link).await;
    let client = http();
    let origin = format!("http://{}", gateway.addr);
    let walked: Vec<_> = ROUTES
        .iter()
        .filter(|r| r.audience != Audience::Public)
        .collect();
    assert!(walked.len() >= 10, "the route table lists the API");
    for route in walked {
        // Its own share's routes open; every other route and every other
        // share's refuse the cookie.
        let own = route.audience == Audience::ShareViewer;
        for share in [link.id.as_str(), other.id.as_str()] {
            let path = route.path.replace("{id}", id).replace("{share}", share);
            let expect_open = own && share == link.id;
            if route.websocket {
                let result = ws_connect(&gateway, &path, Some(&cookie), Some(&origin)).await;
                match (expect_open, result) {
                    (true, Ok(_)) => {}
                    (false, Err(tungstenite::Error::Http(response))) => {
                        assert_eq!(response.status(), 401, "{path}")
                    }
                    (_, other) => panic!("{path}: upgrade gave {other:?}"),
                }
                continue;
            }
            let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
            let response = client
                .request(method, gateway.url(&path))
                .header("cookie", &cookie)
                .header("origin", &origin)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            match expect_open {
                true => assert_eq!(response.status(), 200, "{} {path}", route.method),
                false => assert_eq!(response.status(), 401, "{} {path}", route.method),
            }
        }
    }
    // Unrouted API paths too.
    assert_eq!(page(&gateway, "nonexistentpath0", &cookie).await, 401);
    let sessions = client
        .get(gateway.url("/api/sessions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(sessions.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_share_closes_its_viewers_at_once() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let owner_cookie = login(&gateway).await;
    let session = create_session(&gateway, &owner_cookie, json!({})).await;
    let id = session["id"].as_str().unwrap();
    let link = create_share(&gateway, &owner_cookie, id, json!({})).await;
    let kept = create_share(&gateway, &owner_cookie, id, json!({})).await;
    let (cookie, _) = share_cookie(&gateway, &link).await;
    let (kept_cookie, _) = share_cookie(&gateway, &kept).await;
    let mut viewer = watch(&gateway, &link.id, &cookie).await;
    let mut kept_viewer = watch(&gateway, &kept.id, &kept_cookie).await;

    let revoke = |share: String| {
        let (url, cookie) = (
            gateway.url(&format!("/api/sessions/{id}/shares/{share}")),
            owner_cookie.clone(),
        );
        async move {
            http()
                .delete(url)
                .header("cookie", cookie)
                .header("origin", format!("http://{}", gateway.addr))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(revoke(link.id.clone()).await, 204);
    assert_eq!(viewer.wait_closed().await, Some(4401));
    assert_eq!(revoke(link.id.clone()).await, 404, "already revoked");
    assert_eq!(
        open_share(&gateway, &link.id, &link.secret).await.status(),
        401
    );
    assert_eq!(page(&gateway, &link.id, &cookie).await, 401);
    // The other link lives on.
    assert_eq!(page(&gateway, &kept.id, &kept_cookie).await, 200);
    assert!(
        kept_viewer
            .next_event(Duration::from_millis(300))
            .await
            .is_none_or(|e| !matches!(e, Event::Closed(_)))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn links_expire_are_bounded_and_die_with_their_session() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(
        &broker,
        &[
            ("MAX_SHARES_PER_SESSION", "2"),
            ("SHARE_MAX_TTL_SECS", "3600"),
        ],
    )
    .await;
    let owner_cookie = login(&gateway).await;
    let session = create_session(&gateway, &owner_cookie, json!({})).await;
    let id = session["id"].as_str().unwrap();
    let create = |body: Value| {
        let (url, cookie) = (
            gateway.url(&format!("/api/sessions/{id}/shares")),
            owner_cookie.clone(),
        );
        async move {
            let response = http()
                .post(url)
                .header("cookie", cookie)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = create(json!({"expiresInSecs": 3601})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("SHARE_MAX_TTL_SECS")
    );
    assert_eq!(create(json!({"expiresInSecs": 0})).await.0, 400);

    // Expiry: the open socket closes, the link and its cookie stop opening.
    let short = create_share(&gateway, &owner_cookie, id, json!({"expiresInSecs": 2})).await;
    let (cookie, view) = share_cookie(&gateway, &short).await;
    assert!(view["expiresAt"].as_i64().unwrap() > 0);
    let mut viewer = watch(&gateway, &short.id, &cookie).await;
    assert_eq!(viewer.wait_closed().await, Some(4401));
    assert_eq!(page(&gateway, &short.id, &cookie).await, 401);
    assert_eq!(
        open_share(&gateway, &short.id, &short.secret)
            .await
            .status(),
        401
    );

    // At most MAX_SHARES_PER_SESSION live links.
    let link = create_share(&gateway, &owner_cookie, id, json!({})).await;
    create_share(&gateway, &owner_cookie, id, json!({})).await;
    let (status, body) = create(json!({})).await;
    assert_eq!(status, 409);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("MAX_SHARES_PER_SESSION")
    );

    // Ending the session ends its links.
    let (cookie, _) = share_cookie(&gateway, &link).await;
    let mut viewer = watch(&gateway, &link.id, &cookie).await;
    let ended = http()
        .delete(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", &owner_cookie)
        .header("origin", format!("http://{}", gateway.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    viewer.wait_closed().await;
    assert_eq!(page(&gateway, &link.id, &cookie).await, 410);
    assert_eq!(
        open_share(&gateway, &link.id, &link.secret).await.status(),
        401
    );
    let (status, _) = create(json!({})).await;
    assert_eq!(status, 409, "an ended session cannot be shared");
}

#[tokio::test(flavor = "multi_thread")]
async fn links_survive_a_restart_and_die_with_a_key_change() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let owner_cookie = login(&gateway).await;
    let session = create_session(&gateway, &owner_cookie, json!({})).await;
    let id = session["id"].as_str().unwrap();
    let link = create_share(&gateway, &owner_cookie, id, json!({})).await;
    let (cookie, _) = share_cookie(&gateway, &link).await;
    gateway.stop().await;

    let gateway = GatewayProc::start(&broker, &[]).await;
    assert_eq!(page(&gateway, &link.id, &cookie).await, 200);
    assert_eq!(
        open_share(&gateway, &link.id, &link.secret).await.status(),
        200
    );
    gateway.stop().await;

    let gateway = GatewayProc::start(&broker, &[("TERMINAL_KEY", "another-key-8d2e1f")]).await;
    assert_eq!(page(&gateway, &link.id, &cookie).await, 401);
    assert_eq!(
        open_share(&gateway, &link.id, &link.secret).await.status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_share_secrets_spend_the_login_budget() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(
        &broker,
        &[("LOGIN_BURST", "3"), ("LOGIN_REFILL_SECS", "3600")],
    )
    .await;
    let owner_cookie = login(&gateway).await;
    let session = create_session(&gateway, &owner_cookie, json!({})).await;
    let id = session["id"].as_str().unwrap();
    let link = create_share(&gateway, &owner_cookie, id, json!({})).await;
    let wrong = format!("{}x", &link.secret[..link.secret.len() - 1]);
    assert_eq!(open_share(&gateway, &link.id, &wrong).await.status(), 401);
    assert_eq!(
        open_share(&gateway, "AAAAAAAAAAAAAAAA", &link.secret)
            .await
            .status(),
        401
    );
    // A forged share cookie counts too.
    let forged = "dispatch_share=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(page(&gateway, &link.id, forged).await, 401);
    // The budget is spent: the right secret and the right key wait alike.
    let refused = open_share(&gateway, &link.id, &link.secret).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let login = http()
        .post(gateway.url("/api/login"))
        .json(&json!({"key": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_share_viewer_offering_compression_gets_it_and_decodes_the_owners_output() {
    const LINES: u64 = 20_000;
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let owner_cookie = login(&gateway).await;
    let session = create_session(&gateway, &owner_cookie, json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut owner = Terminal::attach(&gateway, &owner_cookie, id, (80, 24)).await;
    let link = create_share(&gateway, &owner_cookie, id, json!({})).await;
    let (cookie, _) = share_cookie(&gateway, &link).await;
    let path = format!("/api/shares/{}/terminal", link.id);
    let (socket, chosen) = ws_connect_offering(&gateway, &path, &cookie, Some(PROTOCOL))
        .await
        .expect("share terminal upgrade");
    assert_eq!(chosen.as_deref(), Some(PROTOCOL));
    let mut viewer = Terminal::over(socket);
    for expected in ["attached", "reset"] {
        let control = viewer.next_control().await;
        assert_eq!(control["type"], expected, "{control}");
    }

    owner
        .type_text(&format!("stty -echo; seq 1 {LINES}; echo seq-''done\r"))
        .await;
    // The viewer decodes every frame in order and acknowledges decoded bytes,
    // while the owner reads (and acknowledges) its own copy.
    let watched = async {
        let mut inflater = Inflater::default();
        let (mut output, mut wire, mut acked) = (Vec::new(), 0, 0);
        while !contains(&output, b"seq-done") {
            match viewer.next_event(DEADLINE).await {
                Some(Event::Output(frame)) => {
                    wire += frame.len();
                    output.extend(inflater.frame(&frame).expect("a well-formed frame"));
                    if output.len() - acked >= 32 * 1024 {
                        acked = output.len();
                        viewer.control(json!({"type": "ack", "bytes": acked})).await;
                    }
                }
                Some(Event::Control(control)) => {
                    assert_ne!(
                        control["type"], "reset",
                        "the viewer was not resynchronised"
                    )
                }
                other => panic!("the viewer's socket gave {other:?}"),
            }
        }
        (output, wire)
    };
    let ((output, wire), ()) = tokio::join!(watched, owner.wait_for("seq-done"));
    let expected = seq_output(LINES);
    assert!(
        contains(&output, &expected),
        "the decoded output holds every line of seq, byte for byte"
    );
    assert!(
        wire * 2 <= output.len(),
        "{wire} bytes on the wire for {} decoded bytes",
        output.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_compression_off_a_share_viewer_agrees_no_subprotocol() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("TERMINAL_COMPRESSION", "false")]).await;
    let owner_cookie = login(&gateway).await;
    let session = create_session(&gateway, &owner_cookie, json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut owner = Terminal::attach(&gateway, &owner_cookie, id, (80, 24)).await;
    let link = create_share(&gateway, &owner_cookie, id, json!({})).await;
    let (cookie, _) = share_cookie(&gateway, &link).await;
    // The client offered only subprotocols none of which was selected: it
    // refuses the handshake, as RFC 6455 lets it.
    let path = format!("/api/shares/{}/terminal", link.id);
    let refused = ws_connect_offering(&gateway, &path, &cookie, Some(PROTOCOL)).await;
    assert!(
        matches!(
            refused,
            Err(tungstenite::Error::Protocol(
                ProtocolError::SecWebSocketSubProtocolError(SubProtocolError::NoSubProtocol)
            ))
        ),
        "{refused:?}"
    );
    // A viewer that offers nothing watches raw output.
    let mut viewer = watch(&gateway, &link.id, &cookie).await;
    owner.type_text("echo raw-$((6*7))\r").await;
    viewer.wait_for("raw-42").await;
}
