//! Identity, device keys, credentials, membership and signed changes (HALO).
//!
//! - [`keys`]: identity and device keys (Ed25519), device certificates,
//!   recovery phrases (BIP-39).
//! - [`seal`]: secret keys leave memory only sealed under a host's wrapping key.
//! - [`credential`]: signed, hash-linked credentials.
//! - [`log`]: a credential DAG and the membership state it implies;
//!   [`SpaceControl`] (a space's control log) and [`Halo`] (an identity's
//!   devices) are the two kinds.
//! - [`bundle`]: signed change bundles and their verification against a
//!   space's control log (bundles waiting for credentials wait in
//!   `sync::pending`).
//!
//! The rules are written down in `docs/membership.md`.

pub mod bundle;
pub mod credential;
mod error;
pub mod keys;
pub mod log;
pub mod seal;
mod space;
#[cfg(test)]
mod tests;

pub use bundle::{ChangeRef, Run, SignedChanges, BUNDLE_VERSION, MAX_BUNDLE_CHANGES, MAX_RUNS};
pub use credential::{
    Credential, CredentialBody, CredentialHash, CredentialKind, DeviceWatermark, Issuer, LogId,
    Role, Watermark, MAX_WATERMARK_DEVICES,
};
pub use error::{Denied, IdentityError, Rejection};
pub use keys::{
    DeviceCertificate, DeviceKey, DevicePublicKey, DeviceRequest, IdentityKey, IdentityPublicKey,
    KeyKind, RecoveryPhrase, Signature,
};
pub use log::{CredentialLog, DeviceStatus, MembershipState, Received, StateRef};
pub use seal::{ChaChaKeyWrap, KeyWrap, SealRequest, SealedKey};
pub use space::{Halo, SpaceControl};
