//! Identity, device keys, credentials, membership and signed changes (HALO).
//!
//! - [`keys`]: identity and device keys (Ed25519), device certificates,
//!   recovery phrases (BIP-39).
//! - [`seal`]: secret keys leave memory only sealed under a host's wrapping key.
//! - [`credential`]: signed, hash-linked credentials.
//!
//! The rules are written down in `docs/membership.md`.

pub mod credential;
mod error;
pub mod keys;
pub mod seal;

pub use credential::{
    Credential, CredentialBody, CredentialHash, CredentialKind, Issuer, LogId, Role,
};
pub use error::{Denied, IdentityError, Rejection};
pub use keys::{
    DeviceCertificate, DeviceKey, DevicePublicKey, DeviceRequest, IdentityKey, IdentityPublicKey,
    KeyKind, RecoveryPhrase, Signature,
};
pub use seal::{ChaChaKeyWrap, KeyWrap, SealRequest, SealedKey};
