//! The browser tests of `IdbStore`, shared by the test binaries (one binary
//! per kind of worker: each binary starts its own browser).

use std::cell::RefCell;

use echo_core::store::{Batch, StoreError};
use echo_vault::{contract, AsyncChunkStore, IdbStore};
use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use wasm_bindgen::JsValue;

/// A database name no other test (or earlier run) uses.
pub fn fresh_name(label: &str) -> String {
    format!(
        "echo-test-{label}-{}-{}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e9) as u64
    )
}

async fn open(name: &str) -> IdbStore {
    IdbStore::open(name)
        .await
        .unwrap_or_else(|e| panic!("open {name}: {e}"))
}

async fn delete(name: &str) {
    IdbStore::delete(name)
        .await
        .unwrap_or_else(|e| panic!("delete {name}: {e}"));
}

/// `echo_core::store::contract::cases()`, each on a fresh database.
pub async fn contract_cases() {
    let names = RefCell::new(Vec::new());
    contract::run_all(|i| {
        let name = fresh_name(&format!("case{i}"));
        names.borrow_mut().push(name.clone());
        async move { open(&name).await }
    })
    .await;
    // Every handle was dropped (closed) after its case: deleting does not block.
    for name in names.into_inner() {
        delete(&name).await;
    }
}

/// `echo_core::store::contract::durable_cases()`: write, drop the handle
/// (closing the connection), reopen the database, read.
pub async fn durable_cases() {
    let name = fresh_name("durable");
    contract::durable(|| {
        let name = name.clone();
        async move { open(&name).await }
    })
    .await;
    delete(&name).await;
}

/// The plain story: write, drop the handle, reopen, read back — and the
/// dropped handle really closed its connection (else the delete would wait).
pub async fn write_drop_reopen_read() {
    let name = fresh_name("reopen");
    let store = open(&name).await;
    let mut batch = Batch::new();
    batch
        .put("space/a/s/0001/snap", vec![1, 2, 3])
        .put("space/a/s/0001/i/000000000001", Vec::new())
        .put("space/b/meta", b"b".to_vec());
    store.apply(batch).await.expect("apply");
    drop(store);

    let store = open(&name).await;
    assert_eq!(
        store.get("space/a/s/0001/snap").await.expect("get"),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        store.list_keys("space/a/").await.expect("list_keys"),
        vec![
            "space/a/s/0001/i/000000000001".to_string(),
            "space/a/s/0001/snap".to_string()
        ]
    );
    assert_eq!(
        store.list_prefix("space/b").await.expect("list_prefix"),
        vec![("space/b/meta".to_string(), b"b".to_vec())]
    );
    store.close();
    delete(&name).await;
    // Deleted means gone: a new database of that name is empty.
    let store = open(&name).await;
    assert_eq!(
        store.list_keys("").await.expect("list_keys"),
        Vec::<String>::new()
    );
    store.close();
    delete(&name).await;
}

/// Writes are issued when `apply` is called: batches take effect in call
/// order even when their futures are awaited in reverse.
pub async fn applies_take_effect_in_call_order() {
    let name = fresh_name("order");
    let store = open(&name).await;
    let pending: Vec<_> = (0..50u8)
        .map(|i| {
            let mut b = Batch::new();
            b.put("k", vec![i]).put(format!("n/{i:02}"), vec![i]);
            store.apply(b)
        })
        .collect();
    for write in pending.into_iter().rev() {
        write.await.expect("apply");
    }
    assert_eq!(store.get("k").await.expect("get"), Some(vec![49]));
    assert_eq!(store.list_keys("n/").await.expect("list_keys").len(), 50);
    store.close();
    delete(&name).await;
}

/// Failures of IndexedDB come back as `StoreError`s naming the database.
pub async fn errors_name_the_database() {
    // A database of a newer schema version than this build knows: VersionError.
    let name = fresh_name("newer");
    let db = Database::open(name.as_str())
        .with_version(7u32)
        .await
        .expect("open raw");
    db.close();
    let err = IdbStore::open(&name)
        .await
        .expect_err("a newer schema must not open");
    assert_eq!(err.code(), "store.io", "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&name) && text.contains("VersionError"),
        "{text}"
    );
    delete(&name).await;

    // A value that is not bytes (written by someone else): store.corrupt.
    let name = fresh_name("corrupt");
    open(&name).await.close();
    let db = Database::open(name.as_str()).await.expect("open raw");
    {
        let tx = db
            .transaction("chunks")
            .with_mode(TransactionMode::Readwrite)
            .build()
            .expect("tx");
        let chunks = tx.object_store("chunks").expect("store");
        chunks
            .put(JsValue::from_str("not bytes"))
            .with_key("bad/value")
            .without_key_type()
            .primitive()
            .expect("put")
            .await
            .expect("put done");
        tx.commit().await.expect("commit");
    }
    db.close();
    let store = open(&name).await;
    let err: StoreError = store.get("bad/value").await.expect_err("corrupt value");
    assert_eq!(err.code(), "store.corrupt", "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    let err = store.list_prefix("bad/").await.expect_err("corrupt value");
    assert_eq!(err.code(), "store.corrupt", "{err}");
    // Listing keys needs no values; the store stays usable.
    assert_eq!(
        store.list_keys("").await.expect("keys"),
        vec!["bad/value".to_string()]
    );
    let mut fix = Batch::new();
    fix.put("bad/value", b"ok".to_vec());
    store.apply(fix).await.expect("overwrite");
    assert_eq!(
        store.get("bad/value").await.expect("get"),
        Some(b"ok".to_vec())
    );
    store.close();
    delete(&name).await;
}

/// The tests really run in the kind of worker their binary is configured
/// for: `SharedWorkerGlobalScope` or `DedicatedWorkerGlobalScope`.
pub fn assert_global_scope(expected: &str) {
    let global: js_sys::Object = js_sys::global();
    assert_eq!(String::from(global.constructor().name()), expected);
}
