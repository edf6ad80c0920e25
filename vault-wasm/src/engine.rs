//! [`VaultEngine`]: the driver of `echo_core::vault::Vault` in the vault's
//! worker — ports in, outputs out, spaces opened from IndexedDB on demand,
//! and flushes written to it (group commit).
//!
//! One worker thread; everything is single-threaded: state sits in an
//! `Rc<RefCell<..>>`, and futures run on the worker's event loop
//! (`spawn_local`). The rules:
//!
//! - **Order**: every message from any port goes into one inbox, handled in
//!   arrival order by one pump task. A message that needs a space opened
//!   waits for the read (and so do the messages behind it); all others are
//!   handled synchronously.
//! - **Group commit**: after the pump ran, a flush starts when the vault
//!   wants one and none is in flight; the flush writes one IndexedDB
//!   transaction and, when its `complete` event came, releases the answers
//!   held for it. Writes arriving meanwhile go into the next flush, so any
//!   number of concurrent calls share a transaction.
//! - **Format**: app and admin ports carry JSON text (one string per
//!   message), checked against `MAX_MESSAGE_BYTES` before it is parsed with
//!   serde_json; anything else is answered with `rejected`
//!   (`rpc.bad_request`).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use echo_core::rpc::{
    check_size, codes, decode_client_message, AdminMessage, ClientMessage, Probe, RpcError,
    Undecodable, VaultMessage,
};
use echo_core::store::StoreError;
use echo_core::vault::{ConnId, NewIdentity, Output, StoredVault, Vault, PREFIX};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort};

use crate::frame::{pack_frames, split_frame};
use crate::keyring::{describe, Keyring};
use crate::{AsyncChunkStore, IdbStore};

/// The name of the vault's IndexedDB database.
pub const DATABASE: &str = "echo-vault";

enum Inbound {
    App(ConnId, JsValue),
    Admin(ConnId, JsValue),
    Closed(ConnId),
}

struct Port {
    port: MessagePort,
    // Kept alive as long as the port is attached.
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onclose: Closure<dyn FnMut(JsValue)>,
}

struct State {
    vault: Vault,
    store: Rc<IdbStore>,
    ports: BTreeMap<ConnId, Port>,
    inbox: VecDeque<Inbound>,
    pumping: bool,
    flushing: bool,
}

type Shared = Rc<RefCell<State>>;

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

fn now_ms() -> f64 {
    js_sys::Date::now()
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
    /// Opens IndexedDB and the identity (created on first run). Rejects
    /// with an `RpcError`-shaped object.
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
    /// checked.
    pub fn attach_app(&self, port: MessagePort, origin: String) {
        let conn = self.state.borrow_mut().vault.connect_app(&origin);
        self.attach(conn, port, false);
        drain_outputs(&self.state);
    }

    /// A management connection of a top-level vault page on `port`.
    pub fn attach_admin(&self, port: MessagePort) {
        let conn = self.state.borrow_mut().vault.connect_admin();
        self.attach(conn, port, true);
    }

    /// How many connections are attached (for the manage page and tests).
    pub fn connections(&self) -> u32 {
        self.state.borrow().ports.len() as u32
    }
}

