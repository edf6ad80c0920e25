//! [`Connection`]: one link to one peer, as a state machine.
//!
//! Fed the bytes that arrived ([`handle_bytes`](Connection::handle_bytes))
//! and the time ([`handle_timeout`](Connection::handle_timeout)); drained of
//! bytes to send ([`poll_transmit`](Connection::poll_transmit)), events
//! ([`poll_event`](Connection::poll_event)) and its next deadline
//! ([`poll_timeout`](Connection::poll_timeout)). It owns framing, the
//! handshake (version, authentication), channels and their offers, credit,
//! heartbeats and closing; what travels on a space's channel is the
//! `sync` module's business.
//!
//! **Credit.** Each side announces a window in its `Hello`: how many bytes
//! of space-channel frames it accepts before granting more. The receiver
//! grants credit back as it consumes frames, at most `receive_rate` bytes
//! per second (a token bucket), so a peer that floods is slowed to that
//! rate, and one that sends beyond its credit is closed (`peer.flood`). The
//! sender keeps what it may not send yet in its queue and tells producers
//! how much fits ([`send_capacity`](Connection::send_capacity)), so a slow
//! peer makes nobody buffer without bound. Channel 0 (the connection's own
//! messages: credit, pings, offers) is outside credit, rate-limited by
//! count instead, and always sent first, so credit can never deadlock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::auth::{self, ChannelBinding, PeerIdentity};
use super::error::{CloseCode, CloseReason};
use super::frame::{encode_message, framed_len, FrameDecoder};
use super::offer::{offer_tag, OfferTag};
use super::wire::{negotiate, Control, VERSIONS};
use crate::data::SpaceId;
use crate::identity::{DeviceCertificate, DeviceKey};

/// Milliseconds on the host's clock.
pub type Millis = u64;

/// A channel of a connection: 0 is the connection's own, the others each
/// carry one space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u16);

/// Limits and timings of a connection.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Space-channel bytes we accept before granting more credit.
    pub window: u32,
    /// The largest message on a space channel.
    pub max_message: usize,
    /// Bytes of unfinished messages held across all channels.
    pub max_partial: usize,
    /// Credit granted per second at most (flooding peers are slowed to it).
    pub receive_rate: u64,
    /// Connection messages per second a peer may send (burst: twice that).
    pub control_rate: u32,
    /// Channels open or offered at once.
    pub max_channels: usize,
    /// From connect to authenticated.
    pub handshake_timeout: Millis,
    /// A ping goes out after this long without sending anything.
    pub ping_interval: Millis,
    /// Closed after this long without receiving anything.
    pub idle_timeout: Millis,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            window: 4 << 20,
            max_message: 16 << 20,
            max_partial: 32 << 20,
            receive_rate: 64 << 20,
            control_rate: 256,
            max_channels: 1024,
            handshake_timeout: 10_000,
            ping_interval: 15_000,
            idle_timeout: 45_000,
        }
    }
}

/// Most offers in one `Offer` message (it must fit one frame).
pub const MAX_OFFERS_PER_MESSAGE: usize = 256;

/// What a connection reports.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnEvent {
    /// The peer proved its device key over this channel.
    Authenticated(Box<PeerIdentity>),
    /// The peer offers a space as a tag; [`Connection::accept`] it if one
    /// of ours matches ([`Connection::their_tag`]), else ignore it.
    Offered { channel: ChannelId, tag: OfferTag },
    /// A channel for `space` is open (an offer of ours accepted, or one of
    /// theirs we accepted).
    ChannelOpened { channel: ChannelId, space: SpaceId },
    /// A whole message on a space channel.
    Message { channel: ChannelId, bytes: Vec<u8> },
    /// A channel closed (by either side); the connection stays.
    ChannelClosed {
        channel: ChannelId,
        space: SpaceId,
        /// A stable code (`peer.*` or the sync layer's `sync.*`).
        code: String,
        reason: String,
        by_peer: bool,
    },
    /// Credit came back: space channels may send more.
    Writable,
    /// The connection is over; send what [`poll_transmit`] still gives, then
    /// close the pipe.
    ///
    /// [`poll_transmit`]: Connection::poll_transmit
    Closed { reason: CloseReason, by_peer: bool },
}

