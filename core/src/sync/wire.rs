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

use automerge::ChangeHash;
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

impl SyncMessage {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        match postcard::take_from_bytes::<SyncMessage>(bytes) {
            Ok((m, [])) => Ok(m),
            Ok((_, rest)) => Err(SyncError::MalformedMessage {
                reason: format!("{} trailing bytes", rest.len()),
            }),
            Err(e) => Err(SyncError::MalformedMessage {
                reason: e.to_string(),
            }),
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
