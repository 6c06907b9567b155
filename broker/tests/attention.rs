//! A session's attention: set by the bell and the desktop-notification
//! sequences in its output (every form, both terminators, split across
//! reads, inside a flood), cleared by a viewer's input, and coalesced so
//! that a storm of bells sets it once. Observed through `GetSession` and
//! `WatchSessions`.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use dispatch_proto::v1 as pb;

/// Every attention a session's `WatchSessions` events carried, in order
/// (`None` where an event had none).
#[derive(Clone, Default)]
struct Watched(Arc<Mutex<Vec<Option<pb::Attention>>>>);

impl Watched {
    async fn start(client: &mut Client, id: &str) -> Self {
        let mut events = client
            .watch_sessions(pb::WatchSessionsRequest {})
            .await
            .unwrap()
            .into_inner();
        let watched = Self::default();
        let (seen, id) = (watched.clone(), id.to_owned());
        tokio::spawn(async move {
            while let Ok(Some(event)) = events.message().await {
                for session in event.sessions.into_iter().filter(|s| s.id == id) {
                    seen.0.lock().unwrap().push(session.attention);
                }
            }
        });
        watched
    }

    /// How many times the attention went from none to set.
    fn times_set(&self) -> usize {
        let seen = self.0.lock().unwrap();
        let mut before = &None;
        let mut count = 0;
        for now in seen.iter() {
            count += usize::from(before.is_none() && now.is_some());
            before = now;
        }
        count
    }

    fn last(&self) -> Option<pb::Attention> {
        self.0.lock().unwrap().last().cloned().flatten()
    }
}

async fn attention(client: &mut Client, id: &str) -> Option<pb::Attention> {
    client
        .get_session(pb::GetSessionRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .attention
}

/// Runs `command` in the session and waits until its attention has
/// `title`; returns it.
async fn attention_after(
    client: &mut Client,
    viewer: &mut Viewer,
    id: &str,
    command: &str,
    title: &str,
) -> pb::Attention {
    viewer.input(&format!("{command}\r")).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = attention(client, id).await;
        if let Some(now) = now.clone().filter(|a| a.title == title) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attention {title:?} after {command:?}: {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A broker without coalescing (every signal after input counts).
async fn uncoalesced() -> TestBroker {
    TestBroker::start_with(|cmd| {
        cmd.env("NOTIFY_MIN_INTERVAL_SECS", "0");
    })
    .await
}

#[tokio::test]
async fn every_form_sets_attention_and_input_clears_it() {
    let broker = uncoalesced().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 120, 30).await;
    let id = &session.id;
    let mut viewer = Viewer::attach(&mut client, id, 120, 30, false).await;
    assert_eq!(attention(&mut client, id).await, None);
    let forms = [
        (r"printf '\033]9;osc nine\007'", "osc nine", "notification"),
        (r"printf '\033]9;nine st\033\\'", "nine st", "notification"),
        (
            r"printf '\033]777;notify;Build;finished\007'",
            "Build: finished",
            "notification",
        ),
        (
            r"printf '\033]777;notify;Claude Code;permission_prompt\033\\'",
            "Claude Code: permission_prompt",
            "permission",
        ),
        (
            r"printf '\033]99;;kitty title\033\\'",
            "kitty title",
            "notification",
        ),
        (
            r"printf '\033]99;i=1:p=body;kitty body\007'",
            "kitty body",
            "notification",
        ),
        (r"printf 'ring\a'", "Bell", "bell"),
        (
            r"printf '\033]777;notify;Split;'; sleep 0.3; printf 'across reads\033'; sleep 0.3; printf '\\'",
            "Split: across reads",
            "notification",
        ),
        (
            r"printf '\033]9;split'; sleep 0.3; printf ' bel\007'",
            "split bel",
            "notification",
        ),
        (
            r"head -c 3000000 /dev/zero | tr '\0' x; printf '\033]9;in a flood\033\\'; head -c 3000000 /dev/zero | tr '\0' y",
            "in a flood",
            "notification",
        ),
    ];
    for (command, title, reason) in forms {
        let set = attention_after(&mut client, &mut viewer, id, command, title).await;
        assert_eq!(set.reason, reason, "{command}");
        assert!(set.at_ms > 0);
        viewer.drain(std::time::Duration::from_millis(100)).await;
    }
    // Input clears it; a BEL ending an OSC (a window title) is no bell.
    viewer
        .input("printf '\\033]0;window title\\007'; echo title-''set\r")
        .await;
    viewer.wait_for_output("title-set").await;
    viewer.drain(std::time::Duration::from_millis(300)).await;
    assert_eq!(attention(&mut client, id).await, None);
    end_session(&mut client, id).await;
}

#[tokio::test]
async fn a_bell_storm_sets_attention_once() {
    // The default interval (30 s) between signals.
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = &session.id;
    let watched = Watched::start(&mut client, id).await;
    let mut viewer = Viewer::attach(&mut client, id, 80, 24, true).await;
    viewer
        .input("yes \"$(printf '\\a')\" | head -c 400000; echo storm-''over\r")
        .await;
    viewer.wait_for_output("storm-over").await;
    eventually("the watcher sees the attention", || {
        watched.last().is_some()
    })
    .await;
    assert_eq!(watched.last().unwrap().reason, "bell");
    // Input clears it; another bell within the interval is coalesced.
    viewer.input("printf '\\a'; echo rang-''again\r").await;
    viewer.wait_for_output("rang-again").await;
    viewer.drain(std::time::Duration::from_millis(300)).await;
    assert_eq!(attention(&mut client, id).await, None);
    assert_eq!(watched.times_set(), 1);
    end_session(&mut client, id).await;
}

#[tokio::test]
async fn terminal_reports_do_not_clear_attention() {
    let broker = uncoalesced().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let id = &session.id;
    let mut viewer = Viewer::attach(&mut client, id, 80, 24, false).await;
    attention_after(&mut client, &mut viewer, id, r"printf '\a'", "Bell").await;
    // What a terminal emulator sends by itself: focus lost, a cursor report.
    viewer.input("\x1b[O\x1b[5;1R").await;
    viewer.drain(std::time::Duration::from_millis(300)).await;
    assert!(attention(&mut client, id).await.is_some());
    viewer.input(" ").await;
    eventually_cleared(&mut client, id).await;
    end_session(&mut client, id).await;
}

async fn eventually_cleared(client: &mut Client, id: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while attention(client, id).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "attention not cleared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
