//! The vault's part that keeps invitations: the ones it made (host) and
//! the ones it is answering (guest), over signaling.
//!
//! ```text
//! host                                            guest
//! invitations.create ─► record (stored),          invitations.accept(code)
//!   SignalJoin(invitation topic)                    ─► SignalJoin(topic)
//!                          ◄─ SignalPeers / Joined ─► Hello to the host
//! Hello ─► Accept; a fresh 6-digit code shown     Accept ─► ready for code
//!                                                 invitations.enter_code ─► Pake
//! Pake ─► wrong += 1, stored, then PakeReply      PakeReply ─► Confirm (+ who)
//! Confirm ok ─► Admit credential, stored,         Admitted ─► joins the space
//!   then Admitted(export)                           (space.join), discovery dials
//! Confirm bad ─► WrongCode(left) / Ended
//! ```
//!
//! **Attempts** are counted per invitation and stored before the PAKE's
//! answer leaves (so a guest learns nothing from an attempt that was not
//! counted, whatever it does to connections or the host's vault); an
//! attempt that matched is taken back. [`MAX_ATTEMPTS`] wrong codes end the
//! invitation. One guest at a time: another is refused as busy while an
//! attempt is under way. **Every step has a deadline**: a guest that
//! stops answering is dropped, a host that does not answer ends the
//! guest's attempt with `invite.timeout`, the invitation expires.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::commit::Held;
use super::machine::{Millis, Output, SignalPeer, Topic};
use super::spaces::SlotState;
use super::Vault;
use crate::data::SpaceId;
use crate::identity::{CredentialKind, IdentityPublicKey, Role};
use crate::invite::{
    AuthCode, DeviceFingerprint, GuestSession, GuestState, GuestStep, HostSession, HostState,
    HostStep, InvitationId, InviteCode, InviteError, InviteKind, InviteWire, Refusal,
};
use crate::rpc::{parse_space_id, InvitationInfo, InvitationSide, InvitationState, RpcError};

/// Wrong codes that end an invitation.
pub const MAX_ATTEMPTS: u8 = 3;
/// Default lifetime of an invitation.
pub const DEFAULT_TTL_MINUTES: u32 = 60;
/// Longest lifetime asked for.
pub const MAX_TTL_MINUTES: u32 = 7 * 24 * 60;
/// How long a person has to type the code once the host answered.
pub const CODE_ENTRY_TIMEOUT: Millis = 5 * 60_000;
/// How long the other side may take over one step (find the host, answer
/// an attempt).
pub const STEP_TIMEOUT: Millis = 30_000;
/// Invitations kept once ended, on each side (the oldest ended ones go
/// first).
const KEEP_ENDED: usize = 50;
/// How long after its expiry the host still listens on an invitation's
/// topic, so that a guest trying the code then is told at once that it
/// expired (later, the guest finds no host and says so after
/// [`STEP_TIMEOUT`]).
pub const EXPIRED_REFUSAL: Millis = 10 * 60_000;

/// How an invitation this vault made stands, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RecordState {
    Open,
    /// A single-use invitation admitted its guest.
    Used,
    Cancelled,
    Expired,
    /// Too many wrong codes.
    Failed,
}

/// An invitation this vault made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct InvitationRecord {
    pub space: SpaceId,
    pub role: Role,
    pub code: InviteCode,
    pub created_at: Millis,
    pub multi_use: bool,
    /// Wrong codes so far (an attempt under way counts until it matched).
    pub wrong: u8,
    pub admitted: Vec<IdentityPublicKey>,
    pub state: RecordState,
}

/// One guest's attempt at a hosted invitation.
#[derive(Debug)]
struct HostGuest {
    peer: SignalPeer,
    session: HostSession,
    deadline: Millis,
}

/// How the guest side of an invitation ended.
#[derive(Clone, Debug)]
enum Outcome {
    Joined { space: SpaceId },
    Failed(InviteError),
}

