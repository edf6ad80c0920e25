//! The vault's part that finds its peers: signaling topics and dials.
//!
//! A host with a signaling network (the simulator's; the browser's worker,
//! `vault-wasm/src/net.rs`) tells the vault when its signaling session is up
//! and who is on the topics it joined; the vault decides whom to connect
//! to and asks the host to dial. A host without one never says
//! [`Input::SignalUp`](super::Input::SignalUp), and nothing here happens.
//!
//! ```text
//! SignalUp                    ──► SignalJoin(topic) per space held
//!                                 (topic: a keyed hash of the space id —
//!                                 the server routes by it, learns nothing)
//! SignalPeers(topic, [peers]) ──► those were there first: this vault dials
//!                                 each (one dial per peer, whatever the
//!                                 number of topics they share)
//! SignalJoined(topic, peer)   ──► it came later: it dials us
//! Dial(dial, peer) … PeerConnected(link, dial) / DialFailed(dial)
//! link gone, dial failed or silent for DIAL_TIMEOUT, peer still there
//!                             ──► dial again after a backoff (1 s, 2 s, …
//!                                 60 s, with jitter), unless a link to its
//!                                 device is up anyway (it dialled us)
//! SignalLeft / SignalDown     ──► forget it (links live on by themselves)
//! ```
//!
//! Exactly one side dials for each pair on a topic (the one that joined
//! later), so two vaults meeting do not race each other; when two shared
//! topics make both dial, the peer layer keeps one link
//! (`close_duplicate`) and the dialer does not dial again while the other
//! link lives.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::machine::{DialId, LinkId, Millis, Output, SignalPeer, Topic};
use super::Vault;
use crate::data::SpaceId;
use crate::identity::DevicePublicKey;

/// How long a dial may take before it counts as failed.
pub const DIAL_TIMEOUT: Millis = 30_000;
/// The first wait before dialing again, doubled per failure up to
/// [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Millis = 1_000;
pub const MAX_BACKOFF: Millis = 60_000;

