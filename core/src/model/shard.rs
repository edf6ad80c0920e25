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

/// Bytes of the shard's document as stored, one entry per stored chunk in
/// order: where its CRDT part is, or that it is stored apart and not read
/// yet (format 3, see `persist.rs`).
pub(crate) struct StoredDoc {
    pub chunks: Vec<CrdtPart>,
}

/// A stored chunk's CRDT part.
pub(crate) enum CrdtPart {
    /// Read: the key it came from, the bytes as read and where in them the
    /// CRDT part is (for format 1 and 2 chunks, the object states share
    /// those bytes).
    Read(String, Arc<Vec<u8>>, Range<usize>),
    /// Stored under its own key, not read yet.
    Apart(String),
}

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

    /// Whether the document's bytes are all in memory (parsed or not).
    pub fn documents_read(&self) -> bool {
        self.stored
            .as_ref()
            .is_none_or(|s| s.chunks.iter().all(|c| matches!(c, CrdtPart::Read(..))))
    }

    /// The CRDT part of the chunk stored apart under `key`, read (nothing
    /// happens when no chunk of this shard refers to that key).
    pub fn attach(&mut self, key: &str, bytes: Arc<Vec<u8>>, crdt: Range<usize>) {
        let Some(stored) = self.stored.as_mut() else {
            return;
        };
        if let Some(part) = stored
            .chunks
            .iter_mut()
            .find(|p| matches!(p, CrdtPart::Apart(k) if k == key))
        {
            *part = CrdtPart::Read(key.to_owned(), bytes, crdt);
        }
    }

    /// The keys of CRDT parts stored apart and not read yet.
    pub fn unread_keys(&self) -> impl Iterator<Item = &str> {
        self.stored.iter().flat_map(|s| {
            s.chunks.iter().filter_map(|c| match c {
                CrdtPart::Apart(k) => Some(k.as_str()),
                CrdtPart::Read(..) => None,
            })
        })
    }

    /// The document, parsed from storage if it was not yet. Fails with
    /// [`ModelError::DocumentsNotRead`] while a part of it stored apart was
    /// not handed over yet (`Space::attach_documents`): a document missing
    /// changes must never be written to.
    pub fn doc(&mut self, space: &str, actor: &ActorId) -> Result<&mut Automerge, ModelError> {
        if self.doc.is_none() {
            if !self.documents_read() {
                return Err(ModelError::DocumentsNotRead {
                    space: space.to_owned(),
                });
            }
            let stored = self
                .stored
                .take()
                .unwrap_or(StoredDoc { chunks: Vec::new() });
            let mut doc = Automerge::new();
            for part in &stored.chunks {
                let CrdtPart::Read(key, bytes, crdt) = part else {
                    continue;
                };
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
