//! `GET /api/auth`, the page's "am I logged in" question, through a real
//! gateway and broker: answered `200` with or without a good credential
//! (so a page load logs no refusal), a refused cookie cleared, and a wrong
//! credential spending the failure budget as anywhere else.

mod common;

use common::*;

/// The answer's status, `authenticated` and whether it clears the cookie.
async fn ask(request: reqwest::RequestBuilder) -> (u16, Option<bool>, bool) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let cleared = response
        .headers()
        .get("set-cookie")
        .is_some_and(|c| c.to_str().unwrap().starts_with("dispatch_session=;"));
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["authenticated"].as_bool(), cleared)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_question_is_answered_without_a_refusal() {
    let broker = BrokerProc::start().await;
    let env = [
        ("LOGIN_BURST", "2"),
        ("LOGIN_REFILL_SECS", "3600"),
        ("TRUST_PROXY", "loopback"),
    ];
    let gateway = GatewayProc::start(&broker, &env).await;
    let client = http();
    let url = gateway.url("/api/auth");

    assert_eq!(ask(client.get(&url)).await, (200, Some(false), false));
    assert_eq!(
        ask(client.get(&url).bearer_auth(KEY)).await,
        (200, Some(true), false)
    );
    let cookie = login(&gateway).await;
    assert_eq!(
        ask(client.get(&url).header("cookie", &cookie)).await,
        (200, Some(true), false)
    );

    // A forged cookie is no login, and is cleared.
    let guesser = "203.0.113.8";
    let forged = "dispatch_session=v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.Zm9yZ2VkLW1hYy1ieXRlcw";
    let from_guesser = || client.get(&url).header("x-forwarded-for", guesser);
    assert_eq!(
        ask(from_guesser().header("cookie", forged)).await,
        (200, Some(false), true)
    );
    // It was a guess, and so is a wrong key: the budget of two is spent, and
    // the question is refused like every other route, even with the key.
    assert_eq!(
        ask(from_guesser().bearer_auth("guessed-key-31c9")).await,
        (200, Some(false), false)
    );
    let refused = from_guesser().bearer_auth(KEY).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    // Another client still gets its answer.
    let other = client
        .get(&url)
        .header("x-forwarded-for", "203.0.113.9")
        .bearer_auth(KEY);
    assert_eq!(ask(other).await, (200, Some(true), false));
}
