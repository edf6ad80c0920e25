//! Field values of objects, and how deep they may nest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::id::{ObjectId, SpaceId};

/// Most levels of nesting of a list or map value, in a field or in a
/// filter: no item sits more than this many levels below the value
/// ([`Value::depth`]), i.e. at most 32 lists / maps around a scalar. The
/// model refuses a deeper value (`model.too_deep`), the query module a
/// deeper filter value (`query.too_deep`): whatever can be stored can be
/// filtered on. Apps see it as `LIMITS.maxValueDepth` (`client/src/protocol.ts`).
pub const MAX_VALUE_DEPTH: usize = 32;

/// A reference from one object to another: in the same space (`space: None`)
/// or in another space. References form trees and graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    pub space: Option<SpaceId>,
    pub object: ObjectId,
}

impl Reference {
    /// A reference to an object of the same space.
    pub fn local(object: ObjectId) -> Self {
        Self {
            space: None,
            object,
        }
    }
    pub fn remote(space: SpaceId, object: ObjectId) -> Self {
        Self {
            space: Some(space),
            object,
        }
    }
}

/// The value of a field.
///
/// `Text` is a collaborative text field: writing `Value::Text(s)` creates
/// (or replaces) the text with initial content `s`; concurrent edits go
/// through `splice_text` and merge character by character. Every other
/// variant is last-writer-wins per field (per list element / map key for
/// `List` and `Map`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Ref(Reference),
    Text(String),
}

impl Value {
    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Ref(_) => "ref",
            Value::Text(_) => "text",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// How many levels below this value its deepest item sits: 0 for a
    /// scalar or an empty list or map, 1 for a list of scalars, … At most
    /// [`MAX_VALUE_DEPTH`] for a value that can be stored or filtered on.
    pub fn depth(&self) -> usize {
        let below = |items: &mut dyn Iterator<Item = &Value>| {
            items.map(|v| 1 + v.depth()).max().unwrap_or(0)
        };
        match self {
            Value::List(items) => below(&mut items.iter()),
            Value::Map(map) => below(&mut map.values()),
            _ => 0,
        }
    }

    pub fn as_ref(&self) -> Option<&Reference> {
        match self {
            Value::Ref(r) => Some(r),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Float(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<Reference> for Value {
    fn from(r: Reference) -> Self {
        Value::Ref(r)
    }
}
