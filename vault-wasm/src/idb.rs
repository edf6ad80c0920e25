//! [`IdbStore`]: the chunk store on IndexedDB.

use std::future::Future;

use echo_core::rpc::Durability;
use echo_core::store::{validate_key, validate_prefix, Batch, Key, Op, StoreError};
use indexed_db_futures::database::Database;
use indexed_db_futures::error::{Error as IdbError, OpenDbError};
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::{
    Transaction, TransactionDone, TransactionDurability, TransactionMode, TransactionOptions,
};
use indexed_db_futures::KeyRange;
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{describe_store, map_dom_error};
use crate::AsyncChunkStore;

/// The one object store of a vault database: chunk key → bytes.
const CHUNKS: &str = "chunks";
/// The schema version: 1 = one object store `chunks`, out-of-line string
/// keys, `Uint8Array` values.
const SCHEMA_VERSION: u32 = 1;

/// An [`AsyncChunkStore`] on one IndexedDB database (in a window or a
/// worker: SharedWorker, dedicated worker).
///
/// Layout: object store `chunks`, key = the chunk key (a string), value = a
/// `Uint8Array` of the bytes. Keys are printable ASCII, so IndexedDB's
/// UTF-16 code-unit order is the contract's byte-wise order.
///
/// - Reads run in a `readonly` transaction; [`list_prefix`](Self::list_prefix)
///   takes the key range `[prefix, prefix + "\x7f")` (every valid key starting
///   with `prefix` sorts inside it, no other key does) and reads keys and
///   values with `getAllKeys` + `getAll` in the same transaction, so the two
///   lists are one snapshot.
/// - [`apply`](AsyncChunkStore::apply) validates the whole batch, then opens
///   one `readwrite` transaction with durability `"strict"` (the browser
///   flushes to disk before `complete`), issues every put and delete in
///   order (a later op on a key wins), and resolves after the transaction's
///   `complete` event; an `abort` or `error` resolves `Err` and nothing of the
///   batch is applied.
/// - Dropping the handle closes the connection.
#[derive(Debug)]
pub struct IdbStore {
    db: Database,
    name: String,
}

impl IdbStore {
    /// Opens (creating if needed) the database `name`.
    pub async fn open(name: &str) -> Result<IdbStore, StoreError> {
        let db = Database::open(name)
            .with_version(SCHEMA_VERSION)
            .with_on_upgrade_needed(|event, db| {
                if event.old_version() < 1.0 {
                    db.create_object_store(CHUNKS).build()?;
                }
                Ok(())
            })
            .await
            .map_err(|e| open_error(name, e))?;
        Ok(IdbStore {
            db,
            name: name.to_owned(),
        })
    }

    /// Deletes the database `name` (close every handle on it first, or the
    /// deletion waits for them).
    pub async fn delete(name: &str) -> Result<(), StoreError> {
        Database::delete_by_name(name)
            .map_err(|e| open_error(name, e))?
            .await
            .map_err(|e| idb_error(name, None, e))
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the connection (the same as dropping the handle).
    pub fn close(self) {}

    fn read_transaction(&self) -> Result<Transaction<'_>, StoreError> {
        self.db
            .transaction(CHUNKS)
            .with_mode(TransactionMode::Readonly)
            .build()
            .map_err(|e| self.error(None, e))
    }

    fn error(&self, key: Option<&str>, e: IdbError) -> StoreError {
        idb_error(&self.name, key, e)
    }

    fn corrupt(&self, key: Option<&str>, message: String) -> StoreError {
        StoreError::Corrupt {
            store: describe_store(&self.name),
            key: key.map(str::to_owned),
            message,
        }
    }

    fn bytes(&self, key: &str, value: JsValue) -> Result<Vec<u8>, StoreError> {
        match value.dyn_into::<Uint8Array>() {
            Ok(array) => Ok(array.to_vec()),
            Err(other) => Err(self.corrupt(
                Some(key),
                format!(
                    "the stored value is not a Uint8Array but {}",
                    other.js_typeof().as_string().unwrap_or_default()
                ),
            )),
        }
    }

    /// `getAllKeys` (and with `values`, `getAll`) over the prefix's range, in
    /// one readonly transaction.
    async fn range(
        &self,
        prefix: &str,
        values: bool,
    ) -> Result<(Vec<Key>, Vec<JsValue>), StoreError> {
        validate_prefix(prefix)?;
        let tx = self.read_transaction()?;
        let store = tx.object_store(CHUNKS).map_err(|e| self.error(None, e))?;
        let range = prefix_range(prefix);
        // Both requests go out before either is awaited: one snapshot.
        let keys = match &range {
            Some(r) => store
                .get_all_keys::<JsValue>()
                .with_query::<String, KeyRange<String>>(r.clone())
                .primitive(),
            None => store.get_all_keys::<JsValue>().primitive(),
        }
        .map_err(|e| self.error(None, e))?;
        let all = if values {
            Some(
                match &range {
                    Some(r) => store
                        .get_all::<JsValue>()
                        .with_query::<String, KeyRange<String>>(r.clone())
                        .primitive(),
                    None => store.get_all::<JsValue>().primitive(),
                }
                .map_err(|e| self.error(None, e))?,
            )
        } else {
            None
        };
        let keys = keys
            .await
            .map_err(|e| self.error(None, e))?
            .map(|k| {
                let k = k.map_err(|e| self.error(None, e.into()))?;
                k.as_string().ok_or_else(|| {
                    self.corrupt(None, format!("a stored key is not a string: {k:?}"))
                })
            })
            .collect::<Result<Vec<Key>, StoreError>>()?;
        let values = match all {
            Some(all) => all
                .await
                .map_err(|e| self.error(None, e))?
                .map(|v| v.map_err(|e| self.error(None, e.into())))
                .collect::<Result<Vec<JsValue>, StoreError>>()?,
            None => Vec::new(),
        };
        Ok((keys, values))
    }

