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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use automerge::transaction::{Transactable, Transaction};
use automerge::{
    ActorId, Change, ChangeHash, Cursor, ObjId, ObjType, PatchAction, Prop, ReadDoc, ROOT,
};

use super::batch::{Mutation, WriteBatch};
use super::codec::{self, Reader};
use super::error::ModelError;
use super::shard::Shard;
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
const MAX_TYPE_NAME: usize = 128;

/// A point in a space's history: the heads of each shard document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Heads {
    /// `(shard, head)` pairs, sorted.
    pub entries: Vec<(u16, ChangeHash)>,
}

impl Heads {
    fn of_shard(&self, shard: usize) -> Vec<ChangeHash> {
        self.entries
            .iter()
            .filter(|(s, _)| usize::from(*s) == shard)
            .map(|(_, h)| *h)
            .collect()
    }
}

/// Changes of one shard, in Automerge's binary change format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardChanges {
    pub shard: u16,
    pub changes: Vec<Vec<u8>>,
}

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

/// A text field's Automerge object and its length in code points.
pub(crate) struct CachedText {
    field: String,
    obj: ObjId,
    len: usize,
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
    events: VecDeque<SpaceEvent>,
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

    // ---------------------------------------------------------------- writes

    /// Applies a batch atomically: every mutation is validated first and an
    /// invalid one rejects the whole batch, leaving the space untouched.
    pub fn apply(&mut self, mut batch: WriteBatch) -> Result<Committed, ModelError> {
        if batch.is_empty() {
            return Ok(Committed::default());
        }
        for m in &mut batch.mutations {
            match m {
                Mutation::Create { fields, .. } => fields
                    .values_mut()
                    .for_each(|v| codec::normalize_refs(v, self.id)),
                Mutation::Set { value, .. } => codec::normalize_refs(value, self.id),
                _ => {}
            }
        }
        let (new_states, text_lens) = self.validate(&batch)?;
        self.write_to_documents(&batch)?;
        for (id, field, len) in text_lens {
            if let Some(cached) = self
                .text_objs
                .get_mut(&id)
                .and_then(|fs| fs.iter_mut().find(|c| c.field == field))
            {
                cached.len = len;
            }
        }

        let mut changed = Vec::with_capacity(new_states.len());
        let mut seen = HashSet::with_capacity(new_states.len());
        let mut states: HashMap<ObjectId, ObjectState> = new_states.into_iter().collect();
        for m in batch.mutations {
            let id = m.object();
            match &m {
                Mutation::SpliceText { .. } => {
                    self.stale_text.insert(id);
                }
                Mutation::Set { field, .. } | Mutation::Remove { field, .. } => {
                    if let Some(fields) = self.text_objs.get_mut(&id) {
                        fields.retain(|c| c.field != *field);
                    }
                }
                Mutation::Delete { .. } => {}
                Mutation::Create { .. } => {}
            }
            if seen.insert(id) {
                changed.push(id);
            }
            if let Mutation::Create {
                id,
                type_name,
                fields,
            } = m
            {
                if !states.contains_key(&id) {
                    self.index.upsert(ObjectState {
                        id,
                        type_name,
                        fields,
                        deleted: false,
                    });
                }
            }
        }
        for id in &changed {
            let shard = self.shard_of(id);
            self.shards[shard].unsaved.insert(*id);
            if let Some(state) = states.remove(id) {
                self.index.upsert(state);
            }
        }
        self.notify_live(&changed)?;
        Ok(Committed { changed })
    }