/// An invitation this vault is answering.
#[derive(Debug)]
struct Answering {
    session: GuestSession,
    hello: Vec<u8>,
    /// The peer whose `Accept` proved it is the host the code names.
    host: Option<SignalPeer>,
    /// Peers the hello went to.
    asked: BTreeSet<SignalPeer>,
    deadline: Millis,
    attempts_left: u8,
    last_error: Option<InviteError>,
    host_identity: Option<IdentityPublicKey>,
    outcome: Option<Outcome>,
    /// When this vault took the code (the oldest ended go first).
    started: Millis,
}

#[derive(Debug, Default)]
pub(super) struct Invitations {
    hosted: BTreeMap<InvitationId, InvitationRecord>,
    saved: BTreeMap<InvitationId, InvitationRecord>,
    guests: BTreeMap<InvitationId, HostGuest>,
    answering: BTreeMap<InvitationId, Answering>,
    /// Invitations whose topic is joined, and the topic (an HMAC: worked
    /// out once, when joining).
    joined: BTreeMap<InvitationId, Topic>,
}

impl Invitations {
    /// The stored invitations, read at boot.
    pub fn adopt(&mut self, stored: BTreeMap<InvitationId, InvitationRecord>) {
        self.saved = stored.clone();
        self.hosted = stored;
    }

    pub fn changed(&self) -> bool {
        self.hosted != self.saved
    }

    /// The records to write: (id, Some(record)) to put, None to delete.
    pub fn unsaved(&self) -> Vec<(InvitationId, Option<&InvitationRecord>)> {
        let mut out = Vec::new();
        for (id, r) in &self.hosted {
            if self.saved.get(id) != Some(r) {
                out.push((*id, Some(r)));
            }
        }
        for id in self.saved.keys() {
            if !self.hosted.contains_key(id) {
                out.push((*id, None));
            }
        }
        out
    }

    pub fn snapshot(&self) -> BTreeMap<InvitationId, InvitationRecord> {
        self.hosted.clone()
    }

    pub fn stored(&mut self, written: BTreeMap<InvitationId, InvitationRecord>) {
        self.saved = written;
    }

    /// A flush failed: back to what is stored; attempts under way for
    /// invitations that were never stored end.
    pub fn revert(&mut self) {
        // Counted attempts stay counted: keep the higher count.
        let mut back = self.saved.clone();
        for (id, r) in back.iter_mut() {
            if let Some(now) = self.hosted.get(id) {
                r.wrong = r.wrong.max(now.wrong);
            }
        }
        self.hosted = back;
        let hosted = &self.hosted;
        self.guests.retain(|id, _| hosted.contains_key(id));
    }

    /// The earliest deadline.
    pub fn poll_timeout(&self) -> Option<Millis> {
        // Expiry; then, while its topic is joined, the end of listening
        // for late guests.
        let hosted = self.hosted.iter().filter_map(|(id, r)| match r.state {
            RecordState::Open => Some(r.code.expires_at),
            _ if self.joined.contains_key(id) => Some(r.code.expires_at + EXPIRED_REFUSAL),
            _ => None,
        });
        let guests = self.guests.values().map(|g| g.deadline);
        let answering = self
            .answering
            .values()
            .filter(|a| a.outcome.is_none())
            .map(|a| a.deadline);
        hosted.chain(guests).chain(answering).min()
    }
}

/// The ids of the oldest of `ended` (when, id) beyond [`KEEP_ENDED`].
fn oldest_beyond_keep(ended: impl Iterator<Item = (Millis, InvitationId)>) -> Vec<InvitationId> {
    let mut ended: Vec<(Millis, InvitationId)> = ended.collect();
    ended.sort();
    let excess = ended.len().saturating_sub(KEEP_ENDED);
    ended.into_iter().take(excess).map(|(_, id)| id).collect()
}

fn parse_invitation(text: &str) -> Result<InvitationId, RpcError> {
    InvitationId::from_hex(text).ok_or_else(|| {
        RpcError::bad_request("an invitation id is 32 hex digits")
            .with_detail("field", "invitation")
    })
}

fn refusal_for(state: RecordState) -> Refusal {
    match state {
        RecordState::Open => Refusal::Busy,
        RecordState::Used => Refusal::Used,
        RecordState::Cancelled => Refusal::Cancelled,
        RecordState::Expired => Refusal::Expired,
        RecordState::Failed => Refusal::TooManyAttempts,
    }
}

