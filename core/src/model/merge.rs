//! Merging with other replicas: the changes another replica lacks
//! ([`Space::changes_since`]), merging a peer's changes
//! ([`Space::apply_changes`]) and reading the objects they touched back
//! into the index.

use std::collections::HashSet;

use automerge::{Change, ChangeHash, PatchAction, Prop, ReadDoc};

use super::codec::{self, Reader};
use super::error::ModelError;
use super::history::Heads;
use super::space::{Committed, Space, SpaceEvent};
use crate::data::ObjectId;

/// Changes of one shard, in Automerge's binary change format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardChanges {
    pub shard: u16,
    pub changes: Vec<Vec<u8>>,
}

impl Space {
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
}
