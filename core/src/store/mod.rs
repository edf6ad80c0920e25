//! The storage contract hosts implement, an in-memory store, compaction policy.
//!
//! The engine persists everything as *chunks*: opaque byte values under
//! `/`-separated string keys such as `space/<id>/s/0003/i/000000000042`.
//! It never performs I/O itself; it hands the host a [`Batch`] of puts and
//! deletes and the host applies it to a [`ChunkStore`] — IndexedDB in the
//! browser, a `redb` file natively (crate `echo-store-file`), or the
//! [`MemoryStore`] in tests.
//!
//! # The contract
//!
//! Every implementation must pass the shared suite in [`contract`]. In short:
//!
//! - **Keys** follow [`validate_key`]: 1 to [`MAX_KEY_LEN`] bytes of printable
//!   ASCII without spaces (`!`..=`~`), made of non-empty `/`-separated
//!   segments (no leading, trailing or doubled `/`). Restricting keys to ASCII
//!   makes byte-wise order (Rust, redb) and UTF-16 code-unit order
//!   (IndexedDB) agree. An invalid key is rejected with
//!   [`StoreError::InvalidKey`] by every method, and a batch containing one is
//!   rejected as a whole before anything is written.
//! - **Prefixes** (for [`ChunkStore::list_prefix`] / [`ChunkStore::list_keys`])
//!   follow [`validate_prefix`]: the same characters, but any shape — the empty
//!   prefix lists everything, and `"a/b"` matches `"a/b"`, `"a/b/c"` *and*
//!   `"a/bc"` (it is a plain string prefix; end it with `/` to list a folder).
//! - **Values** are arbitrary bytes, including empty; implementations accept
//!   values of at least [`MIN_SUPPORTED_VALUE_LEN`] bytes.
//! - **Order**: listings are sorted by key, byte-wise.
//! - **Atomicity and durability**: [`ChunkStore::apply`] applies a whole
//!   batch or nothing; once it returned `Ok` the batch survives a crash of
//!   the process (for durable stores) and a later read sees all of it. Within
//!   a batch, a later op on the same key wins over an earlier one.
//! - **Failure**: an `Err` from `apply` means nothing of the batch was
//!   applied; the store stays usable and the caller may retry.

mod batch;
mod compaction;
pub mod contract;
mod error;
mod frame;
mod key;
mod memory;

pub use batch::{Batch, Op};
pub use compaction::CompactionPolicy;
pub use error::StoreError;
pub use frame::{frame, unframe, FrameError};
pub use key::{validate_key, validate_prefix, MAX_KEY_LEN};
pub use memory::MemoryStore;

/// A chunk key: `/`-separated printable ASCII, ordered byte-wise.
///
/// See [`validate_key`] for the rules.
pub type Key = String;

/// The smallest value size every implementation must accept (4 MiB).
pub const MIN_SUPPORTED_VALUE_LEN: usize = 4 * 1024 * 1024;

/// A key/value chunk store with atomic batches — what a host implements for
/// the engine.
///
/// The trait is synchronous; the browser host mirrors it with an async
/// version over IndexedDB and runs the same [`contract`] cases.
pub trait ChunkStore {
    /// The value under `key`, or `None` if there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// All entries whose key starts with `prefix`, sorted by key.
    fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError>;

    /// All keys that start with `prefix`, sorted.
    fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError>;

    /// Applies all ops atomically; when it returns `Ok` the batch is durable.
    /// Later ops in a batch win over earlier ones on the same key. On `Err`
    /// nothing of the batch was applied.
    fn apply(&mut self, batch: Batch) -> Result<(), StoreError>;
}

impl<S: ChunkStore + ?Sized> ChunkStore for Box<S> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key)
    }

    fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
        (**self).list_prefix(prefix)
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
        (**self).list_keys(prefix)
    }

    fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
        (**self).apply(batch)
    }
}

impl<S: ChunkStore + ?Sized> ChunkStore for &mut S {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key)
    }

    fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
        (**self).list_prefix(prefix)
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
        (**self).list_keys(prefix)
    }

    fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
        (**self).apply(batch)
    }
}