impl Vault {
    // ------------------------------------------------------------ admin calls

    pub(super) fn create_invitation(
        &mut self,
        space: &str,
        role: Option<crate::rpc::Role>,
        ttl_minutes: Option<u32>,
        multi_use: bool,
    ) -> Result<InvitationInfo, RpcError> {
        let id = parse_space_id("space", space)?;
        if !self.spaces.contains(&id) {
            return Err(RpcError::no_such_space(space));
        }
        let role = match role.unwrap_or(crate::rpc::Role::Editor) {
            crate::rpc::Role::Reader => Role::Reader,
            crate::rpc::Role::Editor => Role::Editor,
            crate::rpc::Role::Admin => Role::Admin,
            crate::rpc::Role::Owner | crate::rpc::Role::None => {
                return Err(RpcError::bad_request(
                    "an invitation admits a reader, an editor or an admin",
                )
                .with_detail("field", "role"))
            }
        };
        let ttl = ttl_minutes.unwrap_or(DEFAULT_TTL_MINUTES);
        if ttl == 0 || ttl > MAX_TTL_MINUTES {
            return Err(RpcError::bad_request(format!(
                "an invitation lasts 1 to {MAX_TTL_MINUTES} minutes"
            ))
            .with_detail("field", "ttl_minutes"));
        }
        let mine = self.replica(&id)?.role();
        if !mine.is_some_and(|r| r.can_manage() && r >= role) {
            return Err(RpcError::new(
                crate::rpc::codes::NOT_AUTHORIZED,
                "only the owner or an admin of a space can invite to it, and only up to their own role",
            ));
        }
        let device = self.keys()?.device.public_key();
        let invitation = InvitationId::random(&mut self.rng);
        let record = InvitationRecord {
            space: id,
            role,
            code: InviteCode {
                id: invitation,
                host: DeviceFingerprint::of(&device),
                expires_at: self.now + Millis::from(ttl) * 60_000,
                kind: InviteKind::Space,
                role,
            },
            created_at: self.now,
            multi_use,
            wrong: 0,
            admitted: Vec::new(),
            state: RecordState::Open,
        };
        self.invitations.hosted.insert(invitation, record);
        self.prune_invitations();
        self.admin_changed();
        self.invitation_info(&invitation)
            .ok_or_else(|| RpcError::new(crate::rpc::codes::INTERNAL, "the invitation vanished"))
    }

    /// Forgets the oldest ended invitations beyond [`KEEP_ENDED`], on each
    /// side (the guest side is kept in memory only).
    fn prune_invitations(&mut self) {
        let ended = self
            .invitations
            .hosted
            .iter()
            .filter(|(_, r)| r.state != RecordState::Open)
            .map(|(id, r)| (r.created_at, *id));
        for id in oldest_beyond_keep(ended) {
            self.invitations.hosted.remove(&id);
        }
        let answered = self
            .invitations
            .answering
            .iter()
            .filter(|(_, a)| a.outcome.is_some())
            .map(|(id, a)| (a.started, *id));
        for id in oldest_beyond_keep(answered) {
            self.invitations.answering.remove(&id);
        }
    }

    pub(super) fn list_invitations(&self) -> Vec<InvitationInfo> {
        let ids: Vec<InvitationId> = self
            .invitations
            .hosted
            .keys()
            .chain(self.invitations.answering.keys())
            .copied()
            .collect();
        ids.iter()
            .filter_map(|id| self.invitation_info(id))
            .collect()
    }

