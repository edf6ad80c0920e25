//! [`NetHost`]: the driver itself (wasm32 only). See the crate docs.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};

use js_sys::{Array, ArrayBuffer, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MessageChannel, MessageEvent, MessagePort, RtcConfiguration, RtcDataChannel,
    RtcDataChannelEvent, RtcDataChannelInit, RtcDataChannelState, RtcDataChannelType,
    RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState,
    RtcSdpType, RtcSessionDescriptionInit,
};

use crate::{channel_binding, HIGH_WATER, LOW_WATER};

/// A dial whose channel is not open by then has failed.
const OPEN_MS: i32 = 20_000;

/// Which way a connection was made.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Side {
    /// We dialled: the engine's dial id.
    Out,
    /// They dialled us.
    In,
}

type Key = (String, Side);

struct Conn {
    pc: RtcPeerConnection,
    dial: Option<f64>,
    dc: Option<RtcDataChannel>,
    /// The driver's end of the engine's link port, once open.
    port: Option<MessagePort>,
    /// Bytes waiting for the channel's buffer to drain.
    queue: VecDeque<ArrayBuffer>,
    /// Closures kept alive with the connection.
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    open: bool,
    /// The data channel opened before this side's description calls had
    /// resolved (on loopback DTLS can finish first): handed to the engine
    /// once they have, by [`descriptions_set`].
    channel_early: bool,
    /// The topic this side's candidates go on (trickle ICE), once its
    /// offer or answer went out; until then they wait in `candidates`, so
    /// that the peer never gets one before the description it belongs to.
    trickle_topic: Option<String>,
    candidates: Vec<JsValue>,
}

impl Conn {
    fn new(pc: RtcPeerConnection, dial: Option<f64>) -> Self {
        Conn {
            pc,
            dial,
            dc: None,
            port: None,
            queue: VecDeque::new(),
            handlers: Vec::new(),
            open: false,
            channel_early: false,
            trickle_topic: None,
            candidates: Vec::new(),
        }
    }
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let desc = RtcSessionDescriptionInit::new(kind);
    desc.set_sdp(sdp);
    desc
}

/// Sets the offer or answer `created` made as the local description and
/// returns its SDP. Candidates follow it one by one (trickle ICE,
/// [`watch_candidates`]): nothing waits for gathering to finish.
async fn set_local(
    pc: &RtcPeerConnection,
    kind: RtcSdpType,
    created: &JsValue,
) -> Result<String, JsValue> {
    let sdp = field(created, "sdp").as_string().unwrap_or_default();
    JsFuture::from(pc.set_local_description(&description(kind, &sdp))).await?;
    pc.local_description()
        .map(|d| d.sdp())
        .ok_or_else(|| "no local description".into())
}

/// Sends a negotiation message (offer, answer, candidate) to `to` through
/// the engine's signaling.
fn send_negotiation(inner: &Shared, to: &str, topic: &str, payload: JsValue) {
    send_engine(
        inner,
        &obj(&[
            ("t", "signal_send".into()),
            ("to", to.into()),
            ("topic", topic.into()),
            ("payload", payload),
        ]),
    );
}

/// Sends `key`'s offer or answer, then the candidates found meanwhile;
/// later ones go as they come.
fn send_description(inner: &Shared, key: &Key, topic: &str, kind: &str, sdp: String) {
    send_negotiation(
        inner,
        &key.0,
        topic,
        obj(&[("kind", kind.into()), ("sdp", sdp.into())]),
    );
    let waiting = {
        let mut s = inner.borrow_mut();
        let Some(c) = s.conns.get_mut(key) else {
            return;
        };
        c.trickle_topic = Some(topic.to_owned());
        std::mem::take(&mut c.candidates)
    };
    for candidate in waiting {
        send_candidate(inner, key, topic, candidate);
    }
}

