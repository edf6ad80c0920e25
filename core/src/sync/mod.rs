//! Replication of a space's data between peers, with every change verified
//! against the space's control log before it is applied.
//!
//! | file | concept |
//! |---|---|
//! | `replica.rs` | [`Replica`]: a space, its control log, this device's key and the accepted bundles; local writes, sealing, credentials |
//! | `reads.rs` | [`SpaceReads`]: the space's reads, and only those |
//! | `receive.rs` | receiving bundles and snapshots: verify → `Verified` → merge, or wait, or refuse with a reason |
//! | `send.rs` | what a peer is sent: digests, heads, missing bundles with their changes, snapshots, baselines |
//! | `coverage.rs` | which bundle covers which change; hashes by signer and sequence number |
//! | `retract.rs` | voiding accepted bundles a later removal, demotion or revocation does not allow |
//! | `pending.rs` | bundles waiting for credentials or changes, bounded per signer, expiring |
//! | `evidence.rs` | equivocation evidence |
//! | `wire.rs` | [`WireBundle`], [`Snapshot`], [`SyncMessage`] |
//! | `session.rs` | [`SyncSession`]: the sync protocol with one peer for one space |
//! | `persist.rs` | the replica's storage beside its space's chunks |
//!
//! The rules are in `docs/membership.md` ("The data path") and the
//! protocol in `docs/ARCHITECTURE.md` (`core/src/sync`).

mod coverage;
mod error;
mod evidence;
mod pending;
mod persist;
mod reads;
mod receive;
mod replica;
mod retract;
mod send;
mod session;
mod wire;

#[cfg(test)]
mod tests;

pub use error::{BundleRejection, SyncError};
pub use evidence::Equivocation;
pub use pending::PendingLimits;
pub use persist::{ReplicaReceipt, ReplicaSave};
pub use reads::SpaceReads;
pub use receive::{DroppedBundle, Outcome, RejectedBundle};
pub use replica::{CredentialsOutcome, Replica, MAX_SEAL_CHANGES};
pub use retract::Voided;
pub use session::{SessionEvent, SyncSession};
pub use wire::{
    hashes_from_wire, hashes_to_wire, heads_digest, Snapshot, SpaceExport, SyncMessage, WireBundle,
    SYNC_VERSION,
};
