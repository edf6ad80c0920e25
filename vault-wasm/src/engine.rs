//! [`VaultEngine`]: the browser host of `echo_core::vault::Vault` in the
//! vault's worker — the machine's driver loop on IndexedDB, WebCrypto and
//! MessagePorts.
//!
//! One worker thread; everything is single-threaded: state sits in an
//! `Rc<RefCell<..>>`, and futures run on the worker's event loop
//! (`spawn_local`). The loop:
//!
//! - **Inputs**: every admin message, every port close and every
//!   completed storage or key operation goes into one inbox as a vault
//!   `Input`, in arrival order. App port messages wait per connection
//!   (`app_queue.rs`) and are served round robin, a budget per connection
//!   per turn, so no site can make the others wait. One pump hands the
//!   inbox and one round of app messages to the vault and then drains its
//!   outputs — so everything handed over in a turn shares one flush; while
//!   app messages remain, the next turn is a task of its own (after what
//!   the browser queued meanwhile: other ports' messages, storage results).
//! - **Outputs**: answers and events go to their ports (an app's as frames,
//!   `frame::pack_frames`); `Read`, `Write`, `Seal` and `Unseal` start an
//!   IndexedDB read or transaction or a WebCrypto call whose result comes
//!   back through the inbox. The vault decides everything else — what to
//!   read, when to flush, what to answer.
//! - **Format**: app and admin ports carry JSON text (one string per
//!   message, or a frame of several), checked against `MAX_MESSAGE_BYTES`
//!   before it is parsed with serde_json; anything else is answered with
//!   `rejected` (`rpc.bad_request`).
//!
//! - **Network** (`net.rs`): the signaling socket, the vault page that
//!   drives WebRTC for the engine, and the peer links it hands over.
//! - **Time**: one `setTimeout` at the vault's `poll_timeout`, which
//!   hands it `Input::Timeout` (heartbeats, dial retries, invitation
//!   deadlines).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use echo_core::rng::EngineRng;
use echo_core::rpc::{
    check_size, codes, decode_client_message, AdminMessage, ClientMessage, Probe, RpcError,
    Undecodable, VaultMessage, MAX_FRAME_MESSAGES, MAX_MESSAGE_BYTES,
};
use echo_core::store::StoreError;
use echo_core::vault::{
    AdminUndecodable, ConnId, Input, Output, Vault, VaultConfig, VaultEvent, Zeroizing,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort};

use crate::app_queue::AppQueues;
use crate::frame::{pack_frames, split_frame, TooManyMessages};
use crate::keyring::{describe, Keyring};
use crate::{AsyncChunkStore, IdbStore};

/// The name of the vault's IndexedDB database.
pub const DATABASE: &str = "echo-vault";

struct Port {
    port: MessagePort,
    // Kept alive as long as the port is attached.
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onclose: Closure<dyn FnMut(JsValue)>,
}

pub(crate) struct State {
    pub(crate) vault: Vault,
    pub(crate) net: crate::net::Net,
    /// The pending `setTimeout`: its handle and the deadline it is for.
    timer: Option<(i32, u64)>,
    store: Rc<IdbStore>,
    keyring: Rc<Keyring>,
    ports: BTreeMap<ConnId, Port>,
    inbox: VecDeque<Input>,
    /// App port messages waiting for their turn.
    apps: AppQueues,
    pumping: bool,
    /// The task that runs the next turn while app messages wait.
    next_turn: NextTurn,
    next_conn: u64,
    /// Told once the vault reports `Ready` or `Failed` (the start waits).
    boot: Option<futures_channel::oneshot::Sender<Result<(), RpcError>>>,
}

pub(crate) type Shared = Rc<RefCell<State>>;

/// An error as a plain JS object `{code, message, details?}`.
fn rpc_error(e: impl Into<RpcError>) -> JsValue {
    let e: RpcError = e.into();
    serde_json::to_string(&e)
        .ok()
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .unwrap_or_else(|| JsValue::from_str(&e.message))
}

