//! The index of current object state: every object by id, a type index,
//! and the field indexes and reverse references that are built on first use
//! and then kept current by every upsert. Running queries over it lives in
//! `planner.rs`.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::key::{total_cmp, total_eq, Key};
use crate::data::{ObjectId, ObjectState, StoredState, Value};

/// An equality + range index over one field: value → ids holding it.
pub(super) type FieldIndex = BTreeMap<Key, Bucket>;
/// Reverse references: target → (source, top-level field of the source).
type Backlinks = HashMap<ObjectId, BTreeSet<(ObjectId, String)>>;

/// The ids holding one value: inline while there is one (most values of a
/// high-cardinality field), a set beyond.
#[derive(Clone, Debug)]
pub(super) enum Bucket {
    One(ObjectId),
    Many(BTreeSet<ObjectId>),
}

impl Bucket {
    pub(super) fn len(&self) -> usize {
        match self {
            Bucket::One(_) => 1,
            Bucket::Many(ids) => ids.len(),
        }
    }

    pub(super) fn iter(&self) -> BucketIter<'_> {
        match self {
            Bucket::One(id) => BucketIter::One(Some(id)),
            Bucket::Many(ids) => BucketIter::Many(ids.iter()),
        }
    }

    fn insert(&mut self, id: ObjectId) {
        match self {
            Bucket::One(x) if *x == id => {}
            Bucket::One(x) => *self = Bucket::Many(BTreeSet::from([*x, id])),
            Bucket::Many(ids) => {
                ids.insert(id);
            }
        }
    }

    /// Removes `id`; true if the bucket is now empty.
    fn remove(&mut self, id: &ObjectId) -> bool {
        match self {
            Bucket::One(x) => x == id,
            Bucket::Many(ids) => {
                ids.remove(id);
                if ids.len() == 1 {
                    if let Some(last) = ids.first().copied() {
                        *self = Bucket::One(last);
                    }
                    return false;
                }
                ids.is_empty()
            }
        }
    }
}

pub(super) enum BucketIter<'a> {
    One(Option<&'a ObjectId>),
    Many(std::collections::btree_set::Iter<'a, ObjectId>),
}

impl<'a> Iterator for BucketIter<'a> {
    type Item = &'a ObjectId;
    fn next(&mut self) -> Option<&'a ObjectId> {
        match self {
            BucketIter::One(id) => id.take(),
            BucketIter::Many(it) => it.next(),
        }
    }
}

impl<'a> IntoIterator for &'a Bucket {
    type Item = &'a ObjectId;
    type IntoIter = BucketIter<'a>;
    fn into_iter(self) -> BucketIter<'a> {
        self.iter()
    }
}

/// A built field index and how many objects have the field (deleted ones
/// included), so an ascending order walk knows whether any match lacks it.
#[derive(Clone, Debug, Default)]
pub(super) struct FieldIdx {
    pub(super) values: FieldIndex,
    pub(super) present: usize,
}

/// Indexes built on first use and maintained by every later upsert.
#[derive(Clone, Debug, Default)]
pub(super) struct Lazy {
    pub(super) fields: HashMap<String, FieldIdx>,
    pub(super) backlinks: Option<Backlinks>,
}

/// One object in the index: its state as written, or as stored and decoded
/// the first time it is read (a space opens without decoding its objects).
#[derive(Clone, Debug)]
pub(super) enum Slot {
    Decoded(ObjectState),
    Stored {
        stored: StoredState,
        /// Boxed: most stored objects are never decoded, and the slot of
        /// each stays small.
        state: OnceCell<Box<ObjectState>>,
    },
}

impl Slot {
    fn state(&self, id: &ObjectId) -> &ObjectState {
        match self {
            Slot::Decoded(s) => s,
            Slot::Stored { stored, state } => state.get_or_init(|| Box::new(stored.decode(*id))),
        }
    }

    fn into_state(self, id: &ObjectId) -> ObjectState {
        match self {
            Slot::Decoded(s) => s,
            Slot::Stored { stored, state } => state
                .into_inner()
                .map_or_else(|| stored.decode(*id), |s| *s),
        }
    }

