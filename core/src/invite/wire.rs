//! The invitation's messages, as they travel over signaling (postcard;
//! the host's signaling client carries them as opaque data).
//!
//! ```text
//! guest                                   host
//!   Hello(id, guest_dh, nonce)      ──►
//!                                   ◄──   Accept(host_dh, host_device, sig(T1))
//!                                          … or Refuse(reason), in the clear
//!   ── sealed channel from here (keys from X25519, see keys.rs) ──
//!   Pake(spake_guest)               ──►    (the host counts the attempt, durably)
//!                                   ◄──   PakeReply(spake_host, confirm_host)
//!   Confirm(confirm_guest, join?)   ──►    join: certificate + device sig(T2),
//!                                          only once confirm_host checked out
//!                                   ◄──   Admitted(space export, host identity, role)
//!                                          … or WrongCode(left) / Ended(reason)
//! ```

use serde::{Deserialize, Serialize};

use super::code::InvitationId;
use super::error::{InviteError, Refusal};
use crate::identity::{DeviceCertificate, DevicePublicKey, IdentityPublicKey, Role, Signature};

/// Largest invitation message accepted (a space export travels in one).
pub const MAX_INVITE_MESSAGE: usize = 24 * 1024;

/// A message between guest and host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteWire {
    Hello {
        invitation: InvitationId,
        guest_dh: [u8; 32],
        nonce: [u8; 16],
    },
    Accept {
        host_dh: [u8; 32],
        host_device: DevicePublicKey,
        signature: Signature,
    },
    Refuse {
        reason: Refusal,
    },
    /// A [`Sealed`] message on the channel.
    Sealed {
        seq: u64,
        body: Vec<u8>,
    },
}

impl InviteWire {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, InviteError> {
        if bytes.len() > MAX_INVITE_MESSAGE {
            return Err(InviteError::Protocol("a message over the size limit"));
        }
        postcard::from_bytes(bytes)
            .map_err(|_| InviteError::Protocol("a message that does not decode"))
    }
}

/// What travels inside the sealed channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Sealed {
    Pake {
        message: Vec<u8>,
    },
    PakeReply {
        message: Vec<u8>,
        confirm: [u8; 32],
    },
    Confirm {
        confirm: [u8; 32],
        /// Who the guest is; sent only when the host's confirmation
        /// checked out (the code was right).
        join: Option<Box<Join>>,
    },
    WrongCode {
        attempts_left: u8,
    },
    Admitted {
        export: String,
        host_identity: IdentityPublicKey,
        role: Role,
    },
    Ended {
        reason: Refusal,
    },
}

/// Who the guest is: its device certificate (identity ↔ device, both
/// signed) and the device's signature over the PAKE transcript, which
/// proves it holds the device key in this very exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    pub certificate: DeviceCertificate,
    pub signature: Signature,
    pub display_name: Option<String>,
}
