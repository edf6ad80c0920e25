//! Several `echo-signal` nodes sharing topics through Redis pub/sub
//! (`--redis URL`; without it a node is alone and this module is idle).
//!
//! ```text
//! key     echo-signal:v1:alive:<node>      "1", PX 15 s, refreshed every 5 s
//! hash    echo-signal:v1:members:<topic>   peer → "<node> <joined ms>"
//! channel echo-signal:v1:topic:<topic>     "j <peer> <node> <joined ms>": joined now
//!                                          "r <peer> <node> <joined ms>": announced again
//!                                          "l <peer> <node>": left
//!                                          (a node subscribes while it has local members)
//! channel echo-signal:v1:node:<node>       {"topic","from","to","data"}: for a peer there
//! ```
//!
//! Node and peer ids are 16 hex digits of random u64s. A local join
//! subscribes to the topic's channel, records the member and announces it,
//! *then* reads the members (of live nodes only) for the `peers` answer: of
//! two peers joining at once on two nodes, at least one reads the other,
//! and the other hears of it on the channel. Each node caches the remote
//! members of the topics it has local members on (see [`Hub`]); a node
//! ignores its own announcements, and announcements of members it knows
//! already. A fresh join (`j`) is `joined` news to the others: the joiner
//! dials them. A send to a cached remote peer is published on its node's
//! channel. Every 5 s a node refreshes its liveness key and sweeps its
//! cache: members no longer in the hash, or of a node whose key lapsed,
//! have left (the local members hear `left`; a dead node's entries are
//! deleted).
//!
//! When Redis is lost the node says so on stderr (and `/signal/status`
//! says `lost`), goes on serving its own sockets (sends to remote peers
//! get `signal.unreachable`), keeps its cache, remembers the leaves Redis
//! missed, and connects again with backoff (0.1 s doubling to 5 s). Once
//! back it says so, subscribes again, tells the missed leaves, registers
//! and announces its members again (`r`) and reads the members of its
//! topics: remote peers it did not know are introduced to its local
//! members (as `peers` when they were there first, else `joined`; see
//! [`Hub::remote_known`]). Its first sweep waits 15 s, so that the other
//! nodes have registered again when Redis itself restarted empty.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::error::SignalError;
use super::hub::{Hub, RemoteMember};
use super::protocol::{PeerId, Topic};

const PREFIX: &str = "echo-signal:v1";
/// A node's liveness key lives this long …
const ALIVE: Duration = Duration::from_secs(15);
/// … and is refreshed this often (the cache is swept as often).
const REFRESH: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// How the node stands with Redis (`redis` in `/signal/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisState {
    /// Not configured: one node.
    Off,
    /// Configured, not connected yet.
    Connecting,
    Connected,
    /// Was connected or tried to, and is trying again.
    Lost,
}

/// A message for a peer on another node (its node's channel).
#[derive(Serialize, Deserialize)]
struct Directed {
    topic: String,
    from: String,
    to: String,
    data: String,
}

/// The topic channels this node is subscribed to: one per topic with local
/// members (counted), through the current connection's sink.
#[derive(Default)]
struct Interest {
    sink: Option<PubSubSink>,
    topics: HashMap<Topic, usize>,
}

