//! Signed replication of `model::Space` replicas through `sync::Replica`:
//! only changes signed by a device of a member whose role writes, at the
//! control-log point the bundle names, are applied by honest peers.

use automerge::Change;
use echo_core::identity::{
    ChangeRef, Credential, CredentialKind, DeviceCertificate, DeviceKey, IdentityKey,
    IdentityPublicKey, Issuer, Role,
};
use echo_core::model::{Heads, ObjectId, ObjectState, SpaceId, SpaceOptions, Value, WriteBatch};
use echo_core::store::{ChunkStore, CompactionPolicy, MemoryStore};
use echo_core::sync::{Outcome, Replica, SyncError, WireBundle};

const OPTIONS: SpaceOptions = SpaceOptions { shard_count: 4 };

struct Person {
    id: IdentityKey,
    dev: DeviceKey,
    cert: DeviceCertificate,
}

fn person() -> Person {
    let id = IdentityKey::generate().unwrap();
    let dev = DeviceKey::generate().unwrap();
    let cert = id
        .certify_device(&dev.request_authorization(id.public_key()))
        .unwrap();
    Person { id, dev, cert }
}

fn credentials(r: &Replica) -> Vec<Credential> {
    r.control().credentials().cloned().collect()
}

fn share_credentials(from: &Replica, to: &mut Replica) -> Outcome {
    let out = to.receive_credentials(credentials(from)).unwrap();
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    out.released
}

/// Every bundle `from` holds, with its changes.
fn all(from: &mut Replica) -> Vec<WireBundle> {
    (0..from.bundles().len())
        .map(|i| from.wire_bundle(i).unwrap())
        .collect()
}

fn relay(from: &mut Replica, to: &mut Replica) -> Outcome {
    let bundles = all(from);
    to.receive(bundles, None, 0)
}

/// Seals and hands out the new bundles with their changes.
fn seal(r: &mut Replica) -> Vec<WireBundle> {
    let idx = r.seal().unwrap();
    idx.into_iter().map(|i| r.wire_bundle(i).unwrap()).collect()
}

/// Whether `r`'s log verifies `b` as a peer would.
fn verifies(r: &Replica, b: &WireBundle) -> bool {
    let decoded: Vec<Vec<Change>> = b
        .changes
        .iter()
        .map(|run| {
            run.iter()
                .map(|c| Change::from_bytes(c.clone()).unwrap())
                .collect()
        })
        .collect();
    let actors: Vec<Vec<Vec<u8>>> = decoded
        .iter()
        .map(|run| {
            run.iter()
                .map(|c| c.actor_id().to_bytes().to_vec())
                .collect()
        })
        .collect();
    let refs: Vec<Vec<ChangeRef<'_>>> = decoded
        .iter()
        .zip(&actors)
        .map(|(run, a)| {
            run.iter()
                .zip(a)
                .map(|(c, actor)| ChangeRef {
                    hash: c.hash(),
                    actor,
                    seq: c.seq(),
                })
                .collect()
        })
        .collect();
    r.control().verify_bundle(&b.header, &refs).is_ok()
}

/// Object states (text refreshed) and heads.
fn state(r: &mut Replica) -> (Vec<ObjectState>, Heads) {
    let mut ids: Vec<ObjectId> = r.space().index().iter().map(|o| o.id).collect();
    ids.sort();
    let mut reads = r.read();
    let objects = ids
        .iter()
        .map(|id| reads.get(id).unwrap().unwrap().clone())
        .collect();
    (objects, reads.heads().unwrap())
}

fn note(text: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.create(
        "note",
        [
            ("title", Value::String(text.into())),
            ("body", Value::Text(text.into())),
        ],
    );
    b
}

/// A member joins: its replica is built from the owner's control log, and
/// its identity key authorizes its device in the space.
fn join(owner: &mut Replica, p: Person, role: Role) -> Replica {
    owner
        .issue(CredentialKind::Admit {
            member: p.id.public_key(),
            role,
        })
        .unwrap();
    let (mut r, out) =
        Replica::join(credentials(owner), p.id.public_key(), p.dev, OPTIONS).unwrap();
    assert!(out.refused.is_empty());
    r.issue_as(
        Issuer::Identity(&p.id),
        CredentialKind::AuthorizeDevice {
            certificate: p.cert,
        },
    )
    .unwrap();
    share_credentials(&r, owner);
    r
}

