//! Signed change bundles: the unit of signature for a space's data.
//!
//! A device signs the Automerge changes it made since its last flush as one
//! bundle (see `docs/membership.md`, "Signed change bundles"). The signature
//! covers a domain tag, the format version, the space, the signer, the
//! credential-log heads the signer had seen, and the ordered hashes of the
//! changes:
//!
//! ```text
//! "echo/signed-changes/v1\0" ++ version ++ space (16) ++ signer (32)
//!   ++ u32le(#heads) ++ heads (32 each) ++ u32le(#changes) ++ change hashes (32 each)
//! ```

use std::collections::VecDeque;

use automerge::Change;
use serde::{Deserialize, Serialize};

use super::credential::{CredentialHash, MAX_PARENTS};
use super::error::{IdentityError, Rejection};
use super::keys::{DeviceKey, DevicePublicKey, Signature};
use super::log::DeviceStatus;
use super::space::SpaceControl;
use crate::data::SpaceId;

/// Format version of [`SignedChanges`].
pub const BUNDLE_VERSION: u8 = 1;
/// The most changes one bundle may carry.
pub const MAX_BUNDLE_CHANGES: usize = 1 << 20;
const TAG: &[u8] = b"echo/signed-changes/v1\0";

/// Automerge changes of one device, signed together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChanges {
    pub version: u8,
    pub space: SpaceId,
    pub signer: DevicePublicKey,
    /// The credential-log heads the signer had seen, sorted and distinct:
    /// the point of the control log the changes were made at.
    pub control_heads: Vec<CredentialHash>,
    /// `automerge::Change::raw_bytes()` of each change, in order.
    pub changes: Vec<Vec<u8>>,
    pub signature: Signature,
}

pub(crate) fn message(
    space: &SpaceId,
    signer: &DevicePublicKey,
    control_heads: &[CredentialHash],
    hashes: impl ExactSizeIterator<Item = automerge::ChangeHash>,
) -> Vec<u8> {
    let mut m =
        Vec::with_capacity(TAG.len() + 1 + 16 + 32 + 8 + 32 * (control_heads.len() + hashes.len()));
    m.extend_from_slice(TAG);
    m.push(BUNDLE_VERSION);
    m.extend_from_slice(space.as_bytes());
    m.extend_from_slice(signer.as_bytes());
    m.extend_from_slice(&(control_heads.len() as u32).to_le_bytes());
    for h in control_heads {
        m.extend_from_slice(h.as_bytes());
    }
    m.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
    for h in hashes {
        m.extend_from_slice(&h.0);
    }
    m
}

impl DeviceKey {
    /// Signs `changes` (made by this device, i.e. with actor id
    /// [`DeviceKey::actor_id`]) for `space`, at the control-log point
    /// `control_heads` (the heads of the space's log this device has).
    pub fn sign_changes(
        &self,
        space: SpaceId,
        mut control_heads: Vec<CredentialHash>,
        changes: &[Change],
    ) -> Result<SignedChanges, IdentityError> {
        let signer = self.public_key();
        let actor = signer.actor_id();
        if changes.is_empty() || changes.len() > MAX_BUNDLE_CHANGES {
            return Err(IdentityError::UnsignableChange {
                index: 0,
                reason: format!("a bundle holds 1 to {MAX_BUNDLE_CHANGES} changes"),
            });
        }
        for (index, change) in changes.iter().enumerate() {
            if *change.actor_id() != actor {
                return Err(IdentityError::UnsignableChange {
                    index,
                    reason: format!(
                        "it was made by actor {}, not by this device; use the device's actor id",
                        change.actor_id()
                    ),
                });
            }
        }
        control_heads.sort_unstable();
        control_heads.dedup();
        let m = message(
            &space,
            &signer,
            &control_heads,
            changes.iter().map(|c| c.hash()),
        );
        Ok(SignedChanges {
            version: BUNDLE_VERSION,
            space,
            signer,
            control_heads,
            changes: changes.iter().map(|c| c.raw_bytes().to_vec()).collect(),
            signature: self.sign(&m),
        })
    }

