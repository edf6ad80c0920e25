//! IndexedDB errors as [`StoreError`]s.

use echo_core::store::StoreError;

/// Maps an IndexedDB failure — a `DOMException`'s `name` and `message` — to
/// a [`StoreError`] naming the database `store`:
///
/// - `QuotaExceededError` → [`StoreError::QuotaExceeded`]
///   (`store.quota_exceeded`): the origin's quota is used up;
/// - anything else (`UnknownError`, `InvalidStateError` of a closed
///   connection, `VersionError`, an aborted transaction...) →
///   [`StoreError::Io`] (`store.io`), with the name and message kept.
///
/// ```
/// use echo_vault::map_dom_error;
/// let e = map_dom_error("echo-vault", None, "QuotaExceededError", "full");
/// assert_eq!(e.code(), "store.quota_exceeded");
/// let e = map_dom_error("echo-vault", Some("a/b"), "UnknownError", "disk");
/// assert_eq!(e.code(), "store.io");
/// assert!(e.to_string().contains("echo-vault"));
/// ```
pub fn map_dom_error(store: &str, key: Option<&str>, name: &str, message: &str) -> StoreError {
    let message = if message.is_empty() {
        name.to_owned()
    } else {
        format!("{name}: {message}")
    };
    match name {
        "QuotaExceededError" => StoreError::QuotaExceeded {
            store: describe_store(store),
            message,
        },
        _ => StoreError::Io {
            store: describe_store(store),
            key: key.map(str::to_owned),
            message,
        },
    }
}

/// How errors name a database: `IndexedDB database "name"`.
pub(crate) fn describe_store(name: &str) -> String {
    format!("IndexedDB database {name:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_io() {
        let e = map_dom_error("vault", Some("k"), "QuotaExceededError", "no room");
        assert_eq!(e.code(), "store.quota_exceeded");
        let text = e.to_string();
        assert!(
            text.contains("\"vault\"") && text.contains("no room"),
            "{text}"
        );
        for name in [
            "UnknownError",
            "InvalidStateError",
            "AbortError",
            "VersionError",
        ] {
            let e = map_dom_error("vault", Some("a/b"), name, "");
            assert_eq!(e.code(), "store.io", "{name}");
            let text = e.to_string();
            assert!(
                text.contains("\"vault\"") && text.contains(name) && text.contains("\"a/b\""),
                "{text}"
            );
        }
    }
}
