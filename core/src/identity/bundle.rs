//! Signed change bundles: the unit of signature for a space's data.
//!
//! A device signs the Automerge changes it made since its last seal as one
//! bundle (see `docs/membership.md`, "Signed change bundles"). A bundle
//! names its changes as **runs**: per shard, the signer's changes with
//! consecutive sequence numbers `first_seq .. first_seq + count`. The
//! signature covers a domain tag, the format version, the space, the
//! signer, the credential-log heads the signer had seen, and each run with
//! the hashes of its changes in order:
//!
//! ```text
//! "echo/signed-changes/v2\0" ++ version ++ space (16) ++ signer (32)
//!   ++ u32le(#heads) ++ heads (32 each)
//!   ++ u32le(#runs) ++ for each run: u16le(shard) ++ u64le(first_seq) ++ u32le(count)
//!                                    ++ change hashes (32 each)
//! ```
//!
//! The shard is inside the signature, so a bundle cannot be moved to
//! another shard's document; the hashes are not in the bundle's own bytes
//! ([`SignedChanges`] is the compact form), because every holder can
//! compute them from the changes: from their bytes when a bundle travels
//! with its changes, or from a document that holds them (a snapshot, or
//! storage). So a space's history is stored once, in its documents, and a
//! bundle costs about 100 bytes plus 12 per shard.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use super::credential::{CredentialHash, MAX_PARENTS};
use super::error::{IdentityError, Rejection};
use super::keys::{DeviceKey, DevicePublicKey, Signature};
use super::log::DeviceStatus;
use super::space::SpaceControl;
use crate::data::SpaceId;

/// Format version of [`SignedChanges`].
pub const BUNDLE_VERSION: u8 = 2;
/// The most changes one bundle may carry.
pub const MAX_BUNDLE_CHANGES: usize = 1 << 20;
/// The most runs one bundle may have (one per shard).
pub const MAX_RUNS: usize = crate::model::MAX_SHARD_COUNT as usize;
const TAG: &[u8] = b"echo/signed-changes/v2\0";

/// The signer's changes to one shard, consecutive in sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Run {
    pub shard: u16,
    /// Sequence number (Automerge's per-actor counter in that shard's
    /// document) of the first change.
    pub first_seq: u64,
    pub count: u32,
}

impl Run {
    /// Sequence number of the last change.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count) - 1
    }

    pub fn contains(&self, seq: u64) -> bool {
        seq >= self.first_seq && seq <= self.last_seq()
    }
}

/// Automerge changes of one device, signed together (compact form: runs,
/// no change bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedChanges {
    pub version: u8,
    pub space: SpaceId,
    pub signer: DevicePublicKey,
    /// The credential-log heads the signer had seen, sorted and distinct:
    /// the point of the control log the changes were made at.
    pub control_heads: Vec<CredentialHash>,
    /// Sorted by shard, one per shard.
    pub runs: Vec<Run>,
    pub signature: Signature,
}

/// One change of a run, as the verifier sees it (computed from the
/// change's bytes, or read from a document holding it).
#[derive(Clone, Copy, Debug)]
pub struct ChangeRef<'a> {
    pub hash: ChangeHash,
    /// The change's Automerge actor id.
    pub actor: &'a [u8],
    pub seq: u64,
}

fn message<'h>(
    space: &SpaceId,
    signer: &DevicePublicKey,
    control_heads: &[CredentialHash],
    runs: &[Run],
    hashes: impl Fn(usize) -> Box<dyn Iterator<Item = ChangeHash> + 'h>,
) -> Vec<u8> {
    let total: usize = runs.iter().map(|r| r.count as usize).sum();
    let mut m = Vec::with_capacity(
        TAG.len() + 57 + 32 * control_heads.len() + 14 * runs.len() + 32 * total,
    );
    m.extend_from_slice(TAG);
    m.push(BUNDLE_VERSION);
    m.extend_from_slice(space.as_bytes());
    m.extend_from_slice(signer.as_bytes());
    m.extend_from_slice(&(control_heads.len() as u32).to_le_bytes());
    for h in control_heads {
        m.extend_from_slice(h.as_bytes());
    }
    m.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    for (i, run) in runs.iter().enumerate() {
        m.extend_from_slice(&run.shard.to_le_bytes());
        m.extend_from_slice(&run.first_seq.to_le_bytes());
        m.extend_from_slice(&run.count.to_le_bytes());
        for h in hashes(i) {
            m.extend_from_slice(&h.0);
        }
    }
    m
}

