//! Hostile and misbehaving peers against honest vaults: a man in the
//! middle, a replayed handshake, a reader that writes anyway, a removed
//! member and a revoked device that keep writing, a device restored from
//! an old backup (it equivocates), garbage, floods and silence. Each is
//! refused — with a stable code — without harming the honest links.

use echo_core::data::ObjectId;
use echo_core::data::SpaceId;
use echo_core::identity::{DeviceKey, IdentityKey};
use echo_core::model::{Value, WriteBatch};
use echo_core::peer::{ChannelBinding, Connection, PeerConfig};
use echo_core::rpc::{
    AdminRequest, AdminResponse, Request, Response, Role, WireFields, WireObject, WireValue,
};
use echo_core::vault::VaultEvent;
use echo_sim::scenario::{admin, allow, identity_of, join, note, notes, share, write};
use echo_sim::Sim;

const QUIET: u64 = 200;
const LIMIT: u64 = 60_000;

fn titles(objects: &[WireObject]) -> Vec<String> {
    let mut t: Vec<String> = objects
        .iter()
        .filter(|o| !o.deleted)
        .filter_map(|o| match o.fields.get("title") {
            Some(WireValue::String(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    t.sort();
    t
}

fn authenticated_on(sim: &Sim, n: usize, link: usize) -> bool {
    let id = sim.link_id(link);
    sim.nodes[n]
        .events
        .iter()
        .any(|e| matches!(e, VaultEvent::PeerAuthenticated { link, .. } if *link == id))
}

fn rejected_codes(sim: &Sim, n: usize) -> Vec<&'static str> {
    sim.nodes[n]
        .events
        .iter()
        .filter_map(|e| match e {
            VaultEvent::Rejected { codes, .. } => Some(codes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Node `n` writes a note without the role check, as a device that
/// misbehaves (or has not heard it lost the right) does with its own key.
fn write_anyway(sim: &mut Sim, n: usize, space: &str, title: &str) {
    let sid: SpaceId = space.parse().unwrap();
    let mut batch = WriteBatch::new();
    batch.create("note", [("title", Value::String(title.into()))]);
    let now = sim.now;
    sim.nodes[n]
        .vault_mut()
        .write_unchecked(&sid, batch)
        .expect("the space is open")
        .expect("the write applies locally");
    sim.nodes[n].drain(now);
}

#[test]
fn a_man_in_the_middle_is_refused_by_both_ends() {
    let mut sim = Sim::new(11, 2);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    write(&mut sim, 0, s.apps[0], note(&s.space, "secret"));
    // The relay terminates a secure channel with each side: the bindings
    // differ, so neither signature verifies for the other.
    let x = ChannelBinding::from_bytes([1; 32]);
    let y = ChannelBinding::from_bytes([2; 32]);
    let mitm = sim.link_with(0, 1, x, y).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    assert!(!sim.is_up(mitm));
    for n in [0, 1] {
        assert!(!authenticated_on(&sim, n, mitm), "node {n} authenticated");
    }
    assert!([0, 1]
        .iter()
        .any(|&n| sim.close_code(n, mitm) == Some("peer.auth_failed")));
    assert!(notes(&mut sim, 1, s.apps[1], &s.space).is_empty());
    // A direct channel works.
    sim.link(0, 1).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    assert_eq!(notes(&mut sim, 1, s.apps[1], &s.space).len(), 1);
}

#[test]
fn a_recorded_handshake_replayed_on_a_new_channel_is_refused() {
    let mut sim = Sim::new(12, 2);
    share(&mut sim, &[0, 1], Role::Editor);
    // The test relays an honest session between the two over one channel
    // binding, recording everything node 0 says.
    let binding = ChannelBinding::from_bytes([7; 32]);
    let to0 = sim.attach(0, binding).unwrap();
    let to1 = sim.attach(1, binding).unwrap();
    let mut recorded: Vec<Vec<u8>> = Vec::new();
    let end = sim.now + 5_000;
    while sim.now < end {
        for bytes in sim.take_from(to0) {
            recorded.push(bytes.clone());
            sim.inject(to1, bytes);
        }
        for bytes in sim.take_from(to1) {
            sim.inject(to0, bytes);
        }
        sim.step(end);
    }
    assert!(
        authenticated_on(&sim, 1, to1),
        "the relayed session is honest"
    );
    assert!(!recorded.is_empty());
    // Played again to node 1 — on another channel, then on one with the
    // same binding (a reused DTLS certificate): node 1's fresh nonce is in
    // what node 0 signed, so neither proves anything.
    for binding in [ChannelBinding::from_bytes([8; 32]), binding] {
        let replay = sim.attach(1, binding).unwrap();
        for bytes in &recorded {
            sim.inject(replay, bytes.clone());
        }
        sim.run_for(2_000);
        assert!(!authenticated_on(&sim, 1, replay));
        assert_eq!(sim.close_code(1, replay), Some("peer.auth_failed"));
    }
}

#[test]
fn a_readers_writes_are_refused_by_every_honest_peer() {
    let mut sim = Sim::new(13, 4);
    let s = share(&mut sim, &[0, 1, 3], Role::Editor);
    join(&mut sim, 0, 2, &s.space, Role::Reader);
    write(&mut sim, 0, s.apps[0], note(&s.space, "by the owner"));
    for n in [1, 2] {
        let l = sim.link(0, n).unwrap();
        assert!(sim.settle(QUIET, LIMIT));
        sim.cut(l);
    }
    // The reader signs a change with its own device key and offers it to
    // the editor, which then meets the owner.
    write_anyway(&mut sim, 2, &s.space, "by the reader");
    let l = sim.link(2, 1).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    sim.cut(l);
    assert!(
        rejected_codes(&sim, 1).contains(&"identity.bundle.read_only"),
        "{:?}",
        sim.nodes[1].events
    );
    sim.link(1, 0).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    for n in [0, 1] {
        assert_eq!(
            titles(&notes(&mut sim, n, s.apps[n], &s.space)),
            ["by the owner"],
            "node {n}"
        );
    }
    // Node 1 never passed it on.
    assert!(rejected_codes(&sim, 0).is_empty());
    // To a peer whose copy is empty the reader sends a snapshot: it holds
    // the refused bundle, so it is refused whole.
    let l = sim.link(2, 3).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    assert!(
        sim.nodes[3].events.iter().any(|e| matches!(
            e,
            VaultEvent::SyncStopped { code, reason, .. }
                if code == "sync.bad_snapshot" && reason.contains("identity.bundle.read_only")
        )),
        "{:?}",
        sim.nodes[3].events
    );
    assert!(notes(&mut sim, 3, s.apps[2], &s.space).is_empty());
    sim.cut(l);
    // The reader still reads what the others write.
    let reader = allow(&mut sim, 2, vec![s.space.clone()]);
    assert!(titles(&notes(&mut sim, 2, reader, &s.space)).contains(&"by the owner".to_owned()));
}

#[test]
fn a_removed_member_and_a_revoked_device_cannot_write_past_what_the_owner_saw() {
    // 0 owns; 1 and 4 edit; 2 will be removed, 3's device revoked.
    let mut sim = Sim::new(14, 5);
    let s = share(&mut sim, &[0, 1, 2, 3, 4], Role::Editor);
    for n in 1..5 {
        sim.link(0, n).unwrap();
    }
    assert!(sim.settle(QUIET, LIMIT));
    for n in [2, 3] {
        write(
            &mut sim,
            n,
            s.apps[n],
            note(&s.space, &format!("early {n}")),
        );
    }
    assert!(sim.settle(QUIET, LIMIT));
    // Everyone apart. 2 and 3 keep writing; 4, not yet told, takes their
    // writes and builds on one of them.
    for (link, ..) in sim.up_links() {
        sim.cut(link);
    }
    for n in [2, 3] {
        write(&mut sim, n, s.apps[n], note(&s.space, &format!("late {n}")));
        let l = sim.link(n, 4).unwrap();
        assert!(sim.settle(QUIET, LIMIT));
        sim.cut(l);
    }
    let on4 = notes(&mut sim, 4, s.apps[4], &s.space);
    let late2 = on4
        .iter()
        .find(|o| titles(std::slice::from_ref(o)) == ["late 2"])
        .expect("4 took 2's late write")
        .id
        .clone();
    write(
        &mut sim,
        4,
        s.apps[4],
        Request::SpliceText {
            space: s.space.clone(),
            id: late2,
            field: "body".into(),
            pos: 0,
            delete: 0,
            insert: "reply ".into(),
            context: None,
        },
    );
    write(&mut sim, 4, s.apps[4], note(&s.space, "own 4"));
    // The owner, having seen only the early writes, removes 2 and revokes
    // 3's device; 1 hears of it, then meets 4.
    let identity2 = identity_of(&mut sim, 2);
    let identity3 = identity_of(&mut sim, 3);
    let Ok(AdminResponse::Status { identity, .. }) = admin(&mut sim, 3, AdminRequest::Status {})
    else {
        panic!()
    };
    admin(
        &mut sim,
        0,
        AdminRequest::Remove {
            space: s.space.clone(),
            identity: identity2,
        },
    )
    .unwrap();
    admin(
        &mut sim,
        0,
        AdminRequest::RevokeDevice {
            space: s.space.clone(),
            identity: identity3,
            device: identity.device_key,
        },
    )
    .unwrap();
    sim.link(0, 1).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    sim.link(1, 4).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    let expected = ["early 2", "early 3", "own 4"];
    for n in [0, 1, 4] {
        assert_eq!(
            titles(&notes(&mut sim, n, s.apps[n], &s.space)),
            expected,
            "node {n}"
        );
    }
    // The control log goes first in every exchange, so 4 heard of the
    // removal before it could pass the late writes on; it voided them and
    // its own edit built on them. ("own 4" is in another shard than those:
    // a change in the same shard builds on them too and would have been
    // voided with them — the price docs/membership.md states.) Bundles
    // that do arrive past a watermark are refused as `backdated`
    // (core/src/sync/tests.rs).
    let voided: usize = sim.nodes[4]
        .events
        .iter()
        .filter_map(|e| match e {
            VaultEvent::Voided { changes, .. } => Some(*changes),
            _ => None,
        })
        .sum();
    assert!(voided >= 3, "{:?}", sim.nodes[4].events);
    // Both nodes that hear of the removal refuse the late writes from then
    // on, whoever relays them: 2 and 3 meet 1 directly.
    for n in [2, 3] {
        sim.link(n, 1);
    }
    assert!(sim.settle(QUIET, LIMIT));
    assert_eq!(titles(&notes(&mut sim, 1, s.apps[1], &s.space)), expected);
}

fn retitle(space: &str, id: &str, title: &str) -> Request {
    let mut set = WireFields::new();
    set.insert("title".into(), WireValue::String(title.into()));
    Request::UpdateObject {
        space: space.into(),
        id: id.into(),
        set,
        remove: vec![],
    }
}

#[test]
fn a_vault_restored_from_an_old_backup_equivocates_and_peers_keep_the_evidence() {
    let mut sim = Sim::new(15, 3);
    let s = share(&mut sim, &[0, 1, 2], Role::Editor);
    let Response::Written { created } = write(&mut sim, 0, s.apps[0], note(&s.space, "shared"))
    else {
        panic!()
    };
    let shared = created[0].clone();
    for n in [1, 2] {
        let l = sim.link(0, n).unwrap();
        assert!(sim.settle(QUIET, LIMIT));
        sim.cut(l);
    }
    let backup = sim.nodes[2].store.clone();
    // Node 2 edits the shared note — its first change in that note's
    // shard — and syncs it to 0.
    write(
        &mut sim,
        2,
        s.apps[2],
        retitle(&s.space, &shared, "before the restore"),
    );
    let l = sim.link(2, 0).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    sim.cut(l);
    // Its storage is put back to the backup: its next change there has the
    // same sequence number and another hash. It syncs that to 1.
    sim.crash(2);
    sim.nodes[2].store = backup;
    sim.restart(2);
    let app2 = allow(&mut sim, 2, vec![s.space.clone()]);
    write(
        &mut sim,
        2,
        app2,
        retitle(&s.space, &shared, "after the restore"),
    );
    let l = sim.link(2, 1).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    sim.cut(l);
    // 1 writes in another shard; then 0 and 1 meet. Each holds one of two
    // changes signed for the same place, refuses the other, and keeps both
    // signed headers as proof.
    let sid: SpaceId = s.space.parse().unwrap();
    let shard_of = |sim: &Sim, id: &ObjectId| {
        sim.nodes[1]
            .vault()
            .replica_of(&sid)
            .unwrap()
            .space()
            .shard_of(id)
    };
    let shared_shard = shard_of(&sim, &shared.parse().unwrap());
    let honest = std::iter::repeat_with(ObjectId::random)
        .find(|id| shard_of(&sim, id) != shared_shard)
        .unwrap();
    let Request::CreateObject { fields, .. } = note(&s.space, "honest 1") else {
        unreachable!()
    };
    write(
        &mut sim,
        1,
        s.apps[1],
        Request::CreateObject {
            space: s.space.clone(),
            id: Some(honest.to_string()),
            type_name: "note".into(),
            fields,
        },
    );
    sim.link(0, 1).unwrap();
    assert!(sim.settle(QUIET, LIMIT));
    for n in [0, 1] {
        let replica = sim.nodes[n].vault().replica_of(&sid).unwrap();
        assert_eq!(replica.equivocations().len(), 1, "node {n}");
        assert!(rejected_codes(&sim, n).contains(&"identity.bundle.equivocation"));
    }
    // Each keeps the version it saw first; the honest writer's note in
    // another shard reaches both.
    for (n, title) in [(0, "before the restore"), (1, "after the restore")] {
        let t = titles(&notes(&mut sim, n, s.apps[n], &s.space));
        assert_eq!(t, [title, "honest 1"], "node {n}");
    }
}

/// A peer the test plays with a real connection: a stranger with its own
/// identity, which authenticates and then misbehaves.
struct Stranger {
    conn: Connection,
    link: usize,
}

impl Stranger {
    fn attach(sim: &mut Sim, node: usize) -> Self {
        let identity = IdentityKey::from_seed(&[41; 32]);
        let device = DeviceKey::from_seed(&[42; 32]);
        let cert = identity
            .certify_device(&device.request_authorization(identity.public_key()))
            .unwrap();
        let binding = ChannelBinding::from_bytes([43; 32]);
        let link = sim.attach(node, binding).unwrap();
        let conn = Connection::new(
            sim.now,
            PeerConfig::default(),
            device,
            cert,
            binding,
            [44; 32],
        );
        Stranger { conn, link }
    }

    /// Moves bytes between its connection and the link.
    fn pump(&mut self, sim: &mut Sim) {
        let now = sim.now;
        for bytes in sim.take_from(self.link) {
            self.conn.handle_bytes(now, &bytes);
        }
        while let Some(bytes) = self.conn.poll_transmit(now, usize::MAX) {
            sim.inject(self.link, bytes);
        }
    }
}

#[test]
fn garbage_floods_and_silence_close_only_their_own_link() {
    let mut sim = Sim::new(16, 2);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    let honest = sim.link(0, 1).unwrap();
    assert!(sim.settle(QUIET, LIMIT));

    // Garbage: a frame header claiming 64 KiB; a well-formed frame on
    // the control channel holding no message.
    let oversized = sim.attach(0, ChannelBinding::from_bytes([3; 32])).unwrap();
    sim.inject(
        oversized,
        b"\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n".to_vec(),
    );
    let garbage = sim.attach(0, ChannelBinding::from_bytes([5; 32])).unwrap();
    let junk = b"\xfe\xfe\xfe not a message";
    let mut frame = vec![junk.len() as u8, 0, 0, 0, 1];
    frame.extend_from_slice(junk);
    sim.inject(garbage, frame);
    // Silence: attaches and never says a word.
    let silent = sim.attach(0, ChannelBinding::from_bytes([4; 32])).unwrap();
    // A flood: a stranger authenticates, then sends control messages far
    // faster than anyone needs — Ping frames written by hand as an
    // attacker would (length, channel 0, FIN, postcard `Ping { seq }`).
    let mut stranger = Stranger::attach(&mut sim, 0);
    let end = sim.now + 1_000;
    while sim.now < end {
        stranger.pump(&mut sim);
        sim.step(end);
    }
    assert!(authenticated_on(&sim, 0, stranger.link));
    let mut flood = Vec::new();
    for seq in 0..2_000u32 {
        let seq = seq % 100 + 1;
        flood.extend_from_slice(&[2, 0, 0, 0, 1, 5, seq as u8]);
    }
    sim.inject(stranger.link, flood);

    // Meanwhile the honest peers go on editing.
    write(&mut sim, 1, s.apps[1], note(&s.space, "during the attacks"));
    sim.run_for(15_000);
    assert_eq!(sim.close_code(0, oversized), Some("peer.frame_too_large"));
    assert_eq!(sim.close_code(0, garbage), Some("peer.protocol"));
    assert_eq!(sim.close_code(0, stranger.link), Some("peer.flood"));
    assert_eq!(sim.close_code(0, silent), Some("peer.timeout"));
    assert!(sim.is_up(honest));
    assert_eq!(
        titles(&notes(&mut sim, 0, s.apps[0], &s.space)),
        ["during the attacks"]
    );
}
