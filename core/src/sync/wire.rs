//! [`ShardBundle`]: a signed change bundle and the shard its changes belong
//! to, as stored and sent to peers.
//!
//! The bundle's signature ([`SignedChanges`]) covers the space, the signer,
//! the control heads and the change hashes, but not the shard. So that a
//! relay cannot move a bundle into another shard's document (replicas
//! would diverge), the signer also signs a *shard binding*:
//!
//! ```text
//! "echo/shard-bundle/v1\0" ++ space (16) ++ u16le(shard) ++ bundle signature (64)
//! ```
//!
//! Wire form: `[SHARD_BUNDLE_VERSION] ++ postcard((shard, binding, bundle))`.

use serde::{Deserialize, Serialize};

use super::error::SyncError;
use crate::identity::Signature;
use crate::identity::{DeviceKey, SignedChanges};

/// Format version of [`ShardBundle::to_bytes`].
pub const SHARD_BUNDLE_VERSION: u8 = 1;
const BINDING_TAG: &[u8] = b"echo/shard-bundle/v1\0";

/// Changes of one device for one shard of a space, signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardBundle {
    pub shard: u16,
    pub bundle: SignedChanges,
    /// The signer's signature binding `shard` to `bundle`.
    pub binding: Signature,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    shard: u16,
    binding: Signature,
    bundle: SignedChanges,
}

#[derive(Serialize)]
struct WireRef<'a> {
    shard: u16,
    binding: &'a Signature,
    bundle: &'a SignedChanges,
}

fn binding_message(bundle: &SignedChanges, shard: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(BINDING_TAG.len() + 16 + 2 + 64);
    m.extend_from_slice(BINDING_TAG);
    m.extend_from_slice(bundle.space.as_bytes());
    m.extend_from_slice(&shard.to_le_bytes());
    m.extend_from_slice(&bundle.signature.to_bytes());
    m
}

impl ShardBundle {
    /// Binds `bundle` (signed by `device`) to `shard`.
    pub fn bind(device: &DeviceKey, shard: u16, bundle: SignedChanges) -> Self {
        let binding = device.sign(&binding_message(&bundle, shard));
        Self {
            shard,
            bundle,
            binding,
        }
    }

    /// Whether the shard binding is the bundle signer's signature. (The
    /// bundle itself is checked by `SpaceControl::verify_bundle`.)
    pub fn binding_is_valid(&self) -> bool {
        self.bundle
            .signer
            .verify(&binding_message(&self.bundle, self.shard), &self.binding)
    }

    /// Wire form: a version byte, then postcard.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![SHARD_BUNDLE_VERSION];
        // Serializing plain data into a Vec cannot fail.
        let body = postcard::to_allocvec(&WireRef {
            shard: self.shard,
            binding: &self.binding,
            bundle: &self.bundle,
        })
        .unwrap_or_default();
        out.extend_from_slice(&body);
        out
    }

    /// Decodes the wire form. Garbage gives an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SyncError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or_else(|| SyncError::MalformedBundle {
                reason: "empty".into(),
            })?;
        if version != SHARD_BUNDLE_VERSION {
            return Err(SyncError::UnsupportedVersion {
                found: version,
                supported: SHARD_BUNDLE_VERSION,
            });
        }
        let (wire, trailing): (Wire, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| SyncError::MalformedBundle {
                reason: e.to_string(),
            })?;
        if !trailing.is_empty() {
            return Err(SyncError::MalformedBundle {
                reason: format!("{} trailing bytes", trailing.len()),
            });
        }
        Ok(Self {
            shard: wire.shard,
            bundle: wire.bundle,
            binding: wire.binding,
        })
    }

    /// The number of changes it carries.
    pub fn len(&self) -> usize {
        self.bundle.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bundle.changes.is_empty()
    }
}
