//! The engine's network I/O in the worker: its signaling socket, the vault
//! page that drives WebRTC for it (the *net host*), and the peer links that
//! page hands over. The vault machine decides whom to meet and when; this
//! module only carries bytes (docs/browser-vault.md, section 7).
//!
//! ```text
//! vault machine ──SignalJoin/Leave/Send──► WebSocket /signal (JSON, signal/PROTOCOL.md)
//!               ◄─SignalUp/Down/Peers/Joined/Left/Message──
//! vault machine ──Dial(peer, topic)──► net host page: {t:"dial", dial, peer, topic}
//!   net host ──{t:"signal_send", to, topic, payload}──► socket (data "w" + JSON)
//!   socket   ──data "w…" from a peer──► net host {t:"signal", from, topic, payload}
//!   net host ──{t:"link", dial, binding, port}──► PeerConnected; the port carries
//!              the data channel's bytes (ArrayBuffers, transferred) both ways
//! vault machine ──PeerSend / PeerClose──► link port (bytes / "close")
//! link port ──bytes / "closed"──► PeerBytes / PeerClosed
//! ```
//!
//! Signaling data is text: `i` + base64 for the vault's own messages
//! (invitations), `w` + JSON for the WebRTC negotiation the net host does.
//! Peer ids on the wire are 16 hex digits (a random u64 the server picks).
//!
//! Without a net host (no vault page open), a dial fails at once with a
//! reason the pages show; the vault retries with backoff. When the net
//! host goes (its page closed), its links are closed and the next vault
//! page to take the lead starts afresh from the persisted state.

use std::collections::BTreeMap;
use std::rc::Rc;

use data_encoding::{BASE64, HEXLOWER, HEXLOWER_PERMISSIVE};
use echo_core::peer::ChannelBinding;
use echo_core::vault::{DialId, Input, LinkId, SignalPeer, Topic};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, MessagePort, WebSocket};

use crate::engine::{enqueue, Shared};

/// First wait before connecting to signaling again; doubled per failure.
const FIRST_RETRY_MS: i32 = 1_000;
const MAX_RETRY_MS: i32 = 30_000;

/// A message from the signaling server (signal/PROTOCOL.md).
#[derive(Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum FromServer {
    Welcome {
        #[allow(dead_code)]
        peer: String,
    },
    Peers {
        topic: String,
        peers: Vec<String>,
    },
    Joined {
        topic: String,
        peer: String,
    },
    Left {
        topic: String,
        peer: String,
    },
    Message {
        topic: String,
        from: String,
        data: String,
    },
    Error {
        code: String,
        message: String,
    },
}

/// A message to the signaling server.
#[derive(Serialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum ToServer<'a> {
    Join {
        topic: &'a str,
    },
    Leave {
        topic: &'a str,
    },
    Send {
        topic: &'a str,
        to: &'a str,
        data: &'a str,
    },
}

fn topic_hex(topic: &Topic) -> String {
    HEXLOWER.encode(&topic.0)
}

/// 32 bytes from 64 hex digits (a topic, a channel binding).
fn hex32(text: &str) -> Option<[u8; 32]> {
    HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .ok()?
        .try_into()
        .ok()
}

fn parse_topic(text: &str) -> Option<Topic> {
    hex32(text).map(Topic)
}

fn peer_hex(peer: SignalPeer) -> String {
    format!("{:016x}", peer.0)
}

fn parse_peer(text: &str) -> Option<SignalPeer> {
    (text.len() == 16)
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
        .map(SignalPeer)
}

fn parse_binding(text: &str) -> Option<ChannelBinding> {
    hex32(text).map(ChannelBinding::from_bytes)
}

struct Socket {
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

struct NetHost {
    port: MessagePort,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onclose: Closure<dyn FnMut(JsValue)>,
}

struct LinkPort {
    port: MessagePort,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
}

/// The worker's network state. See the module docs.
#[derive(Default)]
pub(crate) struct Net {
    socket: Option<Socket>,
    /// The socket said welcome: the vault was told `SignalUp`.
    up: bool,
    failures: u32,
    host: Option<NetHost>,
    /// Which net host (by generation) made each link.
    links: BTreeMap<LinkId, (u64, LinkPort)>,
    host_generation: u64,
    next_link: u64,
}

impl Net {
    fn send(&self, message: &ToServer) {
        let Some(socket) = &self.socket else { return };
        if !self.up {
            return;
        }
        if let Ok(text) = serde_json::to_string(message) {
            // A closing socket drops it; the vault joins again on SignalUp.
            let _ = socket.ws.send_with_str(&text);
        }
    }
}

fn console_warn(message: &str) {
    web_sys::console::warn_1(&message.into());
}

/// The signaling URL: `/signal` on the worker's own origin (the vault site
/// serves it), ws:// or wss:// as the page is http:// or https://.
fn signal_url() -> Option<String> {
    let location = js_sys::Reflect::get(&js_sys::global(), &"location".into()).ok()?;
    let origin = js_sys::Reflect::get(&location, &"origin".into())
        .ok()?
        .as_string()?;
    let ws = if let Some(rest) = origin.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        format!("ws://{}", origin.strip_prefix("http://")?)
    };
    Some(format!("{ws}/signal"))
}

