//! The envelope: the handshake (version negotiation), calls with ids,
//! cancellation, responses and events; and decoding that turns any bad
//! message into a typed error for the right call.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::errors::{codes, RpcError};
use super::methods::{Event, Request, Response, METHODS};
use super::values::take_too_deep;
use super::{MAX_BATCH, MAX_CLIENT_NAME, MAX_GET_IDS, MAX_MESSAGE_BYTES, SUPPORTED_VERSIONS};

/// What an app sends, externally tagged: `{ "hello": {..} }`,
/// `{ "request": {..} }`, `{ "cancel": {..} }`.
///
/// No field names the sender: the vault knows an app's origin only from the
/// shell, which tags each port with the `event.origin` it checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message: the API versions the client speaks.
    Hello {
        versions: Vec<u32>,
        /// The client library and version, for logs (e.g. `"echo-client 0.1"`).
        client: String,
        /// How durable this connection's writes must be before they are
        /// answered (`strict` when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        durability: Option<Durability>,
    },
    /// A call. `id` is chosen by the client, unique among its pending calls.
    Request { id: u32, method: Request },
    /// The client gave up on call `id` (its timeout, or the app cancelled).
    /// The vault stops it if it still can; the client has already failed
    /// the call with `rpc.cancelled` / `rpc.timeout` and ignores any
    /// answer that still comes for `id`.
    Cancel { id: u32 },
}

/// What the vault tells about itself in the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct VaultInfo {
    /// The vault build, for logs (e.g. `"echo-vault 0.1.0"`).
    pub vault: String,
    /// How the vault's storage is reachable from this app's page.
    pub storage: StorageState,
    /// What the user decided about this app's origin.
    pub consent: Consent,
}

/// The user's decision about an app's origin, as the app is told it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// Allowed: calls go through, on the spaces granted to the origin.
    Granted,
    /// Not decided yet: calls answer `rpc.not_authorized` (`details.reason
    /// = "consent_required"`) until the user allows the app in the
    /// vault's consent popup.
    Required,
    /// The user denied the app (`details.reason = "denied"`).
    Denied,
}

/// The vault's storage as seen from the embedding app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum StorageState {
    /// The vault's own, unpartitioned storage.
    Persistent,
    /// Storage partitioned by the app's site: data is not the user's
    /// vault; the client should offer the Storage Access prompt or popup.
    Partitioned,
}

/// What the vault sends, externally tagged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VaultMessage {
    /// The handshake succeeded in `version`.
    Welcome { version: u32, vault: VaultInfo },
    /// The handshake failed (`rpc.unsupported_version`,
    /// `rpc.not_authorized`, `rpc.storage_blocked`, …); the vault sends
    /// nothing more on this connection.
    Refused { error: RpcError },
    /// The answer to call `id`: exactly one per call the vault received,
    /// unless the call was cancelled.
    Response {
        id: u32,
        result: Result<Response, RpcError>,
    },
    /// A pushed event; `subscription` names the live query of a
    /// `query_diff`.
    Event {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        subscription: Option<u32>,
        event: Event,
    },
    /// A message that could not be tied to a call (no readable id) was
    /// dropped; the connection stays open.
    Rejected { error: RpcError },
}

/// How durable a connection's writes are when the vault answers them.
///
/// `strict` (the default): stored so that they survive a power cut (the
/// browser's IndexedDB transaction with `durability: "strict"`, flushed to
/// disk) — an answered write is never lost. `relaxed`: stored so that they
/// survive the app, the tab or the browser crashing, but the last second or
/// so of answered writes may be lost if the machine loses power (IndexedDB
/// `durability: "relaxed"`: the operating system writes them out a moment
/// later) — the trade-off Yjs' IndexedDB provider makes, for apps that want
/// its speed. A flush is relaxed only when every answer it holds is for a
/// relaxed connection and it holds no decision of the person (grants,
/// identity, invitations); anything else makes it strict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    #[default]
    Strict,
    Relaxed,
}

/// The states a client's connection goes through, for apps to show
/// (the client derives them; the vault never sends them as such).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Loading the vault's iframe, handshake not finished.
    Connecting,
    /// `welcome` received: calls go through.
    Connected,
    /// Consent denied or revoked (`rpc.not_authorized`, `access_revoked`).
    NotAuthorized,
    /// The vault sees partitioned storage (`storage: "partitioned"`).
    StoragePartitioned,
    /// The browser refuses the vault storage (`rpc.storage_blocked`).
    StorageBlocked,
    /// The browser deleted the vault's storage (`rpc.storage_lost`): the
    /// person decides on the vault's page to start a new vault.
    StorageLost,
    /// The vault went away (reloaded, closed, no heartbeat); pending calls
    /// failed with `rpc.disconnected`; the client reconnects.
    Disconnected,
}

