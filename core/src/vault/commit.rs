//! The vault's part that owns the write queue (group commit): writes of
//! objects staged to be applied together, answers held until the flush
//! holding their write is durable, and the one flush in flight.

use std::collections::{BTreeMap, BTreeSet};

use super::invitations::InvitationRecord;
use super::machine::{ConnId, Millis, SignalPeer, Topic, WriteId};
use super::records::{GrantRecord, IdentityRecord, SpaceRecord};
use crate::data::SpaceId;
use crate::invite::InvitationId;
use crate::model::WriteBatch;
use crate::rpc::{AdminResponse, Response};
use crate::sync::ReplicaReceipt;

/// A write of objects waiting to be applied with the others staged.
#[derive(Debug)]
pub(super) struct Staged {
    pub conn: ConnId,
    pub id: u32,
    pub space: SpaceId,
    pub batch: WriteBatch,
    pub created: Vec<String>,
}

/// An answer waiting for its write to be durable.
#[derive(Debug)]
pub(super) enum Held {
    App {
        conn: ConnId,
        id: u32,
        response: Response,
        /// The space the call wrote, if one: after a flush over quota its
        /// answer goes with that space's own flush (`flush.rs`).
        space: Option<SpaceId>,
    },
    Admin {
        conn: ConnId,
        id: u32,
        response: AdminResponse,
    },
    /// An invitation message that may leave only once what it follows
    /// from (a counted attempt, an admission) is stored.
    Signal {
        /// Its topic stays joined until it left.
        invitation: InvitationId,
        topic: Topic,
        to: SignalPeer,
        data: Vec<u8>,
    },
}

/// What a flush holds (`flush.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FlushScope {
    /// Every write since the last flush.
    All,
    /// The grants alone: a restriction, written before other data.
    GrantsOnly,
    /// One space's data (and record, and the grants) alone: after a flush
    /// over quota, each space is retried on its own.
    Space(SpaceId),
}

/// What a flush wrote, to settle once the host reports back.
#[derive(Debug)]
pub(super) struct FlushTicket {
    pub scope: FlushScope,
    pub receipts: Vec<(SpaceId, ReplicaReceipt)>,
    pub held: Vec<Held>,
    /// The records as written by this flush.
    pub grants: BTreeMap<String, GrantRecord>,
    pub spaces: BTreeMap<SpaceId, SpaceRecord>,
    pub identity: Option<IdentityRecord>,
    pub invitations: BTreeMap<InvitationId, InvitationRecord>,
}

#[derive(Debug, Default)]
pub(super) struct Commit {
    pub staged: Vec<Staged>,
    pub held: Vec<Held>,
    pub in_flight: Option<(WriteId, FlushTicket)>,
    /// Spaces whose changes a peer waits for: sealed and stored by the
    /// next flush even when nothing else asks for one.
    pub seal_for_peers: BTreeSet<SpaceId>,
    /// After a failed flush: records still to be stored (a revocation
    /// that holds in memory) are written again no sooner than this.
    pub retry_at: Option<Millis>,
    /// The wait before the next retry (doubles up to `MAX_RETRY_MS`).
    pub retry_ms: Millis,
    /// A grants-only flush failed: the next flush writes everything.
    pub grants_first_failed: bool,
    /// After a flush over quota: the spaces still to be written one by one.
    pub isolating: Vec<SpaceId>,
}

impl Commit {
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }
}
