//! The vault: the sans-IO service that apps, the vault's own pages and
//! peers talk to. One machine, driven through one pair:
//! [`Vault::handle_input`] (`now`, an [`Input`]) and [`Vault::poll_output`]
//! (an [`Output`]), plus [`Vault::poll_timeout`]. It boots itself (reads
//! its records, asks the host to seal or unseal keys), asks for every
//! storage read it needs, makes every write, and decides every call; the
//! host moves bytes and runs storage. Randomness comes only from the
//! generator seeded at construction ([`VaultConfig::seed`]), time only from
//! `now`, so a simulated run replays exactly from its seed.
//!
//! | file | part | owns |
//! |---|---|---|
//! | `machine.rs` | — | [`Input`], [`Output`], [`VaultEvent`] and the ids of both sides |
//! | `keys.rs` | boot, keys | the identity and device, created on first run or unsealed |
//! | `apps.rs` | `Apps` | app and admin connections, sessions, live queries, parked messages |
//! | `grants.rs` | `Grants` | the user's decisions about app origins |
//! | `guard.rs` | — | what an app connection may cost: handshake first, rates, caps per origin, idle expiry |
//! | `spaces.rs` | `Spaces` | the spaces held: records, and replicas open or being read |
//! | `commit.rs` | `Commit` | staged writes, answers held for durability, the flush in flight |
//! | `peers.rs` | `Peers` | links to peers and their sync sessions |
//! | `discovery.rs` | `Discovery` | signaling topics of the spaces held, whom to dial, redials |
//! | `status.rs` | — | how a space is connected, as apps see it (`space.status`, `space_status` events) |
//! | `api.rs` | — | app calls (API v1) |
//! | `admin.rs` | — | management calls |
//! | `flush.rs` | — | group commit: one storage batch for every write since the last one |
//! | `records.rs` | — | the vault's stored records (`vault/`) |
//!
//! # Driving it
//!
//! ```text
//! host                                   Vault
//!   Vault::new(config) ────────────────► Read "vault/"              (boot, keys.rs)
//!   ReadDone / Sealed / Unsealed ──────► … Write(identity) … Event(Ready)
//!   AppConnected / AppMessage ─────────► decides; parks a call until the spaces it
//!                                        needs are read (Read "space/<id>/")
//!   SignalUp / SignalPeers / Joined ───► SignalJoin / SignalLeave / Dial (discovery.rs)
//!   PeerConnected / PeerBytes ─────────► PeerSend / PeerClose
//!   ◄─ poll_output(): App/Admin/Close/Read/Write/Seal/Unseal/PeerSend/PeerClose/Event
//!      (a flush is made when nothing else is queued: every input handed over
//!       before draining shares one storage transaction)
//!   WriteDone ─────────────────────────► answers released (or failed and reverted)
//!   poll_timeout() → Timeout ──────────► heartbeats, expiries
//! ```
//!
//! **Durability**: a call that writes is answered only after the flush
//! holding its write completed. **Origins**: an app connection carries the
//! origin the shell tagged it with; nothing in a message can change it; an
//! origin the user has not allowed gets `rpc.not_authorized` for everything
//! but `ping`, and an allowed one sees only the spaces granted to it —
//! before anything is read for it. **Peers**: see `peers.rs`.

mod admin;
mod api;
mod apps;
mod commit;
mod discovery;
mod error;
mod flush;
mod grants;
mod guard;
mod invitations;
mod keys;
mod machine;
mod peers;
mod quota;
mod records;
mod spaces;
mod status;

use std::collections::{BTreeSet, VecDeque};

pub use admin::{MAX_DISPLAY_NAME, MAX_ORIGIN};
pub use api::MAX_AWAITING;
pub use discovery::{space_topic, DIAL_TIMEOUT, FIRST_BACKOFF, MAX_BACKOFF};
pub use error::VaultError;
pub use guard::{
    CHATTER_BURST, CHATTER_PER_SECOND, IDLE_TIMEOUT, MAX_CONNS_PER_ORIGIN,
    MAX_SUBSCRIPTIONS_PER_ORIGIN, MAX_UNGRANTED_CONNS, STRIKE_BURST,
};
pub use invitations::EXPIRED_REFUSAL;
pub use machine::{
    AdminUndecodable, ConnId, DialId, Input, KeyOpId, LinkId, Millis, Output, ReadId, SignalPeer,
    Topic, VaultEvent, WriteId,
};
pub use records::PREFIX;
/// Secrets in [`Input`]/[`Output`] are zeroized when dropped.
pub use zeroize::Zeroizing;

use apps::{Apps, ConnKind, Parked, SubKey};
use commit::Commit;
use discovery::Discovery;
use grants::Grants;
use invitations::Invitations;
use keys::{Boot, Keys};
use peers::Peers;
use records::StoredVault;
use spaces::{SlotState, Spaces};