    /// Checks every mutation against the current state and computes the new
    /// state of every object the batch changes (text contents excepted: those
    /// are re-read from the document later).
    /// Also returns the final length of every text field the batch splices
    /// that existed before it (for the text cache).
    #[allow(clippy::type_complexity)]
    fn validate(
        &mut self,
        batch: &WriteBatch,
    ) -> Result<(Vec<(ObjectId, ObjectState)>, Vec<(ObjectId, String, usize)>), ModelError> {
        let mut next: HashMap<ObjectId, ObjectState> = HashMap::new();
        // Fields whose value this batch wrote: their content is known exactly.
        let mut written: HashSet<(ObjectId, &str)> = HashSet::new();
        let mut created: HashSet<ObjectId> = HashSet::new();
        // Length of each text field the batch splices, as of the mutation at hand.
        let mut text_lens: HashMap<(ObjectId, &str), usize> = HashMap::new();
        for m in &batch.mutations {
            let id = m.object();
            if let Mutation::Create {
                type_name, fields, ..
            } = m
            {
                if created.contains(&id) || self.index.get(&id).is_some() {
                    return Err(ModelError::AlreadyExists { id });
                }
                if type_name.is_empty() || type_name.chars().count() > MAX_TYPE_NAME {
                    return Err(ModelError::InvalidTypeName {
                        name: type_name.chars().take(MAX_TYPE_NAME).collect(),
                    });
                }
                for (k, v) in fields {
                    codec::check_key(k)?;
                    codec::check_value(v)?;
                }
                // No copy of the new state: `apply` moves the fields into the
                // index after the write, unless a later mutation changes them.
                created.insert(id);
                continue;
            }
            if created.contains(&id) && !next.contains_key(&id) {
                next.insert(id, created_state(batch, id));
            }
            if let Mutation::SpliceText {
                field,
                pos,
                delete,
                insert,
                ..
            } = m
            {
                // Splices need no copy of the object: only its field's kind and length.
                let key = (id, field.as_str());
                let exact = created.contains(&id) || written.contains(&key);
                let kind = {
                    let state = next
                        .get(&id)
                        .or_else(|| self.index.get(&id))
                        .ok_or_else(|| ModelError::NotFound { id })?;
                    if state.deleted {
                        return Err(ModelError::Deleted { id });
                    }
                    match state.fields.get(field) {
                        Some(Value::Text(t)) if exact => Ok(Some(t.chars().count())),
                        Some(Value::Text(_)) => Ok(None),
                        Some(other) => Err(other.kind()),
                        None => Err("missing"),
                    }
                };
                let len = match (text_lens.get(&key), kind) {
                    (_, Err(found)) => {
                        return Err(ModelError::NotText {
                            id,
                            field: field.clone(),
                            found,
                        })
                    }
                    (Some(len), Ok(_)) => *len,
                    (None, Ok(Some(len))) => len,
                    (None, Ok(None)) => self.text_len(&id, field)?,
                };
                check_range(id, field, *pos, *delete, len)?;
                if exact {
                    if let Some(Value::Text(t)) =
                        next.get_mut(&id).and_then(|s| s.fields.get_mut(field))
                    {
                        let (head, tail) = split_chars(t, *pos, *delete);
                        *t = format!("{head}{insert}{tail}");
                    }
                }
                text_lens.insert(key, len - delete + insert.chars().count());
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = next.entry(id) {
                let current = self
                    .index
                    .get(&id)
                    .ok_or_else(|| ModelError::NotFound { id })?;
                slot.insert(current.clone());
            }
            let state = next.get_mut(&id).expect("inserted above");
            if state.deleted {
                return Err(ModelError::Deleted { id });
            }
            match m {
                Mutation::Create { .. } => unreachable!("handled above"),
                Mutation::Set { field, value, .. } => {
                    codec::check_key(field)?;
                    codec::check_value(value)?;
                    state.fields.insert(field.clone(), value.clone());
                    written.insert((id, field));
                    text_lens.remove(&(id, field.as_str()));
                }
                Mutation::Remove { field, .. } => {
                    codec::check_key(field)?;
                    state.fields.remove(field);
                    written.insert((id, field));
                    text_lens.remove(&(id, field.as_str()));
                }
                Mutation::Delete { .. } => state.deleted = true,
                Mutation::SpliceText { .. } => unreachable!("handled above"),
            }
        }
        let lens = text_lens
            .into_iter()
            .filter(|(key, _)| !created.contains(&key.0) && !written.contains(key))
            .map(|((id, field), len)| (id, field.to_owned(), len))
            .collect();
        let states = next.into_iter().collect();
        Ok((states, lens))
    }

    /// Writes the batch into the shard documents: one transaction per touched
    /// shard, all committed or all rolled back.
    fn write_to_documents(&mut self, batch: &WriteBatch) -> Result<(), ModelError> {
        let mut by_shard: BTreeMap<usize, Vec<&Mutation>> = BTreeMap::new();
        for m in &batch.mutations {
            by_shard
                .entry(self.shard_of(&m.object()))
                .or_default()
                .push(m);
        }
        for &shard in by_shard.keys() {
            self.shards[shard].doc(&self.id_text, &self.actor)?;
        }
        let mut txs: Vec<(Transaction<'_>, Vec<&Mutation>)> = Vec::with_capacity(by_shard.len());
        let mut wanted = by_shard.into_iter().peekable();
        for (i, shard) in self.shards.iter_mut().enumerate() {
            if wanted.peek().map(|(s, _)| *s) != Some(i) {
                continue;
            }
            let (_, mutations) = wanted.next().expect("peeked");
            let doc = shard.loaded_doc_mut().expect("loaded above");
            txs.push((doc.transaction(), mutations));
        }
        let mut failure = None;
        // Fields this batch wrote before the mutation at hand: their text
        // objects are new, so the cache does not apply to them.
        let mut written: HashSet<(ObjectId, &str)> = HashSet::new();
        'outer: for (tx, mutations) in txs.iter_mut() {
            for m in mutations.iter() {
                let text = match m {
                    Mutation::SpliceText { id, field, .. }
                        if !written.contains(&(*id, field.as_str())) =>
                    {
                        self.text_objs
                            .get(id)
                            .and_then(|fs| fs.iter().find(|c| c.field == *field))
                            .map(|c| &c.obj)
                    }
                    _ => None,
                };
                match m {
                    Mutation::Create { id, fields, .. } => {
                        written.extend(fields.keys().map(|f| (*id, f.as_str())))
                    }
                    Mutation::Set { id, field, .. } | Mutation::Remove { id, field } => {
                        written.insert((*id, field.as_str()));
                    }
                    Mutation::Delete { .. } | Mutation::SpliceText { .. } => {}
                }
                if let Err(e) = write_mutation(tx, m, text) {
                    failure = Some(e);
                    break 'outer;
                }
            }
        }
        match failure {
            None => {
                for (tx, _) in txs {
                    tx.commit();
                }
                Ok(())
            }
            Some(e) => {
                for (tx, _) in txs {
                    tx.rollback();
                }
                Err(e)
            }
        }
    }

    /// Sets a property of the space (its name, …).
    pub fn set_property(&mut self, name: &str, value: Value) -> Result<(), ModelError> {
        codec::check_key(name)?;
        codec::check_value(&value)?;
        let doc = self.shards[0].doc(&self.id_text, &self.actor)?;
        let mut tx = doc.transaction();
        let result = (|| {
            let props = match tx.get(ROOT, codec::PROPERTIES_KEY)? {
                Some((automerge::Value::Object(ObjType::Map), id)) => id,
                _ => tx.put_object(ROOT, codec::PROPERTIES_KEY, ObjType::Map)?,
            };
            codec::put_value(&mut tx, &props, name, &value)
        })();
        match result {
            Ok(()) => {
                tx.commit();
            }
            Err(e) => {
                tx.rollback();
                return Err(e.into());
            }
        }
        self.properties.insert(name.to_owned(), value);
        self.shards[0].properties_unsaved = true;
        Ok(())
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

    /// Reads a text field's content.
    pub fn text(&mut self, id: &ObjectId, field: &str) -> Result<String, ModelError> {
        let state = self.get(id)?.ok_or(ModelError::NotFound { id: *id })?;
        match state.fields.get(field) {
            Some(Value::Text(t)) => Ok(t.clone()),
            Some(other) => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: other.kind(),
            }),
            None => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: "missing",
            }),
        }
    }

    /// A stable cursor at `pos` of a text field: it keeps pointing at the same
    /// character while others edit around it.
    pub fn text_cursor(
        &mut self,
        id: &ObjectId,
        field: &str,
        pos: usize,
    ) -> Result<String, ModelError> {
        let (shard, text) = self.text_obj(id, field)?;
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        let len = doc.length(&text);
        if pos > len {
            return Err(ModelError::TextRange {
                id: *id,
                field: field.to_owned(),
                pos,
                delete: 0,
                len,
            });
        }
        Ok(doc.get_cursor(&text, pos, None)?.to_string())
    }

    /// Where a cursor from [`text_cursor`](Self::text_cursor) points now.
    pub fn text_cursor_position(
        &mut self,
        id: &ObjectId,
        field: &str,
        cursor: &str,
    ) -> Result<usize, ModelError> {
        let parsed = Cursor::try_from(cursor).map_err(|e| ModelError::InvalidCursor {
            cursor: cursor.chars().take(64).collect(),
            reason: e.to_string(),
        })?;
        let (shard, text) = self.text_obj(id, field)?;
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        doc.get_cursor_position(&text, &parsed, None)
            .map_err(|e| ModelError::InvalidCursor {
                cursor: cursor.chars().take(64).collect(),
                reason: e.to_string(),
            })
    }

    fn text_obj(&mut self, id: &ObjectId, field: &str) -> Result<(usize, ObjId), ModelError> {
        let shard = self.shard_of(id);
        Ok((shard, self.cached_text(shard, id, field)?.obj.clone()))
    }

    /// The cached text object and length of a field, looked up on first use.
    fn cached_text(
        &mut self,
        shard: usize,
        id: &ObjectId,
        field: &str,
    ) -> Result<&CachedText, ModelError> {
        let known = self
            .text_objs
            .get(id)
            .and_then(|fs| fs.iter().position(|c| c.field == field));
        let at = match known {
            Some(at) => at,
            None => {
                let obj = self.lookup_text_obj(shard, id, field)?;
                let len = self.shards[shard]
                    .doc(&self.id_text, &self.actor)?
                    .length(&obj);
                let fields = self.text_objs.entry(*id).or_default();
                fields.push(CachedText {
                    field: field.to_owned(),
                    obj,
                    len,
                });
                fields.len() - 1
            }
        };
        Ok(&self.text_objs[id][at])
    }

    fn lookup_text_obj(
        &mut self,
        shard: usize,
        id: &ObjectId,
        field: &str,
    ) -> Result<ObjId, ModelError> {
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        let reader = Reader {
            doc: &*doc,
            heads: None,
        };
        if !reader.exists(id)? {
            return Err(ModelError::NotFound { id: *id });
        }
        match reader.field_obj(id, field)? {
            Some((automerge::Value::Object(ObjType::Text), text)) => Ok(text),
            Some((automerge::Value::Object(t), _)) => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: obj_type_name(t),
            }),
            Some(_) => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: "scalar",
            }),
            None => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: "missing",
            }),
        }
    }

    fn text_len(&mut self, id: &ObjectId, field: &str) -> Result<usize, ModelError> {
        let shard = self.shard_of(id);
        Ok(self.cached_text(shard, id, field)?.len)
    }

    /// Re-reads from the documents the objects whose text lags in the index:
    /// just `only` when given, else all.
    fn refresh_text(&mut self, only: Option<&ObjectId>) -> Result<(), ModelError> {
        let ids: Vec<ObjectId> = match only {
            Some(id) if self.stale_text.contains(id) => vec![*id],
            Some(_) => return Ok(()),
            None => self.stale_text.iter().copied().collect(),
        };
        for id in ids {
            self.reload_object(&id)?;
            self.stale_text.remove(&id);
        }
        Ok(())
    }

    /// Reads one object back from its document into the index.
    pub(super) fn reload_object(&mut self, id: &ObjectId) -> Result<(), ModelError> {
        let shard = self.shard_of(id);
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        if let Some(state) = (Reader {
            doc: &*doc,
            heads: None,
        })
        .object(id)?
        {
            self.index.upsert(state);
        }
        Ok(())
    }

    // --------------------------------------------------------------- history

    /// The current point in history; pass it to [`get_at`](Self::get_at) or
    /// [`query_at`](Self::query_at) later.
    pub fn heads(&mut self) -> Result<Heads, ModelError> {
        let mut entries = Vec::new();
        for i in 0..self.shards.len() {
            let doc = self.shards[i].doc(&self.id_text, &self.actor)?;
            entries.extend(doc.get_heads().into_iter().map(|h| (i as u16, h)));
        }
        entries.sort();
        Ok(Heads { entries })
    }

    /// Checks that every head is a change of its shard, so a read at
    /// foreign or mistyped heads fails instead of answering "empty".
    fn check_heads(&mut self, heads: &Heads) -> Result<(), ModelError> {
        for (shard, hash) in &heads.entries {
            let shard = usize::from(*shard);
            if shard >= self.shards.len() {
                return Err(ModelError::UnknownHeads);
            }
            let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
            if doc.get_change_by_hash(hash).is_none() {
                return Err(ModelError::UnknownHeads);
            }
        }
        Ok(())
    }

    /// An object as it was at `heads`.
    pub fn get_at(
        &mut self,
        id: &ObjectId,
        heads: &Heads,
    ) -> Result<Option<ObjectState>, ModelError> {
        self.check_heads(heads)?;
        let shard = self.shard_of(id);
        let hs = heads.of_shard(shard);
        if hs.is_empty() {
            return Ok(None);
        }
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        Reader {
            doc: &*doc,
            heads: Some(&hs),
        }
        .object(id)
    }

    /// A query's result as it was at `heads`. This materializes the space as
    /// of then, so it costs a scan of the space.
    pub fn query_at(&mut self, query: &Query, heads: &Heads) -> Result<Vec<ObjectId>, ModelError> {
        self.check_heads(heads)?;
        let mut index = Index::new();
        for shard in 0..self.shards.len() {
            let hs = heads.of_shard(shard);
            if hs.is_empty() {
                continue;
            }
            let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
            let reader = Reader {
                doc: &*doc,
                heads: Some(&hs),
            };
            for id in reader.object_ids() {
                // Unreadable objects are left out, as in the index.
                if let Ok(Some(state)) = reader.object(&id) {
                    index.upsert(state);
                }
            }
        }
        Ok(index.run(query)?)
    }

    // ----------------------------------------------------------------- merge

    /// Changes this replica has that a replica at `their_heads` lacks.
    pub fn changes_since(&mut self, their_heads: &Heads) -> Result<Vec<ShardChanges>, ModelError> {
        let mut out = Vec::new();
        for shard in 0..self.shards.len() {
            let mut theirs = their_heads.of_shard(shard);
            let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
            // Same heads: nothing to send. Checked first because collecting
            // changes rebuilds them from the op set, a cost that grows with
            // the document (a seal after a one-field write would otherwise
            // pay it for every shard).
            let mut ours = doc.get_heads();
            ours.sort();
            theirs.sort();
            if ours == theirs {
                continue;
            }
            // Heads we don't know can't narrow the set; send what we have after the known ones.
            let known: Vec<ChangeHash> = theirs
                .into_iter()
                .filter(|h| doc.get_change_by_hash(h).is_some())
                .collect();
            let changes: Vec<Vec<u8>> = doc
                .get_changes(&known)
                .into_iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect();
            if !changes.is_empty() {
                out.push(ShardChanges {
                    shard: shard as u16,
                    changes,
                });
            }
        }
        Ok(out)
    }

    /// Merges changes from another replica. Malformed change bytes reject the
    /// whole call before anything is applied.
    pub fn apply_changes(&mut self, incoming: Vec<ShardChanges>) -> Result<Committed, ModelError> {
        let mut decoded: Vec<(usize, Vec<Change>)> = Vec::with_capacity(incoming.len());
        for sc in incoming {
            let shard = usize::from(sc.shard);
            if shard >= self.shards.len() {
                return Err(ModelError::NoSuchShard {
                    shard,
                    shard_count: self.shards.len(),
                });
            }
            let mut changes = Vec::with_capacity(sc.changes.len());
            for bytes in sc.changes {
                let change = Change::from_bytes(bytes).map_err(|e| ModelError::Corrupt {
                    reason: format!("a change from a peer does not decode: {e}"),
                })?;
                changes.push(change);
            }
            decoded.push((shard, changes));
        }
        let mut touched: Vec<ObjectId> = Vec::new();
        let mut seen = HashSet::new();
        let mut properties_touched = false;
        for (shard, changes) in decoded {
            let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
            let before = doc.get_heads();
            doc.apply_changes(changes)?;
            let after = doc.get_heads();
            if before == after {
                continue;
            }
            for patch in doc.diff(&before, &after) {
                let key = match (patch.path.first(), &patch.action) {
                    (Some((_, Prop::Map(key))), _) => key.clone(),
                    (None, PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key }) => {
                        key.clone()
                    }
                    _ => continue,
                };
                if key == codec::PROPERTIES_KEY {
                    properties_touched = true;
                } else if let Some(id) = codec::object_of_key(&key) {
                    if seen.insert(id) {
                        touched.push(id);
                    }
                }
            }
        }
        for id in &touched {
            self.text_objs.remove(id);
            if let Err(e) = self.reload_object(id) {
                self.index.remove(id);
                self.events.push_back(SpaceEvent::Unreadable {
                    object: *id,
                    reason: e.to_string(),
                });
            }
            self.stale_text.remove(id);
            let shard = self.shard_of(id);
            self.shards[shard].unsaved.insert(*id);
        }
        if properties_touched {
            let doc = self.shards[0].doc(&self.id_text, &self.actor)?;
            self.properties = Reader {
                doc: &*doc,
                heads: None,
            }
            .properties()?;
            self.shards[0].properties_unsaved = true;
        }
        self.notify_live(&touched)?;
        Ok(Committed { changed: touched })
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

    fn notify_live(&mut self, changed: &[ObjectId]) -> Result<(), ModelError> {
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

/// Writes one mutation; `text` is the known text object of a splice's field.
fn write_mutation(
    tx: &mut Transaction<'_>,
    m: &Mutation,
    text: Option<&ObjId>,
) -> Result<(), ModelError> {
    // Validation checked existence against the index; the document agrees
    // unless it is corrupt, so this is a cheap second line of defence.
    let exists = |tx: &Transaction<'_>, id: &ObjectId| -> Result<(), ModelError> {
        match (Reader {
            doc: tx,
            heads: None,
        })
        .exists(id)?
        {
            true => Ok(()),
            false => Err(ModelError::NotFound { id: *id }),
        }
    };
    match m {
        Mutation::Create {
            id,
            type_name,
            fields,
        } => codec::put_object(tx, id, type_name, fields)?,
        Mutation::Set { id, field, value } => {
            exists(tx, id)?;
            codec::put_field(tx, id, field, value)?;
        }
        Mutation::Remove { id, field } => {
            exists(tx, id)?;
            codec::remove_field(tx, id, field)?;
        }
        Mutation::Delete { id } => {
            exists(tx, id)?;
            codec::mark_deleted(tx, id)?;
        }
        Mutation::SpliceText {
            id,
            field,
            pos,
            delete,
            insert,
        } => {
            if let Some(text) = text {
                tx.splice_text(text, *pos, *delete as isize, insert)?;
                return Ok(());
            }
            match (Reader {
                doc: tx,
                heads: None,
            })
            .field_obj(id, field)?
            {
                Some((automerge::Value::Object(ObjType::Text), text)) => {
                    tx.splice_text(&text, *pos, *delete as isize, insert)?;
                }
                _ => {
                    return Err(ModelError::NotText {
                        id: *id,
                        field: field.clone(),
                        found: "non-text",
                    })
                }
            }
        }
    }
    Ok(())
}