/// The signed message of a bundle (tests forge and tamper with it).
#[cfg(test)]
pub(crate) fn message_for(
    space: &SpaceId,
    signer: &DevicePublicKey,
    control_heads: &[CredentialHash],
    runs: &[(Run, Vec<ChangeHash>)],
) -> Vec<u8> {
    let plain: Vec<Run> = runs.iter().map(|(r, _)| *r).collect();
    message(space, signer, control_heads, &plain, |i| {
        Box::new(runs[i].1.clone().into_iter())
    })
}

impl DeviceKey {
    /// Signs runs of this device's changes for `space`, at the control-log
    /// point `control_heads`. Each run comes with its changes' hashes, in
    /// sequence order; runs are sorted by shard here.
    pub fn sign_changes(
        &self,
        space: SpaceId,
        mut control_heads: Vec<CredentialHash>,
        mut runs: Vec<(Run, Vec<ChangeHash>)>,
    ) -> Result<SignedChanges, IdentityError> {
        let unsignable = |reason: String| IdentityError::UnsignableChange { index: 0, reason };
        runs.sort_by_key(|(r, _)| r.shard);
        let total: usize = runs.iter().map(|(r, _)| r.count as usize).sum();
        if runs.is_empty() || runs.len() > MAX_RUNS || total > MAX_BUNDLE_CHANGES {
            return Err(unsignable(format!(
                "a bundle holds 1 to {MAX_RUNS} runs and at most {MAX_BUNDLE_CHANGES} changes"
            )));
        }
        if runs.windows(2).any(|w| w[0].0.shard == w[1].0.shard) {
            return Err(unsignable("two runs for one shard".into()));
        }
        for (run, hashes) in &runs {
            if run.count == 0 || run.first_seq == 0 || hashes.len() != run.count as usize {
                return Err(unsignable(format!(
                    "run of shard {} names {} changes from seq {} but {} hashes",
                    run.shard,
                    run.count,
                    run.first_seq,
                    hashes.len()
                )));
            }
        }
        control_heads.sort_unstable();
        control_heads.dedup();
        let signer = self.public_key();
        let plain: Vec<Run> = runs.iter().map(|(r, _)| *r).collect();
        let m = message(&space, &signer, &control_heads, &plain, |i| {
            Box::new(runs[i].1.clone().into_iter())
        });
        Ok(SignedChanges {
            version: BUNDLE_VERSION,
            space,
            signer,
            control_heads,
            runs: plain,
            signature: self.sign(&m),
        })
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
        bundle.check_shape()?;
        Ok(bundle)
    }

    /// Number of changes it signs.
    pub fn change_count(&self) -> usize {
        self.runs.iter().map(|r| r.count as usize).sum()
    }

    /// The run of `shard`, if it has one.
    pub fn run_of(&self, shard: u16) -> Option<&Run> {
        self.runs
            .binary_search_by_key(&shard, |r| r.shard)
            .ok()
            .map(|i| &self.runs[i])
    }

    /// The bundle's identity: its signature (a signer never signs two
    /// bundles alike).
    pub fn key(&self) -> [u8; 64] {
        self.signature.to_bytes()
    }

    /// What can be checked without changes or a log: version, sizes,
    /// sorted distinct heads and runs.
    pub fn check_shape(&self) -> Result<(), Rejection> {
        if self.version != BUNDLE_VERSION {
            return Err(Rejection::UnsupportedVersion {
                found: self.version,
                supported: BUNDLE_VERSION,
            });
        }
        let malformed = |reason: String| Err(Rejection::Malformed { reason });
        if self.control_heads.is_empty()
            || self.control_heads.len() > MAX_PARENTS
            || self.control_heads.windows(2).any(|w| w[0] >= w[1])
        {
            return malformed(format!(
                "control heads must be 1 to {MAX_PARENTS} distinct hashes in sorted order"
            ));
        }
        if self.runs.is_empty()
            || self.runs.len() > MAX_RUNS
            || self.runs.windows(2).any(|w| w[0].shard >= w[1].shard)
        {
            return malformed(format!(
                "a bundle has 1 to {MAX_RUNS} runs, sorted by shard, one per shard"
            ));
        }
        if self.runs.iter().any(|r| {
            r.count == 0
                || r.first_seq == 0
                || r.first_seq.checked_add(u64::from(r.count)).is_none()
        }) {
            return malformed("a run names 1 or more changes from sequence number 1 on".into());
        }
        if self.change_count() > MAX_BUNDLE_CHANGES {
            return malformed(format!(
                "{} changes; a bundle holds at most {MAX_BUNDLE_CHANGES}",
                self.change_count()
            ));
        }
        Ok(())
    }
}

