//! Group commit: everything written since the last flush — space chunks,
//! control logs, signed bundles, the vault's records — as one storage
//! batch, and the answers that wait for it.

use std::collections::BTreeSet;

use std::collections::BTreeMap;

use super::records::{
    encode, grant_key, identity_key, space_key, GrantRecord, IdentityRecord, SpaceRecord,
};
use super::{Held, Output, Vault, VaultError};
use crate::data::SpaceId;
use crate::rpc::{AdminReply, RpcError, VaultMessage};
use crate::store::{Batch, StoreError};
use crate::sync::ReplicaReceipt;

/// One batch for the host to write atomically, and what to do after.
#[derive(Debug)]
pub struct Flush {
    pub batch: Batch,
    pub ticket: FlushTicket,
}

/// What a [`Flush`] wrote; hand it back to [`Vault::flush_done`] or
/// [`Vault::flush_failed`].
#[derive(Debug)]
pub struct FlushTicket {
    receipts: Vec<(SpaceId, ReplicaReceipt)>,
    held: Vec<Held>,
    /// The records as written by this flush.
    grants: BTreeMap<String, GrantRecord>,
    spaces: BTreeMap<SpaceId, SpaceRecord>,
    identity: Option<IdentityRecord>,
}

impl FlushTicket {
    /// How many answers wait for this flush.
    pub fn calls(&self) -> usize {
        self.held.len()
    }
}

impl Vault {
    /// Whether a flush has something to write or answer.
    pub fn wants_flush(&self) -> bool {
        !self.flush_in_flight
            && (!self.held.is_empty()
                || !self.staged.is_empty()
                || self.identity_unsaved
                || self.grants != self.saved_grants
                || self.records_changed())
    }

    fn records_changed(&self) -> bool {
        self.spaces.len() != self.saved_spaces.len()
            || self
                .spaces
                .iter()
                .any(|(id, s)| self.saved_spaces.get(id) != Some(&s.record))
            || self
                .spaces
                .values()
                .any(|s| s.replica.as_ref().is_some_and(|r| r.has_unsaved_changes()))
    }

    /// Collects every write since the last flush into one batch. `None`
    /// when there is nothing to do, or a flush is still in flight (writes
    /// meanwhile go into the next one).
    pub fn prepare_flush(&mut self) -> Result<Option<Flush>, VaultError> {
        if !self.wants_flush() {
            return Ok(None);
        }
        self.commit_staged();
        let mut batch = Batch::new();
        let mut receipts = Vec::new();
        let policy = self.policy;
        for (id, slot) in self.spaces.iter_mut() {
            let Some(replica) = slot.replica.as_mut() else {
                continue;
            };
            if let Some(save) = replica.prepare_save(&policy)? {
                batch.extend(save.batch);
                receipts.push((*id, save.receipt));
            }
            if self.saved_spaces.get(id) != Some(&slot.record) {
                batch.put(space_key(id), encode(&slot.record));
            }
        }
        let gone: Vec<SpaceId> = self
            .saved_spaces
            .keys()
            .filter(|id| !self.spaces.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            batch.delete(space_key(&id));
        }
        let origins: BTreeSet<&String> =
            self.grants.keys().chain(self.saved_grants.keys()).collect();
        for origin in origins {
            match (self.grants.get(origin), self.saved_grants.get(origin)) {
                (Some(now), before) if before != Some(now) => {
                    batch.put(grant_key(origin), encode(now));
                }
                (None, Some(_)) => {
                    batch.delete(grant_key(origin));
                }
                _ => {}
            }
        }
        let identity = self.identity_unsaved.then(|| self.identity_record.clone());
        if let Some(record) = &identity {
            batch.put(identity_key(), encode(record));
        }
        self.flush_in_flight = true;
        // What is written now becomes the stored state once it is done.
        Ok(Some(Flush {
            batch,
            ticket: FlushTicket {
                receipts,
                held: std::mem::take(&mut self.held),
                grants: self.grants.clone(),
                spaces: self
                    .spaces
                    .iter()
                    .map(|(id, s)| (*id, s.record.clone()))
                    .collect(),
                identity,
            },
        }))
    }

    /// The flush's batch is durable: release its answers.
    pub fn flush_done(&mut self, ticket: FlushTicket) {
        self.flush_in_flight = false;
        for (id, receipt) in ticket.receipts {
            if let Some(r) = self.spaces.get_mut(&id).and_then(|s| s.replica.as_mut()) {
                r.save_done(receipt);
            }
        }
        // Records changed after the batch was made differ from the stored
        // copies, so the next flush writes them.
        if ticket.identity.as_ref() == Some(&self.identity_record) {
            self.identity_unsaved = false;
        }
        self.saved_grants = ticket.grants;
        self.saved_spaces = ticket.spaces;
        for held in ticket.held {
            self.release(held, Ok(()));
        }
    }

    /// The flush's batch failed (nothing of it was stored): its calls get
    /// `error`, and what they changed is undone — the spaces are dropped
    /// from memory and reopened from storage ([`Vault::spaces_to_reload`]),
    /// grants and records return to their stored values.
    pub fn flush_failed(&mut self, ticket: FlushTicket, error: &StoreError) {
        self.flush_in_flight = false;
        let rpc = RpcError::from(error.clone());
        for (id, receipt) in ticket.receipts {
            if let Some(r) = self.spaces.get_mut(&id).and_then(|s| s.replica.as_mut()) {
                r.save_failed(receipt);
            }
        }
        // Every space with writes that are not stored: those of this flush
        // and any made since.
        let touched: BTreeSet<SpaceId> = self
            .spaces
            .iter()
            .filter(|(_, s)| s.replica.as_ref().is_some_and(|r| r.has_unsaved_changes()))
            .map(|(id, _)| *id)
            .collect();
        // Later writes (after this flush was prepared) are lost with the
        // revert too: fail their calls as well.
        let later = std::mem::take(&mut self.held);
        for held in ticket.held.into_iter().chain(later) {
            self.release(held, Err(rpc.clone()));
        }
        for id in touched {
            let stored = self.saved_spaces.contains_key(&id);
            let Some(slot) = self.spaces.get_mut(&id) else {
                continue;
            };
            if let Some(replica) = slot.replica.take() {
                // Keep what each live query showed, to diff after reopening.
                for s in self.subscriptions.values_mut().filter(|s| s.space == id) {
                    s.stale = Some(replica.space().live_result(s.inner).unwrap_or_default());
                }
            }
            if stored {
                self.reload.insert(id);
            }
        }
        // Spaces created in the failed flush were never stored.
        self.spaces
            .retain(|id, _| self.saved_spaces.contains_key(id));
        for (id, record) in &self.saved_spaces {
            if let Some(slot) = self.spaces.get_mut(id) {
                slot.record = record.clone();
            }
        }
        let orphaned: Vec<u32> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| !self.spaces.contains_key(&s.space))
            .map(|(id, _)| *id)
            .collect();
        for sub in orphaned {
            self.drop_subscription(sub);
        }
        self.grants = self.saved_grants.clone();
        self.admin_changed();
    }

    fn release(&mut self, held: Held, result: Result<(), RpcError>) {
        match held {
            Held::App { conn, id, response } => {
                let Some(c) = self.conns.get_mut(&conn) else {
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
            Held::Admin { conn, id, response } => {
                if !self.conns.contains_key(&conn) {
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
