//! Voiding accepted bundles that a later restriction does not allow.
//!
//! A removal, a demotion to reader or a revocation carries a watermark:
//! the party's last changes its issuer had accepted. A bundle of the party
//! that does not name the restriction in its control heads may carry no
//! change beyond it (`verify_bundle`, rule 5). A replica that accepted such
//! a bundle before the restriction reached it must end where every other
//! replica ends, so when the restriction arrives the bundle is *voided*:
//! its changes, and every change built on them (by anyone), leave the
//! shard documents, which are rebuilt from the changes that stay. This is
//! the data-side twin of rule 2 for credentials: a removal wins over the
//! removed party's concurrent writes. See `docs/membership.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::ChangeHash;

use super::error::SyncError;
use super::replica::Replica;
use crate::data::ObjectId;
use crate::identity::{CredentialKind, DevicePublicKey, DeviceStatus, SignedChanges};
use crate::model::Committed;

/// Per change, the changes that depend on it (hash, actor, seq).
type Dependents = HashMap<ChangeHash, Vec<(ChangeHash, DevicePublicKey, u64)>>;

/// What [`Replica`] voided after a restriction arrived.
#[derive(Debug, Default)]
pub struct Voided {
    /// The voided bundles (their signers' changes past a watermark, and
    /// bundles built on them).
    pub bundles: Vec<SignedChanges>,
    /// Changes taken out of the documents.
    pub changes: usize,
    /// Objects whose state changed.
    pub applied: Committed,
}