    /// Validates, then issues the whole batch in one strict readwrite
    /// transaction. Returns the transaction and a future of its end (`None`
    /// for an empty batch).
    fn issue(
        &self,
        batch: &Batch,
        durability: Durability,
    ) -> Result<Option<(Transaction<'_>, TransactionDone)>, StoreError> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(None);
        }
        let tx = self
            .db
            .transaction(CHUNKS)
            .with_mode(TransactionMode::Readwrite)
            .with_options(TransactionOptions::new().with_durability(match durability {
                Durability::Strict => TransactionDurability::Strict,
                Durability::Relaxed => TransactionDurability::Relaxed,
            }))
            .build()
            .map_err(|e| self.error(None, e))?;
        let done = tx.on_done().map_err(|e| self.error(None, e))?;
        {
            let store = tx.object_store(CHUNKS).map_err(|e| self.error(None, e))?;
            for op in batch.ops() {
                match op {
                    Op::Put { key, value } => {
                        let value = Uint8Array::from(value.as_slice());
                        // The request future is dropped: the request stays
                        // issued, its outcome is the transaction's.
                        let _ = store
                            .put(JsValue::from(value))
                            .with_key(key.as_str())
                            .without_key_type()
                            .primitive()
                            .map_err(|e| self.error(Some(key), e))?;
                    }
                    Op::Delete { key } => {
                        let _ = store
                            .delete(key.as_str())
                            .primitive()
                            .map_err(|e| self.error(Some(key), e))?;
                    }
                }
            }
        }
        Ok(Some((tx, done)))
    }
}

impl Drop for IdbStore {
    fn drop(&mut self) {
        self.db.clone().close();
    }
}

impl AsyncChunkStore for IdbStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_key(key)?;
        let tx = self.read_transaction()?;
        let store = tx
            .object_store(CHUNKS)
            .map_err(|e| self.error(Some(key), e))?;
        let value: Option<JsValue> = store
            .get(key)
            .primitive()
            .map_err(|e| self.error(Some(key), e))?
            .await
            .map_err(|e| self.error(Some(key), e))?;
        match value {
            Some(value) if !value.is_undefined() => Ok(Some(self.bytes(key, value)?)),
            _ => Ok(None),
        }
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
        let (keys, values) = self.range(prefix, true).await?;
        if keys.len() != values.len() {
            return Err(self.corrupt(
                None,
                format!(
                    "getAllKeys listed {} keys but getAll {} values in one transaction",
                    keys.len(),
                    values.len()
                ),
            ));
        }
        keys.into_iter()
            .zip(values)
            .map(|(key, value)| {
                let bytes = self.bytes(&key, value)?;
                Ok((key, bytes))
            })
            .collect()
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
        Ok(self.range(prefix, false).await?.0)
    }

    fn apply(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> {
        self.apply_with(batch, Durability::Strict)
    }
}

impl IdbStore {
    /// [`apply`](AsyncChunkStore::apply) with the transaction's durability:
    /// `Relaxed` answers once the browser has the data (a crash of the
    /// browser keeps it; a power cut may lose the last moments), `Strict`
    /// once it is flushed to disk.
    pub fn apply_with(
        &self,
        batch: Batch,
        durability: Durability,
    ) -> impl Future<Output = Result<(), StoreError>> + '_ {
        // Issued now, on the call; awaited below.
        let issued = self.issue(&batch, durability);
        async move {
            let Some((tx, done)) = issued? else {
                return Ok(()); // an empty batch: nothing to write
            };
            let finish = done.await;
            if finish.is_ok() {
                return Ok(());
            }
            // The transaction's error says why (QuotaExceededError, ...);
            // an error event may come before the abort that sets it.
            Err(match tx.error() {
                Some(e) => self.error(None, e),
                None => StoreError::Io {
                    store: describe_store(&self.name),
                    key: None,
                    message: format!("the write transaction ended with {finish:?}"),
                },
            })
        }
    }
}

/// `[prefix, prefix + "\x7f")`, or `None` (everything) for the empty prefix.
fn prefix_range(prefix: &str) -> Option<KeyRange<String>> {
    if prefix.is_empty() {
        return None;
    }
    Some(KeyRange::Bound(
        prefix.to_owned(),
        false,
        format!("{prefix}\u{7f}"),
        true,
    ))
}

fn idb_error(store: &str, key: Option<&str>, e: IdbError) -> StoreError {
    match e {
        IdbError::DomException(d) => {
            let d = web_sys::DomException::from(d);
            map_dom_error(store, key, &d.name(), &d.message())
        }
        other => StoreError::Io {
            store: describe_store(store),
            key: key.map(str::to_owned),
            message: other.to_string(),
        },
    }
}

fn open_error(store: &str, e: OpenDbError) -> StoreError {
    match e {
        OpenDbError::Base(e) => idb_error(store, None, e),
        other => StoreError::Io {
            store: describe_store(store),
            key: None,
            message: format!("cannot open the database: {other}"),
        },
    }
}
