//! Receiving from peers: bundles with their changes, and snapshots. Every
//! change is verified before anything is merged, and only through
//! [`Verified`] — which only this file makes — does it reach the space.
//!
//! For each bundle, in order:
//!
//! 1. already held (or waiting) → a duplicate, ignored;
//! 2. shape, space and shards; each change decodes;
//! 3. [`SpaceControl::verify_bundle`](crate::identity::SpaceControl::verify_bundle):
//!    signature over the changes' hashes, signer's actor and sequence
//!    numbers, authorization in the named control cut, the watermark of
//!    restrictions the cut does not hold. Missing credentials → waits;
//! 4. equivocation: a sequence number this replica holds under another
//!    hash → refused, evidence kept;
//! 5. dependencies: every change it builds on (outside the bundle) is
//!    held — else it waits — and the bundle covering it names a control
//!    cut this bundle's cut contains (control heads never go backwards);
//! 6. merged, kept for relaying.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::{Automerge, Change, ChangeHash};

use super::error::{BundleRejection, SyncError};
use super::evidence::Equivocation;
use super::pending::Wait;
use super::replica::Replica;
use super::wire::{Snapshot, WireBundle};
use crate::data::ObjectId;
use crate::identity::{ChangeRef, DevicePublicKey, IdentityError, Rejection, SignedChanges};
use crate::model::Committed;
use crate::peer::Millis;

/// A received bundle that was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedBundle {
    pub signer: DevicePublicKey,
    pub reason: BundleRejection,
}

impl RejectedBundle {
    /// The reason's stable code (`identity.bundle.*` or `sync.bundle.*`).
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }
}

/// A bundle that had to wait but did not fit the pending queue: dropped
/// (not judged). The peer sends it again on the next sync.
#[derive(Debug)]
pub struct DroppedBundle {
    pub signer: DevicePublicKey,
    /// [`IdentityError::PendingChangesFull`].
    pub error: IdentityError,
}

/// What became of the bundles of one receive (and of those it released
/// from the pending queue).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Objects whose state changed through the accepted bundles.
    pub applied: Committed,
    /// Bundles verified, merged and kept for relaying.
    pub accepted: usize,
    /// Their indices in [`Replica::bundles`].
    pub accepted_indices: Vec<usize>,
    /// Bundles refused: not applied, not kept, not relayed.
    pub rejected: Vec<RejectedBundle>,
    /// Bundles that had to wait but did not fit the queue.
    pub dropped: Vec<DroppedBundle>,
    /// Bundles already held or already waiting (ignored).
    pub duplicates: usize,
    /// Bundles waiting after the call (whole queue).
    pub waiting: usize,
    /// Shards whose changes grew.
    pub shards: Vec<u16>,
}

impl Outcome {
    fn absorb(&mut self, other: Outcome) {
        let mut seen: HashSet<ObjectId> = self.applied.changed.iter().copied().collect();
        for id in other.applied.changed {
            if seen.insert(id) {
                self.applied.changed.push(id);
            }
        }
        self.accepted += other.accepted;
        self.accepted_indices.extend(other.accepted_indices);
        self.rejected.extend(other.rejected);
        self.dropped.extend(other.dropped);
        self.duplicates += other.duplicates;
        for s in other.shards {
            if !self.shards.contains(&s) {
                self.shards.push(s);
            }
        }
    }
}

/// Changes that passed every check, ready to merge. Only this module
/// makes one; [`Replica::merge`] is the only way changes from a peer
/// reach the space.
pub(super) struct Verified {
    header: SignedChanges,
    /// Per run: shard, decoded changes.
    changes: Vec<(u16, Vec<Change>)>,
    from: Option<DevicePublicKey>,
}

/// Bundles accepted in one pass, merged together at its end.
#[derive(Default)]
struct Staging {
    verified: Vec<Verified>,
    /// Each staged change's bundle (index into `verified`).
    hashes: HashMap<ChangeHash, usize>,
    keys: HashSet<[u8; 64]>,
}

impl Staging {
    fn add(&mut self, v: Verified) {
        let i = self.verified.len();
        for (_, changes) in &v.changes {
            for c in changes {
                self.hashes.insert(c.hash(), i);
            }
        }
        self.keys.insert(v.header.key());
        self.verified.push(v);
    }
}

fn absorb_changed(out: &mut Outcome, committed: Committed) {
    let mut seen: HashSet<ObjectId> = out.applied.changed.iter().copied().collect();
    for id in committed.changed {
        if seen.insert(id) {
            out.applied.changed.push(id);
        }
    }
}

