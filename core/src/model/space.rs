//! A space: its objects spread over sharded Automerge documents, with an
//! index of current state beside them.
//!
//! The CRDT documents are the truth; the [`Index`] is derived from them and
//! answers reads and queries without touching Automerge. Local writes update
//! the index directly (a local put supersedes every value the replica has
//! seen, so the new state is known without reading the document back); merged
//! remote changes are read back from the documents for the objects they
//! touched. Text fields edited by splices are re-read lazily, the first time a
//! read, a query or a live subscription needs them, so a stream of keystrokes
//! costs one Automerge splice each and not a copy of the whole text.
//!
//! This file holds [`Space`] itself, its reads and its live queries; local
//! writes are in `write.rs`, text fields in `text.rs`, reads at past heads
//! in `history.rs`, merging in `merge.rs` and storage in `persist.rs`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use automerge::ActorId;

use super::codec::Reader;
use super::error::ModelError;
use super::shard::Shard;
use super::text::CachedText;
use crate::data::{ObjectId, ObjectState, Reference, SpaceId, Value};
use crate::query::{Index, LiveDiff, LiveQueries, Query, SubscriptionId};

/// How a space spreads its objects over Automerge documents. Fixed when the
/// space is created: every replica of a space must use the same count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceOptions {
    pub shard_count: u16,
}

impl Default for SpaceOptions {
    /// The layout chosen in `docs/adr/0001-object-layout.md`.
    fn default() -> Self {
        Self {
            shard_count: DEFAULT_SHARD_COUNT,
        }
    }
}

pub const DEFAULT_SHARD_COUNT: u16 = 64;
/// The largest shard count a space may have.
pub const MAX_SHARD_COUNT: u16 = 1024;

/// What a reference points at.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    Object(&'a ObjectState),
    /// The object exists but was deleted.
    Deleted(&'a ObjectState),
    /// No such object (yet): it may arrive with a later sync.
    Missing,
    /// The reference points into another space; resolve it there.
    OtherSpace(SpaceId),
}

/// Something the space reports to its host.
#[derive(Clone, Debug, PartialEq)]
pub enum SpaceEvent {
    /// A live query's result changed.
    Live(LiveDiff),
    /// Changes merged from a peer left an object that cannot be read (e.g.
    /// a malformed initial state). It is left out of the index and queries on
    /// every replica alike, until a later change makes it readable.
    Unreadable { object: ObjectId, reason: String },
}

/// The result of an applied write batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Committed {
    /// Objects whose state changed, in first-touched order.
    pub changed: Vec<ObjectId>,
}

pub struct Space {
    pub(crate) id: SpaceId,
    pub(crate) id_text: String,
    pub(crate) actor: ActorId,
    pub(crate) shards: Vec<Shard>,
    pub(crate) index: Index,
    pub(crate) properties: BTreeMap<String, Value>,
    /// Objects whose text fields in the index lag their documents.
    pub(crate) stale_text: HashSet<ObjectId>,
    /// Text objects of text fields, so a keystroke does not look up its
    /// object and field in the document each time. Dropped for a field a
    /// local write replaces and for every object a merge touches.
    pub(crate) text_objs: HashMap<ObjectId, Vec<CachedText>>,
    /// Whether the space's meta chunk is in storage.
    pub(crate) meta_saved: bool,
    /// A save was prepared and the host has not reported back yet.
    pub(crate) save_in_flight: bool,
    live: LiveQueries,
    pub(super) events: VecDeque<SpaceEvent>,
}

impl Space {
    /// Creates a new, empty space written by `actor`.
    pub fn create(id: SpaceId, actor: ActorId, options: SpaceOptions) -> Result<Self, ModelError> {
        if options.shard_count == 0 || options.shard_count > MAX_SHARD_COUNT {
            return Err(ModelError::Corrupt {
                reason: format!(
                    "shard count must be 1..={MAX_SHARD_COUNT}, not {}",
                    options.shard_count
                ),
            });
        }
        let shards = (0..options.shard_count)
            .map(|_| Shard::new(&actor))
            .collect();
        Ok(Self::assemble(
            id,
            actor,
            shards,
            Index::new(),
            BTreeMap::new(),
        ))
    }

