//! A credential log: a DAG of signed credentials and the membership state it
//! implies. The rules are in `docs/membership.md`; in short:
//!
//! 1. A credential is *admissible* (stored, relayed) when its signature and
//!    shape are valid and its issuer was allowed to issue it in the
//!    membership state of its own causal past.
//! 2. The state of a set of credentials closed under ancestry (a *cut*) is
//!    computed from the credentials *accepted* in that cut: admissible, and
//!    not voided by a removal or revocation of their issuer (or signing
//!    device) that is concurrent with them in the cut.
//! 3. Concurrent statements about one member merge to the least privilege
//!    (removal below every role); a revoked device stays revoked.
//!
//! Everything depends only on the set of credentials (their hashes fix the
//! DAG), never on the order they arrived in, so every replica computes the
//! same state.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::credential::{
    Credential, CredentialHash, CredentialKind, Issuer, LogId, Role, Watermark,
};
use super::error::{Denied, IdentityError};
use super::keys::{DeviceCertificate, DevicePublicKey, IdentityPublicKey};

/// How many credentials may wait for missing parents.
pub const MAX_WAITING_CREDENTIALS: usize = 1024;
/// How many of them one signing key may have waiting.
pub const MAX_WAITING_PER_SIGNER: usize = 64;
/// How long a credential waits for its parents before it is dropped (ms).
pub const WAITING_TTL_MS: u64 = 10 * 60 * 1000;
/// How many membership states of past cuts are kept for verifying bundles.
const CUT_CACHE: usize = 32;

/// A growable bit set over node indices.
#[derive(Clone, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn with_len(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn set(&mut self, i: u32) {
        let i = i as usize;
        if self.0.len() <= i / 64 {
            self.0.resize(i / 64 + 1, 0);
        }
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn or(&mut self, other: &Bits) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// The status of a device in a membership state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// Authorized for `identity`.
    Authorized { identity: IdentityPublicKey },
    /// Revoked (for good).
    Revoked { identity: IdentityPublicKey },
    /// Certified for more than one identity: not usable.
    Conflicted,
}

/// Who is a member with which role, and which devices act for whom.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipState {
    /// Current members and their roles (removed members are absent).
    pub members: BTreeMap<IdentityPublicKey, Role>,
    /// Every device this log ever authorized, with its status.
    pub devices: BTreeMap<DevicePublicKey, DeviceStatus>,
}

impl MembershipState {
    pub fn role(&self, identity: &IdentityPublicKey) -> Option<Role> {
        self.members.get(identity).copied()
    }
    /// Whether `identity` is a member whose role allows writing.
    pub fn can_write(&self, identity: &IdentityPublicKey) -> bool {
        self.role(identity).is_some_and(Role::can_write)
    }
    pub fn device(&self, device: &DevicePublicKey) -> Option<DeviceStatus> {
        self.devices.get(device).copied()
    }
    /// The authorized, unrevoked devices of `identity`.
    pub fn devices_of(&self, identity: &IdentityPublicKey) -> Vec<DevicePublicKey> {
        self.devices
            .iter()
            .filter(|(_, s)| matches!(s, DeviceStatus::Authorized { identity: i } if i == identity))
            .map(|(d, _)| *d)
            .collect()
    }
}

/// A membership state borrowed from a log: the current one, or that of an
/// earlier cut.
#[derive(Debug)]
pub enum StateRef<'a> {
    Current(&'a MembershipState),
    Cut(Arc<MembershipState>),
}

impl std::ops::Deref for StateRef<'_> {
    type Target = MembershipState;
    fn deref(&self) -> &MembershipState {
        match self {
            StateRef::Current(s) => s,
            StateRef::Cut(s) => s,
        }
    }
}