/// One local candidate of `key`'s connection, to the peer. `side` says
/// which of its connections it is for (the one it dialled, or took).
fn send_candidate(inner: &Shared, key: &Key, topic: &str, candidate: JsValue) {
    let side = match key.1 {
        Side::Out => "offerer",
        Side::In => "answerer",
    };
    let line = field(&candidate, "candidate")
        .as_string()
        .unwrap_or_default();
    trace(&format!(
        "candidate to {}: {}",
        key.0,
        candidates(&format!("a={line}"))
    ));
    send_negotiation(
        inner,
        &key.0,
        topic,
        obj(&[
            ("kind", "candidate".into()),
            ("side", side.into()),
            ("candidate", candidate),
        ]),
    );
}

/// Trickle ICE: each local candidate goes to the peer as it is found (held
/// until the description it belongs to went out).
fn watch_candidates(inner: &Shared, key: &Key, pc: &RtcPeerConnection) {
    let weak = Rc::downgrade(inner);
    let k = key.clone();
    let onicecandidate = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let Some(inner) = weak.upgrade() else { return };
        let Some(candidate) = event
            .dyn_ref::<RtcPeerConnectionIceEvent>()
            .and_then(RtcPeerConnectionIceEvent::candidate)
        else {
            // The end of gathering: nothing to tell.
            return;
        };
        let json = candidate.to_json();
        let to = {
            let mut s = inner.borrow_mut();
            let Some(c) = s.conns.get_mut(&k) else { return };
            if c.trickle_topic.is_none() {
                c.candidates.push(json.clone().into());
            }
            c.trickle_topic.clone()
        };
        if let Some(topic) = to {
            send_candidate(&inner, &k, &topic, json.into());
        }
    });
    pc.set_onicecandidate(Some(onicecandidate.as_ref().unchecked_ref()));
    if let Some(c) = inner.borrow_mut().conns.get_mut(key) {
        c.handlers.push(onicecandidate);
    }
}

struct Inner {
    engine: MessagePort,
    ice_servers: JsValue,
    conns: BTreeMap<Key, Conn>,
    _onmessage: Option<Closure<dyn FnMut(MessageEvent)>>,
}

type Shared = Rc<RefCell<Inner>>;

/// The WebRTC driver of the vault page that holds the lead.
#[wasm_bindgen]
pub struct NetHost {
    inner: Shared,
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &(*k).into(), v);
    }
    o.into()
}

fn field(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

fn warn(message: &str) {
    web_sys::console::warn_1(&message.into());
}

/// The driver's steps, for a browser's console (debug level).
fn trace(message: &str) {
    web_sys::console::debug_1(&format!("echo-net: {message}").into());
}

fn set_timeout(f: &JsValue, ms: i32) {
    let global = js_sys::global();
    if let Some(set) = Reflect::get(&global, &"setTimeout".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    {
        let _ = set.call2(&global, f, &JsValue::from(ms));
    }
}

#[wasm_bindgen]
impl NetHost {
    /// Drives WebRTC for the engine on `engine` (the port the engine's
    /// `attach_net` took the other end of). `ice_servers`: the
    /// `RTCConfiguration.iceServers` list (STUN/TURN) as JSON.
    #[wasm_bindgen(constructor)]
    pub fn new(engine: MessagePort, ice_servers: &str) -> Result<NetHost, JsValue> {
        let ice_servers = js_sys::JSON::parse(ice_servers)?;
        if !Array::is_array(&ice_servers) {
            return Err("iceServers must be a JSON array".into());
        }
        let inner = Rc::new(RefCell::new(Inner {
            engine: engine.clone(),
            ice_servers,
            conns: BTreeMap::new(),
            _onmessage: None,
        }));
        let weak = Rc::downgrade(&inner);
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(inner) = weak.upgrade() {
                on_engine(&inner, event.data());
            }
        });
        engine.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        engine.start();
        inner.borrow_mut()._onmessage = Some(onmessage);
        Ok(NetHost { inner })
    }

    /// Connections open (data channel up).
    pub fn links(&self) -> u32 {
        self.inner
            .borrow()
            .conns
            .values()
            .filter(|c| c.open)
            .count() as u32
    }

    /// The page is going: every connection closes and the engine hears it.
    pub fn close(&self) {
        let keys: Vec<Key> = self.inner.borrow().conns.keys().cloned().collect();
        for key in keys {
            drop_conn(&self.inner, &key, "the vault page that connected it closed");
        }
        let _ = self
            .inner
            .borrow()
            .engine
            .post_message(&obj(&[("t", "bye".into())]));
    }
}

