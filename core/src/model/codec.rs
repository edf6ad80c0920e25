//! How objects are laid out in an Automerge document, both ways.
//!
//! A shard document's root map holds its objects *flat*, one key per object
//! and one per field written after creation:
//!
//! ```text
//! root[<id>]                  = bytes   initial state: type name + non-text fields
//! root[<id> "\0" <field>]     = value   a field written after creation (and text
//!                                       fields, created with the object)
//! root[<id> "\0\0deleted"]    = true    once the object is deleted
//! root["space"]               = map     space properties (shard 0)
//! ```
//!
//! Creating an object is therefore **one** Automerge operation (plus one per
//! text field): Automerge charges per operation (ADR 0001 measures ~70k
//! instructions each), so this sets the create rate. Field keys written later
//! supersede the initial state because they causally follow the creation (no
//! replica can write to an object it has not seen); each field is its own
//! key, so concurrent writes to different fields merge and concurrent writes
//! to one field resolve by Automerge's deterministic winner, exactly as with
//! one map per object. Root keys are ordered, so an object's fields are one
//! range read (`<id>\0` .. `<id>\x01`). Field names cannot contain NUL's
//! role as separator because names starting with NUL are rejected and an id
//! never contains one.
//!
//! A written field value maps onto Automerge directly (scalars, lists, maps,
//! text), except references — a map with the single key [`REF_KEY`] whose
//! value is `"<object id>"` or `"<space id>/<object id>"` — and removed
//! fields, a map with the single key [`REMOVED_KEY`] (a tombstone in the
//! field's own key, so a removal and a concurrent write resolve like two
//! writes). Keys beginning with NUL are reserved and rejected from apps.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{
    ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, ScalarValueRef, Value as AmValue, ValueRef,
    ROOT,
};

use super::error::ModelError;
use super::init;
use crate::data::{ObjectId, ObjectState, Reference, SpaceId, Value, MAX_VALUE_DEPTH};

/// Separates an object id from a field name in a root key.
const FIELD_SEPARATOR: char = '\u{0}';
/// The field-key suffix marking a deleted object (NUL-led: no field has it).
const DELETED_SUFFIX: &str = "\u{0}deleted";
/// The one key of a map that marks a removed field.
pub(crate) const REMOVED_KEY: &str = "\u{0}removed";
/// The one key of a map that encodes a [`Reference`].
pub(crate) const REF_KEY: &str = "\u{0}ref";
/// The root key under which space properties live (in shard 0). It cannot
/// collide with an object id, which is 26 base32hex characters.
pub(crate) const PROPERTIES_KEY: &str = "space";

/// Checks a field name or map key an app supplied.
pub(crate) fn check_key(key: &str) -> Result<(), ModelError> {
    if key.is_empty() || key.starts_with('\u{0}') {
        return Err(ModelError::InvalidFieldName {
            name: key.chars().take(64).collect(),
        });
    }
    Ok(())
}

/// Checks every map key inside a value.
pub(crate) fn check_value(value: &Value) -> Result<(), ModelError> {
    check_nested(value, 0)
}

fn check_nested(value: &Value, depth: usize) -> Result<(), ModelError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(ModelError::TooDeep {
            max: MAX_VALUE_DEPTH,
        });
    }
    match value {
        Value::List(items) => items.iter().try_for_each(|v| check_nested(v, depth + 1)),
        Value::Map(map) => map.iter().try_for_each(|(k, v)| {
            check_key(k)?;
            check_nested(v, depth + 1)
        }),
        _ => Ok(()),
    }
}

/// Rewrites references to `own` space as local ones, so one object has one
/// spelling of a reference to it.
pub(crate) fn normalize_refs(value: &mut Value, own: SpaceId) {
    match value {
        Value::Ref(r) if r.space == Some(own) => r.space = None,
        Value::List(items) => items.iter_mut().for_each(|v| normalize_refs(v, own)),
        Value::Map(map) => map.values_mut().for_each(|v| normalize_refs(v, own)),
        _ => {}
    }
}

fn encode_ref(r: &Reference) -> String {
    match r.space {
        None => r.object.to_string(),
        Some(space) => format!("{space}/{}", r.object),
    }
}

fn decode_ref(text: &str) -> Result<Reference, ModelError> {
    match text.split_once('/') {
        None => Ok(Reference::local(text.parse()?)),
        Some((space, object)) => Ok(Reference::remote(
            space.parse::<SpaceId>()?,
            object.parse()?,
        )),
    }
}