/// What a credential does to whom.
#[derive(Clone, Copy)]
enum Effect {
    Genesis {
        owner: IdentityPublicKey,
        device: Option<DevicePublicKey>,
    },
    Member {
        member: IdentityPublicKey,
        role: Option<Role>,
    },
    AuthorizeDevice {
        device: DevicePublicKey,
        identity: IdentityPublicKey,
    },
    RevokeDevice {
        device: DevicePublicKey,
        identity: IdentityPublicKey,
    },
}

fn effect_of(cred: &Credential) -> Effect {
    match cred.kind() {
        CredentialKind::Genesis { device } => Effect::Genesis {
            owner: cred.issuer(),
            device: device.as_ref().map(|c| c.device),
        },
        CredentialKind::Admit { member, role } | CredentialKind::ChangeRole { member, role } => {
            Effect::Member {
                member: *member,
                role: Some(*role),
            }
        }
        CredentialKind::Remove { member } => Effect::Member {
            member: *member,
            role: None,
        },
        CredentialKind::AuthorizeDevice { certificate } => Effect::AuthorizeDevice {
            device: certificate.device,
            identity: certificate.identity,
        },
        CredentialKind::RevokeDevice { identity, device } => Effect::RevokeDevice {
            device: *device,
            identity: *identity,
        },
    }
}

struct Node {
    cred: Credential,
    /// Strict ancestors.
    anc: Bits,
    effect: Effect,
}

/// Accepted credentials of a cut and the state they give.
#[derive(Clone, Default)]
struct Evaluation {
    accepted: Bits,
    denied: HashMap<u32, Denied>,
    state: MembershipState,
}

/// The outcome of receiving a credential.
#[derive(Debug, Default)]
pub struct Received {
    /// Credentials added to the log (the received one and any that were
    /// waiting for it), in the order they were added. Relay these.
    pub added: Vec<CredentialHash>,
    /// True when the received credential waits for missing parents.
    pub waiting: bool,
    /// Credentials that were waiting and turned out inadmissible.
    pub refused: Vec<(CredentialHash, IdentityError)>,
}

/// A credential log (a space's control log or an identity's HALO log).
pub struct CredentialLog {
    log: LogId,
    nodes: Vec<Node>,
    index: HashMap<CredentialHash, u32>,
    heads: Vec<u32>,
    about_member: HashMap<IdentityPublicKey, Vec<u32>>,
    about_device: HashMap<DevicePublicKey, Vec<u32>>,
    by_issuer: HashMap<IdentityPublicKey, Vec<u32>>,
    by_signer: HashMap<DevicePublicKey, Vec<u32>>,
    /// Accepted removals and revocations are among these.
    negatives: Vec<u32>,
    full: Evaluation,
    /// Credentials waiting for parents, with when they arrived.
    waiting: BTreeMap<CredentialHash, (Credential, u64)>,
    /// The host's clock, as last told ([`set_clock`](Self::set_clock)).
    clock: u64,
    cuts: Mutex<VecDeque<(Vec<u32>, Arc<MembershipState>)>>,
}

impl std::fmt::Debug for CredentialLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialLog")
            .field("log", &self.log)
            .field("credentials", &self.nodes.len())
            .field("heads", &self.heads())
            .finish()
    }
}

impl CredentialLog {
    /// Starts a log from its genesis credential.
    pub fn from_genesis(genesis: Credential) -> Result<Self, IdentityError> {
        let log_id = genesis.log();
        genesis.check_structure(log_id)?;
        if !matches!(genesis.kind(), CredentialKind::Genesis { .. }) {
            return Err(IdentityError::BadGenesis {
                hash: genesis.hash(),
                reason: "a log starts with a genesis credential",
            });
        }
        let mut log = Self {
            log: log_id,
            nodes: Vec::new(),
            index: HashMap::new(),
            heads: Vec::new(),
            about_member: HashMap::new(),
            about_device: HashMap::new(),
            by_issuer: HashMap::new(),
            by_signer: HashMap::new(),
            negatives: Vec::new(),
            full: Evaluation::default(),
            waiting: BTreeMap::new(),
            clock: 0,
            cuts: Mutex::new(VecDeque::new()),
        };
        log.push(genesis, Bits::default(), Vec::new());
        log.full = log.evaluate(None);
        Ok(log)
    }