enum Judged {
    Accept(Verified),
    Wait(Wait),
    Duplicate,
    Reject(BundleRejection),
}

/// A decoded change of a received bundle.
struct Decoded {
    shard: u16,
    change: Change,
    hash: ChangeHash,
}

impl Replica {
    /// Receives bundles from a peer (`from`: its device, so they are not
    /// relayed back to it). Never fails as a whole: each bundle is
    /// accepted, waits, or is refused with a reason (see the module docs).
    pub fn receive(
        &mut self,
        bundles: Vec<WireBundle>,
        from: Option<DevicePublicKey>,
        now: Millis,
    ) -> Outcome {
        self.set_clock(now);
        let mut out = Outcome::default();
        let voided_before = self.voided_changes.len();
        let mut staging = Staging::default();
        for wb in bundles {
            let key = wb.header.key();
            let kept = self
                .kept
                .get(&key)
                .is_some_and(|&i| self.bundles[i] == wb.header);
            if kept || self.pending.contains(&key) || staging.keys.contains(&key) {
                out.duplicates += 1;
                continue;
            }
            self.judge_into(wb, from, &mut staging, &mut out);
        }
        let progressed = !staging.verified.is_empty();
        self.merge_staged(staging, &mut out);
        if progressed || self.voided_changes.len() > voided_before {
            out.absorb(self.retry_pending());
        }
        out.waiting = self.pending.len();
        out
    }

    /// Judges one bundle: accepted ones join `staging` (merged together
    /// at the end of the pass), the others wait or are refused.
    fn judge_into(
        &mut self,
        wb: WireBundle,
        from: Option<DevicePublicKey>,
        staging: &mut Staging,
        out: &mut Outcome,
    ) {
        let signer = wb.header.signer;
        match self.judge(&wb, from, staging) {
            Judged::Accept(v) => staging.add(v),
            Judged::Duplicate => out.duplicates += 1,
            Judged::Wait(wait) => {
                let known = self.is_writer(&signer);
                if let Err(error) = self.pending.push(wb, wait, from, known, self.clock) {
                    out.dropped.push(DroppedBundle { signer, error });
                }
            }
            Judged::Reject(reason) => out.rejected.push(RejectedBundle { signer, reason }),
        }
    }

    /// Judges waiting bundles again (after credentials or changes arrived),
    /// until nothing more is released.
    pub(super) fn retry_pending(&mut self) -> Outcome {
        let mut out = Outcome::default();
        loop {
            let space = &mut self.space;
            let control = &self.control;
            let voided = &self.voided_changes;
            let ready = self.pending.take_ready(|wait| match wait {
                Wait::Credentials(missing) => missing.iter().all(|h| control.contains(h)),
                Wait::Changes(deps) => {
                    deps.iter().all(|(shard, h)| {
                        voided.contains(h)
                            || space
                                .change_info(usize::from(*shard), h)
                                .ok()
                                .flatten()
                                .is_some()
                    }) || deps.iter().any(|(_, h)| voided.contains(h))
                }
            });
            if ready.is_empty() {
                break;
            }
            let voided_before = self.voided_changes.len();
            let mut staging = Staging::default();
            for w in ready {
                if staging.keys.contains(&w.bundle.header.key()) {
                    out.duplicates += 1;
                    continue;
                }
                self.judge_into(w.bundle, w.from, &mut staging, &mut out);
            }
            let progressed = !staging.verified.is_empty();
            self.merge_staged(staging, &mut out);
            if !progressed && self.voided_changes.len() == voided_before {
                break;
            }
        }
        out.waiting = self.pending.len();
        out
    }