fn scalar(value: &Value) -> Option<ScalarValue> {
    Some(match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Int(n) => ScalarValue::Int(*n),
        Value::Float(f) => ScalarValue::F64(*f),
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        Value::Bytes(b) => ScalarValue::Bytes(b.clone()),
        Value::List(_) | Value::Map(_) | Value::Ref(_) | Value::Text(_) => return None,
    })
}

/// Writes `value` at `prop` of map `obj` (replacing what was there).
pub(crate) fn put_value<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    prop: &str,
    value: &Value,
) -> Result<(), automerge::AutomergeError> {
    if let Some(s) = scalar(value) {
        return tx.put(obj, prop, s);
    }
    match value {
        Value::List(items) => {
            let list = tx.put_object(obj, prop, ObjType::List)?;
            fill_list(tx, &list, items)
        }
        Value::Map(map) => {
            let m = tx.put_object(obj, prop, ObjType::Map)?;
            fill_map(tx, &m, map)
        }
        Value::Ref(r) => {
            let m = tx.put_object(obj, prop, ObjType::Map)?;
            tx.put(&m, REF_KEY, encode_ref(r))
        }
        Value::Text(s) => {
            let text = tx.put_object(obj, prop, ObjType::Text)?;
            tx.splice_text(&text, 0, 0, s)
        }
        _ => unreachable!("scalars handled above"),
    }
}

fn fill_map<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    map: &BTreeMap<String, Value>,
) -> Result<(), automerge::AutomergeError> {
    map.iter().try_for_each(|(k, v)| put_value(tx, obj, k, v))
}

fn fill_list<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    items: &[Value],
) -> Result<(), automerge::AutomergeError> {
    for (i, item) in items.iter().enumerate() {
        if let Some(s) = scalar(item) {
            tx.insert(list, i, s)?;
            continue;
        }
        match item {
            Value::List(inner) => {
                let l = tx.insert_object(list, i, ObjType::List)?;
                fill_list(tx, &l, inner)?;
            }
            Value::Map(map) => {
                let m = tx.insert_object(list, i, ObjType::Map)?;
                fill_map(tx, &m, map)?;
            }
            Value::Ref(r) => {
                let m = tx.insert_object(list, i, ObjType::Map)?;
                tx.put(&m, REF_KEY, encode_ref(r))?;
            }
            Value::Text(s) => {
                let t = tx.insert_object(list, i, ObjType::Text)?;
                tx.splice_text(&t, 0, 0, s)?;
            }
            _ => unreachable!("scalars handled above"),
        }
    }
    Ok(())
}

/// The root key of a field of an object.
pub(crate) fn field_key(id: &ObjectId, field: &str) -> String {
    format!("{id}{FIELD_SEPARATOR}{field}")
}

/// The root key whose presence marks an object deleted.
pub(crate) fn deleted_key(id: &ObjectId) -> String {
    field_key(id, DELETED_SUFFIX)
}

/// The object a root key belongs to, if it is an object or field key.
pub(crate) fn object_of_key(key: &str) -> Option<ObjectId> {
    key.split(FIELD_SEPARATOR).next()?.parse().ok()
}

/// Writes a new object: its initial state and its text fields.
pub(crate) fn put_object<T: Transactable>(
    tx: &mut T,
    id: &ObjectId,
    type_name: &str,
    fields: &BTreeMap<String, Value>,
) -> Result<(), automerge::AutomergeError> {
    let bytes = init::encode(
        type_name,
        fields.iter().filter(|(_, v)| !matches!(v, Value::Text(_))),
    );
    tx.put(ROOT, id.to_string(), ScalarValue::Bytes(bytes))?;
    for (name, value) in fields {
        if let Value::Text(_) = value {
            put_value(tx, &ROOT, &field_key(id, name), value)?;
        }
    }
    Ok(())
}

/// Writes field `field` of object `id`.
pub(crate) fn put_field<T: Transactable>(
    tx: &mut T,
    id: &ObjectId,
    field: &str,
    value: &Value,
) -> Result<(), automerge::AutomergeError> {
    put_value(tx, &ROOT, &field_key(id, field), value)
}

/// Marks field `field` of object `id` as removed.
pub(crate) fn remove_field<T: Transactable>(
    tx: &mut T,
    id: &ObjectId,
    field: &str,
) -> Result<(), automerge::AutomergeError> {
    let tombstone = tx.put_object(ROOT, field_key(id, field), ObjType::Map)?;
    tx.put(&tombstone, REMOVED_KEY, true)
}

