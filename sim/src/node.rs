//! [`Node`]: one vault on a memory store, and the host loop that drives it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use echo_core::identity::ChaChaKeyWrap;
use echo_core::peer::{ChannelBinding, CloseReason};
use echo_core::rng::EngineRng;
use echo_core::rpc::{
    AdminMessage, AdminReply, AdminRequest, AdminResponse, ClientMessage, Durability, Request,
    Response, RpcError, VaultMessage,
};
use echo_core::store::{Batch, ChunkStore, MemoryStore, StoreError};
use echo_core::vault::{
    ConnId, DialId, Input, LinkId, Millis, Output, ReadId, SignalPeer, Topic, Vault, VaultConfig,
    VaultEvent, WriteId,
};

/// What a vault asked of the signaling network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignalRequest {
    Join(Topic),
    Leave(Topic),
    Dial {
        dial: DialId,
        peer: SignalPeer,
        topic: Topic,
    },
    Send {
        topic: Topic,
        to: SignalPeer,
        data: Vec<u8>,
    },
}

/// One vault on a memory store. Storage runs at once when
/// [`auto_io`](Self::auto_io) is on (the default); off, reads and writes
/// wait in [`reads`](Self::reads) / [`writes`](Self::writes) until the test
/// completes, fails or loses them.
pub struct Node {
    pub name: String,
    vault: Option<Vault>,
    /// What is durably stored.
    pub store: MemoryStore,
    wrap: ChaChaKeyWrap,
    rng: EngineRng,
    config: VaultConfig,
    pub auto_io: bool,
    /// Errors the next writes fail with, in order.
    pub fail_writes: VecDeque<StoreError>,
    /// A storage quota per write: a batch putting more bytes than this
    /// fails with `QuotaExceeded` (as a browser near its quota would).
    pub quota_bytes: Option<usize>,
    pub reads: VecDeque<(ReadId, String)>,
    pub writes: VecDeque<(WriteId, Batch)>,
    /// Everything the vault sent each app connection, in order.
    pub app: BTreeMap<ConnId, Vec<VaultMessage>>,
    pub admin: BTreeMap<ConnId, Vec<AdminReply>>,
    /// Connections the vault closed.
    pub closed: BTreeSet<ConnId>,
    pub events: Vec<VaultEvent>,
    /// Bytes for peers, and links the vault closed, not yet taken.
    pub sent: VecDeque<(LinkId, Vec<u8>)>,
    pub link_closes: VecDeque<(LinkId, CloseReason)>,
    /// What the vault asked of the signaling network, not yet taken.
    pub signal_out: VecDeque<SignalRequest>,
    /// Writes completed (flushes), for tests of group commit.
    pub flushes: usize,
    /// How durable the vault asked each write to be, in order.
    pub durabilities: Vec<Durability>,
    plaintexts: Vec<Vec<u8>>,
    next_conn: u64,
    next_call: u32,
    /// App connections made by [`connect_app`](Self::connect_app) and when
    /// each last sent its heartbeat (the SDK pings every
    /// [`HEARTBEAT_MS`]; the vault closes a connection it has not heard
    /// from for a while).
    heartbeats: BTreeMap<ConnId, Millis>,
    next_heartbeat_id: u32,
}

/// How often a simulated app pings the vault, as the SDK does.
pub const HEARTBEAT_MS: Millis = 5_000;

/// Most writes one [`Node::drain`] carries out in a row, no read between
/// them (with storage answering at once): a turn needs a few (a
/// grants-first write, the flush, one more for what arrived meanwhile);
/// this many means a flush that never ends.
pub const MAX_WRITES_PER_DRAIN: usize = 1_000;

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("up", &self.vault.is_some())
            .finish()
    }
}

impl Node {
    /// A node named `name` whose randomness all comes from `seed`; boots
    /// its vault (first run: creates the identity).
    pub fn new(name: &str, seed: u64, now: Millis) -> Self {
        Self::with_config(name, seed, now, |_| {})
    }