    /// Starts a log with a new genesis issued by `issuer`. `device` (the
    /// certificate of the issuing device, when a device issues) is
    /// authorized by the genesis itself.
    pub fn create(
        log: LogId,
        issuer: Issuer<'_>,
        device: Option<DeviceCertificate>,
    ) -> Result<Self, IdentityError> {
        let genesis =
            Credential::issue(log, Vec::new(), issuer, CredentialKind::Genesis { device })?;
        Self::from_genesis(genesis)
    }

    pub fn log_id(&self) -> LogId {
        self.log
    }

    /// The genesis credential.
    pub fn genesis(&self) -> &Credential {
        &self.nodes[0].cred
    }

    /// The current heads, sorted.
    pub fn heads(&self) -> Vec<CredentialHash> {
        let mut heads: Vec<_> = self.heads.iter().map(|&i| self.hash(i)).collect();
        heads.sort_unstable();
        heads
    }

    /// The membership state of the whole log.
    pub fn state(&self) -> &MembershipState {
        &self.full.state
    }

    /// Number of stored (admissible) credentials.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn contains(&self, hash: &CredentialHash) -> bool {
        self.index.contains_key(hash)
    }

    pub fn get(&self, hash: &CredentialHash) -> Option<&Credential> {
        self.index.get(hash).map(|&i| &self.nodes[i as usize].cred)
    }

    /// All stored credentials, parents before children (for storage and
    /// for sending the log to a peer).
    pub fn credentials(&self) -> impl Iterator<Item = &Credential> {
        self.nodes.iter().map(|n| &n.cred)
    }

    /// Why a stored credential does not count in the current state (voided
    /// by a concurrent removal or revocation), or `None` if it counts.
    pub fn why_not_counted(&self, hash: &CredentialHash) -> Option<&Denied> {
        self.index.get(hash).and_then(|i| self.full.denied.get(i))
    }

    /// Number of credentials waiting for their parents.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn hash(&self, i: u32) -> CredentialHash {
        self.nodes[i as usize].cred.hash()
    }

    /// Issues a credential on top of the current heads and adds it.
    /// Fails (and stores nothing) when `by` may not issue it.
    pub fn issue(
        &mut self,
        by: Issuer<'_>,
        kind: CredentialKind,
    ) -> Result<Credential, IdentityError> {
        self.issue_with(by, kind, Watermark::default())
    }

    /// Like [`issue`](Self::issue), with a watermark (removals, demotions,
    /// revocations: the party's last accepted changes).
    pub fn issue_with(
        &mut self,
        by: Issuer<'_>,
        kind: CredentialKind,
        watermark: Watermark,
    ) -> Result<Credential, IdentityError> {
        let cred = Credential::issue_with(self.log, self.heads(), by, kind, watermark)?;
        self.receive(cred.clone())?;
        Ok(cred)
    }

    /// Decodes and receives a credential from a peer or from storage.
    pub fn receive_bytes(&mut self, bytes: &[u8]) -> Result<Received, IdentityError> {
        self.receive(Credential::from_bytes(bytes)?)
    }

    /// Receives a credential from a peer or from storage. It is added when
    /// admissible, waits when a parent is missing, and is refused
    /// otherwise (with the reason). Receiving a stored credential again
    /// changes nothing.
    pub fn receive(&mut self, cred: Credential) -> Result<Received, IdentityError> {
        let mut out = Received::default();
        if self.index.contains_key(&cred.hash()) || self.waiting.contains_key(&cred.hash()) {
            return Ok(out);
        }
        cred.check_structure(self.log)?;
        if cred.parents().iter().any(|p| !self.index.contains_key(p)) {
            self.expire(self.clock);
            // Quotas: one key cannot fill the queue for everyone, and keys
            // the log does not know share a quarter of it.
            let signer = cred.signer();
            let of_signer = self
                .waiting
                .values()
                .filter(|(c, _)| c.signer() == signer)
                .count();
            let known = self.is_known_signer(&signer);
            let strangers = self
                .waiting
                .values()
                .filter(|(c, _)| !self.is_known_signer(&c.signer()))
                .count();
            if self.waiting.len() >= MAX_WAITING_CREDENTIALS
                || of_signer >= MAX_WAITING_PER_SIGNER
                || (!known && strangers >= MAX_WAITING_CREDENTIALS / 4)
            {
                return Err(IdentityError::PendingCredentialsFull {
                    hash: cred.hash(),
                    limit: if of_signer >= MAX_WAITING_PER_SIGNER {
                        MAX_WAITING_PER_SIGNER
                    } else {
                        MAX_WAITING_CREDENTIALS
                    },
                });
            }
            self.waiting.insert(cred.hash(), (cred, self.clock));
            out.waiting = true;
            return Ok(out);
        }
        out.added.push(self.insert(cred)?);
        // Release waiting credentials whose parents are now all present.
        loop {
            let ready: Vec<CredentialHash> = self
                .waiting
                .iter()
                .filter(|(_, (c, _))| c.parents().iter().all(|p| self.index.contains_key(p)))
                .map(|(h, _)| *h)
                .collect();
            if ready.is_empty() {
                break;
            }
            for hash in ready {
                if let Some((cred, _)) = self.waiting.remove(&hash) {
                    match self.insert(cred) {
                        Ok(h) => out.added.push(h),
                        Err(e) => out.refused.push((hash, e)),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Tells the log the host's time (stamps credentials that wait).
    pub fn set_clock(&mut self, now: u64) {
        self.clock = self.clock.max(now);
    }

    /// Drops credentials that waited for their parents longer than
    /// [`WAITING_TTL_MS`]; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        self.set_clock(now);
        let before = self.waiting.len();
        let clock = self.clock;
        self.waiting
            .retain(|_, (_, at)| clock.saturating_sub(*at) < WAITING_TTL_MS);
        before - self.waiting.len()
    }

    /// A key the current state knows: a member's identity key, or a device
    /// authorized (and not revoked) for a member.
    fn is_known_signer(&self, signer: &DevicePublicKey) -> bool {
        let state = &self.full.state;
        let as_identity = IdentityPublicKey::from_bytes(*signer.as_bytes());
        state.members.contains_key(&as_identity)
            || matches!(
                state.device(signer),
                Some(DeviceStatus::Authorized { identity }) if state.members.contains_key(&identity)
            )
    }

    /// Whether credential `hash` is in the cut of `heads` (one of them or
    /// an ancestor of one).
    pub fn cut_contains(&self, heads: &[CredentialHash], hash: &CredentialHash) -> bool {
        let Some(&x) = self.index.get(hash) else {
            return false;
        };
        heads.iter().any(|h| {
            self.index
                .get(h)
                .is_some_and(|&i| i == x || self.nodes[i as usize].anc.get(x))
        })
    }

    /// Whether the cut of `outer` holds the whole cut of `inner`.
    pub fn cut_covers(&self, outer: &[CredentialHash], inner: &[CredentialHash]) -> bool {
        inner.iter().all(|h| self.cut_contains(outer, h))
    }

    /// Accepted credentials of the current state that remove `identity`,
    /// demote it to a role that cannot write, or revoke `device`: what
    /// limits the device's bundles that do not name them.
    pub fn restrictions_of(
        &self,
        identity: &IdentityPublicKey,
        device: &DevicePublicKey,
    ) -> Vec<&Credential> {
        let accepted = &self.full.accepted;
        let mut out = Vec::new();
        for &i in self
            .about_member
            .get(identity)
            .into_iter()
            .flatten()
            .chain(self.about_device.get(device).into_iter().flatten())
        {
            if !accepted.get(i) {
                continue;
            }
            let node = &self.nodes[i as usize];
            let restricts = match node.cred.kind() {
                CredentialKind::Remove { .. } => true,
                CredentialKind::ChangeRole { role, .. } => !role.can_write(),
                CredentialKind::RevokeDevice { device: d, .. } => d == device,
                _ => false,
            };
            if restricts {
                out.push(&node.cred);
            }
        }
        out
    }

    /// Adds a structurally valid credential whose parents are all present.
    fn insert(&mut self, cred: Credential) -> Result<CredentialHash, IdentityError> {
        let hash = cred.hash();
        if matches!(cred.kind(), CredentialKind::Genesis { .. }) {
            return Err(IdentityError::BadGenesis {
                hash,
                reason: "this log already has a genesis",
            });
        }
        let mut anc = Bits::default();
        let mut parents = Vec::with_capacity(cred.parents().len());
        for p in cred.parents() {
            let &pi = self
                .index
                .get(p)
                .ok_or(IdentityError::UnknownCredential { hash: *p })?;
            anc.set(pi);
            anc.or(&self.nodes[pi as usize].anc);
            parents.push(pi);
        }
        let extends_all = self.heads.iter().all(|&h| anc.get(h));
        if extends_all {
            // Fast path: the new credential follows everything, so the state
            // of its past is the current state and it is concurrent with
            // nothing (it can neither be voided nor void anything).
            let accepted = &self.full.accepted;
            self.authorize(&cred, &anc, &|j| accepted.get(j))
                .map_err(|reason| IdentityError::Unauthorized { hash, reason })?;
            let i = self.push(cred, anc, parents);
            self.full.accepted.set(i);
            self.refresh_subject(i);
        } else {
            let past = self.evaluate(Some(&anc));
            self.authorize(&cred, &anc, &|j| past.accepted.get(j))
                .map_err(|reason| IdentityError::Unauthorized { hash, reason })?;
            self.push(cred, anc, parents);
            self.full = self.evaluate(None);
        }
        Ok(hash)
    }

    fn push(&mut self, cred: Credential, anc: Bits, parents: Vec<u32>) -> u32 {
        let i = self.nodes.len() as u32;
        let effect = effect_of(&cred);
        match effect {
            Effect::Genesis { owner, device } => {
                self.about_member.entry(owner).or_default().push(i);
                if let Some(d) = device {
                    self.about_device.entry(d).or_default().push(i);
                }
            }
            Effect::Member { member, role } => {
                self.about_member.entry(member).or_default().push(i);
                if role.is_none() {
                    self.negatives.push(i);
                }
            }
            Effect::AuthorizeDevice { device, .. } => {
                self.about_device.entry(device).or_default().push(i);
            }
            Effect::RevokeDevice { device, .. } => {
                self.about_device.entry(device).or_default().push(i);
                self.negatives.push(i);
            }
        }
        self.by_issuer.entry(cred.issuer()).or_default().push(i);
        self.by_signer.entry(cred.signer()).or_default().push(i);
        self.index.insert(cred.hash(), i);
        self.heads.retain(|h| !parents.contains(h));
        self.heads.push(i);
        self.nodes.push(Node { cred, anc, effect });
        i
    }

    /// Recomputes the current state's entries for what node `i` is about.
    fn refresh_subject(&mut self, i: u32) {
        let accepted = &self.full.accepted;
        let inset = |j: u32| accepted.get(j);
        let mut members = Vec::new();
        let mut devices = Vec::new();
        match self.nodes[i as usize].effect {
            Effect::Genesis { owner, device } => {
                members.push(owner);
                devices.extend(device);
            }
            Effect::Member { member, .. } => members.push(member),
            Effect::AuthorizeDevice { device, .. } | Effect::RevokeDevice { device, .. } => {
                devices.push(device)
            }
        }
        let members: Vec<_> = members
            .into_iter()
            .map(|m| (m, self.member_role(&m, &inset)))
            .collect();
        let devices: Vec<_> = devices
            .into_iter()
            .map(|d| (d, self.device_status(&d, &inset)))
            .collect();
        let state = &mut self.full.state;
        for (m, role) in members {
            match role {
                Some(r) => state.members.insert(m, r),
                None => state.members.remove(&m),
            };
        }
        for (d, status) in devices {
            match status {
                Some(s) => state.devices.insert(d, s),
                None => state.devices.remove(&d),
            };
        }
    }

    /// The role of `member` among the credentials `inset` selects: the
    /// maximal (causally latest) statements about the member, merged to
    /// the least privilege; a removal means no role.
    fn member_role(&self, member: &IdentityPublicKey, inset: &dyn Fn(u32) -> bool) -> Option<Role> {
        let cands: Vec<u32> = self
            .about_member
            .get(member)?
            .iter()
            .copied()
            .filter(|&j| inset(j))
            .collect();
        let mut result: Option<Option<Role>> = None;
        for &c in &cands {
            let superseded = cands
                .iter()
                .any(|&o| o != c && self.nodes[o as usize].anc.get(c));
            if superseded {
                continue;
            }
            let role = match self.nodes[c as usize].effect {
                Effect::Genesis { .. } => Some(Role::Owner),
                Effect::Member { role, .. } => role,
                _ => continue,
            };
            result = Some(match result {
                None => role,
                Some(prev) => match (prev, role) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                },
            });
        }
        result.flatten()
    }

    /// The status of `device` among the credentials `inset` selects. A
    /// revocation anywhere in the set wins.
    fn device_status(
        &self,
        device: &DevicePublicKey,
        inset: &dyn Fn(u32) -> bool,
    ) -> Option<DeviceStatus> {
        let mut authorized: Option<IdentityPublicKey> = None;
        let mut conflicted = false;
        for &c in self.about_device.get(device)? {
            if !inset(c) {
                continue;
            }
            match self.nodes[c as usize].effect {
                Effect::RevokeDevice { identity, .. } => {
                    return Some(DeviceStatus::Revoked { identity })
                }
                Effect::AuthorizeDevice { identity, .. }
                | Effect::Genesis {
                    owner: identity, ..
                } => match authorized {
                    Some(prev) if prev != identity => conflicted = true,
                    _ => authorized = Some(identity),
                },
                Effect::Member { .. } => {}
            }
        }
        if conflicted {
            return Some(DeviceStatus::Conflicted);
        }
        authorized.map(|identity| DeviceStatus::Authorized { identity })
    }

    /// Whether the issuer of `cred` was allowed to issue it, given the
    /// accepted credentials of its past (`past` selects accepted nodes;
    /// `anc` is the credential's ancestry).
    fn authorize(
        &self,
        cred: &Credential,
        anc: &Bits,
        past: &dyn Fn(u32) -> bool,
    ) -> Result<(), Denied> {
        let inset = |j: u32| anc.get(j) && past(j);
        let body = cred.body();
        let issuer = body.issuer;
        if matches!(body.kind, CredentialKind::Genesis { .. }) {
            return Ok(());
        }
        // A device may present its own certificate (signed by its identity:
        // the identity's consent) to authorize itself, as in a genesis.
        let self_authorizing = matches!(
            &body.kind,
            CredentialKind::AuthorizeDevice { certificate }
                if certificate.device == body.signer && certificate.identity == issuer
        );
        if body.signer != issuer.as_signer() && !self_authorizing {
            match self.device_status(&body.signer, &inset) {
                Some(DeviceStatus::Authorized { identity }) if identity == issuer => {}
                Some(DeviceStatus::Revoked { .. }) => {
                    return Err(Denied::SignerRevoked {
                        signer: body.signer,
                    })
                }
                _ => {
                    return Err(Denied::SignerNotAuthorized {
                        signer: body.signer,
                    })
                }
            }
        }
        let issuer_role = self.member_role(&issuer, &inset);
        let halo = matches!(self.log, LogId::Halo(_));
        let need_manage = |action: &'static str| match issuer_role {
            None => Err(Denied::IssuerNotMember { issuer }),
            Some(role) if !role.can_manage() => Err(Denied::RoleTooLow { role, action }),
            Some(_) => Ok(()),
        };
        match &body.kind {
            CredentialKind::Genesis { .. } => Ok(()),
            CredentialKind::Admit { member, role } => {
                if halo {
                    return Err(Denied::NotInHalo);
                }
                need_manage("admitting a member")?;
                if *role == Role::Owner {
                    return Err(Denied::CannotGrantOwner);
                }
                match self.member_role(member, &inset) {
                    Some(Role::Owner) => Err(Denied::OwnerIsPermanent),
                    Some(_) => Err(Denied::AlreadyMember { member: *member }),
                    None => Ok(()),
                }
            }
            CredentialKind::ChangeRole { member, role } => {
                if halo {
                    return Err(Denied::NotInHalo);
                }
                need_manage("changing a role")?;
                if *role == Role::Owner {
                    return Err(Denied::CannotGrantOwner);
                }
                match self.member_role(member, &inset) {
                    Some(Role::Owner) => Err(Denied::OwnerIsPermanent),
                    Some(_) => Ok(()),
                    None => Err(Denied::NotMember { member: *member }),
                }
            }
            CredentialKind::Remove { member } => {
                if halo {
                    return Err(Denied::NotInHalo);
                }
                match self.member_role(member, &inset) {
                    Some(Role::Owner) => return Err(Denied::OwnerIsPermanent),
                    None => return Err(Denied::NotMember { member: *member }),
                    Some(_) => {}
                }
                if *member == issuer {
                    Ok(()) // leaving
                } else {
                    need_manage("removing a member")
                }
            }
            CredentialKind::AuthorizeDevice { certificate } => {
                if certificate.identity != issuer {
                    return Err(Denied::DeviceOfOtherIdentity);
                }
                if issuer_role.is_none() {
                    return Err(Denied::IssuerNotMember { issuer });
                }
                match self.device_status(&certificate.device, &inset) {
                    Some(DeviceStatus::Revoked { .. }) => Err(Denied::DeviceRevoked {
                        device: certificate.device,
                    }),
                    Some(DeviceStatus::Authorized { identity }) if identity != issuer => {
                        Err(Denied::DeviceClaimed {
                            device: certificate.device,
                        })
                    }
                    Some(DeviceStatus::Conflicted) => Err(Denied::DeviceClaimed {
                        device: certificate.device,
                    }),
                    _ => Ok(()),
                }
            }
            CredentialKind::RevokeDevice { identity, device } => {
                match issuer_role {
                    None => return Err(Denied::IssuerNotMember { issuer }),
                    // Another member revokes only below its own role: an
                    // admin revokes an editor's device, never the owner's
                    // or another admin's.
                    Some(role) if *identity != issuer => {
                        let theirs = self.member_role(identity, &inset);
                        if !role.can_manage() || theirs.is_some_and(|t| t >= role) {
                            return Err(Denied::CannotRevoke);
                        }
                    }
                    Some(_) => {}
                }
                match self.device_status(device, &inset) {
                    Some(DeviceStatus::Authorized { identity: owner }) if owner == *identity => {
                        Ok(())
                    }
                    Some(DeviceStatus::Revoked { .. }) => {
                        Err(Denied::DeviceRevoked { device: *device })
                    }
                    _ => Err(Denied::DeviceUnknown {
                        device: *device,
                        identity: *identity,
                    }),
                }
            }
        }
    }

    fn concurrent(&self, a: u32, b: u32) -> bool {
        a != b && !self.nodes[a as usize].anc.get(b) && !self.nodes[b as usize].anc.get(a)
    }

    /// Evaluates the cut `within` (every node when `None`): which
    /// credentials are accepted, and the resulting state.
    ///
    /// Passes in insertion order (a topological order; the result does not
    /// depend on which one, since a credential's fate depends only on its
    /// past and on the void set). After each pass, accepted removals and
    /// revocations void the accepted credentials of their target that are
    /// concurrent with them; the void set only grows, so this ends.
    fn evaluate(&self, within: Option<&Bits>) -> Evaluation {
        let n = self.nodes.len();
        let mut void: HashMap<u32, u32> = HashMap::new();
        loop {
            let mut accepted = Bits::with_len(n);
            let mut denied = HashMap::new();
            for (i, node) in self.nodes.iter().enumerate() {
                let i = i as u32;
                if within.is_some_and(|w| !w.get(i)) {
                    continue;
                }
                if let Some(&by) = void.get(&i) {
                    denied.insert(i, Denied::Voided { by: self.hash(by) });
                    continue;
                }
                let result = {
                    let acc = &accepted;
                    self.authorize(&node.cred, &node.anc, &|j| acc.get(j))
                };
                match result {
                    Ok(()) => accepted.set(i),
                    Err(d) => {
                        denied.insert(i, d);
                    }
                }
            }
            let mut grew = false;
            for &r in &self.negatives {
                if !accepted.get(r) {
                    continue;
                }
                let targets = match self.nodes[r as usize].effect {
                    Effect::Member { member, .. } => self.by_issuer.get(&member),
                    Effect::RevokeDevice { device, .. } => self.by_signer.get(&device),
                    _ => None,
                };
                for &c in targets.into_iter().flatten() {
                    if accepted.get(c) && self.concurrent(r, c) && !void.contains_key(&c) {
                        void.insert(c, r);
                        grew = true;
                    }
                }
            }
            if !grew {
                let state = self.state_of(&accepted);
                return Evaluation {
                    accepted,
                    denied,
                    state,
                };
            }
        }
    }

    fn state_of(&self, accepted: &Bits) -> MembershipState {
        let inset = |j: u32| accepted.get(j);
        let mut state = MembershipState::default();
        for member in self.about_member.keys() {
            if let Some(role) = self.member_role(member, &inset) {
                state.members.insert(*member, role);
            }
        }
        for device in self.about_device.keys() {
            if let Some(status) = self.device_status(device, &inset) {
                state.devices.insert(*device, status);
            }
        }
        state
    }

    /// Recomputes the whole state from scratch (what loading does; also a
    /// self-check: it must equal [`state`](Self::state)).
    pub fn recompute(&mut self) -> &MembershipState {
        self.full = self.evaluate(None);
        &self.full.state
    }

    /// The membership state of the cut `heads` (those credentials and their
    /// ancestors), with only that cut's credentials counted. Unknown heads
    /// are returned as the error.
    pub fn state_at(&self, heads: &[CredentialHash]) -> Result<StateRef<'_>, Vec<CredentialHash>> {
        let missing: Vec<_> = heads
            .iter()
            .filter(|h| !self.index.contains_key(h))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        let mut key: Vec<u32> = heads
            .iter()
            .filter_map(|h| self.index.get(h).copied())
            .collect();
        key.sort_unstable();
        key.dedup();
        if key.len() == self.heads.len() && key.iter().all(|k| self.heads.contains(k)) {
            return Ok(StateRef::Current(&self.full.state));
        }
        if let Ok(cache) = self.cuts.lock() {
            if let Some((_, state)) = cache.iter().find(|(k, _)| *k == key) {
                return Ok(StateRef::Cut(state.clone()));
            }
        }
        let mut cut = Bits::default();
        for &h in &key {
            cut.set(h);
            cut.or(&self.nodes[h as usize].anc);
        }
        let state = Arc::new(self.evaluate(Some(&cut)).state);
        if let Ok(mut cache) = self.cuts.lock() {
            if cache.len() >= CUT_CACHE {
                cache.pop_front();
            }
            cache.push_back((key, state.clone()));
        }
        Ok(StateRef::Cut(state))
    }
}