    pub(super) fn cancel_invitation(&mut self, text: &str) -> Result<(), RpcError> {
        let id = parse_invitation(text)?;
        if let Some(record) = self.invitations.hosted.get_mut(&id) {
            if record.state == RecordState::Open {
                record.state = RecordState::Cancelled;
            }
            self.end_guest(id, Refusal::Cancelled);
            self.admin_changed();
            return Ok(());
        }
        if let Some(a) = self.invitations.answering.get_mut(&id) {
            if a.outcome.is_none() {
                a.outcome = Some(Outcome::Failed(InviteError::Cancelled));
                let topic = self
                    .invitations
                    .joined
                    .get(&id)
                    .copied()
                    .unwrap_or_else(|| id.topic());
                // Tell the host, so it frees the invitation for someone else.
                if let Some(host) = a.host {
                    let data = InviteWire::Refuse {
                        reason: Refusal::Cancelled,
                    }
                    .encode();
                    self.outputs.push_back(Output::SignalSend {
                        topic,
                        to: host,
                        data,
                    });
                }
            }
            self.admin_changed();
            return Ok(());
        }
        Err(RpcError::bad_request("this vault has no such invitation")
            .with_detail("field", "invitation"))
    }

    pub(super) fn accept_invitation(&mut self, text: &str) -> Result<InvitationInfo, RpcError> {
        let code = InviteCode::from_text(text)
            .map_err(|e| RpcError::from(e).with_detail("field", "code"))?;
        let id = code.id;
        if self.invitations.hosted.contains_key(&id) {
            return Err(RpcError::bad_request(
                "this vault made that invitation: share it with someone else",
            )
            .with_detail("field", "code"));
        }
        let again = self
            .invitations
            .answering
            .get(&id)
            .is_some_and(|a| a.outcome.is_none());
        if !again {
            let (session, hello) = GuestSession::start(code, &mut self.rng);
            self.invitations.answering.insert(
                id,
                Answering {
                    session,
                    hello: hello.encode(),
                    host: None,
                    asked: BTreeSet::new(),
                    deadline: self.now + STEP_TIMEOUT,
                    attempts_left: MAX_ATTEMPTS,
                    last_error: None,
                    host_identity: None,
                    outcome: None,
                    started: self.now,
                },
            );
            self.prune_invitations();
        }
        self.admin_changed();
        self.invitation_info(&id)
            .ok_or_else(|| RpcError::new(crate::rpc::codes::INTERNAL, "the invitation vanished"))
    }

    pub(super) fn enter_auth_code(&mut self, text: &str, typed: &str) -> Result<(), RpcError> {
        let id = parse_invitation(text)?;
        let code =
            AuthCode::parse(typed).map_err(|e| RpcError::from(e).with_detail("field", "code"))?;
        let Some(a) = self.invitations.answering.get_mut(&id) else {
            return Err(
                RpcError::bad_request("this vault is not answering that invitation")
                    .with_detail("field", "invitation"),
            );
        };
        if a.outcome.is_some() {
            return Err(RpcError::from(InviteError::NotReady));
        }
        let Some(host) = a.host else {
            return Err(RpcError::from(InviteError::NotReady));
        };
        let wire = a.session.enter_code(&code, &mut self.rng)?;
        a.deadline = self.now + STEP_TIMEOUT;
        a.last_error = None;
        self.signal_send(id, host, &wire);
        self.admin_changed();
        Ok(())
    }

