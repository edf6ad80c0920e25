//! The topics and the sockets on them, on this node — and the peers other
//! nodes have on those topics (learnt through Redis, see [`super::bridge`]).
//!
//! One lock around plain maps; nothing in it waits. Messages to a socket go
//! through its bounded queue, serialized once per fan-out: a socket whose
//! queue is full loses its queue (its task then closes it,
//! `signal.slow_consumer`) rather than let the server buffer without bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;

use super::error::SignalError;
use super::limits::Limits;
use super::protocol::{PeerId, ServerMessage, Topic};

/// What a socket's task is to send: one JSON text frame.
pub type Outbound = Utf8Bytes;

/// A peer on another node, on a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteMember {
    pub peer: PeerId,
    /// Its node (where messages to it are published).
    pub node: u64,
    /// When it joined (ms since the Unix epoch, its node's clock): decides,
    /// for peers met late, which of two came first.
    pub since: u64,
}

struct Peer {
    /// `None` once the socket fell behind: its task sees the queue end.
    tx: Option<mpsc::Sender<Outbound>>,
    topics: HashSet<Topic>,
    addr: IpAddr,
}

#[derive(Default)]
struct Inner {
    peers: HashMap<PeerId, Peer>,
    /// Local members of each topic, with when they joined (ms).
    topics: HashMap<Topic, BTreeMap<PeerId, u64>>,
    addresses: HashMap<IpAddr, usize>,
    /// Peers on other nodes, per topic this node has local members on.
    remote: HashMap<Topic, HashMap<PeerId, RemoteMember>>,
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
                tx: Some(tx),
                topics: HashSet::new(),
                addr,
            },
        );
        Ok((id, rx))
    }

    /// The socket closed: it leaves its topics (the others hear `left`).
    /// Returns those topics.
    pub fn unregister(&self, id: PeerId) -> Vec<Topic> {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        let Some(peer) = inner.peers.remove(&id) else {
            return Vec::new();
        };
        if let Some(count) = inner.addresses.get_mut(&peer.addr) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                inner.addresses.remove(&peer.addr);
            }
        }
        let topics: Vec<Topic> = peer.topics.into_iter().collect();
        for topic in &topics {
            leave_locked(&mut inner, id, *topic, &mut slow);
        }
        cut_slow(&mut inner, slow);
        topics
    }

    /// Whether `id` may join `topic`: `Ok(false)` yes, `Ok(true)` it is on
    /// it already (or gone: nothing to do).
    pub fn check_join(&self, id: PeerId, topic: &Topic) -> Result<bool, SignalError> {
        let inner = self.lock();
        let Some(peer) = inner.peers.get(&id) else {
            return Ok(true);
        };
        if peer.topics.contains(topic) {
            return Ok(true);
        }
        if peer.topics.len() >= self.limits.topics {
            return Err(SignalError::TooManyTopics {
                limit: self.limits.topics,
            });
        }
        Ok(false)
    }

    /// `id` joins `topic` at `since` (ms): it is told who is there (this
    /// node's members, the remote ones known, and `remote`, just read from
    /// Redis), the local members hear `joined`. False if it could not (the
    /// socket is gone, or at its topic limit).
    pub fn join(&self, id: PeerId, topic: Topic, since: u64, remote: &[RemoteMember]) -> bool {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        let Some(peer) = inner.peers.get_mut(&id) else {
            return false;
        };
        if peer.topics.contains(&topic) || peer.topics.len() >= self.limits.topics {
            return false;
        }
        peer.topics.insert(topic);
        let members = inner.topics.entry(topic).or_default();
        let before: Vec<PeerId> = members.keys().copied().collect();
        members.insert(id, since);
        let cache = inner.remote.entry(topic).or_default();
        for member in remote {
            cache.insert(member.peer, *member);
        }
        let mut everyone: Vec<String> = before.iter().map(ToString::to_string).collect();
        everyone.extend(cache.keys().map(ToString::to_string));
        let peers = text(&ServerMessage::Peers {
            topic: topic.to_string(),
            peers: everyone,
        });
        deliver(&inner, id, &peers, &mut slow);
        let joined = text(&ServerMessage::Joined {
            topic: topic.to_string(),
            peer: id.to_string(),
        });
        for other in before {
            deliver(&inner, other, &joined, &mut slow);
        }
        cut_slow(&mut inner, slow);
        true
    }

    /// `id` leaves `topic`; false if it was not on it.
    pub fn leave(&self, id: PeerId, topic: Topic) -> bool {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        let on = inner
            .peers
            .get_mut(&id)
            .is_some_and(|p| p.topics.remove(&topic));
        if on {
            leave_locked(&mut inner, id, topic, &mut slow);
        }
        cut_slow(&mut inner, slow);
        on
    }

    /// `from` sends `data` to `to` on `topic`; both must be on it.
    pub fn send(
        &self,
        from: PeerId,
        topic: Topic,
        to: PeerId,
        data: &str,
    ) -> Result<Route, SignalError> {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        let members = inner.topics.get(&topic);
        if !members.is_some_and(|m| m.contains_key(&from)) {
            return Err(SignalError::NotOnTopic);
        }
        if !members.is_some_and(|m| m.contains_key(&to)) {
            return match inner.remote.get(&topic).and_then(|r| r.get(&to)) {
                Some(member) => Ok(Route::Remote(member.node)),
                None => Err(SignalError::NoSuchPeer),
            };
        }
        let message = text(&ServerMessage::Message {
            topic: topic.to_string(),
            from: from.to_string(),
            data: data.to_owned(),
        });
        deliver(&inner, to, &message, &mut slow);
        cut_slow(&mut inner, slow);
        Ok(Route::Local)
    }

    /// A message from a peer on another node, for `to` here (if it is on
    /// the topic).
    pub fn deliver_remote(&self, topic: Topic, from: PeerId, to: PeerId, data: String) {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        if !inner
            .topics
            .get(&topic)
            .is_some_and(|m| m.contains_key(&to))
        {
            return;
        }
        let message = text(&ServerMessage::Message {
            topic: topic.to_string(),
            from: from.to_string(),
            data,
        });
        deliver(&inner, to, &message, &mut slow);
        cut_slow(&mut inner, slow);
    }

    /// A peer of another node just joined `topic` (announced live on the
    /// topic's channel): the local members hear `joined` — it was the
    /// later one, it dials them. Remembered even before this node has a
    /// member there (a local join between subscribing and entering the hub
    /// sees it in its `peers`).
    pub fn remote_joined(&self, topic: Topic, member: RemoteMember) {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        if inner
            .remote
            .entry(topic)
            .or_default()
            .insert(member.peer, member)
            .is_some()
        {
            return;
        }
        let Some(local) = inner.topics.get(&topic) else {
            return;
        };
        let local: Vec<PeerId> = local.keys().copied().collect();
        let joined = text(&ServerMessage::Joined {
            topic: topic.to_string(),
            peer: member.peer.to_string(),
        });
        for m in local {
            deliver(&inner, m, &joined, &mut slow);
        }
        cut_slow(&mut inner, slow);
    }

    /// Peers of other nodes on `topic` that this node may not know yet,
    /// met late: announced again, or read from Redis, after an outage.
    /// Each one new here is told to every local member as what it is to
    /// that member: there first (`peers`: the member dials it) or later
    /// (`joined`: it dials the member), by join time, then peer id — an
    /// order both nodes see alike, so exactly one of each pair dials. Known
    /// ones are no news: no peer hears a duplicate `joined`.
    pub fn remote_known(&self, topic: Topic, members: &[RemoteMember]) {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        let Some(local) = inner.topics.get(&topic) else {
            return;
        };
        let local: Vec<(PeerId, u64)> = local.iter().map(|(p, s)| (*p, *s)).collect();
        let cache = inner.remote.entry(topic).or_default();
        let new: Vec<RemoteMember> = members
            .iter()
            .filter(|m| cache.insert(m.peer, **m).is_none())
            .copied()
            .collect();
        for (peer, since) in local {
            let (first, later): (Vec<&RemoteMember>, Vec<&RemoteMember>) =
                new.iter().partition(|m| (m.since, m.peer) < (since, peer));
            if !first.is_empty() {
                let peers = text(&ServerMessage::Peers {
                    topic: topic.to_string(),
                    peers: first.iter().map(|m| m.peer.to_string()).collect(),
                });
                deliver(&inner, peer, &peers, &mut slow);
            }
            for m in later {
                let joined = text(&ServerMessage::Joined {
                    topic: topic.to_string(),
                    peer: m.peer.to_string(),
                });
                deliver(&inner, peer, &joined, &mut slow);
            }
        }
        cut_slow(&mut inner, slow);
    }

    /// A peer of another node left `topic` (or its node is gone).
    pub fn remote_left(&self, topic: Topic, peer: PeerId) {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        let known = inner
            .remote
            .get_mut(&topic)
            .is_some_and(|r| r.remove(&peer).is_some());
        if !known {
            return;
        }
        let left = text(&ServerMessage::Left {
            topic: topic.to_string(),
            peer: peer.to_string(),
        });
        let members: Vec<PeerId> = inner
            .topics
            .get(&topic)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for m in members {
            deliver(&inner, m, &left, &mut slow);
        }
        cut_slow(&mut inner, slow);
    }

    /// Forgets remote peers of topics without local members (announcements
    /// that came in after the last local member left).
    pub fn forget_orphans(&self) {
        let mut inner = self.lock();
        let Inner { topics, remote, .. } = &mut *inner;
        remote.retain(|topic, _| topics.contains_key(topic));
    }

    /// Every remote peer known, per topic (for the sweep).
    pub fn remote_peers(&self) -> Vec<(Topic, RemoteMember)> {
        self.lock()
            .remote
            .iter()
            .flat_map(|(t, r)| r.values().map(move |m| (*t, *m)))
            .collect()
    }

    /// The local members of every topic, with when they joined (to register
    /// them again after Redis came back).
    pub fn local_members(&self) -> Vec<(Topic, PeerId, u64)> {
        self.lock()
            .topics
            .iter()
            .flat_map(|(t, m)| m.iter().map(move |(p, s)| (*t, *p, *s)))
            .collect()
    }

    /// Puts a message on `id`'s own queue (its answers and errors).
    pub fn tell(&self, id: PeerId, message: &ServerMessage) {
        let mut slow = Vec::new();
        let mut inner = self.lock();
        deliver(&inner, id, &text(message), &mut slow);
        cut_slow(&mut inner, slow);
    }

    pub fn status(&self) -> HubStatus {
        let inner = self.lock();
        HubStatus {
            sockets: inner.peers.len(),
            topics: inner.topics.len(),
        }
    }
}

fn text(message: &ServerMessage) -> Outbound {
    Utf8Bytes::from(message.to_text())
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
    let others: Vec<PeerId> = members.keys().copied().collect();
    let left = text(&ServerMessage::Left {
        topic: topic.to_string(),
        peer: id.to_string(),
    });
    for other in others {
        deliver(inner, other, &left, slow);
    }
}

fn deliver(inner: &Inner, to: PeerId, message: &Outbound, slow: &mut Vec<PeerId>) {
    let Some(tx) = inner.peers.get(&to).and_then(|p| p.tx.as_ref()) else {
        return;
    };
    if tx.try_send(message.clone()).is_err() {
        slow.push(to);
    }
}

/// Sockets that could not keep up lose their queue: their task sees it
/// end, closes them (`signal.slow_consumer`) and unregisters them, so they
/// leave their topics on every node.
fn cut_slow(inner: &mut Inner, slow: Vec<PeerId>) {
    for id in slow {
        if let Some(peer) = inner.peers.get_mut(&id) {
            peer.tx = None;
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random u64 from the OS (peer and node ids).
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Should the OS's source fail, ids from the clock still differ (they
    // only need to be unique, not secret).
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return nanos ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_le_bytes(bytes)
}