    fn type_name(&self) -> &str {
        match self {
            Slot::Decoded(s) => &s.type_name,
            Slot::Stored { stored, .. } => stored.type_name(),
        }
    }

    pub(super) fn deleted(&self) -> bool {
        match self {
            Slot::Decoded(s) => s.deleted,
            Slot::Stored { stored, .. } => stored.deleted(),
        }
    }

    /// One field's value, without decoding the others of a stored state.
    pub(super) fn field(&self, name: &str) -> Option<Cow<'_, Value>> {
        match self {
            Slot::Decoded(s) => s.fields.get(name).map(Cow::Borrowed),
            Slot::Stored { stored, state } => match state.get() {
                Some(s) => s.fields.get(name).map(Cow::Borrowed),
                None => stored.field(name).map(Cow::Owned),
            },
        }
    }
}

/// The current state of every object of a space, with secondary indexes.
///
/// Always maintained: the objects by id and a type index. An object opened
/// from storage is decoded when first read ([`Slot`]). Built lazily, on
/// the first query that can use them, then kept current by [`upsert`]:
/// one ordered index per filtered field (equality, `In` and ranges) and one
/// reverse-reference index (for `References`, `RefersTo` and incoming
/// traversal). An upsert costs a hash insert plus a type-set insert, plus
/// one ordered-map update per built field index whose value changed.
///
/// [`run`](Index::run) takes `&self`: the lazy indexes live in a `RefCell`
/// (the engine is single-threaded; an `Index` is `Send` but not `Sync`).
///
/// [`upsert`]: Index::upsert
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub(super) objects: HashMap<ObjectId, Slot>,
    pub(super) by_type: HashMap<String, BTreeSet<ObjectId>>,
    /// Soft-deleted ids, so exact index answers skip them without lookups.
    pub(super) deleted: BTreeSet<ObjectId>,
    pub(super) lazy: RefCell<Lazy>,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of `states` as a space opens them: stored, not decoded.
    #[cfg(test)]
    pub(crate) fn stored_from<'a>(states: impl IntoIterator<Item = &'a ObjectState>) -> Self {
        use crate::data::{skim_state, Reader, TypeNames};
        use std::sync::Arc;
        let mut bytes = Vec::new();
        let mut count = 0;
        for s in states {
            bytes.extend(postcard::to_stdvec(s).expect("plain data"));
            count += 1;
        }
        let chunk = Arc::new(bytes);
        let mut r = Reader::new(&chunk[..]);
        let mut types = TypeNames::default();
        let stored: Vec<_> = (0..count)
            .map(|_| skim_state(&chunk, 0, &mut r, &mut types).expect("written above"))
            .collect();
        Self::from_stored(count, stored)
    }

    /// Inserts or replaces an object's state; returns the previous state.
    /// Keeps the type index and every built secondary index current.
    pub fn upsert(&mut self, state: ObjectState) -> Option<ObjectState> {
        let id = state.id;
        let prev = self
            .objects
            .insert(id, Slot::Decoded(state))
            .map(|p| p.into_state(&id));
        let Some(Slot::Decoded(new)) = self.objects.get(&id) else {
            return prev;
        };
        track_type_and_deleted(
            &mut self.by_type,
            &mut self.deleted,
            id,
            prev.as_ref().map(|p| (p.type_name.as_str(), p.deleted)),
            (&new.type_name, new.deleted),
        );
        let lazy = self.lazy.get_mut();
        for (field, fi) in lazy.fields.iter_mut() {
            let old = prev.as_ref().and_then(|p| p.fields.get(field));
            update_field_index(fi, id, old, new.fields.get(field));
        }
        if let Some(bl) = lazy.backlinks.as_mut() {
            update_backlinks(bl, id, prev.as_ref(), Some(new));
        }
        prev
    }

    /// Edits an object's text field in place (typing: no copy of a long
    /// text per keystroke). `false`, with nothing changed, when the object
    /// or its text field is missing, when a field index covers the field
    /// (its keys would go stale: the caller [`upsert`](Self::upsert)s a new
    /// state instead) or when `edit` refused.
    pub fn edit_text(
        &mut self,
        id: &ObjectId,
        field: &str,
        edit: impl FnOnce(&mut String) -> bool,
    ) -> bool {
        if self.lazy.get_mut().fields.contains_key(field) {
            return false;
        }
        let Some(slot) = self.objects.get_mut(id) else {
            return false;
        };
        if let Slot::Stored { stored, state } = slot {
            let decoded = state.take().map_or_else(|| stored.decode(*id), |s| *s);
            *slot = Slot::Decoded(decoded);
        }
        let Slot::Decoded(state) = slot else {
            return false;
        };
        match state.fields.get_mut(field) {
            Some(Value::Text(text)) => edit(text),
            _ => false,
        }
    }

    /// An index of objects as stored, each decoded when first read; of
    /// states given twice for one id, the later one counts.
    pub(crate) fn from_stored(
        capacity: usize,
        states: impl IntoIterator<Item = (ObjectId, StoredState)>,
    ) -> Self {
        let mut objects = HashMap::with_capacity(capacity);
        for (id, stored) in states {
            objects.insert(
                id,
                Slot::Stored {
                    stored,
                    state: OnceCell::new(),
                },
            );
        }
        // The type sets and the deleted set are built from sorted ids:
        // bulk loads instead of one tree insert per object.
        let mut types: HashMap<&str, Vec<ObjectId>> = HashMap::new();
        let mut deleted = Vec::new();
        for (id, slot) in &objects {
            types.entry(slot.type_name()).or_default().push(*id);
            if slot.deleted() {
                deleted.push(*id);
            }
        }
        let by_type = types
            .into_iter()
            .map(|(t, mut ids)| {
                ids.sort_unstable();
                (t.to_owned(), ids.into_iter().collect())
            })
            .collect();
        deleted.sort_unstable();
        let deleted = deleted.into_iter().collect();
        Self {
            objects,
            by_type,
            deleted,
            lazy: RefCell::default(),
        }
    }

    /// Appends the encoding of `id`'s state to `out` (copying the stored
    /// bytes of an object not decoded); false if there is no such object.
    pub(crate) fn write_state(&self, id: &ObjectId, out: &mut Vec<u8>) -> bool {
        match self.objects.get(id) {
            Some(Slot::Stored { stored, .. }) => stored.write(id, out),
            Some(Slot::Decoded(s)) => {
                *out = postcard::to_extend(s, std::mem::take(out))
                    .expect("in-memory serialization of plain data cannot fail");
            }
            None => return false,
        }
        true
    }

    /// Every object's id, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = &ObjectId> {
        self.objects.keys()
    }

    /// Removes an object from the index altogether (deleting is soft and
    /// goes through `upsert` with `deleted: true`; this is for hosts that
    /// drop objects, e.g. when evicting a space).
    pub fn remove(&mut self, id: &ObjectId) -> Option<ObjectState> {
        let prev = self.objects.remove(id)?.into_state(id);
        remove_from_type(&mut self.by_type, &prev.type_name, id);
        self.deleted.remove(id);
        let lazy = self.lazy.get_mut();
        for (field, fi) in lazy.fields.iter_mut() {
            update_field_index(fi, *id, prev.fields.get(field), None);
        }
        if let Some(bl) = lazy.backlinks.as_mut() {
            update_backlinks(bl, *id, Some(&prev), None);
        }
        Some(prev)
    }

    /// An object's state (decoded now if it was not yet).
    pub fn get(&self, id: &ObjectId) -> Option<&ObjectState> {
        self.objects.get(id).map(|s| s.state(id))
    }

    /// Whether the index holds `id` (without decoding it).
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.objects.contains_key(id)
    }

    /// Number of objects, deleted ones included.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every object, deleted ones included, in no particular order (each
    /// decoded now if it was not yet).
    pub fn iter(&self) -> impl Iterator<Item = &ObjectState> {
        self.objects.iter().map(|(id, s)| s.state(id))
    }

    /// Fields that have a built index (for diagnostics and tests).
    pub fn indexed_fields(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lazy.borrow().fields.keys().cloned().collect();
        v.sort();
        v
    }

    /// Drops every lazily built index (they are rebuilt on demand).
    pub fn drop_lazy_indexes(&mut self) {
        *self.lazy.get_mut() = Lazy::default();
    }

    /// Builds the indexes of these fields that don't exist yet.
    pub(super) fn ensure_fields(&self, wanted: &[&str]) {
        if wanted.is_empty() {
            return;
        }
        let mut lazy = self.lazy.borrow_mut();
        for &field in wanted {
            if lazy.fields.contains_key(field) {
                continue;
            }
            // Stored states are not decoded: only this field is read.
            let pairs: Vec<(Cow<'_, Value>, ObjectId)> = self
                .objects
                .iter()
                .filter_map(|(id, s)| s.field(field).map(|v| (v, *id)))
                .collect();
            let present = pairs.len();
            let entries = match grouped_if_few(&pairs) {
                Some(groups) => buckets_of_few(groups),
                None => buckets_of_many(pairs),
            };
            // Sorted and distinct: a bulk build.
            let built = FieldIdx {
                values: entries.into_iter().collect(),
                present,
            };
            lazy.fields.insert(field.to_owned(), built);
        }
    }

    pub(super) fn ensure_backlinks(&self) {
        let mut lazy = self.lazy.borrow_mut();
        if lazy.backlinks.is_some() {
            return;
        }
        let mut bl = Backlinks::new();
        for (id, s) in &self.objects {
            update_backlinks(&mut bl, *id, None, Some(s.state(id)));
        }
        lazy.backlinks = Some(bl);
    }
}

