//! The invite code a host shares, and the 6-digit authorization code its
//! vault shows.
//!
//! An invite code holds no secret: a format version, a random invitation
//! id (whose keyed hash is the rendezvous topic on signaling), the
//! fingerprint of the host device's key (so the guest knows whom it must
//! meet), when it expires, what it invites to and with which role. Its
//! text is `echo-invite-` + unpadded lower-case base32 of the postcard
//! encoding, so it survives copying through chat apps and URLs.

use data_encoding::{BASE32_NOPAD, HEXLOWER, HEXLOWER_PERMISSIVE};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::InviteError;
use crate::identity::{DevicePublicKey, Role};
use crate::rng::EngineRng;
use crate::vault::{Millis, Topic};

/// The format this build writes.
pub const CODE_VERSION: u8 = 1;
const PREFIX: &str = "echo-invite-";
/// Longest text accepted as a code (a code is ~90 characters).
pub const MAX_CODE_TEXT: usize = 512;

/// An invitation's random id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InvitationId(pub [u8; 16]);

impl InvitationId {
    pub fn random(rng: &mut EngineRng) -> Self {
        InvitationId(rng.bytes())
    }

    /// The signaling topic host and guest meet on: HMAC-SHA256 keyed by
    /// the id, so the server learns nothing it could link to a code.
    pub fn topic(&self) -> Topic {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(b"echo/invite-topic/v1");
        Topic(mac.finalize().into_bytes().into())
    }

    pub fn to_hex(&self) -> String {
        HEXLOWER.encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = HEXLOWER_PERMISSIVE.decode(text.as_bytes()).ok()?;
        bytes.try_into().ok().map(InvitationId)
    }
}

/// The first 16 bytes of SHA-256 over a device's public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceFingerprint(pub [u8; 16]);

impl DeviceFingerprint {
    pub fn of(device: &DevicePublicKey) -> Self {
        let digest = Sha256::digest(device.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        DeviceFingerprint(out)
    }
}

/// What an invitation invites to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteKind {
    /// Membership of one space (which one, the guest learns on success).
    Space,
}

/// An invite code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCode {
    pub id: InvitationId,
    pub host: DeviceFingerprint,
    /// Wall-clock milliseconds (the host's clock) after which the host
    /// refuses it.
    pub expires_at: Millis,
    pub kind: InviteKind,
    pub role: Role,
}

impl InviteCode {
    pub fn to_text(&self) -> String {
        let mut bytes = vec![CODE_VERSION];
        // Serializing plain data into a Vec cannot fail.
        bytes.extend(postcard::to_stdvec(self).unwrap_or_default());
        format!(
            "{PREFIX}{}",
            BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
        )
    }

    /// Reads a code as a person pasted it: surrounding spaces, any case,
    /// or a whole invitation link (`…#echo-invite-…` / `?code=…`).
    pub fn from_text(text: &str) -> Result<Self, InviteError> {
        if text.len() > MAX_CODE_TEXT {
            return Err(InviteError::BadCode("too long".into()));
        }
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let start = lower
            .find(PREFIX)
            .ok_or_else(|| InviteError::BadCode("it does not start with echo-invite-".into()))?;
        let body: String = lower[start + PREFIX.len()..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let bytes = BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| InviteError::BadCode("it is cut short or mistyped".into()))?;
        match bytes.first() {
            Some(&CODE_VERSION) => {}
            Some(&v) => return Err(InviteError::UnsupportedVersion(v)),
            None => return Err(InviteError::BadCode("it is empty".into())),
        }
        let (code, rest) = postcard::take_from_bytes::<InviteCode>(&bytes[1..])
            .map_err(|_| InviteError::BadCode("it is cut short or mistyped".into()))?;
        if !rest.is_empty() {
            return Err(InviteError::BadCode("it has extra characters".into()));
        }
        Ok(code)
    }
}

/// The 6-digit authorization code a host's vault shows, drawn from the
/// engine's generator (seeded from the OS).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthCode(String);

impl std::fmt::Debug for AuthCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthCode(******)")
    }
}

impl AuthCode {
    pub fn random(rng: &mut EngineRng) -> Self {
        AuthCode(format!("{:06}", rng.below(1_000_000)))
    }

    /// A code as a person typed it: six digits, spaces and dashes ignored.
    pub fn parse(text: &str) -> Result<Self, InviteError> {
        let digits: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit()) {
            Ok(AuthCode(digits))
        } else {
            Err(InviteError::BadAuthCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
