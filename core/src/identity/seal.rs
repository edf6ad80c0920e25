//! Sealing secret keys for storage under a host-supplied wrapping key.
//!
//! A secret key is serialized only here, and only encrypted. The host owns
//! the wrapping key: in the browser a non-extractable WebCrypto key, natively
//! [`ChaChaKeyWrap`] (XChaCha20-Poly1305 with a 32-byte key the host keeps).
//!
//! Hosts whose cipher is synchronous implement [`KeyWrap`] and call
//! `seal_with` / `unseal_with`. Hosts whose cipher is asynchronous (WebCrypto
//! returns promises) use the two-step form: `seal_request()` gives the
//! plaintext and associated data to encrypt, [`SealRequest::finish`] takes the
//! ciphertext; `SealedKey::aad` and `from_unsealed` do the reverse.
//!
//! Sealed form (version 1): `[version, kind, public key (32)] ++ ciphertext`.
//! The associated data binds the ciphertext to the version, kind and public
//! key, so a sealed device key cannot be passed off as an identity key nor
//! swapped for another key's blob. The plaintext is
//! `[flags, secret seed (32)]`; flag bit 0 = recovery phrase exported.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use super::error::IdentityError;
use super::keys::{DeviceKey, IdentityKey, KeyKind};

/// Format version of [`SealedKey`].
pub const SEALED_KEY_VERSION: u8 = 1;
const AAD_TAG: &[u8] = b"echo/sealed-key/v1\0";
const HEADER_LEN: usize = 2 + 32;
const PLAINTEXT_LEN: usize = 1 + 32;
const FLAG_RECOVERY_EXPORTED: u8 = 1;

/// Encrypts and decrypts small secrets with a key the host holds.
pub trait KeyWrap {
    /// Encrypts `plaintext`, authenticating `aad` with it.
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, IdentityError>;
    /// Decrypts what [`seal`](KeyWrap::seal) produced with the same `aad`.
    /// Fails with [`IdentityError::UnsealFailed`] on a wrong key or any change.
    fn unseal(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, IdentityError>;
}

/// Native [`KeyWrap`]: XChaCha20-Poly1305 with a 32-byte key from the host
/// and a random 24-byte nonce per seal (output: nonce ++ ciphertext ++ tag).
/// The key is zeroized on drop.
pub struct ChaChaKeyWrap {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for ChaChaKeyWrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChaChaKeyWrap(key redacted)")
    }
}

const NONCE_LEN: usize = 24;

impl ChaChaKeyWrap {
    /// Uses `key` (32 bytes) as the wrapping key.
    pub fn new(key: &[u8]) -> Result<Self, IdentityError> {
        let cipher = XChaCha20Poly1305::new_from_slice(key).map_err(|_| {
            IdentityError::WrappingKeyLength {
                expected: 32,
                found: key.len(),
            }
        })?;
        Ok(Self { cipher })
    }

    /// A fresh random wrapping key, returned so the host can keep it.
    pub fn generate() -> Result<(Self, Zeroizing<[u8; 32]>), IdentityError> {
        let key = super::keys::random_seed()?;
        Ok((Self::new(key.as_ref())?, key))
    }
}

impl KeyWrap for ChaChaKeyWrap {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, IdentityError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| IdentityError::RandomUnavailable)?;
        let ciphertext = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| IdentityError::SealFailed {
                reason: "the plaintext is too long".into(),
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn unseal(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        if sealed.len() < NONCE_LEN {
            return Err(IdentityError::UnsealFailed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| IdentityError::UnsealFailed)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| IdentityError::UnsealFailed)
    }
}

/// A secret key encrypted under a host's wrapping key. Safe to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedKey {
    kind: KeyKind,
    public: [u8; 32],
    ciphertext: Vec<u8>,
}

impl SealedKey {
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
    /// The public key of the sealed secret key.
    pub fn public_key_bytes(&self) -> &[u8; 32] {
        &self.public
    }
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }
    /// The associated data the ciphertext is bound to.
    pub fn aad(&self) -> Vec<u8> {
        aad(self.kind, &self.public)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.ciphertext.len());
        out.push(SEALED_KEY_VERSION);
        out.push(self.kind.tag());
        out.extend_from_slice(&self.public);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        if bytes.len() < HEADER_LEN {
            return Err(IdentityError::MalformedSealedKey {
                reason: format!("{} bytes is too short for a sealed key", bytes.len()),
            });
        }
        if bytes[0] != SEALED_KEY_VERSION {
            return Err(IdentityError::UnsupportedSealedVersion {
                found: bytes[0],
                supported: SEALED_KEY_VERSION,
            });
        }
        let kind =
            KeyKind::from_tag(bytes[1]).ok_or_else(|| IdentityError::MalformedSealedKey {
                reason: format!("unknown key kind {}", bytes[1]),
            })?;
        let public: [u8; 32] =
            bytes[2..HEADER_LEN]
                .try_into()
                .map_err(|_| IdentityError::MalformedSealedKey {
                    reason: "truncated public key".into(),
                })?;
        Ok(Self {
            kind,
            public,
            ciphertext: bytes[HEADER_LEN..].to_vec(),
        })
    }
}