    /// Like [`sign_changes`](Self::sign_changes), from changes' raw bytes.
    pub fn sign_change_bytes(
        &self,
        space: SpaceId,
        control_heads: Vec<CredentialHash>,
        changes: Vec<Vec<u8>>,
    ) -> Result<SignedChanges, IdentityError> {
        let decoded = changes
            .into_iter()
            .enumerate()
            .map(|(index, bytes)| {
                Change::from_bytes(bytes).map_err(|e| IdentityError::UnsignableChange {
                    index,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.sign_changes(space, control_heads, &decoded)
    }
}

impl SignedChanges {
    /// Wire form: postcard; the first byte is the version.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Rejection> {
        match bytes.first() {
            None => {
                return Err(Rejection::Malformed {
                    reason: "empty".into(),
                })
            }
            Some(&v) if v != BUNDLE_VERSION => {
                return Err(Rejection::UnsupportedVersion {
                    found: v,
                    supported: BUNDLE_VERSION,
                })
            }
            Some(_) => {}
        }
        let (bundle, rest): (SignedChanges, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| Rejection::Malformed {
                reason: e.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(Rejection::Malformed {
                reason: format!("{} trailing bytes", rest.len()),
            });
        }
        Ok(bundle)
    }

    /// Total size of the changes, in bytes.
    pub fn byte_len(&self) -> usize {
        self.changes.iter().map(Vec::len).sum::<usize>() + 128 + 32 * self.control_heads.len()
    }
}

impl SpaceControl {
    /// Verifies a bundle against this space's control log. On success,
    /// returns the decoded changes, ready for `apply_changes`. The rules:
    ///
    /// 1. well-formed, this space, a supported version;
    /// 2. every change decodes, and the signature over the changes' hashes
    ///    is the signer's;
    /// 3. every change's actor id is the signer's key;
    /// 4. in the membership state of the bundle's `control_heads` cut, the
    ///    signer is an authorized, unrevoked device of a member whose role
    ///    writes.
    ///
    /// Unknown control heads give [`Rejection::MissingCredentials`]
    /// (retryable: keep the bundle in [`PendingChanges`]).
    pub fn verify_bundle(&self, bundle: &SignedChanges) -> Result<Vec<Change>, Rejection> {
        if bundle.version != BUNDLE_VERSION {
            return Err(Rejection::UnsupportedVersion {
                found: bundle.version,
                supported: BUNDLE_VERSION,
            });
        }
        if bundle.space != self.space() {
            return Err(Rejection::WrongSpace {
                expected: self.space().to_string(),
                found: bundle.space.to_string(),
            });
        }
        if bundle.changes.is_empty() || bundle.changes.len() > MAX_BUNDLE_CHANGES {
            return Err(Rejection::Malformed {
                reason: format!(
                    "{} changes; a bundle holds 1 to {MAX_BUNDLE_CHANGES}",
                    bundle.changes.len()
                ),
            });
        }
        if bundle.control_heads.is_empty()
            || bundle.control_heads.len() > MAX_PARENTS
            || bundle.control_heads.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(Rejection::Malformed {
                reason: format!(
                    "control heads must be 1 to {MAX_PARENTS} distinct hashes in sorted order"
                ),
            });
        }
        let mut changes = Vec::with_capacity(bundle.changes.len());
        for (index, bytes) in bundle.changes.iter().enumerate() {
            let change =
                Change::from_bytes(bytes.clone()).map_err(|e| Rejection::MalformedChange {
                    index,
                    reason: e.to_string(),
                })?;
            changes.push(change);
        }
        let m = message(
            &bundle.space,
            &bundle.signer,
            &bundle.control_heads,
            changes.iter().map(|c| c.hash()),
        );
        if !bundle.signer.verify(&m, &bundle.signature) {
            return Err(Rejection::BadSignature);
        }
        let actor = bundle.signer.actor_id();
        if let Some((index, c)) = changes
            .iter()
            .enumerate()
            .find(|(_, c)| *c.actor_id() != actor)
        {
            return Err(Rejection::ActorMismatch {
                index,
                actor: c.actor_id().to_string(),
            });
        }
        let state = self
            .state_at(&bundle.control_heads)
            .map_err(|missing| Rejection::MissingCredentials { missing })?;
        let identity = match state.device(&bundle.signer) {
            Some(DeviceStatus::Authorized { identity }) => identity,
            Some(DeviceStatus::Revoked { .. }) => {
                return Err(Rejection::DeviceRevoked {
                    device: bundle.signer,
                })
            }
            Some(DeviceStatus::Conflicted) | None => {
                return Err(Rejection::DeviceNotAuthorized {
                    device: bundle.signer,
                })
            }
        };
        match state.role(&identity) {
            None => Err(Rejection::NotAMember { identity }),
            Some(role) if !role.can_write() => Err(Rejection::ReadOnly { identity, role }),
            Some(_) => Ok(changes),
        }
    }
}

/// What became of a bundle offered to [`PendingChanges::offer`].
#[derive(Debug)]
pub enum Verdict {
    /// Verified: apply these changes, store and relay the bundle.
    Accepted(Vec<Change>),
    /// Waits for credentials; released by [`PendingChanges::release_ready`].
    Waiting,
    /// Not applied, not stored, not relayed; report it.
    Rejected(Rejection),
}

/// Bundles released by [`PendingChanges::release_ready`].
#[derive(Debug, Default)]
pub struct Released {
    pub accepted: Vec<(SignedChanges, Vec<Change>)>,
    pub rejected: Vec<(SignedChanges, Rejection)>,
}

/// Bundles that arrived before the credentials that justify them, bounded
/// in count and bytes. Bundles from signers the log has never seen may take
/// at most a quarter of the count, so keys made up by a peer cannot crowd
/// out the bundles of known devices.
#[derive(Debug)]
pub struct PendingChanges {
    max_bundles: usize,
    max_bytes: usize,
    bytes: usize,
    strangers: usize,
    /// Each bundle with whether its signer was a known device.
    queue: VecDeque<(SignedChanges, bool)>,
}

impl Default for PendingChanges {
    fn default() -> Self {
        Self::new(
            PendingChanges::DEFAULT_MAX_BUNDLES,
            PendingChanges::DEFAULT_MAX_BYTES,
        )
    }
}

impl PendingChanges {
    pub const DEFAULT_MAX_BUNDLES: usize = 4096;
    pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

    pub fn new(max_bundles: usize, max_bytes: usize) -> Self {
        Self {
            max_bundles,
            max_bytes,
            bytes: 0,
            strangers: 0,
            queue: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues a bundle without looking at its signer (counted as a
    /// stranger's). Fails with [`IdentityError::PendingChangesFull`] when
    /// the bound is reached (the bundle is dropped; sync the control log,
    /// then ask for the data again). Prefer [`offer`](Self::offer).
    pub fn push(&mut self, bundle: SignedChanges) -> Result<(), IdentityError> {
        self.enqueue(bundle, false)
    }

    fn enqueue(&mut self, bundle: SignedChanges, known: bool) -> Result<(), IdentityError> {
        let size = bundle.byte_len();
        if self.queue.len() >= self.max_bundles
            || self.bytes + size > self.max_bytes
            || (!known && self.strangers >= self.max_bundles.div_ceil(4))
        {
            return Err(IdentityError::PendingChangesFull {
                bundles: self.queue.len(),
                bytes: self.bytes,
            });
        }
        self.bytes += size;
        self.strangers += usize::from(!known);
        self.queue.push_back((bundle, known));
        Ok(())
    }

    fn forget(&mut self, bundle: &SignedChanges, known: bool) {
        self.bytes -= bundle.byte_len();
        self.strangers -= usize::from(!known);
    }

    /// Verifies `bundle`; queues it when its credentials are missing.
    pub fn offer(
        &mut self,
        control: &SpaceControl,
        bundle: SignedChanges,
    ) -> Result<Verdict, IdentityError> {
        match control.verify_bundle(&bundle) {
            Ok(changes) => Ok(Verdict::Accepted(changes)),
            Err(r) if r.is_retryable() => {
                let known = control.state().device(&bundle.signer).is_some();
                self.enqueue(bundle, known)?;
                Ok(Verdict::Waiting)
            }
            Err(r) => Ok(Verdict::Rejected(r)),
        }
    }

    /// Re-verifies waiting bundles (call after credentials arrived). Those
    /// still missing credentials stay; the others come out accepted or
    /// rejected, in arrival order.
    pub fn release_ready(&mut self, control: &SpaceControl) -> Released {
        let mut out = Released::default();
        let mut keep = VecDeque::with_capacity(self.queue.len());
        let queue = std::mem::take(&mut self.queue);
        for (bundle, known) in queue {
            if bundle.control_heads.iter().any(|h| !control.contains(h)) {
                keep.push_back((bundle, known));
                continue;
            }
            match control.verify_bundle(&bundle) {
                Ok(changes) => {
                    self.forget(&bundle, known);
                    out.accepted.push((bundle, changes));
                }
                Err(r) if r.is_retryable() => keep.push_back((bundle, known)),
                Err(r) => {
                    self.forget(&bundle, known);
                    out.rejected.push((bundle, r));
                }
            }
        }
        self.queue = keep;
        out
    }
}
