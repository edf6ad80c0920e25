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
//!   unless `--redis URL` is given).
//!
//! `GET /signal/status` answers the node's counts and its Redis state
//! (JSON).

pub mod bridge;
pub mod error;
pub mod hub;
pub mod limits;
pub mod protocol;
pub mod socket;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub use error::SignalError;
pub use hub::Hub;
pub use limits::Limits;

/// What the signaling routes share.
pub struct Rendezvous {
    pub hub: Arc<Hub>,
    /// Page origins allowed to connect (an absent `Origin`, a native
    /// client, always is).
    pub origins: Vec<String>,
    /// Other nodes, through Redis (none: this node alone).
    pub bridge: Option<Arc<bridge::Bridge>>,
}

impl Rendezvous {
    /// Carries out one request of socket `peer`.
    pub async fn request(
        &self,
        peer: protocol::PeerId,
        message: protocol::ClientMessage,
    ) -> Result<(), SignalError> {
        use protocol::{ClientMessage, PeerId, Topic};
        let topic_of = |t: &str| {
            Topic::parse(t)
                .ok_or_else(|| SignalError::BadFrame("a topic is 64 lower-case hex digits".into()))
        };
        match message {
            ClientMessage::Join { topic } => {
                let topic = topic_of(&topic)?;
                match &self.bridge {
                    None => self.hub.join(peer, topic),
                    Some(bridge) => {
                        let remote = bridge.members(&topic).await;
                        self.hub.join_with(peer, topic, remote)?;
                        bridge.joined(&topic, peer).await;
                        Ok(())
                    }
                }
            }
            ClientMessage::Leave { topic } => {
                let topic = topic_of(&topic)?;
                self.hub.leave(peer, topic);
                if let Some(bridge) = &self.bridge {
                    bridge.left(&topic, peer).await;
                }
                Ok(())
            }
            ClientMessage::Send { topic, to, data } => {
                let topic = topic_of(&topic)?;
                let to = PeerId::parse(&to).ok_or_else(|| {
                    SignalError::BadFrame("a peer id is 16 lower-case hex digits".into())
                })?;
                if data.len() > self.hub.limits.data_bytes {
                    return Err(SignalError::DataTooLarge {
                        limit: self.hub.limits.data_bytes,
                    });
                }
                match self.hub.send(peer, topic, to, data.clone())? {
                    hub::Route::Local => Ok(()),
                    hub::Route::Remote(node) => match &self.bridge {
                        Some(bridge) => {
                            bridge.send(node, &topic, peer, to, data).await;
                            Ok(())
                        }
                        None => Err(SignalError::NoSuchPeer),
                    },
                }
            }
        }
    }

    /// Socket `peer` closed.
    pub async fn closed(&self, peer: protocol::PeerId) {
        let topics = self.hub.topics_of(peer);
        self.hub.unregister(peer);
        if let Some(bridge) = &self.bridge {
            for topic in topics {
                bridge.left(&topic, peer).await;
            }
        }
    }
}

/// `/signal` and `/signal/status`.
pub fn routes(rendezvous: Arc<Rendezvous>) -> Router {
    Router::new()
        .route("/signal", get(upgrade))
        .route("/signal/status", get(status))
        .with_state(rendezvous)
}

fn refuse(status: StatusCode, error: &SignalError) -> Response {
    let body = serde_json::json!({ "code": error.code(), "message": error.to_string() });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

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
    ws.max_frame_size(limits.frame_bytes)
        .max_message_size(limits.frame_bytes)
        .on_failed_upgrade(move |_| drop(guard))
        .on_upgrade(
            move |socket| async move { socket::serve(socket, rendezvous, peer, queue).await },
        )
}

/// Unregisters a socket whose upgrade failed.
struct Unregister(Option<(Arc<Hub>, protocol::PeerId)>);

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some((hub, peer)) = self.0.take() {
            hub.unregister(peer);
        }
    }
}

async fn status(State(r): State<Arc<Rendezvous>>) -> Response {
    let s = r.hub.status();
    let (redis, node) = match &r.bridge {
        Some(b) => (b.state(), Some(format!("{:016x}", b.node))),
        None => (bridge::RedisState::Off, None),
    };
    let body = serde_json::json!({ "sockets": s.sockets, "topics": s.topics, "redis": redis, "node": node });
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