/// The state an object created earlier in `batch` starts with.
fn created_state(batch: &WriteBatch, id: ObjectId) -> ObjectState {
    batch
        .mutations
        .iter()
        .find_map(|m| match m {
            Mutation::Create {
                id: i,
                type_name,
                fields,
            } if *i == id => Some(ObjectState {
                id,
                type_name: type_name.clone(),
                fields: fields.clone(),
                deleted: false,
            }),
            _ => None,
        })
        .expect("only called for objects the batch creates")
}

fn check_range(
    id: ObjectId,
    field: &str,
    pos: usize,
    delete: usize,
    len: usize,
) -> Result<(), ModelError> {
    match pos.checked_add(delete) {
        Some(end) if end <= len => Ok(()),
        _ => Err(ModelError::TextRange {
            id,
            field: field.to_owned(),
            pos,
            delete,
            len,
        }),
    }
}

/// Splits `text` around the code-point range `pos..pos + delete`.
fn split_chars(text: &str, pos: usize, delete: usize) -> (&str, &str) {
    let byte_at = |n: usize| {
        text.char_indices()
            .nth(n)
            .map(|(b, _)| b)
            .unwrap_or(text.len())
    };
    (&text[..byte_at(pos)], &text[byte_at(pos + delete)..])
}

fn obj_type_name(t: ObjType) -> &'static str {
    match t {
        ObjType::Map | ObjType::Table => "map",
        ObjType::List => "list",
        ObjType::Text => "text",
    }
}
