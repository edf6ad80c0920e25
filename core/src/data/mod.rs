//! The plain data types every module shares: ids, values, object states.
//!
//! A leaf: it imports nothing from the rest of the crate. `query` (which
//! indexes object states) needs only this module, not `model`; `model`
//! (which stores objects in Automerge and feeds `query`'s index) builds on
//! both. `model` re-exports these types, so `model::ObjectId` and
//! `data::ObjectId` name the same type.

mod id;
mod object;
mod stored;
mod value;

pub use id::{InvalidId, ObjectId, SpaceId, ID_TEXT_LEN};
pub use object::ObjectState;
pub(crate) use stored::{skim_state, write_len, Reader, SkimError, StoredState, TypeNames};
pub use value::{Reference, Value, MAX_VALUE_DEPTH};
