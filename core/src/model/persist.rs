//! How a space is stored as chunks, and opened again.
//!
//! Keys, under `space/<space id>/` ([`space_prefix`]) and
//! `crdt/<space id>/` ([`documents_prefix`]):
//!
//! ```text
//! space/<id>/meta                format version and shard count
//! space/<id>/s/<shard>/snap      compacted shard: state of all its objects
//! crdt/<id>/s/<shard>/snap         … its whole document (if over 1 KiB; else inside)
//! space/<id>/s/<shard>/i/<seq>   incremental chunk: current state of the objects
//!                                the changes since the previous chunk touched
//! crdt/<id>/s/<shard>/i/<seq>      … those changes (likewise)
//! ```
//!
//! A shard chunk holds the current state of the objects its changes touched,
//! and the CRDT bytes of those changes — inside it when they are small
//! (`CompactionPolicy::max_inline_crdt_bytes`, 1 KiB: a small change is one
//! stored value), otherwise as a second value under the same key in the
//! documents' prefix, written in the same atomic batch. Opening a space reads
//! only the first prefix: for a large space about half of what is stored
//! (format 2 kept both parts in one value, so the first query waited for
//! every CRDT byte to be read too). It decodes nothing: it walks the states
//! once, checking them and noting each object's id, type and place
//! ([`crate::data`]'s stored states), and builds the id and type index from
//! that. The host reads the documents' prefix meanwhile and hands it over
//! with [`Space::attach_documents`]; until then the space answers reads, and
//! whatever needs a document (a write, a merge, a read at earlier heads, a
//! sync) fails with [`ModelError::DocumentsNotRead`] — never on a document
//! missing changes. The CRDT bytes stay unparsed until a shard is needed. An
//! object's state is decoded when first read, a field index reads only its
//! field, and a rewritten chunk copies the states not decoded as they were
//! read — so the first query waits for neither the history nor the decoding
//! of every object. Chunks are framed with a magic number, a format version
//! and a CRC-32, so a damaged chunk is reported by key instead of being
//! misread.
//!
//! Saving is two-phase, because the host's storage is asynchronous:
//! [`Space::prepare_save`] returns the batch to write and a receipt; after the
//! host's atomic write succeeded it calls [`Space::save_done`], on failure
//! [`Space::save_failed`], and the same data is offered again next time.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use automerge::{ActorId, ChangeHash};
use serde::{Deserialize, Serialize};

use super::error::ModelError;
use super::shard::{CrdtPart, Shard, StoredDoc};
use super::space::{Space, MAX_SHARD_COUNT};
use crate::data::{
    skim_state, write_len, ObjectId, Reader, SkimError, SpaceId, StoredState, TypeNames, Value,
};
use crate::query::Index;
use crate::store::{self, Batch, CompactionPolicy};

/// Format version of the space's chunks (meta and shard chunks). Version 3
/// stores a shard chunk's CRDT bytes under a key of their own; version 2
/// added the shard's heads to each shard chunk. Chunks of versions 1 and 2
/// are still read (a shard's heads are then known only once its document
/// is parsed, for version 1), and a space's next saves write version 3 —
/// its chunks of both kinds may sit side by side, in order.
const FORMAT_VERSION: u8 = 3;
const FORMAT_V2: u8 = 2;
const FORMAT_V1: u8 = 1;

#[derive(Serialize, Deserialize)]
struct SpaceMeta {
    shard_count: u16,
}

/// A shard chunk as read: its CRDT bytes' place (or the stored size of
/// the value holding them apart, format 3), its object states (checked,
/// not decoded), the space's properties if it holds them, and the shard's
/// heads (`None` in format 1).
///
/// On the wire (postcard) a chunk is, in format 3, `crdt_stored_len: varint`
/// (the size of the value holding the CRDT bytes apart; 0: they follow as
/// `crdt: bytes`), `objects: [ObjectState], properties: Option<map>, heads:
/// [[u8; 32]]`; format 2 has only `crdt: bytes` first; format 1 has no heads.
/// It is read with [`Reader`] and written by [`write_chunk`] by hand, so
/// object states move between storage and the index as bytes.
struct ReadChunk {
    bytes: Arc<Vec<u8>>,
    crdt: CrdtPlace,
    objects: Vec<(ObjectId, StoredState)>,
    properties: Option<BTreeMap<String, Value>>,
    heads: Option<Vec<[u8; 32]>>,
}

