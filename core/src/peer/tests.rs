//! Two connections wired back to back (in the manner of quinn-proto's test
//! `Pair`): bytes move when the test says so, time moves when it says so.

use super::frame::encode_message;
use super::wire::Control;
use super::*;
use crate::data::SpaceId;
use crate::identity::{DeviceCertificate, DeviceKey, IdentityKey};

struct Device {
    key: DeviceKey,
    cert: DeviceCertificate,
}

fn device() -> Device {
    let id = IdentityKey::generate().unwrap();
    let key = DeviceKey::generate().unwrap();
    let cert = id
        .certify_device(&key.request_authorization(id.public_key()))
        .unwrap();
    Device { key, cert }
}

fn conn(d: &Device, binding: ChannelBinding, nonce: u8, config: PeerConfig) -> Connection {
    Connection::new(
        0,
        config,
        d.key.duplicate(),
        d.cert.clone(),
        binding,
        [nonce; 32],
    )
}

struct Pair {
    now: Millis,
    a: Connection,
    b: Connection,
    a_events: Vec<ConnEvent>,
    b_events: Vec<ConnEvent>,
    /// Bytes that went from a to b (to replay them elsewhere).
    a_to_b: Vec<u8>,
}

impl Pair {
    fn new(a: Connection, b: Connection) -> Self {
        Pair {
            now: 0,
            a,
            b,
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_to_b: Vec::new(),
        }
    }

    fn connected() -> (Pair, Device, Device) {
        let (da, db) = (device(), device());
        let binding = ChannelBinding::from_fingerprints("sha-256 AA", "sha-256 BB");
        let mut p = Pair::new(
            conn(&da, binding, 1, PeerConfig::default()),
            conn(&db, binding, 2, PeerConfig::default()),
        );
        p.drive();
        assert!(
            p.a.is_ready() && p.b.is_ready(),
            "{:?} {:?}",
            p.a_events,
            p.b_events
        );
        (p, da, db)
    }

    /// Moves bytes both ways until neither side has anything to send.
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.a.poll_transmit(self.now, 64 * 1024) {
                self.a_to_b.extend_from_slice(&bytes);
                self.b.handle_bytes(self.now, &bytes);
                moved = true;
            }
            while let Some(bytes) = self.b.poll_transmit(self.now, 64 * 1024) {
                self.a.handle_bytes(self.now, &bytes);
                moved = true;
            }
            self.collect();
            if !moved {
                break;
            }
        }
    }

    fn collect(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    /// Moves the clock to `ms` later, firing due deadlines on both sides.
    fn advance(&mut self, ms: Millis) {
        let end = self.now + ms;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            match next {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.drive();
                    if self.a.poll_timeout().is_some_and(|t| t <= self.now)
                        && self.b.poll_timeout().is_some_and(|t| t <= self.now)
                    {
                        // A deadline that does not move would loop forever.
                        self.now += 1;
                    }
                }
                None => {
                    self.now = end;
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.drive();
                    return;
                }
            }
        }
    }
}

fn closed_with(events: &[ConnEvent]) -> Option<(CloseCode, bool)> {
    events.iter().find_map(|e| match e {
        ConnEvent::Closed { reason, by_peer } => Some((reason.code, *by_peer)),
        _ => None,
    })
}

fn messages(events: &[ConnEvent]) -> Vec<(ChannelId, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            ConnEvent::Message { channel, bytes } => Some((*channel, bytes.clone())),
            _ => None,
        })
        .collect()
}

fn opened(events: &[ConnEvent]) -> Vec<(ChannelId, SpaceId)> {
    events
        .iter()
        .filter_map(|e| match e {
            ConnEvent::ChannelOpened { channel, space } => Some((*channel, *space)),
            _ => None,
        })
        .collect()
}

/// Accepts every offer whose tag matches one of `spaces`.
fn accept_matches(c: &mut Connection, events: &[ConnEvent], spaces: &[SpaceId]) {
    for e in events {
        if let ConnEvent::Offered { channel, tag } = e {
            if let Some(s) = spaces.iter().find(|s| c.their_tag(s) == Some(*tag)) {
                c.accept(*channel, *s);
            }
        }
    }
}

