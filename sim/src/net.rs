//! [`Sim`]: nodes, the links between them, and the clock.
//!
//! A link is an ordered, reliable byte pipe, as a WebRTC data channel or a
//! TCP stream is: bytes sent on it arrive in order after a delay drawn
//! from the run's generator (never before bytes sent earlier on the same
//! link). Loss is what a reliable transport turns it into: the link dies
//! ([`Sim::cut`]) and may be opened again later. Partitions cut every link
//! between two groups and refuse new ones while they last.
//!
//! A link may also end at the test itself ([`Sim::attach`]): the test plays
//! the far peer — a hostile one — writing whatever bytes it likes and
//! reading what the node answers.
//!
//! With [`Sim::enable_signaling`], the nodes also share a signaling
//! server: each up node has a session, joins the topics its vault asks
//! for, hears who is there and who comes and goes, and its vault's dials
//! become links (or fail across a partition, or to a node that is down).
//! The server is reachable from every node; partitions cut only links.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use echo_core::peer::{ChannelBinding, CloseReason};
use echo_core::rng::EngineRng;
use echo_core::vault::{DialId, Input, LinkId, Millis, SignalPeer, Topic};

use crate::node::{Node, SignalRequest};

/// How the network behaves.
#[derive(Clone, Copy, Debug)]
pub struct NetConfig {
    /// Delivery delay of a write on a link, drawn in `min..=max` ms.
    pub min_delay: Millis,
    pub max_delay: Millis,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            min_delay: 1,
            max_delay: 30,
        }
    }
}

/// One end of a link: which node, and the link's id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSlot {
    pub node: usize,
    pub link: LinkId,
}

/// The `node` of a link end the test plays ([`Sim::attach`]).
const HARNESS: usize = usize::MAX;

struct SimLink {
    /// End 1 of an attached link is the test ([`HARNESS`]).
    ends: [LinkSlot; 2],
    /// What the node sent to the test on an attached link, not yet taken.
    to_harness: Vec<Vec<u8>>,
    up: bool,
    /// Per direction (0: from end 0 to end 1), bytes and when they arrive.
    queues: [VecDeque<(Millis, Vec<u8>)>; 2],
}

/// The signaling server: sessions and topics.
#[derive(Default)]
struct Signaling {
    /// Per node, its session while it is up.
    sessions: Vec<Option<SignalPeer>>,
    topics: BTreeMap<Topic, BTreeSet<usize>>,
    next_session: u64,
}

impl Signaling {
    fn node_of(&self, peer: SignalPeer) -> Option<usize> {
        self.sessions.iter().position(|s| *s == Some(peer))
    }
}

/// Nodes on a simulated network. See the module docs.
pub struct Sim {
    pub now: Millis,
    pub rng: EngineRng,
    pub nodes: Vec<Node>,
    pub net: NetConfig,
    links: Vec<SimLink>,
    /// Pairs of nodes that cannot reach each other now.
    partitions: BTreeSet<(usize, usize)>,
    next_link: u64,
    /// The signaling server, once enabled.
    signaling: Option<Signaling>,
    /// A signaling server that reads (and may change or drop) the
    /// messages it relays: `(from node, to node, data) → deliver?`.
    #[allow(clippy::type_complexity)]
    pub tamper_signal: Option<Box<dyn FnMut(usize, usize, &mut Vec<u8>) -> bool>>,
    /// Dials the vaults asked for so far.
    pub dials: u64,
    /// Nodes whose host takes dials and never answers them (a browser
    /// vault led by a page that cannot get ICE candidates).
    pub deaf_dialers: BTreeSet<usize>,
    /// Links nodes closed, and why: (node, link index, reason).
    pub closes: Vec<(usize, usize, CloseReason)>,
    /// Bytes and writes (messages of the transport) put on links so far,
    /// in all and per sending node.
    pub bytes_sent: u64,
    pub writes_sent: u64,
    pub sent_by: Vec<Traffic>,
}

/// What one node put on links: bytes, and writes (each one
/// `Output::PeerSend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes: u64,
    pub writes: u64,
}

