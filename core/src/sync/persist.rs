//! Persistence of a replica's control log and accepted bundles beside its
//! space's chunks, in the same atomic batch.
//!
//! Keys (under [`space_prefix`]):
//!
//! - `space/<id>/control/<credential hash, hex>`: one credential each;
//! - `space/<id>/bundles/<seq, 12 digits>`: accepted bundles (own and
//!   received), in acceptance order, to relay after a restart;
//! - everything else belongs to the [`Space`].
//!
//! Each value is `[1] ++ crc32(payload) (4, le) ++ payload`, the payload
//! being `Credential::to_bytes` or `ShardBundle::to_bytes`. Stored data is
//! trusted like the space's chunks: it is checked for damage, not
//! re-verified. Bundles waiting for credentials are not stored (peers send
//! them again). A save seals unsealed writes first, so every change in the
//! stored space is in a stored bundle.

use super::error::SyncError;
use super::replica::Replica;
use super::wire::ShardBundle;
use crate::data::SpaceId;
use crate::identity::{Credential, CredentialKind, DeviceKey, IdentityPublicKey, SpaceControl};
use crate::model::{space_prefix, SaveReceipt, Space};
use crate::store::{self, Batch, CompactionPolicy};

const CHUNK_VERSION: u8 = 1;
const CONTROL: &str = "control/";
const BUNDLES: &str = "bundles/";

fn frame(payload: &[u8]) -> Vec<u8> {
    store::frame(CHUNK_VERSION, payload)
}

fn unframe<'a>(space: &SpaceId, key: &str, bytes: &'a [u8]) -> Result<&'a [u8], SyncError> {
    store::unframe(CHUNK_VERSION, bytes).map_err(|e| SyncError::CorruptChunk {
        space: space.to_string(),
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// A batch for the host to write atomically (space chunks, credentials,
/// bundles), and the receipt to hand back.
#[derive(Debug)]
pub struct ReplicaSave {
    pub batch: Batch,
    pub receipt: ReplicaReceipt,
}

/// What a [`ReplicaSave`] wrote; give it back to
/// [`Replica::save_done`] or [`Replica::save_failed`].
#[derive(Debug)]
pub struct ReplicaReceipt {
    space: Option<SaveReceipt>,
    credentials: usize,
    bundles: usize,
}

impl Replica {
    /// Opens a replica from the entries its host listed under
    /// [`space_prefix`] (written by [`prepare_save`](Self::prepare_save)).
    /// Stored changes count as sealed.
    pub fn open(
        id: SpaceId,
        identity: IdentityPublicKey,
        device: DeviceKey,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Result<Self, SyncError> {
        let prefix = space_prefix(&id);
        let control_prefix = format!("{prefix}{CONTROL}");
        let bundles_prefix = format!("{prefix}{BUNDLES}");
        let mut credentials = Vec::new();
        let mut bundles = Vec::new();
        let mut rest = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if key.starts_with(&control_prefix) {
                credentials.push((key, value));
            } else if key.starts_with(&bundles_prefix) {
                bundles.push((key, value));
            } else {
                rest.push((key, value));
            }
        }
        let corrupt = |key: &str, reason: String| SyncError::CorruptChunk {
            space: id.to_string(),
            key: key.to_owned(),
            reason,
        };
        let mut decoded = Vec::with_capacity(credentials.len());
        for (key, value) in &credentials {
            let cred = Credential::from_bytes(unframe(&id, key, value)?)
                .map_err(|e| corrupt(key, e.to_string()))?;
            decoded.push(cred);
        }
        let genesis = decoded
            .iter()
            .find(|c| matches!(c.kind(), CredentialKind::Genesis { .. }))
            .cloned()
            .ok_or_else(|| corrupt(&control_prefix, "no genesis credential stored".into()))?;
        let mut control = SpaceControl::from_genesis(genesis)?;
        if control.space() != id {
            return Err(SyncError::SpaceMismatch {
                control: control.space().to_string(),
                data: id.to_string(),
            });
        }
        let count = decoded.len();
        for cred in decoded {
            let hash = cred.hash();
            control
                .receive(cred)
                .map_err(|e| corrupt(&format!("{control_prefix}{hash}"), e.to_string()))?;
        }
        if control.len() != count || control.waiting() != 0 {
            return Err(corrupt(
                &control_prefix,
                format!("{count} credentials stored, {} form the log", control.len()),
            ));
        }

        let space = Space::open(id, device.actor_id(), rest)?;
        let mut replica = Replica::from_parts(space, control, identity, device)?;
        bundles.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in &bundles {
            let bundle = ShardBundle::from_bytes(unframe(&id, key, value)?)
                .map_err(|e| corrupt(key, e.to_string()))?;
            replica.keep(bundle);
        }
        replica.saved_credentials = count;
        replica.saved_bundles = replica.bundles.len();
        Ok(replica)
    }

    /// Whether anything is not in storage yet.
    pub fn has_unsaved_changes(&self) -> bool {
        self.unsealed
            || self.space.has_unsaved_changes()
            || self.saved_credentials < self.control.len()
            || self.saved_bundles < self.bundles.len()
    }

    /// Collects what changed since the last save — the space's chunks, new
    /// credentials, new accepted bundles — into one batch for the host to
    /// write atomically. Unsealed writes are sealed first (the bundles are
    /// handed out by the next [`seal`](Self::seal)). `None` when there is
    /// nothing to save.
    pub fn prepare_save(
        &mut self,
        policy: &CompactionPolicy,
    ) -> Result<Option<ReplicaSave>, SyncError> {
        if self.save_in_flight {
            return Err(SyncError::SaveInFlight);
        }
        self.seal_into_outbox()?;
        if !self.has_unsaved_changes() {
            return Ok(None);
        }
        let prefix = space_prefix(&self.space.id());
        let (mut batch, space) = match self.space.prepare_save(policy)? {
            Some(save) => (save.batch, Some(save.receipt)),
            None => (Batch::new(), None),
        };
        for cred in self.control.credentials().skip(self.saved_credentials) {
            batch.put(
                format!("{prefix}{CONTROL}{}", cred.hash()),
                frame(&cred.to_bytes()),
            );
        }
        for (seq, bundle) in self.bundles.iter().enumerate().skip(self.saved_bundles) {
            batch.put(
                format!("{prefix}{BUNDLES}{seq:012}"),
                frame(&bundle.to_bytes()),
            );
        }
        self.save_in_flight = true;
        Ok(Some(ReplicaSave {
            batch,
            receipt: ReplicaReceipt {
                space,
                credentials: self.control.len(),
                bundles: self.bundles.len(),
            },
        }))
    }

    /// The host's atomic write of a [`ReplicaSave`] succeeded.
    pub fn save_done(&mut self, receipt: ReplicaReceipt) {
        self.save_in_flight = false;
        if let Some(space) = receipt.space {
            self.space.save_done(space);
        }
        self.saved_credentials = self.saved_credentials.max(receipt.credentials);
        self.saved_bundles = self.saved_bundles.max(receipt.bundles);
    }

    /// The host's write failed: everything in it will be offered again.
    pub fn save_failed(&mut self, receipt: ReplicaReceipt) {
        self.save_in_flight = false;
        if let Some(space) = receipt.space {
            self.space.save_failed(space);
        }
    }
}
