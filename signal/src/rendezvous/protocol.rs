//! The signaling wire format (signal/PROTOCOL.md): JSON text frames, one
//! message each, tagged by `t`. Topics and peer ids travel as lower-case
//! hex; [`Topic::parse`] and [`PeerId::parse`] refuse anything else.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A topic: 32 opaque bytes, 64 lower-case hex digits on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(pub [u8; 32]);

impl Topic {
    /// 64 lower-case hex digits, or `None`.
    pub fn parse(text: &str) -> Option<Topic> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = text.get(2 * i..2 * i + 2)?;
            if pair.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Topic(out))
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({self})")
    }
}

/// A socket's id: a random u64, 16 lower-case hex digits on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl PeerId {
    /// 16 lower-case hex digits, or `None`.
    pub fn parse(text: &str) -> Option<PeerId> {
        if text.len() != 16 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(PeerId)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Join {
        topic: String,
    },
    Leave {
        topic: String,
    },
    Send {
        topic: String,
        to: String,
        data: String,
    },
}

impl ClientMessage {
    /// The topic the request is about, as sent.
    pub fn topic(&self) -> &str {
        match self {
            ClientMessage::Join { topic }
            | ClientMessage::Leave { topic }
            | ClientMessage::Send { topic, .. } => topic,
        }
    }
}

/// The limits a client is told in `welcome` (see [`super::Limits`]).
#[derive(Clone, Debug, Serialize)]
pub struct WelcomeLimits {
    pub frame_bytes: usize,
    pub data_bytes: usize,
    pub topics: usize,
    pub messages_per_second: u32,
    pub burst: u32,
    pub heartbeat_ms: u64,
    pub idle_timeout_ms: u64,
}

/// What the server sends. `Peers` answers a join; it may also come later,
/// unasked, listing peers that were on the topic before this socket but
/// that it could not hear of then (another node, behind a Redis outage):
/// the client treats them as if they had been in the answer.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        peer: String,
        limits: WelcomeLimits,
    },
    Peers {
        topic: String,
        peers: Vec<String>,
    },
    Joined {
        topic: String,
        peer: String,
    },
    Left {
        topic: String,
        peer: String,
    },
    Message {
        topic: String,
        from: String,
        data: String,
    },
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
}

impl ServerMessage {
    pub fn to_text(&self) -> String {
        // Plain data: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