/// An invite link as a QR code (SVG text); empty when too long for one.
#[wasm_bindgen(js_name = qrSvg)]
pub fn qr_svg_js(text: &str) -> String {
    crate::qr_svg(text).unwrap_or_default()
}

fn send_engine(inner: &Shared, message: &JsValue) {
    let _ = inner.borrow().engine.post_message(message);
}

fn on_engine(inner: &Shared, data: JsValue) {
    match field(&data, "t").as_string().as_deref() {
        Some("dial") => {
            let (Some(dial), Some(peer), Some(topic)) = (
                field(&data, "dial").as_f64(),
                field(&data, "peer").as_string(),
                field(&data, "topic").as_string(),
            ) else {
                return;
            };
            trace(&format!("dial {dial} to {peer}"));
            let inner = inner.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = dial_out(&inner, dial, &peer, &topic).await {
                    let key = (peer.clone(), Side::Out);
                    drop_conn(&inner, &key, "");
                    send_engine(
                        &inner,
                        &obj(&[
                            ("t", "dial_failed".into()),
                            ("dial", dial.into()),
                            ("reason", format!("WebRTC: {e:?}").into()),
                        ]),
                    );
                }
            });
        }
        Some("signal") => {
            let (Some(from), Some(topic)) = (
                field(&data, "from").as_string(),
                field(&data, "topic").as_string(),
            ) else {
                return;
            };
            let payload = field(&data, "payload");
            let kind = field(&payload, "kind").as_string().unwrap_or_default();
            if kind != "candidate" {
                trace(&format!("{kind} from {from}"));
            }
            let inner = inner.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = on_signal(&inner, &from, &topic, &payload).await {
                    warn(&format!("echo-net: {kind} from {from} failed: {e:?}"));
                    // The connection it was for ends; a stray candidate (for a
                    // connection already gone) ends nothing.
                    match kind.as_str() {
                        "offer" => fail_conn(&inner, &(from.clone(), Side::In)),
                        "answer" => fail_conn(&inner, &(from.clone(), Side::Out)),
                        _ => {}
                    }
                }
            });
        }
        Some("log") => {
            if let Some(message) = field(&data, "message").as_string() {
                trace(&format!("engine: {message}"));
            }
        }
        _ => {}
    }
}

fn new_pc(inner: &Shared) -> Result<RtcPeerConnection, JsValue> {
    let config = RtcConfiguration::new();
    config.set_ice_servers(&inner.borrow().ice_servers);
    RtcPeerConnection::new_with_configuration(&config)
}

