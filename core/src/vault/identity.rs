//! The identity and device a vault creates on its first run.
//!
//! The host seals both secret keys with its own cipher (in the browser a
//! non-extractable WebCrypto key): [`NewIdentity::seal_requests`] gives what
//! to encrypt, [`Vault::create`] takes the ciphertexts. Only the device key
//! stays in memory; the identity key is needed again only to certify
//! another device, and stays sealed until then.

use crate::identity::{DeviceKey, IdentityKey, SealRequest};

use super::error::VaultError;
use super::records::IdentityRecord;
use super::{StoredVault, Vault};

/// Keys generated for a new vault, waiting to be sealed by the host.
pub struct NewIdentity {
    identity: IdentityKey,
    device: DeviceKey,
}

impl std::fmt::Debug for NewIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewIdentity")
            .field("identity", &self.identity.public_key())
            .field("device", &self.device.public_key())
            .finish()
    }
}

impl NewIdentity {
    /// Fresh identity and device keys from the OS random source.
    pub fn generate() -> Result<Self, VaultError> {
        Ok(NewIdentity {
            identity: IdentityKey::generate()?,
            device: DeviceKey::generate()?,
        })
    }

    /// What the host must encrypt: `[identity, device]`.
    pub fn seal_requests(&self) -> [SealRequest; 2] {
        [self.identity.seal_request(), self.device.seal_request()]
    }
}

impl Vault {
    /// Creates the vault's identity from `new` and the host's ciphertexts
    /// of its [`seal_requests`](NewIdentity::seal_requests) (same order).
    /// The identity record is written by the first flush.
    pub fn create(
        new: NewIdentity,
        ciphertexts: [Vec<u8>; 2],
        stored: StoredVault,
    ) -> Result<Self, VaultError> {
        let [identity_ct, device_ct] = ciphertexts;
        let [identity_req, device_req] = new.seal_requests();
        let sealed_identity = identity_req.finish(identity_ct);
        let sealed_device = device_req.finish(device_ct);
        let request = new.device.request_authorization(new.identity.public_key());
        let certificate = new.identity.certify_device(&request)?;
        let record = IdentityRecord {
            sealed_identity: sealed_identity.to_bytes(),
            sealed_device: sealed_device.to_bytes(),
            certificate,
            display_name: None,
        };
        Ok(Vault::assemble(new.device, record, true, stored))
    }
}
