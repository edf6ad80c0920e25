//! The app messages waiting for the engine, per connection, served fairly.
//!
//! Any site can connect to the one engine every app shares, so one
//! connection must not be able to make the others wait: a port message is
//! kept as the browser delivered it (a JS string, nothing copied into wasm
//! memory, which never shrinks) until its turn. Each turn of the engine
//! serves every connection with messages in **round robin**, at most
//! [`BUDGET`] messages each, decoding a connection's next frame only once
//! its previous messages were handed to the vault (so the decoding knows
//! whether the connection has shaken hands). What one connection may have
//! waiting is capped ([`MAX_QUEUED_UNITS`]); beyond it the connection is
//! closed (`rpc.rate_limited`) — an app that waits for its answers never
//! gets near it.

use std::collections::{BTreeMap, VecDeque};

use echo_core::rpc::{ClientMessage, Undecodable};
use echo_core::vault::ConnId;
use wasm_bindgen::{JsCast, JsValue};

/// Most messages of one connection handed to the vault in one turn.
pub const BUDGET: usize = 256;

/// Most UTF-16 code units of port messages one connection may have
/// waiting (8 frames at the size limit).
pub const MAX_QUEUED_UNITS: usize = 8 * echo_core::rpc::MAX_MESSAGE_BYTES;

type Decoded = Result<ClientMessage, Undecodable>;

#[derive(Default)]
struct Queue {
    raw: VecDeque<JsValue>,
    units: usize,
    decoded: VecDeque<Decoded>,
}

/// Every app connection's waiting messages. See the module docs.
#[derive(Default)]
pub struct AppQueues {
    queues: BTreeMap<ConnId, Queue>,
    /// The connection served last, to start the next round after it.
    last: Option<ConnId>,
}

/// A port message's length in UTF-16 code units (0 for a non-string),
/// read without copying the string into wasm memory.
pub(crate) fn units(data: &JsValue) -> usize {
    data.dyn_ref::<js_sys::JsString>()
        .map_or(0, |s| s.length() as usize)
}

impl AppQueues {
    /// Queues a port message; `Err` with the units waiting when the
    /// connection is over its cap (it is to be closed).
    pub fn push(&mut self, conn: ConnId, data: JsValue) -> Result<(), usize> {
        let q = self.queues.entry(conn).or_default();
        let n = units(&data);
        if q.units + n > MAX_QUEUED_UNITS {
            return Err(q.units + n);
        }
        q.units += n;
        q.raw.push_back(data);
        Ok(())
    }

    /// Whether any connection has messages waiting.
    pub fn is_empty(&self) -> bool {
        self.queues
            .values()
            .all(|q| q.raw.is_empty() && q.decoded.is_empty())
    }

    /// Forgets a connection that closed.
    pub fn remove(&mut self, conn: ConnId) {
        self.queues.remove(&conn);
    }

    /// One round: for each connection with messages, after the one served
    /// last, up to [`BUDGET`] of them. `decode` turns a port message into
    /// the messages it carries; it is called for a connection only when
    /// everything decoded before was handed over.
    pub fn round(
        &mut self,
        mut decode: impl FnMut(ConnId, &JsValue) -> Vec<Decoded>,
    ) -> Vec<(ConnId, Decoded)> {
        let start = self.last;
        let order: Vec<ConnId> = self
            .queues
            .keys()
            .filter(|c| start.is_none_or(|s| **c > s))
            .chain(
                self.queues
                    .keys()
                    .filter(|c| start.is_some_and(|s| **c <= s)),
            )
            .copied()
            .collect();
        let mut out = Vec::new();
        for conn in order {
            let Some(q) = self.queues.get_mut(&conn) else {
                continue;
            };
            if q.decoded.is_empty() {
                if let Some(data) = q.raw.pop_front() {
                    q.units = q.units.saturating_sub(units(&data));
                    q.decoded.extend(decode(conn, &data));
                }
            }
            let take = q.decoded.len().min(BUDGET);
            if take == 0 {
                continue;
            }
            out.extend(q.decoded.drain(..take).map(|m| (conn, m)));
            self.last = Some(conn);
        }
        self.queues
            .retain(|_, q| !q.raw.is_empty() || !q.decoded.is_empty());
        out
    }
}
