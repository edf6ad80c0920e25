//! Several `echo-signal` nodes share topics through Redis.
//!
//! ```text
//! echo-signal:v1:alive:<node>          "1", PX 15 s, refreshed every 5 s
//! echo-signal:v1:members:<topic>       hash peer → node (who is on a topic, all nodes)
//! channel echo-signal:v1:topic:<topic> "j <peer> <node>" / "l <peer> <node>"
//!                                      (a node subscribes while it has local members)
//! channel echo-signal:v1:node:<node>   {"topic","from","to","data"}: a message for a
//!                                      peer on that node
//! ```
//!
//! A join asks Redis who else is on the topic (members of live nodes only)
//! for the `peers` answer, records the member and announces it; a send to
//! a peer on another node is published on that node's channel. Members of
//! a node whose liveness key lapsed are swept (the others hear `left`).
//!
//! When Redis is lost the node says so (stderr, `/signal/status`), goes on
//! serving its own sockets, tells them the remote peers left, and connects
//! again with backoff (0.1 s … 5 s); once back it announces its members
//! again and reads the members of its topics anew (receivers ignore what
//! they already knew).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::hub::Hub;
use super::protocol::{PeerId, Topic};

const PREFIX: &str = "echo-signal:v1";
const ALIVE_MS: u64 = 15_000;
const REFRESH: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// How the node stands with Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisState {
    /// Not configured: one node.
    Off,
    Connecting,
    Connected,
    Lost,
}

#[derive(Serialize, Deserialize)]
struct Directed {
    topic: String,
    from: String,
    to: String,
    data: String,
}

/// This node's link to Redis.
pub struct Bridge {
    pub node: u64,
    client: redis::Client,
    hub: Arc<Hub>,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    sink: tokio::sync::Mutex<Option<redis::aio::PubSubSink>>,
    state: Mutex<RedisState>,
}

fn alive_key(node: u64) -> String {
    format!("{PREFIX}:alive:{node:016x}")
}
fn members_key(topic: &Topic) -> String {
    format!("{PREFIX}:members:{topic}")
}
fn topic_channel(topic: &Topic) -> String {
    format!("{PREFIX}:topic:{topic}")
}
fn node_channel(node: u64) -> String {
    format!("{PREFIX}:node:{node:016x}")
}

/// `SET alive:<node> 1 PX 15000`.
async fn refresh_alive(
    conn: &mut MultiplexedConnection,
    node: u64,
) -> Result<(), redis::RedisError> {
    redis::cmd("SET")
        .arg(alive_key(node))
        .arg(1)
        .arg("PX")
        .arg(ALIVE_MS)
        .query_async(conn)
        .await
}

fn parse_node(text: &str) -> Option<u64> {
    u64::from_str_radix(text, 16).ok()
}

