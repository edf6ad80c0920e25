//! Which accepted bundle covers which change, and each change's hash by
//! signer and sequence number.
//!
//! A change is named two ways: by its hash (what Automerge and signatures
//! use) and by `(signer, shard, seq)` (what a bundle's runs use). Sending a
//! bundle's changes, checking a bundle against what is already held
//! (equivocation), and finding the bundle behind a dependency all go
//! between the two.

use std::collections::HashMap;

use automerge::ChangeHash;

use crate::identity::{DevicePublicKey, SignedChanges};
use crate::model::{ModelError, Space};

/// `(first seq, last seq, bundle index)` of the runs of one signer in one
/// shard, sorted by first.
type Runs = Vec<(u64, u64, usize)>;

/// The runs of accepted bundles, per signer and shard.
#[derive(Debug, Default)]
pub(super) struct Coverage {
    runs: HashMap<(DevicePublicKey, u16), Runs>,
}

impl Coverage {
    pub fn add(&mut self, index: usize, bundle: &SignedChanges) {
        for run in &bundle.runs {
            let list = self.runs.entry((bundle.signer, run.shard)).or_default();
            let at = list.partition_point(|(first, _, _)| *first <= run.first_seq);
            list.insert(at, (run.first_seq, run.last_seq(), index));
        }
    }

    /// The bundle covering change `seq` of `signer` in `shard`.
    pub fn find(&self, signer: &DevicePublicKey, shard: u16, seq: u64) -> Option<usize> {
        let list = self.runs.get(&(*signer, shard))?;
        let end = list.partition_point(|(first, _, _)| *first <= seq);
        list[..end]
            .iter()
            .rev()
            .find(|(first, last, _)| *first <= seq && seq <= *last)
            .map(|(_, _, i)| *i)
    }

    /// The highest sequence number of `signer` covered in `shard` (0: none).
    pub fn max_seq(&self, signer: &DevicePublicKey, shard: u16) -> u64 {
        self.runs
            .get(&(*signer, shard))
            .and_then(|l| l.iter().map(|(_, last, _)| *last).max())
            .unwrap_or(0)
    }

    /// Per shard, the highest covered sequence number of `signer`.
    pub fn max_seqs(&self, signer: &DevicePublicKey) -> Vec<(u16, u64)> {
        let mut out: Vec<(u16, u64)> = self
            .runs
            .iter()
            .filter(|((s, _), _)| s == signer)
            .filter_map(|((_, shard), l)| {
                l.iter()
                    .map(|(_, last, _)| *last)
                    .max()
                    .map(|m| (*shard, m))
            })
            .collect();
        out.sort();
        out
    }
}

/// Each change's hash by `(signer, seq)`, per shard; a shard's map is read
/// from its document the first time it is needed, then kept up to date.
#[derive(Debug, Default)]
pub(super) struct SeqIndex {
    shards: HashMap<u16, HashMap<(DevicePublicKey, u64), ChangeHash>>,
}

impl SeqIndex {
    fn build(
        &mut self,
        space: &mut Space,
        shard: u16,
    ) -> Result<&mut HashMap<(DevicePublicKey, u64), ChangeHash>, ModelError> {
        use std::collections::hash_map::Entry;
        Ok(match self.shards.entry(shard) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let mut map = HashMap::new();
                for info in space.changes_info_since(usize::from(shard), &[])? {
                    if let Ok(actor) = <[u8; 32]>::try_from(info.actor.as_slice()) {
                        map.insert((DevicePublicKey::from_bytes(actor), info.seq), info.hash);
                    }
                }
                e.insert(map)
            }
        })
    }

    pub fn get(
        &mut self,
        space: &mut Space,
        shard: u16,
        signer: &DevicePublicKey,
        seq: u64,
    ) -> Result<Option<ChangeHash>, ModelError> {
        Ok(self.build(space, shard)?.get(&(*signer, seq)).copied())
    }

    /// Notes a change now held (only where the shard's map is built).
    pub fn record(&mut self, shard: u16, signer: DevicePublicKey, seq: u64, hash: ChangeHash) {
        if let Some(map) = self.shards.get_mut(&shard) {
            map.insert((signer, seq), hash);
        }
    }

    /// Forgets everything (the space was replaced or reverted).
    pub fn clear(&mut self) {
        self.shards.clear();
    }
}