/// This node's link to Redis.
pub struct Bridge {
    /// This node's id.
    pub node: u64,
    client: redis::Client,
    hub: Arc<Hub>,
    conn: Mutex<Option<MultiplexedConnection>>,
    interest: tokio::sync::Mutex<Interest>,
    /// Leaves Redis did not hear of (it was away): told once it is back.
    missed: Mutex<Vec<(Topic, PeerId)>>,
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

fn parse_node(text: &str) -> Option<u64> {
    if text.len() != 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// A member hash value: `"<node> <joined ms>"`.
fn parse_member(peer: &str, value: &str) -> Option<RemoteMember> {
    let (node, since) = value.split_once(' ')?;
    Some(RemoteMember {
        peer: PeerId::parse(peer)?,
        node: parse_node(node)?,
        since: since.parse().ok()?,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Bridge {
    /// A bridge for node `node` to the Redis at `url` (`redis://host:port`,
    /// `redis+unix:///path`, `unix:///path`); [`Bridge::run`] connects.
    pub fn new(url: &str, node: u64, hub: Arc<Hub>) -> Result<Arc<Bridge>, redis::RedisError> {
        Ok(Arc::new(Bridge {
            node,
            client: redis::Client::open(url)?,
            hub,
            conn: Mutex::new(None),
            interest: tokio::sync::Mutex::new(Interest::default()),
            missed: Mutex::new(Vec::new()),
            state: Mutex::new(RedisState::Connecting),
        }))
    }

    pub fn state(&self) -> RedisState {
        *lock(&self.state)
    }

    fn conn(&self) -> Option<MultiplexedConnection> {
        lock(&self.conn).clone()
    }

    /// A local peer joins `topic` at `since` (ms): subscribe, record,
    /// announce; then the remote members, for its `peers` answer.
    pub async fn joined(&self, topic: &Topic, peer: PeerId, since: u64) -> Vec<RemoteMember> {
        {
            let mut interest = self.interest.lock().await;
            let count = interest.topics.entry(*topic).or_default();
            *count += 1;
            if *count == 1 {
                if let Some(sink) = interest.sink.as_mut() {
                    // A failure means Redis is going: the session notices.
                    let _ = sink.subscribe(topic_channel(topic)).await;
                }
            }
        }
        let Some(mut conn) = self.conn() else {
            return Vec::new();
        };
        if self
            .announce(&mut conn, topic, peer, since, "j")
            .await
            .is_err()
        {
            return Vec::new();
        }
        self.members(&mut conn, topic).await.unwrap_or_default()
    }

    /// A local peer left `topic`.
    pub async fn left(&self, topic: &Topic, peer: PeerId) {
        {
            let mut interest = self.interest.lock().await;
            let last = match interest.topics.get_mut(topic) {
                Some(count) => {
                    *count = count.saturating_sub(1);
                    *count == 0
                }
                None => false,
            };
            if last {
                interest.topics.remove(topic);
                if let Some(sink) = interest.sink.as_mut() {
                    let _ = sink.unsubscribe(topic_channel(topic)).await;
                }
            }
        }
        let told = match self.conn() {
            Some(mut conn) => self.retract(&mut conn, topic, peer).await.is_ok(),
            None => false,
        };
        if !told {
            lock(&self.missed).push((*topic, peer));
        }
    }

    /// A message for a peer on `node`.
    pub async fn send(
        &self,
        node: u64,
        topic: &Topic,
        from: PeerId,
        to: PeerId,
        data: String,
    ) -> Result<(), SignalError> {
        let mut conn = self.conn().ok_or(SignalError::Unreachable)?;
        let message = Directed {
            topic: topic.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            data,
        };
        let text = serde_json::to_string(&message).map_err(|_| SignalError::Unreachable)?;
        conn.publish::<_, _, ()>(node_channel(node), text)
            .await
            .map_err(|_| SignalError::Unreachable)
    }

    /// `HSET` the member, announce it on the topic's channel (`verb`: `j`
    /// joined now, `r` announced again).
    async fn announce(
        &self,
        conn: &mut MultiplexedConnection,
        topic: &Topic,
        peer: PeerId,
        since: u64,
        verb: &str,
    ) -> redis::RedisResult<()> {
        let node = format!("{:016x}", self.node);
        conn.hset::<_, _, _, ()>(
            members_key(topic),
            peer.to_string(),
            format!("{node} {since}"),
        )
        .await?;
        conn.publish(
            topic_channel(topic),
            format!("{verb} {peer} {node} {since}"),
        )
        .await
    }

    /// `HDEL` the member, announce that it left.
    async fn retract(
        &self,
        conn: &mut MultiplexedConnection,
        topic: &Topic,
        peer: PeerId,
    ) -> redis::RedisResult<()> {
        conn.hdel::<_, _, ()>(members_key(topic), peer.to_string())
            .await?;
        conn.publish(topic_channel(topic), format!("l {peer} {:016x}", self.node))
            .await
    }

    /// The members of `topic` on other live nodes; entries of dead nodes
    /// are deleted on the way.
    async fn members(
        &self,
        conn: &mut MultiplexedConnection,
        topic: &Topic,
    ) -> redis::RedisResult<Vec<RemoteMember>> {
        let all: HashMap<String, String> = conn.hgetall(members_key(topic)).await?;
        let mut alive: HashMap<u64, bool> = HashMap::new();
        let mut out = Vec::new();
        for (peer, value) in all {
            let Some(member) = parse_member(&peer, &value) else {
                continue;
            };
            if member.node == self.node {
                continue;
            }
            let live = match alive.get(&member.node) {
                Some(live) => *live,
                None => {
                    let live: bool = conn.exists(alive_key(member.node)).await?;
                    alive.insert(member.node, live);
                    live
                }
            };
            if live {
                out.push(member);
            } else {
                conn.hdel::<_, _, ()>(members_key(topic), &peer).await?;
            }
        }
        Ok(out)
    }

    /// Connects, serves, and connects again when Redis is lost — until
    /// the server stops (the task is aborted).
    pub async fn run(self: Arc<Self>) {
        let mut wait = FIRST_RETRY;
        loop {
            let Err(error) = self.session(&mut wait).await;
            let was = self.state();
            *lock(&self.state) = RedisState::Lost;
            *lock(&self.conn) = None;
            self.interest.lock().await.sink = None;
            match was {
                RedisState::Connected => eprintln!(
                    "echo-signal: redis lost ({error}); serving this node's sockets alone, \
                     connecting again (every {} s at most)",
                    MAX_RETRY.as_secs()
                ),
                RedisState::Connecting => eprintln!(
                    "echo-signal: cannot reach redis ({error}); serving this node's sockets \
                     alone, trying again"
                ),
                RedisState::Lost | RedisState::Off => {}
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY);
        }
    }

    /// One connection to Redis, until it fails.
    async fn session(
        &self,
        wait: &mut Duration,
    ) -> Result<std::convert::Infallible, redis::RedisError> {
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        let (mut sink, mut stream) = self.client.get_async_pubsub().await?.split();
        sink.subscribe(node_channel(self.node)).await?;
        refresh_alive(&mut conn, self.node).await?;
        {
            let mut interest = self.interest.lock().await;
            for topic in interest.topics.keys() {
                sink.subscribe(topic_channel(topic)).await?;
            }
            interest.sink = Some(sink);
        }
        *lock(&self.conn) = Some(conn.clone());

        // What Redis missed: leaves, then this node's members.
        let local = self.hub.local_members();
        let here: HashSet<(Topic, PeerId)> = local.iter().map(|(t, p, _)| (*t, *p)).collect();
        let missed: Vec<(Topic, PeerId)> = lock(&self.missed).clone();
        for (topic, peer) in &missed {
            if !here.contains(&(*topic, *peer)) {
                self.retract(&mut conn, topic, *peer).await?;
            }
        }
        lock(&self.missed).retain(|m| !missed.contains(m));
        for (topic, peer, since) in &local {
            self.announce(&mut conn, topic, *peer, *since, "r").await?;
        }
        // … and what this node missed: the others' members.
        let topics: BTreeSet<Topic> = local.iter().map(|(t, _, _)| *t).collect();
        for topic in &topics {
            let members = self.members(&mut conn, topic).await?;
            self.hub.remote_known(*topic, &members);
        }

        let was = self.state();
        *lock(&self.state) = RedisState::Connected;
        *wait = FIRST_RETRY;
        let node = format!("{:016x}", self.node);
        match was {
            RedisState::Lost => eprintln!("echo-signal: redis is back (node {node})"),
            _ => eprintln!("echo-signal: redis connected (node {node})"),
        }

        let start = tokio::time::Instant::now();
        let mut refresh = tokio::time::interval_at(start + REFRESH, REFRESH);
        // Members of nodes that have not registered again by then are gone.
        let sweep_from = start + ALIVE;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        return Err(redis::RedisError::from(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "the subscription connection closed",
                        )));
                    };
                    self.on_message(&message);
                }
                _ = refresh.tick() => {
                    refresh_alive(&mut conn, self.node).await?;
                    if tokio::time::Instant::now() >= sweep_from {
                        self.sweep(&mut conn).await?;
                    }
                }
            }
        }
    }