use crate::data::SpaceId;
use crate::identity::IdentityPublicKey;
use crate::model::{documents_prefix, space_prefix};
use crate::peer::PeerConfig;
use crate::rng::EngineRng;
use crate::rpc::{AdminMessage, ClientMessage, Request, RpcError, VaultMessage};
use crate::store::CompactionPolicy;
use crate::sync::Replica;

/// How a vault is made.
#[derive(Clone)]
pub struct VaultConfig {
    /// Seeds the engine's generator (ids, keys, nonces): from the OS in a
    /// host ([`EngineRng::from_os`] … `bytes()`), from the run's seed in
    /// the simulator.
    pub seed: [u8; 32],
    /// The vault's build name, as `welcome` tells it.
    pub build: String,
    pub policy: CompactionPolicy,
    pub peer: PeerConfig,
    /// App connections not heard from for this long are closed
    /// ([`IDLE_TIMEOUT`] by default): for hosts whose ports do not tell
    /// when their other end went away (browsers other than Chromium). A
    /// host whose ports always tell (the native one) sets `None`.
    pub app_idle_timeout: Option<Millis>,
    /// The identity the host knows this vault had, from a marker it keeps
    /// outside the vault's storage (`None`: none known). A boot that finds
    /// no identity in storage then fails with `rpc.storage_lost` instead of
    /// making a new one: the storage was deleted under the vault (Chromium
    /// deletes a site's IndexedDB it finds damaged after a crash), and a
    /// silent new, empty vault would hide that. The host clears its marker
    /// only when the person chooses to start a new vault.
    pub expected_identity: Option<IdentityPublicKey>,
    /// The most the spaces one app origin created may hold in storage, in
    /// bytes (`None`: no limit). The browser host gives each site a share
    /// of its storage quota (`quota.rs`).
    pub origin_quota: Option<u64>,
}

/// The seed decides every key the vault makes: it never appears in a log.
impl std::fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConfig")
            .field("seed", &"<redacted>")
            .field("build", &self.build)
            .field("policy", &self.policy)
            .field("peer", &self.peer)
            .field("app_idle_timeout", &self.app_idle_timeout)
            .field("expected_identity", &self.expected_identity)
            .field("origin_quota", &self.origin_quota)
            .finish()
    }
}

impl VaultConfig {
    pub fn new(seed: [u8; 32]) -> Self {
        VaultConfig {
            seed,
            build: format!("echo-vault {}", env!("CARGO_PKG_VERSION")),
            policy: CompactionPolicy::default(),
            peer: PeerConfig::default(),
            app_idle_timeout: Some(IDLE_TIMEOUT),
            expected_identity: None,
            origin_quota: None,
        }
    }
}

#[derive(Debug)]
enum Phase {
    Booting(Box<Boot>),
    Ready,
    Failed(RpcError),
}

/// The vault service. See the module docs.
pub struct Vault {
    now: Millis,
    rng: EngineRng,
    config: VaultConfig,
    phase: Phase,
    keys: Option<Keys>,
    apps: Apps,
    grants: Grants,
    spaces: Spaces,
    commit: Commit,
    peers: Peers,
    discovery: Discovery,
    invitations: Invitations,
    next_id: u64,
    /// When idle app connections are next looked for (`guard.rs`).
    next_sweep: Millis,
    outputs: VecDeque<Output>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("phase", &self.phase)
            .field("keys", &self.keys)
            .field("spaces", &self.spaces.slots.len())
            .field("connections", &self.apps.conns.len())
            .field("links", &self.peers.links.len())
            .finish()
    }
}