/// Connects to signaling (again). Called once the vault is ready.
pub(crate) fn connect(state: &Shared) {
    let Some(url) = signal_url() else {
        console_warn("echo-vault: no origin to reach signaling from; peers are off");
        return;
    };
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            console_warn(&format!("echo-vault: signaling: {e:?}"));
            retry(state);
            return;
        }
    };
    let weak = Rc::downgrade(state);
    let onmessage = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let Some(state) = weak.upgrade() else { return };
        let Some(text) = event
            .dyn_ref::<MessageEvent>()
            .and_then(|e| e.data().as_string())
        else {
            return;
        };
        on_server(&state, &text);
    });
    let weak = Rc::downgrade(state);
    let onclose = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let Some(state) = weak.upgrade() else { return };
        if let Some(close) = event.dyn_ref::<CloseEvent>() {
            if !close.reason().is_empty() {
                console_warn(&format!(
                    "echo-vault: signaling closed: {} ({})",
                    close.reason(),
                    close.code()
                ));
            }
        }
        let was_up = {
            let mut s = state.borrow_mut();
            s.net.socket = None;
            std::mem::replace(&mut s.net.up, false)
        };
        if was_up {
            enqueue(&state, Input::SignalDown);
        }
        retry(&state);
    });
    ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
    state.borrow_mut().net.socket = Some(Socket {
        ws,
        _handlers: vec![onmessage, onclose],
    });
}

fn retry(state: &Shared) {
    let failures = {
        let mut s = state.borrow_mut();
        s.net.failures = s.net.failures.saturating_add(1);
        s.net.failures
    };
    let wait = FIRST_RETRY_MS
        .saturating_mul(1 << failures.min(5).saturating_sub(1))
        .min(MAX_RETRY_MS);
    let weak = Rc::downgrade(state);
    let again = Closure::once_into_js(move || {
        if let Some(state) = weak.upgrade() {
            connect(&state);
        }
    });
    let _ = set_timeout(&again, wait);
}

/// `setTimeout` of the worker's global scope.
pub(crate) fn set_timeout(callback: &JsValue, ms: i32) -> Option<i32> {
    let global = js_sys::global();
    let set = js_sys::Reflect::get(&global, &"setTimeout".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    set.call2(&global, callback, &JsValue::from(ms))
        .ok()?
        .as_f64()
        .map(|n| n as i32)
}

pub(crate) fn clear_timeout(handle: i32) {
    let global = js_sys::global();
    if let Some(clear) = js_sys::Reflect::get(&global, &"clearTimeout".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    {
        let _ = clear.call1(&global, &JsValue::from(handle));
    }
}

fn on_server(state: &Shared, text: &str) {
    let Ok(message) = serde_json::from_str::<FromServer>(text) else {
        return;
    };
    let input = match message {
        FromServer::Welcome { .. } => {
            let no_host = {
                let mut s = state.borrow_mut();
                s.net.up = true;
                s.net.failures = 0;
                s.net.host.is_none()
            };
            if no_host {
                // No vault page drives WebRTC yet: said before the topics are joined.
                enqueue(state, Input::CannotDial);
            }
            Some(Input::SignalUp)
        }
        FromServer::Peers { topic, peers } => parse_topic(&topic).map(|topic| Input::SignalPeers {
            topic,
            peers: peers.iter().filter_map(|p| parse_peer(p)).collect(),
        }),
        FromServer::Joined { topic, peer } => parse_topic(&topic)
            .zip(parse_peer(&peer))
            .map(|(topic, peer)| Input::SignalJoined { topic, peer }),
        FromServer::Left { topic, peer } => parse_topic(&topic)
            .zip(parse_peer(&peer))
            .map(|(topic, peer)| Input::SignalLeft { topic, peer }),
        FromServer::Message { topic, from, data } => {
            let (Some(topic_id), Some(from_id)) = (parse_topic(&topic), parse_peer(&from)) else {
                return;
            };
            if let Some(b64) = data.strip_prefix('i') {
                BASE64
                    .decode(b64.as_bytes())
                    .ok()
                    .map(|data| Input::SignalMessage {
                        topic: topic_id,
                        from: from_id,
                        data,
                    })
            } else if let Some(json) = data.strip_prefix('w') {
                forward_negotiation(state, &topic, &from, json);
                None
            } else {
                None
            }
        }
        FromServer::Error { code, message } => {
            let text = format!("signaling: {code}: {message}");
            console_warn(&format!("echo-vault: {text}"));
            log(state, &text);
            None
        }
    };
    if let Some(input) = input {
        enqueue(state, input);
    }
}

/// A peer's WebRTC negotiation message, for the net host.
fn forward_negotiation(state: &Shared, topic: &str, from: &str, json: &str) {
    let Ok(payload) = js_sys::JSON::parse(json) else {
        return;
    };
    let s = state.borrow();
    let Some(host) = &s.net.host else { return };
    let message = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&message, &"t".into(), &"signal".into());
    let _ = js_sys::Reflect::set(&message, &"from".into(), &from.into());
    let _ = js_sys::Reflect::set(&message, &"topic".into(), &topic.into());
    let _ = js_sys::Reflect::set(&message, &"payload".into(), &payload);
    let _ = host.port.post_message(&message);
}

/// A line for the driving page's console (a worker's console is apart).
pub(crate) fn log(state: &Shared, text: &str) {
    let s = state.borrow();
    if let Some(host) = &s.net.host {
        let log = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&log, &"t".into(), &"log".into());
        let _ = js_sys::Reflect::set(&log, &"message".into(), &text.into());
        let _ = host.port.post_message(&log);
    }
}