/// Why [`Connection::send`] did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The channel is not open (never, or closed meanwhile).
    NoChannel,
    /// The message is over the peer's limit.
    TooLarge,
    /// The connection is closed.
    Closed,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for their `Hello`.
    Hello,
    /// Hellos exchanged, waiting for their `Auth`.
    Auth,
    Ready,
    Closed,
}

struct Bucket {
    tokens: f64,
    max: f64,
    per_ms: f64,
    at: Millis,
}

impl Bucket {
    fn new(max: f64, per_second: f64, now: Millis) -> Self {
        Bucket {
            tokens: max,
            max,
            per_ms: per_second / 1000.0,
            at: now,
        }
    }
    fn refill(&mut self, now: Millis) {
        if now > self.at {
            self.tokens = (self.tokens + (now - self.at) as f64 * self.per_ms).min(self.max);
            self.at = now;
        }
    }
    /// When `want` tokens will be there.
    fn ready_at(&self, want: f64) -> Millis {
        if self.tokens >= want || self.per_ms <= 0.0 {
            return self.at;
        }
        self.at + ((want - self.tokens) / self.per_ms).ceil() as Millis
    }
}

/// One link to one peer. See the module docs.
pub struct Connection {
    config: PeerConfig,
    device: DeviceKey,
    certificate: DeviceCertificate,
    binding: ChannelBinding,
    our_nonce: [u8; 32],
    their_nonce: [u8; 32],
    version: u16,
    phase: Phase,
    peer: Option<PeerIdentity>,
    decoder: FrameDecoder,

    // receiving
    partial: BTreeMap<u16, Vec<u8>>,
    partial_bytes: usize,
    /// Space-channel bytes the peer may send in all (its credit so far).
    granted: u64,
    received: u64,
    /// Consumed but not granted back yet.
    to_grant: u64,
    grant_bucket: Bucket,
    control_bucket: Bucket,

    // sending
    control_out: VecDeque<Vec<u8>>,
    data_out: VecDeque<Vec<u8>>,
    data_queued: usize,
    /// Space-channel bytes we may still send.
    credit: u64,
    their_window: u32,

    // channels
    side: u16,
    next_channel: u16,
    channels: BTreeMap<u16, SpaceId>,
    our_offers: BTreeMap<u16, SpaceId>,
    their_offers: BTreeSet<u16>,
    closed_channels: BTreeSet<u16>,

    created: Millis,
    last_send: Millis,
    last_recv: Millis,
    ping_seq: u32,
    events: VecDeque<ConnEvent>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("phase", &self.phase)
            .field("peer", &self.peer.as_ref().map(|p| p.device))
            .field("channels", &self.channels.len())
            .finish()
    }
}

impl Connection {
    /// A connection over a pipe whose secure channel is `binding`, for
    /// this device (`device`, `certificate`). `nonce` must be fresh random
    /// bytes (from the engine's generator). Queues the `Hello`.
    pub fn new(
        now: Millis,
        config: PeerConfig,
        device: DeviceKey,
        certificate: DeviceCertificate,
        binding: ChannelBinding,
        nonce: [u8; 32],
    ) -> Self {
        let window = config.window;
        let grant_bucket = Bucket::new(f64::from(config.window), config.receive_rate as f64, now);
        let control_bucket = Bucket::new(
            f64::from(config.control_rate) * 2.0,
            f64::from(config.control_rate),
            now,
        );
        let mut c = Connection {
            config,
            device,
            certificate,
            binding,
            our_nonce: nonce,
            their_nonce: [0; 32],
            version: 0,
            phase: Phase::Hello,
            peer: None,
            decoder: FrameDecoder::default(),
            partial: BTreeMap::new(),
            partial_bytes: 0,
            granted: u64::from(window),
            received: 0,
            to_grant: 0,
            grant_bucket,
            control_bucket,
            control_out: VecDeque::new(),
            data_out: VecDeque::new(),
            data_queued: 0,
            credit: 0,
            their_window: 0,
            side: 0,
            next_channel: 0,
            channels: BTreeMap::new(),
            our_offers: BTreeMap::new(),
            their_offers: BTreeSet::new(),
            closed_channels: BTreeSet::new(),
            created: now,
            last_send: now,
            last_recv: now,
            ping_seq: 0,
            events: VecDeque::new(),
        };
        c.send_control(&Control::Hello {
            versions: VERSIONS.to_vec(),
            nonce,
            window,
        });
        c
    }