fn store_blocked(e: StoreError) -> RpcError {
    let code = match e {
        StoreError::QuotaExceeded { .. } => e.code().to_owned(),
        _ => codes::STORAGE_BLOCKED.to_owned(),
    };
    RpcError::new(
        code,
        format!("the vault cannot open its storage: {e}. If the browser blocks storage for this site, allow it and reload"),
    )
}

/// The host's clock: milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

/// Holds the Web Lock `echo-engine` for the life of this worker, so two
/// engines (an old and a new worker script, say) never share a database:
/// resolves once the lock is held.
async fn hold_engine_lock() -> Result<(), RpcError> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .map_err(|e| RpcError::new(codes::INTERNAL, describe(&e)))?;
    let locks = js_sys::Reflect::get(&navigator, &"locks".into()).unwrap_or(JsValue::UNDEFINED);
    if locks.is_undefined() {
        // No Web Locks (an old browser): one engine per worker script as before.
        return Ok(());
    }
    let (acquired_tx, acquired) = futures_channel::oneshot::channel::<()>();
    let acquired_tx = RefCell::new(Some(acquired_tx));
    let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        if let Some(tx) = acquired_tx.borrow_mut().take() {
            let _ = tx.send(());
        }
        // Never resolves: the lock is released when the worker ends.
        js_sys::Promise::new(&mut |_, _| {}).into()
    });
    let request = js_sys::Reflect::get(&locks, &"request".into())
        .map_err(|e| RpcError::new(codes::INTERNAL, describe(&e)))?
        .dyn_into::<js_sys::Function>()
        .map_err(|_| RpcError::new(codes::INTERNAL, "navigator.locks.request is not a function"))?;
    request
        .call2(&locks, &"echo-engine".into(), &callback)
        .map_err(|e| {
            RpcError::new(
                codes::STORAGE_BLOCKED,
                format!("the browser refuses Web Locks: {}", describe(&e)),
            )
        })?;
    acquired
        .await
        .map_err(|_| RpcError::new(codes::INTERNAL, "the engine lock was dropped"))
}

/// The vault engine of one worker. See the module docs.
#[wasm_bindgen]
pub struct VaultEngine {
    state: Shared,
}

#[wasm_bindgen]
impl VaultEngine {
    /// Opens IndexedDB and the vault (its identity created on first run).
    /// Rejects with an `RpcError`-shaped object.
    pub async fn start() -> Result<VaultEngine, JsValue> {
        Self::start_with(DATABASE).await.map_err(rpc_error)
    }

    /// Like [`start`](Self::start) on a database of another name (tests,
    /// benchmarks).
    #[wasm_bindgen(js_name = startWith)]
    pub async fn start_with_js(database: String) -> Result<VaultEngine, JsValue> {
        Self::start_with(&database).await.map_err(rpc_error)
    }

    /// A new app connection on `port`, tagged with the origin the shell
    /// checked; its number (for [`detach`](Self::detach)).
    pub fn attach_app(&self, port: MessagePort, origin: String) -> f64 {
        let conn = self.new_conn();
        self.attach(conn, port, false);
        enqueue(&self.state, Input::AppConnected { conn, origin });
        conn.0 as f64
    }

    /// A management connection of a top-level vault page on `port`; its
    /// number (for [`detach`](Self::detach)).
    pub fn attach_admin(&self, port: MessagePort) -> f64 {
        let conn = self.new_conn();
        self.attach(conn, port, true);
        enqueue(&self.state, Input::AdminConnected { conn });
        conn.0 as f64
    }

    /// The page that attached connection `conn` is gone (the worker learnt
    /// it from the page's lifeline lock): as if its port had closed.
    pub fn detach(&self, conn: f64) {
        let conn = ConnId(conn as u64);
        let port = {
            let mut s = self.state.borrow_mut();
            s.apps.remove(conn);
            s.ports.remove(&conn)
        };
        if let Some(port) = port {
            port.port.close();
            enqueue(&self.state, Input::Disconnected { conn });
        }
    }

