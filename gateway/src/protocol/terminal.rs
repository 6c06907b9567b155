//! The terminal WebSocket's text messages (`/ws/sessions/{id}`), both ways.
//! Terminal output and input travel as binary frames, outside these types.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::sessions::Session;

/// A text message the gateway sends on a terminal socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// First message: the session as it was when attached.
    Attached { session: Session },
    /// Clear the terminal: a replay of the screen at this size follows.
    Reset { cols: u32, rows: u32 },
    /// The session changed (size, name, attention ...).
    Session { session: Session },
    /// A line for the user from the broker.
    Notice { text: String },
    /// The session's process ended; the socket closes after this.
    Exit {
        code: Option<i32>,
        signal: Option<String>,
    },
    /// A message could not be acted on; the socket stays open.
    Error { message: String },
    /// The answer to `ping`.
    Pong,
}

impl ServerMessage {
    /// An `error` message.
    pub fn error(message: impl Into<String>) -> Self {
        Self::Error {
            message: message.into(),
        }
    }
}

/// A text message the browser sends on a terminal socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    /// The viewer's size; `fit` also drives the PTY's size (the "fit to
    /// this screen" button).
    Resize {
        cols: u32,
        rows: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        fit: Option<bool>,
    },
    /// Binary bytes received so far on this socket (cumulative).
    Ack { bytes: u64 },
    /// Leave the session running and close the socket.
    Detach,
    /// End the session.
    End,
    /// Liveness check, answered with `pong`.
    Ping,
    /// Any other type: answered with an `error` message.
    #[serde(other)]
    #[ts(skip)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pong_is_the_exact_text_the_web_ui_recognises() {
        let text = serde_json::to_string(&ServerMessage::Pong).unwrap();
        assert_eq!(text, r#"{"type":"pong"}"#);
    }

    #[test]
    fn a_resize_without_fit_and_an_unknown_type_parse() {
        let resize: ClientMessage =
            serde_json::from_str(r#"{"type":"resize","cols":80,"rows":24}"#).unwrap();
        assert_eq!(
            resize,
            ClientMessage::Resize {
                cols: 80,
                rows: 24,
                fit: None
            }
        );
        let other: ClientMessage = serde_json::from_str(r#"{"type":"paste"}"#).unwrap();
        assert_eq!(other, ClientMessage::Unknown);
        assert!(serde_json::from_str::<ClientMessage>(r#"{"cols":80}"#).is_err());
    }
}
