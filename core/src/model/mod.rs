//! Spaces and objects on Automerge: ids, values, object state, write
//! batches, text, history, merge and persistence.

mod batch;
mod codec;
mod error;
mod id;
mod init;
mod object;
mod persist;
mod shard;
mod space;
mod value;

pub use batch::{Mutation, WriteBatch};
pub use error::ModelError;
pub use id::{ObjectId, SpaceId, ID_TEXT_LEN};
pub use object::ObjectState;
pub use persist::{space_prefix, PendingSave, SaveReceipt};
pub use space::{
    Committed, Heads, Resolved, ShardChanges, Space, SpaceEvent, SpaceOptions, DEFAULT_SHARD_COUNT,
    MAX_SHARD_COUNT,
};
pub use value::{Reference, Value};

#[cfg(test)]
mod tests;
