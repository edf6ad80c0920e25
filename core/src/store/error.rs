//! Errors of the storage layer.

use super::Key;

/// What went wrong in a [`ChunkStore`](super::ChunkStore).
///
/// Backend variants name the store (`store`: a file path, an IndexedDB
/// database name, `"memory"`) and, where one was involved, the key. Each
/// variant has a stable [`code`](StoreError::code) for the RPC layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A key or prefix breaks the rules of [`validate_key`](super::validate_key).
    #[error("invalid store key {key:?}: {reason}")]
    InvalidKey {
        /// The offending key (shortened if very long).
        key: Key,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// Reading or writing the underlying medium failed.
    #[error("storage I/O failed in {store}{}: {message}; check that the storage is available and writable, then retry", at_key(key))]
    Io {
        /// The store: its path or name.
        store: String,
        /// The key being read or written, if one.
        key: Option<Key>,
        /// The backend's own message.
        message: String,
    },

    /// Stored data failed an integrity check or could not be decoded.
    #[error("stored data is corrupt in {store}{}: {message}; restore the store from a backup or remove it and re-sync from a peer", at_key(key))]
    Corrupt {
        /// The store: its path or name.
        store: String,
        /// The affected key, if known.
        key: Option<Key>,
        /// The backend's own message.
        message: String,
    },

    /// The store is full: the disk, or the browser's quota for the origin.
    #[error("storage quota exceeded in {store}: {message}; free up space and retry")]
    QuotaExceeded {
        /// The store: its path or name.
        store: String,
        /// The backend's own message.
        message: String,
    },

    /// Another process (or another handle in this one) holds the store.
    #[error(
        "store {store} is in use: {message}; close the other program or tab using it and retry"
    )]
    Locked {
        /// The store: its path or name.
        store: String,
        /// The backend's own message.
        message: String,
    },
}

impl StoreError {
    /// The code of [`StoreError::QuotaExceeded`], also given when a site is
    /// over its share of the vault (`vault/quota.rs`).
    pub const QUOTA_EXCEEDED: &'static str = "store.quota_exceeded";

    /// A stable machine-readable code, e.g. `"store.corrupt"`.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::InvalidKey { .. } => "store.invalid_key",
            StoreError::Io { .. } => "store.io",
            StoreError::Corrupt { .. } => "store.corrupt",
            StoreError::QuotaExceeded { .. } => Self::QUOTA_EXCEEDED,
            StoreError::Locked { .. } => "store.locked",
        }
    }
}

fn at_key(key: &Option<Key>) -> String {
    match key {
        Some(key) => format!(" at key {key:?}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_store_and_key() {
        let e = StoreError::Corrupt {
            store: "/data/echo.redb".into(),
            key: Some("a/b".into()),
            message: "bad checksum".into(),
        };
        assert_eq!(e.code(), "store.corrupt");
        let text = e.to_string();
        assert!(
            text.contains("/data/echo.redb")
                && text.contains("\"a/b\"")
                && text.contains("bad checksum"),
            "{text}"
        );
        let e = StoreError::Io {
            store: "memory".into(),
            key: None,
            message: "x".into(),
        };
        assert!(!e.to_string().contains("at key"));
    }
}
