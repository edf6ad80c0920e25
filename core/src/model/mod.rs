//! Spaces and objects on Automerge: write batches, text, history, merge and
//! persistence. Ids, values and object state live in [`crate::data`] and
//! are re-exported here.

mod batch;
mod codec;
mod error;
mod history;
mod init;
mod merge;
mod persist;
mod shard;
mod space;
mod splice_run;
mod text;
mod touched;
mod write;

pub use crate::data::{ObjectId, ObjectState, Reference, SpaceId, Value, ID_TEXT_LEN};
pub use batch::{Mutation, WriteBatch};
pub use error::ModelError;
pub use history::Heads;
pub use merge::{ChangeInfo, ShardChanges};
pub use persist::{documents_prefix, space_prefix, PendingSave, SaveReceipt};
pub use space::{
    Committed, Resolved, Space, SpaceEvent, SpaceOptions, DEFAULT_SHARD_COUNT, MAX_SHARD_COUNT,
};
pub use text::anchor_position;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod tests;