impl Bridge {
    /// A bridge to the Redis at `url` (`redis://…`, `redis+unix:///path`);
    /// [`Bridge::run`] connects.
    pub fn new(url: &str, hub: Arc<Hub>) -> Result<Arc<Bridge>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        Ok(Arc::new(Bridge {
            node: u64::from_le_bytes(bytes),
            client,
            hub,
            conn: tokio::sync::Mutex::new(None),
            sink: tokio::sync::Mutex::new(None),
            state: Mutex::new(RedisState::Connecting),
        }))
    }

    pub fn state(&self) -> RedisState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_state(&self, state: RedisState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    async fn conn(&self) -> Option<MultiplexedConnection> {
        self.conn.lock().await.clone()
    }

    /// The peers other (live) nodes have on `topic`.
    pub async fn members(&self, topic: &Topic) -> Vec<(PeerId, u64)> {
        let Some(mut conn) = self.conn().await else {
            return Vec::new();
        };
        let all: HashMap<String, String> =
            conn.hgetall(members_key(topic)).await.unwrap_or_default();
        let mut out = Vec::new();
        let mut alive: HashMap<u64, bool> = HashMap::new();
        for (peer, node) in all {
            let (Some(peer), Some(node)) = (PeerId::parse(&peer), parse_node(&node)) else {
                continue;
            };
            if node == self.node {
                continue;
            }
            let live = match alive.get(&node) {
                Some(live) => *live,
                None => {
                    let live: bool = conn.exists(alive_key(node)).await.unwrap_or(false);
                    alive.insert(node, live);
                    live
                }
            };
            if live {
                out.push((peer, node));
            }
        }
        out
    }

    /// A local peer joined `topic`: record, subscribe, announce.
    pub async fn joined(&self, topic: &Topic, peer: PeerId) {
        if let Some(sink) = self.sink.lock().await.as_mut() {
            let _ = sink.subscribe(topic_channel(topic)).await;
        }
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let node = format!("{:016x}", self.node);
        let _: Result<(), _> = conn.hset(members_key(topic), peer.to_string(), &node).await;
        let _: Result<(), _> = conn
            .publish(topic_channel(topic), format!("j {peer} {node}"))
            .await;
    }

    /// A local peer left `topic`.
    pub async fn left(&self, topic: &Topic, peer: PeerId) {
        if !self.hub.has_topic(topic) {
            if let Some(sink) = self.sink.lock().await.as_mut() {
                let _ = sink.unsubscribe(topic_channel(topic)).await;
            }
        }
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let _: Result<(), _> = conn.hdel(members_key(topic), peer.to_string()).await;
        let _: Result<(), _> = conn
            .publish(topic_channel(topic), format!("l {peer} {:016x}", self.node))
            .await;
    }

    /// A message for a peer on `node`.
    pub async fn send(&self, node: u64, topic: &Topic, from: PeerId, to: PeerId, data: String) {
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let message = Directed {
            topic: topic.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            data,
        };
        if let Ok(text) = serde_json::to_string(&message) {
            let _: Result<(), _> = conn.publish(node_channel(node), text).await;
        }
    }

    /// Connects, serves, and connects again when Redis is lost — forever.
    pub async fn run(self: Arc<Self>) {
        let mut wait = FIRST_RETRY;
        let mut was_lost = false;
        loop {
            match self.session().await {
                Ok(()) => {}
                Err(e) => {
                    if !was_lost {
                        eprintln!("echo-signal: redis lost: {e}; serving this node's sockets alone until it is back");
                    }
                }
            }
            if self.state() == RedisState::Connected {
                wait = FIRST_RETRY;
            }
            was_lost = true;
            self.set_state(RedisState::Lost);
            *self.conn.lock().await = None;
            *self.sink.lock().await = None;
            // Remote peers cannot be reached now: tell the local ones.
            for (topic, peer, _) in self.hub.remote_peers() {
                self.hub.remote_left(topic, peer);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY);
        }
    }

    /// One connection to Redis, until it fails.
    async fn session(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        let pubsub = self.client.get_async_pubsub().await?;
        let (mut sink, mut stream) = pubsub.split();
        sink.subscribe(node_channel(self.node)).await?;
        let node = format!("{:016x}", self.node);
        refresh_alive(&mut conn, self.node).await?;
        let topics: BTreeSet<Topic> = self
            .hub
            .local_members()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        for topic in &topics {
            sink.subscribe(topic_channel(topic)).await?;
        }
        *self.conn.lock().await = Some(conn.clone());
        *self.sink.lock().await = Some(sink);
        // Announce this node's members again, and learn the others'.
        for (topic, peer) in self.hub.local_members() {
            let _: () = conn
                .hset(members_key(&topic), peer.to_string(), &node)
                .await?;
            let _: () = conn
                .publish(topic_channel(&topic), format!("j {peer} {node}"))
                .await?;
        }
        for topic in &topics {
            for (peer, n) in self.members(topic).await {
                self.hub.remote_joined(*topic, peer, n);
            }
        }
        if self.state() != RedisState::Connected {
            eprintln!("echo-signal: redis connected (node {node})");
        }
        self.set_state(RedisState::Connected);
        let mut refresh = tokio::time::interval(REFRESH);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        return Err(redis::RedisError::from(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "the subscription ended",
                        )));
                    };
                    self.on_message(&message);
                }
                _ = refresh.tick() => {
                    refresh_alive(&mut conn, self.node).await?;
                    self.sweep(&mut conn).await?;
                }
            }
        }
    }

    fn on_message(&self, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let Ok(payload) = message.get_payload::<String>() else {
            return;
        };
        if let Some(topic) = channel
            .strip_prefix(&format!("{PREFIX}:topic:"))
            .and_then(Topic::parse)
        {
            let mut parts = payload.split(' ');
            let (Some(kind), Some(peer), Some(node)) = (parts.next(), parts.next(), parts.next())
            else {
                return;
            };
            let (Some(peer), Some(node)) = (PeerId::parse(peer), parse_node(node)) else {
                return;
            };
            if node == self.node {
                return;
            }
            match kind {
                "j" => self.hub.remote_joined(topic, peer, node),
                "l" => self.hub.remote_left(topic, peer),
                _ => {}
            }
        } else if channel == node_channel(self.node) {
            let Ok(d) = serde_json::from_str::<Directed>(&payload) else {
                return;
            };
            let (Some(topic), Some(from), Some(to)) = (
                Topic::parse(&d.topic),
                PeerId::parse(&d.from),
                PeerId::parse(&d.to),
            ) else {
                return;
            };
            self.hub.deliver_remote(topic, from, to, d.data);
        }
    }

    /// Remote peers whose node stopped refreshing its liveness: gone.
    async fn sweep(&self, conn: &mut MultiplexedConnection) -> Result<(), redis::RedisError> {
        let mut alive: HashMap<u64, bool> = HashMap::new();
        for (topic, peer, node) in self.hub.remote_peers() {
            let live = match alive.get(&node) {
                Some(live) => *live,
                None => {
                    let live: bool = conn.exists(alive_key(node)).await?;
                    alive.insert(node, live);
                    live
                }
            };
            if !live {
                self.hub.remote_left(topic, peer);
                let _: () = conn.hdel(members_key(&topic), peer.to_string()).await?;
            }
        }
        Ok(())
    }
}
