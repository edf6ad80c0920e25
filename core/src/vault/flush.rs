//! Group commit: everything written since the last flush — space chunks,
//! control logs, bundles, the vault's records — as one storage batch, and
//! the answers that wait for it.
//!
//! A flush is made when the host asks for output and nothing else is
//! queued ([`Vault::poll_output`](super::Vault::poll_output)), so every
//! input the host handed over before draining shares one storage
//! transaction; one flush is in flight at a time, and writes meanwhile go
//! into the next. A failed flush answers each of its calls with the
//! storage error and reverts what they did: the spaces they touched are
//! dropped from memory and read again, records return to their stored
//! values — except what the user took away from apps, which holds
//! (`grants.rs`, fail closed).
//!
//! **Over quota, space by space**: a flush holding several spaces' writes
//! that fails over the storage quota is not reverted at once. Each space is
//! written on its own (its data, its record, the grants), with the answers
//! of the calls that wrote it; a space that does not fit is reverted alone
//! and its calls fail, the others are stored and answered. So one app near
//! the quota does not fail every other app's writes. (What each app may
//! store — a quota per origin — is decided before a call runs: `quota.rs`.)
//!
//! **Grants first**: when the user took access away from an app (a
//! revocation, a denial, fewer spaces) and other data waits to be written
//! too, the decisions are written alone first, in their own transaction,
//! so that a revocation is not lost with an app's write that fails (say,
//! over the storage quota). **Retries**: records that a
//! failed flush left unstored (a revocation) are written again after a
//! wait that doubles from 1 s to 30 s; writes with answers waiting go at
//! once. **Durability**: a flush asks the host for `Durability::Relaxed`
//! only when every answer it holds is for a connection that said so in its
//! `hello` and it holds no decision of the person; otherwise `Strict`
//! (`durability_of`).

use std::collections::{BTreeMap, BTreeSet};

use super::commit::{FlushScope, FlushTicket, Held};
use super::machine::{Millis, Output, WriteId};
use super::records::{
    encode, encode_space, grant_key, identity_key, invitation_key, space_key, GrantRecord,
};
use super::spaces::SlotState;
use super::{Phase, Vault};
use crate::data::SpaceId;
use crate::rpc::{AdminReply, Durability, RpcError, VaultMessage};
use crate::store::{Batch, StoreError};
use crate::sync::Replica;

/// The first wait before records a failed flush left are written again.
const FIRST_RETRY_MS: Millis = 1_000;
/// The longest wait between such retries.
const MAX_RETRY_MS: Millis = 30_000;

impl Vault {
    /// Whether a flush has something to write or answer.
    pub(super) fn wants_flush(&mut self) -> bool {
        if self.commit.in_flight.is_some() || self.keys.is_none() {
            return false;
        }
        self.writes_wait() || (self.records_wait() && self.retry_due())
    }

    /// Writes that calls or peers wait for: flushed at once.
    fn writes_wait(&mut self) -> bool {
        !self.commit.held.is_empty()
            || self.commit.has_staged()
            || !self.commit.seal_for_peers.is_empty()
            || self.keys.as_ref().is_some_and(|k| k.unsaved)
            || self.spaces.open().any(|(_, r)| r.has_unsaved_changes())
    }

    /// Records that differ from what is stored.
    fn records_wait(&self) -> bool {
        self.grants.changed() || self.invitations.changed() || self.spaces.records_changed()
    }

    fn retry_due(&self) -> bool {
        self.commit.retry_at.is_none_or(|at| self.now >= at)
    }

    /// When unstored records are to be written again (a timeout for the
    /// host), if they are.
    pub(super) fn retry_timeout(&self) -> Option<Millis> {
        let at = self.commit.retry_at?;
        (self.records_wait() && self.commit.in_flight.is_none()).then_some(at)
    }

    /// Waits longer before the next retry (a flush failed).
    fn back_off(&mut self) {
        let wait = if self.commit.retry_ms == 0 {
            FIRST_RETRY_MS
        } else {
            (self.commit.retry_ms * 2).min(MAX_RETRY_MS)
        };
        self.commit.retry_ms = wait;
        self.commit.retry_at = Some(self.now + wait);
    }

