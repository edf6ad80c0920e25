//! The invitation's key schedule and its sealed channel.
//!
//! ```text
//! T1  = SHA-256("echo/invite/v1" ‖ id ‖ guest_dh ‖ guest_nonce ‖ host_dh ‖ host_device)
//!       the host's device key signs T1: the guest knows whom it talks to
//! dh  = X25519(guest, host)
//! channel keys  = HKDF-SHA256(salt T1, ikm dh): "g2h", "h2g"
//!       every later message is ChaCha20-Poly1305 under them, nonce = its
//!       sequence number (each side counts; a skipped, replayed or
//!       reordered message fails)
//! SPAKE2 (Ed25519 group) over "echo/invite-code/v1" ‖ id ‖ code,
//!       identities "guest" ‖ guest_dh and "host" ‖ host_dh
//! T2  = SHA-256(T1 ‖ pake_guest ‖ pake_host)
//! confirm keys = HKDF-SHA256(salt T2, ikm dh ‖ K_pake)
//! confirm_host = HMAC(confirm key "host", T2), confirm_guest likewise
//! ```
//!
//! The PAKE binds the code to this invitation and to both ephemeral keys:
//! a relay that swaps keys or replays a message from another attempt
//! derives a different K, and a wrong code gives a K the other side's
//! confirmation does not match — one guess per attempt, none offline.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::code::{AuthCode, InvitationId};
use super::error::InviteError;
use crate::identity::DevicePublicKey;

pub(super) type Hash = [u8; 32];

/// The first transcript: everything before the PAKE.
pub(super) fn transcript1(
    id: &InvitationId,
    guest_dh: &[u8; 32],
    guest_nonce: &[u8; 16],
    host_dh: &[u8; 32],
    host_device: &DevicePublicKey,
) -> Hash {
    let mut h = Sha256::new();
    h.update(b"echo/invite/v1");
    h.update(id.0);
    h.update(guest_dh);
    h.update(guest_nonce);
    h.update(host_dh);
    h.update(host_device.as_bytes());
    h.finalize().into()
}

/// What the host's device key signs in `Accept`.
pub(super) fn accept_message(t1: &Hash) -> Vec<u8> {
    [b"echo/invite-accept/v1".as_slice(), t1].concat()
}

/// What the guest's device key signs in its join request.
pub(super) fn join_message(t2: &Hash) -> Vec<u8> {
    [b"echo/invite-join/v1".as_slice(), t2].concat()
}

pub(super) fn transcript2(t1: &Hash, pake_guest: &[u8], pake_host: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(t1);
    h.update((pake_guest.len() as u32).to_be_bytes());
    h.update(pake_guest);
    h.update(pake_host);
    h.finalize().into()
}

pub(super) fn pake_password(id: &InvitationId, code: &AuthCode) -> spake2::Password {
    let mut p = b"echo/invite-code/v1".to_vec();
    p.extend_from_slice(&id.0);
    p.extend_from_slice(code.as_str().as_bytes());
    spake2::Password::new(p)
}

pub(super) fn pake_identities(
    guest_dh: &[u8; 32],
    host_dh: &[u8; 32],
) -> (spake2::Identity, spake2::Identity) {
    (
        spake2::Identity::new(&[b"guest".as_slice(), guest_dh].concat()),
        spake2::Identity::new(&[b"host".as_slice(), host_dh].concat()),
    )
}

fn expand(salt: &[u8], ikm: &[u8], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit.
    hk.expand(label, out.as_mut())
        .unwrap_or_else(|_| unreachable!("HKDF output of 32 bytes"));
    out
}

fn cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    <ChaCha20Poly1305 as chacha20poly1305::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("a 32-byte key"))
}

/// Which side a party is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Guest,
    Host,
}

/// The sealed channel over signaling: one key per direction, sequence
/// numbers as nonces.
pub(super) struct Channel {
    send: ChaCha20Poly1305,
    recv: ChaCha20Poly1305,
    sent: u64,
    received: u64,
}

impl Channel {
    pub(super) fn new(side: Side, t1: &Hash, dh: &[u8; 32]) -> Self {
        let g2h = expand(t1, dh, b"echo/invite/g2h");
        let h2g = expand(t1, dh, b"echo/invite/h2g");
        let (send, recv) = match side {
            Side::Guest => (g2h, h2g),
            Side::Host => (h2g, g2h),
        };
        Channel {
            send: cipher(&send),
            recv: cipher(&recv),
            sent: 0,
            received: 0,
        }
    }

    fn nonce(seq: u64) -> Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&seq.to_be_bytes());
        Nonce::from(n)
    }

    /// Seals the next message; returns its sequence number and ciphertext.
    pub(super) fn seal(&mut self, plaintext: &[u8]) -> (u64, Vec<u8>) {
        let seq = self.sent;
        self.sent += 1;
        let sealed = self
            .send
            .encrypt(
                &Self::nonce(seq),
                Payload {
                    msg: plaintext,
                    aad: b"echo/invite/v1",
                },
            )
            .unwrap_or_default();
        (seq, sealed)
    }

    /// Opens the next message; only the next sequence number opens.
    pub(super) fn open(&mut self, seq: u64, sealed: &[u8]) -> Result<Vec<u8>, InviteError> {
        if seq != self.received {
            return Err(InviteError::Protocol("a message out of sequence"));
        }
        let plain = self
            .recv
            .decrypt(
                &Self::nonce(seq),
                Payload {
                    msg: sealed,
                    aad: b"echo/invite/v1",
                },
            )
            .map_err(|_| InviteError::Protocol("a message that does not open"))?;
        self.received += 1;
        Ok(plain)
    }
}

/// Keys from the PAKE: each side's confirmation.
pub(super) struct Confirmation {
    host: Zeroizing<[u8; 32]>,
    guest: Zeroizing<[u8; 32]>,
    pub(super) t2: Hash,
}

impl Confirmation {
    pub(super) fn new(t2: Hash, dh: &[u8; 32], pake_key: &[u8]) -> Self {
        let ikm = Zeroizing::new([dh.as_slice(), pake_key].concat());
        Confirmation {
            host: expand(&t2, &ikm, b"echo/invite/confirm-host"),
            guest: expand(&t2, &ikm, b"echo/invite/confirm-guest"),
            t2,
        }
    }

    fn mac(key: &[u8; 32], t2: &Hash) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(t2);
        mac.finalize().into_bytes().into()
    }

    pub(super) fn tag(&self, side: Side) -> [u8; 32] {
        match side {
            Side::Host => Self::mac(&self.host, &self.t2),
            Side::Guest => Self::mac(&self.guest, &self.t2),
        }
    }

    /// Checks the other side's tag in constant time.
    pub(super) fn check(&self, side: Side, tag: &[u8; 32]) -> bool {
        let key = match side {
            Side::Host => &self.host,
            Side::Guest => &self.guest,
        };
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(&self.t2);
        mac.verify_slice(tag).is_ok()
    }
}
