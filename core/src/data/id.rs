//! Stable, printable, random identifiers for spaces and objects.

use std::fmt;
use std::str::FromStr;

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

/// Lower-case base32hex (RFC 4648, section 7).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// The printable form, without allocating: 26 characters of 5 bits each,
/// the last one's 2 low bits zero. Every call of the app protocol names its
/// ids in this form, so this and [`decode`] run several times per call.
fn encode_into(bytes: &[u8; ID_BYTES]) -> [u8; ID_TEXT_LEN] {
    let n = u128::from_be_bytes(*bytes);
    let mut out = [0u8; ID_TEXT_LEN];
    for (i, c) in out.iter_mut().enumerate() {
        // Character i holds bits 5i..5i+5 counted from the top of 130 bits
        // (the 128 of the id and 2 zero bits after them).
        let shift = 123 - 5 * i as i32;
        let bits = if shift >= 0 { n >> shift } else { n << -shift };
        *c = ALPHABET[(bits & 31) as usize];
    }
    out
}

/// The value of a lower-case base32hex character.
fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'v' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Parses the canonical form only: 26 lower-case characters whose last 2
/// bits are zero, so that one id has exactly one text form.
fn decode(kind: &'static str, text: &str) -> Result<[u8; ID_BYTES], InvalidId> {
    let invalid = || InvalidId {
        kind,
        text: text.chars().take(64).collect(),
    };
    let chars = text.as_bytes();
    if chars.len() != ID_TEXT_LEN {
        return Err(invalid());
    }
    let mut n: u128 = 0;
    for &c in &chars[..ID_TEXT_LEN - 1] {
        n = (n << 5) | u128::from(digit(c).ok_or_else(invalid)?);
    }
    let last = digit(chars[ID_TEXT_LEN - 1]).ok_or_else(invalid)?;
    if last & 0b11 != 0 {
        return Err(invalid());
    }
    n = (n << 3) | u128::from(last >> 2);
    Ok(n.to_be_bytes())
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
                let text = encode_into(&self.0);
                // Only alphabet characters: ASCII, so always UTF-8.
                f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
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

    /// The codec agrees with RFC 4648 base32hex (`data_encoding`'s), and
    /// every other spelling — upper case, nonzero trailing bits, a character
    /// out of the alphabet — is refused.
    #[test]
    fn the_text_form_is_rfc_4648_base32hex_in_lower_case() {
        use data_encoding::BASE32HEX_NOPAD;
        let mut bytes = [0u8; ID_BYTES];
        for round in 0..2_000u32 {
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (round.wrapping_mul(2_654_435_761).rotate_left(i as u32 * 5) >> 3) as u8;
            }
            if round == 1 {
                bytes = [0xff; ID_BYTES];
            }
            let text = ObjectId::from_bytes(bytes).to_string();
            assert_eq!(text, BASE32HEX_NOPAD.encode(&bytes).to_ascii_lowercase());
            assert_eq!(text.parse::<ObjectId>().unwrap().as_bytes(), &bytes);
            let reference = |t: &str| {
                BASE32HEX_NOPAD
                    .decode(t.to_ascii_uppercase().as_bytes())
                    .ok()
                    .filter(|d| {
                        d.len() == ID_BYTES && BASE32HEX_NOPAD.encode(d).to_ascii_lowercase() == t
                    })
            };
            // Every one-character change of the text: accepted exactly when
            // it is the canonical form of some id.
            let at = round as usize % ID_TEXT_LEN;
            for c in (b'0'..=b'z').chain([b'!', 0xc3]) {
                let mut changed = text.clone().into_bytes();
                changed[at] = c;
                let Ok(changed) = String::from_utf8(changed) else {
                    continue;
                };
                assert_eq!(
                    changed
                        .parse::<ObjectId>()
                        .ok()
                        .map(|id| id.as_bytes().to_vec()),
                    reference(&changed),
                    "{changed}"
                );
            }
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(ObjectId::random(), ObjectId::random());
    }
}