/// The candidates of a description, short (for the trace).
fn candidates(sdp: &str) -> String {
    let list: Vec<String> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| {
            c.split_whitespace()
                .skip(4)
                .take(4)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    if list.is_empty() {
        "no candidates".into()
    } else {
        list.join("; ")
    }
}

async fn dial_out(inner: &Shared, dial: f64, peer: &str, topic: &str) -> Result<(), JsValue> {
    let key: Key = (peer.to_owned(), Side::Out);
    drop_conn(inner, &key, "");
    let pc = new_pc(inner)?;
    let init = RtcDataChannelInit::new();
    init.set_ordered(true);
    let dc = pc.create_data_channel_with_data_channel_dict("echo", &init);
    inner
        .borrow_mut()
        .conns
        .insert(key.clone(), Conn::new(pc.clone(), Some(dial)));
    watch_pc(inner, &key, &pc);
    watch_candidates(inner, &key, &pc);
    wire_channel(inner, &key, dc);
    let offer = JsFuture::from(pc.create_offer()).await?;
    let sdp = set_local(&pc, RtcSdpType::Offer, &offer).await?;
    trace(&format!("offer to {peer}"));
    send_description(inner, &key, topic, "offer", sdp);
    // A dial that does not open in time has failed.
    let weak = Rc::downgrade(inner);
    let peer = peer.to_owned();
    let check = Closure::once_into_js(move || {
        let Some(inner) = weak.upgrade() else { return };
        let key: Key = (peer, Side::Out);
        let late = inner
            .borrow()
            .conns
            .get(&key)
            .is_some_and(|c| !c.open && c.dial == Some(dial));
        if late {
            drop_conn(&inner, &key, "");
            send_engine(
                &inner,
                &obj(&[
                    ("t", "dial_failed".into()),
                    ("dial", dial.into()),
                    ("reason", "the peer did not answer in time".into()),
                ]),
            );
        }
    });
    set_timeout(&check, OPEN_MS);
    Ok(())
}

async fn on_signal(
    inner: &Shared,
    from: &str,
    topic: &str,
    payload: &JsValue,
) -> Result<(), JsValue> {
    if field(payload, "kind").as_string().as_deref() == Some("candidate") {
        // The peer's candidate for the connection it dialled (our `In`) or
        // took (our `Out`). addIceCandidate waits behind a pending
        // setRemoteDescription (the operations chain), so order is enough.
        let side = match field(payload, "side").as_string().as_deref() {
            Some("offerer") => Side::In,
            Some("answerer") => Side::Out,
            _ => return Err("a candidate of no side".into()),
        };
        let candidate = field(payload, "candidate");
        if field(&candidate, "candidate").as_string().is_none() {
            return Err("a candidate without its line".into());
        }
        let pc = inner
            .borrow()
            .conns
            .get(&(from.to_owned(), side))
            .map(|c| c.pc.clone())
            .ok_or("a candidate for no connection")?;
        let init: RtcIceCandidateInit = candidate.unchecked_into();
        let line = field(&init, "candidate").as_string().unwrap_or_default();
        trace(&format!(
            "candidate from {from}: {}",
            candidates(&format!("a={line}"))
        ));
        JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await?;
        return Ok(());
    }
    let sdp = field(payload, "sdp").as_string().ok_or("no sdp")?;
    match field(payload, "kind").as_string().as_deref() {
        Some("offer") => {
            let key: Key = (from.to_owned(), Side::In);
            drop_conn(inner, &key, "");
            let pc = new_pc(inner)?;
            inner
                .borrow_mut()
                .conns
                .insert(key.clone(), Conn::new(pc.clone(), None));
            watch_pc(inner, &key, &pc);
            watch_candidates(inner, &key, &pc);
            let weak = Rc::downgrade(inner);
            let k = key.clone();
            let ondc = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                let Some(inner) = weak.upgrade() else { return };
                if let Some(event) = event.dyn_ref::<RtcDataChannelEvent>() {
                    wire_channel(&inner, &k, event.channel());
                }
            });
            pc.set_ondatachannel(Some(ondc.as_ref().unchecked_ref()));
            if let Some(c) = inner.borrow_mut().conns.get_mut(&key) {
                c.handlers.push(ondc);
            }
            JsFuture::from(pc.set_remote_description(&description(RtcSdpType::Offer, &sdp)))
                .await?;
            let answer = JsFuture::from(pc.create_answer()).await?;
            let sdp = set_local(&pc, RtcSdpType::Answer, &answer).await?;
            trace(&format!("answer to {from}"));
            send_description(inner, &key, topic, "answer", sdp);
            descriptions_set(inner, &key);
            Ok(())
        }
        Some("answer") => {
            let pc = inner
                .borrow()
                .conns
                .get(&(from.to_owned(), Side::Out))
                .map(|c| c.pc.clone())
                .ok_or("an answer to no offer")?;
            JsFuture::from(pc.set_remote_description(&description(RtcSdpType::Answer, &sdp)))
                .await?;
            descriptions_set(inner, &(from.to_owned(), Side::Out));
            Ok(())
        }
        _ => Err("an unknown negotiation message".into()),
    }
}

