//! Identity and device keys (Ed25519), device certificates and recovery
//! phrases.
//!
//! Secret keys are zeroized on drop (ed25519-dalek's `zeroize` feature) and
//! have no serialization of their own: they leave memory only sealed under a
//! host-supplied wrapping key ([`super::seal`]) or, once, as a recovery phrase.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32HEX_NOPAD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::IdentityError;

/// HKDF salt of [`DeviceKey::app_pseudonym`]: a new version would name
/// every user anew for every app.
const APP_PSEUDONYM_SALT: &[u8] = b"echo app pseudonym v1";

/// Length of a public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;

const DEVICE_CERT_TAG: &[u8] = b"echo/device-certificate/v1\0";

pub(crate) fn random_seed() -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|_| IdentityError::RandomUnavailable)?;
    Ok(seed)
}

fn encode_key(bytes: &[u8; 32]) -> String {
    BASE32HEX_NOPAD.encode(bytes).to_ascii_lowercase()
}

fn decode_key(text: &str) -> Result<[u8; 32], IdentityError> {
    let invalid = |reason: &str| IdentityError::InvalidPublicKey {
        reason: format!("{reason}: {:?}", text.chars().take(64).collect::<String>()),
    };
    let bytes = BASE32HEX_NOPAD
        .decode(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| invalid("not base32hex"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid("not 32 bytes"))?;
    if encode_key(&bytes) != text {
        return Err(invalid("not in canonical lower-case form"));
    }
    Ok(bytes)
}

macro_rules! public_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name([u8; PUBLIC_KEY_LEN]);

        impl $name {
            /// Wraps 32 bytes. Whether they are a valid Ed25519 point is
            /// checked when a signature is verified against them.
            pub fn from_bytes(bytes: [u8; PUBLIC_KEY_LEN]) -> Self {
                Self(bytes)
            }
            pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode_key(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &encode_key(&self.0)[..12])
            }
        }

        impl FromStr for $name {
            type Err = IdentityError;
            fn from_str(text: &str) -> Result<Self, IdentityError> {
                decode_key(text).map(Self)
            }
        }
    };
}

public_key!(
    /// The public key of an identity: names a person.
    IdentityPublicKey
);
public_key!(
    /// The public key of a device (a vault instance). It is also the device's
    /// Automerge actor id (see [`DevicePublicKey::actor_id`]).
    DevicePublicKey
);

impl DevicePublicKey {
    /// Verifies an Ed25519 signature strictly (no malleable signatures,
    /// no small-order keys).
    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        match VerifyingKey::from_bytes(&self.0) {
            Ok(key) => key
                .verify_strict(
                    message,
                    &ed25519_dalek::Signature::from_bytes(&signature.to_bytes()),
                )
                .is_ok(),
            Err(_) => false,
        }
    }

    /// The Automerge actor id of this device: its 32 public key bytes.
    pub fn actor_id(&self) -> automerge::ActorId {
        automerge::ActorId::from(self.0.as_slice())
    }
}

impl IdentityPublicKey {
    /// The same key bytes viewed as a signer (an identity key may sign
    /// credentials directly).
    pub(crate) fn as_signer(&self) -> DevicePublicKey {
        DevicePublicKey(self.0)
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature {
    // Two halves: serde derives arrays up to 32 elements; postcard writes
    // fixed arrays without a length, so this is the plain 64 bytes.
    r: [u8; 32],
    s: [u8; 32],
}

impl Signature {
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..]);
        Self { r, s }
    }
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r);
        out[32..].copy_from_slice(&self.s);
        out
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", &encode_key(&self.r)[..12])
    }
}

fn sign(key: &SigningKey, message: &[u8]) -> Signature {
    Signature::from_bytes(key.sign(message).to_bytes())
}

/// What kind of secret key a sealed blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Identity,
    Device,
}

impl KeyKind {
    pub(crate) fn tag(self) -> u8 {
        match self {
            KeyKind::Identity => 1,
            KeyKind::Device => 2,
        }
    }
    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(KeyKind::Identity),
            2 => Some(KeyKind::Device),
            _ => None,
        }
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyKind::Identity => "an identity",
            KeyKind::Device => "a device",
        }
    }
}