/// Picks the version of a handshake: the highest version both sides speak.
pub fn negotiate(client_versions: &[u32]) -> Result<u32, RpcError> {
    SUPPORTED_VERSIONS
        .iter()
        .copied()
        .filter(|v| client_versions.contains(v))
        .max()
        .ok_or_else(|| {
            let list = |vs: &[u32]| {
                vs.iter()
                    .take(16)
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            RpcError::new(
                codes::UNSUPPORTED_VERSION,
                format!(
                    "this vault speaks API version(s) {}, the client speaks {}; update the client library or the vault",
                    list(SUPPORTED_VERSIONS),
                    if client_versions.is_empty() {
                        "none".to_owned()
                    } else {
                        list(client_versions)
                    }
                ),
            )
            .with_detail("supported", list(SUPPORTED_VERSIONS))
        })
}

/// Answers a `hello`: `welcome` in the negotiated version, or `refused`.
pub fn answer_hello(versions: &[u32], client: &str, vault: VaultInfo) -> VaultMessage {
    if client.len() > MAX_CLIENT_NAME {
        return VaultMessage::Refused {
            error: RpcError::too_large("the client name", client.len(), MAX_CLIENT_NAME),
        };
    }
    match negotiate(versions) {
        Ok(version) => VaultMessage::Welcome { version, vault },
        Err(error) => VaultMessage::Refused { error },
    }
}

/// A message that could not be decoded, and the call it belongs to when its
/// id could still be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Undecodable {
    pub id: Option<u32>,
    pub error: RpcError,
}

impl Undecodable {
    /// The answer to send: an error response to call `id`, or `rejected`.
    pub fn into_message(self) -> VaultMessage {
        match self.id {
            Some(id) => VaultMessage::Response {
                id,
                result: Err(self.error),
            },
            None => VaultMessage::Rejected { error: self.error },
        }
    }
}

/// Checks a received message's size in bytes before decoding it (JSON
/// text length; hosts receiving structured clones check what they can).
pub fn check_size(bytes: usize) -> Result<(), RpcError> {
    if bytes > MAX_MESSAGE_BYTES {
        Err(RpcError::too_large(
            "the message (bytes)",
            bytes,
            MAX_MESSAGE_BYTES,
        ))
    } else {
        Ok(())
    }
}

/// Finishes decoding a client message, whatever the format.
///
/// `decoded` is the host's decoding of the message (`serde_json::from_str`,
/// `serde_wasm_bindgen::from_value`, …); `probe` decodes the same input
/// again as a [`Probe`] and is called only when `decoded` failed, to find
/// the call's id and method so the error goes to the right call with the
/// right code (`rpc.unknown_method`, `rpc.too_deep`, else
/// `rpc.bad_request`). A decoded request is then checked against the
/// limits ([`check_limits`]).
///
/// ```
/// use echo_core::rpc::{decode_client_message, ClientMessage};
/// let text = r#"{"request":{"id":7,"method":{"nope":{}}}}"#;
/// let err = decode_client_message(
///     serde_json::from_str::<ClientMessage>(text),
///     || serde_json::from_str(text).ok(),
/// )
/// .unwrap_err();
/// assert_eq!((err.id, err.error.code.as_str()), (Some(7), "rpc.unknown_method"));
/// ```
pub fn decode_client_message<E: fmt::Display>(
    decoded: Result<ClientMessage, E>,
    probe: impl FnOnce() -> Option<Probe>,
) -> Result<ClientMessage, Undecodable> {
    let too_deep = take_too_deep();
    match decoded {
        Ok(message) => {
            let id = match &message {
                ClientMessage::Request { id, .. } => Some(*id),
                _ => None,
            };
            check_limits(&message).map_err(|error| Undecodable { id, error })?;
            Ok(message)
        }
        Err(e) => {
            // What the probe found before it failed (if it failed) still counts.
            let probe = probe().unwrap_or_else(|| PROBED.with(|p| p.take()));
            take_too_deep();
            // serde_json stops at 128 levels of JSON, which values reach
            // before our guard does (a list value costs two JSON levels).
            let error = if too_deep || e.to_string().contains("recursion limit exceeded") {
                RpcError::too_deep()
            } else if let Some(m) = probe.method.as_deref().filter(|m| !METHODS.contains(m)) {
                RpcError::unknown_method(m)
            } else {
                RpcError::bad_request(shorten(&e.to_string(), 300))
            };
            Err(Undecodable {
                id: probe.id,
                error,
            })
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// Checks a decoded message against the size limits that are not bytes:
/// batch sizes, id lists, the client name.
pub fn check_limits(message: &ClientMessage) -> Result<(), RpcError> {
    match message {
        ClientMessage::Hello {
            client, versions, ..
        } => {
            if client.len() > MAX_CLIENT_NAME {
                return Err(RpcError::too_large(
                    "the client name",
                    client.len(),
                    MAX_CLIENT_NAME,
                ));
            }
            if versions.len() > 64 {
                return Err(RpcError::too_large("the version list", versions.len(), 64));
            }
        }
        ClientMessage::Request { method, .. } => match method {
            Request::Batch { mutations, .. } if mutations.len() > MAX_BATCH => {
                return Err(RpcError::too_large(
                    "the batch (mutations)",
                    mutations.len(),
                    MAX_BATCH,
                ))
            }
            Request::GetObjects { ids, .. } if ids.len() > MAX_GET_IDS => {
                return Err(RpcError::too_large("the id list", ids.len(), MAX_GET_IDS))
            }
            _ => {}
        },
        ClientMessage::Cancel { .. } => {}
    }
    Ok(())
}

thread_local! {
    /// What the last probe found so far, kept when it fails midway.
    static PROBED: std::cell::RefCell<Probe> = const {
        std::cell::RefCell::new(Probe { id: None, method: None })
    };
}

/// Consumes any value, failing beyond a nesting depth instead of recursing
/// without bound (the probe reads input that failed to decode).
struct Skip(usize);

/// How deep [`Skip`] descends before giving up.
const SKIP_DEPTH: usize = 2 * super::MAX_NESTING + 16;

impl<'de> de::DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.0 > SKIP_DEPTH {
            return Err(de::Error::custom("nested too deep"));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip(self.0 + 1))?;
        }
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip(self.0 + 1))?.is_some() {}
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        de::DeserializeSeed::deserialize(Skip(self.0 + 1), d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        de::DeserializeSeed::deserialize(Skip(self.0 + 1), d)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// What can still be read from a message that failed to decode: the call's
/// id and method name. Fields of the wrong type are skipped; what was found
/// before a failure (input nested too deep, broken JSON) is kept by
/// [`decode_client_message`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    pub id: Option<u32>,
    pub method: Option<String>,
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Outer;
        impl<'de> Visitor<'de> for Outer {
            type Value = Probe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
                let mut probe = Probe::default();
                while let Some(key) = map.next_key::<Lenient<String>>()? {
                    match key.0.as_deref() {
                        Some("request") | Some("cancel") => {
                            let inner: Lenient<Probe> = map.next_value()?;
                            if let Some(inner) = inner.0 {
                                probe = inner;
                            }
                        }
                        _ => map.next_value_seed(Skip(1))?,
                    }
                }
                Ok(probe)
            }
        }
        PROBED.with(|p| p.take());
        d.deserialize_map(Outer)
    }
}

