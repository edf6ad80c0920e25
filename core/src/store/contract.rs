//! The contract suite every [`ChunkStore`](super::ChunkStore) implementation must pass.
//!
//! (Being filled in.)
