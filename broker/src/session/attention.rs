//! Whether a session needs its user: the streaming scanner that finds the
//! bell and the desktop-notification sequences terminals understand in a
//! session's output, and the rule that turns them into the session's
//! `attention`.
//!
//! Sequences found (split across reads or not):
//! - BEL outside any control string;
//! - OSC 9 (`ESC ] 9 ; text`), except ConEmu's numbered sub-commands such
//!   as the progress report `9;4;...`;
//! - OSC 777 (`ESC ] 777 ; notify ; title ; body`);
//! - OSC 99, kitty's notifications (`ESC ] 99 ; metadata ; payload`), for
//!   the title and body parts;
//!
//! each ended by BEL or ST (`ESC \`). A BEL that ends an OSC is its
//! terminator, not a bell. The scanner looks only at ESC and BEL bytes
//! (found with `memchr`), so bulk output passes at memory speed.
//!
//! Coalescing: a signal sets `attention` only when none is set. A bell
//! also needs the last attention to be at least the minimum interval old,
//! so a bell storm yields one; a notification sequence (a program saying in
//! words that it needs its user, such as a second permission prompt right
//! after the first was answered) is never held back. Input from a viewer
//! clears it.

use std::time::{Duration, Instant};

use dispatch_proto::time::now_ms;
use dispatch_proto::v1 as pb;

use super::Session;
use super::state::State;

/// Longest OSC payload kept; longer ones are skipped whole.
const MAX_OSC: usize = 1024;
/// Longest title kept in `attention`, in characters.
const MAX_TITLE: usize = 200;

const BEL: u8 = 0x07;
const ESC: u8 = 0x1b;

/// What the output asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    Bell,
    Notification { title: String, body: String },
}

impl Signal {
    /// Why the session needs its user: `bell`, `permission` (a permission
    /// prompt), `input` (waiting for input) or `notification`.
    pub fn reason(&self) -> &'static str {
        match self {
            Signal::Bell => "bell",
            Signal::Notification { title, body } => {
                let text = format!("{title} {body}").to_ascii_lowercase();
                if text.contains("permission") {
                    "permission"
                } else if text.contains("idle") || text.contains("waiting for") {
                    "input"
                } else {
                    "notification"
                }
            }
        }
    }

    /// The text shown with the attention.
    pub fn title(&self) -> String {
        let text = match self {
            Signal::Bell => "Bell".to_owned(),
            Signal::Notification { title, body } if title.is_empty() => body.clone(),
            Signal::Notification { title, body } if body.is_empty() => title.clone(),
            Signal::Notification { title, body } => format!("{title}: {body}"),
        };
        text.chars()
            .filter(|c| !c.is_control())
            .take(MAX_TITLE)
            .collect()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Ground,
    /// After an ESC outside any OSC.
    Escape,
    /// Inside an OSC.
    Osc,
    /// After an ESC inside an OSC (ST when a backslash follows).
    OscEscape,
}

/// The scanner's state between reads.
#[derive(Debug, Default)]
pub struct Scanner {
    mode: Mode,
    payload: Vec<u8>,
    /// The OSC is longer than [`MAX_OSC`]: skipped whole.
    overflow: bool,
}

impl Scanner {
    /// Scans the next output; returns the most telling signal in it (a
    /// notification before a bell), if any.
    pub fn scan(&mut self, data: &[u8]) -> Option<Signal> {
        let mut found = None;
        let mut rest = data;
        while !rest.is_empty() {
            rest = match self.mode {
                Mode::Ground => match memchr::memchr2(BEL, ESC, rest) {
                    None => &[],
                    Some(at) => {
                        if rest[at] == BEL {
                            keep(&mut found, Signal::Bell);
                        } else {
                            self.mode = Mode::Escape;
                        }
                        &rest[at + 1..]
                    }
                },
                Mode::Escape => {
                    self.mode = match rest[0] {
                        b']' => {
                            self.payload.clear();
                            self.overflow = false;
                            Mode::Osc
                        }
                        ESC => Mode::Escape,
                        _ => Mode::Ground,
                    };
                    &rest[1..]
                }
                Mode::Osc => self.osc_text(rest, &mut found),
                Mode::OscEscape => {
                    if rest[0] == b'\\' {
                        self.end_osc(&mut found);
                        &rest[1..]
                    } else {
                        // Any other escape aborts the OSC and starts anew.
                        self.mode = Mode::Escape;
                        rest
                    }
                }
            };
        }
        found
    }