impl<'de> Deserialize<'de> for Lenient<Probe> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Probe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a call object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
                let mut probe = Probe::default();
                while let Some(key) = map.next_key::<Lenient<String>>()? {
                    match key.0.as_deref() {
                        Some("id") => {
                            probe.id = map.next_value::<Lenient<u32>>()?.0;
                            PROBED.with(|p| p.borrow_mut().id = probe.id);
                        }
                        Some("method") => {
                            probe.method = map.next_value::<MethodName>()?.0;
                        }
                        _ => map.next_value_seed(Skip(2))?,
                    }
                }
                Ok(probe)
            }
        }
        d.deserialize_any(LenientVisitor(V)).map(Lenient)
    }
}

/// A value decoded if it has the expected shape, else `None` (consumed
/// either way, so the rest of the message can still be probed).
struct Lenient<T>(Option<T>);

/// Accepts anything; hands maps to `V` and ignores every other shape.
struct LenientVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for LenientVisitor<V> {
    type Value = Option<V::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map).map(Some)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip(1).visit_seq(seq).map(|()| None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Deserialize<'de> for Lenient<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(s.chars().take(64).collect())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Lenient<u32> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Id;
        impl Visitor<'_> for Id {
            type Value = Option<u32>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a call id")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(u32::try_from(n).ok())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(u32::try_from(n).ok())
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Ok((n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n)).then_some(n as u32))
            }
        }
        // Numbers go to `Id`; every other shape is consumed and ignored.
        struct AnyId;
        impl<'de> Visitor<'de> for AnyId {
            type Value = Option<u32>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a call id")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Id.visit_i64(n)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Id.visit_u64(n)
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Id.visit_f64(n)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Skip(3).visit_map(map).map(|()| None)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Skip(3).visit_seq(seq).map(|()| None)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(AnyId).map(Lenient)
    }
}

/// The method name of a `request`: the single key of the method object
/// (or a bare string).
struct MethodName(Option<String>);

impl<'de> Deserialize<'de> for MethodName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a method")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<Lenient<String>>()? {
                    if name.is_none() {
                        name = key.0;
                        PROBED.with(|p| p.borrow_mut().method = name.clone());
                    }
                    map.next_value_seed(Skip(4))?;
                }
                Ok(name)
            }
        }
        d.deserialize_any(LenientVisitor(V))
            .map(|n| MethodName(n.flatten()))
    }
}
