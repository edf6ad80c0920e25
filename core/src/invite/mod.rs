//! Invitations: how a second person's vault joins a space (sans-IO).
//!
//! The host's vault makes an [`InviteCode`] (no secret inside) and waits
//! on the rendezvous topic the code names; the guest's vault finds it
//! through signaling. An X25519 exchange makes a sealed channel the host's
//! device key signs for; the 6-digit [`AuthCode`] the host's vault shows
//! is typed by the guest and checked with SPAKE2 bound to the invitation
//! and both keys, with explicit key confirmation; then the guest presents
//! its identity and device certificate, the host admits it with the
//! invitation's role and sends the space, and both sync it over the peer
//! protocol. The protocol and its key schedule: [`wire`] and `keys.rs`;
//! the choice of SPAKE2: `docs/adr/0005-invitations.md`.
//!
//! - [`code`]: the invite code, the authorization code, the topic;
//! - [`host`] / [`guest`]: one attempt, on each side, as a state machine;
//! - the vault keeps the invitations and counts attempts durably
//!   (`vault/invitations.rs`).

pub mod code;
mod error;
pub mod guest;
pub mod host;
mod keys;
pub mod wire;

#[cfg(test)]
mod tests;

pub use code::{AuthCode, DeviceFingerprint, InvitationId, InviteCode, InviteKind};
pub use error::{InviteError, Refusal};
pub use guest::{GuestSession, GuestState, GuestStep};
pub use host::{HostSession, HostState, HostStep, VerifiedGuest};
pub use wire::InviteWire;
