//! The connection's own messages, on channel 0 (postcard-encoded).
//!
//! `Hello` is the first message of each side and is variant 0 with its
//! version list first, so any future version can still read it and answer
//! with a version both speak.

use serde::{Deserialize, Serialize};

use super::error::CloseCode;
use crate::identity::{DeviceCertificate, Signature};

/// Protocol versions this build speaks, in order of preference.
pub const VERSIONS: &[u16] = &[1];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Control {
    /// First message of each side.
    Hello {
        versions: Vec<u16>,
        nonce: [u8; 32],
        /// Bytes of space-channel frames the sender accepts before it
        /// grants more credit.
        window: u32,
    },
    /// The sender's proof (see `auth.rs`), after both `Hello`s.
    Auth {
        certificate: DeviceCertificate,
        signature: Signature,
    },
    /// Spaces offered as tags, each with the channel that will carry it.
    Offer {
        offers: Vec<(u16, [u8; 32])>,
    },
    /// An offer matched: its channel is open.
    Accept {
        channel: u16,
    },
    /// More space-channel bytes the sender accepts.
    Credit {
        bytes: u32,
    },
    Ping {
        seq: u32,
    },
    Pong {
        seq: u32,
    },
    /// One channel closes (the connection stays).
    CloseChannel {
        channel: u16,
        code: String,
        reason: String,
    },
    /// The connection closes; nothing follows.
    Close {
        code: String,
        reason: String,
    },
}

impl Control {
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, CloseCode> {
        match postcard::take_from_bytes::<Control>(bytes) {
            Ok((c, [])) => Ok(c),
            _ => Err(CloseCode::Protocol),
        }
    }
}

/// The highest version both lists hold.
pub(crate) fn negotiate(theirs: &[u16]) -> Option<u16> {
    VERSIONS
        .iter()
        .copied()
        .filter(|v| theirs.contains(v))
        .max()
}
