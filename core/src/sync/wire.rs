//! What a replica hands a peer: bundles with their changes, whole-document
//! snapshots, and the sync protocol's messages on a space channel.
//!
//! - [`WireBundle`]: a signed bundle header ([`SignedChanges`], compact)
//!   and, per run, the raw bytes of its changes. The receiver hashes the
//!   bytes and checks them against the signature.
//! - [`Snapshot`]: a space's shard documents in Automerge's compacted form
//!   and the headers of the bundles that cover every change in them. The
//!   receiver loads the documents, reads each change's hash, actor and
//!   sequence number from them, and checks every bundle; a document with a
//!   change no verified bundle covers is refused whole. This is how a new
//!   member gets a space at about the size of its compacted documents.
//! - [`SyncMessage`]: the protocol (see `session.rs`).
//!
//! All postcard; every decode is bounded by the message it reads from.

use std::io::{Read, Write};

use automerge::ChangeHash;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

use super::error::SyncError;
use crate::identity::{CredentialHash, SignedChanges};

/// Format version of space-channel messages.
pub const SYNC_VERSION: u16 = 1;

/// A bundle with its changes, as sent to a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBundle {
    pub header: SignedChanges,
    /// Per run (in the header's order), the changes' raw bytes in
    /// sequence order.
    pub changes: Vec<Vec<Vec<u8>>>,
}

impl WireBundle {
    /// Bytes of changes it carries.
    pub fn byte_len(&self) -> usize {
        self.changes.iter().flatten().map(Vec::len).sum::<usize>() + 200
    }
}

/// A space's shard documents and the bundles covering their changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `(shard, compacted document)`, sorted by shard.
    pub shards: Vec<(u16, Vec<u8>)>,
    pub bundles: Vec<SignedChanges>,
}

impl Snapshot {
    pub fn byte_len(&self) -> usize {
        self.shards.iter().map(|(_, d)| d.len()).sum::<usize>()
            + self
                .bundles
                .iter()
                .map(|b| 120 + 14 * b.runs.len())
                .sum::<usize>()
    }
}

/// What another vault needs to join a space: its layout and control log
/// (no data, no secret). An invitation carries it; its data comes from a
/// peer that holds the space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceExport {
    pub version: u8,
    pub shard_count: u16,
    /// `Credential::to_bytes` of every credential, parents first.
    pub credentials: Vec<Vec<u8>>,
}

impl SpaceExport {
    pub const VERSION: u8 = 1;

    /// Text form (URL-safe base64 of postcard), for the manage page and
    /// invitations.
    pub fn to_text(&self) -> String {
        data_encoding::BASE64URL_NOPAD.encode(&postcard::to_allocvec(self).unwrap_or_default())
    }

    pub fn from_text(text: &str) -> Result<Self, SyncError> {
        let bad = |reason: String| SyncError::MalformedMessage {
            reason: format!("not a space export: {reason}"),
        };
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(text.trim().as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        let export: SpaceExport = postcard::from_bytes(&bytes).map_err(|e| bad(e.to_string()))?;
        if export.version != Self::VERSION {
            return Err(bad(format!("version {}", export.version)));
        }
        Ok(export)
    }
}

/// The messages of a space channel (see `session.rs` for the flow).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// First message of each side: where its control log and data stand.
    /// When both sides' heads and digests match, this is all that flows.
    Hello {
        version: u16,
        /// The exchange this opens: 0 first; a side that must start over
        /// (its bundles were voided) sends the next round, and the other
        /// answers with its own `Hello` of that round.
        round: u32,
        control_heads: Vec<CredentialHash>,
        shard_count: u16,
        /// Per shard, a digest of its heads (0: no changes).
        digests: Vec<u64>,
    },
    /// Credentials the other side lacks (judged from its `Hello`).
    Credentials { credentials: Vec<Vec<u8>> },
    /// The sender's full heads of the shards whose digests differ.
    Heads { shards: Vec<(u16, Vec<[u8; 32]>)> },
    /// Bundles the other side lacks, with their changes.
    Bundles { bundles: Vec<WireBundle> },
    /// The start of a snapshot: the covering bundles and the shards (with
    /// their sizes) that follow as [`SyncMessage::SnapshotPart`]s.
    SnapshotBegin {
        bundles: Vec<SignedChanges>,
        shards: Vec<(u16, u32)>,
    },
    /// A piece of one shard's document, in order.
    SnapshotPart { shard: u16, bytes: Vec<u8> },
    /// The sender now durably holds these heads (an acknowledgement of
    /// what it received; the other side keeps it as the baseline of its
    /// next sync with this peer).
    Synced { shards: Vec<(u16, Vec<[u8; 32]>)> },
    /// The sender will not sync this space with this peer, and why.
    Refuse { code: String, reason: String },
}

