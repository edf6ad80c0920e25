//! Errors of the identity module. Every variant has a stable
//! [`code`](IdentityError::code) and a message a person can act on.

use thiserror::Error;

use super::credential::{CredentialHash, Role};
use super::keys::{DevicePublicKey, IdentityPublicKey};

/// Errors of keys, sealing, recovery phrases and credential logs.
#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("the operating system's random source is unavailable; keys cannot be created safely")]
    RandomUnavailable,
    #[error("the wrapping key is not {expected} bytes long (got {found})")]
    WrappingKeyLength { expected: usize, found: usize },
    #[error("sealing failed: {reason}")]
    SealFailed { reason: String },
    #[error(
        "the sealed key could not be opened: wrong wrapping key, or the sealed data was changed"
    )]
    UnsealFailed,
    #[error("sealed key data is malformed: {reason}")]
    MalformedSealedKey { reason: String },
    #[error("sealed key format version {found} is not supported (this build reads version {supported}); update the vault")]
    UnsupportedSealedVersion { found: u8, supported: u8 },
    #[error("the sealed key holds {found} key, not {expected} key")]
    WrongKeyKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error("the recovery phrase of this identity was already exported; it can be shown only once. Restore from the phrase written down, or create a new identity")]
    RecoveryAlreadyExported,
    #[error("invalid recovery phrase: {reason}")]
    InvalidRecoveryPhrase { reason: String },
    #[error("invalid public key: {reason}")]
    InvalidPublicKey { reason: String },
    #[error("invalid device authorization request: {reason}")]
    InvalidDeviceRequest { reason: String },
    #[error("credential data is malformed: {reason}")]
    MalformedCredential { reason: String },
    #[error(
        "credential format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedCredentialVersion { found: u8, supported: u8 },
    #[error(
        "credential {hash} belongs to {found}, not to {expected}; it was replayed from another log"
    )]
    WrongLog {
        hash: CredentialHash,
        expected: String,
        found: String,
    },
    #[error("credential {hash} has an invalid signature")]
    BadCredentialSignature { hash: CredentialHash },
    #[error("credential {hash} carries an invalid device certificate")]
    BadDeviceCertificate { hash: CredentialHash },
    #[error("credential {hash} is not a valid genesis: {reason}")]
    BadGenesis {
        hash: CredentialHash,
        reason: &'static str,
    },
    #[error("credential {hash} was refused: {reason}")]
    Unauthorized {
        hash: CredentialHash,
        reason: Denied,
    },
    #[error("{limit} credentials are already waiting for their parents; credential {hash} was dropped. Sync the credential log from its start")]
    PendingCredentialsFull { hash: CredentialHash, limit: usize },
    #[error("{bundles} change bundles ({bytes} bytes) are already waiting for credentials; the bundle was dropped. Sync the credential log first, then the data")]
    PendingChangesFull { bundles: usize, bytes: usize },
    #[error("change {index} cannot be signed: {reason}")]
    UnsignableChange { index: usize, reason: String },
    #[error("credential {hash} is not part of this log")]
    UnknownCredential { hash: CredentialHash },
    #[error("could not encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

impl IdentityError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::RandomUnavailable => "identity.random_unavailable",
            IdentityError::WrappingKeyLength { .. } => "identity.wrapping_key_length",
            IdentityError::SealFailed { .. } => "identity.seal_failed",
            IdentityError::UnsealFailed => "identity.unseal_failed",
            IdentityError::MalformedSealedKey { .. } => "identity.malformed_sealed_key",
            IdentityError::UnsupportedSealedVersion { .. } => "identity.unsupported_sealed_version",
            IdentityError::WrongKeyKind { .. } => "identity.wrong_key_kind",
            IdentityError::RecoveryAlreadyExported => "identity.recovery_already_exported",
            IdentityError::InvalidRecoveryPhrase { .. } => "identity.invalid_recovery_phrase",
            IdentityError::InvalidPublicKey { .. } => "identity.invalid_public_key",
            IdentityError::InvalidDeviceRequest { .. } => "identity.invalid_device_request",
            IdentityError::MalformedCredential { .. } => "identity.malformed_credential",
            IdentityError::UnsupportedCredentialVersion { .. } => {
                "identity.unsupported_credential_version"
            }
            IdentityError::WrongLog { .. } => "identity.wrong_log",
            IdentityError::BadCredentialSignature { .. } => "identity.bad_credential_signature",
            IdentityError::BadDeviceCertificate { .. } => "identity.bad_device_certificate",
            IdentityError::BadGenesis { .. } => "identity.bad_genesis",
            IdentityError::Unauthorized { reason, .. } => reason.code(),
            IdentityError::PendingCredentialsFull { .. } => "identity.pending_credentials_full",
            IdentityError::PendingChangesFull { .. } => "identity.pending_changes_full",
            IdentityError::UnsignableChange { .. } => "identity.unsignable_change",
            IdentityError::UnknownCredential { .. } => "identity.unknown_credential",
            IdentityError::Encode { .. } => "identity.encode",
        }
    }
}