    fn invitation_info(&self, id: &InvitationId) -> Option<InvitationInfo> {
        if let Some(r) = self.invitations.hosted.get(id) {
            let guest = self.invitations.guests.get(id);
            let state = match r.state {
                RecordState::Open => match guest.map(|g| g.session.state()) {
                    Some(HostState::ReadyForCode) => InvitationState::ReadyForCode,
                    Some(HostState::Authenticating | HostState::Admitting) => {
                        InvitationState::Authenticating
                    }
                    _ => InvitationState::Waiting,
                },
                RecordState::Used => InvitationState::Success,
                RecordState::Cancelled => InvitationState::Cancelled,
                RecordState::Expired => InvitationState::Expired,
                RecordState::Failed => InvitationState::Failed,
            };
            let error = match r.state {
                RecordState::Failed => Some(InviteError::TooManyAttempts),
                RecordState::Expired => Some(InviteError::Expired),
                _ => None,
            };
            return Some(InvitationInfo {
                invitation: id.to_hex(),
                side: InvitationSide::Host,
                state,
                code: Some(r.code.to_text()),
                auth_code: guest
                    .filter(|g| g.session.state() == HostState::ReadyForCode)
                    .filter(|_| r.state == RecordState::Open)
                    .map(|g| g.session.auth_code().as_str().to_owned()),
                space: Some(r.space.to_string()),
                role: r.role.into(),
                expires_at: r.code.expires_at as f64,
                attempts_left: u32::from(MAX_ATTEMPTS.saturating_sub(r.wrong)),
                multi_use: r.multi_use,
                admitted: r.admitted.iter().map(ToString::to_string).collect(),
                peer_identity: None,
                error: error.map(RpcError::from),
            });
        }
        let a = self.invitations.answering.get(id)?;
        let code = a.session.code();
        let (state, space, error) = match &a.outcome {
            Some(Outcome::Joined { space }) => {
                (InvitationState::Success, Some(space.to_string()), None)
            }
            Some(Outcome::Failed(e)) => (
                match e {
                    InviteError::Cancelled => InvitationState::Cancelled,
                    InviteError::Expired => InvitationState::Expired,
                    _ => InvitationState::Failed,
                },
                None,
                Some(e.clone()),
            ),
            None => (
                match a.session.state() {
                    GuestState::Connecting => InvitationState::Connecting,
                    GuestState::ReadyForCode => InvitationState::ReadyForCode,
                    GuestState::Authenticating | GuestState::Done => {
                        InvitationState::Authenticating
                    }
                },
                None,
                a.last_error.clone(),
            ),
        };
        Some(InvitationInfo {
            invitation: id.to_hex(),
            side: InvitationSide::Guest,
            state,
            code: None,
            auth_code: None,
            space,
            role: code.role.into(),
            expires_at: code.expires_at as f64,
            attempts_left: u32::from(a.attempts_left),
            multi_use: false,
            admitted: Vec::new(),
            peer_identity: a.host_identity.map(|i| i.to_string()),
            error: error.map(RpcError::from),
        })
    }

    // -------------------------------------------------------------- signaling

    /// Whether `topic` is one of this vault's invitations.
    pub(super) fn is_invitation_topic(&self, topic: &Topic) -> bool {
        self.invitation_on(topic).is_some()
    }

    /// The invitation whose topic `topic` is (among those joined).
    fn invitation_on(&self, topic: &Topic) -> Option<InvitationId> {
        self.invitations
            .joined
            .iter()
            .find(|(_, t)| *t == topic)
            .map(|(id, _)| *id)
    }

    /// The topic of invitation `id`.
    fn topic_of(&self, id: InvitationId) -> Topic {
        self.invitations
            .joined
            .get(&id)
            .copied()
            .unwrap_or_else(|| id.topic())
    }

    /// Who was on an invitation topic when this vault joined it.
    pub(super) fn invitation_peers(&mut self, topic: Topic, peers: Vec<SignalPeer>) {
        for peer in peers {
            self.invitation_peer_joined(topic, peer);
        }
    }

    /// Someone is on an invitation topic: a guest says hello to it.
    pub(super) fn invitation_peer_joined(&mut self, topic: Topic, peer: SignalPeer) {
        let Some(id) = self.invitation_on(&topic) else {
            return;
        };
        let Some(a) = self
            .invitations
            .answering
            .get_mut(&id)
            .filter(|a| a.outcome.is_none())
        else {
            return;
        };
        if a.host.is_some() || !a.asked.insert(peer) {
            return;
        }
        let data = a.hello.clone();
        self.outputs.push_back(Output::SignalSend {
            topic,
            to: peer,
            data,
        });
    }

    /// Someone left an invitation topic.
    pub(super) fn invitation_peer_left(&mut self, topic: Topic, peer: SignalPeer) {
        let Some(id) = self.invitation_on(&topic) else {
            return;
        };
        if self
            .invitations
            .guests
            .get(&id)
            .is_some_and(|g| g.peer == peer)
        {
            self.invitations.guests.remove(&id);
            self.admin_changed();
        }
        if let Some(a) = self.invitations.answering.get_mut(&id) {
            if a.host == Some(peer) && a.outcome.is_none() {
                a.outcome = Some(Outcome::Failed(InviteError::Timeout));
                self.admin_changed();
            }
        }
    }

