//! Stable, printable, random identifiers for spaces and objects.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32HEX_NOPAD;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A text that is not the canonical form of an id. Its
/// [`code`](InvalidId::code) is stable and is what hosts pass on to apps;
/// the model reports it as `ModelError::InvalidId`, unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {kind} {text:?}: expected 26 lower-case base32hex characters")]
pub struct InvalidId {
    /// What was being parsed: `"space id"` or `"object id"`.
    pub kind: &'static str,
    /// The text, cut to its first 64 characters.
    pub text: String,
}

impl InvalidId {
    /// A stable, machine-readable code for this error (ids were a part of
    /// the model first, hence the `model.` prefix).
    pub fn code(&self) -> &'static str {
        "model.invalid_id"
    }
}

const ID_BYTES: usize = 16;
/// Length of the printable form: 16 bytes in lower-case base32hex, no padding.
pub const ID_TEXT_LEN: usize = 26;

fn random_bytes() -> [u8; ID_BYTES] {
    let mut bytes = [0u8; ID_BYTES];
    // The OS random source failing is not recoverable for an id generator.
    getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
    bytes
}

fn encode(bytes: &[u8; ID_BYTES]) -> String {
    BASE32HEX_NOPAD.encode(bytes).to_ascii_lowercase()
}

fn decode(kind: &'static str, text: &str) -> Result<[u8; ID_BYTES], InvalidId> {
    let invalid = || InvalidId {
        kind,
        text: text.chars().take(64).collect(),
    };
    if text.len() != ID_TEXT_LEN {
        return Err(invalid());
    }
    let upper = text.to_ascii_uppercase();
    let decoded = BASE32HEX_NOPAD
        .decode(upper.as_bytes())
        .map_err(|_| invalid())?;
    let bytes: [u8; ID_BYTES] = decoded.try_into().map_err(|_| invalid())?;
    // Reject non-canonical spellings so one id has exactly one text form.
    if encode(&bytes) != text {
        return Err(invalid());
    }
    Ok(bytes)
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name([u8; ID_BYTES]);

        impl $name {
            /// A fresh id from the OS random source.
            pub fn random() -> Self {
                Self(random_bytes())
            }
            pub fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
                Self(bytes)
            }
            pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(text: &str) -> Result<Self, InvalidId> {
                decode($kind, text).map(Self)
            }
        }
    };
}

random_id!(
    /// Names a space: the unit of sharing and access control.
    SpaceId,
    "space id"
);
random_id!(
    /// Names an object within a space. Stable for the object's life.
    ObjectId,
    "object id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = ObjectId::random();
        let text = id.to_string();
        assert_eq!(text.len(), ID_TEXT_LEN);
        assert_eq!(text.parse::<ObjectId>().unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "x",
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "00000000000000000000000000000",
            "!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(
                matches!(bad.parse::<SpaceId>(), Err(InvalidId { .. })),
                "{bad}"
            );
        }
        // Upper-case spelling of a valid id is not canonical.
        let id = SpaceId::random().to_string().to_ascii_uppercase();
        assert!(id.parse::<SpaceId>().is_err());
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(ObjectId::random(), ObjectId::random());
    }
}