    /// The grants alone, in a transaction of their own (see the module
    /// docs): when they changed and other writes wait as well.
    fn grants_flush(&mut self) -> Option<Output> {
        if !self.grants.restricts() || self.commit.grants_first_failed {
            return None;
        }
        // Other data to write (the decision's own answer alone is no reason).
        let others = self.commit.has_staged()
            || !self.commit.seal_for_peers.is_empty()
            || self.keys.as_ref().is_some_and(|k| k.unsaved)
            || self.invitations.changed()
            || self.spaces.records_changed()
            || self.spaces.open().any(|(_, r)| r.has_unsaved_changes());
        if !others {
            return None;
        }
        let mut batch = Batch::new();
        let grants = self.storable_grants(None);
        self.put_grants(&mut batch, &grants);
        let write = WriteId(self.next_id());
        let ticket = FlushTicket {
            scope: FlushScope::GrantsOnly,
            receipts: Vec::new(),
            held: Vec::new(),
            grants,
            spaces: Default::default(),
            identity: None,
            invitations: Default::default(),
        };
        self.commit.in_flight = Some((write, ticket));
        // The person's decisions: always strictly durable.
        Some(Output::Write {
            write,
            batch,
            durability: Durability::Strict,
        })
    }

    /// How durable a flush holding `held` must be: relaxed only when every
    /// answer it holds is for a connection that asked for relaxed writes
    /// and it holds none of the person's decisions (`decisions`: grants,
    /// identity or invitations changed).
    fn durability_of(&self, held: &[Held], decisions: bool) -> Durability {
        let relaxed = !decisions
            && !held.is_empty()
            && held.iter().all(|h| match h {
                Held::App { conn, .. } => self
                    .apps
                    .get(*conn)
                    .is_some_and(|c| c.durability == Durability::Relaxed),
                _ => false,
            });
        if relaxed {
            Durability::Relaxed
        } else {
            Durability::Strict
        }
    }

    /// The grants a flush that does not store everything may store: what
    /// was taken away (restrictions hold at once), but nothing given — a
    /// decision that gives is stored by the flush that answers it — except,
    /// with a new space `with` stored by this flush, that space for the
    /// apps it was granted to when it was made (its creator), so that the
    /// creation, answered with this flush, is not left without its grant.
    /// No stored grant names a space storage does not hold.
    fn storable_grants(&self, with: Option<SpaceId>) -> BTreeMap<String, GrantRecord> {
        let mut out = self.grants.restricted();
        if let Some(space) = with.filter(|s| !self.spaces.saved.contains_key(s)) {
            for (origin, grant) in &mut out {
                let given = self
                    .grants
                    .current
                    .get(origin)
                    .is_some_and(|now| now.allowed && now.spaces.contains(&space));
                if given && grant.allowed {
                    grant.spaces.insert(space);
                }
            }
        }
        out
    }

    /// Puts the grants of `grants` that differ from what is stored into
    /// `batch`.
    fn put_grants(&self, batch: &mut Batch, grants: &BTreeMap<String, GrantRecord>) {
        let origins: BTreeSet<&String> = grants.keys().chain(self.grants.saved.keys()).collect();
        for origin in origins {
            match (grants.get(origin), self.grants.saved.get(origin)) {
                (Some(now), before) if before != Some(now) => {
                    batch.put(grant_key(origin), encode(now));
                }
                (None, Some(_)) => {
                    batch.delete(grant_key(origin));
                }
                _ => {}
            }
        }
    }

    /// Spaces whose peers are to get this device's changes: sealed by
    /// each flush.
    fn sealing(&self) -> BTreeSet<SpaceId> {
        let mut out = self.peers.live_spaces();
        out.extend(self.commit.seal_for_peers.iter().copied());
        out
    }