/// Owner, editor and reader replicas with the same control log.
fn three() -> (Replica, Replica, Replica) {
    let o = person();
    let mut owner =
        Replica::create(SpaceId::random(), o.id.public_key(), o.dev, o.cert, OPTIONS).unwrap();
    let mut editor = join(&mut owner, person(), Role::Editor);
    let mut reader = join(&mut owner, person(), Role::Reader);
    share_credentials(&owner, &mut editor);
    share_credentials(&owner, &mut reader);
    assert_eq!(owner.control().state(), editor.control().state());
    assert_eq!(owner.control().state(), reader.control().state());
    (owner, editor, reader)
}

/// Bundles a device makes when it bypasses `Replica::write`: the write
/// applied on its own replica without the check, sealed with its key.
///
/// The write is made on a copy of the replica (opened from a save of it),
/// as a device would with a patched engine: the replica itself stays as an
/// honest one would be.
/// `store` is where `r` is saved (the copy is opened from it).
fn bypass(r: &mut Replica, store: &mut MemoryStore, batch: WriteBatch) -> Vec<WireBundle> {
    if let Some(save) = r.prepare_save(&CompactionPolicy::ALWAYS, false).unwrap() {
        store.apply(save.batch).unwrap();
        r.save_done(save.receipt);
    }
    let mut entries = store
        .list_prefix(&echo_core::model::space_prefix(&r.id()))
        .unwrap();
    entries.extend(
        store
            .list_prefix(&echo_core::model::documents_prefix(&r.id()))
            .unwrap(),
    );
    let mut copy = Replica::open(r.id(), r.identity(), r.device().duplicate(), entries).unwrap();
    copy.write_unchecked(batch).unwrap();
    seal(&mut copy)
}

fn codes(out: &Outcome) -> Vec<&'static str> {
    out.rejected.iter().map(|r| r.code()).collect()
}

#[test]
fn owner_and_editor_writes_converge_everywhere() {
    let (mut owner, mut editor, mut reader) = three();
    owner.write(note("from the owner")).unwrap();
    let e = editor.write(note("from the editor")).unwrap();
    let sealed_owner = seal(&mut owner);
    let sealed_editor = seal(&mut editor);
    assert_eq!(sealed_owner.len(), 1);
    assert_eq!(sealed_editor.len(), 1);
    assert!(seal(&mut owner).is_empty(), "nothing new to seal");

    let out = owner.receive(sealed_editor, None, 0);
    assert_eq!(out.accepted, 1);
    assert_eq!(out.applied.changed, e.changed);

    // The owner relays the editor's bundle as-is to the reader.
    let out = relay(&mut owner, &mut reader);
    assert_eq!((out.accepted, out.rejected.len(), out.waiting), (2, 0, 0));
    let out = relay(&mut reader, &mut editor);
    assert_eq!((out.accepted, out.duplicates), (1, 1));
    // Everything again: only duplicates.
    let out = relay(&mut owner, &mut editor);
    assert_eq!((out.accepted, out.duplicates), (0, 2));

    let s = state(&mut owner);
    assert_eq!(s.0.len(), 2);
    assert_eq!(s, state(&mut editor));
    assert_eq!(s, state(&mut reader));
    for r in [&mut owner, &mut editor, &mut reader] {
        r.read().verify_index().unwrap();
        assert_eq!(r.bundles().len(), 2);
    }
}