    /// A message on a subscribed channel. Anything malformed is ignored.
    fn on_message(&self, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let Ok(payload) = message.get_payload::<String>() else {
            return;
        };
        if let Some(topic) = channel
            .strip_prefix(&format!("{PREFIX}:topic:"))
            .and_then(Topic::parse)
        {
            let parts: Vec<&str> = payload.split(' ').collect();
            match parts.as_slice() {
                [verb @ ("j" | "r"), peer, node, since] => {
                    let member = RemoteMember {
                        peer: match PeerId::parse(peer) {
                            Some(p) => p,
                            None => return,
                        },
                        node: match parse_node(node) {
                            Some(n) if n != self.node => n,
                            _ => return,
                        },
                        since: since.parse().unwrap_or(u64::MAX),
                    };
                    if *verb == "j" {
                        self.hub.remote_joined(topic, member);
                    } else {
                        self.hub.remote_known(topic, &[member]);
                    }
                }
                ["l", peer, node] => {
                    if let (Some(peer), Some(node)) = (PeerId::parse(peer), parse_node(node)) {
                        if node != self.node {
                            self.hub.remote_left(topic, peer);
                        }
                    }
                }
                _ => {}
            }
        } else if channel == node_channel(self.node) {
            let Ok(d) = serde_json::from_str::<Directed>(&payload) else {
                return;
            };
            if let (Some(topic), Some(from), Some(to)) = (
                Topic::parse(&d.topic),
                PeerId::parse(&d.from),
                PeerId::parse(&d.to),
            ) {
                self.hub.deliver_remote(topic, from, to, d.data);
            }
        }
    }