/// The signaling topic of a space: HMAC-SHA256 keyed by the space id, so
/// only holders of the space can compute it and the server learns no id.
pub fn space_topic(space: &SpaceId) -> Topic {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(space.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(b"echo/signal-topic/v1");
    Topic(mac.finalize().into_bytes().into())
}

/// A peer met on signaling.
#[derive(Debug)]
struct Remote {
    topics: BTreeSet<Topic>,
    /// It was on a topic when this vault joined: this vault dials it.
    dialer: bool,
    state: Reach,
    /// Failures in a row (sets the backoff).
    failures: u32,
    /// Its device, once a link from a dial authenticated it.
    device: Option<DevicePublicKey>,
}

#[derive(Debug, Clone, Copy)]
enum Reach {
    /// Dial at `retry_at` (if it is still wanted then).
    Idle {
        retry_at: Millis,
    },
    Dialing {
        dial: DialId,
        deadline: Millis,
    },
    Linked {
        link: LinkId,
    },
}

#[derive(Debug, Default)]
pub(super) struct Discovery {
    up: bool,
    /// Topics joined, and their spaces.
    joined: BTreeMap<Topic, SpaceId>,
    remotes: BTreeMap<SignalPeer, Remote>,
    dials: BTreeMap<DialId, SignalPeer>,
    next_dial: u64,
    /// The host said it cannot open pipes now ([`Input::CannotDial`]:
    /// in the browser, no vault page is open to drive WebRTC).
    ///
    /// [`Input::CannotDial`]: super::Input::CannotDial
    cannot_dial: bool,
}

impl Discovery {
    /// The earliest dial deadline or retry still wanted, given which
    /// devices have a link up.
    pub fn poll_timeout(&self, linked: &BTreeSet<DevicePublicKey>) -> Option<Millis> {
        self.remotes
            .values()
            .filter(|r| r.dialer)
            .filter_map(|r| match r.state {
                Reach::Dialing { deadline, .. } => Some(deadline),
                Reach::Idle { retry_at } if !r.device.is_some_and(|d| linked.contains(&d)) => {
                    Some(retry_at)
                }
                _ => None,
            })
            .min()
    }
}

impl Vault {
    /// The host's signaling session is up (again): join every topic.
    pub(super) fn signal_up(&mut self) {
        self.discovery.up = true;
        self.admin_changed();
        self.discovery.joined.clear();
        self.discovery.remotes.clear();
        self.discovery.dials.clear();
        self.discover();
    }

    /// Whether the host's signaling session is up.
    pub(super) fn signal_is_up(&self) -> bool {
        self.discovery.up
    }

    /// The host's signaling session is gone: it forgot our topics.
    pub(super) fn signal_down(&mut self) {
        self.discovery.up = false;
        self.admin_changed();
        self.discovery.joined.clear();
        self.discovery.remotes.clear();
        self.discovery.dials.clear();
    }

    /// Who was on `topic` when this vault joined it: this vault dials them.
    pub(super) fn signal_peers(&mut self, topic: Topic, peers: Vec<SignalPeer>) {
        if !self.discovery.joined.contains_key(&topic) {
            return;
        }
        let now = self.now;
        for peer in peers {
            let r = self.discovery.remotes.entry(peer).or_insert(Remote {
                topics: BTreeSet::new(),
                dialer: false,
                state: Reach::Idle { retry_at: now },
                failures: 0,
                device: None,
            });
            r.topics.insert(topic);
            r.dialer = true;
        }
        self.discover();
    }

    /// `peer` joined `topic` after this vault: it will dial.
    pub(super) fn signal_joined(&mut self, topic: Topic, peer: SignalPeer) {
        if !self.discovery.joined.contains_key(&topic) {
            return;
        }
        let now = self.now;
        self.discovery
            .remotes
            .entry(peer)
            .or_insert(Remote {
                topics: BTreeSet::new(),
                dialer: false,
                state: Reach::Idle { retry_at: now },
                failures: 0,
                device: None,
            })
            .topics
            .insert(topic);
    }

    /// `peer` left `topic` (or its session ended).
    pub(super) fn signal_left(&mut self, topic: Topic, peer: SignalPeer) {
        let gone = match self.discovery.remotes.get_mut(&peer) {
            Some(r) => {
                r.topics.remove(&topic);
                r.topics.is_empty()
            }
            None => false,
        };
        if gone {
            if let Some(Reach::Dialing { dial, .. }) =
                self.discovery.remotes.remove(&peer).map(|r| r.state)
            {
                self.discovery.dials.remove(&dial);
            }
        }
    }

    /// A dial of this vault got a pipe: the link is the peer's.
    pub(super) fn dial_connected(&mut self, dial: DialId, link: LinkId) {
        let Some(peer) = self.discovery.dials.remove(&dial) else {
            return;
        };
        if let Some(r) = self.discovery.remotes.get_mut(&peer) {
            r.state = Reach::Linked { link };
        }
    }

    /// The host can dial again (in the browser: a new vault page leads
    /// WebRTC): every remote waiting for a retry is dialed now, its
    /// failures forgotten. Dials in flight went to the previous dialer,
    /// which is gone or could not get anywhere (an iframe without ICE
    /// candidates): they are void and dialed again at once, not after
    /// [`DIAL_TIMEOUT`]; a late answer to one finds no dial and is taken
    /// as an incoming link.
    pub(super) fn dial_now(&mut self) {
        self.discovery.cannot_dial = false;
        let now = self.now;
        for r in self.discovery.remotes.values_mut() {
            match r.state {
                Reach::Idle { .. } => {}
                Reach::Dialing { dial, .. } => {
                    self.discovery.dials.remove(&dial);
                }
                Reach::Linked { .. } => continue,
            }
            r.state = Reach::Idle { retry_at: now };
            r.failures = 0;
        }
    }

    /// The host cannot open pipes until it says [`Input::CanDial`]: apps
    /// are told their spaces cannot connect (dials still go out and fail,
    /// keeping their backoff).
    ///
    /// [`Input::CanDial`]: super::Input::CanDial
    pub(super) fn dial_unavailable(&mut self) {
        self.discovery.cannot_dial = true;
    }

    /// Whether the host can open pipes now (as far as it said).
    pub(super) fn can_dial(&self) -> bool {
        !self.discovery.cannot_dial
    }

    /// A dial of this vault failed.
    pub(super) fn dial_failed(&mut self, dial: DialId) {
        let Some(peer) = self.discovery.dials.remove(&dial) else {
            return;
        };
        let backoff = self.backoff_for(peer);
        if let Some(r) = self.discovery.remotes.get_mut(&peer) {
            r.failures += 1;
            r.state = Reach::Idle { retry_at: backoff };
        }
    }

    /// A link authenticated its peer's device: remember it for the remote
    /// the link was dialled to.
    pub(super) fn discovery_authenticated(&mut self, link: LinkId, device: DevicePublicKey) {
        for r in self.discovery.remotes.values_mut() {
            if matches!(r.state, Reach::Linked { link: l } if l == link) {
                r.device = Some(device);
                r.failures = 0;
            }
        }
    }

    /// When the next retry is due after another failure with `peer`.
    fn backoff_for(&mut self, peer: SignalPeer) -> Millis {
        let failures = self
            .discovery
            .remotes
            .get(&peer)
            .map_or(0, |r| r.failures)
            .min(16);
        let base = (FIRST_BACKOFF << failures).min(MAX_BACKOFF);
        self.now + base + self.rng.below(base / 2 + 1)
    }

    /// Devices with an authenticated link up.
    pub(super) fn linked_devices(&self) -> BTreeSet<DevicePublicKey> {
        self.peers
            .links
            .values()
            .filter_map(|l| l.conn.peer().map(|p| p.device))
            .collect()
    }

    /// Brings topics and dials in line with the spaces held and the links
    /// up. Runs after every input.
    pub(super) fn discover(&mut self) {
        if !self.discovery.up || self.keys.is_none() {
            return;
        }
        // Topics: one per space held (an HMAC each, worked out only when
        // a space is first joined — this runs after every input).
        let held: BTreeSet<SpaceId> = self.spaces.ids().into_iter().collect();
        let stale: Vec<Topic> = self
            .discovery
            .joined
            .iter()
            .filter(|(_, space)| !held.contains(space))
            .map(|(topic, _)| *topic)
            .collect();
        for topic in stale {
            self.discovery.joined.remove(&topic);
            let left: Vec<SignalPeer> = self.discovery.remotes.keys().copied().collect();
            for peer in left {
                self.signal_left(topic, peer);
            }
            self.outputs.push_back(Output::SignalLeave { topic });
        }
        let joined: BTreeSet<SpaceId> = self.discovery.joined.values().copied().collect();
        for space in held.difference(&joined) {
            let topic = space_topic(space);
            self.discovery.joined.insert(topic, *space);
            self.outputs.push_back(Output::SignalJoin { topic });
        }
        // Dials: every remote this vault dials, not reachable now.
        let now = self.now;
        let linked = self.linked_devices();
        let peers: Vec<SignalPeer> = self
            .discovery
            .remotes
            .iter()
            .filter(|(_, r)| r.dialer)
            .map(|(p, _)| *p)
            .collect();
        for peer in peers {
            let Some(r) = self.discovery.remotes.get(&peer) else {
                continue;
            };
            let (state, device) = (r.state, r.device);
            let topic = r.topics.iter().next().copied();
            match state {
                Reach::Linked { link } if self.peers.links.contains_key(&link) => {}
                Reach::Linked { .. } => {
                    let retry_at = self.backoff_for(peer);
                    if let Some(r) = self.discovery.remotes.get_mut(&peer) {
                        r.state = Reach::Idle { retry_at };
                    }
                }
                Reach::Dialing { dial, deadline } if now >= deadline => {
                    self.discovery.dials.remove(&dial);
                    let retry_at = self.backoff_for(peer);
                    if let Some(r) = self.discovery.remotes.get_mut(&peer) {
                        r.failures += 1;
                        r.state = Reach::Idle { retry_at };
                    }
                }
                Reach::Dialing { .. } => {}
                Reach::Idle { retry_at } => {
                    if now < retry_at || device.is_some_and(|d| linked.contains(&d)) {
                        continue;
                    }
                    self.discovery.next_dial += 1;
                    let dial = DialId(self.discovery.next_dial);
                    self.discovery.dials.insert(dial, peer);
                    if let Some(r) = self.discovery.remotes.get_mut(&peer) {
                        r.state = Reach::Dialing {
                            dial,
                            deadline: now + DIAL_TIMEOUT,
                        };
                    }
                    if let Some(topic) = topic {
                        self.outputs.push_back(Output::Dial { dial, peer, topic });
                    }
                }
            }
        }
    }
}
