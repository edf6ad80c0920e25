//! The vault's one interface to its host: [`Input`]s in, [`Output`]s out,
//! in the manner of `str0m` (`handle_input` / `poll_output`) and
//! `quinn-proto` (`poll_timeout` / a timeout input).
//!
//! The host names the connections it attaches ([`ConnId`] for app and
//! admin ports, [`LinkId`] for peer pipes, [`SignalPeer`] for peers on its
//! signaling network); the vault names the storage, key and dial
//! operations it asks for ([`ReadId`], [`WriteId`], [`KeyOpId`],
//! [`DialId`]) and gets each answered once, by id.

use zeroize::Zeroizing;

use crate::identity::KeyWrap;
use crate::peer::{ChannelBinding, CloseReason};
use crate::rpc::{
    AdminMessage, AdminReply, ClientMessage, Durability, RpcError, Undecodable, VaultMessage,
};
use crate::store::{Batch, StoreError};

pub use crate::peer::Millis;

/// An app or admin connection (a port), named by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// A pipe to a peer, named by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// A peer on the host's signaling network (one signaling session of
/// another vault), named by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignalPeer(pub u64);

/// A signaling topic: 32 opaque bytes the signaling server routes by (for
/// a space, `discovery::space_topic`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Topic(pub [u8; 32]);

/// A pipe to a peer the vault asked the host to open ([`Output::Dial`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DialId(pub u64);

/// A storage read the vault asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadId(pub u64);

/// A storage write (a flush) the vault asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

/// A sealing or unsealing of a secret key the vault asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyOpId(pub u64);

/// An admin message the host could not decode: the call id if it could be
/// read, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct AdminUndecodable {
    pub id: Option<u32>,
    pub error: RpcError,
}

/// Something that happened, for the vault to handle.
pub enum Input {
    /// The entries under the prefix of [`Output::Read`] `read`, or why
    /// storage could not be read.
    ReadDone {
        read: ReadId,
        result: Result<Vec<(String, Vec<u8>)>, StoreError>,
    },
    /// The batch of [`Output::Write`] `write` is durable (`Ok`), or was
    /// not written at all (`Err`).
    WriteDone {
        write: WriteId,
        result: Result<(), StoreError>,
    },
    /// The ciphertext of [`Output::Seal`] `op`, or why it failed.
    Sealed {
        op: KeyOpId,
        result: Result<Vec<u8>, String>,
    },
    /// The plaintext of [`Output::Unseal`] `op`, or why it failed.
    Unsealed {
        op: KeyOpId,
        result: Result<Zeroizing<Vec<u8>>, String>,
    },
    /// An app's port, tagged by the shell with the origin it checked.
    AppConnected { conn: ConnId, origin: String },
    /// A message on an app port (decoded by the host, or why not).
    AppMessage {
        conn: ConnId,
        message: Result<ClientMessage, Undecodable>,
    },
    /// A port of one of the vault's own top-level pages.
    AdminConnected { conn: ConnId },
    AdminMessage {
        conn: ConnId,
        message: Result<AdminMessage, AdminUndecodable>,
    },
    /// An app or admin port closed.
    Disconnected { conn: ConnId },
    /// A pipe to a peer is open; `binding` names its secure channel (for
    /// WebRTC: both DTLS fingerprints). `dial`: the [`Output::Dial`] it
    /// answers, if the vault asked for it.
    PeerConnected {
        link: LinkId,
        binding: ChannelBinding,
        dial: Option<DialId>,
    },
    /// Bytes from a peer, in any pieces.
    PeerBytes { link: LinkId, bytes: Vec<u8> },
    /// The pipe closed under us (the peer went away, the network failed).
    PeerClosed { link: LinkId },
    /// The host's signaling session is up (first, or again after it
    /// dropped): the vault joins its topics.
    SignalUp,
    /// The signaling session dropped; topics are to be joined again.
    SignalDown,
    /// The answer to [`Output::SignalJoin`]: who was on the topic already.
    SignalPeers {
        topic: Topic,
        peers: Vec<SignalPeer>,
    },
    /// Someone joined a topic after this vault.
    SignalJoined { topic: Topic, peer: SignalPeer },
    /// Someone left a topic (or its session ended).
    SignalLeft { topic: Topic, peer: SignalPeer },
    /// [`Output::Dial`] `dial` found no pipe.
    DialFailed { dial: DialId, reason: String },
    /// The host can open pipes again (in the browser: a vault page took
    /// the lead for WebRTC): dials that failed for want of one are tried
    /// now, not after their backoff, and dials still in flight through the
    /// previous dialer are void and tried again at once.
    CanDial,
    /// The host cannot open pipes now (in the browser: the vault page that
    /// drove WebRTC closed and no other is open). Apps watching a space's
    /// status hear it; [`Input::CanDial`] ends it.
    CannotDial,
    /// A message from a peer on a topic (invitations use it).
    SignalMessage {
        topic: Topic,
        from: SignalPeer,
        data: Vec<u8>,
    },
    /// Time passed: the deadline of [`Vault::poll_timeout`] (or any later
    /// one) was reached.
    ///
    /// [`Vault::poll_timeout`]: super::Vault::poll_timeout
    Timeout,
}

