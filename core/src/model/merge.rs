//! Merging with other replicas: the changes another replica lacks
//! ([`Space::changes_since`], [`Space::changes_info_since`]), a shard's
//! changes and compacted document for a peer, merging a peer's changes
//! ([`Space::apply_changes`]) or adopting a peer's whole document
//! ([`Space::adopt_shards`]), and reading the objects they touched back into
//! the index.
//!
//! Merging is crate-private: changes from peers reach a space only through
//! `sync::Replica`, after their signed bundle was verified.

use std::collections::{BTreeSet, HashSet};

use automerge::{Automerge, Change, ChangeHash, PatchAction, Prop, ReadDoc};

use super::codec::{self, Reader};
use super::error::ModelError;
use super::history::Heads;
use super::space::{Committed, Space, SpaceEvent};
use super::touched;
use crate::data::ObjectId;

/// One change of a shard document, as replication sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeInfo {
    pub hash: ChangeHash,
    /// The Automerge actor id's bytes (a device's public key).
    pub actor: Vec<u8>,
    pub seq: u64,
    pub deps: Vec<ChangeHash>,
}

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
    /// whole call before anything is applied. Only `sync::Replica` calls
    /// this, with verified changes.
    #[cfg(test)]
    pub(crate) fn apply_changes(
        &mut self,
        incoming: Vec<ShardChanges>,
    ) -> Result<Committed, ModelError> {
        let mut decoded: Vec<(u16, Vec<Change>)> = Vec::with_capacity(incoming.len());
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
            decoded.push((sc.shard, changes));
        }
        self.apply_decoded(decoded)
    }

    /// Merges decoded changes, per shard (see [`apply_changes`]).
    ///
    /// [`apply_changes`]: Self::apply_changes
    pub(crate) fn apply_decoded(
        &mut self,
        decoded: Vec<(u16, Vec<Change>)>,
    ) -> Result<Committed, ModelError> {
        for (shard, _) in &decoded {
            self.check_shard(usize::from(*shard))?;
        }
        let decoded: Vec<(usize, Vec<Change>)> = decoded
            .into_iter()
            .map(|(s, c)| (usize::from(s), c))
            .collect();
        let mut touched: Vec<ObjectId> = Vec::new();
        let mut seen = HashSet::new();
        let mut properties_touched = false;
        for (shard, changes) in decoded {
            let scan = touched::scan(&changes);
            let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
            let before = doc.get_heads();
            doc.apply_changes(changes)?;
            let after = doc.get_heads();
            if before == after {
                continue;
            }
            let keys = match scan.resolve(doc) {
                Some(keys) => keys,
                None => diffed_keys(doc, &before, &after),
            };
            for key in keys {
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

    /// A shard's heads, sorted (from storage when its document is not
    /// parsed yet).
    pub fn shard_heads(&mut self, shard: usize) -> Result<Vec<ChangeHash>, ModelError> {
        self.check_shard(shard)?;
        self.shards[shard].heads(&self.id_text, &self.actor)
    }

    /// Whether no shard holds any change.
    pub fn has_no_changes(&mut self) -> Result<bool, ModelError> {
        for shard in 0..self.shards.len() {
            if !self.shard_heads(shard)?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn check_shard(&self, shard: usize) -> Result<(), ModelError> {
        if shard >= self.shards.len() {
            return Err(ModelError::NoSuchShard {
                shard,
                shard_count: self.shards.len(),
            });
        }
        Ok(())
    }

    /// What a shard holds beyond `have` (hashes it does not know are
    /// ignored): each change's hash, actor, sequence number and
    /// dependencies, without rebuilding the changes.
    pub fn changes_info_since(
        &mut self,
        shard: usize,
        have: &[ChangeHash],
    ) -> Result<Vec<ChangeInfo>, ModelError> {
        self.check_shard(shard)?;
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        let known: Vec<ChangeHash> = have
            .iter()
            .filter(|h| doc.get_change_meta_by_hash(h).is_some())
            .copied()
            .collect();
        Ok(doc
            .get_changes_meta(&known)
            .into_iter()
            .map(|m| ChangeInfo {
                hash: m.hash,
                actor: m.actor.to_bytes().to_vec(),
                seq: m.seq,
                deps: m.deps,
            })
            .collect())
    }

    /// One change of a shard, by hash, if the shard holds it.
    pub fn change_info(
        &mut self,
        shard: usize,
        hash: &ChangeHash,
    ) -> Result<Option<ChangeInfo>, ModelError> {
        self.check_shard(shard)?;
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        Ok(doc.get_change_meta_by_hash(hash).map(|m| ChangeInfo {
            hash: m.hash,
            actor: m.actor.to_bytes().to_vec(),
            seq: m.seq,
            deps: m.deps,
        }))
    }

    /// The raw bytes of several changes of a shard (`None` for one it does
    /// not hold), in the order asked. Automerge rebuilds a change's bytes
    /// from its operations, one pass over the history per request; the
    /// changes since the first one's dependencies hold a run of one
    /// actor's changes, so a run costs one pass.
    pub fn changes_bytes(
        &mut self,
        shard: usize,
        hashes: &[ChangeHash],
    ) -> Result<Vec<Option<Vec<u8>>>, ModelError> {
        self.check_shard(shard)?;
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        let Some(first) = hashes.first().and_then(|h| doc.get_change_by_hash(h)) else {
            return Ok(hashes
                .iter()
                .map(|h| doc.get_change_by_hash(h).map(|c| c.raw_bytes().to_vec()))
                .collect());
        };
        if hashes.len() == 1 {
            return Ok(vec![Some(first.raw_bytes().to_vec())]);
        }
        let wanted: HashSet<&ChangeHash> = hashes.iter().collect();
        let mut found: std::collections::HashMap<ChangeHash, Vec<u8>> = doc
            .get_changes(first.deps())
            .into_iter()
            .filter(|c| wanted.contains(&c.hash()))
            .map(|c| (c.hash(), c.raw_bytes().to_vec()))
            .collect();
        Ok(hashes
            .iter()
            .map(|h| match found.remove(h) {
                Some(bytes) => Some(bytes),
                // Not after the first's dependencies: asked for alone.
                None => doc.get_change_by_hash(h).map(|c| c.raw_bytes().to_vec()),
            })
            .collect())
    }

    /// A shard's whole document, compacted (Automerge's saved form).
    pub fn save_shard(&mut self, shard: usize) -> Result<Vec<u8>, ModelError> {
        self.check_shard(shard)?;
        Ok(self.shards[shard].doc(&self.id_text, &self.actor)?.save())
    }

    /// Adopts whole documents for shards that hold nothing yet (the first
    /// sync of a space from a peer): each replaces its empty shard, the
    /// index learns every object in it, and the next save stores the
    /// given compacted bytes as the shard's snapshot. Only
    /// `sync::Replica` calls this, with documents whose every change was
    /// verified.
    pub(crate) fn adopt_shards(
        &mut self,
        docs: Vec<(usize, Automerge, Vec<u8>)>,
    ) -> Result<Committed, ModelError> {
        for (shard, _, _) in &docs {
            self.check_shard(*shard)?;
            if !self.shard_heads(*shard)?.is_empty() {
                return Err(ModelError::Corrupt {
                    reason: format!("shard {shard} already holds changes; it cannot be replaced"),
                });
            }
        }
        let mut touched = Vec::new();
        let mut properties_touched = false;
        for (shard, doc, bytes) in docs {
            let reader = Reader {
                doc: &doc,
                heads: None,
            };
            for id in self.index_all(&reader) {
                self.shards[shard].unsaved.insert(id);
                touched.push(id);
            }
            if shard == 0 {
                let props = reader.properties()?;
                if !props.is_empty() {
                    self.properties = props;
                    properties_touched = true;
                }
            }
            self.shards[shard].adopt(doc, bytes, &self.actor);
        }
        if properties_touched {
            self.shards[0].properties_unsaved = true;
        }
        self.notify_live(&touched)?;
        Ok(Committed { changed: touched })
    }

    /// Puts every object of a document into the index (an unreadable one
    /// is reported and left out); returns their ids.
    fn index_all(&mut self, reader: &Reader<'_, Automerge>) -> Vec<ObjectId> {
        let mut ids = Vec::new();
        for (id, state) in reader.all_objects() {
            match state {
                Ok(state) => {
                    self.index.upsert(state);
                }
                Err(e) => self.events.push_back(SpaceEvent::Unreadable {
                    object: id,
                    reason: e.to_string(),
                }),
            }
            ids.push(id);
        }
        ids
    }

    /// Every change of a shard, in an order Automerge can apply.
    pub(crate) fn shard_changes(&mut self, shard: usize) -> Result<Vec<Change>, ModelError> {
        self.check_shard(shard)?;
        Ok(self.shards[shard]
            .doc(&self.id_text, &self.actor)?
            .get_changes(&[]))
    }

    /// Replaces a shard's document by one built from `changes` (a subset
    /// of its changes, closed under dependencies: what stays after
    /// changes were voided). The index is rebuilt for the shard's objects
    /// and the next save writes the shard anew. Only `sync::Replica` calls
    /// this.
    pub(crate) fn rebuild_shard(
        &mut self,
        shard: usize,
        changes: Vec<Change>,
    ) -> Result<Committed, ModelError> {
        self.check_shard(shard)?;
        let mut doc = Automerge::new();
        doc.apply_changes(changes)?;
        let bytes = doc.save();
        let old: Vec<ObjectId> = self
            .index
            .iter()
            .filter(|o| self.shard_of(&o.id) == shard)
            .map(|o| o.id)
            .collect();
        let mut touched: Vec<ObjectId> = Vec::new();
        let mut seen = HashSet::new();
        for id in old {
            self.index.remove(&id);
            self.text_objs.remove(&id);
            self.stale_text.remove(&id);
            if seen.insert(id) {
                touched.push(id);
            }
        }
        let reader = Reader {
            doc: &doc,
            heads: None,
        };
        for id in self.index_all(&reader) {
            if seen.insert(id) {
                touched.push(id);
            }
        }
        if shard == 0 {
            self.properties = reader.properties()?;
            self.shards[0].properties_unsaved = true;
        }
        for id in &touched {
            self.shards[shard].unsaved.insert(*id);
        }
        // Whatever was stored for the shard is replaced by a snapshot.
        self.shards[shard].has_snapshot = false;
        self.shards[shard].adopt(doc, bytes, &self.actor);
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

/// The root keys whose values differ between two states of a document.
pub(super) fn diffed_keys(
    doc: &Automerge,
    before: &[ChangeHash],
    after: &[ChangeHash],
) -> BTreeSet<String> {
    doc.diff(before, after)
        .into_iter()
        .filter_map(|patch| match (patch.path.first(), patch.action) {
            (Some((_, Prop::Map(key))), _) => Some(key.clone()),
            (None, PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key }) => Some(key),
            _ => None,
        })
        .collect()
}