/// Marks object `id` as deleted.
pub(crate) fn mark_deleted<T: Transactable>(
    tx: &mut T,
    id: &ObjectId,
) -> Result<(), automerge::AutomergeError> {
    tx.put(ROOT, deleted_key(id), true)
}

/// Reads a document at the current state or at `heads`.
pub(crate) struct Reader<'a, D: ReadDoc> {
    pub doc: &'a D,
    pub heads: Option<&'a [ChangeHash]>,
}

impl<D: ReadDoc> Reader<'_, D> {
    fn get(
        &self,
        obj: &ObjId,
        prop: &str,
    ) -> Result<Option<(AmValue<'_>, ObjId)>, automerge::AutomergeError> {
        match self.heads {
            None => self.doc.get(obj, prop),
            Some(h) => self.doc.get_at(obj, prop, h),
        }
    }

    /// Whether object `id` exists.
    pub fn exists(&self, id: &ObjectId) -> Result<bool, ModelError> {
        Ok(self.get(&ROOT, &id.to_string())?.is_some())
    }

    /// The Automerge value of field `name` of object `id` written after
    /// creation (text fields and updates; not fields only in the initial state).
    pub fn field_obj(
        &self,
        id: &ObjectId,
        name: &str,
    ) -> Result<Option<(AmValue<'_>, ObjId)>, ModelError> {
        Ok(self.get(&ROOT, &field_key(id, name))?)
    }

    /// Materializes one object.
    pub fn object(&self, id: &ObjectId) -> Result<Option<ObjectState>, ModelError> {
        let Some((init, _)) = self.get(&ROOT, &id.to_string())? else {
            return Ok(None);
        };
        let bytes = match &init {
            AmValue::Scalar(s) => match s.as_ref() {
                ScalarValue::Bytes(b) => Some(b.as_slice()),
                _ => None,
            },
            AmValue::Object(_) => None,
        };
        let mut object = initial_state(id, bytes)?;
        let prefix = format!("{id}{FIELD_SEPARATOR}");
        let end = format!("{id}\u{1}");
        let range = match self.heads {
            None => self.doc.map_range(ROOT, prefix.clone()..end),
            Some(h) => self.doc.map_range_at(ROOT, prefix.clone()..end, h),
        };
        for item in range {
            if let Some(name) = item.key.strip_prefix(prefix.as_str()) {
                self.add_field(&mut object, name, item.value.clone(), &item.id())?;
            }
        }
        Ok(Some(object))
    }

    /// A key written after creation, read into `object`: a field, its
    /// removal, or the deletion mark.
    fn add_field(
        &self,
        object: &mut ObjectState,
        name: &str,
        value: ValueRef<'_>,
        field_id: &ObjId,
    ) -> Result<(), ModelError> {
        if name == DELETED_SUFFIX {
            object.deleted = matches!(value, ValueRef::Scalar(ScalarValueRef::Boolean(true)));
            return Ok(());
        }
        if name.starts_with('\u{0}') {
            return Ok(());
        }
        if matches!(value, ValueRef::Object(ObjType::Map))
            && self.get(field_id, REMOVED_KEY)?.is_some()
        {
            object.fields.remove(name);
            return Ok(());
        }
        let value = self.value(value, field_id, 0)?;
        object.fields.insert(name.to_owned(), value);
        Ok(())
    }

    /// Every object of the document, in one pass over its root keys (an
    /// object's keys are adjacent: `<id>`, then `<id>\0...`), reading each
    /// as [`object`](Self::object) does. An object that cannot be read
    /// comes with its error.
    pub fn all_objects(&self) -> Vec<(ObjectId, Result<ObjectState, ModelError>)> {
        let range = match self.heads {
            None => self.doc.map_range(ROOT, ..),
            Some(h) => self.doc.map_range_at(ROOT, .., h),
        };
        let mut out: Vec<(ObjectId, Result<ObjectState, ModelError>)> = Vec::new();
        // The key of the object last read, to match its field keys.
        let mut current = String::new();
        for item in range {
            let key: &str = &item.key;
            match key.split_once(FIELD_SEPARATOR) {
                None => {
                    // An object's initial state (or the space's properties).
                    let Ok(id) = key.parse::<ObjectId>() else {
                        continue;
                    };
                    let bytes = match &item.value {
                        ValueRef::Scalar(ScalarValueRef::Bytes(b)) => Some(b.as_ref()),
                        _ => None,
                    };
                    out.push((id, initial_state(&id, bytes)));
                    current.clear();
                    current.push_str(key);
                }
                Some((owner, name)) => {
                    // A key of the object just read; keys of no object (a
                    // peer may write them) are ignored, as `object` does.
                    let Some((id, Ok(object))) = out.last_mut() else {
                        continue;
                    };
                    if owner != current {
                        continue;
                    }
                    if let Err(e) = self.add_field(object, name, item.value.clone(), &item.id()) {
                        let id = *id;
                        out.pop();
                        out.push((id, Err(e)));
                    }
                }
            }
        }
        out
    }

    /// Ids of all objects in the document.
    pub fn object_ids(&self) -> Vec<ObjectId> {
        let keys = match self.heads {
            None => self.doc.keys(ROOT),
            Some(h) => self.doc.keys_at(ROOT, h),
        };
        keys.filter(|k| !k.contains(FIELD_SEPARATOR))
            .filter_map(|k| k.parse().ok())
            .collect()
    }

    /// The space's properties. Each is read as a field is — its value at
    /// depth 0 — since [`Space::set_property`](super::Space::set_property)
    /// checks it as one: a property nested right at the limit must read
    /// back (merged from a peer, in a snapshot), not be refused as corrupt.
    pub fn properties(&self) -> Result<BTreeMap<String, Value>, ModelError> {
        match self.get(&ROOT, PROPERTIES_KEY)? {
            Some((AmValue::Object(ObjType::Map), m)) => self.entries(&m, 0),
            _ => Ok(BTreeMap::new()),
        }
    }

    /// The entries of map `obj`, each value read `depth` levels below a
    /// field.
    fn entries(&self, obj: &ObjId, depth: usize) -> Result<BTreeMap<String, Value>, ModelError> {
        let range = match self.heads {
            None => self.doc.map_range(obj, ..),
            Some(h) => self.doc.map_range_at(obj, .., h),
        };
        let mut out = BTreeMap::new();
        for item in range {
            let value = self.value(item.value.clone(), &item.id(), depth)?;
            out.insert(item.key.to_string(), value);
        }
        Ok(out)
    }

    /// Reads a value `depth` levels below a field. Peers may write deeper
    /// nesting than apps can; it is refused rather than followed down the stack.
    fn value(&self, value: ValueRef<'_>, id: &ObjId, depth: usize) -> Result<Value, ModelError> {
        if depth > MAX_VALUE_DEPTH {
            return Err(ModelError::Corrupt {
                reason: format!("a value nests deeper than {MAX_VALUE_DEPTH} levels"),
            });
        }
        Ok(match value {
            ValueRef::Scalar(s) => scalar_to_value(&s),
            ValueRef::Object(ObjType::Text) => Value::Text(match self.heads {
                None => self.doc.text(id)?,
                Some(h) => self.doc.text_at(id, h)?,
            }),
            ValueRef::Object(ObjType::List) => {
                let range = match self.heads {
                    None => self.doc.list_range(id, ..),
                    Some(h) => self.doc.list_range_at(id, .., h),
                };
                let mut items = Vec::new();
                for item in range {
                    items.push(self.value(item.value.clone(), &item.id(), depth + 1)?);
                }
                Value::List(items)
            }
            ValueRef::Object(ObjType::Map | ObjType::Table) => {
                if let Some((AmValue::Scalar(s), _)) = self.get(id, REF_KEY)? {
                    if let ScalarValue::Str(text) = s.as_ref() {
                        return decode_ref(text).map(Value::Ref);
                    }
                }
                Value::Map(self.entries(id, depth + 1)?)
            }
        })
    }
}

