//! The frame around every chunk the engine stores: a magic number, the
//! format version of the payload, and a CRC-32 of the payload.
//!
//! Storage can be damaged (a flipped bit on disk, a truncated write by a
//! buggy host, another program's data under our keys); the frame turns that
//! into an error naming what is wrong instead of a misread payload.

use thiserror::Error;

const MAGIC: &[u8; 4] = b"ECHO";
const HEADER_LEN: usize = 4 + 1 + 4;

/// Why a stored chunk's frame is not intact.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("not an ECHO chunk (bad or missing header)")]
    NotAChunk,
    #[error("format version {found} is not supported (expected {expected})")]
    UnsupportedVersion { found: u8, expected: u8 },
    #[error("checksum mismatch: the chunk was damaged")]
    Checksum,
}

/// Frames `payload`, written in format `version`.
pub fn frame(version: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a framed chunk, if its header and checksum are intact and
/// it is in format `version`.
pub fn unframe(version: u8, bytes: &[u8]) -> Result<&[u8], FrameError> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Err(FrameError::NotAChunk);
    }
    if bytes[4] != version {
        return Err(FrameError::UnsupportedVersion {
            found: bytes[4],
            expected: version,
        });
    }
    let crc = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
    let payload = &bytes[HEADER_LEN..];
    if crc32fast::hash(payload) != crc {
        return Err(FrameError::Checksum);
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_named() {
        let framed = frame(3, b"payload");
        assert_eq!(unframe(3, &framed), Ok(&b"payload"[..]));
        assert_eq!(
            unframe(4, &framed),
            Err(FrameError::UnsupportedVersion {
                found: 3,
                expected: 4
            })
        );
        for i in 9..framed.len() {
            let mut damaged = framed.clone();
            damaged[i] ^= 1;
            assert_eq!(unframe(3, &damaged), Err(FrameError::Checksum), "byte {i}");
        }
        assert_eq!(unframe(3, &framed[..8]), Err(FrameError::NotAChunk));
        assert_eq!(unframe(3, b"JUNK\x03\0\0\0\0"), Err(FrameError::NotAChunk));
        assert_eq!(unframe(3, &frame(3, b"")), Ok(&b""[..]));
    }
}