#[test]
fn both_sides_learn_who_the_other_is() {
    let (p, da, db) = Pair::connected();
    assert_eq!(p.a.peer().unwrap().device, db.key.public_key());
    assert_eq!(p.a.peer().unwrap().identity, db.cert.identity);
    assert_eq!(p.b.peer().unwrap().device, da.key.public_key());
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, ConnEvent::Authenticated(pi) if pi.device == db.key.public_key())));
    assert_eq!(p.a.version(), 1);
}

#[test]
fn a_man_in_the_middle_fails_authentication() {
    // Two DTLS sessions (A–M and M–B) have different fingerprints; M relays
    // every byte unchanged.
    let (da, db) = (device(), device());
    let a_side = ChannelBinding::from_fingerprints("sha-256 AA", "sha-256 M1");
    let b_side = ChannelBinding::from_fingerprints("sha-256 M2", "sha-256 BB");
    let mut p = Pair::new(
        conn(&da, a_side, 1, PeerConfig::default()),
        conn(&db, b_side, 2, PeerConfig::default()),
    );
    p.drive();
    assert_eq!(
        closed_with(&p.a_events),
        Some((CloseCode::AuthFailed, false))
    );
    assert_eq!(
        closed_with(&p.b_events),
        Some((CloseCode::AuthFailed, false))
    );
    assert!(p.a.peer().is_none() && p.b.peer().is_none());
    assert!(!p
        .a_events
        .iter()
        .chain(&p.b_events)
        .any(|e| matches!(e, ConnEvent::Authenticated(_))));
}

#[test]
fn a_replayed_proof_fails_in_a_new_session() {
    let (p, da, db) = Pair::connected();
    let recorded = p.a_to_b.clone();
    // An attacker replays A's recorded bytes to B in a new session over the
    // same binding (even that cannot help it: B's nonce is new).
    let binding = ChannelBinding::from_fingerprints("sha-256 AA", "sha-256 BB");
    let mut b2 = conn(&db, binding, 9, PeerConfig::default());
    b2.handle_bytes(0, &recorded);
    let events: Vec<_> = std::iter::from_fn(|| b2.poll_event()).collect();
    assert_eq!(closed_with(&events), Some((CloseCode::AuthFailed, false)));
    drop(da);
}

#[test]
fn same_binding_a_stranger_with_a_forged_certificate_fails() {
    let (da, db) = (device(), device());
    let mut forged = da.cert.clone();
    forged.identity = db.cert.identity; // claims B's identity
    let binding = ChannelBinding::derive("test", b"one channel");
    let a = Connection::new(
        0,
        PeerConfig::default(),
        da.key.duplicate(),
        forged,
        binding,
        [1; 32],
    );
    let mut p = Pair::new(a, conn(&db, binding, 2, PeerConfig::default()));
    p.drive();
    assert_eq!(
        closed_with(&p.b_events),
        Some((CloseCode::AuthFailed, false))
    );
}

#[test]
fn connecting_to_oneself_is_refused() {
    let d = device();
    let binding = ChannelBinding::derive("test", b"loop");
    let mut p = Pair::new(
        conn(&d, binding, 1, PeerConfig::default()),
        conn(&d, binding, 2, PeerConfig::default()),
    );
    p.drive();
    assert_eq!(
        closed_with(&p.a_events).map(|c| c.0),
        Some(CloseCode::SelfConnection)
    );
}

#[test]
fn no_common_version_closes_with_a_reason() {
    let d = device();
    let mut c = conn(
        &d,
        ChannelBinding::derive("t", b"x"),
        1,
        PeerConfig::default(),
    );
    let mut bytes = Vec::new();
    let hello = Control::Hello {
        versions: vec![7, 9],
        nonce: [5; 32],
        window: 1 << 20,
    };
    encode_message(0, &hello.encode(), &mut bytes);
    c.handle_bytes(1, &bytes);
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(
        closed_with(&events),
        Some((CloseCode::UnsupportedVersion, false))
    );
    // The Close message goes out after the Hello.
    let out = c.poll_transmit(1, 1 << 20).unwrap();
    assert!(out.windows(24).any(|w| w == b"peer.unsupported_version"));
}

