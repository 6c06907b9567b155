//! Web Push end to end: the gateway's VAPID key and subscription routes, and
//! the push each attention sends, received by a stand-in push service on
//! loopback. The test is the subscriber: it makes the subscription's keys,
//! checks the VAPID JWT against the key the gateway serves, decrypts the
//! payload (RFC 8291) and finds the session's name and the reason and no
//! terminal content. Subscriptions outlive a restart of both processes; one
//! the push service calls gone (410) is removed; a loopback endpoint gets
//! nothing once private endpoints are no longer allowed; bad bodies get 400
//! JSON.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One push the stand-in received.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A push service on loopback: answers 201, or 410 under `/gone/`.
#[derive(Clone, Default)]
struct PushService {
    received: Arc<Mutex<Vec<Received>>>,
    origin: String,
}

impl PushService {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service = Self {
            received: Default::default(),
            origin: format!("http://{}", listener.local_addr().unwrap()),
        };
        let received = service.received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let received = received.clone();
                tokio::spawn(async move {
                    let push = read_request(&mut stream).await;
                    let status = match push.path.starts_with("/gone/") {
                        true => "410 Gone",
                        false => "201 Created",
                    };
                    received.lock().unwrap().push(push);
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        service
    }

    fn pushes(&self, path: &str) -> Vec<Received> {
        let all = self.received.lock().unwrap();
        all.iter().filter(|p| p.path == path).cloned().collect()
    }

    async fn wait_for(&self, path: &str, count: usize) -> Received {
        eventually(&format!("{count} push(es) to {path}"), || async {
            self.pushes(path).len() >= count
        })
        .await;
        self.pushes(path)[count - 1].clone()
    }
}

/// One HTTP/1.1 POST: its path, headers and body (by `content-length`).
async fn read_request(stream: &mut tokio::net::TcpStream) -> Received {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = stream.read(&mut buf).await.unwrap();
        assert!(read > 0, "request ended early");
        data.extend_from_slice(&buf[..read]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        let mut lines = head.lines();
        let request_line = lines.next().unwrap().to_owned();
        assert!(request_line.starts_with("POST "), "{request_line}");
        let path = request_line.split(' ').nth(1).unwrap().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        if data.len() >= end + 4 + length {
            let body = data[end + 4..end + 4 + length].to_vec();
            return Received {
                path,
                headers,
                body,
            };
        }
    }
}

/// A browser's side of a subscription: its key pair and auth secret.
struct Subscriber {
    secret: p256::SecretKey,
    auth: [u8; 16],
    endpoint: String,
}

impl Subscriber {
    fn new(endpoint: String) -> Self {
        let secret = loop {
            if let Ok(key) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        Self {
            secret,
            auth: rand::random(),
            endpoint,
        }
    }

    /// `PushSubscription.toJSON()`'s shape.
    fn json(&self) -> Value {
        let public = self.secret.public_key().to_encoded_point(false);
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            },
        })
    }

    /// The push's payload, decrypted with this subscriber's keys.
    fn decrypt(&self, push: &Received) -> Value {
        let auth = web_push_native::Auth::clone_from_slice(&self.auth);
        let plain = web_push_native::decrypt(push.body.clone(), &self.secret, &auth)
            .expect("the push decrypts with the subscription's keys");
        serde_json::from_slice(&plain).unwrap()
    }
}

/// Checks the push's VAPID `Authorization` (RFC 8292) against the served
/// key and the push service's origin.
fn check_vapid(push: &Received, served_key: &str, audience: &str) {
    let header = push
        .header("authorization")
        .expect("an Authorization header");
    let rest = header.strip_prefix("vapid t=").expect("vapid scheme");
    let (token, key) = rest.split_once(", k=").unwrap();
    assert_eq!(key, served_key, "k= is the served key");
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let verifying =
        VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(served_key).unwrap()).unwrap();
    let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    verifying
        .verify(signed.as_bytes(), &signature)
        .expect("the JWT is signed by the served key");
    let mut parts = signed.split('.');
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    assert_eq!(claims["aud"], audience);
    assert_eq!(claims["sub"], "mailto:ops@example.com");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp > now && exp <= now + 24 * 3600, "exp {exp}, now {now}");
}