impl SpaceControl {
    /// Verifies a bundle against this space's control log, given its
    /// changes (per run, in sequence order). The rules, in order:
    ///
    /// 1. well-formed, this space, a supported version;
    /// 2. each run's changes are as many as it names, made by the signer's
    ///    actor, with the sequence numbers it names;
    /// 3. the signature over the runs and their changes' hashes is the
    ///    signer's;
    /// 4. in the membership state of the bundle's `control_heads` cut, the
    ///    signer is an authorized, unrevoked device of a member whose role
    ///    writes;
    /// 5. for every removal, demotion or revocation of the signer in the
    ///    current log that the bundle's cut does not hold, no change is
    ///    beyond that credential's watermark (a removed party cannot write
    ///    on by naming control heads from before its removal).
    ///
    /// Unknown control heads give [`Rejection::MissingCredentials`]
    /// (retryable: keep the bundle until the credentials arrive).
    pub fn verify_bundle(
        &self,
        bundle: &SignedChanges,
        changes: &[Vec<ChangeRef<'_>>],
    ) -> Result<(), Rejection> {
        bundle.check_shape()?;
        if bundle.space != self.space() {
            return Err(Rejection::WrongSpace {
                expected: self.space().to_string(),
                found: bundle.space.to_string(),
            });
        }
        if changes.len() != bundle.runs.len() {
            return Err(Rejection::Malformed {
                reason: format!(
                    "{} runs but changes for {}",
                    bundle.runs.len(),
                    changes.len()
                ),
            });
        }
        let actor = bundle.signer.as_bytes();
        let mut index = 0;
        for (run, refs) in bundle.runs.iter().zip(changes) {
            if refs.len() != run.count as usize {
                return Err(Rejection::Malformed {
                    reason: format!(
                        "the run of shard {} names {} changes, {} came",
                        run.shard,
                        run.count,
                        refs.len()
                    ),
                });
            }
            for (i, c) in refs.iter().enumerate() {
                if c.actor != actor {
                    return Err(Rejection::ActorMismatch {
                        index,
                        actor: hex(c.actor),
                    });
                }
                if c.seq != run.first_seq + i as u64 {
                    return Err(Rejection::Malformed {
                        reason: format!(
                            "change {index} has sequence number {}, the run names {}",
                            c.seq,
                            run.first_seq + i as u64
                        ),
                    });
                }
                index += 1;
            }
        }
        let m = message(
            &bundle.space,
            &bundle.signer,
            &bundle.control_heads,
            &bundle.runs,
            |i| {
                Box::new(
                    changes[i]
                        .iter()
                        .map(|c| c.hash)
                        .collect::<Vec<_>>()
                        .into_iter(),
                )
            },
        );
        if !bundle.signer.verify(&m, &bundle.signature) {
            return Err(Rejection::BadSignature);
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
            None => return Err(Rejection::NotAMember { identity }),
            Some(role) if !role.can_write() => return Err(Rejection::ReadOnly { identity, role }),
            Some(_) => {}
        }
        drop(state);
        for cred in self.restrictions_of(&identity, &bundle.signer) {
            if self.cut_contains(&bundle.control_heads, &cred.hash()) {
                continue;
            }
            let wm = cred.watermark();
            for run in &bundle.runs {
                let allowed = wm.max_seq(&bundle.signer, run.shard);
                if run.last_seq() > allowed {
                    return Err(Rejection::BeyondWatermark {
                        by: cred.hash(),
                        shard: run.shard,
                        seq: run.first_seq.max(allowed + 1),
                    });
                }
            }
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}