#[test]
fn garbage_and_oversized_frames_close_only_that_connection() {
    let d = device();
    let binding = ChannelBinding::derive("t", b"x");
    let mut c = conn(&d, binding, 1, PeerConfig::default());
    c.handle_bytes(1, &[0xff, 0xff, 0, 0, 0, 1, 2, 3]);
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(
        closed_with(&events),
        Some((CloseCode::FrameTooLarge, false))
    );

    let mut c = conn(&d, binding, 1, PeerConfig::default());
    let mut junk = Vec::new();
    encode_message(0, b"\xfe\xfe\xfe not postcard", &mut junk);
    c.handle_bytes(1, &junk);
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(closed_with(&events), Some((CloseCode::Protocol, false)));
    // After closing it reads nothing more.
    c.handle_bytes(2, &junk);
    assert!(c.poll_event().is_none());
}

#[test]
fn space_data_before_authentication_is_a_protocol_error() {
    let d = device();
    let mut c = conn(
        &d,
        ChannelBinding::derive("t", b"x"),
        1,
        PeerConfig::default(),
    );
    let mut bytes = Vec::new();
    encode_message(4, b"space data", &mut bytes);
    c.handle_bytes(1, &bytes);
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(closed_with(&events), Some((CloseCode::Protocol, false)));
}

#[test]
fn offers_open_channels_only_for_spaces_both_hold() {
    let (mut p, _, _) = Pair::connected();
    let (s1, s2, s3) = (
        SpaceId::from_bytes([1; 16]),
        SpaceId::from_bytes([2; 16]),
        SpaceId::from_bytes([3; 16]),
    );
    p.a_events.clear();
    p.b_events.clear();
    assert_eq!(p.a.offer_many(&[s1, s2]).len(), 2);
    p.drive();
    let events = std::mem::take(&mut p.b_events);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ConnEvent::Offered { .. }))
            .count(),
        2
    );
    // B holds s2 and s3: only s2 matches; s1's tag means nothing to it.
    accept_matches(&mut p.b, &events, &[s2, s3]);
    p.drive();
    let (ch, space) = opened(&p.a_events)[0];
    assert_eq!(space, s2);
    assert_eq!(opened(&p.b_events), vec![(ch, s2)]);
    assert_eq!(p.a.channel_of(&s1), None);

    // Messages of any size go both ways, whole.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    p.a.send(ch, &big).unwrap();
    p.b.send(ch, b"pong").unwrap();
    p.drive();
    assert_eq!(messages(&p.b_events), vec![(ch, big)]);
    assert_eq!(messages(&p.a_events), vec![(ch, b"pong".to_vec())]);
}

#[test]
fn both_offering_one_space_opens_one_channel() {
    let (mut p, _, _) = Pair::connected();
    let s = SpaceId::from_bytes([7; 16]);
    p.a_events.clear();
    p.b_events.clear();
    p.a.offer(s).unwrap();
    p.b.offer(s).unwrap();
    p.drive();
    let (ea, eb) = (
        std::mem::take(&mut p.a_events),
        std::mem::take(&mut p.b_events),
    );
    accept_matches(&mut p.a, &ea, &[s]);
    accept_matches(&mut p.b, &eb, &[s]);
    p.drive();
    let (oa, ob) = (opened(&p.a_events), opened(&p.b_events));
    assert_eq!(oa.len(), 1, "{oa:?}");
    assert_eq!(oa, ob);
    assert!(closed_with(&p.a_events).is_none() && closed_with(&p.b_events).is_none());
    p.a.send(oa[0].0, b"x").unwrap();
    p.drive();
    assert_eq!(messages(&p.b_events).len(), 1);
}