    fn judge(
        &mut self,
        wb: &WireBundle,
        from: Option<DevicePublicKey>,
        staging: &Staging,
    ) -> Judged {
        let header = &wb.header;
        let reject = |r: Rejection| Judged::Reject(BundleRejection::Bundle(r));
        if let Err(r) = header.check_shape() {
            return reject(r);
        }
        let shard_count = self.space.shard_count();
        if let Some(run) = header
            .runs
            .iter()
            .find(|r| usize::from(r.shard) >= shard_count)
        {
            return Judged::Reject(BundleRejection::NoSuchShard {
                shard: run.shard,
                shard_count,
            });
        }
        if wb.changes.len() != header.runs.len() {
            return reject(Rejection::Malformed {
                reason: format!(
                    "{} runs, changes for {}",
                    header.runs.len(),
                    wb.changes.len()
                ),
            });
        }
        // Decode every change.
        let mut decoded: Vec<Vec<Decoded>> = Vec::with_capacity(header.runs.len());
        let mut index = 0;
        for (run, raws) in header.runs.iter().zip(&wb.changes) {
            let mut list = Vec::with_capacity(raws.len());
            for raw in raws {
                match Change::from_bytes(raw.clone()) {
                    Ok(change) => {
                        let hash = change.hash();
                        list.push(Decoded {
                            shard: run.shard,
                            change,
                            hash,
                        });
                    }
                    Err(e) => {
                        return reject(Rejection::MalformedChange {
                            index,
                            reason: e.to_string(),
                        })
                    }
                }
                index += 1;
            }
            decoded.push(list);
        }
        let actors: Vec<Vec<Vec<u8>>> = decoded
            .iter()
            .map(|l| {
                l.iter()
                    .map(|d| d.change.actor_id().to_bytes().to_vec())
                    .collect()
            })
            .collect();
        let refs: Vec<Vec<ChangeRef<'_>>> = decoded
            .iter()
            .zip(&actors)
            .map(|(l, a)| {
                l.iter()
                    .zip(a)
                    .map(|(d, actor)| ChangeRef {
                        hash: d.hash,
                        actor,
                        seq: d.change.seq(),
                    })
                    .collect()
            })
            .collect();
        match self.control.verify_bundle(header, &refs) {
            Ok(()) => {}
            Err(Rejection::MissingCredentials { missing }) => {
                return Judged::Wait(Wait::Credentials(missing))
            }
            Err(r @ Rejection::BeyondWatermark { .. }) => {
                // What builds on these is refused as well, wherever it
                // comes from.
                self.voided_changes
                    .extend(decoded.iter().flatten().map(|d| d.hash));
                return reject(r);
            }
            Err(r) => return reject(r),
        }
        // Equivocation, and bundles that only re-sign held changes.
        let mut all_held = true;
        for (run, list) in header.runs.iter().zip(&decoded) {
            for d in list {
                let seq = d.change.seq();
                if self.coverage.find(&header.signer, run.shard, seq).is_none() {
                    all_held = false;
                    continue;
                }
                let held = self
                    .seqs
                    .get(&mut self.space, run.shard, &header.signer, seq)
                    .ok()
                    .flatten();
                match held {
                    Some(h) if h == d.hash => {}
                    Some(h) => {
                        self.record_equivocation(header, run.shard, seq, h, d.hash);
                        return reject(Rejection::Equivocation {
                            shard: run.shard,
                            seq,
                        });
                    }
                    None => all_held = false,
                }
            }
        }
        if all_held {
            return Judged::Duplicate;
        }
        // Dependencies: held, and covered by bundles of an earlier cut.
        let inside: HashSet<ChangeHash> = decoded.iter().flatten().map(|d| d.hash).collect();
        let mut missing = Vec::new();
        let mut checked: HashSet<usize> = HashSet::new();
        for d in decoded.iter().flatten() {
            for dep in d.change.deps() {
                if inside.contains(dep) {
                    continue;
                }
                if self.voided_changes.contains(dep) {
                    self.voided_changes.extend(inside.iter().copied());
                    return Judged::Reject(BundleRejection::BuildsOnVoided);
                }
                // Accepted earlier in this pass, merged with it at the end.
                if let Some(&vi) = staging.hashes.get(dep) {
                    let earlier = &staging.verified[vi].header.control_heads;
                    if !self.control.cut_covers(&header.control_heads, earlier) {
                        return reject(Rejection::ControlRegressed);
                    }
                    continue;
                }
                let info = match self.space.change_info(usize::from(d.shard), dep) {
                    Ok(Some(info)) => info,
                    Ok(None) => {
                        missing.push((d.shard, *dep));
                        continue;
                    }
                    Err(e) => {
                        return Judged::Reject(BundleRejection::ApplyFailed {
                            reason: e.to_string(),
                        })
                    }
                };
                let Ok(actor) = <[u8; 32]>::try_from(info.actor.as_slice()) else {
                    continue;
                };
                let signer = DevicePublicKey::from_bytes(actor);
                if let Some(i) = self.coverage.find(&signer, d.shard, info.seq) {
                    if checked.insert(i)
                        && !self
                            .control
                            .cut_covers(&header.control_heads, &self.bundles[i].control_heads)
                    {
                        return reject(Rejection::ControlRegressed);
                    }
                }
            }
        }
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Judged::Wait(Wait::Changes(missing));
        }
        let changes = header
            .runs
            .iter()
            .zip(decoded)
            .map(|(run, list)| (run.shard, list.into_iter().map(|d| d.change).collect()))
            .collect();
        Judged::Accept(Verified {
            header: header.clone(),
            changes,
            from,
        })
    }

    fn record_equivocation(
        &mut self,
        refused: &SignedChanges,
        shard: u16,
        seq: u64,
        held_hash: ChangeHash,
        refused_hash: ChangeHash,
    ) {
        let Some(i) = self.coverage.find(&refused.signer, shard, seq) else {
            return;
        };
        let evidence = Equivocation {
            signer: refused.signer,
            shard,
            seq,
            held: self.bundles[i].clone(),
            held_hash: held_hash.0,
            refused: refused.clone(),
            refused_hash: refused_hash.0,
        };
        if !self.evidence.contains(&evidence) {
            self.evidence.push(evidence);
        }
    }

    /// Merges the bundles a pass accepted: all their changes in one
    /// Automerge call per shard (a burst of small bundles costs about what
    /// one large one does); if that fails, bundle by bundle, refusing only
    /// the ones that fail.
    fn merge_staged(&mut self, staging: Staging, out: &mut Outcome) {
        if staging.verified.is_empty() {
            return;
        }
        let mut by_shard: BTreeMap<u16, Vec<Change>> = BTreeMap::new();
        for v in &staging.verified {
            for (shard, changes) in &v.changes {
                by_shard
                    .entry(*shard)
                    .or_default()
                    .extend(changes.iter().cloned());
            }
        }
        match self.space.apply_decoded(by_shard.into_iter().collect()) {
            Ok(committed) => {
                absorb_changed(out, committed);
                for v in staging.verified {
                    self.kept_verified(v, out);
                }
            }
            Err(_) => {
                for v in staging.verified {
                    let signer = v.header.signer;
                    match self.space.apply_decoded(v.changes.clone()) {
                        Ok(committed) => {
                            absorb_changed(out, committed);
                            self.kept_verified(v, out);
                        }
                        Err(e) => out.rejected.push(RejectedBundle {
                            signer,
                            reason: BundleRejection::ApplyFailed {
                                reason: e.to_string(),
                            },
                        }),
                    }
                }
            }
        }
    }

    /// Keeps a merged bundle: coverage, hashes by sequence number, origin.
    fn kept_verified(&mut self, v: Verified, out: &mut Outcome) {
        let signer = v.header.signer;
        for (shard, changes) in &v.changes {
            for c in changes {
                self.seqs.record(*shard, signer, c.seq(), c.hash());
            }
            if !out.shards.contains(shard) {
                out.shards.push(*shard);
            }
        }
        let index = self.keep(v.header, v.from);
        out.accepted += 1;
        out.accepted_indices.push(index);
    }

    /// Receives a snapshot: a peer's whole shard documents and the bundles
    /// covering them (the first sync of a space). Every bundle is verified
    /// against the changes the documents hold, and every change in them
    /// must be covered by a verified bundle of its own signer; otherwise
    /// the snapshot is refused whole ([`SyncError::BadSnapshot`]) and
    /// nothing changes. Into a space with no changes the documents are
    /// adopted as they are; into one that has changes meanwhile, their
    /// changes go through [`receive`](Self::receive) instead.
    pub fn receive_snapshot(
        &mut self,
        snapshot: Snapshot,
        from: Option<DevicePublicKey>,
        now: Millis,
    ) -> Result<Outcome, SyncError> {
        self.set_clock(now);
        let bad = |reason: String| SyncError::BadSnapshot { reason };
        let shard_count = self.space.shard_count();
        let mut docs: BTreeMap<u16, (Automerge, Vec<u8>)> = BTreeMap::new();
        for (shard, bytes) in snapshot.shards {
            if usize::from(shard) >= shard_count || docs.contains_key(&shard) {
                return Err(bad(format!(
                    "shard {shard} is not a shard of this space, or comes twice"
                )));
            }
            let doc = Automerge::load(&bytes)
                .map_err(|e| bad(format!("shard {shard} does not load: {e}")))?;
            docs.insert(shard, (doc, bytes));
        }
        // Each change of each document: (signer, shard, seq) → hash, and
        // hash → dependencies.
        let mut metas: HashMap<(Vec<u8>, u16, u64), ChangeHash> = HashMap::new();
        let mut deps_of: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
        for (shard, (doc, _)) in &docs {
            for m in doc.get_changes_meta(&[]) {
                metas.insert((m.actor.to_bytes().to_vec(), *shard, m.seq), m.hash);
                deps_of.insert(m.hash, m.deps.clone());
            }
        }
        // Verify every bundle against them.
        let mut covered: HashSet<(Vec<u8>, u16, u64)> = HashSet::new();
        let mut by_change: HashMap<ChangeHash, usize> = HashMap::new();
        for (bi, header) in snapshot.bundles.iter().enumerate() {
            header
                .check_shape()
                .map_err(|r| bad(format!("a bundle is malformed: {r}")))?;
            let actor = header.signer.as_bytes().to_vec();
            let mut refs = Vec::with_capacity(header.runs.len());
            for run in &header.runs {
                let mut list = Vec::with_capacity(run.count as usize);
                for seq in run.first_seq..=run.last_seq() {
                    let key = (actor.clone(), run.shard, seq);
                    let Some(hash) = metas.get(&key) else {
                        return Err(bad(format!(
                            "a bundle names change {seq} of shard {} that the documents do not hold",
                            run.shard
                        )));
                    };
                    by_change.insert(*hash, bi);
                    covered.insert(key);
                    list.push(ChangeRef {
                        hash: *hash,
                        actor: header.signer.as_bytes(),
                        seq,
                    });
                }
                refs.push(list);
            }
            self.control
                .verify_bundle(header, &refs)
                .map_err(|r| bad(format!("a bundle does not verify ({}): {r}", r.code())))?;
        }
        if let Some(((_, shard, seq), _)) = metas.iter().find(|(k, _)| !covered.contains(*k)) {
            return Err(bad(format!(
                "change {seq} of shard {shard} is covered by no bundle of its signer"
            )));
        }
        // Control heads never go backwards along dependencies.
        for (hash, bi) in &by_change {
            for dep in deps_of.get(hash).into_iter().flatten() {
                if let Some(di) = by_change.get(dep) {
                    if di != bi
                        && !self.control.cut_covers(
                            &snapshot.bundles[*bi].control_heads,
                            &snapshot.bundles[*di].control_heads,
                        )
                    {
                        return Err(bad(
                            "a bundle names control heads older than one it builds on".into(),
                        ));
                    }
                }
            }
        }
        if !self.space.has_no_changes()? {
            return Ok(self.receive_snapshot_as_changes(docs, snapshot.bundles, from));
        }
        let mut out = Outcome::default();
        let adopted: Vec<(usize, Automerge, Vec<u8>)> = docs
            .into_iter()
            .map(|(s, (doc, bytes))| (usize::from(s), doc, bytes))
            .collect();
        out.shards = adopted.iter().map(|(s, _, _)| *s as u16).collect();
        out.applied = self.space.adopt_shards(adopted)?;
        self.seqs.clear();
        for header in snapshot.bundles {
            if !self.kept.contains_key(&header.key()) {
                let index = self.keep(header, from);
                out.accepted += 1;
                out.accepted_indices.push(index);
            }
        }
        out.absorb(self.retry_pending());
        out.waiting = self.pending.len();
        Ok(out)
    }

    /// A verified snapshot for a space that has changes of its own: its
    /// changes travel the ordinary way.
    fn receive_snapshot_as_changes(
        &mut self,
        docs: BTreeMap<u16, (Automerge, Vec<u8>)>,
        bundles: Vec<SignedChanges>,
        from: Option<DevicePublicKey>,
    ) -> Outcome {
        let mut by_key: HashMap<(Vec<u8>, u16, u64), Vec<u8>> = HashMap::new();
        for (shard, (doc, _)) in &docs {
            for c in doc.get_changes(&[]) {
                by_key.insert(
                    (c.actor_id().to_bytes().to_vec(), *shard, c.seq()),
                    c.raw_bytes().to_vec(),
                );
            }
        }
        let wire: Vec<WireBundle> = bundles
            .into_iter()
            .map(|header| {
                let actor = header.signer.as_bytes().to_vec();
                let changes = header
                    .runs
                    .iter()
                    .map(|run| {
                        (run.first_seq..=run.last_seq())
                            .filter_map(|seq| by_key.remove(&(actor.clone(), run.shard, seq)))
                            .collect()
                    })
                    .collect();
                WireBundle { header, changes }
            })
            .collect();
        let clock = self.clock;
        self.receive(wire, from, clock)
    }
}
