//! The signaling rendezvous: a WebSocket endpoint (`GET /signal`) where
//! vaults join opaque 32-byte topics, hear who else is on them, and pass
//! one another small opaque messages (WebRTC offers and answers,
//! invitation handshakes). It stores nothing; the wire format is in
//! `signal/PROTOCOL.md`.
//!
//! - [`protocol`]: the messages;
//! - [`error`]: the typed errors and their codes;
//! - [`limits`]: per-socket and per-address limits, the rate bucket;
//! - [`hub`]: the topics and sockets of this node;
//! - [`socket`]: one socket's task (requests, heartbeats, limits);
//! - [`bridge`]: several nodes sharing topics through Redis pub/sub (off
//!   unless `--redis URL` is given);
//! - [`tamper`]: a test mode that makes this relay the attacker (off
//!   unless `--signal-test-tamper` is given).
//!
//! `GET /signal/status` answers the node's id, counts and Redis state
//! (JSON), for tests and operators.

pub mod bridge;
pub mod error;
pub mod hub;
pub mod limits;
pub mod protocol;
pub mod socket;
pub mod tamper;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub use error::SignalError;
pub use hub::Hub;
pub use limits::Limits;

/// What the signaling routes share.
pub struct Rendezvous {
    /// This node's id (16 hex digits in `/signal/status`; the Redis
    /// bridge's channels are named by it).
    pub node: u64,
    pub hub: Arc<Hub>,
    /// Page origins allowed to connect (an absent `Origin`, a native
    /// client, always is).
    pub origins: Vec<String>,
    /// Other nodes, through Redis (none: this node alone).
    pub bridge: Option<Arc<bridge::Bridge>>,
    /// The tampering test mode (none: this relay passes messages on as
    /// they are, always).
    pub tamper: Option<tamper::Tamper>,
}

impl Rendezvous {
    /// The rendezvous of one node; with `redis` (a URL) it shares topics
    /// with the other nodes on that Redis once [`bridge::Bridge::run`]
    /// runs.
    pub fn new(
        limits: Limits,
        origins: Vec<String>,
        redis: Option<&str>,
    ) -> Result<Rendezvous, redis::RedisError> {
        let node = hub::random_u64();
        let hub = Arc::new(Hub::new(limits));
        let bridge = match redis {
            Some(url) => Some(bridge::Bridge::new(url, node, hub.clone())?),
            None => None,
        };
        Ok(Rendezvous {
            node,
            hub,
            origins,
            bridge,
            tamper: None,
        })
    }

    /// Carries out one request of socket `peer` (its topic already parsed).
    pub async fn request(
        &self,
        peer: protocol::PeerId,
        topic: protocol::Topic,
        message: protocol::ClientMessage,
    ) -> Result<(), SignalError> {
        use protocol::{ClientMessage, PeerId};
        match message {
            ClientMessage::Join { .. } => {
                if self.hub.check_join(peer, &topic)? {
                    return Ok(());
                }
                let since = hub::now_ms();
                let remote = match &self.bridge {
                    Some(bridge) => bridge.joined(&topic, peer, since).await,
                    None => Vec::new(),
                };
                if !self.hub.join(peer, topic, since, &remote) {
                    // The socket is closing: undo what the bridge did.
                    if let Some(bridge) = &self.bridge {
                        bridge.left(&topic, peer).await;
                    }
                }
                Ok(())
            }
            ClientMessage::Leave { .. } => {
                if self.hub.leave(peer, topic) {
                    if let Some(bridge) = &self.bridge {
                        bridge.left(&topic, peer).await;
                    }
                }
                Ok(())
            }
            ClientMessage::Send { to, data, .. } => {
                let to = PeerId::parse(&to).ok_or_else(|| {
                    SignalError::BadFrame("a peer id is 16 lower-case hex digits".into())
                })?;
                if data.len() > self.hub.limits.data_bytes {
                    return Err(SignalError::DataTooLarge {
                        limit: self.hub.limits.data_bytes,
                    });
                }
                let data = match &self.tamper {
                    Some(tamper) => tamper.apply(data),
                    None => data,
                };
                match self.hub.send(peer, topic, to, &data)? {
                    hub::Route::Local => Ok(()),
                    hub::Route::Remote(node) => match &self.bridge {
                        Some(bridge) => bridge.send(node, &topic, peer, to, data).await,
                        None => Err(SignalError::NoSuchPeer),
                    },
                }
            }
        }
    }