    /// Collects every write since the last flush into one batch and asks
    /// the host to write it.
    pub(super) fn start_flush(&mut self) -> Result<Option<Output>, RpcError> {
        if !self.wants_flush() {
            return Ok(None);
        }
        if let Some(write) = self.grants_flush() {
            return Ok(Some(write));
        }
        self.commit_staged();
        if let Some(write) = self.space_flush()? {
            return Ok(Some(write));
        }
        let sealing = self.sealing();
        self.commit.seal_for_peers.clear();
        let mut batch = Batch::new();
        let mut receipts = Vec::new();
        let policy = self.config.policy;
        let mut sizes = Vec::new();
        for (id, replica) in self.spaces.open() {
            if let Some(save) = replica
                .prepare_save(&policy, sealing.contains(&id))
                .map_err(RpcError::from)?
            {
                sizes.push((id, save.receipt.stored_bytes_after(replica)));
                batch.extend(save.batch);
                receipts.push((id, save.receipt));
            }
        }
        for (id, after) in sizes {
            self.record_size(&id, after);
        }
        for (id, slot) in &self.spaces.slots {
            if self.spaces.saved.get(id) != Some(&slot.record) {
                batch.put(space_key(id), encode_space(&slot.record));
            }
        }
        for id in self.spaces.saved.keys() {
            if !self.spaces.contains(id) {
                batch.delete(space_key(id));
            }
        }
        self.put_grants(&mut batch, &self.grants.current);
        let identity = self
            .keys
            .as_ref()
            .filter(|k| k.unsaved)
            .map(|k| k.record.clone());
        if let Some(record) = &identity {
            batch.put(identity_key(), encode(record));
        }
        for (id, record) in self.invitations.unsaved() {
            match record {
                Some(r) => batch.put(invitation_key(&id), encode(r)),
                None => batch.delete(invitation_key(&id)),
            };
        }
        let decisions = identity.is_some() || self.grants.changed() || self.invitations.changed();
        let durability = self.durability_of(&self.commit.held, decisions);
        let write = WriteId(self.next_id());
        let ticket = FlushTicket {
            scope: FlushScope::All,
            receipts,
            held: std::mem::take(&mut self.commit.held),
            grants: self.grants.current.clone(),
            spaces: self
                .spaces
                .slots
                .iter()
                .map(|(id, s)| (*id, s.record.clone()))
                .collect(),
            identity,
            invitations: self.invitations.snapshot(),
        };
        self.commit.in_flight = Some((write, ticket));
        Ok(Some(Output::Write {
            write,
            batch,
            durability,
        }))
    }

    /// The host reported on a flush.
    pub(super) fn on_write(&mut self, write: WriteId, result: Result<(), StoreError>) {
        let Some((id, _)) = &self.commit.in_flight else {
            return;
        };
        if *id != write {
            return;
        }
        let Some((_, ticket)) = self.commit.in_flight.take() else {
            return;
        };
        match result {
            Ok(()) => self.flush_done(ticket),
            Err(e) => self.flush_failed(ticket, &e),
        }
    }

    fn flush_done(&mut self, ticket: FlushTicket) {
        self.commit.retry_at = None;
        self.commit.retry_ms = 0;
        self.commit.grants_first_failed = false;
        match ticket.scope {
            FlushScope::GrantsOnly => {
                self.grants.saved = ticket.grants;
                return;
            }
            FlushScope::Space(id) => {
                self.space_flush_done(id, ticket);
                return;
            }
            FlushScope::All => {}
        }
        for (id, receipt) in ticket.receipts {
            if let Some(r) = self.spaces.replica(&id) {
                r.save_done(receipt);
            }
        }
        // Records changed after the batch was made differ from the stored
        // copies, so the next flush writes them.
        if let Some(keys) = self.keys.as_mut() {
            if ticket.identity.as_ref() == Some(&keys.record) {
                keys.unsaved = false;
            }
        }
        self.grants.saved = ticket.grants;
        self.spaces.saved = ticket.spaces;
        self.invitations.stored(ticket.invitations);
        for held in ticket.held {
            self.release(held, Ok(()));
        }
        if matches!(self.phase, Phase::Booting(_)) {
            self.booted();
        }
        // What became durable may go to peers now.
        self.peers_after_flush();
    }