async fn served_key(gateway: &GatewayProc, cookie: &str) -> String {
    let response = http()
        .get(gateway.url("/api/push/key"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let key = body["publicKey"].as_str().unwrap().to_owned();
    assert_eq!(URL_SAFE_NO_PAD.decode(&key).unwrap().len(), 65);
    key
}

async fn subscribe(gateway: &GatewayProc, cookie: &str, body: &Value) -> (u16, Value) {
    let response = http()
        .post(gateway.url("/api/push/subscriptions"))
        .header("cookie", cookie)
        .header("origin", gateway.url(""))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn unsubscribe(gateway: &GatewayProc, cookie: &str, endpoint: &str) -> u16 {
    http()
        .delete(gateway.url("/api/push/subscriptions"))
        .header("cookie", cookie)
        .json(&json!({"endpoint": endpoint}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A session named `name` that signals attention (a notification escape
/// sequence, with text that must not reach a push) once the quiet time after
/// typing its command has passed, then rings a storm of bells (which must
/// not push again).
async fn signalling_session(gateway: &GatewayProc, cookie: &str, name: &str) {
    let session = create_session(gateway, cookie, json!({"name": name})).await;
    let id = session["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(gateway, cookie, id, (80, 24)).await;
    terminal
        .type_text(
            "sleep 2; printf '\\033]777;notify;secret-title;secret-body\\007'; \
             yes \"$(printf '\\a')\" | head -c 20000; echo sig''nalled\r",
        )
        .await;
    terminal.wait_for_within("signalled", DEADLINE).await;
}

const GATEWAY_ENV: &[(&str, &str)] = &[
    ("PUSH_ALLOW_PRIVATE_ENDPOINTS", "true"),
    ("PUSH_CONTACT", "mailto:ops@example.com"),
    ("PUSH_TTL_SECS", "120"),
    ("NOTIFY_QUIET_AFTER_INPUT_SECS", "1"),
];

#[tokio::test]
async fn pushes_are_encrypted_signed_kept_across_restarts_and_dropped_when_gone() {
    let service = PushService::start().await;
    let mut broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, GATEWAY_ENV).await;
    let cookie = login(&gateway).await;
    let key = served_key(&gateway, &cookie).await;
    let alive = Subscriber::new(format!("{}/push/alive", service.origin));
    let gone = Subscriber::new(format!("{}/gone/one", service.origin));
    for subscriber in [&alive, &gone] {
        let (status, body) = subscribe(&gateway, &cookie, &subscriber.json()).await;
        assert_eq!(status, 201, "{body}");
    }

    signalling_session(&gateway, &cookie, "push-me").await;
    let push = service.wait_for("/push/alive", 1).await;
    check_vapid(&push, &key, &service.origin);
    assert_eq!(push.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(push.header("ttl"), Some("120"));
    assert_eq!(push.header("urgency"), Some("normal"));
    let message = alive.decrypt(&push);
    assert_eq!(message["name"], "push-me");
    assert_eq!(message["reason"], "notification");
    assert!(message["session"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(!message.to_string().contains("secret"), "{message}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        service.pushes("/push/alive").len(),
        1,
        "the bells push nothing more"
    );
    // The push service said the second subscription is gone: removed.
    service.wait_for("/gone/one", 1).await;
    eventually("the gone subscription is removed", || async {
        unsubscribe(&gateway, &cookie, &gone.endpoint).await == 404
    })
    .await;

    // Both processes restart; the key and the live subscription stay.
    gateway.stop().await;
    broker.kill().await;
    broker.spawn().await;
    let gateway = GatewayProc::start(&broker, GATEWAY_ENV).await;
    let cookie = login(&gateway).await;
    assert_eq!(
        served_key(&gateway, &cookie).await,
        key,
        "the VAPID key is kept"
    );
    signalling_session(&gateway, &cookie, "after-restart").await;
    let push = service.wait_for("/push/alive", 2).await;
    check_vapid(&push, &key, &service.origin);
    assert_eq!(alive.decrypt(&push)["name"], "after-restart");
    assert_eq!(
        service.pushes("/gone/one").len(),
        1,
        "no push to a gone subscription"
    );

    // Without PUSH_ALLOW_PRIVATE_ENDPOINTS, a loopback endpoint stored
    // earlier gets nothing.
    gateway.stop().await;
    let strict: Vec<_> = GATEWAY_ENV
        .iter()
        .filter(|(name, _)| *name != "PUSH_ALLOW_PRIVATE_ENDPOINTS")
        .copied()
        .collect();
    let gateway = GatewayProc::start(&broker, &strict).await;
    let cookie = login(&gateway).await;
    signalling_session(&gateway, &cookie, "strict").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        service.pushes("/push/alive").len(),
        2,
        "no push to loopback"
    );
    assert_eq!(unsubscribe(&gateway, &cookie, &alive.endpoint).await, 204);
    assert_eq!(unsubscribe(&gateway, &cookie, &alive.endpoint).await, 404);
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_reasons() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("PUSH_MAX_SUBSCRIPTIONS", "1")]).await;
    let cookie = login(&gateway).await;
    let good = Subscriber::new("https://push.example.com/send/abc".into());
    let refused = |mut body: Value, edit: fn(&mut Value)| {
        edit(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!("not an object"), "bad JSON body"),
        (
            json!({"endpoint": "https://push.example.com/x"}),
            "bad JSON body",
        ),
        (
            refused(good.json(), |b| {
                b["endpoint"] = json!("http://push.example.com/x")
            }),
            "https",
        ),
        (
            refused(good.json(), |b| {
                b["endpoint"] = json!("https://127.0.0.1:9/x")
            }),
            "not a public one",
        ),
        (
            refused(good.json(), |b| {
                b["endpoint"] = json!("https://169.254.169.254/x")
            }),
            "not a public one",
        ),
        (
            refused(good.json(), |b| {
                b["endpoint"] = json!("https://localhost/x")
            }),
            "loopback",
        ),
        (
            refused(good.json(), |b| b["keys"]["p256dh"] = json!("AAAA")),
            "p256dh",
        ),
        (
            refused(good.json(), |b| b["keys"]["auth"] = json!("c2hvcnQ")),
            "auth",
        ),
    ];
    for (body, reason) in cases {
        let (status, answer) = subscribe(&gateway, &cookie, &body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{body} -> {answer}");
    }
    // Not JSON at all.
    let response = http()
        .post(gateway.url("/api/push/subscriptions"))
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["error"].as_str().unwrap().contains("bad JSON body"));
    // Credential and Origin rules.
    let anonymous = http()
        .post(gateway.url("/api/push/subscriptions"))
        .json(&good.json())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let foreign = http()
        .post(gateway.url("/api/push/subscriptions"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&good.json())
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    // The limit: one stored, the same endpoint again replaces it, a second is refused.
    assert_eq!(subscribe(&gateway, &cookie, &good.json()).await.0, 201);
    assert_eq!(subscribe(&gateway, &cookie, &good.json()).await.0, 201);
    let other = Subscriber::new("https://push.example.com/send/other".into());
    let (status, answer) = subscribe(&gateway, &cookie, &other.json()).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("PUSH_MAX_SUBSCRIPTIONS"),
        "{answer}"
    );
}