impl Vault {
    /// A vault that boots from its host's storage: the first output reads
    /// the vault's records.
    pub fn new(now: Millis, config: VaultConfig) -> Self {
        let rng = EngineRng::from_seed(config.seed);
        let peer = config.peer.clone();
        let mut v = Vault {
            now,
            rng,
            config,
            phase: Phase::Booting(Box::new(Boot::Storing)),
            keys: None,
            apps: Apps::default(),
            grants: Grants::default(),
            spaces: Spaces::default(),
            commit: Commit::default(),
            peers: Peers {
                config: peer,
                ..Peers::default()
            },
            discovery: Discovery::default(),
            invitations: Invitations::default(),
            next_id: 0,
            next_sweep: now,
            outputs: VecDeque::new(),
        };
        let read = ReadId(v.next_id());
        v.phase = Phase::Booting(Box::new(Boot::Reading(read)));
        v.outputs.push_back(Output::Read {
            read,
            prefix: PREFIX.to_owned(),
        });
        v
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The vault's build name, as `welcome` tells it.
    pub fn build(&self) -> &str {
        &self.config.build
    }

    /// Whether the vault has booted.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// The identity this vault acts as, once its keys are open (or made).
    pub fn identity(&self) -> Option<IdentityPublicKey> {
        self.keys.as_ref().map(|k| k.identity)
    }

    /// Spaces open in memory.
    pub fn open_spaces(&self) -> usize {
        self.spaces
            .slots
            .values()
            .filter(|s| matches!(s.state, SlotState::Open(_)))
            .count()
    }

    /// An open space's replica, for reading (tests, benchmarks, the host's
    /// log).
    pub fn replica_of(&self, space: &SpaceId) -> Option<&Replica> {
        self.spaces.replica_ref(space)
    }

    /// Every bundle an open space holds, with its changes — what a peer
    /// would be sent. For tests that audit a vault from outside.
    #[cfg(feature = "test-support")]
    pub fn wire_bundles(
        &mut self,
        space: &SpaceId,
    ) -> Result<Vec<crate::sync::WireBundle>, crate::sync::SyncError> {
        let Some(replica) = self.spaces.replica(space) else {
            return Ok(Vec::new());
        };
        (0..replica.bundles().len())
            .map(|i| replica.wire_bundle(i))
            .collect()
    }

    /// An open space's replica, to change from outside the machine (its
    /// storage then differs from memory until the next flush). For
    /// benchmarks and tests that measure or damage a replica.
    #[cfg(feature = "test-support")]
    pub fn replica_mut(&mut self, space: &SpaceId) -> Option<&mut Replica> {
        self.spaces.replica(space)
    }

    /// Applies a write to an open space without the role check, sealed and
    /// stored by the next flush like any other: what a device does with
    /// its own key when it misbehaves or has not heard it lost the right
    /// to write (`None`: the space is not open). For tests that honest peers refuse such bundles.
    #[cfg(feature = "test-support")]
    pub fn write_unchecked(
        &mut self,
        space: &SpaceId,
        batch: crate::model::WriteBatch,
    ) -> Option<Result<crate::model::Committed, crate::sync::SyncError>> {
        let committed = self.spaces.replica(space)?.write_unchecked(batch);
        self.commit.seal_for_peers.insert(*space);
        Some(committed)
    }

    // ----------------------------------------------------------- the machine

    /// Hands the vault one input. Mistakes of the host (an answer to
    /// something never asked, a connection id in use) are errors; all else
    /// is answered through [`poll_output`](Self::poll_output).
    pub fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), VaultError> {
        self.now = self.now.max(now);
        match input {
            Input::ReadDone { read, result } => self.on_read(read, result)?,
            Input::WriteDone { write, result } => self.on_write(write, result),
            Input::Sealed { op, result } => self.on_sealed(op, result)?,
            Input::Unsealed { op, result } => self.on_unsealed(op, result)?,
            Input::AppConnected { conn, origin } => {
                let kind = ConnKind::App {
                    origin: origin.clone(),
                };
                if !self.apps.connect(conn, kind, self.now) {
                    return Err(VaultError::Host {
                        reason: format!("connection {} is already attached", conn.0),
                    });
                }
                self.admit_app(conn, &origin);
                self.admin_changed();
            }
            Input::AdminConnected { conn } => {
                if !self.apps.connect(conn, ConnKind::Admin, self.now) {
                    return Err(VaultError::Host {
                        reason: format!("connection {} is already attached", conn.0),
                    });
                }
            }
            Input::AppMessage { conn, message } => {
                if self.screen(conn, &message) {
                    self.park(conn, Parked::App(message))
                }
            }
            Input::AdminMessage { conn, message } => self.park(conn, Parked::Admin(message)),
            Input::Disconnected { conn } => self.disconnect(conn),
            Input::PeerConnected {
                link,
                binding,
                dial,
            } => {
                if let Some(dial) = dial {
                    self.dial_connected(dial, link);
                }
                self.peer_connected(link, binding);
            }
            Input::PeerBytes { link, bytes } => self.peer_bytes(link, &bytes),
            Input::PeerClosed { link } => self.peer_closed(link),
            Input::SignalUp => {
                self.invitations_signal_down();
                self.signal_up();
            }
            Input::SignalDown => {
                self.invitations_signal_down();
                self.signal_down();
            }
            Input::SignalPeers { topic, peers } if self.is_invitation_topic(&topic) => {
                self.invitation_peers(topic, peers)
            }
            Input::SignalPeers { topic, peers } => self.signal_peers(topic, peers),
            Input::SignalJoined { topic, peer } if self.is_invitation_topic(&topic) => {
                self.invitation_peer_joined(topic, peer)
            }
            Input::SignalJoined { topic, peer } => self.signal_joined(topic, peer),
            Input::SignalLeft { topic, peer } if self.is_invitation_topic(&topic) => {
                self.invitation_peer_left(topic, peer)
            }
            Input::SignalLeft { topic, peer } => self.signal_left(topic, peer),
            Input::SignalMessage { topic, from, data } => {
                self.invitation_message(topic, from, &data)
            }
            Input::CanDial => self.dial_now(),
            Input::CannotDial => self.dial_unavailable(),
            Input::DialFailed { dial, .. } => self.dial_failed(dial),
            Input::Timeout => self.peers_timeout(),
        }
        self.sweep_idle();
        self.pump_peers();
        self.discover();
        if self.keys.is_some() {
            self.tend_invitations();
        }
        self.push_statuses();
        Ok(())
    }

