//! The async storage contract.

use std::cell::RefCell;
use std::future::{ready, Future};

use echo_core::store::{Batch, ChunkStore, Key, MemoryStore, StoreError};

/// [`ChunkStore`]'s contract, async: what a host over IndexedDB implements.
///
/// The semantics are those of [`echo_core::store`]: key and prefix rules,
/// byte-wise sorted listings, atomic batches in which a later op on a key
/// wins, `Err` from [`apply`](AsyncChunkStore::apply) meaning nothing was
/// applied. It passes the same data-driven cases ([`crate::contract`]).
///
/// Methods take `&self`: in the browser several tasks of the one worker
/// thread may read and write at once. The futures are not `Send` (nothing in
/// a wasm32 worker is), which is why the trait uses plain `async fn`.
#[allow(async_fn_in_trait)] // single-threaded by design: no Send bound wanted
pub trait AsyncChunkStore {
    /// The value under `key`, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// All entries whose key starts with `prefix`, sorted by key.
    async fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError>;

    /// All keys that start with `prefix`, sorted.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError>;

    /// Applies all ops atomically; the future resolves `Ok` once the batch
    /// is durable. On `Err` nothing of the batch was applied.
    ///
    /// The write is *issued when `apply` is called*, not when the future is
    /// first polled: batches take effect in call order even when their
    /// futures are awaited concurrently or in another order. That is what a
    /// batching layer needs — it merges queued batches with
    /// [`Batch::extend`] (after validating each, so that one bad key does not
    /// reject its neighbours), calls `apply` once, and answers every caller
    /// with the one result. Dropping the future before it resolves may
    /// cancel the write (then nothing of it is applied).
    fn apply(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>>;
}

/// A [`MemoryStore`] behind the async trait: every future is ready at once.
/// For tests of code written against [`AsyncChunkStore`] (the contract
/// runner itself is tested with it).
#[derive(Debug, Default)]
pub struct MemoryAsyncStore(RefCell<MemoryStore>);

impl MemoryAsyncStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `store`'s contents.
    pub fn from_store(store: MemoryStore) -> Self {
        Self(RefCell::new(store))
    }

    /// The contents, as a synchronous store.
    pub fn into_inner(self) -> MemoryStore {
        self.0.into_inner()
    }
}

impl AsyncChunkStore for MemoryAsyncStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.borrow().get(key)
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
        self.0.borrow().list_prefix(prefix)
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
        self.0.borrow().list_keys(prefix)
    }

    fn apply(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> {
        // Applied on the call, like IndexedDB issues its requests on the call.
        ready(self.0.borrow_mut().apply(batch))
    }
}

impl<S: AsyncChunkStore> AsyncChunkStore for &S {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key).await
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
        (**self).list_prefix(prefix).await
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
        (**self).list_keys(prefix).await
    }

    fn apply(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> {
        (**self).apply(batch)
    }
}