/// The secret key of an identity. Names a person; authorizes devices and
/// may sign credentials. Zeroized on drop.
pub struct IdentityKey {
    pub(crate) signing: SigningKey,
    pub(crate) recovery_exported: bool,
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({:?}, secret redacted)", self.public_key())
    }
}

impl IdentityKey {
    /// A new identity key from the OS random source.
    pub fn generate() -> Result<Self, IdentityError> {
        Ok(Self::from_seed(&*random_seed()?))
    }

    /// The identity key of a 32-byte secret seed (from the engine's
    /// generator: `EngineRng::secret_seed`).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
            recovery_exported: false,
        }
    }

    pub fn public_key(&self) -> IdentityPublicKey {
        IdentityPublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Whether the recovery phrase was already exported (it can be exported
    /// once). Sealing keeps this flag.
    pub fn recovery_exported(&self) -> bool {
        self.recovery_exported
    }

    /// Exports the identity's secret as a 24-word BIP-39 (English) phrase.
    /// Works once: the key remembers the export (seal it again afterwards so
    /// the stored copy remembers too); a second call fails with
    /// [`IdentityError::RecoveryAlreadyExported`].
    pub fn export_recovery_phrase(&mut self) -> Result<RecoveryPhrase, IdentityError> {
        if self.recovery_exported {
            return Err(IdentityError::RecoveryAlreadyExported);
        }
        let mnemonic = bip39::Mnemonic::from_entropy(self.signing.as_bytes()).map_err(|e| {
            IdentityError::InvalidRecoveryPhrase {
                reason: e.to_string(),
            }
        })?;
        self.recovery_exported = true;
        Ok(RecoveryPhrase(Zeroizing::new(mnemonic.to_string())))
    }

    /// Restores an identity from its recovery phrase (24 English BIP-39
    /// words; case, extra spaces and line breaks are ignored). The restored
    /// key counts as exported: its phrase already exists.
    pub fn from_recovery_phrase(phrase: &str) -> Result<Self, IdentityError> {
        let mut normalized = Zeroizing::new(String::with_capacity(phrase.len()));
        for word in phrase.split_whitespace() {
            if !normalized.is_empty() {
                normalized.push(' ');
            }
            normalized.extend(word.chars().flat_map(char::to_lowercase));
        }
        let words = normalized.split(' ').filter(|w| !w.is_empty()).count();
        if words != 24 {
            return Err(IdentityError::InvalidRecoveryPhrase {
                reason: format!("expected 24 words, got {words}"),
            });
        }
        let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalized)
            .map_err(|e| IdentityError::InvalidRecoveryPhrase {
                reason: match e {
                    bip39::Error::UnknownWord(i) => {
                        format!("word {} is not in the BIP-39 English word list", i + 1)
                    }
                    bip39::Error::InvalidChecksum => {
                        "the checksum does not match; a word is misspelled or out of order".into()
                    }
                    other => other.to_string(),
                },
            })?;
        let (entropy, len) = mnemonic.to_entropy_array();
        let entropy = Zeroizing::new(entropy);
        let seed: [u8; 32] =
            entropy[..len]
                .try_into()
                .map_err(|_| IdentityError::InvalidRecoveryPhrase {
                    reason: "the phrase does not hold a 256-bit key".into(),
                })?;
        let seed = Zeroizing::new(seed);
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
            recovery_exported: true,
        })
    }

    /// Certifies that `request`'s device belongs to this identity. The
    /// request carries the device's own signature (proof it holds the key).
    pub fn certify_device(
        &self,
        request: &DeviceRequest,
    ) -> Result<DeviceCertificate, IdentityError> {
        if request.identity != self.public_key() {
            return Err(IdentityError::InvalidDeviceRequest {
                reason: format!(
                    "the request is for identity {}, not {}",
                    request.identity,
                    self.public_key()
                ),
            });
        }
        let message = device_cert_message(&request.identity, &request.device);
        if !request.device.verify(&message, &request.device_signature) {
            return Err(IdentityError::InvalidDeviceRequest {
                reason: "the device's signature is invalid".into(),
            });
        }
        Ok(DeviceCertificate {
            identity: request.identity,
            device: request.device,
            identity_signature: sign(&self.signing, &message),
            device_signature: request.device_signature,
        })
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        sign(&self.signing, message)
    }
}