/// Why a credential's issuer was not allowed to issue it, judged against the
/// membership state of the credential's causal past (see `docs/membership.md`).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Denied {
    #[error("the signing key {signer} is neither the issuer's identity key nor a device authorized for it")]
    SignerNotAuthorized { signer: DevicePublicKey },
    #[error("the signing device {signer} was revoked")]
    SignerRevoked { signer: DevicePublicKey },
    #[error("the issuer {issuer} is not a member of this space")]
    IssuerNotMember { issuer: IdentityPublicKey },
    #[error("the issuer has role {role}; {action} needs admin or owner")]
    RoleTooLow { role: Role, action: &'static str },
    #[error("the owner cannot be removed, demoted or re-admitted")]
    OwnerIsPermanent,
    #[error("the owner role is given only by the space's genesis and cannot be granted")]
    CannotGrantOwner,
    #[error("{member} is already a member; change their role instead")]
    AlreadyMember { member: IdentityPublicKey },
    #[error("{member} is not a member")]
    NotMember { member: IdentityPublicKey },
    #[error("membership credentials do not belong in an identity (HALO) log")]
    NotInHalo,
    #[error("a device may be authorized only by its own identity")]
    DeviceOfOtherIdentity,
    #[error("device {device} is already claimed by another identity")]
    DeviceClaimed { device: DevicePublicKey },
    #[error("device {device} is not authorized for {identity}")]
    DeviceUnknown {
        device: DevicePublicKey,
        identity: IdentityPublicKey,
    },
    #[error("device {device} was revoked; a revoked device cannot be authorized again, create a new device key")]
    DeviceRevoked { device: DevicePublicKey },
    #[error("only the device's own identity, or an admin or owner whose role is above that identity's, can revoke a device")]
    CannotRevoke,
    #[error("voided by the concurrent removal or revocation {by} of its issuer")]
    Voided { by: CredentialHash },
}

impl Denied {
    pub fn code(&self) -> &'static str {
        match self {
            Denied::SignerNotAuthorized { .. } => "identity.denied.signer_not_authorized",
            Denied::SignerRevoked { .. } => "identity.denied.signer_revoked",
            Denied::IssuerNotMember { .. } => "identity.denied.issuer_not_member",
            Denied::RoleTooLow { .. } => "identity.denied.role_too_low",
            Denied::OwnerIsPermanent => "identity.denied.owner_is_permanent",
            Denied::CannotGrantOwner => "identity.denied.cannot_grant_owner",
            Denied::AlreadyMember { .. } => "identity.denied.already_member",
            Denied::NotMember { .. } => "identity.denied.not_member",
            Denied::NotInHalo => "identity.denied.not_in_halo",
            Denied::DeviceOfOtherIdentity => "identity.denied.device_of_other_identity",
            Denied::DeviceClaimed { .. } => "identity.denied.device_claimed",
            Denied::DeviceUnknown { .. } => "identity.denied.device_unknown",
            Denied::DeviceRevoked { .. } => "identity.denied.device_revoked",
            Denied::CannotRevoke => "identity.denied.cannot_revoke",
            Denied::Voided { .. } => "identity.denied.voided",
        }
    }
}

/// Why a signed change bundle was not accepted. Rejected changes are not
/// applied, not stored and not relayed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("change bundle is malformed: {reason}")]
    Malformed { reason: String },
    #[error("change bundle format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("change bundle is for space {found}, not {expected}")]
    WrongSpace { expected: String, found: String },
    #[error("change {index} of the bundle is not a valid Automerge change: {reason}")]
    MalformedChange { index: usize, reason: String },
    #[error("the bundle's signature does not match its signer, space and changes")]
    BadSignature,
    #[error("change {index} was made by actor {actor}, not by the signing device")]
    ActorMismatch { index: usize, actor: String },
    #[error("the bundle refers to {} credential(s) this replica does not have yet; it waits until they arrive", missing.len())]
    MissingCredentials { missing: Vec<CredentialHash> },
    #[error("device {device} is not authorized for any member of this space")]
    DeviceNotAuthorized { device: DevicePublicKey },
    #[error("device {device} was revoked before these changes were made")]
    DeviceRevoked { device: DevicePublicKey },
    #[error("{identity} is not a member of this space (never admitted, or removed)")]
    NotAMember { identity: IdentityPublicKey },
    #[error("{identity} has role {role}, which cannot write")]
    ReadOnly {
        identity: IdentityPublicKey,
        role: Role,
    },
    #[error("change {seq} of shard {shard} is past the last change credential {by} allowed this device; its signer was removed, demoted or revoked and names control heads from before that")]
    BeyondWatermark {
        by: CredentialHash,
        shard: u16,
        seq: u64,
    },
    #[error("the bundle names control heads older than those of bundles its changes build on")]
    ControlRegressed,
    #[error("the signer signed two different changes as number {seq} of shard {shard}; the second is refused and the evidence kept")]
    Equivocation { shard: u16, seq: u64 },
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed { .. } => "identity.bundle.malformed",
            Rejection::UnsupportedVersion { .. } => "identity.bundle.unsupported_version",
            Rejection::WrongSpace { .. } => "identity.bundle.wrong_space",
            Rejection::MalformedChange { .. } => "identity.bundle.malformed_change",
            Rejection::BadSignature => "identity.bundle.bad_signature",
            Rejection::ActorMismatch { .. } => "identity.bundle.actor_mismatch",
            Rejection::MissingCredentials { .. } => "identity.bundle.missing_credentials",
            Rejection::DeviceNotAuthorized { .. } => "identity.bundle.device_not_authorized",
            Rejection::DeviceRevoked { .. } => "identity.bundle.device_revoked",
            Rejection::NotAMember { .. } => "identity.bundle.not_a_member",
            Rejection::ReadOnly { .. } => "identity.bundle.read_only",
            Rejection::BeyondWatermark { .. } => "identity.bundle.backdated",
            Rejection::ControlRegressed => "identity.bundle.control_regressed",
            Rejection::Equivocation { .. } => "identity.bundle.equivocation",
        }
    }

    /// True when the bundle may become acceptable later (its credentials have
    /// not arrived yet); every other rejection is final.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Rejection::MissingCredentials { .. })
    }
}
