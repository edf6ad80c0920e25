//! [`Replica`]: a space, its control log and this device's key, with the
//! verification hook in the data path. Construction, reads, local writes,
//! sealing and credentials are here; receiving is in `receive.rs`, what a
//! peer is sent in `send.rs`, storage in `persist.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::ChangeHash;

use super::coverage::{Coverage, SeqIndex};
use super::error::SyncError;
use super::evidence::Equivocation;
use super::pending::{Pending, PendingLimits};
use super::reads::SpaceReads;
use crate::data::{SpaceId, Value};
use crate::identity::{
    Credential, CredentialHash, CredentialKind, DeviceCertificate, DeviceKey, DevicePublicKey,
    DeviceStatus, DeviceWatermark, IdentityError, IdentityPublicKey, Issuer, Rejection, Run,
    SignedChanges, SpaceControl, Watermark,
};
use crate::model::{Committed, Heads, ModelError, Space, SpaceOptions, WriteBatch};
use crate::peer::{Millis, PeerIdentity};

/// The most changes [`Replica::seal`] puts in one bundle.
#[cfg(not(test))]
pub const MAX_SEAL_CHANGES: usize = 65_536;
/// Tests split seals at a small size.
#[cfg(test)]
pub const MAX_SEAL_CHANGES: usize = 100;

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
    pub released: super::Outcome,
    /// Accepted bundles a restriction among these credentials voided.
    pub voided: super::Voided,
}

/// One replica of a space on this device: the data ([`Space`]), its
/// control log ([`SpaceControl`]), this device's key and the bundles.
///
/// Every change merged from a peer went through
/// [`SpaceControl::verify_bundle`]: it is signed by a device of a member
/// whose role writes in the control-log cut the bundle names. There is no
/// other way in: `Space`'s merge is crate-private, and the replica hands
/// out its space only for reading ([`space`](Self::space),
/// [`read`](Self::read)). Local writes go through [`write`](Self::write),
/// which refuses them when this device may not write.
pub struct Replica {
    pub(super) space: Space,
    pub(super) control: SpaceControl,
    pub(super) device: DeviceKey,
    pub(super) identity: IdentityPublicKey,
    /// Accepted bundles (own and received), in acceptance order.
    pub(super) bundles: Vec<SignedChanges>,
    /// Who each accepted bundle came from (`None`: this device, or storage).
    pub(super) origins: Vec<Option<DevicePublicKey>>,
    pub(super) kept: HashMap<[u8; 64], usize>,
    pub(super) coverage: Coverage,
    pub(super) seqs: SeqIndex,
    /// Data heads up to which this device's changes are sealed.
    pub(super) sealed: Heads,
    /// Writes since the last seal.
    pub(super) unsealed: bool,
    pub(super) pending: Pending,
    /// Changes voided or refused as past a watermark: what builds on them
    /// is refused too (not kept waiting for them).
    pub(super) voided_changes: std::collections::HashSet<ChangeHash>,
    pub(super) evidence: Vec<Equivocation>,
    /// Per peer device, per shard: heads that peer durably holds (what it
    /// acknowledged), the baseline of the next sync with it.
    pub(super) baselines: BTreeMap<DevicePublicKey, BTreeMap<u16, Vec<ChangeHash>>>,
    pub(super) baselines_unsaved: BTreeSet<DevicePublicKey>,
    /// What is in storage already (prefixes of the log's credentials, of
    /// `bundles` and of `evidence`), and whether `sealed` is.
    pub(super) saved_credentials: usize,
    pub(super) saved_bundles: usize,
    /// Bundle keys in storage (`0..stored_bundles`); more than
    /// `saved_bundles` after bundles were voided and the list is rewritten.
    pub(super) stored_bundles: usize,
    /// Credentials of the log already looked at for restrictions.
    pub(super) log_checked: usize,
    /// Bumped whenever bundles are voided (indices into `bundles` change).
    pub(super) generation: u64,
    pub(super) saved_evidence: usize,
    pub(super) sealed_saved: bool,
    /// Seals made (tells a save whether the sealed heads it wrote are
    /// still the latest).
    pub(super) seal_count: u64,
    /// Stored bundles of format 1, deleted by the next save.
    pub(super) legacy_keys: Vec<String>,
    pub(super) save_in_flight: bool,
    pub(super) clock: Millis,
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
        let mut r = Self::from_parts(space, control, identity, device)?;
        r.sealed_saved = false;
        Ok(r)
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