    fn flush_failed(&mut self, ticket: FlushTicket, error: &StoreError) {
        let rpc = RpcError::from(error.clone());
        self.back_off();
        match ticket.scope {
            FlushScope::GrantsOnly => {
                // Nothing else failed with it: the decisions hold in memory
                // (what was given goes with its data, still to be written)
                // and the next flush writes everything.
                self.commit.grants_first_failed = true;
                return;
            }
            FlushScope::Space(id) => {
                self.space_flush_failed(id, ticket, error);
                return;
            }
            FlushScope::All => {}
        }
        if matches!(error, StoreError::QuotaExceeded { .. })
            && ticket.receipts.len() > 1
            && !matches!(self.phase, Phase::Booting(_))
        {
            // One app's writes may have filled the quota: write each space
            // on its own, so that only the spaces that do not fit fail.
            for (id, receipt) in ticket.receipts {
                if let Some(r) = self.spaces.replica(&id) {
                    r.save_failed(receipt);
                }
                self.commit.isolating.push(id);
            }
            let later = std::mem::take(&mut self.commit.held);
            self.commit.held = ticket.held.into_iter().chain(later).collect();
            // At once: answers wait.
            self.commit.retry_at = None;
            return;
        }
        if matches!(self.phase, Phase::Booting(_)) {
            self.boot_failed(RpcError::new(
                crate::rpc::codes::STORAGE_BLOCKED,
                format!("the vault could not store its new identity: {error}"),
            ));
            return;
        }
        for (id, receipt) in ticket.receipts {
            if let Some(r) = self.spaces.replica(&id) {
                r.save_failed(receipt);
            }
        }
        // Every space with writes that are not stored: those of this flush
        // and any made since.
        let touched: BTreeSet<SpaceId> = self
            .spaces
            .open()
            .filter(|(_, r)| r.has_unsaved_changes())
            .map(|(id, _)| id)
            .collect();
        // Later writes (after this flush was prepared) are lost with the
        // revert too: fail their calls as well.
        let later = std::mem::take(&mut self.commit.held);
        for held in ticket.held.into_iter().chain(later) {
            self.release(held, Err(rpc.clone()));
        }
        let mut reopen = Vec::new();
        for id in touched {
            let stored = self.spaces.saved.contains_key(&id);
            if !self.close_space_keeping_results(id) {
                continue;
            }
            if stored {
                reopen.push(id);
            }
        }
        // Spaces created in the failed flush were never stored.
        let saved = self.spaces.saved.clone();
        self.spaces.slots.retain(|id, _| saved.contains_key(id));
        for (id, record) in &saved {
            if let Some(slot) = self.spaces.slots.get_mut(id) {
                slot.record = record.clone();
            }
        }
        let orphaned: Vec<super::apps::SubKey> = self
            .apps
            .subscriptions
            .iter()
            .filter(|(_, s)| !self.spaces.contains(&s.space))
            .map(|(id, _)| *id)
            .collect();
        for sub in orphaned {
            self.drop_subscription(sub);
        }
        self.revert_grants();
        self.invitations.revert();
        self.admin_changed();
        // Read again, so live queries resume from storage.
        for id in reopen {
            if self.apps.subscriptions.values().any(|s| s.space == id) {
                self.request_open(id);
            }
        }
    }

    /// Grants after a failed flush (`Grants::revert`): an allow or spaces
    /// given by it are taken back from the apps that had started to use
    /// them.
    fn revert_grants(&mut self) {
        let before = self.grants.current.clone();
        self.grants.revert();
        for (origin, was) in before {
            if !was.allowed {
                continue;
            }
            let now = self.grants.spaces_of(&origin);
            if self.grants.consent_of(&origin) != crate::rpc::Consent::Granted {
                self.close_origin(&origin);
            } else {
                let taken: Vec<SpaceId> = was.spaces.difference(&now).copied().collect();
                self.revoke_spaces(&origin, &taken);
            }
        }
    }

