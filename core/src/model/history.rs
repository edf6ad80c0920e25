//! History: [`Heads`], a point in a space's history, and reads of objects
//! and queries as they were at given heads.

use automerge::{ChangeHash, ReadDoc};

use super::codec::Reader;
use super::error::ModelError;
use super::space::Space;
use crate::data::{ObjectId, ObjectState};
use crate::query::{Index, Query};

/// A point in a space's history: the heads of each shard document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Heads {
    /// `(shard, head)` pairs, sorted.
    pub entries: Vec<(u16, ChangeHash)>,
}

impl Heads {
    /// The heads of one shard.
    pub fn of_shard(&self, shard: usize) -> Vec<ChangeHash> {
        self.entries
            .iter()
            .filter(|(s, _)| usize::from(*s) == shard)
            .map(|(_, h)| *h)
            .collect()
    }
}

impl Space {
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
}
