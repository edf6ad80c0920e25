//! [`Replica`]: a space, its control log and this device's key, with the
//! verification hook in the data path.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::Change;

use super::error::{BundleRejection, SyncError};
use super::wire::ShardBundle;
use crate::data::{SpaceId, Value};
use crate::identity::{
    Credential, CredentialHash, CredentialKind, DeviceCertificate, DeviceKey, DevicePublicKey,
    DeviceStatus, IdentityError, IdentityPublicKey, Issuer, PendingChanges, Rejection, Signature,
    SpaceControl, Verdict,
};
use crate::model::{Committed, Heads, ModelError, ShardChanges, Space, SpaceOptions, WriteBatch};

/// The most changes [`Replica::seal`] puts in one bundle.
pub const MAX_SEAL_CHANGES: usize = 4096;
/// The most change bytes [`Replica::seal`] puts in one bundle (a bundle
/// must fit a receiver's pending queue: 64 MiB by default).
pub const MAX_SEAL_BYTES: usize = 4 << 20;

/// A received bundle that was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedBundle {
    pub signer: DevicePublicKey,
    pub shard: u16,
    pub reason: BundleRejection,
}

impl RejectedBundle {
    /// The reason's stable code (`identity.bundle.*` or `sync.bundle.*`).
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }
}

/// A bundle that had to wait for credentials but did not fit the pending
/// queue: dropped (not judged). Sync the control log, then ask for the data
/// again.
#[derive(Debug)]
pub struct DroppedBundle {
    pub signer: DevicePublicKey,
    pub shard: u16,
    /// [`IdentityError::PendingChangesFull`].
    pub error: IdentityError,
}

/// What became of the bundles of one [`Replica::receive`] call (or of the
/// bundles released by new credentials).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Objects whose state changed through the accepted bundles.
    pub applied: Committed,
    /// Bundles verified, merged and kept for relaying.
    pub accepted: usize,
    /// Bundles refused: not applied, not kept, not relayed.
    pub rejected: Vec<RejectedBundle>,
    /// Bundles that waited for credentials but did not fit the queue.
    pub dropped: Vec<DroppedBundle>,
    /// Bundles already kept or already waiting (ignored).
    pub duplicates: usize,
    /// Bundles waiting for credentials after the call (whole queue).
    pub waiting: usize,
}

/// What [`Replica::receive_credentials`] did.
#[derive(Debug, Default)]
pub struct CredentialsOutcome {
    /// Credentials added to the control log (relay these).
    pub added: Vec<CredentialHash>,
    /// Credentials refused, with the reason.
    pub refused: Vec<(CredentialHash, IdentityError)>,
    /// Credentials waiting for their parents (whole log).
    pub waiting: usize,
    /// Bundles that were waiting for these credentials and are now judged.
    pub released: Outcome,
}