/// A field with at most this many distinct values (a flag, a status) is
/// indexed by grouping, without sorting the values of every object.
#[cfg(not(test))]
const FEW_VALUES: usize = 16;
/// Tests exercise both ways on small sets.
#[cfg(test)]
const FEW_VALUES: usize = 2;

/// The ids of `pairs` grouped by value, in one pass, if they have at most
/// [`FEW_VALUES`] distinct values (`None` as soon as one more shows up).
fn grouped_if_few<'a>(
    pairs: &'a [(Cow<'_, Value>, ObjectId)],
) -> Option<Vec<(&'a Value, Vec<ObjectId>)>> {
    let mut groups: Vec<(&Value, Vec<ObjectId>)> = Vec::new();
    // The group of the last value seen first: runs of one value are common.
    let mut last = 0;
    for (v, id) in pairs {
        if groups
            .get(last)
            .is_none_or(|(known, _)| !total_eq(known, v))
        {
            last = match groups.iter().position(|(known, _)| total_eq(known, v)) {
                Some(i) => i,
                None if groups.len() == FEW_VALUES => return None,
                None => {
                    groups.push((v, Vec::new()));
                    groups.len() - 1
                }
            };
        }
        groups[last].1.push(*id);
    }
    Some(groups)
}

/// A field index's entries, ascending, from the ids grouped by value
/// ([`grouped_if_few`]): the groups ordered by value, each one's ids sorted.
fn buckets_of_few(mut groups: Vec<(&Value, Vec<ObjectId>)>) -> Vec<(Key, Bucket)> {
    groups.sort_unstable_by(|a, b| total_cmp(a.0, b.0));
    groups
        .into_iter()
        .map(|(value, mut ids)| {
            ids.sort_unstable();
            let bucket = match ids.as_slice() {
                [one] => Bucket::One(*one),
                // Sorted: a bulk build.
                _ => Bucket::Many(ids.into_iter().collect()),
            };
            (Key(value.clone()), bucket)
        })
        .collect()
}

