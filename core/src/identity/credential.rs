//! Signed credentials: the entries of a credential log (a space's control log
//! or an identity's HALO log), hash-linked to their parents.
//!
//! Wire form (version 2): postcard of `body` (which starts with its version
//! byte) followed by the 64 signature bytes. The signature covers
//! `"echo/credential/v1\0" ++ postcard(body)`; the credential's hash is
//! SHA-256 of `"echo/credential-hash/v1\0" ++ wire form`. Decoding accepts
//! only the canonical encoding (re-encoding must give the same bytes), so a
//! credential has exactly one hash.
//!
//! Version 2 added the body's [`Watermark`] (removals, demotions and
//! revocations name the party's last changes the issuer had accepted; see
//! `docs/membership.md`). Version 1 credentials (no watermark) still decode,
//! verify and hash exactly as they were written.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::IdentityError;
use super::keys::{
    DeviceCertificate, DeviceKey, DevicePublicKey, IdentityKey, IdentityPublicKey, Signature,
};
use crate::data::SpaceId;

/// Format version of credentials this build writes.
pub const CREDENTIAL_VERSION: u8 = 2;
/// The first format (no watermark), still read.
const V1: u8 = 1;
/// The most devices a watermark names.
pub const MAX_WATERMARK_DEVICES: usize = 64;
/// The most parents one credential may name.
pub const MAX_PARENTS: usize = 64;
/// The largest encoded credential accepted.
pub const MAX_CREDENTIAL_BYTES: usize = 4096;

const SIGN_TAG: &[u8] = b"echo/credential/v1\0";
const HASH_TAG: &[u8] = b"echo/credential-hash/v1\0";

/// The hash naming a credential.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CredentialHash([u8; 32]);

impl CredentialHash {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cred({})", &data_encoding::HEXLOWER.encode(&self.0[..6]))
    }
}

/// A member's role in a space, from least to most privileged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Reads; cannot write or admit.
    Reader,
    /// Reads and writes data; cannot admit.
    Editor,
    /// Writes; admits, changes roles and removes members (up to admin).
    Admin,
    /// The space's creator. Given only by genesis; cannot be removed.
    Owner,
}

impl Role {
    /// Whether this role may change the space's data.
    pub fn can_write(self) -> bool {
        self >= Role::Editor
    }
    /// Whether this role may admit, change roles and remove members.
    pub fn can_manage(self) -> bool {
        self >= Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        })
    }
}

/// Which log a credential belongs to. Part of the signed body, so a
/// credential cannot be replayed into another log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogId {
    /// A space's control log.
    Space(SpaceId),
    /// An identity's own log (HALO): its devices.
    Halo(IdentityPublicKey),
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogId::Space(id) => write!(f, "space {id}"),
            LogId::Halo(id) => write!(f, "identity log of {id}"),
        }
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a credential states.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CredentialKind {
    /// The first credential of a log. In a space: the issuer becomes owner.
    /// In a HALO log: the issuer is the identity. May authorize the device
    /// that signed it (so a device can create a space for its identity).
    Genesis { device: Option<DeviceCertificate> },
    /// Admits `member` with `role`.
    Admit {
        member: IdentityPublicKey,
        role: Role,
    },
    /// Changes the role of a member.
    ChangeRole {
        member: IdentityPublicKey,
        role: Role,
    },
    /// Removes a member (an admin or owner removes; anyone may leave).
    Remove { member: IdentityPublicKey },
    /// Authorizes the certified device for its identity in this log.
    AuthorizeDevice { certificate: DeviceCertificate },
    /// Revokes a device in this log, for good.
    RevokeDevice {
        identity: IdentityPublicKey,
        device: DevicePublicKey,
    },
}

impl CredentialKind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            CredentialKind::Genesis { .. } => "genesis",
            CredentialKind::Admit { .. } => "admitting a member",
            CredentialKind::ChangeRole { .. } => "changing a role",
            CredentialKind::Remove { .. } => "removing a member",
            CredentialKind::AuthorizeDevice { .. } => "authorizing a device",
            CredentialKind::RevokeDevice { .. } => "revoking a device",
        }
    }
}

/// The last changes of a party that the issuer of a removal, demotion or
/// revocation had accepted: per device of the party, per shard, the highest
/// sequence number. A bundle of such a device that does not name the
/// credential in its control heads may carry no change beyond it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Watermark {
    /// Sorted by device, distinct.
    pub devices: Vec<DeviceWatermark>,
}

/// One device's part of a [`Watermark`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceWatermark {
    pub device: DevicePublicKey,
    /// `(shard, highest accepted sequence number)`, sorted by shard,
    /// distinct; a shard not listed allows none.
    pub shards: Vec<(u16, u64)>,
}

