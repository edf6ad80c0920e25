//! Errors of the sync module. Every variant has a stable `code()`.

use thiserror::Error;

use crate::identity::{IdentityError, Rejection};
use crate::model::ModelError;

/// Errors a [`Replica`](super::Replica) call returns.
#[derive(Debug, Error)]
pub enum SyncError {
    /// This device may not write to the space now; nothing was applied.
    #[error("this device may not write to the space: {reason}")]
    WriteRefused { reason: Rejection },
    #[error("the peer speaks sync version {found}; this build speaks {supported}")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("the control log is of space {control}, the data of space {data}")]
    SpaceMismatch { control: String, data: String },
    #[error("no genesis among the credentials; a space's control log starts with its genesis")]
    NoGenesis,
    #[error("stored sync data of space {space} is corrupt at {key:?}: {reason}. Restore this space from a peer")]
    CorruptChunk {
        space: String,
        key: String,
        reason: String,
    },
    #[error("a save is already in progress; report its outcome (save_done / save_failed) before preparing another")]
    SaveInFlight,
    #[error("this identity is not a member of the space; ask a member to admit it first")]
    NotAdmitted,
    #[error("the snapshot a peer sent was refused: {reason}")]
    BadSnapshot { reason: String },
    #[error("a sync message does not decode: {reason}")]
    MalformedMessage { reason: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl SyncError {
    /// A stable, machine-readable code. Wrapped model and identity errors
    /// keep their own codes.
    pub fn code(&self) -> &'static str {
        match self {
            SyncError::WriteRefused { .. } => "sync.write_refused",
            SyncError::UnsupportedVersion { .. } => "sync.unsupported_version",
            SyncError::SpaceMismatch { .. } => "sync.space_mismatch",
            SyncError::NoGenesis => "sync.no_genesis",
            SyncError::CorruptChunk { .. } => "sync.corrupt_chunk",
            SyncError::SaveInFlight => "sync.save_in_flight",
            SyncError::NotAdmitted => "sync.not_admitted",
            SyncError::BadSnapshot { .. } => "sync.bad_snapshot",
            SyncError::MalformedMessage { .. } => "sync.malformed_message",
            SyncError::Model(e) => e.code(),
            SyncError::Identity(e) => e.code(),
        }
    }
}

/// Why a received bundle was not applied. Rejected bundles are not
/// applied, not kept and never relayed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BundleRejection {
    /// The signed bundle failed verification against the control log
    /// (bad signature, tampered change, wrong space, reader, revoked
    /// device, ...). The code is the identity module's
    /// (`identity.bundle.*`).
    #[error(transparent)]
    Bundle(Rejection),
    #[error("the bundle is for shard {shard}, but this space has {shard_count} shards")]
    NoSuchShard { shard: u16, shard_count: usize },
    #[error("the verified changes could not be merged: {reason}")]
    ApplyFailed { reason: String },
    #[error("its changes build on changes that were voided or refused (a removed, demoted or revoked writer's); they cannot be applied anywhere")]
    BuildsOnVoided,
}

impl BundleRejection {
    pub fn code(&self) -> &'static str {
        match self {
            BundleRejection::Bundle(r) => r.code(),
            BundleRejection::NoSuchShard { .. } => "sync.bundle.no_such_shard",
            BundleRejection::ApplyFailed { .. } => "sync.bundle.apply_failed",
            BundleRejection::BuildsOnVoided => "sync.bundle.builds_on_voided",
        }
    }
}