impl Input {
    /// [`Output::Seal`] carried out by a host whose wrapping cipher answers
    /// at once (natively: [`ChaChaKeyWrap`](crate::identity::ChaChaKeyWrap)).
    pub fn sealed_by(wrap: &impl KeyWrap, op: KeyOpId, plaintext: &[u8], aad: &[u8]) -> Input {
        Input::Sealed {
            op,
            result: wrap.seal(plaintext, aad).map_err(|e| e.to_string()),
        }
    }

    /// [`Output::Unseal`] carried out the same way.
    pub fn unsealed_by(wrap: &impl KeyWrap, op: KeyOpId, ciphertext: &[u8], aad: &[u8]) -> Input {
        Input::Unsealed {
            op,
            result: wrap.unseal(ciphertext, aad).map_err(|e| e.to_string()),
        }
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::ReadDone { read, result } => write!(
                f,
                "ReadDone({read:?}, {})",
                match result {
                    Ok(e) => format!("{} entries", e.len()),
                    Err(e) => e.to_string(),
                }
            ),
            Input::WriteDone { write, result } => write!(f, "WriteDone({write:?}, {result:?})"),
            Input::Sealed { op, .. } => write!(f, "Sealed({op:?})"),
            Input::Unsealed { op, .. } => write!(f, "Unsealed({op:?})"),
            Input::AppConnected { conn, origin } => write!(f, "AppConnected({conn:?}, {origin})"),
            Input::AppMessage { conn, .. } => write!(f, "AppMessage({conn:?})"),
            Input::AdminConnected { conn } => write!(f, "AdminConnected({conn:?})"),
            Input::AdminMessage { conn, .. } => write!(f, "AdminMessage({conn:?})"),
            Input::Disconnected { conn } => write!(f, "Disconnected({conn:?})"),
            Input::PeerConnected { link, .. } => write!(f, "PeerConnected({link:?})"),
            Input::PeerBytes { link, bytes } => write!(f, "PeerBytes({link:?}, {})", bytes.len()),
            Input::PeerClosed { link } => write!(f, "PeerClosed({link:?})"),
            Input::SignalUp => write!(f, "SignalUp"),
            Input::SignalDown => write!(f, "SignalDown"),
            Input::SignalPeers { topic, peers } => {
                write!(f, "SignalPeers({topic:?}, {peers:?})")
            }
            Input::SignalJoined { topic, peer } => write!(f, "SignalJoined({topic:?}, {peer:?})"),
            Input::SignalLeft { topic, peer } => write!(f, "SignalLeft({topic:?}, {peer:?})"),
            Input::DialFailed { dial, reason } => write!(f, "DialFailed({dial:?}, {reason})"),
            Input::SignalMessage { topic, from, data } => {
                write!(f, "SignalMessage({topic:?}, {from:?}, {} B)", data.len())
            }
            Input::CanDial => write!(f, "CanDial"),
            Input::CannotDial => write!(f, "CannotDial"),
            Input::Timeout => write!(f, "Timeout"),
        }
    }
}

