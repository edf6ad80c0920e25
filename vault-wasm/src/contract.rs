//! `echo_core::store::contract`'s cases, run against an [`AsyncChunkStore`].
//!
//! The cases are the core's data ([`cases`], [`durable_cases`]); this module
//! only performs each step with the async calls and lets the core judge the
//! outcome ([`check_outcome`], [`check_unchanged`], [`check_listings`]), so
//! an async store is held to the same expectations, with the same failure
//! messages, as the synchronous ones. Violations panic.
//!
//! ```
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! use echo_vault::{contract, MemoryAsyncStore};
//! block_on(contract::run_all(|_case| async { MemoryAsyncStore::new() }));
//! ```

use std::future::Future;

pub use echo_core::store::contract::{cases, durable_cases, DurableCase};
use echo_core::store::contract::{
    check_listed_value, check_listings, check_outcome, check_unchanged, Case, Outcome, Step,
};
use echo_core::store::Key;

use crate::AsyncChunkStore;

/// Runs every case of [`cases`], each on a fresh, empty store from
/// `new_store` (given the case's index), and checks the store's listings
/// after each case.
pub async fn run_all<S, F, Fut>(mut new_store: F)
where
    S: AsyncChunkStore,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = S>,
{
    for (i, case) in cases().iter().enumerate() {
        let store = new_store(i).await;
        run_case(&store, case).await;
        check_consistent(&store, case.name).await;
    }
}

/// Runs the steps of one case.
pub async fn run_case<S: AsyncChunkStore>(store: &S, case: &Case) {
    for (i, step) in case.steps.iter().enumerate() {
        run_step(store, case.name, i, step).await;
    }
}

/// Runs [`durable_cases`]. Each call of `open` must open the same store
/// (empty on the first call); the runner drops every handle before it opens
/// the next one, so a store that closes its connection on drop is really
/// reopened.
pub async fn durable<S, F, Fut>(mut open: F)
where
    S: AsyncChunkStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let cases = durable_cases();
    for case in &cases {
        let store = open().await;
        for (i, step) in case.write.iter().enumerate() {
            run_step(&store, case.name, i, step).await;
        }
        drop(store);
        let store = open().await;
        let name = format!("{} (after reopen)", case.name);
        for (i, step) in case.after_reopen.iter().enumerate() {
            run_step(&store, &name, i, step).await;
        }
        check_consistent(&store, &name).await;
    }
    // Every case's data is still there at the end, after more reopens.
    let store = open().await;
    for case in &cases {
        let name = format!("{} (at the end)", case.name);
        for (i, step) in case.after_reopen.iter().enumerate() {
            if !matches!(step, Step::Apply { .. }) {
                run_step(&store, &name, i, step).await;
            }
        }
    }
}

/// Performs one step and panics with the core's message if the outcome
/// differs from the expected one; a rejected batch must leave the store
/// unchanged.
pub async fn run_step<S: AsyncChunkStore>(store: &S, case: &str, index: usize, step: &Step) {
    let got = match step {
        Step::Apply { batch, expect } => {
            let before = match expect {
                Err(_) => Some(snapshot(store, case).await),
                Ok(()) => None,
            };
            let got = Outcome::Apply(store.apply(batch.clone()).await);
            check_outcome(case, index, step, &got);
            if let Some(before) = before {
                check_unchanged(case, index, &before, &snapshot(store, case).await);
            }
            return;
        }
        Step::Get { key, .. } => Outcome::Get(store.get(key).await),
        Step::ListPrefix { prefix, .. } => Outcome::ListPrefix(store.list_prefix(prefix).await),
        Step::ListKeys { prefix, .. } => Outcome::ListKeys(store.list_keys(prefix).await),
    };
    check_outcome(case, index, step, &got);
}

