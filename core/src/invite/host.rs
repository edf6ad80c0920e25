//! The host's side of one guest's attempt at an invitation.
//!
//! The vault keeps the invitation (its role, expiry, attempts made — the
//! count is stored, so three wrong codes end it whatever the number of
//! connections); a [`HostSession`] is one guest's exchange with it.
//!
//! ```text
//! accept(Hello)      → Accept sent, an authorization code to show
//! Pake               → Step::Attempt: count it durably, then send the reply
//! Confirm (tag ok)   → Step::Admit(guest): admit it, then admitted(export)
//! Confirm (tag bad)  → Step::Wrong: wrong_code(left) or end(TooManyAttempts)
//! ```

use x25519_dalek::{PublicKey, StaticSecret};

use super::code::{AuthCode, InvitationId};
use super::error::{InviteError, Refusal};
use super::keys::{self, Channel, Confirmation, Side};
use super::wire::{InviteWire, Join, Sealed};
use crate::identity::{DeviceCertificate, DeviceKey, IdentityPublicKey, Role};
use crate::rng::EngineRng;

/// Where one guest's attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostState {
    /// The code is shown; the guest is to type it.
    ReadyForCode,
    /// The guest made an attempt; its confirmation is awaited.
    Authenticating,
    /// The code matched; the guest is being admitted.
    Admitting,
    /// Over (admitted, or ended).
    Done,
}

/// A guest whose code matched and whose credentials verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedGuest {
    pub certificate: DeviceCertificate,
    pub display_name: Option<String>,
}

impl VerifiedGuest {
    pub fn identity(&self) -> IdentityPublicKey {
        self.certificate.identity
    }
}

/// What a guest's message asks of the vault.
#[derive(Debug)]
pub enum HostStep {
    /// An attempt: count it (durably) and then send `reply`.
    Attempt { reply: InviteWire },
    /// The code matched and the guest is who it says: admit it, then
    /// send [`HostSession::admitted`].
    Admit(VerifiedGuest),
    /// The code did not match: send [`HostSession::wrong_code`] or end.
    Wrong,
}

/// One guest's exchange with an invitation.
pub struct HostSession {
    invitation: InvitationId,
    code: AuthCode,
    channel: Channel,
    t1: keys::Hash,
    dh: zeroize::Zeroizing<[u8; 32]>,
    guest_dh: [u8; 32],
    host_dh: [u8; 32],
    confirmation: Option<Confirmation>,
    state: HostState,
}

