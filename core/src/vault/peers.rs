//! The vault's part that owns its peers: one [`Connection`] per link the
//! host opened, and per shared space a [`SyncSession`] on its channel.
//!
//! ```text
//! PeerConnected(link, binding) ──► Connection (Hello, Auth)
//! Authenticated(peer)   ──► a second link to the same device? keep one (the
//!                           lower channel binding, on both sides alike)
//!                       ──► every space open? offer those whose control log
//!                           names the peer's identity a member (and does
//!                           not revoke its device)
//! Offered(channel, tag) ──► a held space with that tag? open it, accept
//! ChannelOpened         ──► SyncSession::new (Hello)
//! Message               ──► session.handle → merged data, credentials, …
//! after each flush      ──► session.after_flush: durable bundles go out
//! pump                  ──► sessions produce as credit allows; bytes out
//! ```

use std::collections::{BTreeMap, BTreeSet};

use super::machine::{LinkId, Millis, Output, VaultEvent};
use super::Vault;
use crate::data::SpaceId;
use crate::peer::{
    ChannelBinding, ChannelId, CloseCode, CloseReason, ConnEvent, Connection, OfferTag, PeerConfig,
};
use crate::sync::{SessionEvent, SyncSession};

/// Most bytes handed to the host per `PeerSend`.
const TRANSMIT_BYTES: usize = 64 * 1024;

pub(super) struct Link {
    pub conn: Connection,
    pub sessions: BTreeMap<ChannelId, SyncSession>,
    /// Authenticated; waiting for every space to be open to offer.
    pub awaiting_offer: bool,
    /// Offers of the peer waiting for their space to be opened.
    pub deferred: Vec<(ChannelId, SpaceId)>,
    /// Offers of the peer for no space held here (yet): answered when this
    /// vault comes to hold it (a guest admitted while linked gets the
    /// host's offer before the space itself).
    pub unmatched: Vec<(ChannelId, OfferTag)>,
}

#[derive(Default)]
pub(super) struct Peers {
    pub links: BTreeMap<LinkId, Link>,
    pub config: PeerConfig,
    /// When each space last heard from a peer (a sync message arrived).
    pub heard: BTreeMap<SpaceId, Millis>,
}

impl Peers {
    /// Spaces synced live with some peer.
    pub fn live_spaces(&self) -> BTreeSet<SpaceId> {
        self.links
            .values()
            .flat_map(|l| {
                l.sessions
                    .iter()
                    .filter(|(_, s)| s.is_live())
                    .filter_map(|(ch, _)| l.conn.channel_space(*ch))
            })
            .collect()
    }

    /// Peers syncing `space` now (one per link with a session for it).
    pub fn syncing(&self, space: &SpaceId) -> usize {
        self.links
            .values()
            .filter(|l| {
                l.sessions
                    .keys()
                    .any(|ch| l.conn.channel_space(*ch) == Some(*space))
            })
            .count()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.links
            .values()
            .filter_map(|l| l.conn.poll_timeout())
            .min()
    }
}

impl Vault {
    pub(super) fn peer_connected(&mut self, link: LinkId, binding: ChannelBinding) {
        let Some(keys) = self.keys.as_ref() else {
            self.outputs.push_back(Output::PeerClose {
                link,
                reason: CloseReason::new(CloseCode::Normal, "the vault is still starting"),
            });
            return;
        };
        if self.peers.links.contains_key(&link) {
            return;
        }
        let conn = Connection::new(
            self.now,
            self.peers.config.clone(),
            keys.device.duplicate(),
            keys.certificate.clone(),
            binding,
            self.rng.bytes(),
        );
        self.peers.links.insert(
            link,
            Link {
                conn,
                sessions: BTreeMap::new(),
                awaiting_offer: false,
                deferred: Vec::new(),
                unmatched: Vec::new(),
            },
        );
    }

    pub(super) fn peer_bytes(&mut self, link: LinkId, bytes: &[u8]) {
        if let Some(l) = self.peers.links.get_mut(&link) {
            l.conn.handle_bytes(self.now, bytes);
        }
    }

    pub(super) fn peer_closed(&mut self, link: LinkId) {
        self.forget_link(link, CloseCode::Normal.code(), "the link closed");
    }

    /// Drops a link; each space synced on it stops, saying why.
    fn forget_link(&mut self, link: LinkId, code: &str, reason: &str) {
        if let Some(l) = self.peers.links.remove(&link) {
            if !l.sessions.is_empty() {
                self.admin_changed();
            }
            for ch in l.sessions.keys() {
                if let Some(space) = l.conn.channel_space(*ch) {
                    self.outputs
                        .push_back(Output::Event(VaultEvent::SyncStopped {
                            link,
                            space,
                            code: code.into(),
                            reason: reason.into(),
                        }));
                }
            }
        }
    }

