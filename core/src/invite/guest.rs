//! The guest's side of an invitation.
//!
//! ```text
//! start(code)          → Hello;                        Connecting
//! Accept (host ok)     →                               ReadyForCode
//! enter_code(digits)   → Pake;                         Authenticating
//! PakeReply            → Confirm (+ who we are, if the host's tag matched)
//! WrongCode(left)      →                               ReadyForCode again
//! Admitted(export, …)  → GuestStep::Admitted;          Done
//! Refuse / Ended       → the error;                    Done
//! ```

use x25519_dalek::{PublicKey, StaticSecret};

use super::code::{AuthCode, DeviceFingerprint, InviteCode};
use super::error::InviteError;
use super::keys::{self, Channel, Confirmation, Side};
use super::wire::{InviteWire, Join, Sealed};
use crate::identity::{DeviceCertificate, DeviceKey, IdentityPublicKey, Role};
use crate::rng::EngineRng;

/// Where the guest stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestState {
    /// Looking for the host, or waiting for its answer.
    Connecting,
    /// The host is the one the code names: type the code it shows.
    ReadyForCode,
    /// The code was sent; the host's verdict is awaited.
    Authenticating,
    /// Over.
    Done,
}

/// What a host's message means for the guest's vault.
#[derive(Debug)]
pub enum GuestStep {
    /// Nothing to do but wait.
    Wait,
    /// Send this to the host.
    Send(InviteWire),
    /// The host said the code was wrong.
    WrongCode { attempts_left: u8 },
    /// Admitted: join the space from its export.
    Admitted {
        export: String,
        host_identity: IdentityPublicKey,
        role: Role,
    },
}

struct Pending {
    pake: spake2::Spake2<spake2::Ed25519Group>,
    message: Vec<u8>,
}

/// The guest's exchange with a host.
pub struct GuestSession {
    code: InviteCode,
    secret: StaticSecret,
    guest_dh: [u8; 32],
    nonce: [u8; 16],
    keyed: Option<Keyed>,
    pending: Option<Pending>,
    state: GuestState,
}

struct Keyed {
    channel: Channel,
    t1: keys::Hash,
    dh: zeroize::Zeroizing<[u8; 32]>,
    host_dh: [u8; 32],
}