    /// Takes OSC text up to its terminator; returns what follows.
    fn osc_text<'a>(&mut self, rest: &'a [u8], found: &mut Option<Signal>) -> &'a [u8] {
        match memchr::memchr2(BEL, ESC, rest) {
            None => {
                self.take(rest);
                &[]
            }
            Some(at) => {
                self.take(&rest[..at]);
                if rest[at] == BEL {
                    self.end_osc(found);
                } else {
                    self.mode = Mode::OscEscape;
                }
                &rest[at + 1..]
            }
        }
    }

    fn take(&mut self, text: &[u8]) {
        if self.payload.len() + text.len() > MAX_OSC {
            self.overflow = true;
            self.payload = Vec::new();
        } else if !self.overflow {
            self.payload.extend_from_slice(text);
        }
    }

    fn end_osc(&mut self, found: &mut Option<Signal>) {
        self.mode = Mode::Ground;
        if !self.overflow
            && let Some(signal) = notification(&self.payload)
        {
            keep(found, signal);
        }
        self.payload.clear();
        if self.payload.capacity() > MAX_OSC {
            self.payload = Vec::new();
        }
    }
}

/// Keeps `signal` unless a notification was already found.
fn keep(found: &mut Option<Signal>, signal: Signal) {
    if !matches!(found, Some(Signal::Notification { .. })) {
        *found = Some(signal);
    }
}

/// The notification an OSC payload (between `ESC ]` and its terminator)
/// carries, if it is one.
fn notification(payload: &[u8]) -> Option<Signal> {
    let text = String::from_utf8_lossy(payload);
    let (number, rest) = text.split_once(';')?;
    match number {
        "9" => osc9(rest),
        "777" => osc777(rest),
        "99" => osc99(rest),
        _ => None,
    }
}

/// OSC 9: the text, unless it is one of ConEmu's numbered sub-commands.
fn osc9(text: &str) -> Option<Signal> {
    let first = text.split(';').next().unwrap_or_default();
    if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Signal::Notification {
        title: String::new(),
        body: text.to_owned(),
    })
}

/// OSC 777: `notify;title;body` (other sub-commands are not notifications).
fn osc777(text: &str) -> Option<Signal> {
    let mut parts = text.splitn(3, ';');
    if parts.next()? != "notify" {
        return None;
    }
    let title = parts.next().unwrap_or_default().to_owned();
    let body = parts.next().unwrap_or_default().to_owned();
    Some(Signal::Notification { title, body })
}

/// OSC 99: `metadata;payload`, where the payload is the title (the
/// default) or the body; other payload types (icons, queries, closing) and
/// encoded payloads are not shown.
fn osc99(text: &str) -> Option<Signal> {
    let (metadata, payload) = text.split_once(';')?;
    let mut part = "title";
    for pair in metadata.split(':') {
        match pair.split_once('=') {
            Some(("p", value)) => part = value,
            Some(("e", "1")) => return None,
            _ => {}
        }
    }
    let payload = payload.to_owned();
    match part {
        "title" => Some(Signal::Notification {
            title: payload,
            body: String::new(),
        }),
        "body" => Some(Signal::Notification {
            title: String::new(),
            body: payload,
        }),
        _ => None,
    }
}

/// A session's attention and the coalescing of its signals (kept in the
/// session's state).
#[derive(Debug, Default)]
pub struct Attention {
    current: Option<pb::Attention>,
    last_set: Option<Instant>,
}

impl Attention {
    /// Sets the attention for `signal` unless one is set or, for a bell,
    /// the last was set less than `min_interval` ago; returns whether it
    /// was set.
    pub fn signal(&mut self, signal: &Signal, min_interval: Duration, now_ms: i64) -> bool {
        let recent = matches!(signal, Signal::Bell)
            && self.last_set.is_some_and(|at| at.elapsed() < min_interval);
        if self.current.is_some() || recent {
            return false;
        }
        self.current = Some(pb::Attention {
            reason: signal.reason().to_owned(),
            title: signal.title(),
            at_ms: now_ms,
        });
        self.last_set = Some(Instant::now());
        true
    }

