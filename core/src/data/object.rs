//! The current state of one object, as read from its CRDT.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::id::ObjectId;
use super::value::Value;

/// The materialized, current state of an object. This is what the query
/// index holds and what apps read; the CRDT holds the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectState {
    pub id: ObjectId,
    /// The type name, e.g. `"task"`. Set at creation, never changes.
    pub type_name: String,
    pub fields: BTreeMap<String, Value>,
    /// Soft delete: the object stays addressable and references to it
    /// resolve as deleted.
    pub deleted: bool,
}

impl ObjectState {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }
}