impl Replica {
    /// Looks at restrictions added to the log since the last look and
    /// voids the accepted bundles they do not allow (see the module docs).
    pub(super) fn void_restricted(&mut self) -> Result<Voided, SyncError> {
        let mut targets: BTreeSet<DevicePublicKey> = BTreeSet::new();
        let state = self.control.state().clone();
        for cred in self.control.credentials().skip(self.log_checked) {
            match cred.kind() {
                CredentialKind::RevokeDevice { device, .. } => {
                    targets.insert(*device);
                }
                CredentialKind::Remove { member } => {
                    targets.extend(devices_of(&state, member));
                }
                CredentialKind::ChangeRole { member, role } if !role.can_write() => {
                    targets.extend(devices_of(&state, member));
                }
                _ => {}
            }
        }
        self.log_checked = self.control.len();
        if targets.is_empty() {
            return Ok(Voided::default());
        }
        // Bundles of the targets past a watermark their cut does not hold.
        let mut void: BTreeSet<usize> = BTreeSet::new();
        for (i, b) in self.bundles.iter().enumerate() {
            if !targets.contains(&b.signer) {
                continue;
            }
            let identity = match state.device(&b.signer) {
                Some(
                    DeviceStatus::Authorized { identity } | DeviceStatus::Revoked { identity },
                ) => identity,
                _ => continue,
            };
            for cred in self.control.restrictions_of(&identity, &b.signer) {
                if self.control.cut_contains(&b.control_heads, &cred.hash()) {
                    continue;
                }
                let wm = cred.watermark();
                if b.runs
                    .iter()
                    .any(|r| r.last_seq() > wm.max_seq(&b.signer, r.shard))
                {
                    void.insert(i);
                    break;
                }
            }
        }
        if void.is_empty() {
            return Ok(Voided::default());
        }
        // Their changes, and everything built on them, to a fixed point.
        let mut dropped: BTreeMap<u16, HashSet<ChangeHash>> = BTreeMap::new();
        let mut frontier: Vec<usize> = void.iter().copied().collect();
        let mut reverse: HashMap<u16, Dependents> = HashMap::new();
        while !frontier.is_empty() {
            let mut fresh: BTreeMap<u16, Vec<ChangeHash>> = BTreeMap::new();
            for i in std::mem::take(&mut frontier) {
                let b = self.bundles[i].clone();
                for run in &b.runs {
                    for seq in run.first_seq..=run.last_seq() {
                        if let Some(h) =
                            self.seqs.get(&mut self.space, run.shard, &b.signer, seq)?
                        {
                            if dropped.entry(run.shard).or_default().insert(h) {
                                fresh.entry(run.shard).or_default().push(h);
                            }
                        }
                    }
                }
            }
            for (shard, hashes) in fresh {
                if let std::collections::hash_map::Entry::Vacant(e) = reverse.entry(shard) {
                    let mut map = Dependents::new();
                    for info in self.space.changes_info_since(usize::from(shard), &[])? {
                        let Ok(actor) = <[u8; 32]>::try_from(info.actor.as_slice()) else {
                            continue;
                        };
                        let actor = DevicePublicKey::from_bytes(actor);
                        for d in &info.deps {
                            map.entry(*d)
                                .or_default()
                                .push((info.hash, actor, info.seq));
                        }
                    }
                    e.insert(map);
                }
                let map = &reverse[&shard];
                let mut stack = hashes;
                while let Some(h) = stack.pop() {
                    for (child, actor, seq) in map.get(&h).into_iter().flatten() {
                        if dropped.entry(shard).or_default().insert(*child) {
                            stack.push(*child);
                            if let Some(j) = self.coverage.find(actor, shard, *seq) {
                                if void.insert(j) {
                                    frontier.push(j);
                                }
                            }
                        }
                    }
                }
            }
        }
        for gone in dropped.values() {
            self.voided_changes.extend(gone.iter().copied());
        }
        // Rebuild the shards from what stays.
        let mut out = Voided::default();
        let mut seen: HashSet<ObjectId> = HashSet::new();
        for (shard, gone) in &dropped {
            let keep: Vec<_> = self
                .space
                .shard_changes(usize::from(*shard))?
                .into_iter()
                .filter(|c| !gone.contains(&c.hash()))
                .collect();
            out.changes += gone.len();
            let committed = self.space.rebuild_shard(usize::from(*shard), keep)?;
            for id in committed.changed {
                if seen.insert(id) {
                    out.applied.changed.push(id);
                }
            }
        }
        // Keep the other bundles; storage rewrites the list.
        let old = std::mem::take(&mut self.bundles);
        let origins = std::mem::take(&mut self.origins);
        self.kept.clear();
        self.coverage = Default::default();
        self.seqs.clear();
        for (i, (b, from)) in old.into_iter().zip(origins).enumerate() {
            if void.contains(&i) {
                out.bundles.push(b);
            } else {
                self.keep(b, from);
            }
        }
        self.stored_bundles = self.stored_bundles.max(self.saved_bundles);
        self.saved_bundles = 0;
        self.generation += 1;
        // This device's own chain restarts after its last covered change.
        let me = self.device.public_key();
        let mut entries: Vec<(u16, ChangeHash)> = self
            .sealed
            .entries
            .iter()
            .filter(|(s, _)| !dropped.contains_key(s))
            .copied()
            .collect();
        for shard in dropped.keys() {
            let covered = self.coverage.max_seq(&me, *shard);
            if covered > 0 {
                if let Some(h) = self.seqs.get(&mut self.space, *shard, &me, covered)? {
                    entries.push((*shard, h));
                }
            }
        }
        entries.sort();
        self.sealed = crate::model::Heads { entries };
        self.sealed_saved = false;
        self.unsealed = true;
        Ok(out)
    }
}

/// Every device the state ever authorized for `identity`.
fn devices_of(
    state: &crate::identity::MembershipState,
    identity: &crate::identity::IdentityPublicKey,
) -> Vec<DevicePublicKey> {
    state
        .devices
        .iter()
        .filter(|(_, s)| {
            matches!(s, DeviceStatus::Authorized { identity: i } | DeviceStatus::Revoked { identity: i } if i == identity)
        })
        .map(|(d, _)| *d)
        .collect()
}