// ------------------------------------------------------------ vault outputs

pub(crate) fn signal_join(state: &Shared, topic: &Topic) {
    let topic = topic_hex(topic);
    state.borrow().net.send(&ToServer::Join { topic: &topic });
}

pub(crate) fn signal_leave(state: &Shared, topic: &Topic) {
    let topic = topic_hex(topic);
    state.borrow().net.send(&ToServer::Leave { topic: &topic });
}

pub(crate) fn signal_send(state: &Shared, topic: &Topic, to: SignalPeer, data: &[u8]) {
    let topic = topic_hex(topic);
    let to = peer_hex(to);
    let data = format!("i{}", BASE64.encode(data));
    state.borrow().net.send(&ToServer::Send {
        topic: &topic,
        to: &to,
        data: &data,
    });
}

/// The vault asks for a pipe to `peer`: the net host dials, or the dial
/// fails at once when no vault page is open to drive WebRTC.
pub(crate) fn dial(state: &Shared, dial: DialId, peer: SignalPeer, topic: &Topic) {
    let posted = {
        let s = state.borrow();
        s.net.host.as_ref().map(|host| {
            let message = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&message, &"t".into(), &"dial".into());
            let _ = js_sys::Reflect::set(&message, &"dial".into(), &JsValue::from(dial.0 as f64));
            let _ = js_sys::Reflect::set(&message, &"peer".into(), &peer_hex(peer).into());
            let _ = js_sys::Reflect::set(&message, &"topic".into(), &topic_hex(topic).into());
            host.port.post_message(&message).is_ok()
        })
    };
    if posted != Some(true) {
        enqueue(
            state,
            Input::DialFailed {
                dial,
                reason: "no vault page is open to connect to peers".into(),
            },
        );
    }
}

pub(crate) fn peer_send(state: &Shared, link: LinkId, bytes: Vec<u8>) {
    let s = state.borrow();
    let Some((_, link)) = s.net.links.get(&link) else {
        return;
    };
    let array = js_sys::Uint8Array::from(bytes.as_slice());
    let buffer = array.buffer();
    let transfer = js_sys::Array::of1(&buffer);
    let _ = link.port.post_message_with_transferable(&buffer, &transfer);
}

pub(crate) fn peer_close(state: &Shared, link: LinkId) {
    let removed = state.borrow_mut().net.links.remove(&link);
    if let Some((_, link)) = removed {
        let _ = link.port.post_message(&"close".into());
        link.port.close();
    }
}

// ------------------------------------------------------------- the net host