    /// Like [`new`](Self::new), adjusting the vault's configuration.
    pub fn with_config(
        name: &str,
        seed: u64,
        now: Millis,
        adjust: impl FnOnce(&mut VaultConfig),
    ) -> Self {
        let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(seed));
        // The host's wrapping key, fixed for the node's life (a browser's
        // non-extractable WebCrypto key in the real host).
        let wrap = ChaChaKeyWrap::new(&rng.bytes::<32>()).unwrap_or_else(|_| unreachable!());
        let mut config = VaultConfig::new(rng.bytes());
        adjust(&mut config);
        let mut node = Node {
            name: name.to_owned(),
            vault: None,
            store: MemoryStore::new(),
            wrap,
            rng,
            config,
            auto_io: true,
            fail_writes: VecDeque::new(),
            quota_bytes: None,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
            app: BTreeMap::new(),
            admin: BTreeMap::new(),
            closed: BTreeSet::new(),
            events: Vec::new(),
            sent: VecDeque::new(),
            link_closes: VecDeque::new(),
            signal_out: VecDeque::new(),
            flushes: 0,
            durabilities: Vec::new(),
            plaintexts: Vec::new(),
            next_conn: 0,
            next_call: 0,
            heartbeats: BTreeMap::new(),
            next_heartbeat_id: u32::MAX,
        };
        node.start(now);
        node
    }

    /// Starts a vault on the node's store (after a crash: from what was
    /// durable) and runs it until it is ready.
    fn start(&mut self, now: Millis) {
        if let Err(error) = self.boot(now) {
            panic!("{}: the vault did not boot: {error:?}", self.name);
        }
    }

    /// Starts a vault on the node's store and runs its boot: the error it
    /// failed with, if it did not become ready.
    fn boot(&mut self, now: Millis) -> Result<(), RpcError> {
        let mut config = self.config.clone();
        config.seed = self.rng.bytes();
        self.vault = Some(Vault::new(now, config));
        self.app.clear();
        self.admin.clear();
        self.closed.clear();
        self.heartbeats.clear();
        self.reads.clear();
        self.writes.clear();
        self.sent.clear();
        self.link_closes.clear();
        self.signal_out.clear();
        let seen = self.events.len();
        let auto = std::mem::replace(&mut self.auto_io, true);
        self.drain(now);
        self.auto_io = auto;
        if self.vault().is_ready() {
            return Ok(());
        }
        Err(self.events[seen..]
            .iter()
            .find_map(|e| match e {
                VaultEvent::Failed(error) => Some(error.clone()),
                _ => None,
            })
            .unwrap_or_else(|| {
                RpcError::new("sim.not_ready", "the boot neither finished nor failed")
            }))
    }

    pub fn is_up(&self) -> bool {
        self.vault.is_some()
    }

    /// The vault (panics while the node is down).
    pub fn vault(&self) -> &Vault {
        self.vault.as_ref().expect("the node is down")
    }

    /// The vault, to audit it (panics while the node is down).
    pub fn vault_mut(&mut self) -> &mut Vault {
        self.vault.as_mut().expect("the node is down")
    }

    /// The heartbeats of the simulated apps that are due by `now` (ids
    /// counted down from `u32::MAX`, apart from the tests' own).
    fn beat(&mut self, now: Millis) {
        let due: Vec<ConnId> = self
            .heartbeats
            .iter()
            .filter(|(conn, last)| now >= **last + HEARTBEAT_MS && !self.closed.contains(conn))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in due {
            self.heartbeats.insert(conn, now);
            let id = self.next_heartbeat_id;
            self.next_heartbeat_id -= 1;
            let ping = Input::AppMessage {
                conn,
                message: Ok(ClientMessage::Request {
                    id,
                    method: Request::Ping {},
                }),
            };
            if let Some(v) = self.vault.as_mut() {
                if let Err(e) = v.handle_input(now, ping) {
                    panic!("{}: the vault refused a heartbeat: {e}", self.name);
                }
            }
        }
    }

    /// Hands the vault an input, then carries out what it asks.
    pub fn input(&mut self, now: Millis, input: Input) {
        self.beat(now);
        let Some(v) = self.vault.as_mut() else {
            return;
        };
        if let Err(e) = v.handle_input(now, input) {
            panic!("{}: the vault refused an input: {e}", self.name);
        }
        self.drain(now);
    }

    /// Hands the vault several inputs, then carries out what it asks — as a
    /// host does with every message that arrived since it last looked (a
    /// frame of calls): they share one flush.
    pub fn input_many(&mut self, now: Millis, inputs: Vec<Input>) {
        self.beat(now);
        for input in inputs {
            self.vault_input(now, input);
        }
        self.drain(now);
    }

    /// Hands the vault an input and carries out nothing yet (call
    /// [`drain`](Self::drain)): for benchmarks timing the two apart.
    pub fn feed(&mut self, now: Millis, input: Input) {
        self.vault_input(now, input);
    }

    /// Fails the first write that waits (with `auto_io` off).
    pub fn fail_write(&mut self, now: Millis, error: StoreError) {
        if let Some((write, _)) = self.writes.pop_front() {
            self.vault_input(
                now,
                Input::WriteDone {
                    write,
                    result: Err(error),
                },
            );
            self.drain(now);
        }
    }

    /// Every plaintext the vault had sealed (the tests check none is stored).
    pub fn sealed_plaintexts(&self) -> &[Vec<u8>] {
        &self.plaintexts
    }

    /// Runs the host loop: takes every output and carries it out.
    ///
    /// Panics when the vault asks for more than [`MAX_WRITES_PER_DRAIN`]
    /// writes in a row with no read between them: a flush that never
    /// leaves it with nothing to write (a real host would spin on it
    /// forever).
    pub fn drain(&mut self, now: Millis) {
        let mut writes = 0;
        loop {
            let Some(v) = self.vault.as_mut() else {
                return;
            };
            let Some(out) = v.poll_output() else {
                return;
            };
            if matches!(out, Output::Read { .. }) {
                writes = 0;
            }
            if matches!(out, Output::Write { .. }) {
                writes += 1;
                assert!(
                    writes <= MAX_WRITES_PER_DRAIN,
                    "{}: the vault asked for {writes} writes in one turn: endless flushes",
                    self.name
                );
            }
            match out {
                Output::App { conn, message } => self.app.entry(conn).or_default().push(message),
                Output::Admin { conn, message } => {
                    self.admin.entry(conn).or_default().push(message)
                }
                Output::Close { conn } => {
                    self.closed.insert(conn);
                }
                Output::Read { read, prefix } => {
                    if self.auto_io {
                        self.answer_read(now, read, &prefix);
                    } else {
                        self.reads.push_back((read, prefix));
                    }
                }
                Output::Write {
                    write,
                    batch,
                    durability,
                } => {
                    self.durabilities.push(durability);
                    if self.auto_io {
                        self.answer_write(now, write, batch);
                    } else {
                        self.writes.push_back((write, batch));
                    }
                }
                Output::Seal { op, plaintext, aad } => {
                    self.plaintexts.push(plaintext.to_vec());
                    let input = Input::sealed_by(&self.wrap, op, &plaintext, &aad);
                    self.vault_input(now, input);
                }
                Output::Unseal {
                    op,
                    ciphertext,
                    aad,
                } => {
                    let input = Input::unsealed_by(&self.wrap, op, &ciphertext, &aad);
                    self.vault_input(now, input);
                }
                Output::PeerSend { link, bytes } => self.sent.push_back((link, bytes)),
                Output::PeerClose { link, reason } => self.link_closes.push_back((link, reason)),
                Output::SignalJoin { topic } => {
                    self.signal_out.push_back(SignalRequest::Join(topic))
                }
                Output::SignalLeave { topic } => {
                    self.signal_out.push_back(SignalRequest::Leave(topic))
                }
                Output::Dial { dial, peer, topic } => self
                    .signal_out
                    .push_back(SignalRequest::Dial { dial, peer, topic }),
                Output::SignalSend { topic, to, data } => self
                    .signal_out
                    .push_back(SignalRequest::Send { topic, to, data }),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    fn vault_input(&mut self, now: Millis, input: Input) {
        if let Some(v) = self.vault.as_mut() {
            if let Err(e) = v.handle_input(now, input) {
                panic!("{}: the vault refused an input: {e}", self.name);
            }
        }
    }

    fn answer_read(&mut self, now: Millis, read: ReadId, prefix: &str) {
        let result = self.store.list_prefix(prefix);
        self.vault_input(now, Input::ReadDone { read, result });
    }

    fn answer_write(&mut self, now: Millis, write: WriteId, batch: Batch) {
        let put: usize = batch
            .ops()
            .iter()
            .map(|op| match op {
                echo_core::store::Op::Put { value, .. } => value.len(),
                _ => 0,
            })
            .sum();
        let over = self
            .quota_bytes
            .filter(|q| put > *q)
            .map(|q| StoreError::QuotaExceeded {
                store: self.name.clone(),
                message: format!("a write of {put} bytes is over the quota of {q}"),
            });
        let result = match self.fail_writes.pop_front().or(over) {
            Some(e) => Err(e),
            None => {
                self.flushes += 1;
                self.store.apply(batch)
            }
        };
        self.vault_input(now, Input::WriteDone { write, result });
    }

    /// Completes the first read that waits (with `auto_io` off).
    pub fn complete_one_read(&mut self, now: Millis) {
        if let Some((read, prefix)) = self.reads.pop_front() {
            self.answer_read(now, read, &prefix);
            self.drain(now);
        }
    }

    /// Completes the first write that waits (with `auto_io` off).
    pub fn complete_one_write(&mut self, now: Millis) {
        if let Some((write, batch)) = self.writes.pop_front() {
            self.answer_write(now, write, batch);
            self.drain(now);
        }
    }

    /// Completes the storage operations that wait (with `auto_io` off).
    pub fn complete_io(&mut self, now: Millis) {
        while !self.reads.is_empty() || !self.writes.is_empty() {
            while let Some((read, prefix)) = self.reads.pop_front() {
                self.answer_read(now, read, &prefix);
            }
            while let Some((write, batch)) = self.writes.pop_front() {
                self.answer_write(now, write, batch);
            }
            self.drain(now);
        }
    }

    // ---------------------------------------------------------------- crashes

    /// The process dies: memory is gone, writes in flight never happened.
    pub fn crash(&mut self) {
        self.vault = None;
        self.writes.clear();
        self.reads.clear();
    }

    /// The process dies right after storage made a write durable, before
    /// the vault heard of it.
    pub fn crash_after_write(&mut self) {
        if let Some((_, batch)) = self.writes.pop_front() {
            self.store
                .apply(batch)
                .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        }
        self.crash();
    }

    /// Starts again from what is stored.
    pub fn restart(&mut self, now: Millis) {
        self.crash();
        self.start(now);
    }

    /// Starts again from what is stored, the host's configuration adjusted
    /// first (it stays so for later restarts): the boot's failure, if any.
    /// The vault stays down-but-present after a failed boot, as a host's
    /// would: it answers connections with the failure.
    pub fn restart_with(
        &mut self,
        now: Millis,
        adjust: impl FnOnce(&mut VaultConfig),
    ) -> Result<(), RpcError> {
        self.crash();
        adjust(&mut self.config);
        self.boot(now)
    }

    /// The browser deletes the vault's storage (Chromium does, for a
    /// database it finds damaged after a crash): nothing stored is left.
    pub fn lose_storage(&mut self) {
        self.crash();
        self.store = MemoryStore::new();
    }

    // ------------------------------------------------------------------ apps

    fn conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    /// Attaches an app port for `origin` and shakes hands.
    pub fn connect_app(&mut self, now: Millis, origin: &str) -> ConnId {
        self.connect_app_with(now, origin, Durability::Strict)
    }

    /// Like [`connect_app`](Self::connect_app), asking for writes of
    /// `durability`.
    pub fn connect_app_with(
        &mut self,
        now: Millis,
        origin: &str,
        durability: Durability,
    ) -> ConnId {
        let conn = self.say_hello(now, origin, durability);
        let welcomed = self
            .app
            .get(&conn)
            .is_some_and(|m| m.iter().any(|m| matches!(m, VaultMessage::Welcome { .. })));
        assert!(
            welcomed,
            "{}: no welcome: {:?}",
            self.name,
            self.app.get(&conn)
        );
        self.heartbeats.insert(conn, now);
        conn
    }

    /// Attaches an app port for `origin` and sends its hello: the
    /// connection, whatever the vault answered (in `app`).
    pub fn say_hello(&mut self, now: Millis, origin: &str, durability: Durability) -> ConnId {
        let conn = self.conn();
        self.input(
            now,
            Input::AppConnected {
                conn,
                origin: origin.to_owned(),
            },
        );
        self.input(
            now,
            Input::AppMessage {
                conn,
                message: Ok(ClientMessage::Hello {
                    versions: vec![1],
                    client: "sim".into(),
                    durability: Some(durability),
                }),
            },
        );
        conn
    }

    /// The app of `conn` goes away without a word (its tab was killed;
    /// only Chromium tells a port's close): its heartbeats stop.
    pub fn silence(&mut self, conn: ConnId) {
        self.heartbeats.remove(&conn);
    }

    /// Attaches a port of one of the vault's own pages.
    pub fn connect_admin(&mut self, now: Millis) -> ConnId {
        let conn = self.conn();
        self.input(now, Input::AdminConnected { conn });
        conn
    }

    /// The user allows `origin` the `spaces`, on an admin connection of
    /// its own (panics if the vault refuses).
    pub fn allow(&mut self, now: Millis, origin: &str, spaces: Vec<String>) {
        let admin = self.connect_admin(now);
        if let Err(e) = self.admin_call(
            now,
            admin,
            AdminRequest::Decide {
                origin: origin.to_owned(),
                allow: true,
                spaces,
            },
        ) {
            panic!("{}: allowing {origin} failed: {e:?}", self.name);
        }
    }

    /// A new space made by the app on `conn` (no properties): its id.
    pub fn create_space(&mut self, now: Millis, conn: ConnId) -> String {
        let made = self.call(
            now,
            conn,
            Request::CreateSpace {
                properties: Default::default(),
            },
        );
        match made {
            Ok(Response::Space(info)) => info.space,
            other => panic!("{}: spaces.create: {other:?}", self.name),
        }
    }

    /// A call id for a message the test builds itself.
    pub fn next_id(&mut self) -> u32 {
        self.next_call += 1;
        self.next_call
    }

    /// A call as an input, not handed over yet (to hand several over in
    /// one turn: [`input_many`](Self::input_many)), and its id.
    pub fn request(&mut self, conn: ConnId, method: Request) -> (u32, Input) {
        let id = self.next_id();
        (
            id,
            Input::AppMessage {
                conn,
                message: Ok(ClientMessage::Request { id, method }),
            },
        )
    }

    /// Sends a call without waiting for its answer; returns its id.
    pub fn send(&mut self, now: Millis, conn: ConnId, method: Request) -> u32 {
        self.next_call += 1;
        let id = self.next_call;
        self.input(
            now,
            Input::AppMessage {
                conn,
                message: Ok(ClientMessage::Request { id, method }),
            },
        );
        id
    }

    /// The answer to call `id`, if it came.
    pub fn answer(&self, conn: ConnId, id: u32) -> Option<Result<Response, RpcError>> {
        self.app.get(&conn)?.iter().find_map(|m| match m {
            VaultMessage::Response { id: i, result } if *i == id => Some(result.clone()),
            _ => None,
        })
    }

    /// Calls and waits for the answer (completing storage as needed).
    pub fn call(
        &mut self,
        now: Millis,
        conn: ConnId,
        method: Request,
    ) -> Result<Response, RpcError> {
        let id = self.send(now, conn, method);
        for _ in 0..16 {
            if let Some(a) = self.answer(conn, id) {
                return a;
            }
            self.complete_io(now);
        }
        panic!(
            "{}: call {id} was never answered: {:?}",
            self.name,
            self.app.get(&conn)
        )
    }

    /// A management call, waited for.
    pub fn admin_call(
        &mut self,
        now: Millis,
        conn: ConnId,
        method: AdminRequest,
    ) -> Result<AdminResponse, RpcError> {
        self.next_call += 1;
        let id = self.next_call;
        self.input(
            now,
            Input::AdminMessage {
                conn,
                message: Ok(AdminMessage::Request { id, method }),
            },
        );
        for _ in 0..16 {
            let found = self.admin.get(&conn).and_then(|m| {
                m.iter().find_map(|m| match m {
                    AdminReply::Response { id: i, result } if *i == id => Some(result.clone()),
                    _ => None,
                })
            });
            if let Some(a) = found {
                return a;
            }
            self.complete_io(now);
        }
        panic!("{}: admin call {id} was never answered", self.name)
    }

    /// Messages sent to `conn` since the last call of this (taken).
    pub fn take_app(&mut self, conn: ConnId) -> Vec<VaultMessage> {
        self.app.remove(&conn).unwrap_or_default()
    }

    // ----------------------------------------------------------------- peers

    /// A pipe to a peer opened: one the vault dialled (`dial`), or not.
    pub fn peer_connected(
        &mut self,
        now: Millis,
        link: LinkId,
        binding: ChannelBinding,
        dial: Option<DialId>,
    ) {
        self.input(
            now,
            Input::PeerConnected {
                link,
                binding,
                dial,
            },
        );
    }

    /// Events since the last call of this (taken).
    pub fn take_events(&mut self) -> Vec<VaultEvent> {
        std::mem::take(&mut self.events)
    }
}