impl std::fmt::Debug for GuestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestSession")
            .field("invitation", &self.code.id.to_hex())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl GuestSession {
    /// Starts answering `code`: the session and its `Hello`.
    pub fn start(code: InviteCode, rng: &mut EngineRng) -> (Self, InviteWire) {
        let secret = StaticSecret::from(*rng.secret_seed());
        let guest_dh = PublicKey::from(&secret).to_bytes();
        let nonce = rng.bytes();
        let hello = InviteWire::Hello {
            invitation: code.id,
            guest_dh,
            nonce,
        };
        (
            GuestSession {
                code,
                secret,
                guest_dh,
                nonce,
                keyed: None,
                pending: None,
                state: GuestState::Connecting,
            },
            hello,
        )
    }

    pub fn code(&self) -> &InviteCode {
        &self.code
    }

    pub fn state(&self) -> GuestState {
        self.state
    }

    /// The person typed the authorization code: the PAKE's first message.
    pub fn enter_code(
        &mut self,
        code: &AuthCode,
        rng: &mut EngineRng,
    ) -> Result<InviteWire, InviteError> {
        if self.state != GuestState::ReadyForCode {
            return Err(InviteError::NotReady);
        }
        let Some(keyed) = self.keyed.as_mut() else {
            return Err(InviteError::NotReady);
        };
        let (guest_id, host_id) = keys::pake_identities(&self.guest_dh, &keyed.host_dh);
        let (pake, message) = spake2::Spake2::<spake2::Ed25519Group>::start_a_with_rng(
            &keys::pake_password(&self.code.id, code),
            &guest_id,
            &host_id,
            rng.csprng(),
        );
        let wire = seal(
            &mut keyed.channel,
            &Sealed::Pake {
                message: message.clone(),
            },
        );
        self.pending = Some(Pending { pake, message });
        self.state = GuestState::Authenticating;
        Ok(wire)
    }

    /// A message from the host. `device` and `certificate` are this
    /// vault's, sent once the host proved it knows the same code.
    pub fn on_message(
        &mut self,
        message: &InviteWire,
        device: &DeviceKey,
        certificate: &DeviceCertificate,
        display_name: Option<String>,
    ) -> Result<GuestStep, InviteError> {
        let result = self.step(message, device, certificate, display_name);
        if result.is_err() || matches!(result, Ok(GuestStep::Admitted { .. })) {
            self.state = GuestState::Done;
        }
        result
    }

    fn step(
        &mut self,
        message: &InviteWire,
        device: &DeviceKey,
        certificate: &DeviceCertificate,
        display_name: Option<String>,
    ) -> Result<GuestStep, InviteError> {
        match (self.state, message) {
            (_, InviteWire::Refuse { reason }) if self.keyed.is_none() => Err(reason.error()),
            (
                GuestState::Connecting,
                InviteWire::Accept {
                    host_dh,
                    host_device,
                    signature,
                },
            ) => {
                if DeviceFingerprint::of(host_device) != self.code.host {
                    return Err(InviteError::HostMismatch);
                }
                let t1 = keys::transcript1(
                    &self.code.id,
                    &self.guest_dh,
                    &self.nonce,
                    host_dh,
                    host_device,
                );
                if !host_device.verify(&keys::accept_message(&t1), signature) {
                    return Err(InviteError::HostMismatch);
                }
                let shared = self.secret.diffie_hellman(&PublicKey::from(*host_dh));
                if !shared.was_contributory() {
                    return Err(InviteError::Protocol("a degenerate key"));
                }
                let dh = zeroize::Zeroizing::new(shared.to_bytes());
                self.keyed = Some(Keyed {
                    channel: Channel::new(Side::Guest, &t1, &dh),
                    t1,
                    dh,
                    host_dh: *host_dh,
                });
                self.state = GuestState::ReadyForCode;
                Ok(GuestStep::Wait)
            }
            (_, InviteWire::Sealed { seq, body }) => {
                let Some(keyed) = self.keyed.as_mut() else {
                    return Err(InviteError::Protocol("a sealed message before the keys"));
                };
                let plain = keyed.channel.open(*seq, body)?;
                let sealed: Sealed = postcard::from_bytes(&plain)
                    .map_err(|_| InviteError::Protocol("a message that does not decode"))?;
                self.sealed(sealed, device, certificate, display_name)
            }
            _ => Err(InviteError::Protocol("a message out of turn")),
        }
    }

    fn sealed(
        &mut self,
        message: Sealed,
        device: &DeviceKey,
        certificate: &DeviceCertificate,
        display_name: Option<String>,
    ) -> Result<GuestStep, InviteError> {
        let Some(keyed) = self.keyed.as_mut() else {
            return Err(InviteError::Protocol("a sealed message before the keys"));
        };
        match (self.state, message) {
            (GuestState::Authenticating, Sealed::PakeReply { message, confirm }) => {
                let Some(Pending {
                    pake,
                    message: ours,
                }) = self.pending.take()
                else {
                    return Err(InviteError::Protocol("a PAKE reply out of turn"));
                };
                let key = pake
                    .finish(&message)
                    .map_err(|_| InviteError::Protocol("a PAKE message that does not decode"))?;
                let t2 = keys::transcript2(&keyed.t1, &ours, &message);
                let confirmation = Confirmation::new(t2, &keyed.dh, &key);
                let join = confirmation.check(Side::Host, &confirm).then(|| {
                    Box::new(Join {
                        certificate: certificate.clone(),
                        signature: device.sign(&keys::join_message(&t2)),
                        display_name,
                    })
                });
                let confirm = confirmation.tag(Side::Guest);
                Ok(GuestStep::Send(seal(
                    &mut keyed.channel,
                    &Sealed::Confirm { confirm, join },
                )))
            }
            (GuestState::Authenticating, Sealed::WrongCode { attempts_left }) => {
                self.state = GuestState::ReadyForCode;
                Ok(GuestStep::WrongCode { attempts_left })
            }
            (
                GuestState::Authenticating,
                Sealed::Admitted {
                    export,
                    host_identity,
                    role,
                },
            ) => Ok(GuestStep::Admitted {
                export,
                host_identity,
                role,
            }),
            (_, Sealed::Ended { reason }) => Err(reason.error()),
            _ => Err(InviteError::Protocol("a message out of turn")),
        }
    }
}

fn seal(channel: &mut Channel, message: &Sealed) -> InviteWire {
    // Serializing plain data into a Vec cannot fail.
    let (seq, body) = channel.seal(&postcard::to_stdvec(message).unwrap_or_default());
    InviteWire::Sealed { seq, body }
}