/// How a [`SyncMessage`] travels: as itself, or deflated (`len`: its
/// encoded length). Variant 0 is the message, so a `Hello` still starts
/// with its version.
#[derive(Serialize)]
enum Outgoing<'a> {
    Plain(&'a SyncMessage),
    Deflated { len: u32, bytes: Vec<u8> },
}

/// [`Outgoing`], read back.
#[derive(Deserialize)]
enum Incoming {
    Plain(SyncMessage),
    Deflated { len: u32, bytes: Vec<u8> },
}

/// Messages at least this long are sent deflated when that saves a tenth.
pub const DEFLATE_FROM: usize = 1024;
/// The longest message a `Deflated` may expand to.
pub const MAX_INFLATED: usize = 32 << 20;

impl SyncMessage {
    /// The message's bytes: postcard, deflated when that pays (bundles of
    /// many small changes repeat their actor, field names and structure;
    /// snapshot parts are compressed documents already).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        let plain = postcard::to_allocvec(&Outgoing::Plain(self)).unwrap_or_default();
        if plain.len() < DEFLATE_FROM || matches!(self, SyncMessage::SnapshotPart { .. }) {
            return plain;
        }
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        let deflated = encoder
            .write_all(&plain)
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        if deflated.is_empty() || deflated.len() > plain.len() / 10 * 9 {
            return plain;
        }
        let wrapped = Outgoing::Deflated {
            len: plain.len() as u32,
            bytes: deflated,
        };
        postcard::to_allocvec(&wrapped).unwrap_or(plain)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        match decode_incoming(bytes)? {
            Incoming::Plain(m) => Ok(m),
            Incoming::Deflated { len, bytes } => {
                let len = len as usize;
                if len > MAX_INFLATED {
                    return Err(malformed(format!(
                        "a deflated message of {len} bytes (at most {MAX_INFLATED})"
                    )));
                }
                let mut plain = Vec::with_capacity(len);
                DeflateDecoder::new(bytes.as_slice())
                    .take(len as u64 + 1)
                    .read_to_end(&mut plain)
                    .map_err(|e| malformed(format!("a deflated message does not inflate: {e}")))?;
                if plain.len() != len {
                    return Err(malformed(format!(
                        "a deflated message inflates to {} bytes, not the {len} it said",
                        plain.len()
                    )));
                }
                match decode_incoming(&plain)? {
                    Incoming::Plain(m) => Ok(m),
                    Incoming::Deflated { .. } => Err(malformed(
                        "a deflated message inside a deflated message".into(),
                    )),
                }
            }
        }
    }

    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            SyncMessage::Hello { .. } => "hello",
            SyncMessage::Credentials { .. } => "credentials",
            SyncMessage::Heads { .. } => "heads",
            SyncMessage::Bundles { .. } => "bundles",
            SyncMessage::SnapshotBegin { .. } => "snapshot_begin",
            SyncMessage::SnapshotPart { .. } => "snapshot_part",
            SyncMessage::Synced { .. } => "synced",
            SyncMessage::Refuse { .. } => "refuse",
        }
    }
}

