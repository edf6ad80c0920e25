//! Evidence of equivocation: one signer signed two different changes as
//! the same change of a shard (same sequence number). Automerge cannot
//! hold both, so replicas would split over which one they saw first; the
//! second bundle is refused and both signed headers are kept, which proves
//! it to anyone (each signature covers its run's sequence numbers and
//! hashes).

use serde::{Deserialize, Serialize};

use crate::identity::{DevicePublicKey, SignedChanges};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    pub signer: DevicePublicKey,
    pub shard: u16,
    pub seq: u64,
    /// The bundle held first, and the hash of its change at `seq`.
    pub held: SignedChanges,
    pub held_hash: [u8; 32],
    /// The refused bundle, and the hash of its change at `seq`.
    pub refused: SignedChanges,
    pub refused_hash: [u8; 32],
}
