//! Local writes: [`Space::apply`] of a [`WriteBatch`] — validated
//! completely against the current state, then written with one Automerge
//! transaction per touched shard, all committed or all rolled back — and
//! [`Space::set_property`].

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::transaction::{Transactable, Transaction};
use automerge::{ObjId, ObjType, ReadDoc, ROOT};

use super::batch::{Mutation, WriteBatch};
use super::codec::{self, Reader};
use super::error::ModelError;
use super::space::{Committed, Space};
use super::splice_run::SpliceRun;
use super::text::{check_range, splice_chars, CachedText};
use crate::data::{ObjectId, ObjectState, Value};

const MAX_TYPE_NAME: usize = 128;

impl Space {
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
        let runs = self.write_to_documents(&batch)?;
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
        let spliced = self.splice_index_texts(runs, &states);
        for m in batch.mutations {
            let id = m.object();
            match &m {
                Mutation::SpliceText { .. } => {}
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
        for state in spliced {
            self.index.upsert(state);
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
                        let spliced = splice_chars(t, *pos, *delete, insert);
                        debug_assert!(spliced, "the range was checked against its length");
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

    /// Keeps the index's text current through the splice runs the documents
    /// were written with ([`SpliceRun`]), in place where it can (`Index::edit_text`);
    /// returns the new states of the objects spliced whose text a field
    /// index covers. The others — an object whose text already
    /// lags, or that the batch also changes otherwise (its state in
    /// `states`) — are marked stale, re-read from their document when next
    /// read or saved. Re-reading instead cost a long document's whole text
    /// at every save (~1.7 ms natively for 108,000 characters, against
    /// ~14 µs for the keystroke's write).
    fn splice_index_texts(
        &mut self,
        runs: Vec<SpliceRun<'_>>,
        states: &HashMap<ObjectId, ObjectState>,
    ) -> Vec<ObjectState> {
        let mut copies: HashMap<ObjectId, ObjectState> = HashMap::new();
        for run in runs {
            let id = run.id;
            if states.contains_key(&id) {
                self.stale_text.insert(id);
                continue;
            }
            if self.stale_text.contains(&id) {
                continue;
            }
            let (pos, delete, insert) = (run.pos, run.delete, &run.insert);
            if !copies.contains_key(&id)
                && self.index.edit_text(&id, run.field, |text| {
                    splice_chars(text, pos, delete, insert)
                })
            {
                continue;
            }
            // A field index covers the field (or the edit failed): a new
            // state, upserted below.
            let copy = match copies.entry(id) {
                std::collections::hash_map::Entry::Occupied(c) => Some(c.into_mut()),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    self.index.get(&id).cloned().map(|s| slot.insert(s))
                }
            };
            let done = match copy.and_then(|s| s.fields.get_mut(run.field)) {
                Some(Value::Text(text)) => splice_chars(text, run.pos, run.delete, &run.insert),
                _ => false,
            };
            if !done {
                self.stale_text.insert(id);
            }
        }
        copies
            .into_values()
            .filter(|s| !self.stale_text.contains(&s.id))
            .collect()
    }

    /// Writes the batch into the shard documents: one transaction per touched
    /// shard, all committed or all rolled back. Returns the splice runs it
    /// wrote, in the batch's order for each object (the index follows them).
    fn write_to_documents<'b>(
        &mut self,
        batch: &'b WriteBatch,
    ) -> Result<Vec<SpliceRun<'b>>, ModelError> {
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
        // Fields this batch wrote before the mutation at hand: their text
        // objects are new, so the cache does not apply to them. Only a batch
        // that splices asks (collecting them for every field created cost
        // ~5 % of a batch of creates in the browser's profile).
        let splices = batch
            .mutations
            .iter()
            .any(|m| matches!(m, Mutation::SpliceText { .. }));
        let mut written = splices.then(HashSet::new);
        let mut runs = Vec::new();
        let result = txs.iter_mut().try_for_each(|(tx, mutations)| {
            write_shard(tx, mutations, &self.text_objs, &mut written, &mut runs)
        });
        match result {
            Ok(()) => {
                for (tx, _) in txs {
                    tx.commit();
                }
                Ok(runs)
            }
            Err(e) => {
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
}

/// Writes one shard's mutations into its transaction, consecutive splices of
/// one field as one (`splice_run`), and adds the runs written to `runs`.
/// `written` (kept only when the batch splices) holds the fields the batch
/// wrote so far: their text objects are new, so the cache does not apply.
fn write_shard<'b>(
    tx: &mut Transaction<'_>,
    mutations: &[&'b Mutation],
    text_objs: &HashMap<ObjectId, Vec<CachedText>>,
    written: &mut Option<HashSet<(ObjectId, &'b str)>>,
    runs: &mut Vec<SpliceRun<'b>>,
) -> Result<(), ModelError> {
    // The run being gathered, and its field's text object when the cache
    // knows it.
    let mut run: Option<(SpliceRun<'b>, Option<&ObjId>)> = None;
    for m in mutations {
        let next = SpliceRun::of(m);
        if let (Some((open, _)), Some(next)) = (&mut run, &next) {
            if open.absorb(next) {
                continue;
            }
        }
        if let Some((done, text)) = run.take() {
            write_splice(tx, &done, text)?;
            runs.push(done);
        }
        if let Some(next) = next {
            let fresh = written
                .as_ref()
                .is_some_and(|w| w.contains(&(next.id, next.field)));
            let text = match fresh {
                true => None,
                false => text_objs
                    .get(&next.id)
                    .and_then(|fs| fs.iter().find(|c| c.field == next.field))
                    .map(|c| &c.obj),
            };
            run = Some((next, text));
            continue;
        }
        if let Some(written) = written.as_mut() {
            match m {
                Mutation::Create { id, fields, .. } => {
                    written.extend(fields.keys().map(|f| (*id, f.as_str())))
                }
                Mutation::Set { id, field, .. } | Mutation::Remove { id, field } => {
                    written.insert((*id, field.as_str()));
                }
                Mutation::Delete { .. } | Mutation::SpliceText { .. } => {}
            }
        }
        write_mutation(tx, m)?;
    }
    if let Some((done, text)) = run {
        write_splice(tx, &done, text)?;
        runs.push(done);
    }
    Ok(())
}

/// Writes one mutation.
fn write_mutation(tx: &mut Transaction<'_>, m: &Mutation) -> Result<(), ModelError> {
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
        Mutation::SpliceText { .. } => {
            if let Some(run) = SpliceRun::of(m) {
                write_splice(tx, &run, None)?;
            }
        }
    }
    Ok(())
}

/// Writes one run of splices; `text` is its field's text object when known.
fn write_splice(
    tx: &mut Transaction<'_>,
    run: &SpliceRun<'_>,
    text: Option<&ObjId>,
) -> Result<(), ModelError> {
    let delete = run.delete as isize;
    if let Some(text) = text {
        tx.splice_text(text, run.pos, delete, &run.insert)?;
        return Ok(());
    }
    match (Reader {
        doc: tx,
        heads: None,
    })
    .field_obj(&run.id, run.field)?
    {
        Some((automerge::Value::Object(ObjType::Text), text)) => {
            tx.splice_text(&text, run.pos, delete, &run.insert)?;
        }
        _ => {
            return Err(ModelError::NotText {
                id: run.id,
                field: run.field.to_owned(),
                found: "non-text",
            })
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