/// An object as its creation wrote it: the initial-state bytes decoded.
fn initial_state(id: &ObjectId, init: Option<&[u8]>) -> Result<ObjectState, ModelError> {
    let Some(bytes) = init else {
        return Err(ModelError::Corrupt {
            reason: format!("object {id}: initial state is not bytes"),
        });
    };
    let init = init::decode(id, bytes)?;
    Ok(ObjectState {
        id: *id,
        type_name: init.type_name,
        fields: init.fields,
        deleted: false,
    })
}

fn scalar_to_value(s: &ScalarValueRef<'_>) -> Value {
    match s {
        ScalarValueRef::Null | ScalarValueRef::Unknown { .. } => Value::Null,
        ScalarValueRef::Boolean(b) => Value::Bool(*b),
        ScalarValueRef::Int(n) | ScalarValueRef::Timestamp(n) | ScalarValueRef::Counter(n) => {
            Value::Int(*n)
        }
        ScalarValueRef::Uint(n) => i64::try_from(*n)
            .map(Value::Int)
            .unwrap_or(Value::Float(*n as f64)),
        ScalarValueRef::F64(f) => Value::Float(*f),
        ScalarValueRef::Str(s) => Value::String(s.to_string()),
        ScalarValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
    }
}

#[cfg(test)]
mod one_pass {
    use automerge::AutoCommit;

