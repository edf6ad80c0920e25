//! Errors of the vault service.

use thiserror::Error;

use crate::identity::IdentityError;
use crate::rpc::{codes, RpcError};
use crate::store::StoreError;
use crate::sync::SyncError;

/// What can go wrong opening or running the vault (besides the per-call
/// [`RpcError`]s apps get).
#[derive(Debug, Error)]
pub enum VaultError {
    #[error("the vault's record {key:?} is damaged: {reason}; restore the vault's storage from a backup or reset it")]
    CorruptRecord { key: String, reason: String },
    #[error("the vault's identity cannot be opened: {0}")]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("space {space} is listed by the vault but not open; open it before calling into it")]
    NotOpen { space: String },
    /// The host answered something the vault never asked, or reused an id.
    #[error("the host broke the vault's contract: {reason}")]
    Host { reason: String },
}

impl VaultError {
    /// Stable code: `vault.corrupt_record`, `vault.not_open`, or the
    /// wrapped module's code.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::CorruptRecord { .. } => "vault.corrupt_record",
            VaultError::Identity(e) => e.code(),
            VaultError::Sync(e) => e.code(),
            VaultError::Store(e) => e.code(),
            VaultError::NotOpen { .. } => "vault.not_open",
            VaultError::Host { .. } => "vault.host",
        }
    }
}

impl From<VaultError> for RpcError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::NotOpen { .. } => RpcError::new(codes::INTERNAL, e.to_string()),
            other => RpcError::new(other.code(), other.to_string()),
        }
    }
}
