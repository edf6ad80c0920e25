//! Peer connections: what two vaults say to each other over one ordered,
//! reliable byte pipe — a WebRTC data channel, a TCP stream, or the
//! simulator's link. Sans-IO: bytes and time in, bytes, events and the next
//! deadline out. Transport-agnostic: the host hands in the pipe's *channel
//! binding* (for WebRTC, both DTLS fingerprints) and moves bytes.
//!
//! | file | concept |
//! |---|---|
//! | `frame.rs` | frames (≤ 16 KiB, channel, FIN) and the stream decoder |
//! | `wire.rs` | the connection's own messages (channel 0) and version negotiation |
//! | `auth.rs` | the channel binding, the signed transcript, [`PeerIdentity`] |
//! | `offer.rs` | spaces offered as per-connection keyed tags |
//! | `connection.rs` | [`Connection`]: handshake, channels, credit, heartbeats, close |
//! | `error.rs` | [`CloseReason`] and its stable codes (`peer.*`) |
//!
//! # A connection's life
//!
//! ```text
//! A                                             B
//! Hello {versions, nonce_a, window} ──►  ◄── Hello {versions, nonce_b, window}
//! Auth {cert_a, sig_a(transcript)}  ──►  ◄── Auth {cert_b, sig_b(transcript)}
//!          (both: Authenticated(peer); nothing about spaces before this)
//! Offer {(ch, tag(S))...}           ──►      B computes tag(S') of its spaces
//!                                   ◄──      Accept {ch}      (S = S': channel open)
//! space messages on ch (sync)       ◄─►      Credit, Ping/Pong on channel 0
//! Close {code, reason}              ──►
//! ```
//!
//! **Invariants.** Nothing but `Hello` and `Auth` is accepted before the
//! peer is authenticated; a space is offered only to a peer the space's
//! control log names a member (the caller's rule, see `vault`), as a tag
//! only holders of the space can match; a peer never makes us hold more
//! than one frame of undecoded bytes, `max_partial` bytes of unfinished
//! messages and `window` bytes beyond what we granted; garbage closes that
//! connection only, with a reason.

mod auth;
mod connection;
mod error;
mod frame;
mod offer;
mod wire;

#[cfg(test)]
mod tests;

pub use auth::{ChannelBinding, PeerIdentity};
pub use connection::{
    ChannelId, ConnEvent, Connection, Millis, PeerConfig, SendError, MAX_OFFERS_PER_MESSAGE,
};
pub use error::{CloseCode, CloseReason, MAX_DETAIL};
pub use frame::{MAX_FRAME, MAX_PAYLOAD};
pub use offer::OfferTag;
pub use wire::VERSIONS;