impl Sim {
    /// `n` booted nodes; everything random in the run comes from `seed`.
    pub fn new(seed: u64, n: usize) -> Self {
        let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(seed));
        let now = 1_700_000_000_000;
        let nodes = (0..n)
            .map(|i| Node::new(&format!("node{i}"), rng.next_u64(), now))
            .collect();
        Sim {
            now,
            rng,
            nodes,
            net: NetConfig::default(),
            links: Vec::new(),
            partitions: BTreeSet::new(),
            signaling: None,
            tamper_signal: None,
            dials: 0,
            deaf_dialers: BTreeSet::new(),
            closes: Vec::new(),
            next_link: 0,
            bytes_sent: 0,
            writes_sent: 0,
            sent_by: vec![Traffic::default(); n],
        }
    }

    /// Links two nodes over a fresh secure channel (both ends see the same
    /// binding). Returns the link's index, or `None` across a partition.
    pub fn link(&mut self, a: usize, b: usize) -> Option<usize> {
        let binding = ChannelBinding::from_bytes(self.rng.bytes());
        self.link_with(a, b, binding, binding)
    }

    /// Links two nodes, each end seeing its own binding: a man in the
    /// middle who terminates two secure channels and relays the bytes.
    pub fn link_with(
        &mut self,
        a: usize,
        b: usize,
        binding_a: ChannelBinding,
        binding_b: ChannelBinding,
    ) -> Option<usize> {
        self.open_link(a, b, binding_a, binding_b, None)
    }

    /// A link from `a` (which dialled it, when `dial` says so) to `b`.
    fn open_link(
        &mut self,
        a: usize,
        b: usize,
        binding_a: ChannelBinding,
        binding_b: ChannelBinding,
        dial: Option<DialId>,
    ) -> Option<usize> {
        if a == b || self.partitioned(a, b) || !self.nodes[a].is_up() || !self.nodes[b].is_up() {
            return None;
        }
        self.next_link += 1;
        let ends = [
            LinkSlot {
                node: a,
                link: LinkId(self.next_link),
            },
            LinkSlot {
                node: b,
                link: LinkId(self.next_link),
            },
        ];
        self.links.push(SimLink {
            ends,
            to_harness: Vec::new(),
            up: true,
            queues: [VecDeque::new(), VecDeque::new()],
        });
        let now = self.now;
        self.nodes[a].peer_connected(now, ends[0].link, binding_a, dial);
        self.nodes[b].peer_connected(now, ends[1].link, binding_b, None);
        self.collect();
        Some(self.links.len() - 1)
    }

    /// Opens a link from `node` whose far end the test plays: the node sees
    /// a peer on a channel with `binding`; the test writes with
    /// [`inject`](Self::inject) and reads with [`take_from`](Self::take_from).
    pub fn attach(&mut self, node: usize, binding: ChannelBinding) -> Option<usize> {
        if !self.nodes[node].is_up() {
            return None;
        }
        self.next_link += 1;
        let link = LinkId(self.next_link);
        self.links.push(SimLink {
            ends: [
                LinkSlot { node, link },
                LinkSlot {
                    node: HARNESS,
                    link,
                },
            ],
            to_harness: Vec::new(),
            up: true,
            queues: [VecDeque::new(), VecDeque::new()],
        });
        let now = self.now;
        self.nodes[node].peer_connected(now, link, binding, None);
        self.collect();
        Some(self.links.len() - 1)
    }

    /// The test writes `bytes` on an attached link; they arrive after the
    /// usual delay. Ignored once the link is down.
    pub fn inject(&mut self, link: usize, bytes: Vec<u8>) {
        let delay =
            self.net.min_delay + self.rng.below(self.net.max_delay - self.net.min_delay + 1);
        let now = self.now;
        let Some(l) = self.links.get_mut(link).filter(|l| l.up) else {
            return;
        };
        self.bytes_sent += bytes.len() as u64;
        self.writes_sent += 1;
        let after = l.queues[1].back().map_or(0, |(t, _)| *t);
        l.queues[1].push_back(((now + delay).max(after), bytes));
    }

    /// What the node sent the test on an attached link since last taken.
    pub fn take_from(&mut self, link: usize) -> Vec<Vec<u8>> {
        self.collect();
        self.links
            .get_mut(link)
            .map(|l| std::mem::take(&mut l.to_harness))
            .unwrap_or_default()
    }

    /// Why `node` closed `link`, if it did.
    pub fn close_code(&self, node: usize, link: usize) -> Option<&'static str> {
        self.closes
            .iter()
            .find(|(n, l, _)| *n == node && *l == link)
            .map(|(_, _, r)| r.code())
    }

    /// The id both ends know a link by.
    pub fn link_id(&self, link: usize) -> LinkId {
        self.links[link].ends[0].link
    }

    /// Whether a link is up.
    pub fn is_up(&self, link: usize) -> bool {
        self.links.get(link).is_some_and(|l| l.up)
    }

    /// Links that are up, with their ends.
    pub fn up_links(&self) -> Vec<(usize, usize, usize)> {
        self.links
            .iter()
            .enumerate()
            .filter(|(_, l)| l.up)
            .map(|(i, l)| (i, l.ends[0].node, l.ends[1].node))
            .collect()
    }

    /// The link dies: bytes in flight are lost, both ends learn it.
    pub fn cut(&mut self, link: usize) {
        let now = self.now;
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        if !l.up {
            return;
        }
        l.up = false;
        l.queues = [VecDeque::new(), VecDeque::new()];
        let ends = l.ends;
        for end in ends.into_iter().filter(|e| e.node != HARNESS) {
            self.nodes[end.node].input(now, Input::PeerClosed { link: end.link });
        }
        self.collect();
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        self.partitions.contains(&(a.min(b), a.max(b)))
    }

    /// Separates `group` from every other node: their links die and none
    /// can be made until [`heal`](Self::heal).
    pub fn partition(&mut self, group: &[usize]) {
        let n = self.nodes.len();
        for &a in group {
            for b in 0..n {
                if !group.contains(&b) {
                    self.partitions.insert((a.min(b), a.max(b)));
                }
            }
        }
        let doomed: Vec<usize> = self
            .links
            .iter()
            .enumerate()
            .filter(|(_, l)| l.up && self.partitioned(l.ends[0].node, l.ends[1].node))
            .map(|(i, _)| i)
            .collect();
        for i in doomed {
            self.cut(i);
        }
    }

    pub fn heal(&mut self) {
        self.partitions.clear();
    }

    /// A node's process dies (its links with it).
    pub fn crash(&mut self, node: usize) {
        self.cut_links_of(node);
        self.end_session(node);
        self.nodes[node].crash();
    }

    /// A node dies right after storage made a write durable, before its
    /// vault heard of it.
    pub fn crash_after_write(&mut self, node: usize) {
        self.cut_links_of(node);
        self.end_session(node);
        self.nodes[node].crash_after_write();
    }

    /// A node starts again from what is stored.
    pub fn restart(&mut self, node: usize) {
        self.cut_links_of(node);
        self.end_session(node);
        let now = self.now;
        self.nodes[node].restart(now);
        self.start_session(node);
    }

    // ------------------------------------------------------------ signaling

    /// Starts the signaling server: every up node gets a session.
    pub fn enable_signaling(&mut self) {
        self.signaling = Some(Signaling {
            sessions: vec![None; self.nodes.len()],
            ..Signaling::default()
        });
        for n in 0..self.nodes.len() {
            self.start_session(n);
        }
        self.collect();
    }

    fn start_session(&mut self, node: usize) {
        let Some(sig) = self.signaling.as_mut() else {
            return;
        };
        if !self.nodes[node].is_up() {
            return;
        }
        sig.next_session += 1;
        sig.sessions[node] = Some(SignalPeer(sig.next_session));
        let now = self.now;
        self.nodes[node].input(now, Input::SignalUp);
    }

    /// A node's session ends: the others on its topics hear it left.
    fn end_session(&mut self, node: usize) {
        let Some(sig) = self.signaling.as_mut() else {
            return;
        };
        let Some(peer) = sig.sessions[node].take() else {
            return;
        };
        let mut told = Vec::new();
        for (topic, members) in sig.topics.iter_mut() {
            if members.remove(&node) {
                told.extend(members.iter().map(|&m| (m, *topic)));
            }
        }
        let now = self.now;
        for (m, topic) in told {
            self.nodes[m].input(now, Input::SignalLeft { topic, peer });
        }
    }

    /// Carries out what a node asked of the signaling server.
    fn signal(&mut self, n: usize, request: SignalRequest) {
        let now = self.now;
        let Some(sig) = self.signaling.as_mut() else {
            return;
        };
        let Some(me) = sig.sessions[n] else {
            return;
        };
        match request {
            SignalRequest::Join(topic) => {
                let members = sig.topics.entry(topic).or_default();
                if !members.insert(n) {
                    return;
                }
                let others: Vec<usize> = members.iter().copied().filter(|&m| m != n).collect();
                let peers = others.iter().filter_map(|&m| sig.sessions[m]).collect();
                self.nodes[n].input(now, Input::SignalPeers { topic, peers });
                for m in others {
                    self.nodes[m].input(now, Input::SignalJoined { topic, peer: me });
                }
            }
            SignalRequest::Leave(topic) => {
                let Some(members) = sig.topics.get_mut(&topic) else {
                    return;
                };
                if !members.remove(&n) {
                    return;
                }
                let others: Vec<usize> = members.iter().copied().collect();
                for m in others {
                    self.nodes[m].input(now, Input::SignalLeft { topic, peer: me });
                }
            }
            SignalRequest::Send { topic, to, data } => {
                // As the server does: only between peers of the topic.
                let Some(m) = sig.node_of(to) else {
                    return;
                };
                let members = sig.topics.get(&topic);
                if !members.is_some_and(|t| t.contains(&n) && t.contains(&m)) {
                    return;
                }
                let mut data = data;
                if let Some(tamper) = self.tamper_signal.as_mut() {
                    if !tamper(n, m, &mut data) {
                        return;
                    }
                }
                self.nodes[m].input(
                    now,
                    Input::SignalMessage {
                        topic,
                        from: me,
                        data,
                    },
                );
            }
            SignalRequest::Dial { dial, peer, .. } => {
                self.dials += 1;
                if self.deaf_dialers.contains(&n) {
                    return;
                }
                let target = sig.node_of(peer);
                let binding = ChannelBinding::from_bytes(self.rng.bytes());
                let opened =
                    target.and_then(|m| self.open_link(n, m, binding, binding, Some(dial)));
                if opened.is_none() {
                    self.nodes[n].input(
                        now,
                        Input::DialFailed {
                            dial,
                            reason: "the peer cannot be reached".into(),
                        },
                    );
                }
            }
        }
    }

    fn cut_links_of(&mut self, node: usize) {
        let mine: Vec<usize> = self
            .links
            .iter()
            .enumerate()
            .filter(|(_, l)| l.up && l.ends.iter().any(|e| e.node == node))
            .map(|(i, _)| i)
            .collect();
        for i in mine {
            self.cut(i);
        }
    }

    /// Moves what nodes sent onto their links, and closes what they closed.
    fn collect(&mut self) {
        loop {
            let mut moved = false;
            for n in 0..self.nodes.len() {
                while let Some((link, bytes)) = self.nodes[n].sent.pop_front() {
                    moved = true;
                    let Some((i, dir)) = self.find(n, link) else {
                        continue;
                    };
                    let delay = self.net.min_delay
                        + self.rng.below(self.net.max_delay - self.net.min_delay + 1);
                    let l = &mut self.links[i];
                    if !l.up {
                        continue;
                    }
                    self.bytes_sent += bytes.len() as u64;
                    self.writes_sent += 1;
                    self.sent_by[n].bytes += bytes.len() as u64;
                    self.sent_by[n].writes += 1;
                    let after = l.queues[dir].back().map_or(0, |(t, _)| *t);
                    l.queues[dir].push_back(((self.now + delay).max(after), bytes));
                }
                while let Some(request) = self.nodes[n].signal_out.pop_front() {
                    moved = true;
                    self.signal(n, request);
                }
                while let Some((link, reason)) = self.nodes[n].link_closes.pop_front() {
                    moved = true;
                    if let Some((i, dir)) = self.find(n, link) {
                        self.closes.push((n, i, reason));
                        // What it sent before closing (its Close) still
                        // arrives; then the other end learns the link died.
                        let l = &mut self.links[i];
                        if l.up {
                            l.up = false;
                            let flushed: Vec<Vec<u8>> =
                                l.queues[dir].drain(..).map(|(_, b)| b).collect();
                            l.queues = [VecDeque::new(), VecDeque::new()];
                            let other = l.ends[1 - dir];
                            if other.node == HARNESS {
                                l.to_harness.extend(flushed);
                                continue;
                            }
                            let now = self.now;
                            for bytes in flushed {
                                self.nodes[other.node].input(
                                    now,
                                    Input::PeerBytes {
                                        link: other.link,
                                        bytes,
                                    },
                                );
                            }
                            self.nodes[other.node]
                                .input(now, Input::PeerClosed { link: other.link });
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn find(&self, node: usize, link: LinkId) -> Option<(usize, usize)> {
        self.links.iter().enumerate().find_map(|(i, l)| {
            l.ends
                .iter()
                .position(|e| e.node == node && e.link == link)
                .filter(|_| l.up)
                .map(|dir| (i, dir))
        })
    }

    /// When the next thing happens: a delivery or a node's deadline.
    fn next_event(&self) -> Option<Millis> {
        let deliveries = self
            .links
            .iter()
            .filter(|l| l.up)
            .flat_map(|l| l.queues.iter().filter_map(|q| q.front().map(|(t, _)| *t)));
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.is_up())
            .filter_map(|n| n.vault().poll_timeout());
        deliveries.chain(timers).min()
    }

    /// Whether bytes are in flight on some link.
    pub fn in_flight(&self) -> bool {
        self.links
            .iter()
            .any(|l| l.up && l.queues.iter().any(|q| !q.is_empty()))
    }

    /// Runs the next event (or jumps to `limit` when nothing happens
    /// before it). Returns false when the clock reached `limit`.
    pub fn step(&mut self, limit: Millis) -> bool {
        self.collect();
        let Some(at) = self.next_event().filter(|t| *t <= limit) else {
            self.now = self.now.max(limit);
            return false;
        };
        self.now = self.now.max(at);
        let now = self.now;
        // Deliveries due now, in order per link.
        for i in 0..self.links.len() {
            for dir in 0..2 {
                loop {
                    let l = &mut self.links[i];
                    if !l.up {
                        break;
                    }
                    let due = l.queues[dir].front().is_some_and(|(t, _)| *t <= now);
                    if !due {
                        break;
                    }
                    let Some((_, bytes)) = l.queues[dir].pop_front() else {
                        break;
                    };
                    let to = l.ends[1 - dir];
                    if to.node == HARNESS {
                        l.to_harness.push(bytes);
                        continue;
                    }
                    self.nodes[to.node].input(
                        now,
                        Input::PeerBytes {
                            link: to.link,
                            bytes,
                        },
                    );
                }
            }
        }
        for n in 0..self.nodes.len() {
            let due = self.nodes[n].is_up()
                && self.nodes[n]
                    .vault()
                    .poll_timeout()
                    .is_some_and(|t| t <= now);
            if due {
                self.nodes[n].input(now, Input::Timeout);
            }
        }
        self.collect();
        true
    }

    /// Runs for `ms` of simulated time.
    pub fn run_for(&mut self, ms: Millis) {
        let end = self.now + ms;
        while self.step(end) {}
    }

    /// Runs until no bytes are in flight (and `ms` more pass quietly), or
    /// `limit` ms have passed; true when it went quiet.
    pub fn settle(&mut self, quiet: Millis, limit: Millis) -> bool {
        let end = self.now + limit;
        let mut quiet_since = self.now;
        while self.now < end {
            if self.in_flight() {
                quiet_since = self.now;
            } else if self.now >= quiet_since + quiet {
                return true;
            }
            let next = (self.now + quiet).min(end);
            if !self.step(next) && !self.in_flight() && self.now >= quiet_since + quiet {
                return true;
            }
        }
        !self.in_flight()
    }
}
