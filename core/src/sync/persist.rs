//! Persistence of a replica beside its space's chunks, in the same atomic
//! batch.
//!
//! Keys (under [`space_prefix`]):
//!
//! - `space/<id>/control/<credential hash, hex>`: one credential each;
//! - `space/<id>/bundles/<seq, 12 digits>`: accepted bundles, compact
//!   (headers only: their changes are in the space's documents), in
//!   acceptance order;
//! - `space/<id>/sealed`: the data heads up to which this device's changes
//!   are sealed (later own changes are sealed when a peer is to get them);
//! - `space/<id>/peers/<device>`: per shard, the heads that peer
//!   acknowledged holding (the baseline of the next sync with it);
//! - `space/<id>/evidence/<seq, 12 digits>`: equivocations seen;
//! - everything else belongs to the [`Space`].
//!
//! Each value is framed (`store::frame`: magic, version, CRC-32). Stored
//! data is trusted like the space's chunks: checked for damage, not
//! re-verified. Bundles waiting for credentials are not stored (peers send
//! them again). Bundles of format 1 (which carried their changes and a
//! separate shard binding) are not read: the changes are in the documents,
//! this device's are sealed again, and the keys are deleted by the next
//! save.

use std::collections::BTreeSet;

use automerge::ChangeHash;

use super::error::SyncError;
use super::evidence::Equivocation;
use super::replica::Replica;
use crate::data::SpaceId;
use crate::identity::{
    Credential, CredentialKind, DeviceKey, DevicePublicKey, IdentityPublicKey, SignedChanges,
    SpaceControl,
};
use crate::model::{space_prefix, Heads, SaveReceipt, Space};
use crate::store::{self, Batch, CompactionPolicy};

/// Format of the framed values (credentials, sealed heads, baselines,
/// evidence).
const CHUNK_VERSION: u8 = 1;
/// Format of stored bundles: 2 = compact headers; 1 = the old full form.
const BUNDLE_VERSION: u8 = 2;
const LEGACY_BUNDLE_VERSION: u8 = 1;
const CONTROL: &str = "control/";
const BUNDLES: &str = "bundles/";
const SEALED: &str = "sealed";
const PEERS: &str = "peers/";
const EVIDENCE: &str = "evidence/";

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
    generation: u64,
    evidence: usize,
    baselines: BTreeSet<DevicePublicKey>,
    /// Whether the sealed heads were written, and as of which seal.
    sealed: Option<u64>,
    legacy: usize,
}

impl ReplicaReceipt {
    /// The space's stored chunk bytes once this save is done
    /// ([`Space::stored_bytes_after`](crate::model::Space::stored_bytes_after)).
    pub fn stored_bytes_after(&self, replica: &Replica) -> u64 {
        match &self.space {
            Some(receipt) => replica.space().stored_bytes_after(receipt),
            None => replica.space().stored_bytes(),
        }
    }
}

fn heads_to_bytes(entries: &[(u16, ChangeHash)]) -> Vec<u8> {
    let plain: Vec<(u16, [u8; 32])> = entries.iter().map(|(s, h)| (*s, h.0)).collect();
    postcard::to_allocvec(&plain).unwrap_or_default()
}

