//! The topics and the sockets on them, on this node.
//!
//! One lock around plain maps; nothing in it waits. Messages to a socket
//! go through its bounded queue: a socket whose queue is full is dropped
//! (`signal.slow_consumer`) rather than let the server buffer without
//! bound.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::error::SignalError;
use super::limits::Limits;
use super::protocol::{PeerId, ServerMessage, Topic};

/// What a socket's task is to send.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
}

struct Peer {
    tx: mpsc::Sender<Outbound>,
    topics: HashSet<Topic>,
    addr: IpAddr,
}

#[derive(Default)]
struct Inner {
    peers: HashMap<PeerId, Peer>,
    topics: HashMap<Topic, BTreeSet<PeerId>>,
    addresses: HashMap<IpAddr, usize>,
    /// Peers on other nodes (through Redis), per topic this node has local
    /// members on: peer → its node.
    remote: HashMap<Topic, HashMap<PeerId, u64>>,
}

/// Where a message to a peer goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Delivered to a socket of this node.
    Local,
    /// To a peer on another node: publish it there.
    Remote(u64),
}

/// Counts for `/signal/status` and the benchmark.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HubStatus {
    pub sockets: usize,
    pub topics: usize,
}

/// This node's sockets and topics.
pub struct Hub {
    inner: Mutex<Inner>,
    pub limits: Limits,
}

