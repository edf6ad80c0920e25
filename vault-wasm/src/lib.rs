//! ECHO's browser host: the engine's drivers in the vault's worker.
//!
//! The engine's driver (`engine.rs`: the vault machine in the worker, its
//! ports, storage and keys; wasm32 only), the wrapping key (`keyring.rs`)
//! and the storage piece:
//!
//! - [`AsyncChunkStore`] — `echo_core::store::ChunkStore`'s contract with
//!   async methods, which is what a store over IndexedDB can offer;
//! - [`IdbStore`] (wasm32 only) — that contract on an IndexedDB database, one
//!   readwrite transaction with durability `"strict"` per batch;
//! - [`frame`] — several messages in one port message (JSON arrays), the
//!   format of app ports;
//! - [`contract`] — an async runner of `echo_core::store::contract`'s data
//!   driven cases, so the browser store is held to the very same cases as the
//!   memory and file stores.
//!
//! Natively the crate compiles without the browser parts (everything that
//! touches `wasm-bindgen` is behind `cfg(target_arch = "wasm32")`), so
//! `cargo test --workspace` and clippy stay plain native runs; they test the
//! trait and the runner on a memory store. The browser tests (`tests/`) run
//! in headless Chromium inside a SharedWorker and a dedicated worker:
//! `scripts/wasm-test.sh echo-vault` (part of `make test`).

#[cfg(target_arch = "wasm32")]
mod app_queue;
pub mod contract;
#[cfg(target_arch = "wasm32")]
mod engine;
mod error;
pub mod frame;
#[cfg(target_arch = "wasm32")]
mod idb;
#[cfg(target_arch = "wasm32")]
mod keyring;
#[cfg(target_arch = "wasm32")]
mod marker;
#[cfg(target_arch = "wasm32")]
mod mirror;
#[cfg(target_arch = "wasm32")]
mod net;
mod store;
#[cfg(all(target_arch = "wasm32", feature = "test-hooks"))]
mod test_hooks;

#[cfg(target_arch = "wasm32")]
pub use engine::{VaultEngine, DATABASE};
pub use error::map_dom_error;
#[cfg(target_arch = "wasm32")]
pub use idb::IdbStore;
pub use store::{AsyncChunkStore, MemoryAsyncStore};