impl Watermark {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The highest sequence number of `device` in `shard` it allows (0:
    /// none).
    pub fn max_seq(&self, device: &DevicePublicKey, shard: u16) -> u64 {
        self.devices
            .binary_search_by(|d| d.device.cmp(device))
            .ok()
            .and_then(|i| {
                let shards = &self.devices[i].shards;
                shards
                    .binary_search_by(|(s, _)| s.cmp(&shard))
                    .ok()
                    .map(|j| shards[j].1)
            })
            .unwrap_or(0)
    }

    fn check(&self) -> Result<(), String> {
        if self.devices.len() > MAX_WATERMARK_DEVICES {
            return Err(format!(
                "a watermark names at most {MAX_WATERMARK_DEVICES} devices"
            ));
        }
        if self.devices.windows(2).any(|w| w[0].device >= w[1].device) {
            return Err("watermark devices are not sorted and distinct".into());
        }
        for d in &self.devices {
            if d.shards.len() > usize::from(crate::model::MAX_SHARD_COUNT) {
                return Err("a watermark names more shards than a space has".into());
            }
            if d.shards.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err("watermark shards are not sorted and distinct".into());
            }
        }
        Ok(())
    }
}

/// The signed content of a credential.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CredentialBody {
    pub version: u8,
    pub log: LogId,
    /// Hashes of the credentials this one follows, sorted and distinct.
    /// Empty only for genesis.
    pub parents: Vec<CredentialHash>,
    /// The identity on whose behalf this is issued.
    pub issuer: IdentityPublicKey,
    /// The key that signed: the issuer's identity key, or one of its devices.
    pub signer: DevicePublicKey,
    pub kind: CredentialKind,
    /// For removals, demotions to reader and revocations: the party's last
    /// accepted changes (version 2; empty otherwise, and in version 1).
    pub watermark: Watermark,
}

/// A version 1 body, as it was written (no watermark).
#[derive(Serialize)]
struct BodyV1Ref<'a> {
    version: u8,
    log: &'a LogId,
    parents: &'a Vec<CredentialHash>,
    issuer: &'a IdentityPublicKey,
    signer: &'a DevicePublicKey,
    kind: &'a CredentialKind,
}

#[derive(Deserialize)]
struct BodyV1 {
    version: u8,
    log: LogId,
    parents: Vec<CredentialHash>,
    issuer: IdentityPublicKey,
    signer: DevicePublicKey,
    kind: CredentialKind,
}

/// The body's encoding in its own version.
fn body_bytes(body: &CredentialBody) -> Result<Vec<u8>, IdentityError> {
    if body.version == V1 {
        encode(
            "credential body",
            &BodyV1Ref {
                version: body.version,
                log: &body.log,
                parents: &body.parents,
                issuer: &body.issuer,
                signer: &body.signer,
                kind: &body.kind,
            },
        )
    } else {
        encode("credential body", body)
    }
}

fn wire_bytes(body: &CredentialBody, signature: &Signature) -> Result<Vec<u8>, IdentityError> {
    let mut out = body_bytes(body)?;
    out.extend_from_slice(&encode("signature", signature)?);
    Ok(out)
}

/// A signed credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    body: CredentialBody,
    signature: Signature,
    hash: CredentialHash,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("hash", &self.hash)
            .field("kind", &self.body.kind)
            .field("issuer", &self.body.issuer)
            .field("parents", &self.body.parents)
            .finish()
    }
}

/// Who issues a credential: an identity key itself, or a device on behalf of
/// its identity.
#[derive(Clone, Copy, Debug)]
pub enum Issuer<'a> {
    Identity(&'a IdentityKey),
    Device {
        key: &'a DeviceKey,
        identity: IdentityPublicKey,
    },
}

impl<'a> Issuer<'a> {
    pub fn device(key: &'a DeviceKey, identity: IdentityPublicKey) -> Self {
        Issuer::Device { key, identity }
    }
    pub fn identity(&self) -> IdentityPublicKey {
        match self {
            Issuer::Identity(key) => key.public_key(),
            Issuer::Device { identity, .. } => *identity,
        }
    }
    pub fn signer(&self) -> DevicePublicKey {
        match self {
            Issuer::Identity(key) => key.public_key().as_signer(),
            Issuer::Device { key, .. } => key.public_key(),
        }
    }
    fn sign(&self, message: &[u8]) -> Signature {
        match self {
            Issuer::Identity(key) => key.sign(message),
            Issuer::Device { key, .. } => key.sign(message),
        }
    }
}

impl<'a> From<&'a IdentityKey> for Issuer<'a> {
    fn from(key: &'a IdentityKey) -> Self {
        Issuer::Identity(key)
    }
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, IdentityError> {
    postcard::to_allocvec(value).map_err(|e| IdentityError::Encode {
        what,
        reason: e.to_string(),
    })
}