/// A vault page took the lead for WebRTC: it gets the dials from now on.
/// Links of a previous net host are closed (its page is gone or gave up).
pub(crate) fn attach_host(state: &Shared, port: MessagePort) {
    drop_host(state);
    let generation = {
        let mut s = state.borrow_mut();
        s.net.host_generation += 1;
        s.net.host_generation
    };
    let weak = Rc::downgrade(state);
    let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        if let Some(state) = weak.upgrade() {
            on_host(&state, generation, &event.data());
        }
    });
    let weak = Rc::downgrade(state);
    let onclose = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        if let Some(state) = weak.upgrade() {
            if state.borrow().net.host_generation == generation {
                host_gone(&state);
            }
        }
    });
    port.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    let _ = port.add_event_listener_with_callback("close", onclose.as_ref().unchecked_ref());
    port.start();
    state.borrow_mut().net.host = Some(NetHost {
        port,
        _onmessage: onmessage,
        _onclose: onclose,
    });
    // Dials that failed for want of a page are tried again now.
    enqueue(state, Input::CanDial);
}

/// The net host left and no other took its place: the engine hears it
/// cannot dial (apps watching a space's status are told).
fn host_gone(state: &Shared) {
    drop_host(state);
    enqueue(state, Input::CannotDial);
}

/// The net host left: its links are gone with its page.
fn drop_host(state: &Shared) {
    let gone: Vec<LinkId> = {
        let mut s = state.borrow_mut();
        s.net.host = None;
        let links: Vec<LinkId> = s.net.links.keys().copied().collect();
        for link in &links {
            if let Some((_, port)) = s.net.links.remove(link) {
                port.port.close();
            }
        }
        links
    };
    for link in gone {
        enqueue(state, Input::PeerClosed { link });
    }
}

fn field(value: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(value, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

fn on_host(state: &Shared, generation: u64, data: &JsValue) {
    if state.borrow().net.host_generation != generation {
        if field(data, "t").as_string().as_deref() == Some("link") {
            // A page that lost the lead but still had a channel opening.
            if let Ok(port) = field(data, "port").dyn_into::<MessagePort>() {
                let _ = port.post_message(&"close".into());
                port.close();
            }
            log(state, "a link from a previous net host was refused");
        }
        return;
    }
    match field(data, "t").as_string().as_deref() {
        Some("signal_send") => {
            let (Some(to), Some(topic)) = (
                field(data, "to").as_string(),
                field(data, "topic").as_string(),
            ) else {
                return;
            };
            if parse_peer(&to).is_none() || parse_topic(&topic).is_none() {
                return;
            }
            let Ok(json) = js_sys::JSON::stringify(&field(data, "payload")) else {
                return;
            };
            let data = format!("w{}", String::from(json));
            state.borrow().net.send(&ToServer::Send {
                topic: &topic,
                to: &to,
                data: &data,
            });
        }
        Some("link") => {
            let Some(binding) = field(data, "binding")
                .as_string()
                .and_then(|b| parse_binding(&b))
            else {
                log(state, "a link without a channel binding was refused");
                return;
            };
            let Ok(port) = field(data, "port").dyn_into::<MessagePort>() else {
                log(state, "a link without a port was refused");
                return;
            };
            let dial = field(data, "dial").as_f64().map(|d| DialId(d as u64));
            let link = attach_link(state, generation, port);
            log(state, &format!("link {} up (dial {dial:?})", link.0));
            enqueue(
                state,
                Input::PeerConnected {
                    link,
                    binding,
                    dial,
                },
            );
        }
        Some("dial_failed") => {
            let Some(dial) = field(data, "dial").as_f64() else {
                return;
            };
            let reason = field(data, "reason")
                .as_string()
                .unwrap_or_else(|| "the connection failed".into());
            enqueue(
                state,
                Input::DialFailed {
                    dial: DialId(dial as u64),
                    reason,
                },
            );
        }
        Some("bye") => host_gone(state),
        _ => {}
    }
}

fn attach_link(state: &Shared, generation: u64, port: MessagePort) -> LinkId {
    let link = {
        let mut s = state.borrow_mut();
        s.net.next_link += 1;
        LinkId(s.net.next_link)
    };
    let weak = Rc::downgrade(state);
    let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let Some(state) = weak.upgrade() else { return };
        let data = event.data();
        if let Some(buffer) = data.dyn_ref::<js_sys::ArrayBuffer>() {
            let bytes = js_sys::Uint8Array::new(buffer).to_vec();
            enqueue(&state, Input::PeerBytes { link, bytes });
        } else if data.as_string().as_deref() == Some("closed") {
            let removed = state.borrow_mut().net.links.remove(&link);
            if let Some((_, port)) = removed {
                port.port.close();
                enqueue(&state, Input::PeerClosed { link });
            }
        }
    });
    port.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    port.start();
    state.borrow_mut().net.links.insert(
        link,
        (
            generation,
            LinkPort {
                port,
                _onmessage: onmessage,
            },
        ),
    );
    link
}
