//! One Automerge document holding a slice of a space's objects.
//!
//! A space's objects are spread over a fixed number of shards by their id
//! (see `docs/adr/0001-object-layout.md` for why). A shard's document is
//! loaded lazily: opening a space reads only the index of current state
//! stored beside the CRDT, and the document's bytes are parsed the first
//! time the shard is written to, merged into, or read at earlier heads.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use automerge::{ActorId, Automerge, ChangeHash};

use super::error::ModelError;
use crate::data::ObjectId;

/// Bytes of the shard's document as stored, with the keys they came from:
/// each chunk's CRDT part, where it sits in the chunk as read (the chunk's
/// object states share those bytes).
pub(crate) struct StoredDoc {
    pub chunks: Vec<CrdtChunk>,
}

/// A stored chunk's key, its bytes as read and where its CRDT part is.
pub(crate) type CrdtChunk = (String, Arc<Vec<u8>>, Range<usize>);

pub(crate) struct Shard {
    doc: Option<Automerge>,
    stored: Option<StoredDoc>,
    /// Heads at the last save: the next incremental chunk holds the changes since.
    pub saved_heads: Vec<ChangeHash>,
    /// Objects whose state changed since the last save.
    pub unsaved: HashSet<ObjectId>,
    /// Space properties changed since the last save (shard 0 only).
    pub properties_unsaved: bool,
    /// Keys of incremental chunks written since the last snapshot.
    pub incremental_keys: Vec<String>,
    pub incremental_bytes: usize,
    /// Bytes of the stored snapshot chunk (0 without one).
    pub snapshot_bytes: usize,
    pub has_snapshot: bool,
    pub next_seq: u64,
    /// Heads as stored (from the last chunk), so a shard's heads are known
    /// without parsing its document; `None` for chunks of format 1.
    pub stored_heads: Option<Vec<ChangeHash>>,
    /// A document adopted whole (from a peer, or rebuilt): its compacted
    /// bytes and sorted heads then. The next save writes the shard as a
    /// snapshot: those bytes if the document did not move on since.
    pub adopted: Option<(Vec<u8>, Vec<ChangeHash>)>,
}

impl Shard {
    pub fn new(actor: &ActorId) -> Self {
        Self::with(Some(Automerge::new().with_actor(actor.clone())), None)
    }

    /// A shard whose document is parsed from `stored` when first needed.
    pub fn from_storage(stored: StoredDoc) -> Self {
        Self::with(None, Some(stored))
    }

    fn with(doc: Option<Automerge>, stored: Option<StoredDoc>) -> Self {
        Self {
            doc,
            stored,
            saved_heads: Vec::new(),
            unsaved: HashSet::new(),
            properties_unsaved: false,
            incremental_keys: Vec::new(),
            incremental_bytes: 0,
            snapshot_bytes: 0,
            has_snapshot: false,
            next_seq: 0,
            stored_heads: None,
            adopted: None,
        }
    }

    pub fn is_dirty(&self) -> bool {
        !self.unsaved.is_empty() || self.properties_unsaved || self.adopted.is_some()
    }

    #[cfg(test)]
    pub fn is_loaded(&self) -> bool {
        self.doc.is_some()
    }

    /// The document, parsed from storage if it was not yet.
    pub fn doc(&mut self, space: &str, actor: &ActorId) -> Result<&mut Automerge, ModelError> {
        if self.doc.is_none() {
            let stored = self
                .stored
                .take()
                .unwrap_or(StoredDoc { chunks: Vec::new() });
            let mut doc = Automerge::new();
            for (key, bytes, crdt) in &stored.chunks {
                doc.load_incremental(&bytes[crdt.clone()]).map_err(|e| {
                    ModelError::CorruptChunk {
                        space: space.to_owned(),
                        key: key.clone(),
                        reason: format!("the CRDT data does not load: {e}"),
                    }
                })?;
            }
            self.saved_heads = doc.get_heads();
            self.doc = Some(doc.with_actor(actor.clone()));
        }
        Ok(self.doc.as_mut().expect("loaded above"))
    }

    /// The document's heads, sorted, without parsing it when they are
    /// known from storage.
    pub fn heads(&mut self, space: &str, actor: &ActorId) -> Result<Vec<ChangeHash>, ModelError> {
        if self.doc.is_none() {
            if let Some(h) = &self.stored_heads {
                return Ok(h.clone());
            }
        }
        let mut heads = self.doc(space, actor)?.get_heads();
        heads.sort();
        Ok(heads)
    }

    /// Replaces an empty shard's document by `doc` (verified by the
    /// caller); `bytes` is its compacted form, to store as the snapshot.
    pub fn adopt(&mut self, doc: Automerge, bytes: Vec<u8>, actor: &ActorId) {
        self.stored = None;
        self.stored_heads = None;
        let mut heads = doc.get_heads();
        heads.sort();
        self.doc = Some(doc.with_actor(actor.clone()));
        self.adopted = Some((bytes, heads));
    }

    /// The document if it is loaded (never parses).
    pub fn loaded_doc_mut(&mut self) -> Option<&mut Automerge> {
        self.doc.as_mut()
    }
}
