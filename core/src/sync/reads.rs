//! [`SpaceReads`]: a replica's space, for reading only.
//!
//! Most reads of a [`Space`] take `&mut` (they parse shards and refresh
//! text lazily), so a replica cannot hand out `&mut Space` for them
//! without also handing out its writes and merges. This view offers the
//! reads and nothing else.

use crate::data::{ObjectId, ObjectState, Reference};
use crate::model::{Heads, ModelError, Resolved, ShardChanges, Space, SpaceEvent};
use crate::query::{Query, SubscriptionId};

/// The reads of a replica's space. See the module docs.
pub struct SpaceReads<'a> {
    space: &'a mut Space,
}

impl<'a> SpaceReads<'a> {
    pub(super) fn new(space: &'a mut Space) -> Self {
        SpaceReads { space }
    }

    pub fn get(&mut self, id: &ObjectId) -> Result<Option<&ObjectState>, ModelError> {
        self.space.get(id)
    }

    pub fn resolve(&mut self, reference: &Reference) -> Result<Resolved<'_>, ModelError> {
        self.space.resolve(reference)
    }

    pub fn query(&mut self, query: &Query) -> Result<Vec<ObjectId>, ModelError> {
        self.space.query(query)
    }

    pub fn text(&mut self, id: &ObjectId, field: &str) -> Result<String, ModelError> {
        self.space.text(id, field)
    }

    pub fn text_cursor(
        &mut self,
        id: &ObjectId,
        field: &str,
        position: usize,
    ) -> Result<String, ModelError> {
        self.space.text_cursor(id, field, position)
    }

    pub fn text_cursor_position(
        &mut self,
        id: &ObjectId,
        field: &str,
        cursor: &str,
    ) -> Result<usize, ModelError> {
        self.space.text_cursor_position(id, field, cursor)
    }

    pub fn heads(&mut self) -> Result<Heads, ModelError> {
        self.space.heads()
    }

    pub fn get_at(
        &mut self,
        id: &ObjectId,
        heads: &Heads,
    ) -> Result<Option<ObjectState>, ModelError> {
        self.space.get_at(id, heads)
    }

    pub fn query_at(&mut self, query: &Query, heads: &Heads) -> Result<Vec<ObjectId>, ModelError> {
        self.space.query_at(query, heads)
    }

    /// Changes a replica at `heads` lacks (raw, unsigned: for inspection;
    /// peers are sent bundles).
    pub fn changes_since(&mut self, heads: &Heads) -> Result<Vec<ShardChanges>, ModelError> {
        self.space.changes_since(heads)
    }

    pub fn subscribe(
        &mut self,
        query: Query,
    ) -> Result<(SubscriptionId, Vec<ObjectId>), ModelError> {
        self.space.subscribe(query)
    }

    pub fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        self.space.unsubscribe(id)
    }

    pub fn poll_event(&mut self) -> Option<SpaceEvent> {
        self.space.poll_event()
    }

    pub fn verify_index(&mut self) -> Result<(), String> {
        self.space.verify_index()
    }
}
