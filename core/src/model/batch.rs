//! An atomic set of writes to a space.

use std::collections::BTreeMap;

use crate::data::{ObjectId, Value};

/// One write. Positions and lengths in text are Unicode code points.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    Create {
        id: ObjectId,
        type_name: String,
        fields: BTreeMap<String, Value>,
    },
    Set {
        id: ObjectId,
        field: String,
        value: Value,
    },
    Remove {
        id: ObjectId,
        field: String,
    },
    Delete {
        id: ObjectId,
    },
    SpliceText {
        id: ObjectId,
        field: String,
        pos: usize,
        delete: usize,
        insert: String,
    },
}

impl Mutation {
    pub fn object(&self) -> ObjectId {
        match self {
            Mutation::Create { id, .. }
            | Mutation::Set { id, .. }
            | Mutation::Remove { id, .. }
            | Mutation::Delete { id }
            | Mutation::SpliceText { id, .. } => *id,
        }
    }
}

/// Writes applied together by [`Space::apply`](super::Space::apply): all of
/// them, or — when any is invalid — none.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    pub(crate) mutations: Vec<Mutation>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an object with a fresh random id, which is returned.
    pub fn create<K: Into<String>>(
        &mut self,
        type_name: impl Into<String>,
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> ObjectId {
        let id = ObjectId::random();
        self.create_with_id(id, type_name, fields);
        id
    }

    /// Creates an object with a given id (e.g. one chosen by the app).
    pub fn create_with_id<K: Into<String>>(
        &mut self,
        id: ObjectId,
        type_name: impl Into<String>,
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> &mut Self {
        let fields = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        self.mutations.push(Mutation::Create {
            id,
            type_name: type_name.into(),
            fields,
        });
        self
    }

    pub fn set(
        &mut self,
        id: ObjectId,
        field: impl Into<String>,
        value: impl Into<Value>,
    ) -> &mut Self {
        self.mutations.push(Mutation::Set {
            id,
            field: field.into(),
            value: value.into(),
        });
        self
    }

    pub fn remove(&mut self, id: ObjectId, field: impl Into<String>) -> &mut Self {
        self.mutations.push(Mutation::Remove {
            id,
            field: field.into(),
        });
        self
    }

    /// Soft-deletes an object: it stays readable, references to it resolve
    /// as deleted, and queries skip it unless asked to include deleted ones.
    pub fn delete(&mut self, id: ObjectId) -> &mut Self {
        self.mutations.push(Mutation::Delete { id });
        self
    }

    /// Deletes `delete` characters at `pos` of a text field and inserts
    /// `insert` there.
    pub fn splice_text(
        &mut self,
        id: ObjectId,
        field: impl Into<String>,
        pos: usize,
        delete: usize,
        insert: impl Into<String>,
    ) -> &mut Self {
        self.mutations.push(Mutation::SpliceText {
            id,
            field: field.into(),
            pos,
            delete,
            insert: insert.into(),
        });
        self
    }

    pub fn push(&mut self, mutation: Mutation) -> &mut Self {
        self.mutations.push(mutation);
        self
    }

    pub fn len(&self) -> usize {
        self.mutations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty()
    }

    pub fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }
}