    // ------------------------------------------------------------- accessors

    /// Who is at the other end, once authenticated.
    pub fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub fn binding(&self) -> &ChannelBinding {
        &self.binding
    }

    /// The negotiated protocol version (0 before the `Hello`s).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The space an open channel carries.
    pub fn channel_space(&self, channel: ChannelId) -> Option<SpaceId> {
        self.channels.get(&channel.0).copied()
    }

    /// The open channel of `space`, if any.
    pub fn channel_of(&self, space: &SpaceId) -> Option<ChannelId> {
        self.channels
            .iter()
            .find(|(_, s)| *s == space)
            .map(|(c, _)| ChannelId(*c))
    }

    /// Open channels and their spaces.
    pub fn channels(&self) -> impl Iterator<Item = (ChannelId, SpaceId)> + '_ {
        self.channels.iter().map(|(c, s)| (ChannelId(*c), *s))
    }

    /// Bytes of space-channel messages that can go out now without waiting
    /// for credit (producers make no more than this).
    pub fn send_capacity(&self) -> usize {
        if self.phase != Phase::Ready {
            return 0;
        }
        (self.credit as usize).saturating_sub(self.data_queued)
    }

    /// Space-channel bytes waiting in the queue.
    pub fn queued(&self) -> usize {
        self.data_queued
    }

    // ---------------------------------------------------------------- inputs

    /// Bytes from the pipe, in any pieces.
    pub fn handle_bytes(&mut self, now: Millis, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.last_recv = now;
        self.grant_bucket.refill(now);
        self.control_bucket.refill(now);
        let mut decoder = std::mem::take(&mut self.decoder);
        let result = decoder.feed(bytes, |frame| {
            let (channel, fin, payload) = (frame.channel, frame.fin, frame.payload);
            let wire = frame.wire_len();
            self.on_frame(now, channel, fin, payload, wire)
        });
        self.decoder = decoder;
        if let Err(code) = result {
            if self.phase != Phase::Closed {
                let detail = match code {
                    CloseCode::FrameTooLarge => "a frame longer than 16 KiB",
                    CloseCode::Protocol => "bytes that are not a valid frame or message",
                    _ => "a limit was exceeded",
                };
                self.close(CloseReason::new(code, detail));
            }
            return;
        }
        self.grant(now);
    }

    /// The clock reached a deadline (or any time later).
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.phase != Phase::Ready
            && now >= self.created.saturating_add(self.config.handshake_timeout)
        {
            self.close(CloseReason::new(
                CloseCode::Timeout,
                "the peer did not complete the handshake in time",
            ));
            return;
        }
        if now >= self.last_recv.saturating_add(self.config.idle_timeout) {
            self.close(CloseReason::new(
                CloseCode::Timeout,
                "nothing heard from the peer for too long",
            ));
            return;
        }
        if self.phase == Phase::Ready
            && now >= self.last_send.saturating_add(self.config.ping_interval)
        {
            self.ping_seq = self.ping_seq.wrapping_add(1);
            self.send_control(&Control::Ping { seq: self.ping_seq });
            // The ping counts as sent when transmitted; do not ask twice.
            self.last_send = now;
        }
        self.grant_bucket.refill(now);
        self.grant(now);
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.phase == Phase::Closed {
            return None;
        }
        let mut at = self.last_recv.saturating_add(self.config.idle_timeout);
        if self.phase == Phase::Ready {
            at = at.min(self.last_send.saturating_add(self.config.ping_interval));
        } else {
            at = at.min(self.created.saturating_add(self.config.handshake_timeout));
        }
        // A grant waiting for the rate (not one too small to send yet).
        if self.to_grant >= self.grant_threshold() {
            let ready = self.grant_bucket.ready_at(self.grant_threshold() as f64);
            at = at.min(ready.max(self.grant_bucket.at + 1));
        }
        Some(at)
    }

    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.pop_front()
    }

    /// Bytes for the pipe: connection messages first, then space-channel
    /// frames as far as credit allows; at most about `max` bytes (at least
    /// one frame).
    pub fn poll_transmit(&mut self, now: Millis, max: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(front) = self.control_out.front() {
            if !out.is_empty() && out.len() + front.len() > max {
                break;
            }
            out.extend_from_slice(&self.control_out.pop_front().unwrap_or_default());
        }
        while let Some(front) = self.data_out.front() {
            let len = front.len();
            if len as u64 > self.credit || (!out.is_empty() && out.len() + len > max) {
                break;
            }
            self.credit -= len as u64;
            self.data_queued -= len;
            out.extend_from_slice(&self.data_out.pop_front().unwrap_or_default());
        }
        if out.is_empty() {
            None
        } else {
            self.last_send = now;
            Some(out)
        }
    }

    // --------------------------------------------------------------- actions

    /// Offers `space` to the peer (call only for spaces whose control log
    /// names the peer a member). Returns the channel it will use; `None`
    /// when not ready, already offered or open, or at the channel limit.
    pub fn offer(&mut self, space: SpaceId) -> Option<ChannelId> {
        self.offer_many(&[space]).into_iter().next()
    }

    /// Offers several spaces in as few messages as fit.
    pub fn offer_many(&mut self, spaces: &[SpaceId]) -> Vec<ChannelId> {
        if self.phase != Phase::Ready {
            return Vec::new();
        }
        let mut opened = Vec::new();
        let mut batch = Vec::new();
        for space in spaces {
            let taken = self.channels.values().any(|s| s == space)
                || self.our_offers.values().any(|s| s == space);
            if taken || self.channel_count() >= self.config.max_channels {
                continue;
            }
            let Some(channel) = self.new_channel() else {
                break;
            };
            self.our_offers.insert(channel, *space);
            let tag = offer_tag(space, &self.our_nonce, &self.their_nonce);
            batch.push((channel, tag.0));
            opened.push(ChannelId(channel));
            if batch.len() == MAX_OFFERS_PER_MESSAGE {
                self.send_control(&Control::Offer {
                    offers: std::mem::take(&mut batch),
                });
            }
        }
        if !batch.is_empty() {
            self.send_control(&Control::Offer { offers: batch });
        }
        opened
    }

    /// The tag the peer uses when it offers `space` to us.
    pub fn their_tag(&self, space: &SpaceId) -> Option<OfferTag> {
        (self.phase == Phase::Ready).then(|| offer_tag(space, &self.their_nonce, &self.our_nonce))
    }

    /// Accepts the peer's offer on `channel` as `space` (a tag matched).
    /// When both sides offered the same space, the offer of the device
    /// with the lower key is kept on both sides; `false` when this one is
    /// not (or the space already has a channel).
    pub fn accept(&mut self, channel: ChannelId, space: SpaceId) -> bool {
        if self.phase != Phase::Ready || !self.their_offers.contains(&channel.0) {
            return false;
        }
        if self.channels.values().any(|s| *s == space) {
            return false;
        }
        if let Some((&ours, _)) = self.our_offers.iter().find(|(_, s)| **s == space) {
            if self.we_are_lower() {
                // Ours is kept; they drop theirs by the same rule.
                return false;
            }
            // Theirs is kept: withdraw ours.
            self.our_offers.remove(&ours);
            self.closed_channels.insert(ours);
            self.send_control(&Control::CloseChannel {
                channel: ours,
                code: CloseCode::Duplicate.code().to_owned(),
                reason: "both offered the space; the lower device's offer is kept".into(),
            });
        }
        self.their_offers.remove(&channel.0);
        self.channels.insert(channel.0, space);
        self.send_control(&Control::Accept { channel: channel.0 });
        self.events
            .push_back(ConnEvent::ChannelOpened { channel, space });
        true
    }

    /// Queues a message on a space channel. It goes out as credit allows;
    /// check [`send_capacity`](Self::send_capacity) before producing more.
    pub fn send(&mut self, channel: ChannelId, message: &[u8]) -> Result<(), SendError> {
        if self.phase == Phase::Closed {
            return Err(SendError::Closed);
        }
        if !self.channels.contains_key(&channel.0) {
            return Err(SendError::NoChannel);
        }
        if message.len() > self.config.max_message {
            return Err(SendError::TooLarge);
        }
        let mut framed = Vec::with_capacity(framed_len(message.len()));
        encode_message(channel.0, message, &mut framed);
        // Queue frame by frame, so credit can release part of a message.
        let mut rest = &framed[..];
        while !rest.is_empty() {
            let len = 5 + usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            self.data_queued += len;
            self.data_out.push_back(rest[..len].to_vec());
            rest = &rest[len..];
        }
        Ok(())
    }

    /// Closes one channel (the connection stays), with a stable code and
    /// what happened, in words.
    pub fn close_channel(&mut self, channel: ChannelId, code: &str, reason: &str) {
        if let Some(space) = self.channels.remove(&channel.0) {
            self.closed_channels.insert(channel.0);
            self.partial_drop(channel.0);
            let code: String = code.chars().take(64).collect();
            let reason: String = CloseReason::new(CloseCode::Other, reason).detail;
            self.send_control(&Control::CloseChannel {
                channel: channel.0,
                code: code.clone(),
                reason: reason.clone(),
            });
            self.events.push_back(ConnEvent::ChannelClosed {
                channel,
                space,
                code,
                reason,
                by_peer: false,
            });
        }
    }

    /// Closes the connection: a `Close` goes out (take it with
    /// [`poll_transmit`](Self::poll_transmit)), queued space data is
    /// dropped, and nothing more is read.
    pub fn close(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.data_out.clear();
        self.data_queued = 0;
        self.send_control(&Control::Close {
            code: reason.code().to_owned(),
            reason: reason.detail.clone(),
        });
        self.phase = Phase::Closed;
        self.events.push_back(ConnEvent::Closed {
            reason,
            by_peer: false,
        });
    }

    // ------------------------------------------------------------- internals

    fn send_control(&mut self, message: &Control) {
        let mut framed = Vec::new();
        encode_message(0, &message.encode(), &mut framed);
        self.control_out.push_back(framed);
    }

    fn channel_count(&self) -> usize {
        self.channels.len() + self.our_offers.len() + self.their_offers.len()
    }

    fn we_are_lower(&self) -> bool {
        self.peer
            .as_ref()
            .is_some_and(|p| self.certificate.device < p.device)
    }

    /// Our channel ids have our side's parity, so the two sides never pick
    /// the same one.
    fn new_channel(&mut self) -> Option<u16> {
        let id = 2u32 + 2 * u32::from(self.next_channel) + u32::from(self.side);
        let id = u16::try_from(id).ok()?;
        self.next_channel = self.next_channel.checked_add(1)?;
        Some(id)
    }

    fn grant_threshold(&self) -> u64 {
        (u64::from(self.config.window) / 4).max(1)
    }

    /// Grants consumed bytes back as credit, within the rate.
    fn grant(&mut self, now: Millis) {
        if self.phase == Phase::Closed || self.to_grant < self.grant_threshold() {
            return;
        }
        self.grant_bucket.refill(now);
        let amount = self.to_grant.min(self.grant_bucket.tokens as u64);
        if amount < self.grant_threshold().min(self.to_grant) {
            return; // wait for the bucket (poll_timeout says when)
        }
        let amount = amount.min(u64::from(u32::MAX));
        self.grant_bucket.tokens -= amount as f64;
        self.to_grant -= amount;
        self.granted += amount;
        self.send_control(&Control::Credit {
            bytes: amount as u32,
        });
    }

    fn partial_drop(&mut self, channel: u16) {
        if let Some(p) = self.partial.remove(&channel) {
            self.partial_bytes -= p.len();
        }
    }

    fn on_frame(
        &mut self,
        now: Millis,
        channel: u16,
        fin: bool,
        payload: &[u8],
        wire: usize,
    ) -> Result<(), CloseCode> {
        if self.phase == Phase::Closed {
            return Ok(());
        }
        if channel == 0 {
            if !fin {
                return Err(CloseCode::Protocol);
            }
            if self.control_bucket.tokens < 1.0 {
                self.close(CloseReason::new(
                    CloseCode::Flood,
                    "connection messages arrive faster than allowed",
                ));
                return Ok(());
            }
            self.control_bucket.tokens -= 1.0;
            let message = Control::decode(payload)?;
            return self.on_control(now, message);
        }
        if self.phase != Phase::Ready {
            return Err(CloseCode::Protocol);
        }
        self.received += wire as u64;
        if self.received > self.granted {
            self.close(CloseReason::new(
                CloseCode::Flood,
                "the peer sent more than its credit",
            ));
            return Ok(());
        }
        self.to_grant += wire as u64;
        if self.closed_channels.contains(&channel) {
            return Ok(()); // in flight when the channel closed
        }
        if !self.channels.contains_key(&channel) {
            return Err(CloseCode::Protocol);
        }
        let part = self.partial.entry(channel).or_default();
        if part.len() + payload.len() > self.config.max_message
            || self.partial_bytes + payload.len() > self.config.max_partial
        {
            self.close(CloseReason::new(
                CloseCode::MessageTooLarge,
                "a message, or the unfinished messages together, exceed the limit",
            ));
            return Ok(());
        }
        part.extend_from_slice(payload);
        self.partial_bytes += payload.len();
        if fin {
            let bytes = self.partial.remove(&channel).unwrap_or_default();
            self.partial_bytes -= bytes.len();
            self.events.push_back(ConnEvent::Message {
                channel: ChannelId(channel),
                bytes,
            });
        }
        Ok(())
    }

    fn on_control(&mut self, now: Millis, message: Control) -> Result<(), CloseCode> {
        match (&self.phase, message) {
            (
                Phase::Hello,
                Control::Hello {
                    versions,
                    nonce,
                    window,
                },
            ) => {
                let Some(version) = negotiate(&versions) else {
                    self.close(CloseReason::new(
                        CloseCode::UnsupportedVersion,
                        format!(
                            "no protocol version in common (ours: {VERSIONS:?}, theirs: {:?})",
                            versions.iter().take(8).collect::<Vec<_>>()
                        ),
                    ));
                    return Ok(());
                };
                if nonce == self.our_nonce {
                    self.close(CloseReason::new(
                        CloseCode::SelfConnection,
                        "the other end sent our own nonce back",
                    ));
                    return Ok(());
                }
                self.version = version;
                self.their_nonce = nonce;
                self.their_window = window;
                self.credit = u64::from(window);
                let signature = auth::prove(
                    &self.device,
                    &self.certificate,
                    version,
                    &self.binding,
                    &self.our_nonce,
                    &self.their_nonce,
                );
                self.send_control(&Control::Auth {
                    certificate: self.certificate.clone(),
                    signature,
                });
                self.phase = Phase::Auth;
            }
            (
                Phase::Auth,
                Control::Auth {
                    certificate,
                    signature,
                },
            ) => {
                match auth::verify(
                    &certificate,
                    &signature,
                    self.version,
                    &self.binding,
                    &self.their_nonce,
                    &self.our_nonce,
                    &self.certificate.device,
                ) {
                    Ok(peer) => {
                        self.side = u16::from(self.certificate.device > peer.device);
                        self.peer = Some(peer.clone());
                        self.phase = Phase::Ready;
                        self.last_send = now;
                        self.events
                            .push_back(ConnEvent::Authenticated(Box::new(peer)));
                    }
                    Err(refusal) => {
                        let code = match refusal {
                            auth::AuthRefusal::SelfConnection => CloseCode::SelfConnection,
                            _ => CloseCode::AuthFailed,
                        };
                        self.close(CloseReason::new(code, refusal.detail()));
                    }
                }
            }
            (_, Control::Close { code, reason }) => {
                self.phase = Phase::Closed;
                self.data_out.clear();
                self.data_queued = 0;
                self.control_out.clear();
                self.events.push_back(ConnEvent::Closed {
                    reason: CloseReason::new(CloseCode::from_code(&code), reason),
                    by_peer: true,
                });
            }
            (Phase::Ready, Control::Ping { seq }) => self.send_control(&Control::Pong { seq }),
            (Phase::Ready, Control::Pong { .. }) => {}
            (Phase::Ready, Control::Credit { bytes }) => {
                let before = self.send_capacity();
                self.credit = self.credit.saturating_add(u64::from(bytes));
                if self.send_capacity() > before {
                    self.events.push_back(ConnEvent::Writable);
                }
            }
            (Phase::Ready, Control::Offer { offers }) => {
                if offers.len() > MAX_OFFERS_PER_MESSAGE {
                    return Err(CloseCode::Protocol);
                }
                for (channel, tag) in offers {
                    let theirs = channel >= 2 && channel % 2 != self.side;
                    let fresh = !self.channels.contains_key(&channel)
                        && !self.their_offers.contains(&channel)
                        && !self.closed_channels.contains(&channel);
                    if !theirs || !fresh {
                        return Err(CloseCode::Protocol);
                    }
                    if self.channel_count() >= self.config.max_channels {
                        self.close(CloseReason::new(
                            CloseCode::Flood,
                            "the peer offered more channels than allowed",
                        ));
                        return Ok(());
                    }
                    self.their_offers.insert(channel);
                    self.events.push_back(ConnEvent::Offered {
                        channel: ChannelId(channel),
                        tag: OfferTag(tag),
                    });
                }
            }
            (Phase::Ready, Control::Accept { channel }) => {
                match self.our_offers.remove(&channel) {
                    Some(space) => {
                        if self.channels.values().any(|s| *s == space) {
                            // We took their offer for this space meanwhile.
                            self.closed_channels.insert(channel);
                            self.send_control(&Control::CloseChannel {
                                channel,
                                code: CloseCode::Duplicate.code().to_owned(),
                                reason: "the space is open on another channel".into(),
                            });
                        } else {
                            self.channels.insert(channel, space);
                            self.events.push_back(ConnEvent::ChannelOpened {
                                channel: ChannelId(channel),
                                space,
                            });
                        }
                    }
                    None if self.closed_channels.contains(&channel) => {}
                    None => return Err(CloseCode::Protocol),
                }
            }
            (
                Phase::Ready,
                Control::CloseChannel {
                    channel,
                    code,
                    reason,
                },
            ) => {
                self.their_offers.remove(&channel);
                self.our_offers.remove(&channel);
                self.partial_drop(channel);
                if let Some(space) = self.channels.remove(&channel) {
                    self.closed_channels.insert(channel);
                    self.events.push_back(ConnEvent::ChannelClosed {
                        channel: ChannelId(channel),
                        space,
                        code: code.chars().take(64).collect(),
                        reason: CloseReason::new(CloseCode::Other, reason).detail,
                        by_peer: true,
                    });
                }
            }
            _ => return Err(CloseCode::Protocol),
        }
        Ok(())
    }
}