    /// A message on an invitation topic.
    pub(super) fn invitation_message(&mut self, topic: Topic, from: SignalPeer, data: &[u8]) {
        let Some(id) = self.invitation_on(&topic) else {
            return;
        };
        if self.invitations.hosted.contains_key(&id) {
            self.host_message(id, from, data);
        } else if self.invitations.answering.contains_key(&id) {
            self.guest_message(id, from, data);
        }
    }

    fn signal_send(&mut self, id: InvitationId, to: SignalPeer, wire: &InviteWire) {
        let topic = self.topic_of(id);
        self.outputs.push_back(Output::SignalSend {
            topic,
            to,
            data: wire.encode(),
        });
    }

    /// Sends `wire` once the flush that holds what it depends on is stored.
    fn signal_send_durable(&mut self, id: InvitationId, to: SignalPeer, wire: &InviteWire) {
        let topic = self.topic_of(id);
        self.commit.held.push(Held::Signal {
            invitation: id,
            topic,
            to,
            data: wire.encode(),
        });
    }

    /// Ends the attempt under way at hosted invitation `id`, telling the
    /// guest why.
    fn end_guest(&mut self, id: InvitationId, reason: Refusal) {
        if let Some(mut g) = self.invitations.guests.remove(&id) {
            let wire = g.session.end(reason);
            self.signal_send_durable(id, g.peer, &wire);
        }
    }

    fn host_message(&mut self, id: InvitationId, from: SignalPeer, data: &[u8]) {
        let Ok(wire) = InviteWire::decode(data) else {
            if self
                .invitations
                .guests
                .get(&id)
                .is_some_and(|g| g.peer == from)
            {
                self.end_guest(id, Refusal::Protocol);
                self.admin_changed();
            }
            return;
        };
        let Some(record) = self.invitations.hosted.get(&id) else {
            return;
        };
        let current = self.invitations.guests.get(&id).map(|g| g.peer);
        if matches!(wire, InviteWire::Hello { .. }) {
            let refusal = if record.state != RecordState::Open {
                Some(refusal_for(record.state))
            } else if current.is_some_and(|p| p != from) {
                Some(Refusal::Busy)
            } else {
                None
            };
            if let Some(reason) = refusal {
                self.signal_send(id, from, &InviteWire::Refuse { reason });
                return;
            }
            let space = record.space;
            let Ok(keys) = self.keys() else {
                return;
            };
            let device = keys.device.duplicate();
            match HostSession::accept(id, &device, &wire, &mut self.rng) {
                Ok((session, accept)) => {
                    self.signal_send(id, from, &accept);
                    self.invitations.guests.insert(
                        id,
                        HostGuest {
                            peer: from,
                            session,
                            deadline: self.now + CODE_ENTRY_TIMEOUT,
                        },
                    );
                    // The admission will need the space.
                    self.request_open(space);
                }
                Err(_) => self.signal_send(
                    id,
                    from,
                    &InviteWire::Refuse {
                        reason: Refusal::Protocol,
                    },
                ),
            }
            self.admin_changed();
            return;
        }
        if current != Some(from) {
            return;
        }
        if matches!(wire, InviteWire::Refuse { .. }) {
            // The guest gave up.
            self.invitations.guests.remove(&id);
            self.admin_changed();
            return;
        }
        let Some(g) = self.invitations.guests.get_mut(&id) else {
            return;
        };
        let step = g.session.on_message(&wire, &mut self.rng);
        let now = self.now;
        match step {
            Ok(HostStep::Attempt { reply }) => {
                g.deadline = now + STEP_TIMEOUT;
                if let Some(r) = self.invitations.hosted.get_mut(&id) {
                    r.wrong = r.wrong.saturating_add(1);
                }
                self.signal_send_durable(id, from, &reply);
            }
            Ok(HostStep::Wrong) => {
                g.deadline = now + CODE_ENTRY_TIMEOUT;
                let Some(r) = self.invitations.hosted.get_mut(&id) else {
                    return;
                };
                let left = MAX_ATTEMPTS.saturating_sub(r.wrong);
                if left == 0 {
                    r.state = RecordState::Failed;
                    self.end_guest(id, Refusal::TooManyAttempts);
                } else {
                    let wire = g.session.wrong_code(left);
                    self.signal_send(id, from, &wire);
                }
            }
            Ok(HostStep::Admit(guest)) => {
                if let Err(error) = self.admit_guest(id, guest.identity()) {
                    self.invitation_trouble(id, error);
                    self.end_guest(id, Refusal::Protocol);
                }
            }
            Err(_) => self.end_guest(id, Refusal::Protocol),
        }
        self.admin_changed();
    }