impl VaultEngine {
    async fn start_with(database: &str) -> Result<VaultEngine, RpcError> {
        hold_engine_lock().await?;
        let store = Rc::new(IdbStore::open(database).await.map_err(store_blocked)?);
        let entries = store.list_prefix(PREFIX).await.map_err(store_blocked)?;
        let stored = StoredVault::parse(entries)?;
        let keyring = Keyring::open_or_create().await?;
        let vault = match stored.sealed_device()? {
            Some(sealed) => {
                let mut plain = keyring.unseal(sealed.ciphertext(), &sealed.aad()).await?;
                let vault = Vault::open(stored, &plain);
                plain.iter_mut().for_each(|b| *b = 0);
                vault?
            }
            None => {
                let new = NewIdentity::generate()?;
                let [identity, device] = new.seal_requests();
                let sealed_identity = keyring.seal(identity.plaintext(), &identity.aad()).await?;
                let sealed_device = keyring.seal(device.plaintext(), &device.aad()).await?;
                drop((identity, device));
                Vault::create(new, [sealed_identity, sealed_device], stored)?
            }
        };
        let state = Rc::new(RefCell::new(State {
            vault,
            store,
            ports: BTreeMap::new(),
            inbox: VecDeque::new(),
            pumping: false,
            flushing: false,
        }));
        // A new identity is stored before anything is served.
        flush(&state).await;
        if state.borrow().vault.wants_flush() {
            return Err(RpcError::new(
                codes::STORAGE_BLOCKED,
                "the vault could not store its new identity",
            ));
        }
        Ok(VaultEngine { state })
    }