impl Hub {
    pub fn new(limits: Limits) -> Self {
        Hub {
            inner: Mutex::new(Inner::default()),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind: go on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new socket from `addr`: its id and the queue its task sends from.
    pub fn register(
        &self,
        addr: IpAddr,
    ) -> Result<(PeerId, mpsc::Receiver<Outbound>), SignalError> {
        let mut inner = self.lock();
        let count = inner.addresses.entry(addr).or_default();
        if *count >= self.limits.sockets_per_address {
            return Err(SignalError::TooManySockets {
                limit: self.limits.sockets_per_address,
            });
        }
        *count += 1;
        let (tx, rx) = mpsc::channel(self.limits.queue);
        let mut id = PeerId(random_u64());
        while inner.peers.contains_key(&id) {
            id = PeerId(random_u64());
        }
        inner.peers.insert(
            id,
            Peer {
                tx,
                topics: HashSet::new(),
                addr,
            },
        );
        Ok((id, rx))
    }

    /// The socket closed: it leaves its topics (the others hear `left`).
    pub fn unregister(&self, id: PeerId) {
        let mut slow = Vec::new();
        {
            let mut inner = self.lock();
            let Some(peer) = inner.peers.remove(&id) else {
                return;
            };
            if let Some(count) = inner.addresses.get_mut(&peer.addr) {
                *count -= 1;
                if *count == 0 {
                    inner.addresses.remove(&peer.addr);
                }
            }
            for topic in peer.topics {
                leave_locked(&mut inner, id, topic, &mut slow);
            }
        }
        self.drop_slow(slow);
    }

    /// Joins `topic`; `remote` are the peers other nodes have on it (from
    /// Redis), told in the `peers` answer with the local ones.
    pub fn join(&self, id: PeerId, topic: Topic) -> Result<(), SignalError> {
        self.join_with(id, topic, Vec::new())
    }

    pub fn join_with(
        &self,
        id: PeerId,
        topic: Topic,
        remote: Vec<(PeerId, u64)>,
    ) -> Result<(), SignalError> {
        let mut slow = Vec::new();
        {
            let mut inner = self.lock();
            let Some(peer) = inner.peers.get_mut(&id) else {
                return Ok(());
            };
            if peer.topics.contains(&topic) {
                return Ok(());
            }
            if peer.topics.len() >= self.limits.topics {
                return Err(SignalError::TooManyTopics {
                    limit: self.limits.topics,
                });
            }
            peer.topics.insert(topic);
            let members = inner.topics.entry(topic).or_default();
            let before: Vec<PeerId> = members.iter().copied().collect();
            members.insert(id);
            let cache = inner.remote.entry(topic).or_default();
            for (peer, node) in remote {
                cache.insert(peer, node);
            }
            let mut everyone: Vec<String> = before.iter().map(ToString::to_string).collect();
            everyone.extend(cache.keys().map(ToString::to_string));
            let text = topic.to_string();
            deliver(
                &inner,
                id,
                &ServerMessage::Peers {
                    topic: text.clone(),
                    peers: everyone,
                },
                &mut slow,
            );
            let joined = ServerMessage::Joined {
                topic: text,
                peer: id.to_string(),
            };
            for other in before {
                deliver(&inner, other, &joined, &mut slow);
            }
        }
        self.drop_slow(slow);
        Ok(())
    }

    pub fn leave(&self, id: PeerId, topic: Topic) {
        let mut slow = Vec::new();
        {
            let mut inner = self.lock();
            let on = inner
                .peers
                .get_mut(&id)
                .is_some_and(|p| p.topics.remove(&topic));
            if on {
                leave_locked(&mut inner, id, topic, &mut slow);
            }
        }
        self.drop_slow(slow);
    }

    /// `from` sends `data` to `to` on `topic`; both must be on it.
    pub fn send(
        &self,
        from: PeerId,
        topic: Topic,
        to: PeerId,
        data: String,
    ) -> Result<Route, SignalError> {
        let mut slow = Vec::new();
        {
            let inner = self.lock();
            let members = inner.topics.get(&topic);
            if !members.is_some_and(|m| m.contains(&from)) {
                return Err(SignalError::NotOnTopic);
            }
            if !members.is_some_and(|m| m.contains(&to)) {
                return match inner.remote.get(&topic).and_then(|r| r.get(&to)) {
                    Some(node) => Ok(Route::Remote(*node)),
                    None => Err(SignalError::NoSuchPeer),
                };
            }
            deliver(
                &inner,
                to,
                &ServerMessage::Message {
                    topic: topic.to_string(),
                    from: from.to_string(),
                    data,
                },
                &mut slow,
            );
        }
        self.drop_slow(slow);
        Ok(Route::Local)
    }

    /// A message from a peer on another node, for `to` here (if it is on
    /// the topic).
    pub fn deliver_remote(&self, topic: Topic, from: PeerId, to: PeerId, data: String) {
        let mut slow = Vec::new();
        {
            let inner = self.lock();
            if !inner.topics.get(&topic).is_some_and(|m| m.contains(&to)) {
                return;
            }
            deliver(
                &inner,
                to,
                &ServerMessage::Message {
                    topic: topic.to_string(),
                    from: from.to_string(),
                    data,
                },
                &mut slow,
            );
        }
        self.drop_slow(slow);
    }

    /// A peer of another node joined `topic`: the local members hear it,
    /// once (a node announcing again after Redis came back is no news).
    pub fn remote_joined(&self, topic: Topic, peer: PeerId, node: u64) {
        let mut slow = Vec::new();
        {
            let mut inner = self.lock();
            let Some(members) = inner.topics.get(&topic) else {
                return;
            };
            let members: Vec<PeerId> = members.iter().copied().collect();
            if inner
                .remote
                .entry(topic)
                .or_default()
                .insert(peer, node)
                .is_some()
            {
                return;
            }
            let joined = ServerMessage::Joined {
                topic: topic.to_string(),
                peer: peer.to_string(),
            };
            for m in members {
                deliver(&inner, m, &joined, &mut slow);
            }
        }
        self.drop_slow(slow);
    }

    /// A peer of another node left `topic` (or its node is gone).
    pub fn remote_left(&self, topic: Topic, peer: PeerId) {
        let mut slow = Vec::new();
        {
            let mut inner = self.lock();
            let known = inner
                .remote
                .get_mut(&topic)
                .is_some_and(|r| r.remove(&peer).is_some());
            if !known {
                return;
            }
            let left = ServerMessage::Left {
                topic: topic.to_string(),
                peer: peer.to_string(),
            };
            let members: Vec<PeerId> = inner
                .topics
                .get(&topic)
                .map(|m| m.iter().copied().collect())
                .unwrap_or_default();
            for m in members {
                deliver(&inner, m, &left, &mut slow);
            }
        }
        self.drop_slow(slow);
    }

    /// Every remote peer known, per topic (for sweeping dead nodes, and
    /// for forgetting them all when Redis is lost).
    pub fn remote_peers(&self) -> Vec<(Topic, PeerId, u64)> {
        self.lock()
            .remote
            .iter()
            .flat_map(|(t, r)| r.iter().map(move |(p, n)| (*t, *p, *n)))
            .collect()
    }

    /// The local members of every topic (to announce again after Redis
    /// came back).
    pub fn local_members(&self) -> Vec<(Topic, PeerId)> {
        self.lock()
            .topics
            .iter()
            .flat_map(|(t, m)| m.iter().map(move |p| (*t, *p)))
            .collect()
    }

    /// The topics socket `id` is on.
    pub fn topics_of(&self, id: PeerId) -> Vec<Topic> {
        self.lock()
            .peers
            .get(&id)
            .map(|p| p.topics.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether this node has local members on `topic`.
    pub fn has_topic(&self, topic: &Topic) -> bool {
        self.lock().topics.contains_key(topic)
    }

    /// Puts a message on `id`'s own queue (its answers and errors).
    pub fn tell(&self, id: PeerId, message: &ServerMessage) {
        let mut slow = Vec::new();
        deliver(&self.lock(), id, message, &mut slow);
        self.drop_slow(slow);
    }

    pub fn status(&self) -> HubStatus {
        let inner = self.lock();
        HubStatus {
            sockets: inner.peers.len(),
            topics: inner.topics.len(),
        }
    }

    /// Sockets that could not keep up are dropped: their queue's sender
    /// goes, their task sees it and closes with `signal.slow_consumer`.
    fn drop_slow(&self, slow: Vec<PeerId>) {
        for id in slow {
            self.unregister(id);
        }
    }
}

fn leave_locked(inner: &mut Inner, id: PeerId, topic: Topic, slow: &mut Vec<PeerId>) {
    let Some(members) = inner.topics.get_mut(&topic) else {
        return;
    };
    members.remove(&id);
    if members.is_empty() {
        inner.topics.remove(&topic);
        inner.remote.remove(&topic);
        return;
    }
    let left = ServerMessage::Left {
        topic: topic.to_string(),
        peer: id.to_string(),
    };
    let others: Vec<PeerId> = members.iter().copied().collect();
    for other in others {
        deliver(inner, other, &left, slow);
    }
}

fn deliver(inner: &Inner, to: PeerId, message: &ServerMessage, slow: &mut Vec<PeerId>) {
    let Some(peer) = inner.peers.get(&to) else {
        return;
    };
    if peer.tx.try_send(Outbound::Text(message.to_text())).is_err() {
        slow.push(to);
    }
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // The OS's random source; should it fail, ids from the clock still
    // differ (they only need to be unique, not secret).
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return nanos ^ (std::process::id() as u64).rotate_left(32);
    }
    u64::from_le_bytes(bytes)
}