/// A field index's entries, ascending: sorted by value then id, the runs of
/// one value made buckets.
fn buckets_of_many(mut pairs: Vec<(Cow<'_, Value>, ObjectId)>) -> Vec<(Key, Bucket)> {
    pairs.sort_unstable_by(|a, b| total_cmp(&a.0, &b.0).then(a.1.cmp(&b.1)));
    let mut entries: Vec<(Key, Bucket)> = Vec::new();
    let mut rest = &pairs[..];
    while let Some((first, id)) = rest.first() {
        let run = rest
            .iter()
            .position(|(v, _)| !total_eq(v, first))
            .unwrap_or(rest.len());
        let bucket = if run == 1 {
            Bucket::One(*id)
        } else {
            Bucket::Many(rest[..run].iter().map(|(_, id)| *id).collect())
        };
        entries.push((Key(first.clone().into_owned()), bucket));
        rest = &rest[run..];
    }
    entries
}

/// Moves `id` between type sets and in or out of the deleted set, from its
/// previous `(type, deleted)` to its new one.
fn track_type_and_deleted(
    by_type: &mut HashMap<String, BTreeSet<ObjectId>>,
    deleted: &mut BTreeSet<ObjectId>,
    id: ObjectId,
    prev: Option<(&str, bool)>,
    new: (&str, bool),
) {
    if prev.map(|p| p.0) != Some(new.0) {
        if let Some((p, _)) = prev {
            remove_from_type(by_type, p, &id);
        }
        match by_type.get_mut(new.0) {
            Some(set) => {
                set.insert(id);
            }
            None => {
                by_type.insert(new.0.to_owned(), BTreeSet::from([id]));
            }
        }
    }
    if new.1 != prev.is_some_and(|p| p.1) {
        if new.1 {
            deleted.insert(id);
        } else {
            deleted.remove(&id);
        }
    }
}

fn remove_from_type(
    by_type: &mut HashMap<String, BTreeSet<ObjectId>>,
    type_name: &str,
    id: &ObjectId,
) {
    if let Some(set) = by_type.get_mut(type_name) {
        set.remove(id);
        if set.is_empty() {
            by_type.remove(type_name);
        }
    }
}

fn update_field_index(fi: &mut FieldIdx, id: ObjectId, old: Option<&Value>, new: Option<&Value>) {
    match (old, new) {
        (None, None) => return,
        (Some(o), Some(n)) if total_eq(o, n) => return,
        (None, Some(_)) => fi.present += 1,
        (Some(_), None) => fi.present -= 1,
        _ => {}
    }
    let fi = &mut fi.values;
    if let Some(o) = old {
        let key = Key(o.clone());
        if fi.get_mut(&key).is_some_and(|b| b.remove(&id)) {
            fi.remove(&key);
        }
    }
    if let Some(n) = new {
        fi.entry(Key(n.clone()))
            .and_modify(|b| b.insert(id))
            .or_insert(Bucket::One(id));
    }
}

fn refs_of(state: Option<&ObjectState>) -> BTreeSet<(ObjectId, &str)> {
    let mut out = BTreeSet::new();
    if let Some(s) = state {
        for (field, v) in &s.fields {
            for_each_local_ref(v, &mut |t| {
                out.insert((t, field.as_str()));
            });
        }
    }
    out
}

fn update_backlinks(
    bl: &mut Backlinks,
    id: ObjectId,
    old: Option<&ObjectState>,
    new: Option<&ObjectState>,
) {
    let before = refs_of(old);
    let after = refs_of(new);
    for (t, f) in before.difference(&after) {
        if let Some(set) = bl.get_mut(t) {
            set.remove(&(id, (*f).to_owned()));
            if set.is_empty() {
                bl.remove(t);
            }
        }
    }
    for (t, f) in after.difference(&before) {
        bl.entry(*t).or_default().insert((id, (*f).to_owned()));
    }
}

/// Calls `f` with every local ref inside `v` (itself, list items, map values).
/// Refs to other spaces (`space: Some(..)`) are skipped.
pub(crate) fn for_each_local_ref(v: &Value, f: &mut impl FnMut(ObjectId)) {
    match v {
        Value::Ref(r) if r.space.is_none() => f(r.object),
        Value::List(items) => items.iter().for_each(|i| for_each_local_ref(i, f)),
        Value::Map(m) => m.values().for_each(|i| for_each_local_ref(i, f)),
        _ => {}
    }
}