/// Drops the connection when its transport fails or closes.
fn watch_pc(inner: &Shared, key: &Key, pc: &RtcPeerConnection) {
    let weak = Rc::downgrade(inner);
    let k = key.clone();
    let p = pc.clone();
    let onstate = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        let Some(inner) = weak.upgrade() else { return };
        trace(&format!(
            "connection to {}: {:?}",
            k.0,
            p.connection_state()
        ));
        if matches!(
            p.connection_state(),
            RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed
        ) {
            drop_conn(&inner, &k, "the connection failed");
        }
    });
    pc.set_onconnectionstatechange(Some(onstate.as_ref().unchecked_ref()));
    if let Some(c) = inner.borrow_mut().conns.get_mut(key) {
        c.handlers.push(onstate);
    }
}

fn wire_channel(inner: &Shared, key: &Key, dc: RtcDataChannel) {
    dc.set_binary_type(RtcDataChannelType::Arraybuffer);
    dc.set_buffered_amount_low_threshold(LOW_WATER);
    let weak = Rc::downgrade(inner);
    let k = key.clone();
    let onopen = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        if let Some(inner) = weak.upgrade() {
            opened(&inner, &k);
        }
    });
    let weak = Rc::downgrade(inner);
    let k = key.clone();
    let onmessage = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let Some(inner) = weak.upgrade() else { return };
        let Some(buffer) = event
            .dyn_ref::<MessageEvent>()
            .and_then(|e| e.data().dyn_into::<ArrayBuffer>().ok())
        else {
            return;
        };
        let s = inner.borrow();
        if let Some(port) = s.conns.get(&k).and_then(|c| c.port.as_ref()) {
            let _ = port.post_message_with_transferable(&buffer, &Array::of1(&buffer));
        }
    });
    let weak = Rc::downgrade(inner);
    let k = key.clone();
    let onclose = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        if let Some(inner) = weak.upgrade() {
            drop_conn(&inner, &k, "the data channel closed");
        }
    });
    let weak = Rc::downgrade(inner);
    let k = key.clone();
    let onlow = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        if let Some(inner) = weak.upgrade() {
            drain(&inner, &k);
        }
    });
    dc.set_onopen(Some(onopen.as_ref().unchecked_ref()));
    dc.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    dc.set_onclose(Some(onclose.as_ref().unchecked_ref()));
    dc.set_onbufferedamountlow(Some(onlow.as_ref().unchecked_ref()));
    let mut s = inner.borrow_mut();
    if let Some(c) = s.conns.get_mut(key) {
        c.handlers.extend([onopen, onmessage, onclose, onlow]);
        c.dc = Some(dc);
    }
}

