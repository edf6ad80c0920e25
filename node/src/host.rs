//! The vault's loop and its handle: one task owns the [`Vault`], its
//! [`FileStore`] and its wrapping key; everything else talks to it through
//! channels.
//!
//! The loop waits for the first of: a command (an app or admin port
//! attached, a message on one, a port dropped, stop), a link event (a
//! connection up, bytes from a peer, a connection gone) or the vault's
//! deadline ([`Vault::poll_timeout`]). It hands that to the vault, then
//! everything else already waiting (up to [`BATCH`] inputs: they share one
//! flush), then drains [`Vault::poll_output`]: storage and sealing are
//! answered at once, inline (FileStore is synchronous and durable when
//! `apply` returns), answers go to their port, bytes to their link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use echo_core::identity::{ChaChaKeyWrap, IdentityError};
use echo_core::rng::{EngineRng, RandomUnavailable};
use echo_core::rpc::{
    AdminMessage, AdminReply, AdminRequest, AdminResponse, ClientMessage, Request, Response,
    RpcError, VaultInfo, VaultMessage,
};
use echo_core::store::{ChunkStore, StoreError};
use echo_core::vault::{
    ConnId, Input, LinkId, Millis, Output, Vault, VaultConfig, VaultEvent, Zeroizing,
};
use echo_store_file::FileStore;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::keyfile::{self, KeyFileError};
use crate::tcp::{LinkEvent, LinkOut, Net, TcpError};

/// The store's file in a vault's directory.
pub const STORE_FILE: &str = "vault.redb";
/// The wrapping key's file in a vault's directory.
pub const KEY_FILE: &str = "wrap.key";
/// Most inputs handed to the vault before its outputs are drained.
pub const BATCH: usize = 256;
/// Peer messages queued for the loop before connections wait.
const LINK_QUEUE: usize = 64;
/// Events kept for slow subscribers.
const EVENT_QUEUE: usize = 1024;

