//! Why a peer connection (or one of its channels) closed. Every reason
//! has a stable code, sent to the other side in the `Close` message and
//! shown to the person managing the vault.

use std::fmt;

/// The kind of a close, with its stable code (`peer.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// Closed on purpose (shutdown, the space was left, a duplicate link).
    Normal,
    /// Garbage, a message that does not decode, or one out of order.
    Protocol,
    /// A frame longer than 16 KiB.
    FrameTooLarge,
    /// A message (or the partial messages held) over the limit.
    MessageTooLarge,
    /// No protocol version in common.
    UnsupportedVersion,
    /// The other side did not prove its device key over this channel.
    AuthFailed,
    /// The handshake, or the link, went silent for too long.
    Timeout,
    /// Sent beyond its credit, or control messages too fast.
    Flood,
    /// The other end is this very device.
    SelfConnection,
    /// Another link to the same device is kept instead.
    Duplicate,
    /// A code this build does not know (from a newer peer).
    Other,
}

impl CloseCode {
    pub fn code(self) -> &'static str {
        match self {
            CloseCode::Normal => "peer.closed",
            CloseCode::Protocol => "peer.protocol",
            CloseCode::FrameTooLarge => "peer.frame_too_large",
            CloseCode::MessageTooLarge => "peer.message_too_large",
            CloseCode::UnsupportedVersion => "peer.unsupported_version",
            CloseCode::AuthFailed => "peer.auth_failed",
            CloseCode::Timeout => "peer.timeout",
            CloseCode::Flood => "peer.flood",
            CloseCode::SelfConnection => "peer.self",
            CloseCode::Duplicate => "peer.duplicate",
            CloseCode::Other => "peer.other",
        }
    }

    pub fn from_code(code: &str) -> Self {
        [
            CloseCode::Normal,
            CloseCode::Protocol,
            CloseCode::FrameTooLarge,
            CloseCode::MessageTooLarge,
            CloseCode::UnsupportedVersion,
            CloseCode::AuthFailed,
            CloseCode::Timeout,
            CloseCode::Flood,
            CloseCode::SelfConnection,
            CloseCode::Duplicate,
        ]
        .into_iter()
        .find(|c| c.code() == code)
        .unwrap_or(CloseCode::Other)
    }
}

/// Why a connection closed: a code and what happened, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: CloseCode,
    pub detail: String,
}

impl CloseReason {
    pub fn new(code: CloseCode, detail: impl Into<String>) -> Self {
        let mut detail: String = detail.into();
        // Details cross the wire; keep them short.
        if detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
        }
        CloseReason { code, detail }
    }

    /// The stable code, e.g. `peer.auth_failed`.
    pub fn code(&self) -> &'static str {
        self.code.code()
    }
}

/// The longest detail text a close carries.
pub const MAX_DETAIL: usize = 200;

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail)
    }
}
