//! What a peer is sent: where this replica stands (digests, heads), the
//! bundles a peer lacks with their changes, and snapshots.

use std::collections::BTreeSet;

use automerge::ChangeHash;

use super::error::SyncError;
use super::replica::Replica;
use super::wire::{heads_digest, Snapshot, WireBundle};
use crate::identity::DevicePublicKey;
use crate::model::ModelError;

impl Replica {
    /// Per shard, a digest of its heads (0: no changes).
    pub fn shard_digests(&mut self) -> Result<Vec<u64>, SyncError> {
        (0..self.space.shard_count())
            .map(|s| Ok(heads_digest(&self.space.shard_heads(s)?)))
            .collect()
    }

    /// One shard's heads, sorted.
    pub fn shard_heads(&mut self, shard: usize) -> Result<Vec<ChangeHash>, SyncError> {
        Ok(self.space.shard_heads(shard)?)
    }

    /// Whether nothing is waiting to be sealed or stored: what a peer is
    /// sent whole (a snapshot) must be durable here first.
    pub fn is_settled(&self) -> bool {
        !self.unsealed && !self.has_unsaved_changes()
    }

    /// Whether the space holds no change at all.
    pub fn is_empty(&mut self) -> Result<bool, SyncError> {
        Ok(self.space.has_no_changes()?)
    }

    /// The accepted bundles a peer at `theirs` (its heads of `shard`)
    /// lacks, by index. Heads this replica does not know cannot narrow the
    /// set; then `baseline` (what that peer acknowledged before) does.
    /// Changes no bundle covers (this device's unsealed ones: seal first)
    /// are left out.
    pub fn bundles_missing(
        &mut self,
        shard: usize,
        theirs: &[ChangeHash],
        baseline: &[ChangeHash],
    ) -> Result<Vec<usize>, SyncError> {
        let mut have: Vec<ChangeHash> = Vec::new();
        let mut unknown = false;
        for h in theirs {
            if self.space.change_info(shard, h)?.is_some() {
                have.push(*h);
            } else {
                unknown = true;
            }
        }
        if unknown {
            have.extend(baseline.iter().copied());
        }
        let mut out = BTreeSet::new();
        for info in self.space.changes_info_since(shard, &have)? {
            let Ok(actor) = <[u8; 32]>::try_from(info.actor.as_slice()) else {
                continue;
            };
            let signer = DevicePublicKey::from_bytes(actor);
            if let Some(i) = self.coverage.find(&signer, shard as u16, info.seq) {
                out.insert(i);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// An accepted bundle with its changes, to send.
    pub fn wire_bundle(&mut self, index: usize) -> Result<WireBundle, SyncError> {
        let header = self.bundles.get(index).cloned().ok_or_else(|| {
            SyncError::Model(ModelError::Corrupt {
                reason: format!("no bundle {index}"),
            })
        })?;
        let mut changes = Vec::with_capacity(header.runs.len());
        for run in &header.runs {
            let mut hashes = Vec::with_capacity(run.count as usize);
            for seq in run.first_seq..=run.last_seq() {
                let hash = self
                    .seqs
                    .get(&mut self.space, run.shard, &header.signer, seq)?
                    .ok_or_else(|| missing(run.shard, seq))?;
                hashes.push(hash);
            }
            let bytes = self.space.changes_bytes(usize::from(run.shard), &hashes)?;
            let mut list = Vec::with_capacity(hashes.len());
            for (seq, b) in (run.first_seq..).zip(bytes) {
                list.push(b.ok_or_else(|| missing(run.shard, seq))?);
            }
            changes.push(list);
        }
        Ok(WireBundle { header, changes })
    }

    /// The whole space for a peer that has none of it: every shard that
    /// holds changes, compacted, and every accepted bundle. Send it only
    /// when [`is_settled`](Self::is_settled).
    pub fn snapshot(&mut self) -> Result<Snapshot, SyncError> {
        let mut shards = Vec::new();
        for s in 0..self.space.shard_count() {
            if !self.space.shard_heads(s)?.is_empty() {
                shards.push((s as u16, self.space.save_shard(s)?));
            }
        }
        Ok(Snapshot {
            shards,
            bundles: self.bundles.clone(),
        })
    }

    /// The heads `peer` acknowledged holding, per shard (its baseline).
    pub fn baseline(&self, peer: &DevicePublicKey, shard: u16) -> Vec<ChangeHash> {
        self.baselines
            .get(peer)
            .and_then(|b| b.get(&shard))
            .cloned()
            .unwrap_or_default()
    }

    /// Records what `peer` acknowledged holding (stored with the next save).
    /// Heads this replica does not hold are left out: a baseline must be
    /// in both histories.
    pub fn record_baseline(
        &mut self,
        peer: DevicePublicKey,
        shards: Vec<(u16, Vec<ChangeHash>)>,
    ) -> Result<(), SyncError> {
        for (shard, heads) in shards {
            if usize::from(shard) >= self.space.shard_count() {
                continue;
            }
            let mut known = Vec::new();
            for h in heads {
                if self.space.change_info(usize::from(shard), &h)?.is_some() {
                    known.push(h);
                }
            }
            known.sort();
            let entry = self.baselines.entry(peer).or_default();
            if entry.get(&shard) != Some(&known) {
                entry.insert(shard, known);
                self.baselines_unsaved.insert(peer);
            }
        }
        Ok(())
    }
}

fn missing(shard: u16, seq: u64) -> SyncError {
    SyncError::Model(ModelError::Corrupt {
        reason: format!(
            "a kept bundle names change {seq} of shard {shard}, which the document does not hold"
        ),
    })
}