/// Something for the host to do.
#[derive(PartialEq)]
pub enum Output {
    /// Send to an app connection.
    App {
        conn: ConnId,
        message: VaultMessage,
    },
    /// Send to an admin connection.
    Admin {
        conn: ConnId,
        message: AdminReply,
    },
    /// Close the connection's port (after sending what came before).
    Close {
        conn: ConnId,
    },
    /// List every entry under `prefix`, answer with [`Input::ReadDone`].
    Read {
        read: ReadId,
        prefix: String,
    },
    /// Write `batch` atomically and durably, answer with
    /// [`Input::WriteDone`]. One write is in flight at a time.
    /// `durability` says how durable before answering: `Strict` survives a
    /// power cut; `Relaxed` only crashes of the process, which a host may
    /// use when its storage offers it (IndexedDB `durability: "relaxed"`);
    /// a host without the difference writes every batch strictly.
    Write {
        write: WriteId,
        batch: Batch,
        durability: Durability,
    },
    /// Encrypt `plaintext` with the host's wrapping key and `aad` as
    /// associated data; answer with [`Input::Sealed`].
    Seal {
        op: KeyOpId,
        plaintext: Zeroizing<Vec<u8>>,
        aad: Vec<u8>,
    },
    /// Decrypt; answer with [`Input::Unsealed`].
    Unseal {
        op: KeyOpId,
        ciphertext: Vec<u8>,
        aad: Vec<u8>,
    },
    /// Send bytes to a peer, in order.
    PeerSend {
        link: LinkId,
        bytes: Vec<u8>,
    },
    /// Close the pipe (after sending what came before).
    PeerClose {
        link: LinkId,
        reason: CloseReason,
    },
    /// Join a signaling topic; answer with [`Input::SignalPeers`], then
    /// tell of joins and leaves. A host without signaling ignores it.
    SignalJoin {
        topic: Topic,
    },
    SignalLeave {
        topic: Topic,
    },
    /// Open a secure pipe to `peer`, met on `topic`; answer with
    /// [`Input::PeerConnected`] (naming `dial`) or [`Input::DialFailed`].
    Dial {
        dial: DialId,
        peer: SignalPeer,
        topic: Topic,
    },
    /// Send an opaque message to `to` on `topic` (invitations); the host
    /// carries it as its signaling server's `send`.
    SignalSend {
        topic: Topic,
        to: SignalPeer,
        data: Vec<u8>,
    },
    /// For the host's log and for tests.
    Event(VaultEvent),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::App { conn, message } => write!(f, "App({conn:?}, {message:?})"),
            Output::Admin { conn, message } => write!(f, "Admin({conn:?}, {message:?})"),
            Output::Close { conn } => write!(f, "Close({conn:?})"),
            Output::Read { read, prefix } => write!(f, "Read({read:?}, {prefix})"),
            Output::Write {
                write,
                batch,
                durability,
            } => write!(f, "Write({write:?}, {} ops, {durability:?})", batch.len()),
            Output::Seal { op, .. } => write!(f, "Seal({op:?})"),
            Output::Unseal { op, .. } => write!(f, "Unseal({op:?})"),
            Output::PeerSend { link, bytes } => write!(f, "PeerSend({link:?}, {})", bytes.len()),
            Output::PeerClose { link, reason } => write!(f, "PeerClose({link:?}, {reason})"),
            Output::SignalJoin { topic } => write!(f, "SignalJoin({topic:?})"),
            Output::SignalLeave { topic } => write!(f, "SignalLeave({topic:?})"),
            Output::Dial { dial, peer, topic } => write!(f, "Dial({dial:?}, {peer:?}, {topic:?})"),
            Output::SignalSend { topic, to, data } => {
                write!(f, "SignalSend({topic:?}, {to:?}, {} B)", data.len())
            }
            Output::Event(e) => write!(f, "Event({e:?})"),
        }
    }
}

/// What the vault reports about itself.
#[derive(Clone, Debug, PartialEq)]
pub enum VaultEvent {
    /// Booted: the identity is open (created on first run) and stored.
    Ready,
    /// Could not boot (storage or keys unusable); every call is answered
    /// with this error.
    Failed(RpcError),
    /// A peer proved who it is on a link.
    PeerAuthenticated {
        link: LinkId,
        identity: crate::identity::IdentityPublicKey,
        device: crate::identity::DevicePublicKey,
    },
    /// A space is being synced with a peer on a link.
    SyncStarted {
        link: LinkId,
        space: crate::data::SpaceId,
    },
    /// A space's sync with a peer on a link stopped, and why.
    SyncStopped {
        link: LinkId,
        space: crate::data::SpaceId,
        code: String,
        reason: String,
    },
    /// A peer's bundles were refused (codes, for the log).
    Rejected {
        space: crate::data::SpaceId,
        codes: Vec<&'static str>,
    },
    /// A restriction voided accepted bundles.
    Voided {
        space: crate::data::SpaceId,
        bundles: usize,
        changes: usize,
    },
    /// This vault's side of an invitation failed (the pages show the
    /// invitation's state; this is for the log).
    InvitationTrouble { invitation: String, error: RpcError },
}