fn decode_incoming(bytes: &[u8]) -> Result<Incoming, SyncError> {
    match postcard::take_from_bytes::<Incoming>(bytes) {
        Ok((m, [])) => Ok(m),
        Ok((_, rest)) => Err(malformed(format!("{} trailing bytes", rest.len()))),
        Err(e) => Err(malformed(e.to_string())),
    }
}

fn malformed(reason: String) -> SyncError {
    SyncError::MalformedMessage { reason }
}

/// Change hashes as they travel (32 raw bytes each).
pub fn hashes_to_wire(hashes: &[ChangeHash]) -> Vec<[u8; 32]> {
    hashes.iter().map(|h| h.0).collect()
}

pub fn hashes_from_wire(hashes: &[[u8; 32]]) -> Vec<ChangeHash> {
    hashes.iter().map(|h| ChangeHash(*h)).collect()
}

/// A digest of one shard's heads (0 for no changes): equal digests mean
/// equal heads, short enough to send for every shard.
pub fn heads_digest(heads: &[ChangeHash]) -> u64 {
    use sha2::{Digest, Sha256};
    if heads.is_empty() {
        return 0;
    }
    let mut sorted = heads.to_vec();
    sorted.sort();
    let mut h = Sha256::new();
    h.update(b"echo/shard-heads/v1\0");
    for x in &sorted {
        h.update(x.0);
    }
    let out: [u8; 32] = h.finalize().into();
    u64::from_le_bytes(out[..8].try_into().unwrap_or([0; 8])).max(1)
}

#[cfg(test)]
mod deflate_tests {
    use super::*;

    fn big() -> SyncMessage {
        // Like bundles of small changes: much repeated, some random.
        let credentials = (0..200u32)
            .map(|i| {
                let mut c = b"the same actor, the same field names, ".to_vec();
                c.extend_from_slice(&i.to_le_bytes());
                c
            })
            .collect();
        SyncMessage::Credentials { credentials }
    }

    #[test]
    fn small_messages_go_plain_and_large_ones_deflated_both_read_back() {
        let small = SyncMessage::Refuse {
            code: "sync.refused".into(),
            reason: "no".into(),
        };
        let bytes = small.encode();
        assert_eq!(bytes[0], 0, "variant 0: the message itself");
        assert_eq!(SyncMessage::decode(&bytes).unwrap(), small);
        let big = big();
        let plain = postcard::to_allocvec(&Outgoing::Plain(&big)).unwrap();
        let bytes = big.encode();
        assert_eq!(bytes[0], 1, "deflated");
        assert!(
            bytes.len() * 4 < plain.len(),
            "{} vs {}",
            bytes.len(),
            plain.len()
        );
        assert_eq!(SyncMessage::decode(&bytes).unwrap(), big);
    }

    #[test]
    fn a_deflated_message_that_lies_or_bombs_is_refused() {
        let plain = postcard::to_allocvec(&Outgoing::Plain(&big())).unwrap();
        let deflate = |bytes: &[u8]| {
            let mut e = DeflateEncoder::new(Vec::new(), Compression::fast());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        };
        let wrap = |len: usize, bytes: Vec<u8>| {
            postcard::to_allocvec(&Outgoing::Deflated {
                len: len as u32,
                bytes,
            })
            .unwrap()
        };
        let cases = [
            // Says shorter or longer than it is.
            wrap(plain.len() - 1, deflate(&plain)),
            wrap(plain.len() + 1, deflate(&plain)),
            // Claims more than any message may be.
            wrap(MAX_INFLATED + 1, deflate(&plain)),
            // A mebibyte of zeros said to be 10 bytes: read only as far as said.
            wrap(10, deflate(&vec![0u8; 1 << 20])),
            // Not deflate at all.
            wrap(100, vec![0xff; 50]),
            // Deflated twice.
            {
                let inner = wrap(plain.len(), deflate(&plain));
                wrap(inner.len(), deflate(&inner))
            },
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let e = SyncMessage::decode(bytes).unwrap_err();
            assert!(
                matches!(e, SyncError::MalformedMessage { .. }),
                "case {i}: {e}"
            );
        }
    }
}