    /// Socket `peer` closed: it leaves its topics, here and on every node.
    pub async fn closed(&self, peer: protocol::PeerId) {
        let topics = self.hub.unregister(peer);
        if let Some(bridge) = &self.bridge {
            for topic in topics {
                bridge.left(&topic, peer).await;
            }
        }
    }
}

/// `/signal` and `/signal/status` (and `/signal/test/tamper` in the
/// tampering test mode).
pub fn routes(rendezvous: Arc<Rendezvous>) -> Router {
    let router = Router::new()
        .route("/signal", get(upgrade))
        .route("/signal/status", get(status));
    let router = if rendezvous.tamper.is_some() {
        router.route("/signal/test/tamper", post(set_tamper))
    } else {
        router
    };
    router.with_state(rendezvous)
}

/// `POST /signal/test/tamper` with `on` or `off` (the test mode only).
async fn set_tamper(State(r): State<Arc<Rendezvous>>, body: String) -> Response {
    let Some(tamper) = &r.tamper else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match body.trim() {
        "on" => tamper.set(true),
        "off" => tamper.set(false),
        _ => return (StatusCode::BAD_REQUEST, "the body is `on` or `off`").into_response(),
    }
    ([(header::CACHE_CONTROL, "no-store")], "ok").into_response()
}

/// An HTTP refusal before the upgrade: `{"code","message"}`.
fn refuse(status: StatusCode, error: &SignalError) -> Response {
    let body = serde_json::json!({ "code": error.code(), "message": error.to_string() });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `GET /signal`: checks the origin and the per-address limit, then
/// upgrades and hands the socket to [`socket::serve`].
async fn upgrade(
    State(r): State<Arc<Rendezvous>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !r.origins.iter().any(|o| o == origin) {
            return refuse(
                StatusCode::FORBIDDEN,
                &SignalError::OriginRefused(origin.chars().take(100).collect()),
            );
        }
    }
    let (peer, queue) = match r.hub.register(socket::client_ip(addr)) {
        Ok(registered) => registered,
        Err(error) => return refuse(StatusCode::TOO_MANY_REQUESTS, &error),
    };
    let hub = r.hub.clone();
    let limits = &hub.limits;
    let guard = Unregister(Some((hub.clone(), peer)));
    let rendezvous = r.clone();
    // Small buffers: signaling messages are small, and tungstenite's
    // defaults (128 KiB each way) would make an idle socket cost ~130 KiB.
    let read_limit = limits.frame_bytes.saturating_mul(socket::READ_SLACK);
    ws.max_frame_size(read_limit)
        .max_message_size(read_limit)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_failed_upgrade(move |_| drop(guard))
        .on_upgrade(move |socket| socket::serve(socket, rendezvous, peer, queue))
}

/// Unregisters a socket whose upgrade failed.
struct Unregister(Option<(Arc<Hub>, protocol::PeerId)>);

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some((hub, peer)) = self.0.take() {
            let _ = hub.unregister(peer);
        }
    }
}

/// `GET /signal/status`: `{"node","sockets","topics","redis"}` (and
/// `"tampered"`, messages changed, in the tampering test mode).
async fn status(State(r): State<Arc<Rendezvous>>) -> Response {
    let s = r.hub.status();
    let redis = match &r.bridge {
        Some(b) => b.state(),
        None => bridge::RedisState::Off,
    };
    let mut body = serde_json::json!({
        "node": format!("{:016x}", r.node),
        "sockets": s.sockets,
        "topics": s.topics,
        "redis": redis,
    });
    if let Some(tamper) = &r.tamper {
        body["tampered"] = tamper.changed().into();
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