#[test]
fn a_readers_writes_are_refused_locally_and_rejected_by_every_honest_peer() {
    let (mut owner, mut editor, mut reader) = three();
    owner.write(note("o")).unwrap();
    let b = seal(&mut owner);
    editor.receive(b.clone(), None, 0);
    reader.receive(b, None, 0);

    let before = state(&mut reader);
    let err = reader.write(note("r")).unwrap_err();
    assert_eq!(err.code(), "sync.write_refused");
    match &err {
        SyncError::WriteRefused { reason } => {
            assert_eq!(reason.code(), "identity.bundle.read_only")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state(&mut reader), before, "nothing applied");
    assert!(seal(&mut reader).is_empty());

    // A reader that bypasses the check.
    let forged = bypass(&mut reader, &mut MemoryStore::new(), note("sneaky"));
    assert!(!forged.is_empty());
    for honest in [&mut owner, &mut editor] {
        let before = state(honest);
        let kept = honest.bundles().len();
        let out = honest.receive(forged.clone(), None, 0);
        assert_eq!(out.accepted, 0);
        assert!(codes(&out)
            .iter()
            .all(|c| *c == "identity.bundle.read_only"));
        assert_eq!(out.rejected.len(), forged.len());
        assert_eq!(out.rejected[0].signer, reader.device().public_key());
        assert_eq!(state(honest), before, "no change");
        assert_eq!(honest.bundles().len(), kept, "not kept, not relayed");
        assert_eq!(out.waiting, 0);
    }
}

#[test]
fn a_revoked_device_keeps_its_earlier_changes_and_loses_the_later_ones() {
    let (mut owner, mut editor, mut reader) = three();
    let editor_dev = editor.device().public_key();
    let editor_id: IdentityPublicKey = editor.identity();
    editor.write(note("before")).unwrap();
    let early = seal(&mut editor);
    // The owner has the early bundle when it revokes: it is under the
    // revocation's watermark.
    owner.receive(early.clone(), None, 0);
    let revocation = owner
        .issue(CredentialKind::RevokeDevice {
            identity: editor_id,
            device: editor_dev,
        })
        .unwrap()
        .hash();
    share_credentials(&owner, &mut reader);

    // Made before the revocation: accepted, even though it arrives after.
    let out = reader.receive(early.clone(), None, 0);
    assert_eq!((out.accepted, out.rejected.len()), (1, 0));

    // After: refused locally; forced bundles name heads with the revocation.
    share_credentials(&owner, &mut editor);
    assert!(editor.control().heads().contains(&revocation));
    let err = editor.write(note("after")).unwrap_err();
    match err {
        SyncError::WriteRefused { reason } => {
            assert_eq!(reason.code(), "identity.bundle.device_revoked")
        }
        other => panic!("{other:?}"),
    }
    let late = bypass(&mut editor, &mut MemoryStore::new(), note("after, forced"));
    for r in [&mut owner, &mut reader] {
        let before = state(r);
        let out = r.receive(late.clone(), None, 0);
        assert_eq!(codes(&out), ["identity.bundle.device_revoked"]);
        assert_eq!(state(r), before);
        assert_eq!(before.0.len(), 1, "earlier changes stay applied");
    }
    assert_eq!(state(&mut owner), state(&mut reader));
}

#[test]
fn bundles_wait_for_the_credentials_admitting_their_signer() {
    let (mut owner, _editor, mut reader) = three();
    // A new editor, known to the owner only.
    let mut late = join(&mut owner, person(), Role::Editor);
    late.write(note("late 1")).unwrap();
    let mut bundles = seal(&mut late);
    late.write(note("late 2")).unwrap();
    bundles.extend(seal(&mut late));
    assert_eq!(bundles.len(), 2);

    let before = state(&mut reader);
    let out = reader.receive(bundles.clone(), None, 0);
    assert_eq!((out.accepted, out.rejected.len(), out.waiting), (0, 0, 2));
    assert_eq!(reader.pending(), 2);
    assert_eq!(state(&mut reader), before);
    // Offered again while waiting: duplicates.
    let out = reader.receive(bundles.clone(), None, 0);
    assert_eq!((out.duplicates, out.waiting), (2, 2));

    let released = share_credentials(&owner, &mut reader);
    assert_eq!((released.accepted, released.waiting), (2, 0));
    assert_eq!(released.applied.changed.len(), 2);
    assert_eq!(reader.pending(), 0);
    assert_eq!(reader.bundles().len(), 2, "released bundles are kept");
    owner.receive(bundles, None, 0);
    assert_eq!(state(&mut reader), state(&mut owner));
}

#[test]
fn a_full_pending_queue_drops_with_a_typed_error() {
    let (mut owner, _editor, reader) = three();
    let mut reader = {
        let creds = credentials(&reader);
        let p = person();
        let (r, _) = Replica::join(creds, p.id.public_key(), p.dev, OPTIONS).unwrap();
        r.with_pending_limits(echo_core::sync::PendingLimits {
            max_bundles: 1,
            ..Default::default()
        })
    };
    let mut late = join(&mut owner, person(), Role::Editor);
    late.write(note("a")).unwrap();
    let mut bundles = seal(&mut late);
    late.write(note("b")).unwrap();
    bundles.extend(seal(&mut late));
    let out = reader.receive(bundles, None, 0);
    assert_eq!(out.waiting, 1);
    assert_eq!(out.dropped.len(), 1);
    assert_eq!(out.dropped[0].error.code(), "identity.pending_changes_full");
    assert_eq!(out.dropped[0].signer, late.device().public_key());
}

#[test]
fn changes_of_other_devices_are_never_sealed_as_own() {
    let (mut owner, mut editor, _reader) = three();
    owner.write(note("o")).unwrap();
    let b = seal(&mut owner);
    editor.receive(b, None, 0);
    editor.write(note("e")).unwrap();
    let sealed = seal(&mut editor);
    let actor = editor.device().actor_id();
    for b in &sealed {
        for raw in b.changes.iter().flatten() {
            assert_eq!(*Change::from_bytes(raw.clone()).unwrap().actor_id(), actor);
        }
    }
    assert_eq!(owner.receive(sealed, None, 0).accepted, 1);
    assert_eq!(state(&mut owner), state(&mut editor));
}

mod property {
    //! Three replicas (owner + two members with random roles that change
    //! at random), random writes, bypassing writes by those who may not
    //! write, and random delivery of bundles and credentials: in the end
    //! every replica holds the same membership state and the same data,
    //! every honest write, and no bundle a verifier would refuse.

    use super::*;
    use echo_core::identity::CredentialHash;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const ROLES: [Role; 3] = [Role::Reader, Role::Editor, Role::Admin];

    #[derive(Clone, Debug)]
    enum Op {
        Write { replica: usize, n: i64 },
        Set { replica: usize, pick: usize, n: i64 },
        Seal { replica: usize },
        Deliver { to: usize, pick: usize },
        Relay { from: usize, to: usize },
        Credentials { from: usize, to: usize },
        ChangeRole { member: usize, role: usize },
        Revoke { member: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        let r = 0..3usize;
        prop_oneof![
            4 => (r.clone(), -9i64..9).prop_map(|(replica, n)| Op::Write { replica, n }),
            2 => (r.clone(), any::<usize>(), -9i64..9).prop_map(|(replica, pick, n)| Op::Set { replica, pick, n }),
            3 => r.clone().prop_map(|replica| Op::Seal { replica }),
            4 => (r.clone(), any::<usize>()).prop_map(|(to, pick)| Op::Deliver { to, pick }),
            1 => (r.clone(), r.clone()).prop_map(|(from, to)| Op::Relay { from, to }),
            3 => (r.clone(), r).prop_map(|(from, to)| Op::Credentials { from, to }),
            2 => (1..3usize, 0..3usize).prop_map(|(member, role)| Op::ChangeRole { member, role }),
            1 => (1..3usize).prop_map(|member| Op::Revoke { member }),
        ]
    }

    struct World {
        replicas: Vec<Replica>,
        /// Every bundle ever sealed or forged, in order.
        network: Vec<WireBundle>,
        forged: HashSet<[u8; 64]>,
        forged_objects: Vec<ObjectId>,
        /// Objects created by members allowed to write, with the writer.
        honest_objects: Vec<(usize, ObjectId)>,
        /// Members whose role or device was restricted at some point:
        /// their concurrent writes may be voided (docs/membership.md).
        restricted: HashSet<usize>,
        /// Where each replica is saved (forged writes are made on a copy).
        stores: Vec<MemoryStore>,
    }

    fn setup(roles: [usize; 2]) -> World {
        let o = person();
        let mut owner =
            Replica::create(SpaceId::random(), o.id.public_key(), o.dev, o.cert, OPTIONS).unwrap();
        let mut replicas = Vec::new();
        for role in roles {
            let p = person();
            owner
                .issue(CredentialKind::Admit {
                    member: p.id.public_key(),
                    role: ROLES[role],
                })
                .unwrap();
            let (mut r, _) =
                Replica::join(credentials(&owner), p.id.public_key(), p.dev, OPTIONS).unwrap();
            r.issue_as(
                Issuer::Identity(&p.id),
                CredentialKind::AuthorizeDevice {
                    certificate: p.cert,
                },
            )
            .unwrap();
            replicas.push(r);
        }
        replicas.insert(0, owner);
        World {
            replicas,
            network: Vec::new(),
            forged: HashSet::new(),
            forged_objects: Vec::new(),
            honest_objects: Vec::new(),
            restricted: HashSet::new(),
            stores: (0..3).map(|_| MemoryStore::new()).collect(),
        }
    }

    fn live_ids(r: &Replica) -> Vec<ObjectId> {
        let mut ids: Vec<ObjectId> = r
            .space()
            .index()
            .iter()
            .filter(|o| !o.deleted)
            .map(|o| o.id)
            .collect();
        ids.sort();
        ids
    }

    fn write(w: &mut World, replica: usize, batch: WriteBatch, created: Option<ObjectId>) {
        let r = &mut w.replicas[replica];
        if r.can_write() {
            r.write(batch).unwrap();
            w.honest_objects.extend(created.map(|id| (replica, id)));
        } else {
            let err = r.write(batch.clone()).unwrap_err();
            assert_eq!(err.code(), "sync.write_refused");
            for b in bypass(r, &mut w.stores[replica], batch) {
                w.forged.insert(b.header.signature.to_bytes());
                w.network.push(b);
            }
            w.forged_objects.extend(created);
        }
    }

    fn apply(w: &mut World, op: &Op) {
        match *op {
            Op::Write { replica, n } => {
                let mut b = WriteBatch::new();
                let id = b.create("note", [("n", Value::Int(n))]);
                write(w, replica, b, Some(id));
            }
            Op::Set { replica, pick, n } => {
                let ids = live_ids(&w.replicas[replica]);
                if ids.is_empty() {
                    return;
                }
                let mut b = WriteBatch::new();
                b.set(ids[pick % ids.len()], "n", Value::Int(n));
                write(w, replica, b, None);
            }
            Op::Seal { replica } => {
                // Every bundle of its own the replica holds (sealed now, or
                // earlier, before a control-log change).
                let r = &mut w.replicas[replica];
                r.seal().unwrap();
                let me = r.device().public_key();
                for i in 0..r.bundles().len() {
                    let b = &r.bundles()[i];
                    if b.signer == me && !w.network.iter().any(|n| n.header == *b) {
                        let wb = r.wire_bundle(i).unwrap();
                        w.network.push(wb);
                    }
                }
            }
            Op::Deliver { to, pick } => {
                if w.network.is_empty() {
                    return;
                }
                let b = w.network[pick % w.network.len()].clone();
                let out = w.replicas[to].receive(vec![b], None, 0);
                assert!(out.dropped.is_empty());
            }
            Op::Relay { from, to } => {
                if from != to {
                    let bundles = all(&mut w.replicas[from]);
                    w.replicas[to].receive(bundles, None, 0);
                }
            }
            Op::Credentials { from, to } => {
                if from != to {
                    let creds = credentials(&w.replicas[from]);
                    w.replicas[to].receive_credentials(creds).unwrap();
                }
            }
            Op::ChangeRole { member, role } => {
                if !ROLES[role].can_write() {
                    w.restricted.insert(member);
                }
                let identity = w.replicas[member].identity();
                w.replicas[0]
                    .issue(CredentialKind::ChangeRole {
                        member: identity,
                        role: ROLES[role],
                    })
                    .unwrap();
            }
            Op::Revoke { member } => {
                w.restricted.insert(member);
                let identity = w.replicas[member].identity();
                let device = w.replicas[member].device().public_key();
                // Refused when the owner has not seen the device yet.
                let _ = w.replicas[0].issue(CredentialKind::RevokeDevice { identity, device });
            }
        }
    }

    fn settle(w: &mut World) {
        for _ in 0..2 {
            for from in 0..3 {
                for to in 0..3 {
                    apply(w, &Op::Credentials { from, to });
                }
            }
            for r in 0..3 {
                apply(w, &Op::Seal { replica: r });
            }
            let network = w.network.clone();
            for r in &mut w.replicas {
                r.receive(network.clone(), None, 0);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn replicas_agree_and_no_unauthorized_write_is_accepted(
            roles in [0..3usize, 0..3usize],
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let mut w = setup(roles);
            for op in &ops {
                apply(&mut w, op);
            }
            settle(&mut w);

            let state = w.replicas[0].control().state().clone();
            let heads: Vec<CredentialHash> = w.replicas[0].control().heads();
            let data = super::state(&mut w.replicas[0]).0;
            for r in &mut w.replicas {
                prop_assert_eq!(r.control().state(), &state);
                prop_assert_eq!(r.control().heads(), heads.clone());
                prop_assert_eq!(r.pending(), 0);
                prop_assert_eq!(&super::state(r).0, &data);
                r.read().verify_index().unwrap();
                for b in all(r) {
                    prop_assert!(!w.forged.contains(&b.header.signature.to_bytes()));
                    prop_assert!(verifies(r, &b));
                }
                for id in &w.forged_objects {
                    prop_assert!(r.space().index().get(id).is_none(), "forged object {id} applied");
                }
                // A restriction voids the restricted writer's concurrent
                // writes and writes built on them (docs/membership.md);
                // without one, no honest write may be missing.
                if w.restricted.is_empty() {
                    for (_, id) in &w.honest_objects {
                        prop_assert!(r.space().index().get(id).is_some(), "honest object {id} missing");
                    }
                }
            }
        }
    }
}