/// The secret key of a device (one vault instance). Signs credentials on
/// behalf of its identity and signs change bundles. Zeroized on drop.
pub struct DeviceKey {
    pub(crate) signing: SigningKey,
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({:?}, secret redacted)", self.public_key())
    }
}

impl DeviceKey {
    /// A second handle on the same secret key (each replica of a space
    /// signs with it). Explicit rather than `Clone`, so copies of a secret
    /// are visible where they are made; each copy is zeroized on drop.
    pub fn duplicate(&self) -> Self {
        Self {
            signing: self.signing.clone(),
        }
    }

    /// A new device key from the OS random source.
    pub fn generate() -> Result<Self, IdentityError> {
        Ok(Self::from_seed(&*random_seed()?))
    }

    /// The device key of a 32-byte secret seed (from the engine's
    /// generator: `EngineRng::secret_seed`).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    pub fn public_key(&self) -> DevicePublicKey {
        DevicePublicKey(self.signing.verifying_key().to_bytes())
    }

    /// The name this device's user goes by for the app at `origin`:
    /// 16 bytes of HKDF-SHA256 keyed by this device's secret, with the
    /// origin as its info — the same for one origin every time, unrelated
    /// between origins, and computable by no one without the secret (see
    /// `docs/privacy.md`), printed like an id (26 base32hex characters).
    pub fn app_pseudonym(&self, origin: &str) -> String {
        let secret = Zeroizing::new(self.signing.to_bytes());
        let kdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(APP_PSEUDONYM_SALT), &*secret);
        let mut out = [0u8; 16];
        // 16 bytes are far below HKDF-SHA256's limit of 8,160: never fails.
        let _ = kdf.expand(origin.as_bytes(), &mut out);
        BASE32HEX_NOPAD.encode(&out).to_ascii_lowercase()
    }

    /// The Automerge actor id this device must use for its changes.
    pub fn actor_id(&self) -> automerge::ActorId {
        self.public_key().actor_id()
    }

    /// Asks `identity` to certify this device: the request proves this device
    /// holds its key. Send it to the identity's vault, which answers with
    /// [`IdentityKey::certify_device`].
    pub fn request_authorization(&self, identity: IdentityPublicKey) -> DeviceRequest {
        let device = self.public_key();
        let message = device_cert_message(&identity, &device);
        DeviceRequest {
            identity,
            device,
            device_signature: sign(&self.signing, &message),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        sign(&self.signing, message)
    }
}

fn device_cert_message(identity: &IdentityPublicKey, device: &DevicePublicKey) -> Vec<u8> {
    let mut message = Vec::with_capacity(DEVICE_CERT_TAG.len() + 64);
    message.extend_from_slice(DEVICE_CERT_TAG);
    message.extend_from_slice(identity.as_bytes());
    message.extend_from_slice(device.as_bytes());
    message
}

/// A device's request to be certified by an identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub identity: IdentityPublicKey,
    pub device: DevicePublicKey,
    pub device_signature: Signature,
}

/// "Device D belongs to identity I", signed by both keys. Portable across
/// logs: it is what a `DeviceAuthorized` credential carries. Whether the
/// device may act in a given log is decided by that log (revocations are
/// per log).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceCertificate {
    pub identity: IdentityPublicKey,
    pub device: DevicePublicKey,
    pub identity_signature: Signature,
    pub device_signature: Signature,
}

impl DeviceCertificate {
    /// Checks both signatures.
    pub fn is_valid(&self) -> bool {
        let message = device_cert_message(&self.identity, &self.device);
        self.identity
            .as_signer()
            .verify(&message, &self.identity_signature)
            && self.device.verify(&message, &self.device_signature)
    }
}