fn aad(kind: KeyKind, public: &[u8; 32]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_TAG.len() + 2 + 32);
    aad.extend_from_slice(AAD_TAG);
    aad.push(SEALED_KEY_VERSION);
    aad.push(kind.tag());
    aad.extend_from_slice(public);
    aad
}

/// What an asynchronous host must encrypt to seal a key.
pub struct SealRequest {
    kind: KeyKind,
    public: [u8; 32],
    plaintext: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SealRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealRequest({:?}, plaintext redacted)", self.kind)
    }
}

impl SealRequest {
    /// The secret to encrypt. Do not keep or log it.
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }
    /// The associated data to authenticate with it.
    pub fn aad(&self) -> Vec<u8> {
        aad(self.kind, &self.public)
    }
    /// Wraps the host's ciphertext into a storable [`SealedKey`].
    pub fn finish(self, ciphertext: Vec<u8>) -> SealedKey {
        SealedKey {
            kind: self.kind,
            public: self.public,
            ciphertext,
        }
    }
}

fn request(kind: KeyKind, signing: &SigningKey, flags: u8) -> SealRequest {
    let mut plaintext = Zeroizing::new(Vec::with_capacity(PLAINTEXT_LEN));
    plaintext.push(flags);
    plaintext.extend_from_slice(signing.as_bytes());
    SealRequest {
        kind,
        public: signing.verifying_key().to_bytes(),
        plaintext,
    }
}

/// Checks an unsealed plaintext against the sealed header; returns the key
/// and the flags.
fn open(
    expected: KeyKind,
    sealed: &SealedKey,
    plaintext: &[u8],
) -> Result<(SigningKey, u8), IdentityError> {
    if sealed.kind != expected {
        return Err(IdentityError::WrongKeyKind {
            expected: expected.name(),
            found: sealed.kind.name(),
        });
    }
    if plaintext.len() != PLAINTEXT_LEN {
        return Err(IdentityError::MalformedSealedKey {
            reason: format!("unsealed secret has {} bytes", plaintext.len()),
        });
    }
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(plaintext[1..].try_into().map_err(|_| {
        IdentityError::MalformedSealedKey {
            reason: "unsealed secret is truncated".into(),
        }
    })?);
    let signing = SigningKey::from_bytes(&seed);
    if signing.verifying_key().to_bytes() != sealed.public {
        return Err(IdentityError::MalformedSealedKey {
            reason: "the unsealed secret does not match the sealed public key".into(),
        });
    }
    Ok((signing, plaintext[0]))
}

impl IdentityKey {
    /// Seals this key under the host's wrapping key.
    pub fn seal_with(&self, wrap: &dyn KeyWrap) -> Result<SealedKey, IdentityError> {
        let request = self.seal_request();
        let ciphertext = wrap.seal(request.plaintext(), &request.aad())?;
        Ok(request.finish(ciphertext))
    }

    /// Opens a sealed identity key.
    pub fn unseal_with(sealed: &SealedKey, wrap: &dyn KeyWrap) -> Result<Self, IdentityError> {
        if sealed.kind != KeyKind::Identity {
            return Err(IdentityError::WrongKeyKind {
                expected: KeyKind::Identity.name(),
                found: sealed.kind.name(),
            });
        }
        let plaintext = wrap.unseal(&sealed.ciphertext, &sealed.aad())?;
        Self::from_unsealed(sealed, &plaintext)
    }

    /// First step of sealing with an asynchronous cipher.
    pub fn seal_request(&self) -> SealRequest {
        let flags = if self.recovery_exported {
            FLAG_RECOVERY_EXPORTED
        } else {
            0
        };
        request(KeyKind::Identity, &self.signing, flags)
    }

    /// Rebuilds the key from the plaintext an asynchronous host decrypted
    /// from `sealed.ciphertext()` with `sealed.aad()`.
    pub fn from_unsealed(sealed: &SealedKey, plaintext: &[u8]) -> Result<Self, IdentityError> {
        let (signing, flags) = open(KeyKind::Identity, sealed, plaintext)?;
        Ok(Self {
            signing,
            recovery_exported: flags & FLAG_RECOVERY_EXPORTED != 0,
        })
    }
}

impl DeviceKey {
    /// Seals this key under the host's wrapping key.
    pub fn seal_with(&self, wrap: &dyn KeyWrap) -> Result<SealedKey, IdentityError> {
        let request = self.seal_request();
        let ciphertext = wrap.seal(request.plaintext(), &request.aad())?;
        Ok(request.finish(ciphertext))
    }

    /// Opens a sealed device key.
    pub fn unseal_with(sealed: &SealedKey, wrap: &dyn KeyWrap) -> Result<Self, IdentityError> {
        if sealed.kind != KeyKind::Device {
            return Err(IdentityError::WrongKeyKind {
                expected: KeyKind::Device.name(),
                found: sealed.kind.name(),
            });
        }
        let plaintext = wrap.unseal(&sealed.ciphertext, &sealed.aad())?;
        Self::from_unsealed(sealed, &plaintext)
    }

