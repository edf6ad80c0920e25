//! `echo-core`: the ECHO engine, sans-IO.
//!
//! Nothing in this crate performs I/O, reads a clock or touches a browser API.
//! Hosts (the browser vault, native peers) feed it inputs and carry out the
//! outputs it returns — storage batches, bytes for peers, events for apps.
//! See `docs/ARCHITECTURE.md` for the code map.

pub mod data;
pub mod identity;
pub mod invite;
pub mod model;
pub mod peer;
pub mod query;
pub mod rng;
pub mod rpc;
pub mod store;
pub mod sync;
pub mod vault;
