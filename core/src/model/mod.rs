//! Spaces and objects on Automerge: ids, values, object state, batches,
//! text, history and merge.

mod error;
mod id;
mod object;
mod value;

pub use error::ModelError;
pub use id::{ObjectId, SpaceId, ID_TEXT_LEN};
pub use object::ObjectState;
pub use value::{Reference, Value};
