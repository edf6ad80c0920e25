//! [`SyncSession`]: the sync protocol with one peer for one space, over
//! one channel of a `peer::Connection`. Sans-IO: messages in, messages out
//! (pulled as credit allows), events for the host.
//!
//! ```text
//! both sides: Hello {control heads, per-shard digests}
//!   equal heads and digests → nothing more (a space that did not change
//!   costs one message each way)
//! control differs: Credentials {what the other lacks}       (first, verified)
//!   the peer must be a member (its device not revoked), else Refuse
//! data differs:    Heads {full heads of the differing shards}
//!                  Bundles {missing bundles with their changes}
//!   or, to a peer whose space is empty: SnapshotBegin + SnapshotParts
//! after the receiver's flush: Synced {its durable heads}  (→ baseline)
//! then live: every bundle accepted here and durable goes to the peer
//! (except those it came from), and Synced acknowledges
//! ```
//!
//! What a peer lacks is judged from its heads; heads this replica does not
//! know (the peer changed too) are narrowed by the persisted baseline —
//! what that peer acknowledged last time — so a reconnect costs what
//! changed since, even after both sides restarted.
//!
//! **Durability.** Only stored bundles leave: this device's changes are
//! sealed into a bundle by the flush that stores them and sent after it
//! completed, and a snapshot goes only from a settled replica (nothing
//! unsealed or unsaved). So a crash can never make this device reuse an
//! Automerge sequence number a peer already holds for a different change:
//! every change a peer got from here was durable here first.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use super::error::SyncError;
use super::receive::Outcome;
use super::replica::{CredentialsOutcome, Replica};
use super::wire::{hashes_from_wire, hashes_to_wire, Snapshot, SyncMessage, SYNC_VERSION};
use crate::identity::{Credential, CredentialHash, DevicePublicKey, SignedChanges};
use crate::peer::{Millis, PeerIdentity};

/// Refused bundles a peer may send on one channel before it is closed.
pub const MAX_REJECTIONS: u32 = 32;
/// The largest snapshot accepted (all shards).
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;
/// Bytes of changes per `Bundles` message (about; one bundle may exceed it).
pub const BUNDLES_PER_MESSAGE: usize = 512 * 1024;
/// Bytes per snapshot part.
pub const SNAPSHOT_PART: usize = 1 << 20;

