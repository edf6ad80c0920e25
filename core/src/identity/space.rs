//! The two kinds of credential log: a space's control log ([`SpaceControl`])
//! and an identity's own log ([`Halo`]).

use std::ops::{Deref, DerefMut};

use super::credential::{Credential, CredentialKind, Issuer, LogId, Role};
use super::error::IdentityError;
use super::keys::{DeviceCertificate, DevicePublicKey, IdentityKey, IdentityPublicKey};
use super::log::{CredentialLog, DeviceStatus};
use crate::data::SpaceId;

/// A space's control log and membership state: who may read and write the
/// space's data, from which devices. Derefs to [`CredentialLog`] for
/// receiving credentials, heads and state.
#[derive(Debug)]
pub struct SpaceControl {
    space: SpaceId,
    log: CredentialLog,
}

impl Deref for SpaceControl {
    type Target = CredentialLog;
    fn deref(&self) -> &CredentialLog {
        &self.log
    }
}

impl DerefMut for SpaceControl {
    fn deref_mut(&mut self) -> &mut CredentialLog {
        &mut self.log
    }
}

impl SpaceControl {
    /// Creates a space: its genesis makes `owner`'s identity the owner.
    /// When a device creates it (`Issuer::Device`), pass that device's
    /// certificate: the genesis authorizes it.
    pub fn create(
        space: SpaceId,
        owner: Issuer<'_>,
        device: Option<DeviceCertificate>,
    ) -> Result<Self, IdentityError> {
        let log = CredentialLog::create(LogId::Space(space), owner, device)?;
        Ok(Self { space, log })
    }

    /// Opens a space's control log from its genesis (received from a peer or
    /// read from storage); then [`receive`](CredentialLog::receive) the rest.
    pub fn from_genesis(genesis: Credential) -> Result<Self, IdentityError> {
        let LogId::Space(space) = genesis.log() else {
            return Err(IdentityError::BadGenesis {
                hash: genesis.hash(),
                reason: "this is the genesis of an identity log, not of a space",
            });
        };
        Ok(Self {
            space,
            log: CredentialLog::from_genesis(genesis)?,
        })
    }

    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// The owner (the genesis issuer).
    pub fn owner(&self) -> IdentityPublicKey {
        self.log.genesis().issuer()
    }

    /// Admits `member` with `role`.
    pub fn admit(
        &mut self,
        by: Issuer<'_>,
        member: IdentityPublicKey,
        role: Role,
    ) -> Result<Credential, IdentityError> {
        self.log.issue(by, CredentialKind::Admit { member, role })
    }

    pub fn change_role(
        &mut self,
        by: Issuer<'_>,
        member: IdentityPublicKey,
        role: Role,
    ) -> Result<Credential, IdentityError> {
        self.log
            .issue(by, CredentialKind::ChangeRole { member, role })
    }

    /// Removes `member` (or, with `member` = the issuer, leaves).
    pub fn remove(
        &mut self,
        by: Issuer<'_>,
        member: IdentityPublicKey,
    ) -> Result<Credential, IdentityError> {
        self.log.issue(by, CredentialKind::Remove { member })
    }

    /// Authorizes a device of the issuer's identity in this space.
    pub fn authorize_device(
        &mut self,
        by: Issuer<'_>,
        certificate: DeviceCertificate,
    ) -> Result<Credential, IdentityError> {
        self.log
            .issue(by, CredentialKind::AuthorizeDevice { certificate })
    }

    /// Revokes a device in this space (its own identity, an admin or the
    /// owner may).
    pub fn revoke_device(
        &mut self,
        by: Issuer<'_>,
        identity: IdentityPublicKey,
        device: DevicePublicKey,
    ) -> Result<Credential, IdentityError> {
        self.log
            .issue(by, CredentialKind::RevokeDevice { identity, device })
    }

    /// The current role of `identity`, if a member.
    pub fn role_of(&self, identity: &IdentityPublicKey) -> Option<Role> {
        self.log.state().role(identity)
    }

    /// Whether `identity` may write to the space now.
    pub fn can_write(&self, identity: &IdentityPublicKey) -> bool {
        self.log.state().can_write(identity)
    }

    /// Whether `device` may write to the space now (authorized, unrevoked,
    /// for a member whose role writes).
    pub fn device_can_write(&self, device: &DevicePublicKey) -> bool {
        match self.log.state().device(device) {
            Some(DeviceStatus::Authorized { identity }) => self.can_write(&identity),
            _ => false,
        }
    }
}

/// An identity's own credential log (HALO): which devices act for it.
#[derive(Debug)]
pub struct Halo {
    identity: IdentityPublicKey,
    log: CredentialLog,
}

impl Deref for Halo {
    type Target = CredentialLog;
    fn deref(&self) -> &CredentialLog {
        &self.log
    }
}

impl DerefMut for Halo {
    fn deref_mut(&mut self) -> &mut CredentialLog {
        &mut self.log
    }
}

impl Halo {
    /// Starts the identity's log, signed by the identity key.
    pub fn create(identity: &IdentityKey) -> Result<Self, IdentityError> {
        let log = CredentialLog::create(LogId::Halo(identity.public_key()), identity.into(), None)?;
        Ok(Self {
            identity: identity.public_key(),
            log,
        })
    }

    pub fn from_genesis(genesis: Credential) -> Result<Self, IdentityError> {
        let LogId::Halo(identity) = genesis.log() else {
            return Err(IdentityError::BadGenesis {
                hash: genesis.hash(),
                reason: "this is the genesis of a space, not of an identity log",
            });
        };
        Ok(Self {
            identity,
            log: CredentialLog::from_genesis(genesis)?,
        })
    }

    pub fn identity(&self) -> IdentityPublicKey {
        self.identity
    }

    /// Authorizes a certified device for this identity.
    pub fn authorize_device(
        &mut self,
        by: Issuer<'_>,
        certificate: DeviceCertificate,
    ) -> Result<Credential, IdentityError> {
        self.log
            .issue(by, CredentialKind::AuthorizeDevice { certificate })
    }

    /// Revokes a device of this identity, for good.
    pub fn revoke_device(
        &mut self,
        by: Issuer<'_>,
        device: DevicePublicKey,
    ) -> Result<Credential, IdentityError> {
        let identity = self.identity;
        self.log
            .issue(by, CredentialKind::RevokeDevice { identity, device })
    }

    /// The authorized, unrevoked devices.
    pub fn devices(&self) -> Vec<DevicePublicKey> {
        self.log.state().devices_of(&self.identity)
    }

    /// The certificate of an authorized device, to carry into a space's
    /// log with `SpaceControl::authorize_device`.
    pub fn certificate(&self, device: &DevicePublicKey) -> Option<DeviceCertificate> {
        if !self.devices().contains(device) {
            return None;
        }
        self.log.credentials().find_map(|c| match c.kind() {
            CredentialKind::AuthorizeDevice { certificate } if certificate.device == *device => {
                Some(certificate.clone())
            }
            CredentialKind::Genesis {
                device: Some(certificate),
            } if certificate.device == *device => Some(certificate.clone()),
            _ => None,
        })
    }
}