    /// The guest of invitation `id` typed the right code: admit its
    /// identity with the invitation's role and send it the space.
    fn admit_guest(&mut self, id: InvitationId, guest: IdentityPublicKey) -> Result<(), RpcError> {
        let Some(record) = self.invitations.hosted.get(&id).cloned() else {
            return Ok(());
        };
        let space = record.space;
        if !matches!(
            self.spaces.slots.get(&space).map(|s| &s.state),
            Some(SlotState::Open(_))
        ) {
            return Err(RpcError::new(
                crate::rpc::codes::STORAGE_BLOCKED,
                "the space could not be opened to admit the guest",
            ));
        }
        let replica = self.replica(&space)?;
        let member = replica.control().state().role(&guest);
        if member.is_none() {
            replica.issue(CredentialKind::Admit {
                member: guest,
                role: record.role,
            })?;
        }
        let export = replica.export().to_text();
        let host_identity = replica.identity();
        self.membership_changed(space);
        if let Some(r) = self.invitations.hosted.get_mut(&id) {
            r.wrong = r.wrong.saturating_sub(1);
            r.admitted.push(guest);
            if !r.multi_use {
                r.state = RecordState::Used;
            }
        }
        let Some(mut g) = self.invitations.guests.remove(&id) else {
            return Ok(());
        };
        let wire = g.session.admitted(export, host_identity, record.role);
        if wire.encode().len() > crate::invite::wire::MAX_INVITE_MESSAGE {
            return Err(RpcError::new(
                InviteError::Protocol("").code(),
                "the space's member list is too long to send in an invitation",
            ));
        }
        self.signal_send_durable(id, g.peer, &wire);
        Ok(())
    }

    fn guest_message(&mut self, id: InvitationId, from: SignalPeer, data: &[u8]) {
        let Some(a) = self.invitations.answering.get(&id) else {
            return;
        };
        if a.outcome.is_some() || a.host.is_some_and(|h| h != from) || !a.asked.contains(&from) {
            return;
        }
        let Ok(wire) = InviteWire::decode(data) else {
            self.guest_failed(id, InviteError::Protocol("a message that does not decode"));
            return;
        };
        let Ok(keys) = self.keys() else {
            return;
        };
        let device = keys.device.duplicate();
        let certificate = keys.certificate.clone();
        let name = keys.record.display_name.clone();
        let now = self.now;
        let Some(a) = self.invitations.answering.get_mut(&id) else {
            return;
        };
        let was = a.session.state();
        match a.session.on_message(&wire, &device, &certificate, name) {
            Ok(GuestStep::Wait) => {
                if was == GuestState::Connecting {
                    a.host = Some(from);
                    a.deadline = now + CODE_ENTRY_TIMEOUT;
                }
            }
            Ok(GuestStep::Send(reply)) => {
                a.deadline = now + STEP_TIMEOUT;
                self.signal_send(id, from, &reply);
            }
            Ok(GuestStep::WrongCode { attempts_left }) => {
                a.attempts_left = attempts_left;
                a.last_error = Some(InviteError::WrongCode { attempts_left });
                a.deadline = now + CODE_ENTRY_TIMEOUT;
            }
            Ok(GuestStep::Admitted {
                export,
                host_identity,
                ..
            }) => {
                a.host_identity = Some(host_identity);
                match self.join_from_export(&export) {
                    Ok(space) => {
                        if let Some(a) = self.invitations.answering.get_mut(&id) {
                            a.outcome = Some(Outcome::Joined { space });
                        }
                    }
                    Err(error) => {
                        self.invitation_trouble(id, error);
                        self.guest_failed(
                            id,
                            InviteError::Protocol("the space could not be joined"),
                        );
                    }
                }
            }
            Err(e) => self.guest_failed(id, e),
        }
        self.admin_changed();
    }