/// A recovery phrase: 24 English BIP-39 words. Zeroized on drop; its
/// `Debug` does not show the words.
pub struct RecoveryPhrase(Zeroizing<String>);

impl RecoveryPhrase {
    /// The words, separated by single spaces. Show them to the person once.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ')
    }
}

impl fmt::Debug for RecoveryPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryPhrase(24 words, redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_pseudonym_is_stable_per_origin_and_unrelated_across_origins_and_devices() {
        let device = DeviceKey::from_seed(&[7; 32]);
        let a = device.app_pseudonym("https://a.example");
        assert_eq!(a, device.app_pseudonym("https://a.example"));
        assert_eq!(a.len(), 26);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)));
        assert_ne!(a, device.app_pseudonym("https://b.example"));
        assert_ne!(a, device.app_pseudonym("https://a.example:8443"));
        let other = DeviceKey::from_seed(&[8; 32]);
        assert_ne!(a, other.app_pseudonym("https://a.example"));
        // Nothing of the public keys shows in it.
        let public = device.public_key().to_string();
        assert!(!public.contains(&a[..8]));
    }

    #[test]
    fn recovery_phrase_round_trips_once() {
        let mut identity = IdentityKey::generate().unwrap();
        let phrase = identity.export_recovery_phrase().unwrap();
        assert_eq!(phrase.words().count(), 24);
        assert!(matches!(
            identity.export_recovery_phrase(),
            Err(IdentityError::RecoveryAlreadyExported)
        ));
        let shouty = phrase.as_str().to_uppercase().replace(' ', "  \n ");
        let restored = IdentityKey::from_recovery_phrase(&shouty).unwrap();
        assert_eq!(restored.public_key(), identity.public_key());
        assert!(restored.recovery_exported());
        assert!(!format!("{phrase:?}").contains(phrase.words().next().unwrap()));
    }

    #[test]
    fn bad_recovery_phrases_say_what_is_wrong() {
        let mut identity = IdentityKey::generate().unwrap();
        let phrase = identity.export_recovery_phrase().unwrap();
        let mut words: Vec<&str> = phrase.words().collect();
        let err = IdentityKey::from_recovery_phrase(&words[..23].join(" ")).unwrap_err();
        assert_eq!(err.code(), "identity.invalid_recovery_phrase");
        assert!(err.to_string().contains("24 words"));
        words[3] = "notaword";
        let err = IdentityKey::from_recovery_phrase(&words.join(" ")).unwrap_err();
        assert!(err.to_string().contains("word 4"), "{err}");
        let mut words: Vec<&str> = phrase.words().collect();
        words.swap(0, 1);
        if words[0] != words[1] {
            let err = IdentityKey::from_recovery_phrase(&words.join(" "));
            // A swap keeps every word valid; the checksum catches it (or, in
            // rare cases, it decodes to a different key).
            if let Ok(other) = err {
                assert_ne!(other.public_key(), identity.public_key());
            }
        }
    }

    #[test]
    fn device_certificates_need_both_keys() {
        let identity = IdentityKey::generate().unwrap();
        let device = DeviceKey::generate().unwrap();
        let request = device.request_authorization(identity.public_key());
        let cert = identity.certify_device(&request).unwrap();
        assert!(cert.is_valid());

        let other = IdentityKey::generate().unwrap();
        assert!(other.certify_device(&request).is_err());

        let mut forged = request.clone();
        forged.device = DeviceKey::generate().unwrap().public_key();
        assert!(identity.certify_device(&forged).is_err());

        let mut tampered = cert.clone();
        tampered.identity = other.public_key();
        assert!(!tampered.is_valid());
    }

    #[test]
    fn public_keys_round_trip_through_text() {
        let key = DeviceKey::generate().unwrap().public_key();
        let text = key.to_string();
        assert_eq!(text.parse::<DevicePublicKey>().unwrap(), key);
        assert!("abc".parse::<DevicePublicKey>().is_err());
        assert!(text.to_uppercase().parse::<DevicePublicKey>().is_err());
        assert_eq!(key.actor_id().to_bytes(), key.as_bytes());
    }
}