    /// Clears the attention (a viewer sent input); returns whether one was
    /// set.
    pub fn clear(&mut self) -> bool {
        self.current.take().is_some()
    }

    pub fn current(&self) -> Option<pb::Attention> {
        self.current.clone()
    }
}

impl Session {
    /// Scans output about to be published (before the state is locked).
    pub(super) fn scan_for_signal(&self, data: &[u8]) -> Option<Signal> {
        let mut scanner = crate::sync::lock(&self.scanner);
        scanner.scan(data)
    }

    /// Sets the attention for `signal` (coalesced) and announces it.
    pub(super) fn raise_attention(&self, state: &mut State, signal: &Signal) {
        if state
            .attention
            .signal(signal, self.limits.notify_min_interval, now_ms())
        {
            tracing::info!(reason = signal.reason(), "session needs attention");
            self.announce(state, pb::session_event::Kind::Updated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(chunks: &[&[u8]]) -> Vec<Signal> {
        let mut scanner = Scanner::default();
        chunks.iter().filter_map(|c| scanner.scan(c)).collect()
    }

    fn note(title: &str, body: &str) -> Signal {
        Signal::Notification {
            title: title.into(),
            body: body.into(),
        }
    }

    #[test]
    fn each_form_with_each_terminator() {
        for end in [&b"\x07"[..], b"\x1b\\"] {
            let with = |start: &[u8]| [start, end].concat();
            assert_eq!(scan_all(&[&with(b"\x1b]9;done")]), [note("", "done")]);
            assert_eq!(scan_all(&[&with(b"\x1b]777;notify;T;B")]), [note("T", "B")]);
            assert_eq!(scan_all(&[&with(b"\x1b]99;;Hi")]), [note("Hi", "")]);
            assert_eq!(scan_all(&[&with(b"\x1b]99;i=1:p=body;B")]), [note("", "B")]);
        }
    }

    #[test]
    fn a_bel_ending_an_osc_is_no_bell() {
        assert!(scan_all(&[b"\x1b]0;window title\x07text"]).is_empty());
        assert!(scan_all(&[b"\x1b]9;4;1;50\x07"]).is_empty());
        assert!(scan_all(&[b"\x1b]777;precmd\x07"]).is_empty());
        assert_eq!(scan_all(&[b"a\x07b"]), [Signal::Bell]);
    }

    #[test]
    fn split_at_every_byte() {
        let text = b"xx\x1b[31mred\x1b]777;notify;Claude Code;permission_prompt\x1b\\yy";
        for cut in 1..text.len() {
            let found = scan_all(&[&text[..cut], &text[cut..]]);
            assert_eq!(
                found,
                [note("Claude Code", "permission_prompt")],
                "cut {cut}"
            );
            assert_eq!(found[0].reason(), "permission");
        }
    }

    #[test]
    fn an_oversized_osc_is_skipped_and_scanning_resumes() {
        let long = [b"\x1b]9;".as_slice(), &[b'a'; 5000], b"\x07tail\x07"].concat();
        assert_eq!(scan_all(&[&long]), [Signal::Bell]);
    }

    #[test]
    fn storms_coalesce() {
        let mut attention = Attention::default();
        let long = Duration::from_secs(30);
        assert!(attention.signal(&Signal::Bell, long, 1));
        assert!(!attention.signal(&Signal::Bell, long, 2));
        assert!(attention.clear());
        assert!(
            !attention.signal(&Signal::Bell, long, 3),
            "within the interval"
        );
        assert!(attention.signal(&Signal::Bell, Duration::ZERO, 4));
        assert_eq!(attention.current().unwrap().at_ms, 4);
    }

    #[test]
    fn a_notification_after_an_answer_is_never_held_back() {
        let mut attention = Attention::default();
        let long = Duration::from_secs(30);
        let prompt = Signal::Notification {
            title: "Claude Code".to_owned(),
            body: "permission_prompt".to_owned(),
        };
        assert!(attention.signal(&prompt, long, 1));
        assert!(!attention.signal(&prompt, long, 2), "one is set");
        assert!(attention.clear());
        assert!(attention.signal(&prompt, long, 3), "the next prompt");
        assert_eq!(attention.current().unwrap().reason, "permission");
        assert!(attention.clear());
        assert!(!attention.signal(&Signal::Bell, long, 4), "bells coalesce");
    }
}