    /// The port of the vault page that drives WebRTC for the engine (the
    /// one that holds the Web Lock `echo-net-host`): dials go to it, and
    /// it hands over a port per peer link.
    pub fn attach_net(&self, port: MessagePort) {
        crate::net::attach_host(&self.state, port);
    }

    /// How many connections are attached (for the manage page and tests).
    pub fn connections(&self) -> u32 {
        self.state.borrow().ports.len() as u32
    }
}

/// What one app site's spaces may hold (`VaultConfig::origin_quota`): half
/// of the storage the browser gives the vault (`navigator.storage.estimate()`
/// at start), so no one site can fill it for the others. `None` (no limit)
/// where the browser does not say.
async fn site_share() -> Option<u64> {
    let storage = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| js_sys::Reflect::get(&n, &"storage".into()))
        .ok()?;
    let estimate = js_sys::Reflect::get(&storage, &"estimate".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?
        .call0(&storage)
        .ok()?
        .dyn_into::<js_sys::Promise>()
        .ok()?;
    let estimate = wasm_bindgen_futures::JsFuture::from(estimate).await.ok()?;
    let quota = js_sys::Reflect::get(&estimate, &"quota".into())
        .ok()?
        .as_f64()?;
    (quota.is_finite() && quota > 0.0).then(|| (quota / 2.0) as u64)
}

/// A panic (or an allocation failure, which panics) leaves the engine's
/// state half-changed, and with `panic = "abort"` the wasm instance traps
/// right after: nothing of it may run again. The hook says why on the
/// console and tells the worker (its global `echoEngineFatal`, set by
/// `worker/engine-worker.ts`), which reports the engine failed and closes,
/// so that the next connection starts a fresh engine from what is stored.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = format!("echo-vault: the engine stopped: {info}");
        web_sys::console::error_1(&message.clone().into());
        let fatal = js_sys::Reflect::get(&js_sys::global(), &"echoEngineFatal".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        if let Some(fatal) = fatal {
            let _ = fatal.call1(&JsValue::NULL, &message.into());
        }
    }));
}

impl VaultEngine {
    async fn start_with(database: &str) -> Result<VaultEngine, RpcError> {
        install_panic_hook();
        hold_engine_lock().await?;
        crate::mirror::prepare().await;
        let store = Rc::new(IdbStore::open(database).await.map_err(store_blocked)?);
        let keyring = Rc::new(Keyring::open_or_create().await?);
        let seed = EngineRng::from_os()
            .map_err(|e| RpcError::new(codes::INTERNAL, e.to_string()))?
            .bytes();
        let known = crate::marker::read(database).await;
        let mut config = VaultConfig::new(seed);
        config.expected_identity = known;
        config.origin_quota = site_share().await;
        let vault = Vault::new(now_ms(), config);
        let state = Rc::new(RefCell::new(State {
            vault,
            store,
            keyring,
            net: crate::net::Net::default(),
            timer: None,
            ports: BTreeMap::new(),
            inbox: VecDeque::new(),
            apps: AppQueues::default(),
            pumping: false,
            next_turn: NextTurn::default(),
            next_conn: 0,
            boot: None,
        }));
        // The vault boots itself (reads its records, seals or unseals its
        // keys, stores a new identity); wait until it says how that went.
        let (tx, rx) = futures_channel::oneshot::channel::<Result<(), RpcError>>();
        state.borrow_mut().boot = Some(tx);
        pump(&state);
        let booted = rx
            .await
            .map_err(|_| RpcError::new(codes::INTERNAL, "the vault stopped while starting"))?;
        booted?;
        let identity = state.borrow().vault.identity();
        if let Some(identity) = identity.filter(|i| known.as_ref() != Some(i)) {
            crate::marker::write(database, &identity).await;
        }
        crate::net::connect(&state);
        Ok(VaultEngine { state })
    }

    fn new_conn(&self) -> ConnId {
        let mut s = self.state.borrow_mut();
        s.next_conn += 1;
        ConnId(s.next_conn)
    }