/// One dirty shard's part of a save, planned before the objects are
/// encoded.
struct PlannedShard {
    shard: usize,
    properties: bool,
    objects: HashSet<ObjectId>,
    heads: Vec<ChangeHash>,
    sorted_heads: Vec<[u8; 32]>,
    compact: bool,
    crdt: Vec<u8>,
}

/// Where a shard chunk's CRDT bytes are.
#[derive(Clone, Debug)]
enum CrdtPlace {
    /// In the chunk.
    Inside(Range<usize>),
    /// Apart (format 3), in a stored value of this many bytes.
    Apart(usize),
}

/// Where a chunk being written keeps its CRDT bytes.
enum CrdtOut<'a> {
    Inside(&'a [u8]),
    /// Apart, in a stored value of this many bytes.
    Apart(usize),
}

/// The format version in a chunk's frame (checked by `unframe` after).
fn framed_version(bytes: &[u8]) -> u8 {
    bytes.get(4).copied().unwrap_or(FORMAT_VERSION)
}

/// Reads a shard chunk of any format.
fn read_chunk(
    space: &str,
    key: &str,
    bytes: Vec<u8>,
    types: &mut TypeNames,
) -> Result<ReadChunk, ModelError> {
    let corrupt = |reason: String| ModelError::CorruptChunk {
        space: space.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let version = match framed_version(&bytes) {
        v @ (FORMAT_V1 | FORMAT_V2) => v,
        _ => FORMAT_VERSION,
    };
    let payload_len = store::unframe(version, &bytes)
        .map_err(|e| corrupt(e.to_string()))?
        .len();
    let base = bytes.len() - payload_len;
    let bytes = Arc::new(bytes);
    let mut r = Reader::new(&bytes[base..]);
    let undecodable = |e: SkimError| corrupt(format!("the chunk does not decode: {e}"));
    let apart = if version == FORMAT_VERSION {
        r.usize().map_err(undecodable)?
    } else {
        0
    };
    let crdt = if apart > 0 {
        CrdtPlace::Apart(apart)
    } else {
        let crdt_len = r.len().map_err(undecodable)?;
        let inside = base + r.position()..base + r.position() + crdt_len;
        r.advance(crdt_len).map_err(undecodable)?;
        CrdtPlace::Inside(inside)
    };
    let count = r.len().map_err(undecodable)?;
    let mut objects = Vec::with_capacity(count);
    for _ in 0..count {
        objects.push(skim_state(&bytes, base, &mut r, types).map_err(undecodable)?);
    }
    let postcard_error = |e: postcard::Error| corrupt(format!("the chunk does not decode: {e}"));
    let (properties, rest) = postcard::take_from_bytes(r.rest()).map_err(postcard_error)?;
    let heads = if version == FORMAT_V1 {
        None
    } else {
        Some(
            postcard::take_from_bytes::<Vec<[u8; 32]>>(rest)
                .map_err(postcard_error)?
                .0,
        )
    };
    Ok(ReadChunk {
        crdt,
        objects,
        properties,
        heads,
        bytes: Arc::clone(&bytes),
    })
}

/// Encodes a shard chunk (current format): the states of `ids` come from
/// `index`, stored ones copied as they were read.
fn write_chunk(
    crdt: CrdtOut<'_>,
    ids: &[ObjectId],
    index: &Index,
    properties: Option<&BTreeMap<String, Value>>,
    heads: &[[u8; 32]],
) -> Vec<u8> {
    let inside = match crdt {
        CrdtOut::Inside(bytes) => bytes.len(),
        CrdtOut::Apart(_) => 0,
    };
    let mut out = Vec::with_capacity(inside + ids.len() * 96 + heads.len() * 32 + 64);
    match crdt {
        CrdtOut::Apart(stored_len) => write_len(stored_len, &mut out),
        CrdtOut::Inside(bytes) => {
            write_len(0, &mut out);
            write_len(bytes.len(), &mut out);
            out.extend_from_slice(bytes);
        }
    }
    write_len(ids.len(), &mut out);
    for id in ids {
        index.write_state(id, &mut out);
    }
    let out = postcard::to_extend(&properties, out).expect(PLAIN_DATA);
    let out = postcard::to_extend(heads, out).expect(PLAIN_DATA);
    store::frame(FORMAT_VERSION, &out)
}

const PLAIN_DATA: &str = "in-memory serialization of plain data cannot fail";

/// The key prefix under which a space stores its chunks but the CRDT
/// bytes of its documents: what opening it reads.
pub fn space_prefix(id: &SpaceId) -> String {
    format!("space/{id}/")
}

/// The key prefix under which a space stores the CRDT bytes of its
/// documents (format 3): read after [`space_prefix`] or beside it, and
/// handed over with [`Space::attach_documents`].
pub fn documents_prefix(id: &SpaceId) -> String {
    format!("crdt/{id}/")
}

/// A shard chunk's key after its space's prefix (`s/<shard>/<kind>`, the
/// same under both prefixes): the shard and the kind (`snap`, `i/<seq>`).
fn shard_of_chunk_key(rest: &str) -> Option<(usize, &str)> {
    let (shard, kind) = rest.strip_prefix("s/")?.split_once('/')?;
    Some((shard.parse().ok()?, kind))
}

/// The key of the CRDT part of the shard chunk stored under `chunk_key`.
fn crdt_key(chunk_key: &str) -> String {
    format!(
        "crdt/{}",
        chunk_key.strip_prefix("space/").unwrap_or(chunk_key)
    )
}

fn meta_key(space: &str) -> String {
    format!("space/{space}/meta")
}

fn snapshot_key(space: &str, shard: usize) -> String {
    format!("space/{space}/s/{shard:04}/snap")
}

fn incremental_key(space: &str, shard: usize, seq: u64) -> String {
    format!("space/{space}/s/{shard:04}/i/{seq:012}")
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    store::frame(
        FORMAT_VERSION,
        &postcard::to_stdvec(value).expect(PLAIN_DATA),
    )
}

fn decode<'a, T: Deserialize<'a>>(
    space: &str,
    key: &str,
    bytes: &'a [u8],
) -> Result<T, ModelError> {
    decode_as(FORMAT_VERSION, space, key, bytes)
}

fn decode_as<'a, T: Deserialize<'a>>(
    version: u8,
    space: &str,
    key: &str,
    bytes: &'a [u8],
) -> Result<T, ModelError> {
    let payload = store::unframe(version, bytes).map_err(|e| ModelError::CorruptChunk {
        space: space.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    postcard::from_bytes(payload).map_err(|e| ModelError::CorruptChunk {
        space: space.to_owned(),
        key: key.to_owned(),
        reason: format!("the chunk does not decode: {e}"),
    })
}

/// What a save wrote, to be confirmed or reverted by the host.
#[derive(Debug)]
pub struct SaveReceipt {
    meta: bool,
    shards: Vec<ShardSaved>,
}

#[derive(Debug)]
struct ShardSaved {
    shard: usize,
    heads: Vec<ChangeHash>,
    objects: HashSet<ObjectId>,
    properties: bool,
    outcome: SaveOutcome,
}

#[derive(Debug)]
enum SaveOutcome {
    Incremental { key: String, bytes: usize },
    Snapshot { bytes: usize },
}

/// A batch for the host to write atomically, and the receipt to hand back.
#[derive(Debug)]
pub struct PendingSave {
    pub batch: Batch,
    pub receipt: SaveReceipt,
}

impl Space {
    /// What [`stored_bytes`](Self::stored_bytes) will be once the save of
    /// `receipt` is done.
    pub fn stored_bytes_after(&self, receipt: &SaveReceipt) -> u64 {
        let mut bytes: Vec<u64> = self
            .shards
            .iter()
            .map(|s| (s.snapshot_bytes + s.incremental_bytes) as u64)
            .collect();
        for saved in &receipt.shards {
            let Some(b) = bytes.get_mut(saved.shard) else {
                continue;
            };
            match &saved.outcome {
                SaveOutcome::Incremental { bytes: added, .. } => *b += *added as u64,
                SaveOutcome::Snapshot { bytes: whole } => *b = *whole as u64,
            }
        }
        bytes.iter().sum()
    }

    /// Parses every shard's Automerge document now. [`open`](Self::open)
    /// decodes only the index; a shard's document is parsed when first
    /// needed (a write, a merge, a read at earlier heads, a sync). A host
    /// with time to spare may call this so the first sync after a start
    /// does not pay for it.
    pub fn load_documents(&mut self) -> Result<(), ModelError> {
        for shard in &mut self.shards {
            shard.doc(&self.id_text, &self.actor)?;
        }
        Ok(())
    }

    /// Opens a space from the entries its host listed under
    /// [`space_prefix`]. Only the index of current state is decoded.
    pub fn open(
        id: SpaceId,
        actor: ActorId,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Result<Space, ModelError> {
        let space = id.to_string();
        let prefix = space_prefix(&id);
        let meta_key = meta_key(&space);
        let meta_bytes = entries
            .iter()
            .find(|(k, _)| *k == meta_key)
            .map(|(_, v)| v)
            .ok_or_else(|| ModelError::CorruptChunk {
                space: space.clone(),
                key: meta_key.clone(),
                reason: "missing: the space was never saved here".into(),
            })?;
        let meta_version = framed_version(meta_bytes);
        let meta: SpaceMeta = match meta_version {
            v @ (FORMAT_V1 | FORMAT_V2) => decode_as(v, &space, &meta_key, meta_bytes)?,
            _ => decode(&space, &meta_key, meta_bytes)?,
        };
        if meta.shard_count == 0 || meta.shard_count > MAX_SHARD_COUNT {
            return Err(ModelError::CorruptChunk {
                space,
                key: meta_key,
                reason: format!("shard count {} is out of range", meta.shard_count),
            });
        }
        let shard_count = usize::from(meta.shard_count);

        // (shard, seq) → entry; the snapshot sorts before every increment.
        let mut chunks: BTreeMap<(usize, Option<u64>), (String, Vec<u8>)> = BTreeMap::new();
        let documents = documents_prefix(&id);
        let mut crdt_entries = Vec::new();
        for (key, value) in entries {
            if key == meta_key {
                continue;
            }
            if key.starts_with(&documents) {
                crdt_entries.push((key, value));
                continue;
            }
            let bad_key = || ModelError::CorruptChunk {
                space: space.clone(),
                key: key.clone(),
                reason: "unrecognized key in this space's storage".into(),
            };
            let (shard, kind) = key
                .strip_prefix(&prefix)
                .and_then(shard_of_chunk_key)
                .ok_or_else(bad_key)?;
            if shard >= shard_count {
                return Err(bad_key());
            }
            let seq = match kind {
                "snap" => None,
                _ => Some(
                    kind.strip_prefix("i/")
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(bad_key)?,
                ),
            };
            chunks.insert((shard, seq), (key, value));
        }

        let mut properties = BTreeMap::new();
        let mut per_shard: Vec<Vec<CrdtPart>> = (0..shard_count).map(|_| Vec::new()).collect();
        // Per shard: snapshot bytes (if one), incremental keys, their bytes, next seq.
        let mut shards_meta: Vec<(Option<usize>, Vec<String>, usize, u64)> =
            vec![(None, Vec::new(), 0, 0); shard_count];
        // Read (and check) everything first, so the index is allocated
        // once at its size. Object states are not decoded: the index
        // decodes each when it is first read.
        let mut read = Vec::with_capacity(chunks.len());
        let mut total = 0;
        // Heads of each shard: those of its last chunk (chunks come in order).
        let mut last_heads: Vec<Option<Vec<ChangeHash>>> = vec![None; shard_count];
        let mut types = TypeNames::default();
        for ((shard, seq), (key, bytes)) in chunks {
            let bytes_len = bytes.len();
            let chunk = read_chunk(&space, &key, bytes, &mut types)?;
            last_heads[shard] = chunk
                .heads
                .as_ref()
                .map(|h| h.iter().map(|h| ChangeHash(*h)).collect());
            total += chunk.objects.len();
            read.push((shard, seq, key, bytes_len, chunk));
        }
        let index = Index::from_stored(
            total,
            read.iter_mut()
                .flat_map(|(_, _, _, _, chunk)| std::mem::take(&mut chunk.objects)),
        );
        for (shard, seq, key, chunk_len, chunk) in read {
            if let Some(props) = chunk.properties {
                properties = props;
            }
            let (part, bytes_len) = match chunk.crdt {
                CrdtPlace::Inside(range) => {
                    (CrdtPart::Read(key.clone(), chunk.bytes, range), chunk_len)
                }
                CrdtPlace::Apart(len) => (CrdtPart::Apart(crdt_key(&key)), chunk_len + len),
            };
            let m = &mut shards_meta[shard];
            match seq {
                None => m.0 = Some(bytes_len),
                Some(seq) => {
                    m.1.push(key.clone());
                    m.2 += bytes_len;
                    m.3 = m.3.max(seq + 1);
                }
            }
            per_shard[shard].push(part);
        }
        let shards = per_shard
            .into_iter()
            .zip(shards_meta)
            .zip(last_heads)
            .map(
                |((chunks, (snapshot, incremental_keys, incremental_bytes, next_seq)), heads)| {
                    let mut shard = if chunks.is_empty() {
                        Shard::new(&actor)
                    } else {
                        let mut s = Shard::from_storage(StoredDoc { chunks });
                        s.stored_heads = heads;
                        s
                    };
                    shard.has_snapshot = snapshot.is_some();
                    shard.snapshot_bytes = snapshot.unwrap_or(0);
                    shard.incremental_keys = incremental_keys;
                    shard.incremental_bytes = incremental_bytes;
                    shard.next_seq = next_seq;
                    shard
                },
            )
            .collect();
        let mut space = Space::assemble(id, actor, shards, index, properties);
        // An older format's meta is written again by the next save.
        space.meta_saved = meta_version == FORMAT_VERSION;
        if !crdt_entries.is_empty() {
            space.attach_documents(crdt_entries)?;
        }
        Ok(space)
    }

    /// Whether the CRDT bytes of some of the space's documents, stored
    /// under [`documents_prefix`], were not handed over yet
    /// ([`attach_documents`](Self::attach_documents)). Until they are,
    /// reads of current state work and anything needing a document fails
    /// with [`ModelError::DocumentsNotRead`].
    pub fn documents_pending(&self) -> bool {
        !self.shards.iter().all(Shard::documents_read)
    }

    /// Hands over the entries the host listed under [`documents_prefix`]
    /// (all of them; those already handed over are skipped). Each is
    /// checked against its frame; every CRDT part the space's chunks refer
    /// to must be among them, or the space's storage is corrupt (an entry
    /// no chunk refers to is ignored: nothing reads it).
    pub fn attach_documents(&mut self, entries: Vec<(String, Vec<u8>)>) -> Result<(), ModelError> {
        let corrupt = |key: &str, reason: String| ModelError::CorruptChunk {
            space: self.id_text.clone(),
            key: key.to_owned(),
            reason,
        };
        let mut attached = Vec::with_capacity(entries.len());
        for (key, bytes) in entries {
            let Some(shard) = key
                .strip_prefix(&documents_prefix(&self.id))
                .and_then(shard_of_chunk_key)
                .map(|(shard, _)| shard)
                .filter(|s| *s < self.shards.len())
            else {
                continue;
            };
            let payload_len = store::unframe(FORMAT_VERSION, &bytes)
                .map_err(|e| corrupt(&key, e.to_string()))?
                .len();
            let range = bytes.len() - payload_len..bytes.len();
            attached.push((shard, key, Arc::new(bytes), range));
        }
        for (shard, key, bytes, range) in attached {
            self.shards[shard].attach(&key, bytes, range);
        }
        if let Some(missing) = self.shards.iter().find_map(|s| s.unread_keys().next()) {
            return Err(corrupt(
                missing,
                "missing: a chunk of the space refers to CRDT bytes stored under this key".into(),
            ));
        }
        Ok(())
    }

    /// Whether anything changed since the last confirmed save.
    pub fn has_unsaved_changes(&self) -> bool {
        !self.meta_saved || self.shards.iter().any(Shard::is_dirty)
    }

    /// Collects everything changed since the last save into one batch for the
    /// host to write atomically. Returns `None` when there is nothing to save.
    /// Until the host reports back with [`save_done`](Self::save_done) or
    /// [`save_failed`](Self::save_failed), the data counts as unsaved.
    pub fn prepare_save(
        &mut self,
        policy: &CompactionPolicy,
    ) -> Result<Option<PendingSave>, ModelError> {
        if self.save_in_flight {
            return Err(ModelError::SaveInFlight);
        }
        if !self.has_unsaved_changes() {
            return Ok(None);
        }
        let dirty: Vec<usize> = (0..self.shards.len())
            .filter(|&s| self.shards[s].is_dirty())
            .collect();
        let stale: Vec<ObjectId> = dirty
            .iter()
            .flat_map(|&s| self.shards[s].unsaved.iter().copied())
            .filter(|id| self.stale_text.contains(id))
            .collect();
        for id in &stale {
            self.reload_object(id)?;
            self.stale_text.remove(id);
        }

        let mut batch = Batch::new();
        let meta = !self.meta_saved;
        if meta {
            batch.put(
                meta_key(&self.id_text),
                encode(&SpaceMeta {
                    shard_count: self.shards.len() as u16,
                }),
            );
        }
        // First the CRDT side of every dirty shard (it needs the documents
        // mutably), then the object states, borrowed from the index and
        // encoded without copies: a compacting shard holds all of its
        // objects, found in one pass over the index for all such shards.
        let mut planned = Vec::with_capacity(dirty.len());
        for shard in dirty {
            let properties = shard == 0 && self.shards[shard].properties_unsaved;
            let objects = std::mem::take(&mut self.shards[shard].unsaved);
            let saved_heads = self.shards[shard].saved_heads.clone();
            let adopted = self.shards[shard].adopted.take();
            let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
            let heads = doc.get_heads();
            // The adopted bytes hold the document as adopted; when it moved
            // on since, it is saved afresh.
            let adopted = adopted.map(|(bytes, at)| {
                let mut now = heads.clone();
                now.sort();
                (at == now).then_some(bytes)
            });
            let fresh_snapshot = adopted.is_some();
            let adopted = adopted.flatten();
            let mut sorted_heads: Vec<[u8; 32]> = heads.iter().map(|h| h.0).collect();
            sorted_heads.sort();
            let increment = if fresh_snapshot {
                Vec::new()
            } else {
                doc.save_after(&saved_heads)
            };
            let s = &self.shards[shard];
            // A shard's first save is a snapshot: Automerge's compressed document
            // format is several times smaller than the same history as changes.
            let compact = fresh_snapshot
                || !s.has_snapshot
                || policy.should_compact(
                    s.incremental_keys.len() + 1,
                    s.incremental_bytes + increment.len(),
                );
            let crdt = if compact {
                match adopted {
                    // A document adopted whole is stored as it came.
                    Some(bytes) => bytes,
                    None => self.shards[shard].doc(&self.id_text, &self.actor)?.save(),
                }
            } else {
                increment
            };
            planned.push(PlannedShard {
                shard,
                properties,
                objects,
                heads,
                sorted_heads,
                compact,
                crdt,
            });
        }
        let mut whole: Vec<Vec<ObjectId>> = vec![Vec::new(); self.shards.len()];
        if planned.iter().any(|p| p.compact) {
            for id in self.index.ids() {
                whole[self.shard_of(id)].push(*id);
            }
        }
        let mut saved = Vec::with_capacity(planned.len());
        for p in planned {
            let shard = p.shard;
            // The CRDT bytes apart (framed), or `None`: inside the chunk.
            let apart = (p.crdt.len() > policy.max_inline_crdt_bytes)
                .then(|| store::frame(FORMAT_VERSION, &p.crdt));
            let (crdt, apart_len) = match &apart {
                Some(value) => (CrdtOut::Apart(value.len()), value.len()),
                None => (CrdtOut::Inside(&p.crdt), 0),
            };
            let outcome = if p.compact {
                let props = (shard == 0).then_some(&self.properties);
                let bytes = write_chunk(crdt, &whole[shard], &self.index, props, &p.sorted_heads);
                let len = bytes.len() + apart_len;
                let key = snapshot_key(&self.id_text, shard);
                match apart {
                    Some(value) => batch.put(crdt_key(&key), value),
                    // The last snapshot's, if it had them apart.
                    None => batch.delete(crdt_key(&key)),
                };
                batch.put(key, bytes);
                for key in &self.shards[shard].incremental_keys {
                    batch.delete(crdt_key(key));
                    batch.delete(key.clone());
                }
                SaveOutcome::Snapshot { bytes: len }
            } else {
                let ids: Vec<ObjectId> = p
                    .objects
                    .iter()
                    .filter(|id| self.index.contains(id))
                    .copied()
                    .collect();
                let props = p.properties.then_some(&self.properties);
                let key = incremental_key(&self.id_text, shard, self.shards[shard].next_seq);
                let bytes = write_chunk(crdt, &ids, &self.index, props, &p.sorted_heads);
                let len = bytes.len() + apart_len;
                if let Some(value) = apart {
                    batch.put(crdt_key(&key), value);
                }
                batch.put(key.clone(), bytes);
                SaveOutcome::Incremental { key, bytes: len }
            };
            self.shards[shard].properties_unsaved = false;
            saved.push(ShardSaved {
                shard,
                heads: p.heads,
                objects: p.objects,
                properties: p.properties,
                outcome,
            });
        }
        self.save_in_flight = true;
        Ok(Some(PendingSave {
            batch,
            receipt: SaveReceipt {
                meta,
                shards: saved,
            },
        }))
    }

    /// The host's atomic write of a [`PendingSave`] succeeded.
    pub fn save_done(&mut self, receipt: SaveReceipt) {
        self.save_in_flight = false;
        if receipt.meta {
            self.meta_saved = true;
        }
        for saved in receipt.shards {
            let shard = &mut self.shards[saved.shard];
            shard.saved_heads = saved.heads;
            match saved.outcome {
                SaveOutcome::Incremental { key, bytes } => {
                    shard.incremental_keys.push(key);
                    shard.incremental_bytes += bytes;
                    shard.next_seq += 1;
                }
                SaveOutcome::Snapshot { bytes } => {
                    shard.has_snapshot = true;
                    shard.snapshot_bytes = bytes;
                    shard.incremental_keys.clear();
                    shard.incremental_bytes = 0;
                }
            }
        }
    }

    /// The host's write of a [`PendingSave`] failed: everything in it is
    /// unsaved again and will be offered by the next save.
    pub fn save_failed(&mut self, receipt: SaveReceipt) {
        self.save_in_flight = false;
        for saved in receipt.shards {
            let shard = &mut self.shards[saved.shard];
            shard.unsaved.extend(saved.objects);
            shard.properties_unsaved |= saved.properties;
        }
    }
}

#[cfg(test)]
mod chunk_encoding {
    use super::*;
    use crate::data::ObjectState;

    /// The chunk as postcard writes it from owned parts (format 3).
    #[derive(Serialize)]
    struct Owned {
        crdt_stored_len: usize,
        objects: Vec<ObjectState>,
        properties: Option<BTreeMap<String, Value>>,
        heads: Vec<[u8; 32]>,
    }

    /// Format 2: the CRDT bytes inside.
    #[derive(Serialize)]
    struct OwnedV2 {
        crdt: Vec<u8>,
        objects: Vec<ObjectState>,
        properties: Option<BTreeMap<String, Value>>,
        heads: Vec<[u8; 32]>,
    }

    #[derive(Serialize)]
    struct OwnedV1 {
        crdt: Vec<u8>,
        objects: Vec<ObjectState>,
        properties: Option<BTreeMap<String, Value>>,
    }

    fn object(n: u8) -> ObjectState {
        ObjectState {
            id: ObjectId::from_bytes([n; 16]),
            type_name: "note".into(),
            fields: BTreeMap::from([
                ("title".to_owned(), Value::String(format!("hi {n}"))),
                ("n".to_owned(), Value::Int(i64::from(n) * 1000)),
            ]),
            deleted: n.is_multiple_of(2),
        }
    }

    #[test]
    fn a_chunk_is_written_as_postcard_writes_it_and_read_back_without_decoding() {
        let objects = vec![object(7), object(8)];
        let ids: Vec<ObjectId> = objects.iter().map(|o| o.id).collect();
        let mut index = Index::new();
        for o in &objects {
            index.upsert(o.clone());
        }
        let properties = BTreeMap::from([("name".to_owned(), Value::Int(3))]);
        let heads = vec![[1u8; 32], [2; 32]];
        let written = write_chunk(
            CrdtOut::Apart(1_009),
            &ids,
            &index,
            Some(&properties),
            &heads,
        );
        let owned = encode(&Owned {
            crdt_stored_len: 1_009,
            objects: objects.clone(),
            properties: Some(properties.clone()),
            heads: heads.clone(),
        });
        assert_eq!(written, owned, "the same bytes as the owned form");

        let read = read_chunk("s", "k", written.clone(), &mut TypeNames::default()).unwrap();
        assert!(matches!(read.crdt, CrdtPlace::Apart(1_009)));
        assert_eq!(read.properties, Some(properties.clone()));
        assert_eq!(read.heads, Some(heads.clone()));
        let again = Index::from_stored(2, read.objects);
        // Written again from states never decoded: the same bytes.
        let rewritten = write_chunk(
            CrdtOut::Apart(1_009),
            &ids,
            &again,
            Some(&properties),
            &heads,
        );
        assert_eq!(rewritten, written);
        for o in &objects {
            assert_eq!(again.get(&o.id), Some(o));
        }
    }

    /// Format 3 with the CRDT bytes inside.
    #[derive(Serialize)]
    struct OwnedInside {
        apart: usize,
        crdt: Vec<u8>,
        objects: Vec<ObjectState>,
        properties: Option<BTreeMap<String, Value>>,
        heads: Vec<[u8; 32]>,
    }

    #[test]
    fn a_chunk_keeping_its_crdt_bytes_is_written_as_postcard_writes_it_and_read_back() {
        let objects = vec![object(3)];
        let ids = [objects[0].id];
        let mut index = Index::new();
        index.upsert(objects[0].clone());
        let crdt: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let heads = vec![[4u8; 32]];
        let written = write_chunk(CrdtOut::Inside(&crdt), &ids, &index, None, &heads);
        let owned = encode(&OwnedInside {
            apart: 0,
            crdt: crdt.clone(),
            objects: objects.clone(),
            properties: None,
            heads: heads.clone(),
        });
        assert_eq!(written, owned);
        let read = read_chunk("s", "k", written, &mut TypeNames::default()).unwrap();
        let CrdtPlace::Inside(range) = read.crdt.clone() else {
            panic!("kept inside");
        };
        assert_eq!(&read.bytes[range], &crdt[..]);
        assert_eq!(read.heads, Some(heads));
        assert_eq!(read.objects[0].1.decode(objects[0].id), objects[0]);
    }

    #[test]
    fn a_format_2_chunk_reads_with_its_crdt_bytes_inside() {
        let objects = vec![object(4), object(5)];
        let crdt: Vec<u8> = (0..=255u8).cycle().take(1_000).collect();
        let heads = vec![[3u8; 32]];
        let bytes = store::frame(
            FORMAT_V2,
            &postcard::to_stdvec(&OwnedV2 {
                crdt: crdt.clone(),
                objects: objects.clone(),
                properties: None,
                heads: heads.clone(),
            })
            .unwrap(),
        );
        let read = read_chunk("s", "k", bytes, &mut TypeNames::default()).unwrap();
        let CrdtPlace::Inside(range) = read.crdt.clone() else {
            panic!("format 2 holds its CRDT bytes");
        };
        assert_eq!(&read.bytes[range], &crdt[..]);
        assert_eq!(read.heads, Some(heads));
        assert_eq!(read.objects[1].1.decode(objects[1].id), objects[1]);
    }

    #[test]
    fn a_format_1_chunk_reads_without_heads() {
        let objects = vec![object(1)];
        let bytes = store::frame(
            FORMAT_V1,
            &postcard::to_stdvec(&OwnedV1 {
                crdt: vec![1, 2, 3],
                objects: objects.clone(),
                properties: None,
            })
            .unwrap(),
        );
        let read = read_chunk("s", "k", bytes, &mut TypeNames::default()).unwrap();
        assert_eq!(read.heads, None);
        assert_eq!(read.objects.len(), 1);
        assert_eq!(read.objects[0].1.decode(objects[0].id), objects[0]);
    }

    #[test]
    fn a_damaged_state_inside_an_intact_frame_is_named_at_open() {
        let mut index = Index::new();
        index.upsert(object(1));
        let ids = [object(1).id];
        let good = write_chunk(CrdtOut::Apart(4), &ids, &index, None, &[]);
        let payload = store::unframe(FORMAT_VERSION, &good).unwrap().to_vec();
        // The type name's length byte made too large: framed anew, so only
        // the walk over the states can notice.
        let mut bad = payload.clone();
        let at = 1 + 1 + 16; // crdt's stored length, count, id
        bad[at] = 0x7f;
        let err = read_chunk(
            "s",
            "space/s/s/0000/snap",
            store::frame(FORMAT_VERSION, &bad),
            &mut TypeNames::default(),
        )
        .err()
        .expect("refused");
        assert!(err.to_string().contains("does not decode"), "{err}");
    }
}
