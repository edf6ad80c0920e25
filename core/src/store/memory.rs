//! An in-memory [`ChunkStore`] for tests and ephemeral spaces.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{validate_key, validate_prefix, Batch, ChunkStore, Key, Op, StoreError};

/// A [`ChunkStore`] in a `BTreeMap`. Nothing survives the process.
///
/// Cloning copies the contents: the clone is an independent store, which
/// makes "save, then open from the saved state" tests easy. An optional
/// quota (keys + values, in bytes) lets tests exercise
/// [`StoreError::QuotaExceeded`].
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    entries: BTreeMap<Key, Vec<u8>>,
    bytes: usize,
    quota: Option<usize>,
}

impl MemoryStore {
    /// An empty store without quota.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that rejects batches that would make its keys and
    /// values exceed `max_bytes` in total.
    pub fn with_quota(max_bytes: usize) -> Self {
        MemoryStore {
            quota: Some(max_bytes),
            ..Self::default()
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total bytes of all keys and values.
    pub fn byte_size(&self) -> usize {
        self.bytes
    }

    /// All entries, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    fn range<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a Key, &'a Vec<u8>)> + 'a {
        self.entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }
}

impl ChunkStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_key(key)?;
        Ok(self.entries.get(key).cloned())
    }

    fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
        validate_prefix(prefix)?;
        Ok(self
            .range(prefix)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
        validate_prefix(prefix)?;
        Ok(self.range(prefix).map(|(k, _)| k.clone()).collect())
    }

    fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
        batch.validate()?;
        if let Some(quota) = self.quota {
            // Size after the batch, computed without touching the map.
            let mut last: BTreeMap<&str, Option<usize>> = BTreeMap::new();
            for op in batch.ops() {
                let len = match op {
                    Op::Put { value, .. } => Some(value.len()),
                    Op::Delete { .. } => None,
                };
                last.insert(op.key(), len);
            }
            let mut after = self.bytes;
            for (key, len) in last {
                if let Some(old) = self.entries.get(key) {
                    after -= key.len() + old.len();
                }
                if let Some(len) = len {
                    after += key.len() + len;
                }
            }
            if after > quota {
                return Err(StoreError::QuotaExceeded {
                    store: "memory".into(),
                    message: format!("the batch would grow the store to {after} bytes, over its quota of {quota} bytes"),
                });
            }
        }
        for op in batch {
            match op {
                Op::Put { key, value } => {
                    self.bytes += key.len() + value.len();
                    if let Some(old) = self.entries.insert(key.clone(), value) {
                        self.bytes -= key.len() + old.len();
                    }
                }
                Op::Delete { key } => {
                    if let Some(old) = self.entries.remove(&key) {
                        self.bytes -= key.len() + old.len();
                    }
                }
            }
        }
        Ok(())
    }
}