    pub(super) fn peers_timeout(&mut self) {
        let now = self.now;
        for l in self.peers.links.values_mut() {
            l.conn.handle_timeout(now);
        }
        for (_, r) in self.spaces.open() {
            r.set_clock(now);
        }
    }

    /// Runs every link until nothing moves: connection events, session
    /// messages as credit allows, bytes out.
    pub(super) fn pump_peers(&mut self) {
        for _ in 0..64 {
            let mut moved = false;
            let links: Vec<LinkId> = self.peers.links.keys().copied().collect();
            for link in links {
                moved |= self.link_events(link);
                moved |= self.link_produce(link);
                moved |= self.link_transmit(link);
            }
            if !moved {
                break;
            }
        }
    }

    fn link_events(&mut self, link: LinkId) -> bool {
        let mut moved = false;
        loop {
            let Some(event) = self
                .peers
                .links
                .get_mut(&link)
                .and_then(|l| l.conn.poll_event())
            else {
                return moved;
            };
            moved = true;
            self.on_conn_event(link, event);
        }
    }

    fn on_conn_event(&mut self, link: LinkId, event: ConnEvent) {
        match event {
            ConnEvent::Authenticated(peer) => {
                self.outputs
                    .push_back(Output::Event(VaultEvent::PeerAuthenticated {
                        link,
                        identity: peer.identity,
                        device: peer.device,
                    }));
                self.discovery_authenticated(link, peer.device);
                if self.close_duplicate(link, &peer.device) {
                    return;
                }
                if let Some(l) = self.peers.links.get_mut(&link) {
                    l.awaiting_offer = true;
                }
                self.offer_when_open();
            }
            ConnEvent::Offered { channel, tag } => self.on_offered(link, channel, tag),
            ConnEvent::ChannelOpened { channel, space } => {
                let Some(peer) = self
                    .peers
                    .links
                    .get(&link)
                    .and_then(|l| l.conn.peer())
                    .cloned()
                else {
                    return;
                };
                let Some(replica) = self.spaces.replica(&space) else {
                    if let Some(l) = self.peers.links.get_mut(&link) {
                        l.conn.close_channel(
                            channel,
                            "sync.unavailable",
                            "the space is not open here",
                        );
                    }
                    return;
                };
                match SyncSession::new(peer, replica) {
                    Ok(session) => {
                        if let Some(l) = self.peers.links.get_mut(&link) {
                            l.sessions.insert(channel, session);
                        }
                        self.outputs
                            .push_back(Output::Event(VaultEvent::SyncStarted { link, space }));
                        self.peers.heard.insert(space, self.now);
                        self.admin_changed();
                    }
                    Err(e) => {
                        if let Some(l) = self.peers.links.get_mut(&link) {
                            l.conn.close_channel(channel, e.code(), &e.to_string());
                        }
                    }
                }
            }
            ConnEvent::Message { channel, bytes } => {
                let now = self.now;
                let Some(l) = self.peers.links.get_mut(&link) else {
                    return;
                };
                let Some(space) = l.conn.channel_space(channel) else {
                    return;
                };
                let (Some(session), Some(replica)) =
                    (l.sessions.get_mut(&channel), self.spaces.replica(&space))
                else {
                    return;
                };
                session.handle(replica, &bytes, now);
                self.peers.heard.insert(space, now);
                self.session_events(link, channel, space);
            }
            ConnEvent::ChannelClosed {
                channel,
                space,
                code,
                reason,
                ..
            } => {
                if let Some(l) = self.peers.links.get_mut(&link) {
                    l.sessions.remove(&channel);
                }
                self.outputs
                    .push_back(Output::Event(VaultEvent::SyncStopped {
                        link,
                        space,
                        code,
                        reason,
                    }));
                self.admin_changed();
            }
            ConnEvent::Writable => {}
            ConnEvent::Closed { reason, by_peer } => {
                // Bytes the connection still has (its Close) go first.
                self.link_transmit(link);
                self.forget_link(link, reason.code(), &reason.detail);
                let _ = by_peer;
                self.outputs.push_back(Output::PeerClose { link, reason });
            }
        }
    }