impl std::fmt::Debug for HostSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSession")
            .field("invitation", &self.invitation.to_hex())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl HostSession {
    /// Answers a guest's `Hello` for invitation `invitation` (which the
    /// vault checked is open): the session and its `Accept`.
    pub fn accept(
        invitation: InvitationId,
        device: &DeviceKey,
        hello: &InviteWire,
        rng: &mut EngineRng,
    ) -> Result<(Self, InviteWire), InviteError> {
        let InviteWire::Hello {
            invitation: asked,
            guest_dh,
            nonce,
        } = hello
        else {
            return Err(InviteError::Protocol("the first message is not a hello"));
        };
        if *asked != invitation {
            return Err(InviteError::Unknown);
        }
        let secret = StaticSecret::from(*rng.secret_seed());
        let host_dh = PublicKey::from(&secret).to_bytes();
        let shared = secret.diffie_hellman(&PublicKey::from(*guest_dh));
        if !shared.was_contributory() {
            return Err(InviteError::Protocol("a degenerate key"));
        }
        let host_device = device.public_key();
        let t1 = keys::transcript1(&invitation, guest_dh, nonce, &host_dh, &host_device);
        let signature = device.sign(&keys::accept_message(&t1));
        let dh = zeroize::Zeroizing::new(shared.to_bytes());
        let session = HostSession {
            invitation,
            code: AuthCode::random(rng),
            channel: Channel::new(Side::Host, &t1, &dh),
            t1,
            dh,
            guest_dh: *guest_dh,
            host_dh,
            confirmation: None,
            state: HostState::ReadyForCode,
        };
        Ok((
            session,
            InviteWire::Accept {
                host_dh,
                host_device,
                signature,
            },
        ))
    }

    /// The code to show the host's person.
    pub fn auth_code(&self) -> &AuthCode {
        &self.code
    }

    pub fn state(&self) -> HostState {
        self.state
    }

    fn seal(&mut self, message: &Sealed) -> InviteWire {
        // Serializing plain data into a Vec cannot fail.
        let (seq, body) = self
            .channel
            .seal(&postcard::to_stdvec(message).unwrap_or_default());
        InviteWire::Sealed { seq, body }
    }

    /// A message from the guest.
    pub fn on_message(
        &mut self,
        message: &InviteWire,
        rng: &mut EngineRng,
    ) -> Result<HostStep, InviteError> {
        let InviteWire::Sealed { seq, body } = message else {
            return Err(InviteError::Protocol("a message outside the channel"));
        };
        let plain = self.channel.open(*seq, body)?;
        let sealed: Sealed = postcard::from_bytes(&plain)
            .map_err(|_| InviteError::Protocol("a message that does not decode"))?;
        match (self.state, sealed) {
            (HostState::ReadyForCode, Sealed::Pake { message }) => {
                let (guest_id, host_id) = keys::pake_identities(&self.guest_dh, &self.host_dh);
                let (pake, reply) = spake2::Spake2::<spake2::Ed25519Group>::start_b_with_rng(
                    &keys::pake_password(&self.invitation, &self.code),
                    &guest_id,
                    &host_id,
                    rng.csprng(),
                );
                let key = pake
                    .finish(&message)
                    .map_err(|_| InviteError::Protocol("a PAKE message that does not decode"))?;
                let t2 = keys::transcript2(&self.t1, &message, &reply);
                let confirmation = Confirmation::new(t2, &self.dh, &key);
                let confirm = confirmation.tag(Side::Host);
                self.confirmation = Some(confirmation);
                self.state = HostState::Authenticating;
                let reply = self.seal(&Sealed::PakeReply {
                    message: reply,
                    confirm,
                });
                Ok(HostStep::Attempt { reply })
            }
            (HostState::Authenticating, Sealed::Confirm { confirm, join }) => {
                let Some(confirmation) = self.confirmation.take() else {
                    return Err(InviteError::Protocol("a confirmation before the PAKE"));
                };
                if !confirmation.check(Side::Guest, &confirm) {
                    self.state = HostState::ReadyForCode;
                    return Ok(HostStep::Wrong);
                }
                let Some(join) = join else {
                    return Err(InviteError::Protocol("a matching code without credentials"));
                };
                let Join {
                    certificate,
                    signature,
                    display_name,
                } = *join;
                let signed = certificate
                    .device
                    .verify(&keys::join_message(&confirmation.t2), &signature);
                if !certificate.is_valid() || !signed {
                    return Err(InviteError::BadCredentials);
                }
                self.state = HostState::Admitting;
                Ok(HostStep::Admit(VerifiedGuest {
                    certificate,
                    display_name,
                }))
            }
            _ => Err(InviteError::Protocol("a message out of turn")),
        }
    }

    /// The guest was admitted: the message that tells it so.
    pub fn admitted(
        &mut self,
        export: String,
        host_identity: IdentityPublicKey,
        role: Role,
    ) -> InviteWire {
        self.state = HostState::Done;
        self.seal(&Sealed::Admitted {
            export,
            host_identity,
            role,
        })
    }

    /// The code was wrong; `attempts_left` more may be made.
    pub fn wrong_code(&mut self, attempts_left: u8) -> InviteWire {
        self.seal(&Sealed::WrongCode { attempts_left })
    }

    /// The invitation ended for this guest.
    pub fn end(&mut self, reason: Refusal) -> InviteWire {
        self.state = HostState::Done;
        self.seal(&Sealed::Ended { reason })
    }
}