/// One replica of a space on this device: the data ([`Space`]), its
/// control log ([`SpaceControl`]), this device's key and the bundles
/// waiting for credentials.
///
/// Every change merged from a peer went through
/// [`SpaceControl::verify_bundle`]: it is signed by a device of a member
/// whose role writes in the control-log cut the bundle names. Reads and
/// queries go to [`space_mut`](Self::space_mut); writes go through
/// [`write`](Self::write) (writes made on the `Space` directly are not
/// sealed).
pub struct Replica {
    pub(super) space: Space,
    pub(super) control: SpaceControl,
    pub(super) device: DeviceKey,
    pub(super) identity: IdentityPublicKey,
    pub(super) pending: PendingChanges,
    /// Shard and binding of each waiting bundle, by bundle signature.
    pub(super) pending_meta: HashMap<[u8; 64], (u16, Signature)>,
    /// Data heads at the last seal (`None`: not read yet, for a space
    /// opened from storage; every stored change counts as sealed).
    pub(super) sealed: Option<Heads>,
    /// Writes since the last seal.
    pub(super) unsealed: bool,
    /// Bundles sealed before a control-log change, not handed out yet.
    pub(super) outbox: Vec<ShardBundle>,
    /// Accepted bundles (own and received), in acceptance order.
    pub(super) bundles: Vec<ShardBundle>,
    pub(super) kept: HashMap<[u8; 64], usize>,
    /// Credentials and bundles already in storage (prefixes of the log's
    /// credentials and of `bundles`).
    pub(super) saved_credentials: usize,
    pub(super) saved_bundles: usize,
    pub(super) save_in_flight: bool,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("space", &self.space.id())
            .field("device", &self.device.public_key())
            .field("identity", &self.identity)
            .field("control", &self.control)
            .field("bundles", &self.bundles.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn merge(out: &mut Outcome, seen: &mut HashSet<crate::data::ObjectId>, committed: Committed) {
    for id in committed.changed {
        if seen.insert(id) {
            out.applied.changed.push(id);
        }
    }
}

fn key_of(bundle: &ShardBundle) -> [u8; 64] {
    bundle.bundle.signature.to_bytes()
}

impl Replica {
    /// Creates a new space owned by `identity`: the genesis is signed by
    /// `device` and authorizes it (`certificate`: device → identity).
    pub fn create(
        space: SpaceId,
        identity: IdentityPublicKey,
        device: DeviceKey,
        certificate: DeviceCertificate,
        options: SpaceOptions,
    ) -> Result<Self, SyncError> {
        let control =
            SpaceControl::create(space, Issuer::device(&device, identity), Some(certificate))?;
        Self::from_control(control, identity, device, options)
    }

    /// Joins an existing space from its control log (received from a peer
    /// or read from storage), with empty data. `identity` is the identity
    /// `device` acts for; it need not be a member yet (credentials may
    /// arrive later).
    pub fn from_control(
        control: SpaceControl,
        identity: IdentityPublicKey,
        device: DeviceKey,
        options: SpaceOptions,
    ) -> Result<Self, SyncError> {
        let space = Space::create(control.space(), device.actor_id(), options)?;
        let mut replica = Self::from_parts(space, control, identity, device)?;
        replica.sealed = Some(Heads::default());
        Ok(replica)
    }

    /// Joins an existing space from its credentials, in any order (the
    /// genesis among them). Credentials that are refused are reported.
    pub fn join(
        credentials: Vec<Credential>,
        identity: IdentityPublicKey,
        device: DeviceKey,
        options: SpaceOptions,
    ) -> Result<(Self, CredentialsOutcome), SyncError> {
        let genesis = credentials
            .iter()
            .find(|c| matches!(c.kind(), CredentialKind::Genesis { .. }))
            .cloned()
            .ok_or(SyncError::NoGenesis)?;
        let control = SpaceControl::from_genesis(genesis)?;
        let mut replica = Self::from_control(control, identity, device, options)?;
        let outcome = replica.receive_credentials(credentials)?;
        Ok((replica, outcome))
    }

    /// Assembles a replica from a space opened from storage
    /// ([`Space::open`]) and its control log. Every change already in the
    /// space counts as sealed: seal before saving.
    pub fn from_parts(
        space: Space,
        control: SpaceControl,
        identity: IdentityPublicKey,
        device: DeviceKey,
    ) -> Result<Self, SyncError> {
        if space.id() != control.space() {
            return Err(SyncError::SpaceMismatch {
                control: control.space().to_string(),
                data: space.id().to_string(),
            });
        }
        if *space.actor() != device.actor_id() {
            return Err(SyncError::Model(ModelError::Corrupt {
                reason: "the space's actor id is not this device's key".into(),
            }));
        }
        Ok(Self {
            space,
            control,
            device,
            identity,
            pending: PendingChanges::default(),
            pending_meta: HashMap::new(),
            sealed: None,
            unsealed: false,
            outbox: Vec::new(),
            bundles: Vec::new(),
            kept: HashMap::new(),
            saved_credentials: 0,
            saved_bundles: 0,
            save_in_flight: false,
        })
    }

    /// Replaces the pending queue's bounds (default: 4,096 bundles, 64 MiB).
    /// Bundles already waiting are kept.
    pub fn with_pending_limits(mut self, max_bundles: usize, max_bytes: usize) -> Self {
        if self.pending.is_empty() {
            self.pending = PendingChanges::new(max_bundles, max_bytes);
        }
        self
    }

    // ------------------------------------------------------------- accessors

    pub fn space(&self) -> &Space {
        &self.space
    }

    /// The space, for reads, queries and subscriptions (they take `&mut`).
    /// Write through [`write`](Self::write): changes made here are neither
    /// checked nor sealed.
    pub fn space_mut(&mut self) -> &mut Space {
        &mut self.space
    }

    pub fn control(&self) -> &SpaceControl {
        &self.control
    }

    pub fn id(&self) -> SpaceId {
        self.space.id()
    }

    pub fn device(&self) -> &DeviceKey {
        &self.device
    }

    pub fn identity(&self) -> IdentityPublicKey {
        self.identity
    }

    /// Bundles waiting for credentials.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Every accepted bundle (own sealed ones and verified received ones),
    /// in acceptance order, to persist or relay as they are.
    pub fn all_bundles(&self) -> &[ShardBundle] {
        &self.bundles
    }

    /// Accepted bundles after the first `n`: a peer link remembers how many
    /// it relayed and asks for the rest.
    pub fn bundles_since(&self, n: usize) -> &[ShardBundle] {
        self.bundles.get(n..).unwrap_or(&[])
    }

    // ---------------------------------------------------------------- writes

    /// Whether this device may write now, and if not, why (the reason a
    /// peer would reject its bundle with).
    pub fn write_permission(&self) -> Result<(), Rejection> {
        let device = self.device.public_key();
        let state = self.control.state();
        let identity = match state.device(&device) {
            Some(DeviceStatus::Authorized { identity }) => identity,
            Some(DeviceStatus::Revoked { .. }) => return Err(Rejection::DeviceRevoked { device }),
            Some(DeviceStatus::Conflicted) | None => {
                return Err(Rejection::DeviceNotAuthorized { device })
            }
        };
        match state.role(&identity) {
            None => Err(Rejection::NotAMember { identity }),
            Some(role) if !role.can_write() => Err(Rejection::ReadOnly { identity, role }),
            Some(_) => Ok(()),
        }
    }

    pub fn can_write(&self) -> bool {
        self.write_permission().is_ok()
    }

    /// Applies a write batch locally. Refused with
    /// [`SyncError::WriteRefused`] (nothing applied) when this device may
    /// not write: not authorized, revoked, not a member, or a reader.
    pub fn write(&mut self, batch: WriteBatch) -> Result<Committed, SyncError> {
        if let Err(reason) = self.write_permission() {
            return Err(SyncError::WriteRefused { reason });
        }
        if batch.is_empty() {
            return Ok(Committed::default());
        }
        if self.sealed.is_none() {
            self.sealed = Some(self.space.heads()?);
        }
        let committed = self.space.apply(batch)?;
        self.unsealed = true;
        Ok(committed)
    }

    /// Sets a property of the space (its name, …), under the same write
    /// check as [`write`](Self::write); sealed with the next seal.
    pub fn set_property(&mut self, name: &str, value: Value) -> Result<(), SyncError> {
        if let Err(reason) = self.write_permission() {
            return Err(SyncError::WriteRefused { reason });
        }
        if self.sealed.is_none() {
            self.sealed = Some(self.space.heads()?);
        }
        self.space.set_property(name, value)?;
        self.unsealed = true;
        Ok(())
    }

    /// Signs this device's changes made since the last seal: one bundle
    /// per touched shard (more when large), naming the control-log heads
    /// they were made at. Returns them with any bundles sealed earlier
    /// because the control log changed. The bundles are also kept for
    /// relaying; the host persists and sends them.
    pub fn seal(&mut self) -> Result<Vec<ShardBundle>, SyncError> {
        self.seal_into_outbox()?;
        Ok(std::mem::take(&mut self.outbox))
    }

    /// Seals unsealed writes at the current control heads (called before
    /// the control log changes, so changes name the heads they were made at).
    pub(super) fn seal_into_outbox(&mut self) -> Result<(), SyncError> {
        if !self.unsealed {
            return Ok(());
        }
        let since = self.sealed.clone().unwrap_or_default();
        let heads = self.space.heads()?;
        let changes = self.space.changes_since(&since)?;
        let actor = self.device.actor_id();
        let control_heads = self.control.heads();
        let mut out = Vec::new();
        for sc in changes {
            let mut own: Vec<Change> = Vec::new();
            let mut bytes = 0;
            for raw in sc.changes {
                let change = Change::from_bytes(raw).map_err(|e| ModelError::Corrupt {
                    reason: format!("a change of this replica does not decode: {e}"),
                })?;
                if *change.actor_id() != actor {
                    continue;
                }
                let size = change.raw_bytes().len();
                if !own.is_empty()
                    && (own.len() >= MAX_SEAL_CHANGES || bytes + size > MAX_SEAL_BYTES)
                {
                    out.push(self.sign(sc.shard, &control_heads, &own)?);
                    own.clear();
                    bytes = 0;
                }
                bytes += size;
                own.push(change);
            }
            if !own.is_empty() {
                out.push(self.sign(sc.shard, &control_heads, &own)?);
            }
        }
        for bundle in &out {
            self.keep(bundle.clone());
        }
        self.outbox.extend(out);
        self.sealed = Some(heads);
        self.unsealed = false;
        Ok(())
    }

    fn sign(
        &self,
        shard: u16,
        control_heads: &[CredentialHash],
        changes: &[Change],
    ) -> Result<ShardBundle, SyncError> {
        let bundle = self
            .device
            .sign_changes(self.space.id(), control_heads.to_vec(), changes)?;
        Ok(ShardBundle::bind(&self.device, shard, bundle))
    }

    pub(super) fn keep(&mut self, bundle: ShardBundle) {
        self.kept.insert(key_of(&bundle), self.bundles.len());
        self.bundles.push(bundle);
    }

    fn is_known(&self, bundle: &ShardBundle) -> bool {
        let key = key_of(bundle);
        if let Some(&i) = self.kept.get(&key) {
            if self.bundles[i] == *bundle {
                return true;
            }
        }
        self.pending_meta.get(&key) == Some(&(bundle.shard, bundle.binding))
    }

    // --------------------------------------------------------------- receive

    /// Receives bundles from a peer (or from storage). Each is verified
    /// against the control log in the cut it names (see
    /// `docs/membership.md`): accepted ones are merged into the space and
    /// kept for relaying; ones whose control heads are unknown wait for
    /// credentials (bounded; see [`Outcome::dropped`]); the others are
    /// rejected with a reason and not kept.
    ///
    /// Never fails as a whole: a bundle whose merge fails is rejected
    /// alone (`sync.bundle.apply_failed`).
    pub fn receive(&mut self, bundles: Vec<ShardBundle>) -> Outcome {
        let mut out = Outcome::default();
        let mut accepted = Vec::new();
        let mut staged = HashSet::new();
        for sb in bundles {
            if self.is_known(&sb) || staged.contains(&(key_of(&sb), sb.shard, sb.binding)) {
                out.duplicates += 1;
                continue;
            }
            let reject = |reason| RejectedBundle {
                signer: sb.bundle.signer,
                shard: sb.shard,
                reason,
            };
            if usize::from(sb.shard) >= self.space.shard_count() {
                out.rejected.push(reject(BundleRejection::NoSuchShard {
                    shard: sb.shard,
                    shard_count: self.space.shard_count(),
                }));
                continue;
            }
            match self.control.verify_bundle(&sb.bundle) {
                Ok(_) if !sb.binding_is_valid() => {
                    out.rejected.push(reject(BundleRejection::BadShardBinding))
                }
                Ok(_) => {
                    staged.insert((key_of(&sb), sb.shard, sb.binding));
                    accepted.push(sb);
                }
                Err(r) if r.is_retryable() => {
                    if !sb.binding_is_valid() {
                        out.rejected.push(reject(BundleRejection::BadShardBinding));
                        continue;
                    }
                    let (signer, shard, binding) = (sb.bundle.signer, sb.shard, sb.binding);
                    match self.pending.offer(&self.control, sb.bundle.clone()) {
                        Ok(Verdict::Waiting) => {
                            self.pending_meta.insert(key_of(&sb), (shard, binding));
                        }
                        Ok(Verdict::Accepted(_)) => {
                            staged.insert((key_of(&sb), sb.shard, sb.binding));
                            accepted.push(sb);
                        }
                        Ok(Verdict::Rejected(r)) => {
                            out.rejected.push(reject(BundleRejection::Bundle(r)))
                        }
                        Err(error) => out.dropped.push(DroppedBundle {
                            signer,
                            shard,
                            error,
                        }),
                    }
                }
                Err(r) => out.rejected.push(reject(BundleRejection::Bundle(r))),
            }
        }
        self.apply_accepted(accepted, &mut out);
        out.waiting = self.pending.len();
        out
    }

    /// Decodes bundles in wire form and receives them. Undecodable ones
    /// are returned as errors beside the outcome; they change nothing.
    pub fn receive_bytes(&mut self, bundles: &[Vec<u8>]) -> (Outcome, Vec<SyncError>) {
        let mut decoded = Vec::with_capacity(bundles.len());
        let mut errors = Vec::new();
        for bytes in bundles {
            match ShardBundle::from_bytes(bytes) {
                Ok(b) => decoded.push(b),
                Err(e) => errors.push(e),
            }
        }
        (self.receive(decoded), errors)
    }

    /// Merges verified bundles, one `apply_changes` call per shard, and
    /// keeps them. When a shard's call fails (e.g. a writer signed two
    /// different changes with one sequence number), its bundles are
    /// retried one by one and those that still fail are rejected, so one
    /// bad bundle does not hold back the others.
    fn apply_accepted(&mut self, accepted: Vec<ShardBundle>, out: &mut Outcome) {
        if accepted.is_empty() {
            return;
        }
        let mut by_shard: BTreeMap<u16, Vec<ShardBundle>> = BTreeMap::new();
        for sb in accepted {
            by_shard.entry(sb.shard).or_default().push(sb);
        }
        let mut seen: HashSet<_> = out.applied.changed.iter().copied().collect();
        for (shard, bundles) in by_shard {
            let changes = bundles
                .iter()
                .flat_map(|sb| sb.bundle.changes.iter().cloned())
                .collect();
            match self
                .space
                .apply_changes(vec![ShardChanges { shard, changes }])
            {
                Ok(committed) => {
                    merge(out, &mut seen, committed);
                    out.accepted += bundles.len();
                    for sb in bundles {
                        self.keep(sb);
                    }
                }
                Err(_) => {
                    for sb in bundles {
                        let one = ShardChanges {
                            shard,
                            changes: sb.bundle.changes.clone(),
                        };
                        match self.space.apply_changes(vec![one]) {
                            Ok(committed) => {
                                merge(out, &mut seen, committed);
                                out.accepted += 1;
                                self.keep(sb);
                            }
                            Err(e) => out.rejected.push(RejectedBundle {
                                signer: sb.bundle.signer,
                                shard,
                                reason: BundleRejection::ApplyFailed {
                                    reason: e.to_string(),
                                },
                            }),
                        }
                    }
                }
            }
        }
    }

    // ----------------------------------------------------------- credentials

    /// Adds credentials to the control log (from a peer or from storage, in
    /// any order), then judges the bundles that were waiting for them.
    /// Unsealed local writes are sealed first, at the heads they were made
    /// at.
    pub fn receive_credentials(
        &mut self,
        credentials: Vec<Credential>,
    ) -> Result<CredentialsOutcome, SyncError> {
        self.seal_into_outbox()?;
        let mut out = CredentialsOutcome::default();
        for cred in credentials {
            let hash = cred.hash();
            match self.control.receive(cred) {
                Ok(received) => {
                    out.added.extend(received.added);
                    out.refused.extend(received.refused);
                }
                Err(e) => out.refused.push((hash, e)),
            }
        }
        out.waiting = self.control.waiting();
        out.released = self.release_pending();
        Ok(out)
    }

    /// Issues a credential as this device (on behalf of its identity) on
    /// top of the current control heads. Unsealed writes are sealed first.
    pub fn issue(&mut self, kind: CredentialKind) -> Result<Credential, SyncError> {
        self.seal_into_outbox()?;
        let by = Issuer::device(&self.device, self.identity);
        Ok(self.control.issue(by, kind)?)
    }

    /// Issues a credential signed by another key of this replica's
    /// identity (e.g. the identity key itself).
    pub fn issue_as(
        &mut self,
        by: Issuer<'_>,
        kind: CredentialKind,
    ) -> Result<Credential, SyncError> {
        self.seal_into_outbox()?;
        Ok(self.control.issue(by, kind)?)
    }

    /// Judges waiting bundles whose credentials have arrived.
    fn release_pending(&mut self) -> Outcome {
        let mut out = Outcome::default();
        if self.pending.is_empty() {
            return out;
        }
        let released = self.pending.release_ready(&self.control);
        for (bundle, reason) in released.rejected {
            let meta = self.pending_meta.remove(&bundle.signature.to_bytes());
            out.rejected.push(RejectedBundle {
                signer: bundle.signer,
                shard: meta.map_or(0, |(shard, _)| shard),
                reason: BundleRejection::Bundle(reason),
            });
        }
        let mut accepted = Vec::new();
        for (bundle, _) in released.accepted {
            if let Some((shard, binding)) = self.pending_meta.remove(&bundle.signature.to_bytes()) {
                accepted.push(ShardBundle {
                    shard,
                    bundle,
                    binding,
                });
            }
        }
        self.apply_accepted(accepted, &mut out);
        out.waiting = self.pending.len();
        out
    }
}