    /// Two links to one device (both sides dialled): keep the one with the
    /// lower channel binding — both sides compute the same.
    fn close_duplicate(&mut self, link: LinkId, device: &crate::identity::DevicePublicKey) -> bool {
        let mine = match self.peers.links.get(&link) {
            Some(l) => *l.conn.binding().as_bytes(),
            None => return true,
        };
        let other = self
            .peers
            .links
            .iter()
            .find(|(id, l)| **id != link && l.conn.peer().is_some_and(|p| p.device == *device));
        let Some((&other_id, other)) = other else {
            return false;
        };
        let close = if *other.conn.binding().as_bytes() < mine {
            link
        } else {
            other_id
        };
        if let Some(l) = self.peers.links.get_mut(&close) {
            l.conn.close(CloseReason::new(
                CloseCode::Duplicate,
                "another link to this device is kept",
            ));
        }
        close == link
    }

    /// Offers spaces to authenticated links once every space is open (the
    /// control logs decide who is a member).
    pub(super) fn offer_when_open(&mut self) {
        let waiting = self.peers.links.values().any(|l| l.awaiting_offer);
        if !waiting {
            return;
        }
        let closed: Vec<SpaceId> = self
            .spaces
            .ids()
            .into_iter()
            .filter(|id| !self.spaces.is_open(id))
            .collect();
        if !closed.is_empty() {
            for id in closed {
                self.request_open(id);
            }
            return;
        }
        let ids = self.spaces.ids();
        for l in self.peers.links.values_mut() {
            if !l.awaiting_offer {
                continue;
            }
            l.awaiting_offer = false;
            let Some(peer) = l.conn.peer() else {
                continue;
            };
            let members: Vec<SpaceId> = ids
                .iter()
                .filter(|id| {
                    self.spaces
                        .replica_ref(id)
                        .is_some_and(|r| r.may_receive(peer))
                })
                .copied()
                .collect();
            l.conn.offer_many(&members);
        }
    }

    /// Offers `space` on every authenticated link whose peer its control
    /// log names a member and that has no channel for it yet (a new space,
    /// a new member, a space read again).
    pub(super) fn offer_space(&mut self, space: SpaceId) {
        let Some(replica) = self.spaces.replica_ref(&space) else {
            return;
        };
        for l in self.peers.links.values_mut() {
            // The peer offered it before this vault held it: take that
            // offer (the peer keeps it open; offering ours would deadlock
            // when the rule for both-offered keeps theirs).
            if let Some(tag) = l.conn.their_tag(&space) {
                if let Some(i) = l.unmatched.iter().position(|(_, t)| *t == tag) {
                    let (channel, _) = l.unmatched.remove(i);
                    if l.conn.accept(channel, space) {
                        continue;
                    }
                }
            }
            let Some(peer) = l.conn.peer() else {
                continue;
            };
            if l.conn.channel_of(&space).is_none() && replica.may_receive(peer) {
                l.conn.offer(space);
            }
        }
    }

    fn on_offered(&mut self, link: LinkId, channel: ChannelId, tag: OfferTag) {
        let ids = self.spaces.ids();
        let Some(l) = self.peers.links.get_mut(&link) else {
            return;
        };
        let Some(space) = ids.into_iter().find(|id| l.conn.their_tag(id) == Some(tag)) else {
            // Not a space held here: say nothing, but remember it (the
            // connection bounds the offers a peer may have open).
            l.unmatched.push((channel, tag));
            return;
        };
        if self.spaces.is_open(&space) {
            l.conn.accept(channel, space);
        } else {
            l.deferred.push((channel, space));
            self.request_open(space);
        }
    }

    /// A space was opened: offers that waited for it go on.
    pub(super) fn peers_space_opened(&mut self, space: SpaceId) {
        for l in self.peers.links.values_mut() {
            let (ready, rest): (Vec<_>, Vec<_>) =
                l.deferred.drain(..).partition(|(_, s)| *s == space);
            l.deferred = rest;
            for (channel, s) in ready {
                l.conn.accept(channel, s);
            }
        }
        self.offer_when_open();
        self.offer_space(space);
    }

    /// A space was dropped from memory (a failed flush): its sessions end.
    pub(super) fn peers_space_dropped(&mut self, space: SpaceId) {
        for l in self.peers.links.values_mut() {
            if let Some(ch) = l.conn.channel_of(&space) {
                l.sessions.remove(&ch);
                l.conn.close_channel(
                    ch,
                    "sync.unavailable",
                    "the space was reverted after a storage failure here",
                );
            }
        }
    }