    fn attach(&self, conn: ConnId, port: MessagePort, admin: bool) {
        let weak = Rc::downgrade(&self.state);
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(state) = weak.upgrade() {
                let data = event.data();
                #[cfg(feature = "test-hooks")]
                if !admin && crate::test_hooks::handle(&state, &data) {
                    return;
                }
                if admin {
                    enqueue(&state, decode_admin(conn, &data));
                    return;
                }
                let idle = {
                    let s = state.borrow();
                    s.apps.is_empty() && !s.pumping
                };
                let queued = state.borrow_mut().apps.push(conn, data);
                match queued {
                    Err(units) => shut_app(
                        &state,
                        conn,
                        RpcError::new(
                            codes::RATE_LIMITED,
                            format!("this connection has {units} UTF-16 units of messages waiting, more than the vault keeps for one connection; wait for answers before sending more"),
                        ),
                    ),
                    // Nothing else waits: this message's turn is now.
                    Ok(()) if idle => pump(&state),
                    // Others wait: a turn of its own, after what the
                    // browser queued meanwhile.
                    Ok(()) => schedule_turn(&state),
                }
            }
        });
        let weak = Rc::downgrade(&self.state);
        let onclose = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if let Some(state) = weak.upgrade() {
                state.borrow_mut().ports.remove(&conn);
                state.borrow_mut().apps.remove(conn);
                enqueue(&state, Input::Disconnected { conn });
            }
        });
        port.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        // MessagePort's `close` event (where the browser has it) tells that
        // the other end went away.
        let _ = port.add_event_listener_with_callback("close", onclose.as_ref().unchecked_ref());
        port.start();
        self.state.borrow_mut().ports.insert(
            conn,
            Port {
                port,
                _onmessage: onmessage,
                _onclose: onclose,
            },
        );
    }
}

pub(crate) fn enqueue(state: &Shared, input: Input) {
    state.borrow_mut().inbox.push_back(input);
    pump(state);
}

fn not_text() -> RpcError {
    RpcError::bad_request(
        "a message must be one JSON string (port.postMessage(JSON.stringify(message)))",
    )
}

/// Decodes an app port message: JSON text, size-checked before it is
/// parsed, carrying one message or a frame of several (`frame::split_frame`),
/// each decoded on its own.
/// A string port message too long to be within the byte limit, refused
/// before it is copied into wasm memory (which never shrinks): its length
/// in UTF-16 units is at most its UTF-8 length, so more units than the
/// limit's bytes is surely over. The call id is looked for in its first
/// characters only.
fn refuse_long_string(data: &JsValue) -> Option<Undecodable> {
    let js = data.dyn_ref::<js_sys::JsString>()?;
    let units = js.length() as usize;
    if units <= MAX_MESSAGE_BYTES {
        return None;
    }
    let head = js.slice(0, 256).as_string().unwrap_or_default();
    Some(Undecodable {
        id: probe_id(&head),
        error: RpcError::too_large("the message (UTF-16 code units)", units, MAX_MESSAGE_BYTES),
    })
}

/// The largest first message of a connection, in UTF-16 code units: a
/// `hello` is a few dozen bytes.
const MAX_FIRST_MESSAGE_UNITS: usize = 4_096;

fn decode_app(data: &JsValue, greeted: bool) -> Vec<Result<ClientMessage, Undecodable>> {
    if let Some(refused) = refuse_long_string(data) {
        return vec![Err(refused)];
    }
    if !greeted {
        let units = crate::app_queue::units(data);
        if units > MAX_FIRST_MESSAGE_UNITS {
            return vec![Err(Undecodable {
                id: None,
                error: RpcError::too_large(
                    "a first message (UTF-16 code units; it must be a hello)",
                    units,
                    MAX_FIRST_MESSAGE_UNITS,
                ),
            })];
        }
    }
    let Some(text) = data.as_string() else {
        return vec![Err(Undecodable {
            id: None,
            error: not_text(),
        })];
    };
    if let Err(error) = check_size(text.len()) {
        // Too large to parse: look for the id only in a bounded prefix.
        return vec![Err(Undecodable {
            id: probe_id(&text),
            error,
        })];
    }
    let parts = match split_frame(&text, MAX_FRAME_MESSAGES) {
        Ok(parts) => parts,
        Err(TooManyMessages(seen)) => {
            return vec![Err(Undecodable {
                id: None,
                error: RpcError::too_large("a frame (messages)", seen, MAX_FRAME_MESSAGES)
                    .with_detail("reason", "frame_messages"),
            })]
        }
    };
    parts
        .into_iter()
        .map(|part| {
            decode_client_message(serde_json::from_str::<ClientMessage>(part), || {
                serde_json::from_str::<Probe>(part).ok()
            })
        })
        .collect()
}