    pub(crate) fn assemble(
        id: SpaceId,
        actor: ActorId,
        shards: Vec<Shard>,
        index: Index,
        properties: BTreeMap<String, Value>,
    ) -> Self {
        Self {
            id,
            id_text: id.to_string(),
            actor,
            shards,
            index,
            properties,
            stale_text: HashSet::new(),
            text_objs: HashMap::new(),
            meta_saved: false,
            save_in_flight: false,
            live: LiveQueries::new(),
            events: VecDeque::new(),
        }
    }

    pub fn id(&self) -> SpaceId {
        self.id
    }

    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Bytes of the space's shard chunks in storage, as of its last
    /// completed save (or its load): what a quota counts.
    pub fn stored_bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| (s.snapshot_bytes + s.incremental_bytes) as u64)
            .sum()
    }

    /// The shard an object lives in.
    pub fn shard_of(&self, id: &ObjectId) -> usize {
        let b = id.as_bytes();
        usize::from(u16::from_be_bytes([b[0], b[1]])) % self.shards.len()
    }

    /// Number of objects, deleted ones included.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn properties(&self) -> &BTreeMap<String, Value> {
        &self.properties
    }

    // ----------------------------------------------------------------- reads

    /// The current state of an object, deleted ones included.
    pub fn get(&mut self, id: &ObjectId) -> Result<Option<&ObjectState>, ModelError> {
        self.refresh_text(Some(id))?;
        Ok(self.index.get(id))
    }

    /// Follows a reference.
    pub fn resolve(&mut self, reference: &Reference) -> Result<Resolved<'_>, ModelError> {
        if let Some(space) = reference.space.filter(|s| *s != self.id) {
            return Ok(Resolved::OtherSpace(space));
        }
        Ok(match self.get(&reference.object)? {
            Some(state) if state.deleted => Resolved::Deleted(state),
            Some(state) => Resolved::Object(state),
            None => Resolved::Missing,
        })
    }

    /// Runs a query over the current state.
    pub fn query(&mut self, query: &Query) -> Result<Vec<ObjectId>, ModelError> {
        self.refresh_text(None)?;
        Ok(self.index.run(query)?)
    }

    /// The index of current state (text fields may lag until the next read).
    pub fn index(&self) -> &Index {
        &self.index
    }

    // ------------------------------------------------------------ live queries

    /// Subscribes to a query: returns its current result; later changes
    /// arrive as [`SpaceEvent::Live`] diffs from [`poll_event`](Self::poll_event).
    pub fn subscribe(
        &mut self,
        query: Query,
    ) -> Result<(SubscriptionId, Vec<ObjectId>), ModelError> {
        self.refresh_text(None)?;
        Ok(self.live.subscribe(query, &self.index)?)
    }

    pub fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        self.live.unsubscribe(id)
    }

    /// A live query's current result (`None` when it is not open).
    pub fn live_result(&self, id: SubscriptionId) -> Option<Vec<ObjectId>> {
        self.live.result(id)
    }

    /// The next event for the host, if any.
    pub fn poll_event(&mut self) -> Option<SpaceEvent> {
        self.events.pop_front()
    }

    pub(super) fn notify_live(&mut self, changed: &[ObjectId]) -> Result<(), ModelError> {
        if self.live.is_empty() || changed.is_empty() {
            return Ok(());
        }
        self.refresh_text(None)?;
        let diffs = self.live.on_change(&self.index, changed);
        self.events.extend(diffs.into_iter().map(SpaceEvent::Live));
        Ok(())
    }

    /// Reads every object back from the documents and reports the first one
    /// whose indexed state differs. For tests and consistency checks.
    pub fn verify_index(&mut self) -> Result<(), String> {
        self.refresh_text(None).map_err(|e| e.to_string())?;
        let mut count = 0;
        for shard in 0..self.shards.len() {
            let doc = self.shards[shard]
                .doc(&self.id_text, &self.actor)
                .map_err(|e| e.to_string())?;
            let reader = Reader {
                doc: &*doc,
                heads: None,
            };
            for id in reader.object_ids() {
                // An unreadable object must be absent from the index.
                let from_doc = reader.object(&id).ok().flatten();
                count += usize::from(from_doc.is_some());
                let indexed = self.index.get(&id);
                if from_doc.as_ref() != indexed {
                    return Err(format!(
                        "object {id}: document has {from_doc:?}, index has {indexed:?}"
                    ));
                }
            }
        }
        if count != self.index.len() {
            return Err(format!(
                "documents hold {count} objects, index {}",
                self.index.len()
            ));
        }
        Ok(())
    }
}