    /// What another vault needs to join this space (see [`SpaceExport`]).
    ///
    /// [`SpaceExport`]: super::SpaceExport
    pub fn export(&self) -> super::SpaceExport {
        super::SpaceExport {
            version: super::SpaceExport::VERSION,
            shard_count: self.space.shard_count() as u16,
            credentials: self
                .control
                .credentials()
                .map(Credential::to_bytes)
                .collect(),
        }
    }

    /// Joins a space from another vault's export as this device of
    /// `identity` (which the export's log must admit): the device
    /// authorizes itself with its certificate. Its data comes with the
    /// first sync.
    pub fn join_export(
        export: &super::SpaceExport,
        identity: IdentityPublicKey,
        device: DeviceKey,
        certificate: DeviceCertificate,
    ) -> Result<Self, SyncError> {
        let credentials = export
            .credentials
            .iter()
            .map(|b| Credential::from_bytes(b))
            .collect::<Result<Vec<_>, _>>()?;
        let options = SpaceOptions {
            shard_count: export.shard_count,
        };
        let (mut replica, outcome) = Self::join(credentials, identity, device, options)?;
        if let Some((_, e)) = outcome.refused.into_iter().next() {
            return Err(SyncError::Identity(e));
        }
        if replica.role().is_none() {
            return Err(SyncError::NotAdmitted);
        }
        let device = replica.device.public_key();
        let authorized = matches!(
            replica.control.state().device(&device),
            Some(DeviceStatus::Authorized { identity: i }) if i == identity
        );
        if !authorized {
            replica.issue(CredentialKind::AuthorizeDevice { certificate })?;
        }
        Ok(replica)
    }