    fn guest_failed(&mut self, id: InvitationId, error: InviteError) {
        if let Some(a) = self.invitations.answering.get_mut(&id) {
            if a.outcome.is_none() {
                a.outcome = Some(Outcome::Failed(error));
            }
        }
        self.admin_changed();
    }

    // --------------------------------------------------- topics and deadlines

    /// Brings invitation topics in line with the invitations open, and
    /// ends what ran out of time. Runs after every input.
    pub(super) fn tend_invitations(&mut self) {
        let now = self.now;
        let mut changed = false;
        let expired: Vec<InvitationId> = self
            .invitations
            .hosted
            .iter()
            .filter(|(_, r)| r.state == RecordState::Open && now >= r.code.expires_at)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(r) = self.invitations.hosted.get_mut(&id) {
                r.state = RecordState::Expired;
            }
            self.end_guest(id, Refusal::Expired);
            changed = true;
        }
        let late: Vec<InvitationId> = self
            .invitations
            .guests
            .iter()
            .filter(|(_, g)| now >= g.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.end_guest(id, Refusal::Timeout);
            changed = true;
        }
        for a in self.invitations.answering.values_mut() {
            if a.outcome.is_none() && now >= a.deadline {
                let error = if now >= a.session.code().expires_at {
                    InviteError::Expired
                } else {
                    InviteError::Timeout
                };
                a.outcome = Some(Outcome::Failed(error));
                changed = true;
            }
        }
        if changed {
            self.admin_changed();
        }
        if self.invitations.hosted.len() > KEEP_ENDED
            || self.invitations.answering.len() > KEEP_ENDED
        {
            self.prune_invitations();
        }
        if !self.signal_is_up() {
            self.invitations.joined.clear();
            return;
        }
        // Topics: invitations made here until a while after they expire
        // (an ended one still refuses a guest, with the reason), answers
        // under way, and those whose last message waits for a flush.
        let mut wanted: BTreeSet<InvitationId> = self
            .invitations
            .hosted
            .iter()
            .filter(|(_, r)| now < r.code.expires_at + EXPIRED_REFUSAL)
            .map(|(id, _)| *id)
            .collect();
        wanted.extend(
            self.invitations
                .answering
                .iter()
                .filter(|(_, a)| a.outcome.is_none())
                .map(|(id, _)| *id),
        );
        wanted.extend(self.invitations.guests.keys().copied());
        wanted.extend(self.commit.held.iter().filter_map(|h| match h {
            Held::Signal { invitation, .. } => Some(*invitation),
            _ => None,
        }));
        let stale: Vec<InvitationId> = self
            .invitations
            .joined
            .keys()
            .filter(|id| !wanted.contains(id))
            .copied()
            .collect();
        for id in stale {
            if let Some(topic) = self.invitations.joined.remove(&id) {
                self.outputs.push_back(Output::SignalLeave { topic });
            }
        }
        for id in wanted {
            if let std::collections::btree_map::Entry::Vacant(entry) =
                self.invitations.joined.entry(id)
            {
                let topic = *entry.insert(id.topic());
                self.outputs.push_back(Output::SignalJoin { topic });
            }
        }
    }

    /// Signaling dropped: topics are to be joined again.
    pub(super) fn invitations_signal_down(&mut self) {
        self.invitations.joined.clear();
        for a in self.invitations.answering.values_mut() {
            a.asked.clear();
        }
    }

    /// Something went wrong on this vault's side of an invitation: the
    /// host logs it.
    fn invitation_trouble(&mut self, id: InvitationId, error: RpcError) {
        self.outputs.push_back(Output::Event(
            super::machine::VaultEvent::InvitationTrouble {
                invitation: id.to_hex(),
                error,
            },
        ));
    }
}
