//! How objects are laid out in an Automerge document, both ways.
//!
//! Each object is a map under the document root, keyed by its id. Creating
//! an object writes that map and **one** more operation: the object's initial
//! state (type name and every non-text field) encoded as a single bytes value
//! under [`INIT_KEY`]. Text fields are Automerge text objects beside it.
//! Later writes put fields as their own keys of the map, which supersede the
//! initial state: they causally follow the creation, so no replica can order
//! them before it. Automerge charges per operation (ADR 0001 measures
//! 10–20 µs each here), so this keeps creation at two operations per object
//! instead of one per field and list element.
//!
//! ```text
//! root[<object id>] = {
//!     "\0init":    bytes   (postcard: type name + initial fields)
//!     "\0deleted": true    (only once deleted)
//!     <field>:     value   (written after creation; text fields from the start)
//! }
//! ```
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
use super::id::{ObjectId, SpaceId};
use super::init;
use super::object::ObjectState;
use super::value::{Reference, Value};
use crate::query::MAX_VALUE_DEPTH;

/// The key of an object's initial state.
pub(crate) const INIT_KEY: &str = "\u{0}init";
/// Present (and true) once an object is deleted.
pub(crate) const DELETED_KEY: &str = "\u{0}deleted";
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

/// Writes a new object: its map, its initial state, its text fields.
pub(crate) fn put_object<T: Transactable>(
    tx: &mut T,
    id: &ObjectId,
    type_name: &str,
    fields: &BTreeMap<String, Value>,
) -> Result<(), automerge::AutomergeError> {
    let obj = tx.put_object(ROOT, id.to_string(), ObjType::Map)?;
    let bytes = init::encode(
        type_name,
        fields.iter().filter(|(_, v)| !matches!(v, Value::Text(_))),
    );
    tx.put(&obj, INIT_KEY, ScalarValue::Bytes(bytes))?;
    for (name, value) in fields {
        if let Value::Text(_) = value {
            put_value(tx, &obj, name, value)?;
        }
    }
    Ok(())
}

/// Marks field `prop` of object map `obj` as removed.
pub(crate) fn remove_field<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    prop: &str,
) -> Result<(), automerge::AutomergeError> {
    let tombstone = tx.put_object(obj, prop, ObjType::Map)?;
    tx.put(&tombstone, REMOVED_KEY, true)
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

    /// The object map of `id`, if the object exists.
    pub fn object_map(&self, id: &ObjectId) -> Result<Option<ObjId>, ModelError> {
        match self.get(&ROOT, &id.to_string())? {
            Some((AmValue::Object(ObjType::Map), obj)) => Ok(Some(obj)),
            Some(_) => Err(ModelError::Corrupt {
                reason: format!("object {id} is not a map"),
            }),
            None => Ok(None),
        }
    }

    /// The Automerge value of field `name` written after creation (text
    /// fields and updates; not fields only in the initial state).
    pub fn field_obj(
        &self,
        obj: &ObjId,
        name: &str,
    ) -> Result<Option<(AmValue<'_>, ObjId)>, ModelError> {
        Ok(self.get(obj, name)?)
    }

    /// Materializes one object.
    pub fn object(&self, id: &ObjectId) -> Result<Option<ObjectState>, ModelError> {
        let Some(obj) = self.object_map(id)? else {
            return Ok(None);
        };
        let init = match self.get(&obj, INIT_KEY)? {
            Some((AmValue::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Bytes(b) => init::decode(id, b)?,
                _ => {
                    return Err(ModelError::Corrupt {
                        reason: format!("object {id}: initial state is not bytes"),
                    })
                }
            },
            _ => {
                return Err(ModelError::Corrupt {
                    reason: format!("object {id} has no initial state"),
                })
            }
        };
        let mut fields = init.fields;
        let mut deleted = false;
        let range = match self.heads {
            None => self.doc.map_range(&obj, ..),
            Some(h) => self.doc.map_range_at(&obj, .., h),
        };
        for item in range {
            if item.key == DELETED_KEY {
                deleted = matches!(item.value, ValueRef::Scalar(ScalarValueRef::Boolean(true)));
                continue;
            }
            if item.key.starts_with('\u{0}') {
                continue;
            }
            let field_id = item.id();
            if matches!(item.value, ValueRef::Object(ObjType::Map))
                && self.get(&field_id, REMOVED_KEY)?.is_some()
            {
                fields.remove(item.key.as_ref());
                continue;
            }
            let value = self.value(item.value.clone(), &field_id, 0)?;
            fields.insert(item.key.to_string(), value);
        }
        Ok(Some(ObjectState {
            id: *id,
            type_name: init.type_name,
            fields,
            deleted,
        }))
    }

    /// Ids of all objects in the document.
    pub fn object_ids(&self) -> Vec<ObjectId> {
        let keys = match self.heads {
            None => self.doc.keys(ROOT),
            Some(h) => self.doc.keys_at(ROOT, h),
        };
        keys.filter_map(|k| k.parse().ok()).collect()
    }

    pub fn properties(&self) -> Result<BTreeMap<String, Value>, ModelError> {
        match self.get(&ROOT, PROPERTIES_KEY)? {
            Some((AmValue::Object(ObjType::Map), m)) => self.map(&m, 0),
            _ => Ok(BTreeMap::new()),
        }
    }

    fn map(&self, obj: &ObjId, depth: usize) -> Result<BTreeMap<String, Value>, ModelError> {
        let range = match self.heads {
            None => self.doc.map_range(obj, ..),
            Some(h) => self.doc.map_range_at(obj, .., h),
        };
        let mut out = BTreeMap::new();
        for item in range {
            let value = self.value(item.value.clone(), &item.id(), depth + 1)?;
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
                Value::Map(self.map(id, depth)?)
            }
        })
    }
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
