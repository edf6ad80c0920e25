//! The vault's own records beside the spaces' chunks: its identity, the
//! user's decisions about apps (grants), and the spaces it holds.
//!
//! Keys (all under [`PREFIX`]):
//!
//! ```text
//! vault/identity              sealed identity and device keys, the device certificate, display name
//! vault/grants/<origin, hex>  one app origin: allowed or denied, its spaces, when decided
//! vault/spaces/<space id>     one space the vault holds: which app created it
//! vault/invitations/<id, hex> an invitation this vault made: its code, role,
//!                             attempts, who it admitted, whether it is open
//! ```
//!
//! Values are framed like every stored chunk (`store::frame`: magic,
//! version, CRC-32) around a postcard payload, so damage is reported by key.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::error::VaultError;
use super::invitations::InvitationRecord;
use crate::data::{SpaceId, Value};
use crate::identity::{DeviceCertificate, SealedKey};
use crate::invite::InvitationId;
use crate::store;

/// The key prefix of the vault's records.
pub const PREFIX: &str = "vault/";
const IDENTITY_KEY: &str = "vault/identity";
const GRANTS: &str = "vault/grants/";
const SPACES: &str = "vault/spaces/";
const INVITATIONS: &str = "vault/invitations/";
const RECORD_VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct IdentityRecord {
    pub sealed_identity: Vec<u8>,
    pub sealed_device: Vec<u8>,
    pub certificate: DeviceCertificate,
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GrantRecord {
    pub allowed: bool,
    pub spaces: BTreeSet<SpaceId>,
    pub decided_at: f64,
}

/// A space the vault holds. Its properties and the user's role are not
/// here: they come from the space itself (its documents and control log).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpaceRecord {
    /// The app origin that created it, if an app did: its spaces count
    /// against its quota (`vault/quota.rs`).
    pub created_by: Option<String>,
    /// Bytes of its chunks in storage, as last recorded: what a quota
    /// counts for it while it is not open (an open space knows its own).
    /// Recorded with a flush once it moved by `quota::RECORD_STEP` from
    /// this, so it may lag that much behind.
    pub stored_bytes: u64,
}

/// Space records of format 2 had no size.
#[derive(Deserialize)]
struct SpaceRecordV2 {
    created_by: Option<String>,
}

/// Space records of format 1 also kept the properties as last set here.
#[derive(Deserialize)]
struct SpaceRecordV1 {
    created_by: Option<String>,
    #[allow(dead_code)]
    properties: BTreeMap<String, Value>,
}

/// Format of space records (2: no properties; 3: its stored size).
const SPACE_RECORD_VERSION: u8 = 3;

pub(crate) fn identity_key() -> &'static str {
    IDENTITY_KEY
}