fn signing_message(body: &CredentialBody) -> Result<Vec<u8>, IdentityError> {
    let encoded = body_bytes(body)?;
    let mut message = Vec::with_capacity(SIGN_TAG.len() + encoded.len());
    message.extend_from_slice(SIGN_TAG);
    message.extend_from_slice(&encoded);
    Ok(message)
}

fn hash_of(wire: &[u8]) -> CredentialHash {
    let mut hasher = Sha256::new();
    hasher.update(HASH_TAG);
    hasher.update(wire);
    CredentialHash(hasher.finalize().into())
}

impl Credential {
    /// Signs a new credential. Parents are sorted and de-duplicated.
    pub fn issue(
        log: LogId,
        parents: Vec<CredentialHash>,
        issuer: Issuer<'_>,
        kind: CredentialKind,
    ) -> Result<Self, IdentityError> {
        Self::issue_with(log, parents, issuer, kind, Watermark::default())
    }

    /// Signs a new credential carrying a watermark (removals, demotions,
    /// revocations).
    pub fn issue_with(
        log: LogId,
        mut parents: Vec<CredentialHash>,
        issuer: Issuer<'_>,
        kind: CredentialKind,
        watermark: Watermark,
    ) -> Result<Self, IdentityError> {
        parents.sort_unstable();
        parents.dedup();
        let body = CredentialBody {
            version: CREDENTIAL_VERSION,
            log,
            parents,
            issuer: issuer.identity(),
            signer: issuer.signer(),
            kind,
            watermark,
        };
        let signature = issuer.sign(&signing_message(&body)?);
        let wire = wire_bytes(&body, &signature)?;
        Ok(Self {
            hash: hash_of(&wire),
            body,
            signature,
        })
    }