    use super::*;

    #[test]
    fn all_objects_reads_what_object_reads_for_every_kind_of_key() {
        let mut doc = AutoCommit::new();
        let ids: Vec<ObjectId> = (1..=6u8).map(|i| ObjectId::from_bytes([i; 16])).collect();
        let mut fields = BTreeMap::new();
        fields.insert("n".to_owned(), Value::Int(1));
        fields.insert("body".to_owned(), Value::Text("hello".into()));
        for id in &ids {
            put_object(&mut doc, id, "note", &fields).unwrap();
        }
        // Updates, a nested list, a reference, a removal, a deletion.
        put_field(&mut doc, &ids[0], "n", &Value::Int(2)).unwrap();
        put_field(
            &mut doc,
            &ids[1],
            "tags",
            &Value::List(vec![Value::String("a".into()), Value::Bool(true)]),
        )
        .unwrap();
        put_field(
            &mut doc,
            &ids[2],
            "ref",
            &Value::Ref(Reference::local(ids[3])),
        )
        .unwrap();
        remove_field(&mut doc, &ids[3], "n").unwrap();
        mark_deleted(&mut doc, &ids[4]).unwrap();
        // Keys no object owns, and an object whose initial state is damaged.
        doc.put(ROOT, field_key(&ObjectId::from_bytes([9; 16]), "x"), 1)
            .unwrap();
        doc.put(ROOT, ids[5].to_string(), "not bytes").unwrap();
        doc.put_object(ROOT, PROPERTIES_KEY, ObjType::Map).unwrap();
        doc.commit();

        let reader = Reader {
            doc: &doc,
            heads: None,
        };
        let all = reader.all_objects();
        assert_eq!(all.len(), ids.len());
        for (id, state) in &all {
            match (state, reader.object(id)) {
                (Ok(one_pass), Ok(Some(alone))) => assert_eq!(one_pass, &alone),
                (Err(_), Err(_)) => assert_eq!(*id, ids[5]),
                (a, b) => panic!("{id}: {a:?} vs {b:?}"),
            }
        }
        let read = |i: usize| all[i].1.as_ref().unwrap().clone();
        assert_eq!(read(0).fields["n"], Value::Int(2));
        assert!(!read(3).fields.contains_key("n"));
        assert!(read(4).deleted);
        assert_eq!(read(2).fields["ref"], Value::Ref(Reference::local(ids[3])));
    }
}

#[cfg(test)]
mod depth {
    use automerge::AutoCommit;

    use super::*;

    /// `leaf` inside `levels` maps.
    fn nested(levels: usize) -> Value {
        let mut v = Value::Int(7);
        for _ in 0..levels {
            v = Value::Map([("k".to_owned(), v)].into());
        }
        v
    }

    #[test]
    fn a_property_reads_back_at_the_same_depth_a_field_does() {
        // A value at the limit, as a property and as a field: both were
        // accepted from the app, both read back (a property read one level
        // deeper than a field once made a peer refuse the space's snapshot
        // and silently drop the property from its merges); one level more
        // is refused in both.
        for (levels, readable) in [(MAX_VALUE_DEPTH, true), (MAX_VALUE_DEPTH + 1, false)] {
            let value = nested(levels);
            assert_eq!(check_value(&value).is_ok(), readable);
            let mut doc = AutoCommit::new();
            let props = doc.put_object(ROOT, PROPERTIES_KEY, ObjType::Map).unwrap();
            put_value(&mut doc, &props, "deep", &value).unwrap();
            let id = ObjectId::from_bytes([1; 16]);
            put_object(&mut doc, &id, "t", &BTreeMap::new()).unwrap();
            put_field(&mut doc, &id, "deep", &value).unwrap();
            doc.commit();
            let reader = Reader {
                doc: &doc,
                heads: None,
            };
            let field = reader
                .object(&id)
                .map(|o| o.unwrap().fields["deep"].clone());
            let property = reader.properties().map(|p| p["deep"].clone());
            assert_eq!(
                field.is_ok(),
                readable,
                "field at {levels} levels: {field:?}"
            );
            assert_eq!(
                property.is_ok(),
                readable,
                "property at {levels} levels: {property:?}"
            );
            if readable {
                assert_eq!(field.unwrap(), value);
                assert_eq!(property.unwrap(), value);
            }
        }
    }
}