    /// A flush completed: durable bundles go to the peers, what they sent
    /// is acknowledged.
    pub(super) fn peers_after_flush(&mut self) {
        let links: Vec<LinkId> = self.peers.links.keys().copied().collect();
        for link in links {
            let Some(l) = self.peers.links.get_mut(&link) else {
                continue;
            };
            let channels: Vec<(ChannelId, SpaceId)> = l
                .sessions
                .keys()
                .filter_map(|ch| l.conn.channel_space(*ch).map(|s| (*ch, s)))
                .collect();
            for (channel, space) in channels {
                let (Some(session), Some(replica)) = (
                    self.peers
                        .links
                        .get_mut(&link)
                        .and_then(|l| l.sessions.get_mut(&channel)),
                    self.spaces.replica(&space),
                ) else {
                    continue;
                };
                if let Err(e) = session.after_flush(replica) {
                    if let Some(l) = self.peers.links.get_mut(&link) {
                        l.conn.close_channel(channel, e.code(), &e.to_string());
                    }
                }
                self.session_events(link, channel, space);
            }
        }
    }

    /// Handles what a session reported.
    fn session_events(&mut self, link: LinkId, channel: ChannelId, space: SpaceId) {
        loop {
            let Some(event) = self
                .peers
                .links
                .get_mut(&link)
                .and_then(|l| l.sessions.get_mut(&channel))
                .and_then(SyncSession::poll_event)
            else {
                return;
            };
            match event {
                SessionEvent::Received(outcome) => {
                    if !outcome.rejected.is_empty() {
                        let codes = outcome.rejected.iter().map(|r| r.code()).collect();
                        self.outputs
                            .push_back(Output::Event(VaultEvent::Rejected { space, codes }));
                    }
                    self.pump_events(space);
                }
                SessionEvent::Credentials(outcome) => {
                    if !outcome.voided.bundles.is_empty() {
                        self.outputs.push_back(Output::Event(VaultEvent::Voided {
                            space,
                            bundles: outcome.voided.bundles.len(),
                            changes: outcome.voided.changes,
                        }));
                    }
                    self.pump_events(space);
                    if !outcome.added.is_empty() {
                        self.membership_changed(space);
                    }
                }
                SessionEvent::WantFlush => {
                    self.commit.seal_for_peers.insert(space);
                }
                SessionEvent::Close { code, reason } => {
                    if let Some(l) = self.peers.links.get_mut(&link) {
                        l.conn.close_channel(channel, code, &reason);
                    }
                }
            }
        }
    }

    /// The space's control log changed: peers that are members now get an
    /// offer; live channels of peers that no longer are close.
    pub(super) fn membership_changed(&mut self, space: SpaceId) {
        if let Some(replica) = self.spaces.replica_ref(&space) {
            for l in self.peers.links.values_mut() {
                let Some(peer) = l.conn.peer() else {
                    continue;
                };
                if let Some(ch) = l.conn.channel_of(&space) {
                    // Only a session past its first exchange: one still
                    // settling the control log decides for itself.
                    let live = l.sessions.get(&ch).is_some_and(SyncSession::is_live);
                    if live && !replica.may_receive(peer) {
                        l.sessions.remove(&ch);
                        l.conn.close_channel(
                            ch,
                            "sync.not_a_member",
                            "the peer's device is no longer a member's",
                        );
                    }
                }
            }
        }
        self.offer_space(space);
    }

    /// Sessions produce messages while the connection has credit.
    fn link_produce(&mut self, link: LinkId) -> bool {
        let mut moved = false;
        let Some(l) = self.peers.links.get(&link) else {
            return false;
        };
        let channels: Vec<(ChannelId, SpaceId)> = l
            .sessions
            .keys()
            .filter_map(|ch| l.conn.channel_space(*ch).map(|s| (*ch, s)))
            .collect();
        for (channel, space) in channels {
            loop {
                let Some(l) = self.peers.links.get_mut(&link) else {
                    return moved;
                };
                if l.conn.send_capacity() == 0 {
                    return moved;
                }
                let (Some(session), Some(replica)) =
                    (l.sessions.get_mut(&channel), self.spaces.replica(&space))
                else {
                    break;
                };
                match session.poll_message(replica) {
                    Ok(Some(bytes)) => {
                        moved = true;
                        if let Err(e) = l.conn.send(channel, &bytes) {
                            let reason = format!("a message could not be queued: {e:?}");
                            l.conn.close_channel(channel, "sync.send_failed", &reason);
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        l.conn.close_channel(channel, e.code(), &e.to_string());
                        break;
                    }
                }
            }
            self.session_events(link, channel, space);
        }
        moved
    }

    fn link_transmit(&mut self, link: LinkId) -> bool {
        let now = self.now;
        let mut moved = false;
        while let Some(bytes) = self
            .peers
            .links
            .get_mut(&link)
            .and_then(|l| l.conn.poll_transmit(now, TRANSMIT_BYTES))
        {
            moved = true;
            self.outputs.push_back(Output::PeerSend { link, bytes });
        }
        moved
    }
}