    /// While isolating after a flush over quota: the next space's data,
    /// record and the grants, with the answers of the calls that wrote it.
    fn space_flush(&mut self) -> Result<Option<Output>, RpcError> {
        let Some(&id) = self.commit.isolating.first() else {
            return Ok(None);
        };
        let mut batch = Batch::new();
        let mut receipts = Vec::new();
        let policy = self.config.policy;
        let sealing = self.sealing().contains(&id);
        let mut size = None;
        if let Some(replica) = self.spaces.replica(&id) {
            if let Some(save) = replica
                .prepare_save(&policy, sealing)
                .map_err(RpcError::from)?
            {
                size = Some(save.receipt.stored_bytes_after(replica));
                batch.extend(save.batch);
                receipts.push((id, save.receipt));
            }
        }
        if let Some(after) = size {
            self.record_size(&id, after);
        }
        let record = self.spaces.slots.get(&id).map(|s| s.record.clone());
        if let Some(record) = &record {
            if self.spaces.saved.get(&id) != Some(record) {
                batch.put(space_key(&id), encode_space(record));
            }
        }
        let grants = self.storable_grants(Some(id));
        self.put_grants(&mut batch, &grants);
        let (held, rest): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.commit.held)
            .into_iter()
            .partition(|h| matches!(h, Held::App { space: Some(s), .. } if *s == id));
        self.commit.held = rest;
        let durability = self.durability_of(&held, self.grants.changed());
        let write = WriteId(self.next_id());
        let mut spaces = std::collections::BTreeMap::new();
        if let Some(record) = record {
            spaces.insert(id, record);
        }
        let ticket = FlushTicket {
            scope: FlushScope::Space(id),
            receipts,
            held,
            grants,
            spaces,
            identity: None,
            invitations: Default::default(),
        };
        self.commit.in_flight = Some((write, ticket));
        Ok(Some(Output::Write {
            write,
            batch,
            durability,
        }))
    }

    /// One space's own flush is durable: its answers go, the next space's
    /// turn comes (then everything else, in an ordinary flush).
    fn space_flush_done(&mut self, id: SpaceId, ticket: FlushTicket) {
        self.commit.isolating.retain(|s| *s != id);
        for (space, receipt) in ticket.receipts {
            if let Some(r) = self.spaces.replica(&space) {
                r.save_done(receipt);
            }
        }
        for (space, record) in ticket.spaces {
            self.spaces.saved.insert(space, record);
        }
        self.grants.saved = ticket.grants;
        for held in ticket.held {
            self.release(held, Ok(()));
        }
        self.peers_after_flush();
    }

    /// One space's own flush failed: that space alone is reverted (read
    /// again from storage) and its calls fail; the others go on.
    fn space_flush_failed(&mut self, id: SpaceId, ticket: FlushTicket, error: &StoreError) {
        self.commit.isolating.retain(|s| *s != id);
        let rpc = RpcError::from(error.clone());
        for (space, receipt) in ticket.receipts {
            if let Some(r) = self.spaces.replica(&space) {
                r.save_failed(receipt);
            }
        }
        // Answers of later writes to the same space go with the revert.
        let (later, rest): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.commit.held)
            .into_iter()
            .partition(|h| matches!(h, Held::App { space: Some(s), .. } if *s == id));
        self.commit.held = rest;
        for held in ticket.held.into_iter().chain(later) {
            self.release(held, Err(rpc.clone()));
        }
        self.drop_space_after_failure(id);
        // Its grant to its creator, if it was new, goes with it.
        if !self.spaces.contains(&id) {
            for grant in self.grants.current.values_mut() {
                grant.spaces.remove(&id);
            }
        }
        self.admin_changed();
    }

    /// Closes a space held in memory (its unstored writes are lost),
    /// keeping what each of its live queries showed, to diff against once
    /// it is read again; `false` when no such space is held.
    fn close_space_keeping_results(&mut self, id: SpaceId) -> bool {
        let Some(slot) = self.spaces.slots.get_mut(&id) else {
            return false;
        };
        let state = std::mem::replace(&mut slot.state, SlotState::Closed);
        if let SlotState::Open(replica) = state {
            self.keep_live_results(id, &replica);
        }
        self.peers_space_dropped(id);
        true
    }

    /// Keeps what each live query of `replica`'s space showed, to diff
    /// against once the space is read again (`resubscribe`).
    pub(super) fn keep_live_results(&mut self, id: SpaceId, replica: &Replica) {
        for s in self
            .apps
            .subscriptions
            .values_mut()
            .filter(|s| s.space == id)
        {
            s.stale = Some(replica.space().live_result(s.inner).unwrap_or_default());
        }
    }

    /// Drops a space whose unstored writes are lost from memory: read
    /// again from storage (its live queries diff from what they showed),
    /// or gone if it was never stored.
    fn drop_space_after_failure(&mut self, id: SpaceId) {
        let stored = self.spaces.saved.contains_key(&id);
        self.close_space_keeping_results(id);
        if !stored {
            self.spaces.slots.remove(&id);
            let orphaned: Vec<super::apps::SubKey> = self
                .apps
                .subscriptions
                .iter()
                .filter(|(_, s)| s.space == id)
                .map(|(k, _)| *k)
                .collect();
            for sub in orphaned {
                self.drop_subscription(sub);
            }
        } else if let Some(record) = self.spaces.saved.get(&id).cloned() {
            if let Some(slot) = self.spaces.slots.get_mut(&id) {
                slot.record = record;
            }
            if self.apps.subscriptions.values().any(|s| s.space == id) {
                self.request_open(id);
            }
        }
    }

    fn release(&mut self, held: Held, result: Result<(), RpcError>) {
        match held {
            Held::App {
                conn, id, response, ..
            } => {
                let Some(c) = self.apps.get_mut(conn) else {
                    return;
                };
                c.awaiting.remove(&id);
                self.outputs.push_back(Output::App {
                    conn,
                    message: VaultMessage::Response {
                        id,
                        result: result.map(|()| response),
                    },
                });
            }
            Held::Signal {
                topic, to, data, ..
            } => {
                // Not stored: the message must not leave.
                if result.is_ok() {
                    self.outputs
                        .push_back(Output::SignalSend { topic, to, data });
                }
            }
            Held::Admin { conn, id, response } => {
                if self.apps.get(conn).is_none() {
                    return;
                }
                self.outputs.push_back(Output::Admin {
                    conn,
                    message: AdminReply::Response {
                        id,
                        result: result.map(|()| response),
                    },
                });
            }
        }
    }
}