/// An origin as a key segment: the lower-case hex of its bytes (origins
/// hold `:` and `/`, which keys give other meanings).
pub(crate) fn grant_key(origin: &str) -> String {
    let mut key = String::with_capacity(GRANTS.len() + origin.len() * 2);
    key.push_str(GRANTS);
    for b in origin.bytes() {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

pub(crate) fn invitation_key(id: &InvitationId) -> String {
    format!("{INVITATIONS}{}", id.to_hex())
}

pub(crate) fn space_key(id: &SpaceId) -> String {
    format!("{SPACES}{id}")
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    encode_as(RECORD_VERSION, value)
}

fn encode_as<T: Serialize>(version: u8, value: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    store::frame(version, &postcard::to_stdvec(value).unwrap_or_default())
}

pub(crate) fn encode_space(record: &SpaceRecord) -> Vec<u8> {
    encode_as(SPACE_RECORD_VERSION, record)
}

fn decode_space(key: &str, bytes: &[u8]) -> Result<SpaceRecord, VaultError> {
    if store::unframe(RECORD_VERSION, bytes).is_ok() {
        let v1: SpaceRecordV1 = decode(key, bytes)?;
        return Ok(SpaceRecord {
            created_by: v1.created_by,
            stored_bytes: 0,
        });
    }
    if store::unframe(2, bytes).is_ok() {
        let v2: SpaceRecordV2 = decode_as(2, key, bytes)?;
        return Ok(SpaceRecord {
            created_by: v2.created_by,
            stored_bytes: 0,
        });
    }
    decode_as(SPACE_RECORD_VERSION, key, bytes)
}

fn decode<T: for<'a> Deserialize<'a>>(key: &str, bytes: &[u8]) -> Result<T, VaultError> {
    decode_as(RECORD_VERSION, key, bytes)
}

fn decode_as<T: for<'a> Deserialize<'a>>(
    version: u8,
    key: &str,
    bytes: &[u8],
) -> Result<T, VaultError> {
    let corrupt = |reason: String| VaultError::CorruptRecord {
        key: key.to_owned(),
        reason,
    };
    let payload = store::unframe(version, bytes).map_err(|e| corrupt(e.to_string()))?;
    postcard::from_bytes(payload).map_err(|e| corrupt(format!("the record does not decode: {e}")))
}

fn origin_from_hex(key: &str, hex: &str) -> Result<String, VaultError> {
    let bad = || VaultError::CorruptRecord {
        key: key.to_owned(),
        reason: "the key does not name an origin".into(),
    };
    if !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, _>>()?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// The vault's records as read from storage (everything under [`PREFIX`]).
#[derive(Debug, Default)]
pub(crate) struct StoredVault {
    pub(crate) identity: Option<IdentityRecord>,
    pub(crate) grants: BTreeMap<String, GrantRecord>,
    pub(crate) spaces: BTreeMap<SpaceId, SpaceRecord>,
    pub(crate) invitations: BTreeMap<InvitationId, InvitationRecord>,
}

impl StoredVault {
    /// Decodes the entries a host listed under [`PREFIX`]. A damaged
    /// record is an error naming its key.
    pub fn parse(entries: Vec<(String, Vec<u8>)>) -> Result<Self, VaultError> {
        let mut out = StoredVault::default();
        for (key, value) in entries {
            if key == IDENTITY_KEY {
                out.identity = Some(decode(&key, &value)?);
            } else if let Some(hex) = key.strip_prefix(GRANTS) {
                let origin = origin_from_hex(&key, hex)?;
                out.grants.insert(origin, decode(&key, &value)?);
            } else if let Some(hex) = key.strip_prefix(INVITATIONS) {
                let id = InvitationId::from_hex(hex).ok_or_else(|| VaultError::CorruptRecord {
                    key: key.clone(),
                    reason: "the key does not name an invitation".into(),
                })?;
                out.invitations.insert(id, decode(&key, &value)?);
            } else if let Some(id) = key.strip_prefix(SPACES) {
                let id: SpaceId = id.parse().map_err(|_| VaultError::CorruptRecord {
                    key: key.clone(),
                    reason: "the key does not name a space".into(),
                })?;
                out.spaces.insert(id, decode_space(&key, &value)?);
            } else {
                return Err(VaultError::CorruptRecord {
                    key,
                    reason: "unrecognized key among the vault's records".into(),
                });
            }
        }
        Ok(out)
    }

    /// The sealed device key to unseal before [`super::Vault::open`].
    pub fn sealed_device(&self) -> Result<Option<SealedKey>, VaultError> {
        match &self.identity {
            None => Ok(None),
            Some(record) => SealedKey::from_bytes(&record.sealed_device)
                .map(Some)
                .map_err(|e| VaultError::CorruptRecord {
                    key: IDENTITY_KEY.to_owned(),
                    reason: e.to_string(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct V2 {
        created_by: Option<String>,
    }

    #[test]
    fn space_records_of_every_format_read_and_the_current_one_keeps_the_size() {
        let key = "vault/spaces/x";
        let v2 = encode_as(
            2,
            &V2 {
                created_by: Some("https://a.example".into()),
            },
        );
        let read = decode_space(key, &v2).unwrap();
        assert_eq!(read.created_by.as_deref(), Some("https://a.example"));
        assert_eq!(read.stored_bytes, 0, "format 2 had no size");

        let v3 = SpaceRecord {
            created_by: None,
            stored_bytes: 123_456_789,
        };
        assert_eq!(decode_space(key, &encode_space(&v3)).unwrap(), v3);

        // A format from a newer build is refused, not misread.
        let v9 = encode_as(9, &v3);
        assert!(decode_space(key, &v9).is_err());
    }
}