#[test]
fn a_slow_receiver_throttles_the_sender_to_its_rate() {
    let (da, db) = (device(), device());
    let binding = ChannelBinding::derive("t", b"x");
    let slow = PeerConfig {
        window: 64 * 1024,
        receive_rate: 64 * 1024, // bytes per second
        ..PeerConfig::default()
    };
    let mut p = Pair::new(
        conn(&da, binding, 1, PeerConfig::default()),
        conn(&db, binding, 2, slow),
    );
    p.drive();
    let s = SpaceId::from_bytes([1; 16]);
    p.a.offer(s);
    p.drive();
    let events = std::mem::take(&mut p.b_events);
    accept_matches(&mut p.b, &events, &[s]);
    p.drive();
    let ch = p.a.channel_of(&s).unwrap();
    // A wants to send 1 MiB in 64 KiB messages, as fast as capacity allows.
    let mut sent = 0;
    let mut received = 0;
    for _second in 0..4 {
        while p.a.send_capacity() >= 16 * 1024 && sent < 1 << 20 {
            p.a.send(ch, &[0u8; 16 * 1024 - 64]).unwrap();
            sent += 16 * 1024;
        }
        p.drive();
        received += messages(&std::mem::take(&mut p.b_events)).len();
        p.advance(1000);
    }
    // The first window plus about the rate per second: far from 1 MiB.
    let bytes = received * 16 * 1024;
    assert!(bytes <= 64 * 1024 * 6, "{bytes} bytes in 4 s");
    assert!(bytes >= 64 * 1024 * 3, "{bytes} bytes in 4 s");
    // The sender's queue stays bounded by what it chose to produce.
    assert!(p.a.queued() <= 64 * 1024);
    assert!(closed_with(&p.a_events).is_none());
}

#[test]
fn sending_beyond_credit_is_a_flood() {
    let (mut p, _, _) = Pair::connected();
    let s = SpaceId::from_bytes([1; 16]);
    p.a.offer(s);
    p.drive();
    let events = std::mem::take(&mut p.b_events);
    accept_matches(&mut p.b, &events, &[s]);
    p.drive();
    let ch = p.a.channel_of(&s).unwrap();
    // Raw frames past the 4 MiB window, ignoring credit.
    let mut bytes = Vec::new();
    encode_message(ch.0, &vec![0u8; 5 << 20], &mut bytes);
    p.b.handle_bytes(p.now, &bytes);
    p.collect();
    assert_eq!(closed_with(&p.b_events), Some((CloseCode::Flood, false)));
}

#[test]
fn a_control_message_flood_is_closed() {
    let (mut p, _, _) = Pair::connected();
    let mut bytes = Vec::new();
    for seq in 0..2000 {
        encode_message(0, &Control::Ping { seq }.encode(), &mut bytes);
    }
    p.b.handle_bytes(p.now, &bytes);
    p.collect();
    assert_eq!(closed_with(&p.b_events), Some((CloseCode::Flood, false)));
}

#[test]
fn data_on_a_channel_never_opened_closes_the_connection() {
    let (mut p, _, _) = Pair::connected();
    let mut bytes = Vec::new();
    encode_message(40, b"what channel?", &mut bytes);
    p.b.handle_bytes(p.now, &bytes);
    p.collect();
    assert_eq!(closed_with(&p.b_events), Some((CloseCode::Protocol, false)));
}

#[test]
fn heartbeats_keep_an_idle_link_and_silence_closes_it() {
    let (mut p, _, _) = Pair::connected();
    // Idle for two minutes, both answering: pings keep it open.
    p.advance(120_000);
    assert!(closed_with(&p.a_events).is_none() && closed_with(&p.b_events).is_none());
    // B goes silent (its bytes are lost): A closes after the idle timeout.
    let start = p.now;
    loop {
        p.now += 1_000;
        p.a.handle_timeout(p.now);
        while p.a.poll_transmit(p.now, 1 << 20).is_some() {}
        p.collect();
        if closed_with(&p.a_events).is_some() || p.now > start + 100_000 {
            break;
        }
    }
    assert_eq!(closed_with(&p.a_events), Some((CloseCode::Timeout, false)));
    assert!(p.now - start >= PeerConfig::default().idle_timeout);
}

#[test]
fn a_handshake_that_stalls_times_out() {
    let d = device();
    let mut c = conn(
        &d,
        ChannelBinding::derive("t", b"x"),
        1,
        PeerConfig::default(),
    );
    let deadline = c.poll_timeout().unwrap();
    assert!(deadline <= PeerConfig::default().handshake_timeout);
    c.handle_timeout(deadline);
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(closed_with(&events), Some((CloseCode::Timeout, false)));
}

#[test]
fn a_close_reaches_the_other_side_with_its_code() {
    let (mut p, _, _) = Pair::connected();
    p.a.close(CloseReason::new(CloseCode::Normal, "shutting down"));
    p.drive();
    assert_eq!(closed_with(&p.a_events), Some((CloseCode::Normal, false)));
    assert_eq!(closed_with(&p.b_events), Some((CloseCode::Normal, true)));
}