    /// First step of sealing with an asynchronous cipher.
    pub fn seal_request(&self) -> SealRequest {
        request(KeyKind::Device, &self.signing, 0)
    }

    /// Rebuilds the key from the plaintext an asynchronous host decrypted.
    pub fn from_unsealed(sealed: &SealedKey, plaintext: &[u8]) -> Result<Self, IdentityError> {
        let (signing, _) = open(KeyKind::Device, sealed, plaintext)?;
        Ok(Self { signing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_round_trip_and_keep_the_export_flag() {
        let (wrap, _key) = ChaChaKeyWrap::generate().unwrap();
        let mut identity = IdentityKey::generate().unwrap();
        let sealed = identity.seal_with(&wrap).unwrap();
        let bytes = sealed.to_bytes();
        let opened =
            IdentityKey::unseal_with(&SealedKey::from_bytes(&bytes).unwrap(), &wrap).unwrap();
        assert_eq!(opened.public_key(), identity.public_key());
        assert!(!opened.recovery_exported());

        identity.export_recovery_phrase().unwrap();
        let sealed = identity.seal_with(&wrap).unwrap();
        let mut opened = IdentityKey::unseal_with(&sealed, &wrap).unwrap();
        assert!(matches!(
            opened.export_recovery_phrase(),
            Err(IdentityError::RecoveryAlreadyExported)
        ));

        let device = DeviceKey::generate().unwrap();
        let sealed = device.seal_with(&wrap).unwrap();
        let opened = DeviceKey::unseal_with(&sealed, &wrap).unwrap();
        assert_eq!(opened.public_key(), device.public_key());
    }

    #[test]
    fn wrong_key_tampering_and_kind_swaps_fail() {
        let (wrap, _) = ChaChaKeyWrap::generate().unwrap();
        let (other, _) = ChaChaKeyWrap::generate().unwrap();
        let identity = IdentityKey::generate().unwrap();
        let sealed = identity.seal_with(&wrap).unwrap();
        assert_eq!(
            IdentityKey::unseal_with(&sealed, &other)
                .unwrap_err()
                .code(),
            "identity.unseal_failed"
        );

        let mut bytes = sealed.to_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = SealedKey::from_bytes(&bytes).unwrap();
        assert!(IdentityKey::unseal_with(&tampered, &wrap).is_err());

        // Relabel an identity blob as a device blob: the header is
        // authenticated, so this fails too.
        let mut bytes = sealed.to_bytes();
        bytes[1] = KeyKind::Device.tag();
        let relabeled = SealedKey::from_bytes(&bytes).unwrap();
        assert!(DeviceKey::unseal_with(&relabeled, &wrap).is_err());
        assert_eq!(
            DeviceKey::unseal_with(&sealed, &wrap).unwrap_err().code(),
            "identity.wrong_key_kind"
        );

        assert!(SealedKey::from_bytes(&[1, 2]).is_err());
        assert_eq!(
            SealedKey::from_bytes(&[9; 40]).unwrap_err().code(),
            "identity.unsupported_sealed_version"
        );
        assert_eq!(
            ChaChaKeyWrap::new(&[0; 16]).unwrap_err().code(),
            "identity.wrapping_key_length"
        );
    }

    #[test]
    fn asynchronous_hosts_seal_in_two_steps() {
        // What a WebCrypto host does: encrypt the request's plaintext with
        // its own key and the request's associated data, hand back bytes.
        let (host, _) = ChaChaKeyWrap::generate().unwrap();
        let mut identity = IdentityKey::generate().unwrap();
        identity.export_recovery_phrase().unwrap();
        let request = identity.seal_request();
        assert!(!format!("{request:?}").contains("plaintext:"));
        let ciphertext = host.seal(request.plaintext(), &request.aad()).unwrap();
        let sealed = SealedKey::from_bytes(&request.finish(ciphertext).to_bytes()).unwrap();
        assert_eq!(sealed.kind(), KeyKind::Identity);
        assert_eq!(sealed.public_key_bytes(), identity.public_key().as_bytes());
        let plaintext = host.unseal(sealed.ciphertext(), &sealed.aad()).unwrap();
        let opened = IdentityKey::from_unsealed(&sealed, &plaintext).unwrap();
        assert_eq!(opened.public_key(), identity.public_key());
        assert!(opened.recovery_exported());
        // A plaintext that does not match the sealed public key is refused.
        let other = DeviceKey::generate().unwrap().seal_request();
        assert!(IdentityKey::from_unsealed(&sealed, other.plaintext()).is_err());
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let (wrap, _) = ChaChaKeyWrap::generate().unwrap();
        let device = DeviceKey::generate().unwrap();
        let a = device.seal_with(&wrap).unwrap();
        let b = device.seal_with(&wrap).unwrap();
        assert_ne!(a.ciphertext(), b.ciphertext());
    }
}