    /// The next thing for the host to do. When nothing else is queued and
    /// writes wait, this is the flush that stores them.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(out) = self.outputs.pop_front() {
            return Some(out);
        }
        let flushing = match &self.phase {
            Phase::Ready => true,
            Phase::Booting(b) => matches!(**b, Boot::Storing),
            Phase::Failed(_) => false,
        };
        if flushing {
            match self.start_flush() {
                Ok(Some(write)) => return Some(write),
                Ok(None) => {}
                Err(e) => self.flush_unpreparable(e),
            }
        }
        self.outputs.pop_front()
    }

    /// When to hand the vault [`Input::Timeout`] next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let mut at = self.peers.poll_timeout();
        if let Some(d) = self.discovery.poll_timeout(&self.linked_devices()) {
            at = Some(at.map_or(d, |a| a.min(d)));
        }
        if let Some(d) = self.invitations.poll_timeout() {
            at = Some(at.map_or(d, |a| a.min(d)));
        }
        if let Some(d) = self.sweep_timeout() {
            at = Some(at.map_or(d, |a| a.min(d)));
        }
        if let Some(d) = self.retry_timeout() {
            at = Some(at.map_or(d, |a| a.min(d)));
        }
        let waiting = self
            .spaces
            .slots
            .values()
            .any(|s| matches!(&s.state, SlotState::Open(r) if r.pending() > 0));
        if waiting {
            let expiry = self.now + 60_000;
            at = Some(at.map_or(expiry, |a| a.min(expiry)));
        }
        at
    }

    /// A flush could not even be prepared (a space's data failed to
    /// encode or load): its calls fail alike, and it is logged.
    fn flush_unpreparable(&mut self, e: RpcError) {
        let held = std::mem::take(&mut self.commit.held);
        for h in held {
            match h {
                commit::Held::App { conn, id, .. } => {
                    if let Some(c) = self.apps.get_mut(conn) {
                        c.awaiting.remove(&id);
                    }
                    self.outputs.push_back(Output::App {
                        conn,
                        message: VaultMessage::Response {
                            id,
                            result: Err(e.clone()),
                        },
                    });
                }
                commit::Held::Admin { conn, id, .. } => self.admin_answer(conn, id, Err(e.clone())),
                // What it follows from was not stored: it must not leave.
                commit::Held::Signal { .. } => {}
            }
        }
        self.outputs.push_back(Output::Event(VaultEvent::Failed(e)));
    }

    // ------------------------------------------------------------------ boot

    fn on_read(
        &mut self,
        read: ReadId,
        result: Result<Vec<(String, Vec<u8>)>, crate::store::StoreError>,
    ) -> Result<(), VaultError> {
        if matches!(&self.phase, Phase::Booting(b) if matches!(**b, Boot::Reading(r) if r == read))
        {
            match result
                .map_err(VaultError::from)
                .and_then(StoredVault::parse)
            {
                Ok(stored) => self.boot_with(stored)?,
                Err(e) => self.boot_failed(storage_error(e)),
            }
            return Ok(());
        }
        if let Some(space) = self.spaces.opening(read) {
            self.space_read(space, result);
        } else if let Some(space) = self.spaces.reading_documents(read) {
            self.documents_read(space, result);
        } else {
            return Err(VaultError::Host {
                reason: format!("read {} was never asked for", read.0),
            });
        }
        Ok(())
    }

    fn boot_with(&mut self, stored: StoredVault) -> Result<(), VaultError> {
        match stored.sealed_device() {
            Ok(Some(sealed)) => {
                let op = KeyOpId(self.next_id());
                self.outputs.push_back(Output::Unseal {
                    op,
                    ciphertext: sealed.ciphertext().to_vec(),
                    aad: sealed.aad(),
                });
                self.phase = Phase::Booting(Box::new(Boot::Unsealing { op, stored, sealed }));
            }
            Ok(None) if self.config.expected_identity.is_some() => {
                let known = self.config.expected_identity.map(|i| i.to_string());
                self.boot_failed(storage_lost(known.as_deref().unwrap_or_default()));
            }
            Ok(None) => {
                let (identity, device) = keys::generate(&mut self.rng);
                let requests = [identity.seal_request(), device.seal_request()];
                let ops = [KeyOpId(self.next_id()), KeyOpId(self.next_id())];
                for (op, request) in ops.iter().zip(&requests) {
                    self.outputs.push_back(Output::Seal {
                        op: *op,
                        plaintext: keys::plaintext_of(request),
                        aad: request.aad(),
                    });
                }
                let [a, b] = requests;
                self.phase = Phase::Booting(Box::new(Boot::Sealing {
                    identity,
                    device,
                    stored,
                    requests: [(ops[0], a), (ops[1], b)],
                    ciphertexts: [None, None],
                }));
            }
            Err(e) => self.boot_failed(RpcError::from(e)),
        }
        Ok(())
    }

    fn on_unsealed(
        &mut self,
        op: KeyOpId,
        result: Result<zeroize::Zeroizing<Vec<u8>>, String>,
    ) -> Result<(), VaultError> {
        let asked = matches!(&self.phase, Phase::Booting(b) if matches!(**b, Boot::Unsealing { op: o, .. } if o == op));
        if !asked {
            return Err(VaultError::Host {
                reason: format!("key operation {} was never asked for", op.0),
            });
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Booting(Box::new(Boot::Storing)));
        let Phase::Booting(boot) = phase else {
            return Ok(());
        };
        let Boot::Unsealing { stored, sealed, .. } = *boot else {
            return Ok(());
        };
        let keys = match result {
            Ok(plain) => Keys::open(&stored, &sealed, &plain),
            Err(reason) => {
                self.boot_failed(RpcError::new(
                    crate::rpc::codes::STORAGE_BLOCKED,
                    format!("the vault's keys cannot be opened: {reason}"),
                ));
                return Ok(());
            }
        };
        match keys {
            Ok(keys) => {
                self.keys = Some(keys);
                self.adopt_records(stored);
                self.booted();
            }
            Err(e) => self.boot_failed(RpcError::from(e)),
        }
        Ok(())
    }

    fn on_sealed(
        &mut self,
        op: KeyOpId,
        result: Result<Vec<u8>, String>,
    ) -> Result<(), VaultError> {
        let Phase::Booting(boot) = &mut self.phase else {
            return Err(VaultError::Host {
                reason: format!("key operation {} was never asked for", op.0),
            });
        };
        let Boot::Sealing {
            requests,
            ciphertexts,
            ..
        } = &mut **boot
        else {
            return Err(VaultError::Host {
                reason: format!("key operation {} was never asked for", op.0),
            });
        };
        let Some(i) = requests.iter().position(|(o, _)| *o == op) else {
            return Err(VaultError::Host {
                reason: format!("key operation {} was never asked for", op.0),
            });
        };
        match result {
            Ok(ct) => ciphertexts[i] = Some(ct),
            Err(reason) => {
                self.boot_failed(RpcError::new(
                    crate::rpc::codes::STORAGE_BLOCKED,
                    format!("the vault cannot protect its new keys: {reason}"),
                ));
                return Ok(());
            }
        }
        if ciphertexts.iter().any(Option::is_none) {
            return Ok(());
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Booting(Box::new(Boot::Storing)));
        let Phase::Booting(boot) = phase else {
            return Ok(());
        };
        let Boot::Sealing {
            identity,
            device,
            stored,
            requests,
            ciphertexts,
        } = *boot
        else {
            return Ok(());
        };
        let [(_, a), (_, b)] = requests;
        let [Some(ca), Some(cb)] = ciphertexts else {
            return Ok(());
        };
        match Keys::create(identity, device, [a, b], [ca, cb]) {
            Ok(keys) => {
                self.keys = Some(keys);
                self.adopt_records(stored);
                // Ready once the identity record is stored (flush.rs).
            }
            Err(e) => self.boot_failed(RpcError::from(e)),
        }
        Ok(())
    }

    fn adopt_records(&mut self, stored: StoredVault) {
        self.grants = Grants::from_stored(stored.grants);
        self.spaces = Spaces::from_stored(stored.spaces);
        self.invitations.adopt(stored.invitations);
    }

    /// Booted: calls that waited run.
    fn booted(&mut self) {
        self.phase = Phase::Ready;
        self.outputs.push_back(Output::Event(VaultEvent::Ready));
        self.run_all_parked();
    }

    fn boot_failed(&mut self, error: RpcError) {
        self.phase = Phase::Failed(error.clone());
        self.outputs
            .push_back(Output::Event(VaultEvent::Failed(error)));
        self.run_all_parked();
    }

    fn keys(&self) -> Result<&Keys, RpcError> {
        self.keys.as_ref().ok_or_else(not_ready)
    }

    fn keys_mut(&mut self) -> Result<&mut Keys, RpcError> {
        self.keys.as_mut().ok_or_else(not_ready)
    }

    // ----------------------------------------------------------- connections

    /// The connection's port closed: its live queries end. Answers still
    /// held for it are dropped when they are released (its staged writes
    /// are still applied: the app may not learn of them, as with any write
    /// whose answer was lost).
    fn disconnect(&mut self, conn: ConnId) {
        if let Some(c) = self.apps.conns.remove(&conn) {
            for id in c.subscriptions {
                self.drop_subscription(SubKey { conn, id });
            }
            if matches!(c.kind, ConnKind::App { .. }) {
                self.admin_changed();
            }
        }
    }

    /// Queues a message behind those of its connection that wait, then
    /// runs what can run.
    fn park(&mut self, conn: ConnId, message: Parked) {
        let Some(c) = self.apps.get_mut(conn) else {
            return;
        };
        c.parked.push_back(message);
        self.run_parked(conn);
    }

    fn run_all_parked(&mut self) {
        for conn in self.apps.parked() {
            self.run_parked(conn);
        }
    }

    /// Handles the connection's waiting messages in order, stopping at one
    /// that needs a space not open yet (asking for it to be read).
    fn run_parked(&mut self, conn: ConnId) {
        loop {
            let Some(front) = self.apps.get(conn).and_then(|c| c.parked.front()) else {
                return;
            };
            match &self.phase {
                Phase::Booting(_) => return,
                Phase::Failed(error) => {
                    let error = error.clone();
                    let Some(message) = self.apps.get_mut(conn).and_then(|c| c.parked.pop_front())
                    else {
                        return;
                    };
                    self.refuse(conn, message, error);
                    continue;
                }
                Phase::Ready => {}
            }
            let needs = self.needs(conn, front);
            if !needs.is_empty() {
                let mut waiting = false;
                for id in needs {
                    match self.spaces.slots.get(&id).map(|s| &s.state) {
                        Some(SlotState::Closed) => {
                            self.request_open(id);
                            waiting = true;
                        }
                        Some(SlotState::Opening(_) | SlotState::Reading { .. }) => waiting = true,
                        _ => {}
                    }
                }
                if waiting {
                    return;
                }
            }
            let Some(message) = self.apps.get_mut(conn).and_then(|c| c.parked.pop_front()) else {
                return;
            };
            match message {
                Parked::App(m) => self.app_message(conn, m),
                Parked::Admin(m) => self.admin_message(conn, m),
            }
        }
    }

    /// Answers a message with `error` (the vault could not boot).
    fn refuse(&mut self, conn: ConnId, message: Parked, error: RpcError) {
        match message {
            Parked::App(Ok(ClientMessage::Hello { .. })) => {
                self.send(conn, VaultMessage::Refused { error })
            }
            Parked::App(Ok(ClientMessage::Request { id, .. })) => self.send(
                conn,
                VaultMessage::Response {
                    id,
                    result: Err(error),
                },
            ),
            Parked::App(Ok(ClientMessage::Cancel { .. })) => {}
            Parked::App(Err(u)) => self.send(conn, u.into_message()),
            Parked::Admin(Ok(AdminMessage::Request { id, .. })) => {
                self.admin_answer(conn, id, Err(error))
            }
            Parked::Admin(Err(u)) => self.admin_answer(conn, u.id.unwrap_or(0), Err(u.error)),
        }
    }

    /// The spaces a message needs open, that its sender may use and that
    /// are not open enough for it yet: a call naming a space the origin is
    /// granted, an app's listing (its granted spaces), an admin listing
    /// (every space). A call reading only current state needs the space
    /// readable, any other open with its documents
    /// ([`api::reads_current_state`]). Nothing is read for an origin before
    /// it is allowed.
    fn needs(&self, conn: ConnId, message: &Parked) -> Vec<SpaceId> {
        let readable_is_enough = matches!(
            message,
            Parked::App(Ok(ClientMessage::Request { method, .. })) if api::reads_current_state(method)
        );
        match message {
            Parked::App(Ok(ClientMessage::Request { method, .. })) => {
                let Some(origin) = self.apps.origin_of(conn) else {
                    return Vec::new();
                };
                if self.apps.get(conn).is_none_or(|c| c.version.is_none()) {
                    // Not past its handshake: the call is refused unread.
                    return Vec::new();
                }
                match method {
                    Request::ListSpaces {} => self.grants.spaces_of(origin).into_iter().collect(),
                    m => m
                        .space()
                        .and_then(|s| s.parse::<SpaceId>().ok())
                        .filter(|id| self.grants.allows(origin, id))
                        .into_iter()
                        .collect(),
                }
            }
            Parked::Admin(Ok(AdminMessage::Request { method, .. })) => {
                use crate::rpc::AdminRequest as A;
                match method {
                    A::ListSpaces {} => self.spaces.ids().into_iter().collect(),
                    A::ListMembers { space }
                    | A::Admit { space, .. }
                    | A::SetRole { space, .. }
                    | A::Remove { space, .. }
                    | A::RevokeDevice { space, .. }
                    | A::CreateInvitation { space, .. }
                    | A::Export { space } => space.parse::<SpaceId>().into_iter().collect(),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
        .into_iter()
        .filter(|id| {
            self.spaces.contains(id)
                && !(self.spaces.is_open(id) || readable_is_enough && self.spaces.is_readable(id))
        })
        .collect()
    }

    // ---------------------------------------------------------------- spaces

    /// Asks the host to read a space's prefix (once).
    fn request_open(&mut self, id: SpaceId) {
        if !matches!(
            self.spaces.slots.get(&id).map(|s| &s.state),
            Some(SlotState::Closed)
        ) {
            return;
        }
        let read = ReadId(self.next_id());
        self.spaces.set_state(&id, SlotState::Opening(read));
        self.outputs.push_back(Output::Read {
            read,
            prefix: space_prefix(&id),
        });
    }

    /// A space's prefix was read: open it — for reads only while its
    /// documents' prefix is read next, if it stores its documents apart —
    /// then run what waited for it.
    fn space_read(
        &mut self,
        id: SpaceId,
        result: Result<Vec<(String, Vec<u8>)>, crate::store::StoreError>,
    ) {
        let opened = match (result, self.keys.as_ref()) {
            (Ok(entries), Some(keys)) => {
                Replica::open(id, keys.identity, keys.device.duplicate(), entries)
                    .map_err(RpcError::from)
            }
            (Err(e), _) => Err(RpcError::from(e)),
            (_, None) => Err(not_ready()),
        };
        match opened {
            Ok(mut replica) => {
                replica.set_clock(self.now);
                let replica = Box::new(replica);
                let pending = replica.documents_pending();
                let state = if pending {
                    let documents = ReadId(self.next_id());
                    self.outputs.push_back(Output::Read {
                        read: documents,
                        prefix: documents_prefix(&id),
                    });
                    SlotState::Reading { replica, documents }
                } else {
                    SlotState::Open(replica)
                };
                self.spaces.set_state(&id, state);
                self.resubscribe(id);
                if !pending {
                    self.peers_space_opened(id);
                }
                self.run_all_parked();
            }
            Err(error) => self.open_failed(id, error),
        }
    }

    /// A space's documents were read: it is open.
    fn documents_read(
        &mut self,
        id: SpaceId,
        result: Result<Vec<(String, Vec<u8>)>, crate::store::StoreError>,
    ) {
        let Some(slot) = self.spaces.slots.get_mut(&id) else {
            return;
        };
        let SlotState::Reading { mut replica, .. } =
            std::mem::replace(&mut slot.state, SlotState::Closed)
        else {
            return;
        };
        let attached = result
            .map_err(RpcError::from)
            .and_then(|entries| replica.attach_documents(entries).map_err(RpcError::from));
        match attached {
            Ok(()) => {
                self.spaces.set_state(&id, SlotState::Open(replica));
                self.peers_space_opened(id);
                self.run_all_parked();
            }
            Err(error) => {
                self.keep_live_results(id, &replica);
                self.open_failed(id, error);
            }
        }
    }

    /// A space could not be read: it stays closed.
    fn open_failed(&mut self, id: SpaceId, error: RpcError) {
        self.spaces.set_state(&id, SlotState::Closed);
        // Calls waiting for it fail with the reason; a later call tries
        // again.
        for conn in self.apps.parked() {
            let waits = self
                .apps
                .get(conn)
                .and_then(|c| c.parked.front())
                .is_some_and(|m| self.needs(conn, m).contains(&id));
            if waits {
                if let Some(m) = self.apps.get_mut(conn).and_then(|c| c.parked.pop_front()) {
                    self.refuse(conn, m, error.clone());
                }
            }
        }
        self.run_all_parked();
    }

    fn replica(&mut self, id: &SpaceId) -> Result<&mut Replica, RpcError> {
        self.spaces.replica(id).ok_or_else(|| {
            RpcError::from(VaultError::NotOpen {
                space: id.to_string(),
            })
        })
    }

    /// A replica to read current state from ([`Spaces::readable`]).
    fn readable(&mut self, id: &SpaceId) -> Result<&mut Replica, RpcError> {
        self.spaces.readable(id).ok_or_else(|| {
            RpcError::from(VaultError::NotOpen {
                space: id.to_string(),
            })
        })
    }

    // ----------------------------------------------------------- live queries

    fn drop_subscription(&mut self, sub: SubKey) {
        if let Some(s) = self.apps.remove_subscription(sub) {
            if let Some(r) = self.spaces.readable(&s.space) {
                r.read().unsubscribe(s.inner);
            }
        }
    }

    /// Moves the space's pending live-query diffs to the outputs.
    fn pump_events(&mut self, space: SpaceId) {
        let Some(replica) = self.spaces.replica(&space) else {
            return;
        };
        let mut diffs = Vec::new();
        while let Some(event) = replica.read().poll_event() {
            if let crate::model::SpaceEvent::Live(diff) = event {
                diffs.push(diff);
            }
        }
        for diff in diffs {
            let Some((sub, conn, resolve)) = self
                .apps
                .find_subscription(space, diff.subscription)
                .map(|(id, s)| (id, s.conn, s.resolve))
            else {
                continue;
            };
            let mut event = crate::rpc::Event::from_diff(&diff);
            if resolve {
                if let crate::rpc::Event::QueryDiff { objects, .. } = &mut event {
                    let mut out = Vec::new();
                    if let Some(replica) = self.spaces.replica(&space) {
                        let mut reads = replica.read();
                        for id in diff.added.iter().chain(&diff.changed) {
                            if let Ok(Some(state)) = reads.get(id) {
                                out.push(crate::rpc::WireObject::from(state));
                            }
                        }
                    }
                    *objects = Some(out);
                }
            }
            self.outputs.push_back(Output::App {
                conn,
                message: VaultMessage::Event {
                    subscription: Some(sub.id),
                    event,
                },
            });
        }
    }

    /// Re-opens the live queries of a space that was read again after a
    /// failed flush, each with a diff from the result its app last saw.
    fn resubscribe(&mut self, space: SpaceId) {
        let stale: Vec<SubKey> = self
            .apps
            .subscriptions
            .iter()
            .filter(|(_, s)| s.space == space && s.stale.is_some())
            .map(|(id, _)| *id)
            .collect();
        for sub in stale {
            let (query, before) = {
                let s = &self.apps.subscriptions[&sub];
                (s.query.clone(), s.stale.clone().unwrap_or_default())
            };
            let Some(replica) = self.spaces.readable(&space) else {
                return;
            };
            match replica.read().subscribe(query) {
                Ok((inner, now)) => {
                    let Some(s) = self.apps.subscriptions.get_mut(&sub) else {
                        continue;
                    };
                    s.inner = inner;
                    s.stale = None;
                    let conn = s.conn;
                    let old: BTreeSet<_> = before.iter().copied().collect();
                    let new: BTreeSet<_> = now.iter().copied().collect();
                    let diff = crate::query::LiveDiff {
                        subscription: inner,
                        added: new.difference(&old).copied().collect(),
                        removed: old.difference(&new).copied().collect(),
                        changed: new.intersection(&old).copied().collect(),
                        window: Some(now),
                    };
                    self.outputs.push_back(Output::App {
                        conn,
                        message: VaultMessage::Event {
                            subscription: Some(sub.id),
                            event: crate::rpc::Event::from_diff(&diff),
                        },
                    });
                }
                Err(_) => self.drop_subscription(sub),
            }
        }
    }
}

fn not_ready() -> RpcError {
    RpcError::new(
        crate::rpc::codes::INTERNAL,
        "the vault has not finished starting",
    )
}

/// The boot found no identity where the host knows there was one.
fn storage_lost(identity: &str) -> RpcError {
    let short = identity.get(..12).unwrap_or(identity);
    RpcError::new(
        crate::rpc::codes::STORAGE_LOST,
        format!("the browser deleted this vault's storage (the vault of identity {short}… is no longer in it; Chromium deletes a site's database it finds damaged, e.g. after a crash or power cut). Nothing of it can be read back in this browser. Open your vault's page to start a new vault; spaces shared with your other devices or other people can be joined again from them"),
    )
}

fn storage_error(e: VaultError) -> RpcError {
    let code = match &e {
        VaultError::Store(s @ crate::store::StoreError::QuotaExceeded { .. }) => s.code(),
        VaultError::CorruptRecord { .. } => e.code(),
        _ => crate::rpc::codes::STORAGE_BLOCKED,
    };
    RpcError::new(
        code,
        format!("the vault cannot open its storage: {e}. If the browser blocks storage for this site, allow it and reload"),
    )
}

#[cfg(test)]
mod config_tests {
    use super::VaultConfig;

    #[test]
    fn debug_output_never_shows_the_seed() {
        let seed = [0xAB; 32];
        let shown = format!("{:?}", VaultConfig::new(seed));
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("171"), "the seed's bytes leaked: {shown}");
        assert!(!shown.contains("ab") && !shown.contains("AB"), "{shown}");
    }
}