    /// Assembles a replica from a space and its control log.
    pub(super) fn from_parts(
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
            bundles: Vec::new(),
            origins: Vec::new(),
            kept: HashMap::new(),
            coverage: Coverage::default(),
            seqs: SeqIndex::default(),
            sealed: Heads::default(),
            unsealed: false,
            pending: Pending::default(),
            voided_changes: std::collections::HashSet::new(),
            evidence: Vec::new(),
            baselines: BTreeMap::new(),
            baselines_unsaved: BTreeSet::new(),
            saved_credentials: 0,
            saved_bundles: 0,
            stored_bundles: 0,
            log_checked: 0,
            generation: 0,
            saved_evidence: 0,
            sealed_saved: true,
            seal_count: 0,
            legacy_keys: Vec::new(),
            save_in_flight: false,
            clock: 0,
        })
    }

    /// Replaces the pending queue's bounds. Bundles already waiting stay.
    pub fn with_pending_limits(mut self, limits: PendingLimits) -> Self {
        self.pending.limits = limits;
        self
    }

    // ------------------------------------------------------------- accessors

    /// The space, for reads that need no `&mut` (properties, the index,
    /// counts).
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Whether its documents' CRDT bytes are still to be handed over
    /// ([`Space::documents_pending`]): until then it answers reads only.
    pub fn documents_pending(&self) -> bool {
        self.space.documents_pending()
    }

    /// Hands over what the host read under the documents' prefix
    /// ([`Space::attach_documents`]).
    pub fn attach_documents(&mut self, entries: Vec<(String, Vec<u8>)>) -> Result<(), SyncError> {
        Ok(self.space.attach_documents(entries)?)
    }

    /// Parses every shard document now ([`Space::load_documents`]).
    pub fn load_documents(&mut self) -> Result<(), SyncError> {
        Ok(self.space.load_documents()?)
    }

    /// The space's reads that take `&mut` (they load shards and refresh
    /// text lazily): objects, queries, text, history, live queries.
    pub fn read(&mut self) -> SpaceReads<'_> {
        SpaceReads::new(&mut self.space)
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

    /// Bundles waiting for credentials or changes.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Every accepted bundle (own and received), in acceptance order.
    pub fn bundles(&self) -> &[SignedChanges] {
        &self.bundles
    }

    /// Who an accepted bundle came from (`None`: this device or storage).
    pub fn origin(&self, index: usize) -> Option<DevicePublicKey> {
        self.origins.get(index).copied().flatten()
    }

    /// Accepted bundles that are in storage (a prefix of [`bundles`]).
    ///
    /// [`bundles`]: Self::bundles
    pub fn saved_bundles(&self) -> usize {
        self.saved_bundles
    }

    /// Changes whenever accepted bundles were voided: indices into
    /// [`bundles`](Self::bundles) taken before are stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Equivocations seen (kept as evidence).
    pub fn equivocations(&self) -> &[Equivocation] {
        &self.evidence
    }

    /// This device's role in the space now, if a member (from the control
    /// log: the one source of truth).
    pub fn role(&self) -> Option<crate::identity::Role> {
        self.control.role_of(&self.identity)
    }

    /// Whether an authenticated peer may be sent this space: its identity
    /// (which certified its device on the connection) is a member — any
    /// role, readers read — and the log says nothing against the device
    /// (revoked, conflicted, or another identity's). A device the log has
    /// not heard of yet is its identity's by that certificate; its own
    /// authorization credential reaches this log in the first exchange.
    pub fn may_receive(&self, peer: &PeerIdentity) -> bool {
        let state = self.control.state();
        let device_ok = match state.device(&peer.device) {
            Some(DeviceStatus::Authorized { identity }) => identity == peer.identity,
            None => true,
            Some(_) => false,
        };
        device_ok && state.role(&peer.identity).is_some()
    }

    /// Whether `signer` is a device the current log lets write.
    pub(super) fn is_writer(&self, signer: &DevicePublicKey) -> bool {
        self.control.device_can_write(signer)
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
        let committed = self.space.apply(batch)?;
        self.unsealed = true;
        Ok(committed)
    }

    /// Applies a write without checking that this device may write: what a
    /// misbehaving or out-of-date device does with its own key. Its bundles
    /// are then refused by every honest peer. For tests of that.
    #[cfg(any(test, feature = "test-support"))]
    pub fn write_unchecked(&mut self, batch: WriteBatch) -> Result<Committed, SyncError> {
        let committed = self.space.apply(batch)?;
        self.unsealed = true;
        Ok(committed)
    }

    /// Sets a property of the space (its name, …), under the same write
    /// check as [`write`](Self::write).
    pub fn set_property(&mut self, name: &str, value: Value) -> Result<(), SyncError> {
        if let Err(reason) = self.write_permission() {
            return Err(SyncError::WriteRefused { reason });
        }
        self.space.set_property(name, value)?;
        self.unsealed = true;
        Ok(())
    }

    /// Whether this device has changes no bundle covers yet.
    pub fn has_unsealed(&self) -> bool {
        self.unsealed
    }

    // --------------------------------------------------------------- sealing

    /// Signs this device's changes made since the last seal into bundles
    /// (one per touched shard, split at [`MAX_SEAL_CHANGES`]), naming
    /// the control-log heads they were made at, and keeps them. Returns
    /// their indices in [`bundles`](Self::bundles). Hosts seal when a peer
    /// is to be sent the changes and before the control log changes (done
    /// here), not per write: one signature covers the whole run.
    pub fn seal(&mut self) -> Result<Vec<usize>, SyncError> {
        if !self.unsealed {
            return Ok(Vec::new());
        }
        let me = self.device.public_key();
        let actor = me.as_bytes().to_vec();
        let mut runs: Vec<(Run, Vec<ChangeHash>)> = Vec::new();
        let mut entries = Vec::new();
        for shard in 0..self.space.shard_count() {
            let heads = self.space.shard_heads(shard)?;
            entries.extend(heads.iter().map(|h| (shard as u16, *h)));
            let since = self.sealed.of_shard(shard);
            let mut sorted_since = since.clone();
            sorted_since.sort();
            if heads == sorted_since {
                continue;
            }
            let mut own: Vec<(u64, ChangeHash)> = self
                .space
                .changes_info_since(shard, &since)?
                .into_iter()
                .filter(|c| c.actor == actor)
                .map(|c| (c.seq, c.hash))
                .collect();
            own.sort();
            // After a restart the sealed heads may lag what bundles cover.
            let covered = self.coverage.max_seq(&me, shard as u16);
            own.retain(|(seq, _)| *seq > covered);
            if own.is_empty() {
                continue;
            }
            let contiguous = own.windows(2).all(|w| w[1].0 == w[0].0 + 1);
            if !contiguous || own[0].0 != covered + 1 {
                return Err(SyncError::Model(ModelError::Corrupt {
                    reason: format!(
                        "shard {shard}: this device's unsealed changes are not consecutive after {covered}"
                    ),
                }));
            }
            for chunk in own.chunks(MAX_SEAL_CHANGES) {
                runs.push((
                    Run {
                        shard: shard as u16,
                        first_seq: chunk[0].0,
                        count: chunk.len() as u32,
                    },
                    chunk.iter().map(|(_, h)| *h).collect(),
                ));
            }
        }
        entries.sort();
        // One bundle per run: a peer that lacks one shard's changes is sent
        // that shard's bundles only. (Sealing is lazy — when a peer is to
        // get the changes — so a run holds every write since, and a whole
        // space sealed at once costs one signature per shard.)
        let mut out = Vec::new();
        for run in runs {
            out.push(self.sign_and_keep(vec![run])?);
        }
        self.sealed = Heads { entries };
        self.sealed_saved = false;
        self.seal_count += 1;
        self.unsealed = false;
        Ok(out)
    }

    fn sign_and_keep(&mut self, runs: Vec<(Run, Vec<ChangeHash>)>) -> Result<usize, SyncError> {
        let me = self.device.public_key();
        for (run, hashes) in &runs {
            for (i, h) in hashes.iter().enumerate() {
                self.seqs
                    .record(run.shard, me, run.first_seq + i as u64, *h);
            }
        }
        let bundle = self
            .device
            .sign_changes(self.space.id(), self.control.heads(), runs)?;
        Ok(self.keep(bundle, None))
    }

    pub(super) fn keep(&mut self, bundle: SignedChanges, from: Option<DevicePublicKey>) -> usize {
        let index = self.bundles.len();
        self.coverage.add(index, &bundle);
        self.kept.insert(bundle.key(), index);
        self.bundles.push(bundle);
        self.origins.push(from);
        index
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
        self.seal()?;
        self.control.set_clock(self.clock);
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
        if !out.added.is_empty() {
            out.voided = self.void_restricted()?;
            out.released = self.retry_pending();
        }
        Ok(out)
    }

    /// Issues a credential as this device (on behalf of its identity) on
    /// top of the current control heads. Unsealed writes are sealed first.
    /// A removal, a demotion to reader or a revocation carries the
    /// party's watermark (its last changes this replica accepted).
    pub fn issue(&mut self, kind: CredentialKind) -> Result<Credential, SyncError> {
        let by_device = self.device.duplicate();
        self.issue_as(Issuer::device(&by_device, self.identity), kind)
    }

    /// Issues a credential signed by another key of this replica's
    /// identity (e.g. the identity key itself).
    pub fn issue_as(
        &mut self,
        by: Issuer<'_>,
        kind: CredentialKind,
    ) -> Result<Credential, SyncError> {
        self.seal()?;
        let watermark = self.watermark_for(&kind);
        let cred = self.control.issue_with(by, kind, watermark)?;
        // Its watermark holds everything accepted here: nothing is voided,
        // but the log was looked at.
        self.void_restricted()?;
        // A new restriction may settle bundles that were waiting.
        self.retry_pending();
        Ok(cred)
    }

    /// The watermark a restricting credential carries: per device of the
    /// party, per shard, the highest sequence number accepted here.
    fn watermark_for(&self, kind: &CredentialKind) -> Watermark {
        let state = self.control.state();
        let devices: Vec<DevicePublicKey> = match kind {
            CredentialKind::Remove { member } => devices_ever(state, member),
            CredentialKind::ChangeRole { member, role } if !role.can_write() => {
                devices_ever(state, member)
            }
            CredentialKind::RevokeDevice { device, .. } => vec![*device],
            _ => return Watermark::default(),
        };
        let mut out: Vec<DeviceWatermark> = devices
            .into_iter()
            .map(|device| DeviceWatermark {
                device,
                shards: self.coverage.max_seqs(&device),
            })
            .filter(|d| !d.shards.is_empty())
            .collect();
        out.sort_by_key(|d| d.device);
        out.truncate(crate::identity::MAX_WATERMARK_DEVICES);
        Watermark { devices: out }
    }

    /// Credentials the holder of `heads` lacks: all not in the cut of the
    /// heads this log knows (every credential when it knows none).
    pub fn credentials_missing_from(&self, heads: &[CredentialHash]) -> Vec<Credential> {
        let known: Vec<CredentialHash> = heads
            .iter()
            .filter(|h| self.control.contains(h))
            .copied()
            .collect();
        self.control
            .credentials()
            .filter(|c| !self.control.cut_contains(&known, &c.hash()))
            .cloned()
            .collect()
    }

    /// Tells the replica the host's time (pending bundles and waiting
    /// credentials expire by it).
    pub fn set_clock(&mut self, now: Millis) {
        self.clock = self.clock.max(now);
        self.control.set_clock(self.clock);
        self.pending.expire(self.clock);
        self.control.expire(self.clock);
    }
}

/// Every device the state ever authorized for `identity` (revoked ones
/// too: a revoked device's old bundles are judged by the watermark).
fn devices_ever(
    state: &crate::identity::MembershipState,
    identity: &IdentityPublicKey,
) -> Vec<DevicePublicKey> {
    state
        .devices
        .iter()
        .filter(|(_, s)| match s {
            DeviceStatus::Authorized { identity: i } | DeviceStatus::Revoked { identity: i } => {
                i == identity
            }
            DeviceStatus::Conflicted => false,
        })
        .map(|(d, _)| *d)
        .collect()
}