/// Checks that `list_prefix("")` and `list_keys("")` agree, are strictly
/// sorted, and that `get` returns each listed value.
pub async fn check_consistent<S: AsyncChunkStore>(store: &S, case: &str) {
    let entries = snapshot(store, case).await;
    let keys = store
        .list_keys("")
        .await
        .unwrap_or_else(|e| panic!("contract case {case:?}: list_keys(\"\") failed: {e}"));
    check_listings(case, &entries, &keys);
    for (key, value) in &entries {
        let got = store
            .get(key)
            .await
            .unwrap_or_else(|e| panic!("contract case {case:?}: get({key:?}) failed: {e}"));
        check_listed_value(case, key, value, got.as_deref());
    }
}

async fn snapshot<S: AsyncChunkStore>(store: &S, case: &str) -> Vec<(Key, Vec<u8>)> {
    store
        .list_prefix("")
        .await
        .unwrap_or_else(|e| panic!("contract case {case:?}: list_prefix(\"\") failed: {e}"))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    use echo_core::store::{Batch, ChunkStore, MemoryStore, StoreError};

    use super::*;
    use crate::MemoryAsyncStore;

    /// Enough of an executor for stores whose futures are always ready.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    fn panic_text(result: std::thread::Result<()>) -> String {
        let payload = result.expect_err("the runner must reject this store");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn memory_store_passes_the_cases() {
        block_on(run_all(|_| async { MemoryAsyncStore::new() }));
    }

    /// Handles on one shared map: "reopening" gives a new handle on the same
    /// data.
    struct Shared(Rc<RefCell<MemoryStore>>);

    impl AsyncChunkStore for Shared {
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
            std::future::ready(self.0.borrow_mut().apply(batch))
        }
    }

    #[test]
    fn durable_cases_pass_on_a_shared_store() {
        let data = Rc::new(RefCell::new(MemoryStore::new()));
        block_on(durable(|| {
            let data = data.clone();
            async move { Shared(data) }
        }));
    }

    #[test]
    fn durable_cases_catch_a_store_that_forgets() {
        let text = panic_text(std::panic::catch_unwind(|| {
            block_on(durable(|| async { MemoryAsyncStore::new() }))
        }));
        assert!(text.contains("after reopen"), "{text}");
    }

    /// A store that writes only part of each batch: `mangle` says what it
    /// writes and what it answers.
    struct Broken {
        inner: MemoryAsyncStore,
        mangle: fn(&Batch) -> (Batch, Result<(), StoreError>),
    }

    impl Broken {
        fn new(mangle: fn(&Batch) -> (Batch, Result<(), StoreError>)) -> Self {
            Self {
                inner: MemoryAsyncStore::new(),
                mangle,
            }
        }
    }

    impl AsyncChunkStore for Broken {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(key).await
        }
        async fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
            self.inner.list_prefix(prefix).await
        }
        async fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
            self.inner.list_keys(prefix).await
        }
        fn apply(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> {
            let (written, answer) = (self.mangle)(&batch);
            let write = self.inner.apply(written);
            async move {
                write.await?;
                answer
            }
        }
    }

    /// Keeps only the first op of each batch.
    fn first_op_only(batch: &Batch) -> (Batch, Result<(), StoreError>) {
        (batch.ops().iter().take(1).cloned().collect(), Ok(()))
    }

    /// Writes the valid ops of a batch that should be rejected whole.
    fn partial_on_error(batch: &Batch) -> (Batch, Result<(), StoreError>) {
        let valid = batch
            .ops()
            .iter()
            .filter(|op| echo_core::store::validate_key(op.key()).is_ok())
            .cloned()
            .collect();
        (valid, batch.validate())
    }

    #[test]
    fn the_runner_catches_a_broken_store() {
        let text = panic_text(std::panic::catch_unwind(|| {
            block_on(run_all(|_| async { Broken::new(first_op_only) }))
        }));
        assert!(text.contains("store contract violated"), "{text}");
    }

    #[test]
    fn the_runner_catches_a_partly_applied_rejected_batch() {
        let text = panic_text(std::panic::catch_unwind(|| {
            block_on(run_all(|_| async { Broken::new(partial_on_error) }))
        }));
        assert!(
            text.contains("a rejected batch changed the store"),
            "{text}"
        );
    }
}
