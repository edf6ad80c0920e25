//! Key and prefix rules shared by every store.

use super::error::StoreError;

/// The longest key (and prefix) a store accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Checks `key` against the key rules: 1 to [`MAX_KEY_LEN`] bytes, only
/// printable ASCII without space (`!`..=`~`), and non-empty `/`-separated
/// segments — no leading, trailing or doubled `/`.
///
/// ```
/// use echo_core::store::validate_key;
/// assert!(validate_key("space/abc/s/0001/snap").is_ok());
/// assert!(validate_key("").is_err());
/// assert!(validate_key("a//b").is_err());
/// assert!(validate_key("a/").is_err());
/// assert!(validate_key("ä").is_err());
/// ```
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let invalid = |reason: &'static str| {
        Err(StoreError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("a key must not be empty");
    }
    check_chars(key)?;
    if key.starts_with('/') {
        return invalid("a key must not start with '/'");
    }
    if key.ends_with('/') {
        return invalid("a key must not end with '/'");
    }
    if key.contains("//") {
        return invalid("a key must not contain an empty segment ('//')");
    }
    Ok(())
}

/// Checks a listing prefix: at most [`MAX_KEY_LEN`] bytes of printable ASCII
/// without space. Any shape is allowed, including the empty prefix (which
/// lists everything) and a trailing `/`.
pub fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    check_chars(prefix)
}

fn check_chars(key: &str) -> Result<(), StoreError> {
    let invalid = |reason: &'static str| {
        Err(StoreError::InvalidKey {
            key: shorten(key),
            reason,
        })
    };
    if key.len() > MAX_KEY_LEN {
        return invalid("a key must be at most 1024 bytes long");
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return invalid(
            "a key may contain only printable ASCII characters without spaces ('!' to '~')",
        );
    }
    Ok(())
}

/// Keeps error messages readable when someone passes a huge key.
fn shorten(key: &str) -> String {
    const SHOWN: usize = 64;
    if key.len() <= MAX_KEY_LEN {
        return key.to_owned();
    }
    let mut end = SHOWN;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &key[..end], key.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        for ok in ["a", "a/b", "space/x/s/0001/i/000000000001", "!~", "A-Z_0.9"] {
            assert!(validate_key(ok).is_ok(), "{ok:?} should be valid");
        }
        let long = "k".repeat(MAX_KEY_LEN);
        assert!(validate_key(&long).is_ok());
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a b",
            "a\0b",
            "a\nb",
            "é",
            "/",
            too_long.as_str(),
        ] {
            let err = validate_key(bad).expect_err(bad);
            assert_eq!(err.code(), "store.invalid_key");
        }
        for ok in ["", "a/", "a/b", "/"] {
            assert!(
                validate_prefix(ok).is_ok(),
                "{ok:?} should be a valid prefix"
            );
        }
        assert!(validate_prefix("a b").is_err());
        assert!(validate_prefix(&too_long).is_err());
    }

    #[test]
    fn long_keys_are_shortened_in_errors() {
        let err = validate_key(&"k".repeat(5000)).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
    }
}
