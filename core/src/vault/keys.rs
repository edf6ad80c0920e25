//! The vault's identity and this device's keys, and how they come to be:
//! the boot of the vault machine.
//!
//! ```text
//! Read "vault/" ──► records parsed
//!   identity stored:  Unseal(sealed device key) ──► Unsealed ──► open ──► Ready
//!   first run:        identity and device keys from the engine's generator,
//!                     Seal(identity), Seal(device) ──► Sealed ×2
//!                     ──► Write(identity record) ──► WriteDone ──► Ready
//! ```
//!
//! The host seals with its own cipher (in the browser a non-extractable
//! WebCrypto key). Only the device key stays in memory; the identity key
//! is needed again only to certify another device, and stays sealed.

use zeroize::Zeroizing;

use super::error::VaultError;
use super::machine::{KeyOpId, ReadId};
use super::records::{IdentityRecord, StoredVault};
use crate::identity::{
    DeviceCertificate, DeviceKey, IdentityKey, IdentityPublicKey, SealRequest, SealedKey,
};
use crate::rng::EngineRng;

/// The identity and device this vault acts as.
pub(super) struct Keys {
    pub identity: IdentityPublicKey,
    pub device: DeviceKey,
    pub certificate: DeviceCertificate,
    pub record: IdentityRecord,
    /// The record changed since it was stored.
    pub unsaved: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("identity", &self.identity)
            .field("device", &self.device.public_key())
            .finish()
    }
}

/// Where the boot stands (boxed in the vault: it is large while it lasts).
#[allow(clippy::large_enum_variant)]
pub(super) enum Boot {
    /// Reading the vault's records.
    Reading(ReadId),
    /// Unsealing the stored device key.
    Unsealing {
        op: KeyOpId,
        stored: StoredVault,
        sealed: SealedKey,
    },
    /// First run: new keys, waiting for the host to seal them.
    Sealing {
        identity: IdentityKey,
        device: DeviceKey,
        stored: StoredVault,
        requests: [(KeyOpId, SealRequest); 2],
        ciphertexts: [Option<Vec<u8>>; 2],
    },
    /// First run: the identity record is being stored.
    Storing,
}

impl std::fmt::Debug for Boot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Boot::Reading(_) => "Reading",
            Boot::Unsealing { .. } => "Unsealing",
            Boot::Sealing { .. } => "Sealing",
            Boot::Storing => "Storing",
        })
    }
}

/// New identity and device keys from the engine's generator.
pub(super) fn generate(rng: &mut EngineRng) -> (IdentityKey, DeviceKey) {
    let identity = IdentityKey::from_seed(&rng.secret_seed());
    let device = DeviceKey::from_seed(&rng.secret_seed());
    (identity, device)
}

impl Keys {
    /// Keys of a stored identity: `plaintext` is the host's decryption of
    /// the sealed device key.
    pub fn open(
        stored: &StoredVault,
        sealed: &SealedKey,
        plaintext: &[u8],
    ) -> Result<Self, VaultError> {
        let record = stored
            .identity
            .clone()
            .ok_or_else(|| VaultError::CorruptRecord {
                key: super::records::identity_key().to_owned(),
                reason: "missing: the vault has no identity yet".into(),
            })?;
        let device = DeviceKey::from_unsealed(sealed, plaintext)?;
        if device.public_key() != record.certificate.device || !record.certificate.is_valid() {
            return Err(VaultError::CorruptRecord {
                key: super::records::identity_key().to_owned(),
                reason: "the device certificate does not match the device key".into(),
            });
        }
        Ok(Keys {
            identity: record.certificate.identity,
            certificate: record.certificate.clone(),
            device,
            record,
            unsaved: false,
        })
    }

    /// Keys of a new identity, from the host's ciphertexts of their seal
    /// requests (`[identity, device]`).
    pub fn create(
        identity: IdentityKey,
        device: DeviceKey,
        requests: [SealRequest; 2],
        ciphertexts: [Vec<u8>; 2],
    ) -> Result<Self, VaultError> {
        let [identity_ct, device_ct] = ciphertexts;
        let [identity_req, device_req] = requests;
        let sealed_identity = identity_req.finish(identity_ct);
        let sealed_device = device_req.finish(device_ct);
        let request = device.request_authorization(identity.public_key());
        let certificate = identity.certify_device(&request)?;
        let record = IdentityRecord {
            sealed_identity: sealed_identity.to_bytes(),
            sealed_device: sealed_device.to_bytes(),
            certificate: certificate.clone(),
            display_name: None,
        };
        Ok(Keys {
            identity: identity.public_key(),
            device,
            certificate,
            record,
            unsaved: true,
        })
    }
}

/// The plaintext of a seal request, for the host.
pub(super) fn plaintext_of(request: &SealRequest) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(request.plaintext().to_vec())
}
