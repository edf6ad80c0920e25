use thiserror::Error;

use crate::data::{InvalidId, ObjectId};

/// Errors of the data model. Each names what was wrong and where, and has a
/// stable [`code`](ModelError::code) that hosts pass on to apps.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A malformed id; the message and code are those of [`InvalidId`].
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error("invalid field name {name:?}: names must be non-empty and must not start with NUL")]
    InvalidFieldName { name: String },
    #[error("invalid type name {name:?}: type names must be 1 to 128 characters")]
    InvalidTypeName { name: String },
    #[error("a value nests more than {max} levels of lists and maps; flatten it")]
    TooDeep { max: usize },
    #[error("object {id} does not exist in this space")]
    NotFound { id: ObjectId },
    #[error("object {id} already exists")]
    AlreadyExists { id: ObjectId },
    #[error("object {id} is deleted; it can be read but not changed")]
    Deleted { id: ObjectId },
    #[error("field {field:?} of object {id} is not a text field (it is {found})")]
    NotText {
        id: ObjectId,
        field: String,
        found: &'static str,
    },
    #[error("text range {pos}+{delete} is outside field {field:?} of object {id}, which has {len} characters")]
    TextRange {
        id: ObjectId,
        field: String,
        pos: usize,
        delete: usize,
        len: usize,
    },
    #[error("invalid text cursor {cursor:?}: {reason}")]
    InvalidCursor { cursor: String, reason: String },
    #[error("these heads are not part of this space's history; sync first or pass heads this space returned")]
    UnknownHeads,
    #[error("changes for shard {shard}, but this space has {shard_count} shards")]
    NoSuchShard { shard: usize, shard_count: usize },
    #[error("stored data of space {space} is corrupt at {key:?}: {reason}. Other spaces are unaffected; restore this space from a peer")]
    CorruptChunk {
        space: String,
        key: String,
        reason: String,
    },
    #[error("the documents of space {space} are still being read from storage; try again once it is open")]
    DocumentsNotRead { space: String },
    #[error("a save is already in progress; report its outcome (save_done / save_failed) before preparing another")]
    SaveInFlight,
    #[error("document data is inconsistent: {reason}")]
    Corrupt { reason: String },
    #[error("the CRDT rejected the operation: {0}")]
    Crdt(#[from] automerge::AutomergeError),
    #[error("invalid query: {0}")]
    Query(#[from] crate::query::QueryError),
}

impl ModelError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::InvalidId(e) => e.code(),
            ModelError::InvalidFieldName { .. } => "model.invalid_field_name",
            ModelError::InvalidTypeName { .. } => "model.invalid_type_name",
            ModelError::TooDeep { .. } => "model.too_deep",
            ModelError::NotFound { .. } => "model.not_found",
            ModelError::AlreadyExists { .. } => "model.already_exists",
            ModelError::Deleted { .. } => "model.deleted",
            ModelError::NotText { .. } => "model.not_text",
            ModelError::TextRange { .. } => "model.text_range",
            ModelError::InvalidCursor { .. } => "model.invalid_cursor",
            ModelError::UnknownHeads => "model.unknown_heads",
            ModelError::NoSuchShard { .. } => "model.no_such_shard",
            ModelError::CorruptChunk { .. } => "model.corrupt_chunk",
            ModelError::SaveInFlight => "model.save_in_flight",
            ModelError::DocumentsNotRead { .. } => "model.documents_not_read",
            ModelError::Corrupt { .. } => "model.corrupt",
            ModelError::Crdt(_) => "model.crdt",
            ModelError::Query(e) => e.code(),
        }
    }
}