/// What a session tells its host.
#[derive(Debug)]
pub enum SessionEvent {
    /// Data arrived and was judged (merged, waiting or refused).
    Received(Outcome),
    /// Credentials arrived.
    Credentials(CredentialsOutcome),
    /// The session needs this replica's changes sealed and stored (a
    /// flush) before it can send them.
    WantFlush,
    /// The session is over: close the channel with this code and reason
    /// (the peer is not a member, misbehaved, or refused).
    Close { code: &'static str, reason: String },
}

struct TheirHello {
    digests: Vec<u64>,
}

/// A snapshot being sent: its shard documents, and the position (shard
/// index, byte offset) of the next part.
struct Outgoing {
    shards: Vec<(u16, Vec<u8>)>,
    shard: usize,
    offset: usize,
}

struct Incoming {
    bundles: Vec<SignedChanges>,
    expected: BTreeMap<u16, u32>,
    received: BTreeMap<u16, Vec<u8>>,
}

/// The sync protocol with one peer for one space. See the module docs.
pub struct SyncSession {
    peer: DevicePublicKey,
    /// Who the peer proved to be on the connection.
    peer_identity: PeerIdentity,
    /// The exchange under way (see `SyncMessage::Hello`).
    round: u32,
    /// The replica's generation the queued indices belong to.
    generation: u64,
    their: Option<TheirHello>,
    /// The control heads our `Hello` of this round named.
    hello_heads: Vec<CredentialHash>,
    /// Credentials known to be in the peer's log (heads of cuts): what it
    /// named, sent us, or was sent.
    their_control: Vec<CredentialHash>,
    control_settled: bool,
    withheld: bool,
    /// Data may flow (the peer is a member and the first exchange began).
    live: bool,
    closed: bool,
    /// Small messages, sent before bulk data.
    outbox: VecDeque<SyncMessage>,
    /// Bundles to send, by index, in order.
    queue: VecDeque<usize>,
    queued: HashSet<usize>,
    /// Bundles with an index below this were considered for live relay.
    relayed: usize,
    want_snapshot: bool,
    snapshot_out: Option<Outgoing>,
    snapshot_in: Option<Incoming>,
    /// Shards this peer's data changed, to acknowledge after our flush.
    synced_due: BTreeSet<u16>,
    rejections: u32,
    events: VecDeque<SessionEvent>,
}

impl std::fmt::Debug for SyncSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncSession")
            .field("peer", &self.peer)
            .field("live", &self.live)
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl SyncSession {
    /// A session with `peer` (an authenticated device) for `replica`'s
    /// space; queues the `Hello`.
    pub fn new(peer: PeerIdentity, replica: &mut Replica) -> Result<Self, SyncError> {
        let mut s = SyncSession {
            peer: peer.device,
            peer_identity: peer,
            round: 0,
            generation: replica.generation(),
            their: None,
            hello_heads: Vec::new(),
            their_control: Vec::new(),
            control_settled: false,
            withheld: false,
            live: false,
            closed: false,
            outbox: VecDeque::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            relayed: replica.bundles().len(),
            want_snapshot: false,
            snapshot_out: None,
            snapshot_in: None,
            synced_due: BTreeSet::new(),
            rejections: 0,
            events: VecDeque::new(),
        };
        s.send_hello(replica)?;
        Ok(s)
    }

    fn send_hello(&mut self, replica: &mut Replica) -> Result<(), SyncError> {
        self.hello_heads = replica.control().heads();
        self.outbox.push_back(SyncMessage::Hello {
            version: SYNC_VERSION,
            round: self.round,
            control_heads: self.hello_heads.clone(),
            shard_count: replica.space().shard_count() as u16,
            digests: replica.shard_digests()?,
        });
        Ok(())
    }

    /// Forgets the exchange: what was queued, what the peer said.
    fn reset(&mut self, replica: &Replica) {
        self.their = None;
        self.their_control.clear();
        self.control_settled = false;
        self.withheld = false;
        self.live = false;
        self.want_snapshot = false;
        self.snapshot_out = None;
        self.snapshot_in = None;
        self.queue.clear();
        self.queued.clear();
        self.relayed = replica.bundles().len();
        self.generation = replica.generation();
    }

    /// Starts over when the replica voided bundles (the queued indices
    /// and what the peer was told no longer hold): a new round.
    fn check_generation(&mut self, replica: &mut Replica) -> Result<(), SyncError> {
        if self.closed || replica.generation() == self.generation {
            return Ok(());
        }
        self.reset(replica);
        self.round += 1;
        self.send_hello(replica)
    }

    pub fn peer(&self) -> DevicePublicKey {
        self.peer
    }

    /// Whether the first exchange is done and live updates flow.
    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn close(&mut self, code: &'static str, reason: String) {
        if !self.closed {
            self.closed = true;
            self.outbox.clear();
            self.queue.clear();
            self.snapshot_out = None;
            self.outbox.push_back(SyncMessage::Refuse {
                code: code.to_owned(),
                reason: reason.clone(),
            });
            self.events.push_back(SessionEvent::Close { code, reason });
        }
    }

    /// A message from the peer on this space's channel.
    pub fn handle(&mut self, replica: &mut Replica, bytes: &[u8], now: Millis) {
        if self.closed {
            return;
        }
        let message = match SyncMessage::decode(bytes) {
            Ok(m) => m,
            Err(e) => return self.close("sync.protocol", e.to_string()),
        };
        if let Err(e) = self.on_message(replica, message, now) {
            self.close("sync.protocol", e.to_string());
        }
    }

    fn on_message(
        &mut self,
        replica: &mut Replica,
        message: SyncMessage,
        now: Millis,
    ) -> Result<(), SyncError> {
        self.check_generation(replica)?;
        let starting_over = self.their.is_none() && self.round > 0;
        if starting_over
            && !matches!(
                message,
                SyncMessage::Hello { .. } | SyncMessage::Refuse { .. }
            )
        {
            // This side started a new round; until the peer's `Hello` of it
            // arrives (the channel is ordered), what comes is of the round
            // before — superseded by the new exchange.
            return Ok(());
        }
        match message {
            SyncMessage::Hello {
                version,
                round,
                control_heads,
                shard_count,
                digests,
            } => {
                if round < self.round {
                    return Ok(()); // an exchange already over
                }
                if round > self.round {
                    // The peer starts over: so do we, answering in kind.
                    self.reset(replica);
                    self.round = round;
                    self.send_hello(replica)?;
                } else if self.their.is_some() {
                    return Err(protocol("a second hello in one round"));
                }
                if version != SYNC_VERSION {
                    self.close(
                        "sync.unsupported_version",
                        format!(
                            "the peer speaks sync version {version}, this build {SYNC_VERSION}"
                        ),
                    );
                    return Ok(());
                }
                let ours = replica.space().shard_count();
                if usize::from(shard_count) != ours || digests.len() != ours {
                    return Err(protocol("the peer's space has another shard count"));
                }
                // Both sides compare the same two Hellos: when they name the
                // same heads, neither sends credentials and both are settled;
                // otherwise each answers with exactly one `Credentials` and
                // is settled when the other's arrives.
                self.their_control = control_heads.clone();
                if control_heads == self.hello_heads {
                    self.control_settled = true;
                } else if replica.may_receive(&self.peer_identity) {
                    self.send_credentials(replica);
                } else {
                    self.withheld = true;
                    self.outbox.push_back(credentials_message(&[]));
                }
                self.their = Some(TheirHello { digests });
                self.proceed(replica)?;
            }
            SyncMessage::Credentials { credentials } => {
                if self.their.is_none() {
                    return Err(protocol("credentials before hello"));
                }
                let mut creds = Vec::with_capacity(credentials.len());
                for bytes in &credentials {
                    // A credential that does not decode is refused like an
                    // unauthorized one: reported, the rest go on.
                    if let Ok(c) = Credential::from_bytes(bytes) {
                        creds.push(c);
                    }
                }
                replica.set_clock(now);
                self.their_control
                    .extend(creds.iter().map(Credential::hash));
                let outcome = replica.receive_credentials(creds)?;
                self.control_settled = true;
                if self.withheld && replica.may_receive(&self.peer_identity) {
                    self.withheld = false;
                    self.send_credentials(replica);
                }
                self.events.push_back(SessionEvent::Credentials(outcome));
                self.proceed(replica)?;
            }
            SyncMessage::Heads { shards } => {
                if !self.live {
                    return Err(protocol("heads before the control log settled"));
                }
                for (shard, heads) in shards {
                    if usize::from(shard) >= replica.space().shard_count() {
                        return Err(protocol("heads of a shard the space does not have"));
                    }
                    let theirs = hashes_from_wire(&heads);
                    let baseline = replica.baseline(&self.peer, shard);
                    for i in replica.bundles_missing(usize::from(shard), &theirs, &baseline)? {
                        if replica.origin(i) != Some(self.peer) && self.queued.insert(i) {
                            self.queue.push_back(i);
                        }
                    }
                }
                if replica.has_unsealed() {
                    self.events.push_back(SessionEvent::WantFlush);
                }
            }
            SyncMessage::Bundles { bundles } => {
                if !self.live {
                    return Err(protocol("bundles before the control log settled"));
                }
                let outcome = replica.receive(bundles, Some(self.peer), now);
                self.note_received(&outcome);
                self.events.push_back(SessionEvent::Received(outcome));
            }
            SyncMessage::SnapshotBegin { bundles, shards } => {
                if !self.live || self.snapshot_in.is_some() {
                    return Err(protocol("a snapshot out of turn"));
                }
                let total: u64 = shards.iter().map(|(_, n)| u64::from(*n)).sum();
                let count = replica.space().shard_count();
                let mut expected = BTreeMap::new();
                for (shard, size) in shards {
                    if usize::from(shard) >= count || expected.insert(shard, size).is_some() {
                        return Err(protocol("a snapshot of shards the space does not have"));
                    }
                }
                if total > MAX_SNAPSHOT_BYTES {
                    self.close(
                        "sync.snapshot_too_large",
                        format!(
                            "a snapshot of {total} bytes is over the {MAX_SNAPSHOT_BYTES} accepted"
                        ),
                    );
                    return Ok(());
                }
                self.snapshot_in = Some(Incoming {
                    bundles,
                    expected,
                    received: BTreeMap::new(),
                });
                self.finish_snapshot(replica, now);
            }
            SyncMessage::SnapshotPart { shard, bytes } => {
                let Some(incoming) = self.snapshot_in.as_mut() else {
                    return Err(protocol("a snapshot part without its beginning"));
                };
                let Some(&size) = incoming.expected.get(&shard) else {
                    return Err(protocol("a snapshot part of a shard not announced"));
                };
                let buf = incoming.received.entry(shard).or_default();
                if buf.len() + bytes.len() > size as usize {
                    return Err(protocol("a snapshot part beyond its announced size"));
                }
                buf.extend_from_slice(&bytes);
                self.finish_snapshot(replica, now);
            }
            SyncMessage::Synced { shards } => {
                let shards = shards
                    .into_iter()
                    .map(|(s, hs)| (s, hashes_from_wire(&hs)))
                    .collect();
                replica.record_baseline(self.peer, shards)?;
            }
            SyncMessage::Refuse { code, reason } => {
                self.closed = true;
                let code = match code.as_str() {
                    "sync.not_a_member" => "sync.not_a_member",
                    "sync.unsupported_version" => "sync.unsupported_version",
                    _ => "sync.refused",
                };
                self.events.push_back(SessionEvent::Close {
                    code,
                    reason: format!("the peer refused: {reason}"),
                });
            }
        }
        Ok(())
    }

    fn note_received(&mut self, outcome: &Outcome) {
        self.synced_due.extend(outcome.shards.iter().copied());
        self.rejections += outcome.rejected.len() as u32;
        if self.rejections > MAX_REJECTIONS {
            self.close(
                "sync.too_many_rejections",
                format!(
                    "the peer sent {} bundles this replica refused",
                    self.rejections
                ),
            );
        }
    }

    fn finish_snapshot(&mut self, replica: &mut Replica, now: Millis) {
        let complete = self.snapshot_in.as_ref().is_some_and(|i| {
            i.expected
                .iter()
                .all(|(s, n)| i.received.get(s).map_or(0, Vec::len) == *n as usize)
        });
        if !complete {
            return;
        }
        let Some(incoming) = self.snapshot_in.take() else {
            return;
        };
        let snapshot = Snapshot {
            shards: incoming.received.into_iter().collect(),
            bundles: incoming.bundles,
        };
        match replica.receive_snapshot(snapshot, Some(self.peer), now) {
            Ok(outcome) => {
                self.note_received(&outcome);
                self.events.push_back(SessionEvent::Received(outcome));
            }
            Err(e) => self.close("sync.bad_snapshot", e.to_string()),
        }
    }

    /// Sends the peer the credentials it lacks (by what it is known to
    /// hold); afterwards it holds everything this log holds.
    fn send_credentials(&mut self, replica: &Replica) {
        let creds = replica.credentials_missing_from(&self.their_control);
        self.outbox.push_back(credentials_message(&creds));
        self.their_control = replica.control().heads();
    }

    /// Once the control log settled: refuse a non-member, else start the
    /// data exchange.
    fn proceed(&mut self, replica: &mut Replica) -> Result<(), SyncError> {
        if self.live || self.closed || !self.control_settled {
            return Ok(());
        }
        let Some(their) = self.their.as_ref() else {
            return Ok(());
        };
        if !replica.may_receive(&self.peer_identity) {
            self.close(
                "sync.not_a_member",
                "this device is not an authorized device of a member of the space".into(),
            );
            return Ok(());
        }
        let theirs = their.digests.clone();
        let ours = replica.shard_digests()?;
        self.live = true;
        // Credentials this log gained while the exchange settled (from
        // other peers) go before any bundle that may need them.
        self.send_new_credentials(replica);
        let differing: Vec<usize> = (0..ours.len()).filter(|&s| ours[s] != theirs[s]).collect();
        if differing.is_empty() {
            // The peer holds every change held here.
            self.relayed = replica.bundles().len();
            return Ok(());
        }
        let their_empty = theirs.iter().all(|d| *d == 0);
        let our_empty = ours.iter().all(|d| *d == 0);
        if their_empty {
            self.want_snapshot = true;
            if replica.has_unsealed() || !replica.is_settled() {
                self.events.push_back(SessionEvent::WantFlush);
            } else {
                self.start_snapshot(replica)?;
            }
        } else if !our_empty {
            // The peer judged what we hold by our `Hello`: bundles accepted
            // here since (from other peers, while this exchange settled)
            // are not covered by the heads below, so they go as relayed
            // ones. (A snapshot covers them instead.)
            self.queue_relay(replica);
            let mut shards = Vec::with_capacity(differing.len());
            for s in differing {
                shards.push((s as u16, hashes_to_wire(&replica.shard_heads(s)?)));
            }
            self.outbox.push_back(SyncMessage::Heads { shards });
            if replica.has_unsealed() {
                self.events.push_back(SessionEvent::WantFlush);
            }
        }
        // An empty side waits for the other's snapshot.
        Ok(())
    }

    fn start_snapshot(&mut self, replica: &mut Replica) -> Result<(), SyncError> {
        self.want_snapshot = false;
        let snapshot = replica.snapshot()?;
        let shards = snapshot
            .shards
            .iter()
            .map(|(s, d)| (*s, d.len() as u32))
            .collect();
        self.outbox.push_back(SyncMessage::SnapshotBegin {
            bundles: snapshot.bundles,
            shards,
        });
        // Everything it holds is in the snapshot; live relay starts after.
        self.relayed = replica.bundles().len();
        self.snapshot_out = Some(Outgoing {
            shards: snapshot.shards,
            shard: 0,
            offset: 0,
        });
        Ok(())
    }

    /// The replica's latest flush completed: its new durable bundles go
    /// to the peer (not those it came from), what the peer sent is
    /// acknowledged, and a snapshot that waited for a settled replica
    /// starts.
    pub fn after_flush(&mut self, replica: &mut Replica) -> Result<(), SyncError> {
        self.check_generation(replica)?;
        if self.closed || !self.live {
            return Ok(());
        }
        // Credentials added here since (issued, or from other peers) go
        // first: the bundles and snapshots that follow may need them.
        self.send_new_credentials(replica);
        if self.want_snapshot {
            if replica.is_settled() {
                self.start_snapshot(replica)?;
            } else {
                self.events.push_back(SessionEvent::WantFlush);
            }
            return Ok(());
        }
        self.queue_relay(replica);
        if !self.synced_due.is_empty() && !replica.has_unsaved_changes() {
            let mut shards = Vec::new();
            for s in std::mem::take(&mut self.synced_due) {
                shards.push((s, hashes_to_wire(&replica.shard_heads(usize::from(s))?)));
            }
            self.outbox.push_back(SyncMessage::Synced { shards });
        }
        Ok(())
    }

    /// Sends the credentials this log holds beyond what the peer is known
    /// to hold, if any.
    fn send_new_credentials(&mut self, replica: &Replica) {
        let heads = replica.control().heads();
        if !heads
            .iter()
            .all(|h| replica.control().cut_contains(&self.their_control, h))
        {
            self.send_credentials(replica);
        }
    }

    /// Queues the durable bundles accepted since the last relay (from
    /// other peers, or sealed here) — not those this peer sent.
    fn queue_relay(&mut self, replica: &Replica) {
        let saved = replica.saved_bundles();
        for i in self.relayed..saved {
            if replica.origin(i) != Some(self.peer) && self.queued.insert(i) {
                self.queue.push_back(i);
            }
        }
        self.relayed = self.relayed.max(saved);
    }

    /// Whether messages wait to be sent (as credit allows).
    pub fn has_output(&self, replica: &Replica) -> bool {
        !self.outbox.is_empty()
            || self.snapshot_out.is_some()
            || self
                .queue
                .front()
                .is_some_and(|i| *i < replica.saved_bundles())
    }

    /// The next message to send, if any may go now. Bulk data is produced
    /// only as it is pulled, so a slow peer holds nothing back here but
    /// indices.
    pub fn poll_message(&mut self, replica: &mut Replica) -> Result<Option<Vec<u8>>, SyncError> {
        self.check_generation(replica)?;
        if let Some(m) = self.outbox.pop_front() {
            return Ok(Some(m.encode()));
        }
        if let Some(out) = self.snapshot_out.as_mut() {
            if let Some((s, doc)) = out.shards.get(out.shard) {
                let end = (out.offset + SNAPSHOT_PART).min(doc.len());
                let part = SyncMessage::SnapshotPart {
                    shard: *s,
                    bytes: doc[out.offset..end].to_vec(),
                };
                out.offset = end;
                if end == doc.len() {
                    out.shard += 1;
                    out.offset = 0;
                }
                return Ok(Some(part.encode()));
            }
            self.snapshot_out = None;
        }
        let mut bundles = Vec::new();
        let mut size = 0;
        while let Some(&i) = self.queue.front() {
            // Only stored bundles leave (see the module docs).
            if i >= replica.saved_bundles() || size >= BUNDLES_PER_MESSAGE {
                break;
            }
            self.queue.pop_front();
            self.queued.remove(&i);
            let wb = replica.wire_bundle(i)?;
            size += wb.byte_len();
            bundles.push(wb);
        }
        if bundles.is_empty() {
            return Ok(None);
        }
        Ok(Some(SyncMessage::Bundles { bundles }.encode()))
    }
}

fn credentials_message(creds: &[Credential]) -> SyncMessage {
    SyncMessage::Credentials {
        credentials: creds.iter().map(Credential::to_bytes).collect(),
    }
}

fn protocol(what: &str) -> SyncError {
    SyncError::MalformedMessage {
        reason: format!("out of order: {what}"),
    }
}
