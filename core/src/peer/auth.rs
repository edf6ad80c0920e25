//! Peer authentication: each side proves it holds its device key, over
//! this very channel, in this very session.
//!
//! After the `Hello`s (each with 32 fresh random bytes, the *nonce*), each
//! side sends `Auth { certificate, signature }`: its device certificate
//! (signed by its identity key and by the device key: the credential chain
//! identity → device) and a device signature over the transcript
//!
//! ```text
//! "echo/peer-auth/v1\0" ++ u16le(version) ++ channel binding (32)
//!   ++ signer's nonce (32) ++ verifier's nonce (32) ++ identity (32) ++ device (32)
//! ```
//!
//! - The **nonces** of both sides make every transcript new: a recorded
//!   `Auth` replayed in another session names the wrong verifier nonce.
//! - The nonces' **order** (signer's first) makes the two signatures of a
//!   session different, so one cannot be reflected back as the other.
//! - The **channel binding** names the secure channel underneath: for
//!   WebRTC, both DTLS certificate fingerprints from the SDP
//!   ([`ChannelBinding::from_fingerprints`]). A signaling server that swaps
//!   descriptions to sit in the middle runs two DTLS sessions with
//!   different fingerprints, so each side's signature fails on the other.
//!
//! What a verified `Auth` proves: the peer holds the device key of the
//! certificate, and the certificate's identity vouched for that device.
//! Whether that device may read or write a space is each space's control
//! log's decision (`sync`), made per channel.

use sha2::{Digest, Sha256};

use crate::identity::{
    DeviceCertificate, DeviceKey, DevicePublicKey, IdentityPublicKey, Signature,
};

const TRANSCRIPT_TAG: &[u8] = b"echo/peer-auth/v1\0";

/// The identity of the secure channel a connection runs over, handed in by
/// the host. Both ends of one channel compute the same value; two
/// different channels (a man in the middle's two halves) do not.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelBinding([u8; 32]);

impl std::fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelBinding(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

fn length_prefixed(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u32).to_le_bytes());
    h.update(bytes);
}

impl ChannelBinding {
    /// For WebRTC: the DTLS certificate fingerprints of both sides, as the
    /// SDP `a=fingerprint` lines give them (e.g. `sha-256 AB:CD:..`). The
    /// order does not matter (both ends compute the same value); case and
    /// surrounding spaces are ignored.
    pub fn from_fingerprints(a: &str, b: &str) -> Self {
        let norm = |s: &str| s.trim().to_ascii_lowercase();
        let (mut x, mut y) = (norm(a), norm(b));
        if x > y {
            std::mem::swap(&mut x, &mut y);
        }
        let mut h = Sha256::new();
        h.update(b"echo/channel-binding/webrtc-dtls/v1\0");
        length_prefixed(&mut h, x.as_bytes());
        length_prefixed(&mut h, y.as_bytes());
        ChannelBinding(h.finalize().into())
    }

    /// Any other secure channel: `kind` names the mechanism (e.g.
    /// `"noise-nn-handshake-hash"`), `material` is what both ends share
    /// about this channel only (a handshake hash, a TLS exporter value).
    pub fn derive(kind: &str, material: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"echo/channel-binding/v1\0");
        length_prefixed(&mut h, kind.as_bytes());
        length_prefixed(&mut h, material);
        ChannelBinding(h.finalize().into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ChannelBinding(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Who is at the other end of an authenticated connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub identity: IdentityPublicKey,
    pub device: DevicePublicKey,
    pub certificate: DeviceCertificate,
}

pub(crate) fn transcript(
    version: u16,
    binding: &ChannelBinding,
    signer_nonce: &[u8; 32],
    verifier_nonce: &[u8; 32],
    identity: &IdentityPublicKey,
    device: &DevicePublicKey,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(TRANSCRIPT_TAG.len() + 2 + 32 * 5);
    m.extend_from_slice(TRANSCRIPT_TAG);
    m.extend_from_slice(&version.to_le_bytes());
    m.extend_from_slice(binding.as_bytes());
    m.extend_from_slice(signer_nonce);
    m.extend_from_slice(verifier_nonce);
    m.extend_from_slice(identity.as_bytes());
    m.extend_from_slice(device.as_bytes());
    m
}

/// Signs this side's proof.
pub(crate) fn prove(
    device: &DeviceKey,
    certificate: &DeviceCertificate,
    version: u16,
    binding: &ChannelBinding,
    our_nonce: &[u8; 32],
    their_nonce: &[u8; 32],
) -> Signature {
    device.sign(&transcript(
        version,
        binding,
        our_nonce,
        their_nonce,
        &certificate.identity,
        &certificate.device,
    ))
}

/// Why a peer's proof was refused (the detail of `peer.auth_failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthRefusal {
    BadCertificate,
    BadSignature,
    SelfConnection,
}

impl AuthRefusal {
    pub(crate) fn detail(self) -> &'static str {
        match self {
            AuthRefusal::BadCertificate => {
                "the device certificate is not signed by both its identity and its device"
            }
            AuthRefusal::BadSignature => {
                "the device signature does not cover this session (wrong key, a replayed proof, or a channel another party sits in)"
            }
            AuthRefusal::SelfConnection => "the other end is this same device",
        }
    }
}

/// Checks the other side's proof.
pub(crate) fn verify(
    certificate: &DeviceCertificate,
    signature: &Signature,
    version: u16,
    binding: &ChannelBinding,
    their_nonce: &[u8; 32],
    our_nonce: &[u8; 32],
    our_device: &DevicePublicKey,
) -> Result<PeerIdentity, AuthRefusal> {
    if !certificate.is_valid() {
        return Err(AuthRefusal::BadCertificate);
    }
    let m = transcript(
        version,
        binding,
        their_nonce,
        our_nonce,
        &certificate.identity,
        &certificate.device,
    );
    if !certificate.device.verify(&m, signature) {
        return Err(AuthRefusal::BadSignature);
    }
    if certificate.device == *our_device {
        return Err(AuthRefusal::SelfConnection);
    }
    Ok(PeerIdentity {
        identity: certificate.identity,
        device: certificate.device,
        certificate: certificate.clone(),
    })
}