impl Replica {
    /// Opens a replica from the entries its host listed under
    /// [`space_prefix`] (written by [`prepare_save`](Self::prepare_save)),
    /// and those under [`documents_prefix`] if it read them already;
    /// otherwise they are handed over later
    /// ([`attach_documents`](Self::attach_documents)).
    ///
    /// [`documents_prefix`]: crate::model::documents_prefix
    pub fn open(
        id: SpaceId,
        identity: IdentityPublicKey,
        device: DeviceKey,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Result<Self, SyncError> {
        let prefix = space_prefix(&id);
        let sub = |name: &str| format!("{prefix}{name}");
        let (control_prefix, bundles_prefix, sealed_key, peers_prefix, evidence_prefix) = (
            sub(CONTROL),
            sub(BUNDLES),
            sub(SEALED),
            sub(PEERS),
            sub(EVIDENCE),
        );
        let corrupt = |key: &str, reason: String| SyncError::CorruptChunk {
            space: id.to_string(),
            key: key.to_owned(),
            reason,
        };
        let unframe = |key: &str, version: u8, bytes: &'_ [u8]| -> Result<Vec<u8>, SyncError> {
            store::unframe(version, bytes)
                .map(<[u8]>::to_vec)
                .map_err(|e| corrupt(key, e.to_string()))
        };
        let mut credentials = Vec::new();
        let mut bundles = Vec::new();
        let mut legacy = Vec::new();
        let mut sealed = None;
        let mut peers = Vec::new();
        let mut evidence = Vec::new();
        let mut rest = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if key.starts_with(&control_prefix) {
                let bytes = unframe(&key, CHUNK_VERSION, &value)?;
                let cred =
                    Credential::from_bytes(&bytes).map_err(|e| corrupt(&key, e.to_string()))?;
                credentials.push(cred);
            } else if key.starts_with(&bundles_prefix) {
                if store::unframe(LEGACY_BUNDLE_VERSION, &value).is_ok() {
                    legacy.push(key);
                } else {
                    bundles.push((key, value));
                }
            } else if key == sealed_key {
                let bytes = unframe(&key, CHUNK_VERSION, &value)?;
                let plain: Vec<(u16, [u8; 32])> =
                    postcard::from_bytes(&bytes).map_err(|e| corrupt(&key, e.to_string()))?;
                sealed = Some(Heads {
                    entries: plain.into_iter().map(|(s, h)| (s, ChangeHash(h))).collect(),
                });
            } else if let Some(device) = key.strip_prefix(&peers_prefix) {
                let device: DevicePublicKey = device
                    .parse()
                    .map_err(|_| corrupt(&key, "not a device key".into()))?;
                let bytes = unframe(&key, CHUNK_VERSION, &value)?;
                let plain: Vec<(u16, Vec<[u8; 32]>)> =
                    postcard::from_bytes(&bytes).map_err(|e| corrupt(&key, e.to_string()))?;
                peers.push((device, plain));
            } else if key.starts_with(&evidence_prefix) {
                let bytes = unframe(&key, CHUNK_VERSION, &value)?;
                let e: Equivocation =
                    postcard::from_bytes(&bytes).map_err(|e| corrupt(&key, e.to_string()))?;
                evidence.push((key, e));
            } else {
                rest.push((key, value));
            }
        }
        let genesis = credentials
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
        let count = credentials.len();
        for cred in credentials {
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
            let bytes = unframe(key, BUNDLE_VERSION, value)?;
            let header =
                SignedChanges::from_bytes(&bytes).map_err(|e| corrupt(key, e.to_string()))?;
            replica.keep(header, None);
        }
        replica.saved_bundles = replica.bundles.len();
        replica.stored_bundles = replica.bundles.len();
        replica.saved_credentials = count;
        replica.log_checked = count;
        for (device, shards) in peers {
            replica.baselines.insert(
                device,
                shards
                    .into_iter()
                    .map(|(s, hs)| (s, hs.into_iter().map(ChangeHash).collect()))
                    .collect(),
            );
        }
        evidence.sort_by(|a, b| a.0.cmp(&b.0));
        replica.evidence = evidence.into_iter().map(|(_, e)| e).collect();
        replica.saved_evidence = replica.evidence.len();
        replica.legacy_keys = legacy;
        replica.sealed_saved = sealed.is_some() && replica.legacy_keys.is_empty();
        replica.sealed = sealed.unwrap_or_default();
        // Own changes after the sealed heads (or anything, when the heads
        // were never stored) may be unsealed: the next seal looks.
        for shard in 0..replica.space.shard_count() {
            let mut at_seal = replica.sealed.of_shard(shard);
            at_seal.sort();
            if replica.space.shard_heads(shard)? != at_seal {
                replica.unsealed = true;
                break;
            }
        }
        Ok(replica)
    }

    /// Whether anything is not in storage yet.
    pub fn has_unsaved_changes(&self) -> bool {
        self.space.has_unsaved_changes()
            || self.saved_credentials < self.control.len()
            || self.saved_bundles < self.bundles.len()
            || self.stored_bundles > self.bundles.len()
            || self.saved_evidence < self.evidence.len()
            || !self.baselines_unsaved.is_empty()
            || !self.sealed_saved
            || !self.legacy_keys.is_empty()
    }

    /// Collects what changed since the last save — the space's chunks, new
    /// credentials, bundles, baselines and evidence — into one batch for
    /// the host to write atomically. With `seal`, this device's unsealed
    /// changes are sealed first (do it when a peer is to be sent them, so
    /// their bundle is stored before it leaves). `None` when there is
    /// nothing to save.
    pub fn prepare_save(
        &mut self,
        policy: &CompactionPolicy,
        seal: bool,
    ) -> Result<Option<ReplicaSave>, SyncError> {
        if self.save_in_flight {
            return Err(SyncError::SaveInFlight);
        }
        if seal {
            self.seal()?;
        }
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
                store::frame(CHUNK_VERSION, &cred.to_bytes()),
            );
        }
        for key in &self.legacy_keys {
            batch.delete(key.clone());
        }
        for (seq, bundle) in self.bundles.iter().enumerate().skip(self.saved_bundles) {
            batch.put(
                format!("{prefix}{BUNDLES}{seq:012}"),
                store::frame(BUNDLE_VERSION, &bundle.to_bytes()),
            );
        }
        // After bundles were voided the list is shorter: drop the tail.
        for seq in self.bundles.len()..self.stored_bundles {
            batch.delete(format!("{prefix}{BUNDLES}{seq:012}"));
        }
        for (seq, e) in self.evidence.iter().enumerate().skip(self.saved_evidence) {
            batch.put(
                format!("{prefix}{EVIDENCE}{seq:012}"),
                store::frame(CHUNK_VERSION, &postcard::to_allocvec(e).unwrap_or_default()),
            );
        }
        for peer in &self.baselines_unsaved {
            let plain: Vec<(u16, Vec<[u8; 32]>)> = self
                .baselines
                .get(peer)
                .map(|b| {
                    b.iter()
                        .map(|(s, hs)| (*s, hs.iter().map(|h| h.0).collect()))
                        .collect()
                })
                .unwrap_or_default();
            batch.put(
                format!("{prefix}{PEERS}{peer}"),
                store::frame(
                    CHUNK_VERSION,
                    &postcard::to_allocvec(&plain).unwrap_or_default(),
                ),
            );
        }
        let sealed = (!self.sealed_saved).then_some(self.seal_count);
        if sealed.is_some() {
            batch.put(
                format!("{prefix}{SEALED}"),
                store::frame(CHUNK_VERSION, &heads_to_bytes(&self.sealed.entries)),
            );
        }
        self.save_in_flight = true;
        Ok(Some(ReplicaSave {
            batch,
            receipt: ReplicaReceipt {
                space,
                credentials: self.control.len(),
                bundles: self.bundles.len(),
                generation: self.generation,
                evidence: self.evidence.len(),
                baselines: std::mem::take(&mut self.baselines_unsaved),
                sealed,
                legacy: self.legacy_keys.len(),
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
        if receipt.generation == self.generation {
            self.saved_bundles = self.saved_bundles.max(receipt.bundles);
            self.stored_bundles = receipt.bundles.max(self.saved_bundles);
        }
        self.saved_evidence = self.saved_evidence.max(receipt.evidence);
        if receipt.sealed == Some(self.seal_count) {
            self.sealed_saved = true;
        }
        self.legacy_keys
            .drain(..receipt.legacy.min(self.legacy_keys.len()));
    }

    /// The host's write failed: everything in it will be offered again.
    pub fn save_failed(&mut self, receipt: ReplicaReceipt) {
        self.save_in_flight = false;
        if let Some(space) = receipt.space {
            self.space.save_failed(space);
        }
        self.baselines_unsaved.extend(receipt.baselines);
        if receipt.sealed.is_some() {
            self.sealed_saved = false;
        }
    }
}