/// The channel is open: hand the engine a port for it, with the binding.
fn opened(inner: &Shared, key: &Key) {
    let (pc, dial) = {
        let s = inner.borrow();
        let Some(c) = s.conns.get(key) else { return };
        (c.pc.clone(), c.dial)
    };
    let (Some(local), Some(remote)) = (pc.local_description(), pc.remote_description()) else {
        // The descriptions' promises have not resolved yet: the binding
        // needs both fingerprints. `descriptions_set` comes back here.
        trace(&format!(
            "channel to {} open before its descriptions were set",
            key.0
        ));
        if let Some(c) = inner.borrow_mut().conns.get_mut(key) {
            c.channel_early = true;
        }
        return;
    };
    let (local, remote) = (local.sdp(), remote.sdp());
    trace(&format!("channel to {} open", key.0));
    let Some(binding) = channel_binding(&local, &remote) else {
        drop_conn(inner, key, "the session has no DTLS fingerprint");
        return;
    };
    let Ok(channel) = MessageChannel::new() else {
        drop_conn(inner, key, "no MessageChannel");
        return;
    };
    let ours = channel.port1();
    let theirs = channel.port2();
    let weak: Weak<RefCell<Inner>> = Rc::downgrade(inner);
    let k = key.clone();
    let onport = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let Some(inner) = weak.upgrade() else { return };
        let Some(data) = event.dyn_ref::<MessageEvent>().map(MessageEvent::data) else {
            return;
        };
        if let Ok(buffer) = data.clone().dyn_into::<ArrayBuffer>() {
            if let Some(c) = inner.borrow_mut().conns.get_mut(&k) {
                c.queue.push_back(buffer);
            }
            drain(&inner, &k);
        } else if data.as_string().as_deref() == Some("close") {
            // The engine closed the link: what it sent before goes first.
            drain(&inner, &k);
            drop_conn(&inner, &k, "");
        }
    });
    ours.set_onmessage(Some(onport.as_ref().unchecked_ref()));
    ours.start();
    {
        let mut s = inner.borrow_mut();
        let Some(c) = s.conns.get_mut(key) else {
            warn(&format!("echo-net: link to {} gone while it opened", key.0));
            return;
        };
        c.port = Some(ours);
        c.open = true;
        c.handlers.push(onport);
    }
    let dial = dial.map_or(JsValue::NULL, JsValue::from);
    let message = obj(&[
        ("t", "link".into()),
        ("dial", dial),
        ("binding", binding.into()),
        ("port", theirs.clone().into()),
    ]);
    match inner
        .borrow()
        .engine
        .post_message_with_transferable(&message, &Array::of1(&theirs))
    {
        Ok(()) => trace(&format!("link to {} handed to the engine", key.0)),
        Err(e) => warn(&format!(
            "echo-net: link to {} not handed to the engine: {e:?}",
            key.0
        )),
    }
}

/// Both descriptions of `key`'s connection are set: a channel that opened
/// before that is handed to the engine now.
fn descriptions_set(inner: &Shared, key: &Key) {
    let early = inner
        .borrow_mut()
        .conns
        .get_mut(key)
        .is_some_and(|c| std::mem::take(&mut c.channel_early));
    if early {
        opened(inner, key);
    }
}

/// Sends what waits while the channel's buffer has room.
fn drain(inner: &Shared, key: &Key) {
    let mut s = inner.borrow_mut();
    let Some(c) = s.conns.get_mut(key) else {
        return;
    };
    let Some(dc) = c.dc.clone() else { return };
    if dc.ready_state() != RtcDataChannelState::Open {
        return;
    }
    while dc.buffered_amount() < HIGH_WATER {
        let Some(buffer) = c.queue.pop_front() else {
            break;
        };
        if let Err(e) = dc.send_with_array_buffer(&buffer) {
            warn(&format!("echo-net: send failed: {e:?}"));
            break;
        }
    }
}

/// Closes a connection; the engine hears it (a link: "closed").
/// Ends `key`'s connection after its negotiation failed; a dial of the
/// engine's fails at once (not after its timeout).
fn fail_conn(inner: &Shared, key: &Key) {
    let dial = inner.borrow().conns.get(key).and_then(|c| c.dial);
    drop_conn(inner, key, "the negotiation failed");
    if let Some(dial) = dial {
        send_engine(
            inner,
            &obj(&[
                ("t", "dial_failed".into()),
                ("dial", dial.into()),
                ("reason", "the WebRTC negotiation failed".into()),
            ]),
        );
    }
}

fn drop_conn(inner: &Shared, key: &Key, why: &str) {
    let Some(c) = inner.borrow_mut().conns.remove(key) else {
        return;
    };
    if why.is_empty() {
        trace(&format!("link to {} closed by the engine", key.0));
    } else {
        warn(&format!("echo-net: link to {} closed: {why}", key.0));
    }
    if let Some(port) = &c.port {
        let _ = port.post_message(&"closed".into());
        port.close();
    }
    if let Some(dc) = &c.dc {
        dc.set_onclose(None);
        dc.close();
    }
    c.pc.set_onconnectionstatechange(None);
    c.pc.close();
}