/// Why the node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("creating the vault's directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("the wrapping key: {0}")]
    Key(#[from] IdentityError),
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
    #[error("the vault could not boot: {0}")]
    Boot(RpcError),
    #[error("peer link: {0}")]
    Tcp(#[from] TcpError),
    /// A call's answer was an error.
    #[error("call failed: {0}")]
    Rpc(#[from] RpcError),
    #[error("the vault refused the app: {0}")]
    Refused(RpcError),
    #[error("the vault closed the connection")]
    PortClosed,
    #[error("the vault is stopped")]
    Stopped,
    #[error("the vault's task failed: {0}")]
    Task(String),
}

/// What the node reports, for its log and for tests
/// ([`NativeVault::subscribe`]).
#[derive(Clone, Debug)]
pub enum NodeEvent {
    Vault(VaultEvent),
    /// A connection finished its handshake and is a link.
    LinkUp {
        link: LinkId,
        peer: SocketAddr,
        initiator: bool,
    },
    /// A link's connection is gone (`error`: why, if it failed).
    LinkDown {
        link: LinkId,
        error: Option<String>,
    },
    /// An incoming connection failed before it became a link.
    ConnectFailed {
        peer: SocketAddr,
        error: String,
    },
    /// The vault refused an input: a mistake of this host (a bug).
    HostError(String),
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

enum Command {
    AttachApp {
        conn: ConnId,
        origin: String,
        tx: mpsc::UnboundedSender<VaultMessage>,
    },
    AttachAdmin {
        conn: ConnId,
        tx: mpsc::UnboundedSender<AdminReply>,
    },
    Input(Input),
    Stop,
}

enum PortTx {
    App(mpsc::UnboundedSender<VaultMessage>),
    Admin(mpsc::UnboundedSender<AdminReply>),
}

/// A vault running in this process on a directory (its [`FileStore`] and
/// wrapping key), reachable by peers over TCP and by in-process ports.
/// Needs a Tokio runtime. Dropping it stops the vault too, without waiting;
/// [`stop`](Self::stop) waits until its files are closed.
pub struct NativeVault {
    dir: PathBuf,
    commands: mpsc::UnboundedSender<Command>,
    net: Net,
    events: broadcast::Sender<NodeEvent>,
    next_conn: AtomicU64,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for NativeVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeVault")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl NativeVault {
    /// Opens (or creates) the vault in `dir` and boots it: the store
    /// `dir/vault.redb`, the wrapping key `dir/wrap.key` (made on first
    /// run). Returns once the vault is ready.
    pub async fn start(dir: impl AsRef<Path>) -> Result<NativeVault, NodeError> {
        let dir = dir.as_ref().to_owned();
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let boot_dir = dir.clone();
        let boot_events = events.clone();
        // Opening checks the whole store file, and boot reads and writes
        // it: off the async threads.
        let host = tokio::task::spawn_blocking(move || Host::boot(&boot_dir, boot_events))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (links, links_rx) = mpsc::channel(LINK_QUEUE);
        let task = tokio::spawn(host.run(commands_rx, links_rx));
        Ok(NativeVault {
            dir,
            commands,
            net: Net::new(links, events.clone()),
            events,
            next_conn: AtomicU64::new(0),
            task: Some(task),
        })
    }

    /// The directory the vault lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Accepts peers on `addr` (e.g. `127.0.0.1:0`) until the vault stops;
    /// returns the address bound.
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, NodeError> {
        Ok(self.net.listen(addr).await?)
    }

    /// Connects to a peer listening on `addr`; returns once the Noise
    /// handshake is done (the vault's own handshake then runs on the link).
    pub async fn dial(&self, addr: SocketAddr) -> Result<LinkId, NodeError> {
        Ok(self.net.dial(addr).await?)
    }

    fn conn(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn command(&self, command: Command) -> Result<(), NodeError> {
        self.commands.send(command).map_err(|_| NodeError::Stopped)
    }

    /// Attaches an app's port, tagged with `origin` (as a shell would after
    /// checking it), and shakes hands.
    pub async fn connect_app(&self, origin: &str) -> Result<AppPort, NodeError> {
        let conn = self.conn();
        let (tx, rx) = mpsc::unbounded_channel();
        self.command(Command::AttachApp {
            conn,
            origin: origin.to_owned(),
            tx,
        })?;
        let mut port = AppPort {
            conn,
            commands: self.commands.clone(),
            rx,
            next_id: 0,
            pushed: Vec::new(),
            info: None,
        };
        port.send(ClientMessage::Hello {
            versions: vec![1],
            client: format!("echo-node {}", env!("CARGO_PKG_VERSION")),
            durability: None,
        })?;
        loop {
            match port.rx.recv().await {
                Some(VaultMessage::Welcome { vault, .. }) => {
                    port.info = Some(vault);
                    return Ok(port);
                }
                Some(VaultMessage::Refused { error }) => return Err(NodeError::Refused(error)),
                Some(other) => port.pushed.push(other),
                None => return Err(NodeError::PortClosed),
            }
        }
    }

    /// Attaches a port of one of the vault's own pages.
    pub fn connect_admin(&self) -> Result<AdminPort, NodeError> {
        let conn = self.conn();
        let (tx, rx) = mpsc::unbounded_channel();
        self.command(Command::AttachAdmin { conn, tx })?;
        Ok(AdminPort {
            conn,
            commands: self.commands.clone(),
            rx,
            next_id: 0,
            changed: false,
        })
    }

    /// One management call on a port of its own.
    pub async fn admin(&self, method: AdminRequest) -> Result<AdminResponse, NodeError> {
        self.connect_admin()?.call(method).await
    }

    /// Stops the vault: its loop ends (what it had been handed is finished,
    /// storage included), every link and listener closes, the files are
    /// closed when this returns.
    pub async fn stop(mut self) -> Result<(), NodeError> {
        let _ = self.commands.send(Command::Stop);
        let result = match self.task.take() {
            Some(task) => task.await.map_err(|e| NodeError::Task(e.to_string())),
            None => Ok(()),
        };
        self.net.shutdown().await;
        result
    }
}

impl Drop for NativeVault {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        self.net.abort();
    }
}

/// An app's port: calls and their answers, and what the vault pushed.
/// Dropping it disconnects.
#[derive(Debug)]
pub struct AppPort {
    conn: ConnId,
    commands: mpsc::UnboundedSender<Command>,
    rx: mpsc::UnboundedReceiver<VaultMessage>,
    next_id: u32,
    pushed: Vec<VaultMessage>,
    info: Option<VaultInfo>,
}

impl AppPort {
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// What the vault said about itself in its welcome.
    pub fn info(&self) -> Option<&VaultInfo> {
        self.info.as_ref()
    }

    fn send(&self, message: ClientMessage) -> Result<(), NodeError> {
        self.commands
            .send(Command::Input(Input::AppMessage {
                conn: self.conn,
                message: Ok(message),
            }))
            .map_err(|_| NodeError::Stopped)
    }

    /// Calls and waits for the answer (messages pushed meanwhile are kept
    /// for [`take_pushed`](Self::take_pushed)).
    pub async fn call(&mut self, method: Request) -> Result<Response, NodeError> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.send(ClientMessage::Request { id, method })?;
        loop {
            match self.rx.recv().await {
                Some(VaultMessage::Response { id: i, result }) if i == id => {
                    return result.map_err(NodeError::Rpc)
                }
                Some(other) => self.pushed.push(other),
                None => return Err(NodeError::PortClosed),
            }
        }
    }

    /// Messages not answering a call (events of live queries, …), taken.
    pub fn take_pushed(&mut self) -> Vec<VaultMessage> {
        while let Ok(m) = self.rx.try_recv() {
            self.pushed.push(m);
        }
        std::mem::take(&mut self.pushed)
    }
}

impl Drop for AppPort {
    fn drop(&mut self) {
        let _ = self
            .commands
            .send(Command::Input(Input::Disconnected { conn: self.conn }));
    }
}

/// A port of the vault's own pages: management calls.
#[derive(Debug)]
pub struct AdminPort {
    conn: ConnId,
    commands: mpsc::UnboundedSender<Command>,
    rx: mpsc::UnboundedReceiver<AdminReply>,
    next_id: u32,
    changed: bool,
}

impl AdminPort {
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    pub async fn call(&mut self, method: AdminRequest) -> Result<AdminResponse, NodeError> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.commands
            .send(Command::Input(Input::AdminMessage {
                conn: self.conn,
                message: Ok(AdminMessage::Request { id, method }),
            }))
            .map_err(|_| NodeError::Stopped)?;
        loop {
            match self.rx.recv().await {
                Some(AdminReply::Response { id: i, result }) if i == id => {
                    return result.map_err(NodeError::Rpc)
                }
                Some(AdminReply::Response { .. }) => {}
                Some(AdminReply::Changed {}) => self.changed = true,
                None => return Err(NodeError::PortClosed),
            }
        }
    }

    /// Whether the vault said something the pages show changed since the
    /// last call of this.
    pub fn take_changed(&mut self) -> bool {
        while let Ok(m) = self.rx.try_recv() {
            if matches!(m, AdminReply::Changed {}) {
                self.changed = true;
            }
        }
        std::mem::take(&mut self.changed)
    }
}

impl Drop for AdminPort {
    fn drop(&mut self) {
        let _ = self
            .commands
            .send(Command::Input(Input::Disconnected { conn: self.conn }));
    }
}

/// What the vault's task owns.
struct Host {
    vault: Vault,
    store: FileStore,
    wrap: ChaChaKeyWrap,
    ports: HashMap<ConnId, PortTx>,
    links: HashMap<LinkId, mpsc::UnboundedSender<LinkOut>>,
    events: broadcast::Sender<NodeEvent>,
    failed: Option<RpcError>,
}

impl Host {
    /// Opens the files and boots the vault (blocking).
    fn boot(dir: &Path, events: broadcast::Sender<NodeEvent>) -> Result<Host, NodeError> {
        std::fs::create_dir_all(dir).map_err(|source| NodeError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        // The store first: its lock keeps a second process off the key file.
        let store = FileStore::open(dir.join(STORE_FILE))?;
        let key = keyfile::load_or_create(&dir.join(KEY_FILE))?;
        let wrap = ChaChaKeyWrap::new(key.as_ref())?;
        let seed = Zeroizing::new(EngineRng::from_os()?.bytes::<32>());
        let now = now_ms();
        let mut host = Host {
            vault: Vault::new(now, {
                // In-process ports tell when they are dropped: no idle expiry.
                let mut config = VaultConfig::new(*seed);
                config.app_idle_timeout = None;
                config
            }),
            store,
            wrap,
            ports: HashMap::new(),
            links: HashMap::new(),
            events,
            failed: None,
        };
        host.drain(now);
        if let Some(e) = host.failed.take() {
            return Err(NodeError::Boot(e));
        }
        if !host.vault.is_ready() {
            return Err(NodeError::Boot(RpcError::new(
                "vault.not_ready",
                "the vault did not finish booting",
            )));
        }
        Ok(host)
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut links: mpsc::Receiver<LinkEvent>,
    ) {
        loop {
            let deadline = self
                .vault
                .poll_timeout()
                .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(now_ms())));
            let mut go_on = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => false,
                },
                Some(event) = links.recv() => {
                    self.link_event(event);
                    true
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.input(now_ms(), Input::Timeout);
                    true
                }
            };
            // What else already waits shares this round (and its flush).
            for _ in 0..BATCH {
                if !go_on {
                    break;
                }
                if let Ok(command) = commands.try_recv() {
                    go_on = self.command(command);
                } else if let Ok(event) = links.try_recv() {
                    self.link_event(event);
                } else {
                    break;
                }
            }
            self.drain(now_ms());
            if !go_on {
                return;
            }
        }
    }

    /// Hands a command to the vault; `false` to stop.
    fn command(&mut self, command: Command) -> bool {
        let now = now_ms();
        match command {
            Command::AttachApp { conn, origin, tx } => {
                self.ports.insert(conn, PortTx::App(tx));
                self.input(now, Input::AppConnected { conn, origin });
            }
            Command::AttachAdmin { conn, tx } => {
                self.ports.insert(conn, PortTx::Admin(tx));
                self.input(now, Input::AdminConnected { conn });
            }
            Command::Input(input) => {
                if let Input::Disconnected { conn } = &input {
                    self.ports.remove(conn);
                }
                self.input(now, input);
            }
            Command::Stop => return false,
        }
        true
    }

    fn link_event(&mut self, event: LinkEvent) {
        let now = now_ms();
        match event {
            LinkEvent::Up {
                link,
                binding,
                peer,
                initiator,
                out,
            } => {
                self.links.insert(link, out);
                self.emit(NodeEvent::LinkUp {
                    link,
                    peer,
                    initiator,
                });
                self.input(
                    now,
                    Input::PeerConnected {
                        link,
                        binding,
                        dial: None,
                    },
                );
            }
            LinkEvent::Bytes { link, bytes } => {
                if self.links.contains_key(&link) {
                    self.input(now, Input::PeerBytes { link, bytes });
                }
            }
            LinkEvent::Down { link, error } => {
                // Dropping the sender ends the connection's writer.
                self.links.remove(&link);
                self.emit(NodeEvent::LinkDown { link, error });
                self.input(now, Input::PeerClosed { link });
            }
        }
    }

    fn emit(&self, event: NodeEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    fn input(&mut self, now: Millis, input: Input) {
        if let Err(e) = self.vault.handle_input(now, input) {
            self.emit(NodeEvent::HostError(e.to_string()));
        }
    }

    /// Carries out everything the vault asks until it asks nothing more.
    fn drain(&mut self, now: Millis) {
        while let Some(out) = self.vault.poll_output() {
            match out {
                Output::App { conn, message } => {
                    if let Some(PortTx::App(tx)) = self.ports.get(&conn) {
                        let _ = tx.send(message);
                    }
                }
                Output::Admin { conn, message } => {
                    if let Some(PortTx::Admin(tx)) = self.ports.get(&conn) {
                        let _ = tx.send(message);
                    }
                }
                Output::Close { conn } => {
                    // The port's receiver ends after what was sent before.
                    self.ports.remove(&conn);
                }
                Output::Read { read, prefix } => {
                    let result = self.store.list_prefix(&prefix);
                    self.input(now, Input::ReadDone { read, result });
                }
                // The file store syncs every batch: relaxed is strict here.
                Output::Write { write, batch, .. } => {
                    let result = self.store.apply(batch);
                    self.input(now, Input::WriteDone { write, result });
                }
                Output::Seal { op, plaintext, aad } => {
                    let input = Input::sealed_by(&self.wrap, op, &plaintext, &aad);
                    self.input(now, input);
                }
                Output::Unseal {
                    op,
                    ciphertext,
                    aad,
                } => {
                    let input = Input::unsealed_by(&self.wrap, op, &ciphertext, &aad);
                    self.input(now, input);
                }
                Output::PeerSend { link, bytes } => {
                    if let Some(tx) = self.links.get(&link) {
                        let _ = tx.send(LinkOut::Send(bytes));
                    }
                }
                Output::PeerClose { link, .. } => {
                    if let Some(tx) = self.links.remove(&link) {
                        let _ = tx.send(LinkOut::Close);
                    }
                }
                // This host has no signaling network (peers are dialled by
                // address): the vault never hears `SignalUp`, so it asks
                // for none of these.
                Output::SignalJoin { .. }
                | Output::SignalLeave { .. }
                | Output::SignalSend { .. }
                | Output::Dial { .. } => {}
                Output::Event(event) => {
                    if let VaultEvent::Failed(e) = &event {
                        self.failed = Some(e.clone());
                    }
                    self.emit(NodeEvent::Vault(event));
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