    /// Cached remote members no longer registered, or whose node's
    /// liveness key lapsed, have left. One round trip.
    async fn sweep(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        self.hub.forget_orphans();
        let cached = self.hub.remote_peers();
        if cached.is_empty() {
            return Ok(());
        }
        let nodes: Vec<u64> = cached
            .iter()
            .map(|(_, m)| m.node)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut pipe = redis::pipe();
        for node in &nodes {
            pipe.exists(alive_key(*node));
        }
        for (topic, m) in &cached {
            pipe.hexists(members_key(topic), m.peer.to_string());
        }
        let answers: Vec<bool> = pipe.query_async(conn).await?;
        let (alive, present) = answers.split_at(nodes.len().min(answers.len()));
        let alive: HashMap<u64, bool> = nodes.iter().copied().zip(alive.iter().copied()).collect();
        for ((topic, m), present) in cached.iter().zip(present) {
            let live = alive.get(&m.node).copied().unwrap_or(false);
            if !live || !present {
                self.hub.remote_left(*topic, m.peer);
            }
            if !live && *present {
                conn.hdel::<_, _, ()>(members_key(topic), m.peer.to_string())
                    .await?;
            }
        }
        Ok(())
    }
}

/// `SET alive:<node> 1 PX 15000`.
async fn refresh_alive(conn: &mut MultiplexedConnection, node: u64) -> redis::RedisResult<()> {
    redis::cmd("SET")
        .arg(alive_key(node))
        .arg(1)
        .arg("PX")
        .arg(ALIVE.as_millis() as u64)
        .query_async(conn)
        .await
}