    /// Decodes a credential from its wire form. Checks the encoding only;
    /// signatures and authority are checked by the log that receives it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let malformed = |reason: String| IdentityError::MalformedCredential { reason };
        if bytes.len() > MAX_CREDENTIAL_BYTES {
            return Err(malformed(format!(
                "{} bytes is more than the {MAX_CREDENTIAL_BYTES} allowed",
                bytes.len()
            )));
        }
        let (body, rest): (CredentialBody, &[u8]) = match bytes.first() {
            None => return Err(malformed("empty".into())),
            Some(&V1) => {
                let (b, rest): (BodyV1, &[u8]) =
                    postcard::take_from_bytes(bytes).map_err(|e| malformed(e.to_string()))?;
                let body = CredentialBody {
                    version: b.version,
                    log: b.log,
                    parents: b.parents,
                    issuer: b.issuer,
                    signer: b.signer,
                    kind: b.kind,
                    watermark: Watermark::default(),
                };
                (body, rest)
            }
            Some(&CREDENTIAL_VERSION) => {
                postcard::take_from_bytes(bytes).map_err(|e| malformed(e.to_string()))?
            }
            Some(&v) => {
                return Err(IdentityError::UnsupportedCredentialVersion {
                    found: v,
                    supported: CREDENTIAL_VERSION,
                })
            }
        };
        let (signature, rest): (Signature, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed(format!("{} trailing bytes", rest.len())));
        }
        let canonical = wire_bytes(&body, &signature)?;
        if canonical != bytes {
            return Err(malformed("not in canonical encoding".into()));
        }
        Ok(Self {
            hash: hash_of(bytes),
            body,
            signature,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding a decoded or issued credential into a Vec cannot fail.
        wire_bytes(&self.body, &self.signature).unwrap_or_default()
    }

    pub fn hash(&self) -> CredentialHash {
        self.hash
    }
    pub fn body(&self) -> &CredentialBody {
        &self.body
    }
    pub fn kind(&self) -> &CredentialKind {
        &self.body.kind
    }
    pub fn parents(&self) -> &[CredentialHash] {
        &self.body.parents
    }
    pub fn issuer(&self) -> IdentityPublicKey {
        self.body.issuer
    }
    pub fn signer(&self) -> DevicePublicKey {
        self.body.signer
    }
    pub fn log(&self) -> LogId {
        self.body.log
    }
    pub fn watermark(&self) -> &Watermark {
        &self.body.watermark
    }

    /// Checks what can be checked without the log: version, log id,
    /// canonical parents, signature, certificates, genesis shape.
    pub(crate) fn check_structure(&self, expected: LogId) -> Result<(), IdentityError> {
        let hash = self.hash;
        let body = &self.body;
        if body.version != CREDENTIAL_VERSION && body.version != V1 {
            return Err(IdentityError::UnsupportedCredentialVersion {
                found: body.version,
                supported: CREDENTIAL_VERSION,
            });
        }
        if body.log != expected {
            return Err(IdentityError::WrongLog {
                hash,
                expected: expected.to_string(),
                found: body.log.to_string(),
            });
        }
        if body.parents.len() > MAX_PARENTS {
            return Err(IdentityError::MalformedCredential {
                reason: format!(
                    "{} parents, at most {MAX_PARENTS} allowed",
                    body.parents.len()
                ),
            });
        }
        if body.parents.windows(2).any(|w| w[0] >= w[1]) {
            return Err(IdentityError::MalformedCredential {
                reason: "parents are not sorted and distinct".into(),
            });
        }
        let message = signing_message(body)?;
        if !body.signer.verify(&message, &self.signature) {
            return Err(IdentityError::BadCredentialSignature { hash });
        }
        if !body.watermark.is_empty() {
            let negative = matches!(
                body.kind,
                CredentialKind::Remove { .. }
                    | CredentialKind::RevokeDevice { .. }
                    | CredentialKind::ChangeRole { .. }
            );
            if !negative {
                return Err(IdentityError::MalformedCredential {
                    reason: format!("{} carries no watermark", body.kind.name()),
                });
            }
            body.watermark
                .check()
                .map_err(|reason| IdentityError::MalformedCredential { reason })?;
        }
        match &body.kind {
            CredentialKind::Genesis { device } => {
                if !body.parents.is_empty() {
                    return Err(IdentityError::BadGenesis {
                        hash,
                        reason: "a genesis has no parents",
                    });
                }
                if let LogId::Halo(identity) = body.log {
                    if identity != body.issuer {
                        return Err(IdentityError::BadGenesis {
                            hash,
                            reason: "an identity log is founded by its own identity",
                        });
                    }
                }
                if let Some(cert) = device {
                    if !cert.is_valid() {
                        return Err(IdentityError::BadDeviceCertificate { hash });
                    }
                    if cert.identity != body.issuer {
                        return Err(IdentityError::BadGenesis {
                            hash,
                            reason: "the genesis device belongs to another identity",
                        });
                    }
                }
                let by_identity = body.signer == body.issuer.as_signer();
                let by_device = device.as_ref().is_some_and(|c| c.device == body.signer);
                if !by_identity && !by_device {
                    return Err(IdentityError::BadGenesis {
                        hash,
                        reason: "a genesis is signed by its issuer's identity key or by the device it certifies",
                    });
                }
            }
            kind => {
                if body.parents.is_empty() {
                    return Err(IdentityError::MalformedCredential {
                        reason: format!("{} needs at least one parent", kind.name()),
                    });
                }
                if let CredentialKind::AuthorizeDevice { certificate } = kind {
                    if !certificate.is_valid() {
                        return Err(IdentityError::BadDeviceCertificate { hash });
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_and_check() {
        let owner = IdentityKey::generate().unwrap();
        let space = LogId::Space(SpaceId::random());
        let genesis = Credential::issue(
            space,
            vec![],
            (&owner).into(),
            CredentialKind::Genesis { device: None },
        )
        .unwrap();
        genesis.check_structure(space).unwrap();
        let bytes = genesis.to_bytes();
        assert_eq!(bytes[0], CREDENTIAL_VERSION);
        let decoded = Credential::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, genesis);
        assert_eq!(decoded.hash(), genesis.hash());

        let other = LogId::Space(SpaceId::random());
        assert_eq!(
            genesis.check_structure(other).unwrap_err().code(),
            "identity.wrong_log"
        );

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Credential::from_bytes(&trailing).is_err());
        assert!(Credential::from_bytes(&[]).is_err());
        assert_eq!(
            Credential::from_bytes(&[7, 1, 2]).unwrap_err().code(),
            "identity.unsupported_credential_version"
        );
    }

    #[test]
    fn tampered_credentials_fail_their_signature() {
        let owner = IdentityKey::generate().unwrap();
        let space = LogId::Space(SpaceId::random());
        let genesis = Credential::issue(
            space,
            vec![],
            (&owner).into(),
            CredentialKind::Genesis { device: None },
        )
        .unwrap();
        let member = IdentityKey::generate().unwrap().public_key();
        let admit = Credential::issue(
            space,
            vec![genesis.hash()],
            (&owner).into(),
            CredentialKind::Admit {
                member,
                role: Role::Reader,
            },
        )
        .unwrap();
        let mut body = admit.body().clone();
        body.kind = CredentialKind::Admit {
            member,
            role: Role::Admin,
        };
        let forged = Credential {
            hash: admit.hash(),
            body,
            signature: admit.signature,
        };
        assert_eq!(
            forged.check_structure(space).unwrap_err().code(),
            "identity.bad_credential_signature"
        );
    }
}
