//! Replication of a space's data between peers, with every change verified
//! against the space's control log before it is applied.
//!
//! A [`Replica`] holds one [`Space`](crate::model::Space), its
//! [`SpaceControl`](crate::identity::SpaceControl), this device's
//! [`DeviceKey`](crate::identity::DeviceKey) and a bounded queue of bundles
//! waiting for credentials. The data path, sans-IO:
//!
//! - local writes go through [`Replica::write`], refused when this device
//!   may not write;
//! - [`Replica::seal`] signs this device's new changes into
//!   [`ShardBundle`]s — what a host persists and sends to peers;
//! - [`Replica::receive`] verifies bundles from peers (signer, role, in the
//!   control-log cut the bundle names) and merges only accepted ones;
//! - [`Replica::receive_credentials`] grows the control log and releases
//!   bundles that waited for it.
//!
//! The rules are in `docs/membership.md` ("The data path").

mod error;
mod persist;
mod replica;
mod wire;

#[cfg(test)]
mod tests;

pub use error::{BundleRejection, SyncError};
pub use persist::{ReplicaReceipt, ReplicaSave};
pub use replica::{
    CredentialsOutcome, DroppedBundle, Outcome, RejectedBundle, Replica, MAX_SEAL_BYTES,
    MAX_SEAL_CHANGES,
};
pub use wire::{ShardBundle, SHARD_BUNDLE_VERSION};
