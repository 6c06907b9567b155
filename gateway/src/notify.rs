//! Telling the user, outside the page, that a session needs them: one JSON
//! POST to `NOTIFY_WEBHOOK_URL` and one Web Push to each subscribed browser
//! ([`crate::push`]) per attention the broker sets (the broker already
//! coalesces signals, see `NOTIFY_MIN_INTERVAL_SECS`). The webhook's body
//! carries only the session's name and the reason, never terminal content:
//! `{"title", "message", "text", "session", "reason"}` (`text` for chat
//! webhooks, `title`/`message` for ntfy-style services). Neither goes out for
//! a session a viewer typed in within `NOTIFY_QUIET_AFTER_INPUT_SECS`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dispatch_proto::v1::{self as pb, WatchSessionsRequest, session_event::Kind};

use crate::broker::RequestId;
use crate::protocol::notify::WebhookBody;
use crate::protocol::push::PushMessage;
use crate::state::AppState;

/// Time allowed for one webhook POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before watching the broker again after its stream failed.
const REWATCH_DELAY: Duration = Duration::from_secs(1);

/// When a viewer last typed in each session.
#[derive(Debug, Default)]
pub struct Typing(Mutex<HashMap<String, Instant>>);

impl Typing {
    /// Records input just sent to `session`.
    pub fn record(&self, session: &str) {
        let mut typed = crate::sync::lock(&self.0);
        if typed.len() > 4096 {
            typed.retain(|_, at| at.elapsed() < Duration::from_secs(3600));
        }
        typed.insert(session.to_owned(), Instant::now());
    }

    /// Whether a viewer typed in `session` within `quiet`.
    pub fn recent(&self, session: &str, quiet: Duration) -> bool {
        let typed = crate::sync::lock(&self.0);
        typed.get(session).is_some_and(|at| at.elapsed() < quiet)
    }
}

/// The webhook's JSON body for a session that needs its user.
pub fn webhook_body(session: &pb::Session, attention: &pb::Attention) -> WebhookBody {
    let name = if session.name.is_empty() {
        "a session"
    } else {
        session.name.as_str()
    };
    let what = match attention.reason.as_str() {
        "permission" => "needs a permission decision",
        "input" => "waits for input",
        "bell" => "rang the bell",
        _ => "sent a notification",
    };
    let message = format!("{name} {what}");
    WebhookBody {
        title: "dispatch".to_owned(),
        text: message.clone(),
        message,
        session: name.to_owned(),
        reason: attention.reason.clone(),
    }
}

/// The Web Push payload for a session that needs its user.
pub fn push_message(session: &pb::Session, attention: &pb::Attention) -> PushMessage {
    PushMessage {
        session: session.id.clone(),
        name: session.name.clone(),
        reason: attention.reason.clone(),
    }
}

/// Where notifications are posted; its text (which may hold a token) is
/// never shown in logs or debug output.
#[derive(Clone)]
pub struct WebhookUrl(pub reqwest::Url);

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookUrl(..)")
    }
}

impl std::str::FromStr for WebhookUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(text)
            .map_err(|e| format!("NOTIFY_WEBHOOK_URL is not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => Ok(Self(url)),
            _ => Err("NOTIFY_WEBHOOK_URL must be an http or https URL".into()),
        }
    }
}

fn http_client() -> reqwest::Result<reqwest::Client> {
    // The first provider installed wins; another one already there is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("dispatch-gateway/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(POST_TIMEOUT)
        .build()
}

/// Watches the broker's sessions and notifies (webhook, Web Push) until shutdown.
pub async fn run(state: Arc<AppState>) {
    let url = state.config.notify_webhook_url.clone().map(|url| url.0);
    let client = match http_client() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook's HTTP client");
            return;
        }
    };
    let mut seen: HashMap<String, i64> = HashMap::new();
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            () = watch(&state, &client, url.as_ref(), &mut seen) => {}
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(REWATCH_DELAY) => {}
        }
    }
}

/// Follows one `WatchSessions` stream until it ends or fails.
async fn watch(
    state: &AppState,
    client: &reqwest::Client,
    url: Option<&reqwest::Url>,
    seen: &mut HashMap<String, i64>,
) {
    let request = state
        .broker
        .stream_request(WatchSessionsRequest {}, &RequestId::generate());
    let Ok(response) = state.broker.sessions().watch_sessions(request).await else {
        return;
    };
    let mut events = response.into_inner();
    while let Ok(Some(event)) = events.message().await {
        // A snapshot's attentions were set before this watch: not new.
        let fresh = event.kind != Kind::Snapshot as i32;
        for session in &event.sessions {
            if event.kind == Kind::Removed as i32 {
                seen.remove(&session.id);
                continue;
            }
            let Some(attention) = &session.attention else {
                continue;
            };
            let before = seen.insert(session.id.clone(), attention.at_ms);
            let new = before.is_none_or(|at| at < attention.at_ms);
            let quiet = Duration::from_secs(state.config.notify_quiet_after_input_secs);
            if fresh && new && !state.typing.recent(&session.id, quiet) {
                if let Some(url) = url {
                    post(client, url, webhook_body(session, attention));
                }
                state.push.send(&push_message(session, attention));
            }
        }
    }
}

/// Sends one POST in the background (a slow webhook holds up nothing).
fn post(client: &reqwest::Client, url: &reqwest::Url, body: WebhookBody) {
    let request = client
        .post(url.clone())
        .timeout(POST_TIMEOUT)
        .json(&body)
        .send();
    tokio::spawn(async move {
        match request.await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(status = %response.status(), "the notification webhook refused a POST")
            }
            // Without the URL, which may hold a secret.
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "the notification webhook is unreachable")
            }
        }
    });
}