fn decode_admin(conn: ConnId, data: &JsValue) -> Input {
    if let Some(refused) = refuse_long_string(data) {
        let message = Err(AdminUndecodable {
            id: refused.id,
            error: refused.error,
        });
        return Input::AdminMessage { conn, message };
    }
    let text = data.as_string();
    let parsed = match &text {
        Some(t) => check_size(t.len())
            .and_then(|()| serde_json::from_str::<AdminMessage>(t).map_err(RpcError::bad_request)),
        None => Err(not_text()),
    };
    let message = parsed.map_err(|error| AdminUndecodable {
        id: text.as_deref().and_then(probe_id),
        error,
    });
    Input::AdminMessage { conn, message }
}

/// The call id of an oversized JSON message, read from its first bytes.
fn probe_id(text: &str) -> Option<u32> {
    let head = text.get(..text.len().min(256)).unwrap_or("");
    let at = head.find("\"id\"")?;
    let digits: String = head[at + 4..]
        .chars()
        .skip_while(|c| *c == ':' || c.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Hands every queued input to the vault, then carries out its outputs.
/// Re-entrant calls (an output completing at once) only queue.
pub(crate) fn pump(state: &Shared) {
    if std::mem::replace(&mut state.borrow_mut().pumping, true) {
        return;
    }
    loop {
        let mut inputs: Vec<Input> = state.borrow_mut().inbox.drain(..).collect();
        // One round of app messages: each connection's share.
        let round = {
            let mut s = state.borrow_mut();
            let State { apps, vault, .. } = &mut *s;
            apps.round(|conn, data| decode_app(data, vault.app_greeted(conn)))
        };
        inputs.extend(
            round
                .into_iter()
                .map(|(conn, message)| Input::AppMessage { conn, message }),
        );
        let now = now_ms();
        for input in inputs {
            let result = state.borrow_mut().vault.handle_input(now, input);
            if let Err(e) = result {
                web_sys::console::error_1(&format!("echo-vault: {e}").into());
            }
        }
        drain_outputs(state);
        if state.borrow().inbox.is_empty() {
            break;
        }
    }
    state.borrow_mut().pumping = false;
    if !state.borrow().apps.is_empty() {
        schedule_turn(state);
    }
    schedule_timeout(state);
}

/// A task that runs the engine's next turn: a message to a channel of its
/// own, which the browser runs after the tasks queued before it (unlike a
/// chain of `setTimeout(0)`, which browsers slow to 4 ms a step).
#[derive(Default)]
struct NextTurn {
    channel: Option<(web_sys::MessageChannel, Closure<dyn FnMut(MessageEvent)>)>,
    pending: bool,
}

fn schedule_turn(state: &Shared) {
    let mut s = state.borrow_mut();
    if s.next_turn.pending {
        return;
    }
    if s.next_turn.channel.is_none() {
        let Ok(channel) = web_sys::MessageChannel::new() else {
            return;
        };
        let weak = Rc::downgrade(state);
        let run = Closure::<dyn FnMut(MessageEvent)>::new(move |_| {
            if let Some(state) = weak.upgrade() {
                state.borrow_mut().next_turn.pending = false;
                pump(&state);
            }
        });
        channel
            .port1()
            .set_onmessage(Some(run.as_ref().unchecked_ref()));
        s.next_turn.channel = Some((channel, run));
    }
    if let Some((channel, _)) = &s.next_turn.channel {
        if channel.port2().post_message(&JsValue::NULL).is_ok() {
            s.next_turn.pending = true;
        }
    }
}

/// Closes an app connection the host refuses to serve further (the vault
/// forgets it as if its port had closed).
fn shut_app(state: &Shared, conn: ConnId, error: RpcError) {
    {
        let mut s = state.borrow_mut();
        s.apps.remove(conn);
        if let Some(port) = s.ports.remove(&conn) {
            post(
                &port,
                JsValue::from_str(&encode(&VaultMessage::Refused { error })),
            );
            port.port.close();
        }
    }
    enqueue(state, Input::Disconnected { conn });
}

/// Keeps one `setTimeout` at the vault's next deadline.
fn schedule_timeout(state: &Shared) {
    let at = state.borrow().vault.poll_timeout();
    let current = state.borrow().timer;
    if current.map(|(_, t)| t) == at {
        return;
    }
    if let Some((handle, _)) = state.borrow_mut().timer.take() {
        crate::net::clear_timeout(handle);
    }
    let Some(at) = at else { return };
    let wait = at.saturating_sub(now_ms()).min(i32::MAX as u64) as i32;
    let weak = Rc::downgrade(state);
    let fire = Closure::once_into_js(move || {
        if let Some(state) = weak.upgrade() {
            state.borrow_mut().timer = None;
            enqueue(&state, Input::Timeout);
        }
    });
    if let Some(handle) = crate::net::set_timeout(&fire, wait) {
        state.borrow_mut().timer = Some((handle, at));
    }
}

fn post(port: &Port, value: JsValue) {
    // A closed port drops messages silently; nothing to do about a failure.
    let _ = port.port.post_message(&value);
}

/// A message as JSON text. Plain data always serializes; should it not,
/// the port gets a `rejected` naming the failure rather than nothing.
fn encode<T: Serialize>(message: &T) -> String {
    match serde_json::to_string(message) {
        Ok(text) => text,
        Err(e) => {
            let error = RpcError::new(
                codes::INTERNAL,
                format!("the vault could not encode its answer: {e}"),
            );
            serde_json::to_string(&VaultMessage::Rejected { error }).unwrap_or_default()
        }
    }
}

/// Largest frame the engine sends an app (many answers released by one
/// flush travel together; see `frame::pack_frames`).
const MAX_OUT_FRAME_BYTES: usize = 1024 * 1024;

/// Posts the app messages gathered for `conn`, packed into frames.
fn send_frames(s: &State, conn: ConnId, messages: &mut Vec<String>) {
    if let Some(port) = s.ports.get(&conn) {
        for frame in pack_frames(messages, MAX_OUT_FRAME_BYTES) {
            post(port, JsValue::from_str(&frame));
        }
    }
    messages.clear();
}

/// Carries out everything the vault asks: messages to ports, storage and
/// key operations (results come back as inputs).
fn drain_outputs(state: &Shared) {
    // App messages per connection, in order, sent as frames at the end (or
    // before the connection closes).
    let mut pending: BTreeMap<ConnId, Vec<String>> = BTreeMap::new();
    loop {
        let output = state.borrow_mut().vault.poll_output();
        let Some(output) = output else { break };
        match output {
            Output::App { conn, message } => {
                pending.entry(conn).or_default().push(encode(&message));
            }
            Output::Admin { conn, message } => {
                let s = state.borrow();
                if let Some(port) = s.ports.get(&conn) {
                    post(port, JsValue::from_str(&encode(&message)));
                }
            }
            Output::Close { conn } => {
                let mut s = state.borrow_mut();
                if let Some(mut messages) = pending.remove(&conn) {
                    send_frames(&s, conn, &mut messages);
                }
                if let Some(port) = s.ports.remove(&conn) {
                    port.port.close();
                }
                s.apps.remove(conn);
            }
            Output::Read { read, prefix } => {
                let store = state.borrow().store.clone();
                let state = state.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = store.list_prefix(&prefix).await;
                    enqueue(&state, Input::ReadDone { read, result });
                });
            }
            Output::Write {
                write,
                batch,
                durability,
            } => {
                let store = state.borrow().store.clone();
                let state = state.clone();
                // The second copy gets the same batch, at once (in the
                // order the vault asked); the write is answered once both
                // hold it (mirror.rs).
                let mirrored = crate::mirror::apply(&batch, durability);
                // Tasks start in the order they were spawned, so storage
                // operations are issued in the order the vault asked.
                wasm_bindgen_futures::spawn_local(async move {
                    let result = store.apply_with(batch, durability).await;
                    if let Some(mirrored) = mirrored {
                        // Bounded from the default database's commit on: a
                        // copy the mirror could not write (or not in time)
                        // is marked as not to be restored from.
                        crate::mirror::settle(mirrored).await;
                    }
                    if let Err(e) = &result {
                        web_sys::console::error_1(
                            &format!("echo-vault: a flush failed: {e}").into(),
                        );
                    }
                    enqueue(&state, Input::WriteDone { write, result });
                });
            }
            Output::Seal { op, plaintext, aad } => {
                let keyring = state.borrow().keyring.clone();
                let state = state.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = keyring.seal(&plaintext, &aad).await.map_err(|e| e.message);
                    drop(plaintext);
                    enqueue(&state, Input::Sealed { op, result });
                });
            }
            Output::Unseal {
                op,
                ciphertext,
                aad,
            } => {
                let keyring = state.borrow().keyring.clone();
                let state = state.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = keyring
                        .unseal(&ciphertext, &aad)
                        .await
                        .map(Zeroizing::new)
                        .map_err(|e| e.message);
                    enqueue(&state, Input::Unsealed { op, result });
                });
            }
            Output::PeerSend { link, bytes } => crate::net::peer_send(state, link, bytes),
            Output::PeerClose { link, reason } => {
                crate::net::log(state, &format!("link {} closed: {reason:?}", link.0));
                crate::net::peer_close(state, link)
            }
            Output::SignalJoin { topic } => crate::net::signal_join(state, &topic),
            Output::SignalLeave { topic } => crate::net::signal_leave(state, &topic),
            Output::SignalSend { topic, to, data } => {
                crate::net::signal_send(state, &topic, to, &data)
            }
            Output::Dial { dial, peer, topic } => crate::net::dial(state, dial, peer, &topic),
            Output::Event(event) => match event {
                VaultEvent::Ready => {
                    if let Some(tx) = state.borrow_mut().boot.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                VaultEvent::Failed(error) => {
                    web_sys::console::error_1(
                        &format!("echo-vault: {}: {}", error.code, error.message).into(),
                    );
                    if let Some(tx) = state.borrow_mut().boot.take() {
                        let _ = tx.send(Err(error));
                    }
                }
                VaultEvent::PeerAuthenticated { link, device, .. } => {
                    crate::net::log(state, &format!("link {} is device {device}", link.0));
                }
                VaultEvent::SyncStarted { link, space } => {
                    crate::net::log(state, &format!("link {}: syncing {space}", link.0));
                }
                VaultEvent::SyncStopped {
                    link,
                    space,
                    code,
                    reason,
                } => {
                    crate::net::log(
                        state,
                        &format!("link {}: stopped syncing {space}: {code} {reason}", link.0),
                    );
                }
                VaultEvent::Rejected { space, codes } => {
                    crate::net::log(
                        state,
                        &format!("refused a peer's bundles in {space}: {}", codes.join(", ")),
                    );
                }
                VaultEvent::InvitationTrouble { invitation, error } => {
                    web_sys::console::warn_1(
                        &format!(
                            "echo-vault: invitation {invitation}: {}: {}",
                            error.code, error.message
                        )
                        .into(),
                    );
                }
                _ => {}
            },
        }
    }
    let s = state.borrow();
    for (conn, mut messages) in pending {
        send_frames(&s, conn, &mut messages);
    }
}