    fn attach(&self, conn: ConnId, port: MessagePort, admin: bool) {
        let weak = Rc::downgrade(&self.state);
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(state) = weak.upgrade() {
                let data = event.data();
                let inbound = if admin {
                    Inbound::Admin(conn, data)
                } else {
                    Inbound::App(conn, data)
                };
                enqueue(&state, inbound);
            }
        });
        let weak = Rc::downgrade(&self.state);
        let onclose = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if let Some(state) = weak.upgrade() {
                enqueue(&state, Inbound::Closed(conn));
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

fn enqueue(state: &Shared, inbound: Inbound) {
    let start = {
        let mut s = state.borrow_mut();
        s.inbox.push_back(inbound);
        !std::mem::replace(&mut s.pumping, true)
    };
    if start {
        let state = state.clone();
        wasm_bindgen_futures::spawn_local(async move { pump(&state).await });
    }
}

fn not_text() -> RpcError {
    RpcError::bad_request(
        "a message must be one JSON string (port.postMessage(JSON.stringify(message)))",
    )
}

/// Decodes an app port message: JSON text, size-checked before it is
/// parsed, carrying one message or a frame of several (`frame::split_frame`),
/// each decoded on its own.
fn decode_app(data: &JsValue) -> Vec<Result<ClientMessage, Undecodable>> {
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
    split_frame(&text)
        .into_iter()
        .map(|part| {
            decode_client_message(serde_json::from_str::<ClientMessage>(part), || {
                serde_json::from_str::<Probe>(part).ok()
            })
        })
        .collect()
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

async fn pump(state: &Shared) {
    loop {
        let next = state.borrow_mut().inbox.pop_front();
        let Some(inbound) = next else { break };
        match inbound {
            Inbound::Closed(conn) => {
                let mut s = state.borrow_mut();
                s.ports.remove(&conn);
                s.vault.disconnect(conn);
            }
            Inbound::Admin(conn, data) => {
                let text = data.as_string();
                let mut s = state.borrow_mut();
                if !s.ports.contains_key(&conn) {
                    continue;
                }
                let parsed = match &text {
                    Some(t) => check_size(t.len()).and_then(|()| {
                        serde_json::from_str::<AdminMessage>(t).map_err(RpcError::bad_request)
                    }),
                    None => Err(not_text()),
                };
                match parsed {
                    Ok(message) => s.vault.admin_message(conn, message, now_ms()),
                    Err(error) => {
                        let id = text.as_deref().and_then(probe_id);
                        s.vault.admin_undecodable(conn, id, error)
                    }
                }
            }
            Inbound::App(conn, data) => {
                for decoded in decode_app(&data) {
                    if !state.borrow().ports.contains_key(&conn) {
                        break;
                    }
                    app_message(state, conn, decoded).await;
                }
            }
        }
        drain_outputs(state);
    }
    state.borrow_mut().pumping = false;
    drain_outputs(state);
    kick_flush(state);
}

/// One decoded app message: opens the space the call needs first (a
/// storage read), then hands it to the vault.
async fn app_message(state: &Shared, conn: ConnId, decoded: Result<ClientMessage, Undecodable>) {
    let to_open = match &decoded {
        Ok(ClientMessage::Request { method, .. }) => state.borrow().vault.space_to_open(method),
        _ => None,
    };
    if let Some(id) = to_open {
        if let Err(error) = open_space(state, id).await {
            // The call cannot run: answered with the error through the
            // vault's output queue, like a call that could not be decoded,
            // so it stays in order with the answers before it.
            let id = match &decoded {
                Ok(ClientMessage::Request { id, .. }) => Some(*id),
                _ => None,
            };
            state
                .borrow_mut()
                .vault
                .app_message(conn, Err(Undecodable { id, error }));
            return;
        }
    }
    state.borrow_mut().vault.app_message(conn, decoded);
}

async fn open_space(state: &Shared, id: echo_core::model::SpaceId) -> Result<(), RpcError> {
    let store = state.borrow().store.clone();
    let entries = store
        .list_prefix(&Vault::storage_prefix(&id))
        .await
        .map_err(RpcError::from)?;
    state
        .borrow_mut()
        .vault
        .open_space(id, entries)
        .map_err(RpcError::from)
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

/// Sends everything the vault has for the ports, closes what it closed.
fn drain_outputs(state: &Shared) {
    let mut s = state.borrow_mut();
    // App messages per connection, in order, sent as frames at the end (or
    // before the connection closes).
    let mut pending: BTreeMap<ConnId, Vec<String>> = BTreeMap::new();
    while let Some(output) = s.vault.poll_output() {
        match output {
            Output::App { conn, message } => {
                pending.entry(conn).or_default().push(encode(&message));
            }
            Output::Admin { conn, message } => {
                if let Some(port) = s.ports.get(&conn) {
                    post(port, JsValue::from_str(&encode(&message)));
                }
            }
            Output::Close { conn } => {
                if let Some(mut messages) = pending.remove(&conn) {
                    send_frames(&s, conn, &mut messages);
                }
                if let Some(port) = s.ports.remove(&conn) {
                    port.port.close();
                }
            }
        }
    }
    for (conn, mut messages) in pending {
        send_frames(&s, conn, &mut messages);
    }
}

fn kick_flush(state: &Shared) {
    let start = {
        let mut s = state.borrow_mut();
        if s.flushing || !s.vault.wants_flush() {
            false
        } else {
            s.flushing = true;
            true
        }
    };
    if start {
        let state = state.clone();
        wasm_bindgen_futures::spawn_local(async move {
            flush(&state).await;
            state.borrow_mut().flushing = false;
            // Writes that came in meanwhile.
            kick_flush(&state);
        });
    }
}

/// Writes one flush and releases (or fails) its answers. After a failure,
/// the spaces it reverted are opened again so their live queries resume.
async fn flush(state: &Shared) {
    let prepared = state.borrow_mut().vault.prepare_flush();
    let flush = match prepared {
        Ok(Some(flush)) => flush,
        Ok(None) => return,
        Err(e) => {
            web_sys::console::error_1(&format!("echo-vault: cannot prepare a flush: {e}").into());
            return;
        }
    };
    let store = state.borrow().store.clone();
    // Issued now (IdbStore::apply issues on the call), awaited below.
    let written = store.apply(flush.batch).await;
    match written {
        Ok(()) => state.borrow_mut().vault.flush_done(flush.ticket),
        Err(e) => {
            web_sys::console::error_1(&format!("echo-vault: a flush failed: {e}").into());
            state.borrow_mut().vault.flush_failed(flush.ticket, &e);
            let reload = state.borrow().vault.spaces_to_reload();
            for id in reload {
                if let Err(e) = open_space(state, id).await {
                    web_sys::console::error_1(
                        &format!("echo-vault: cannot reopen space {id}: {}", e.message).into(),
                    );
                }
            }
        }
    }
    drain_outputs(state);
}
