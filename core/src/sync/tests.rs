use super::*;
use crate::data::{ObjectState, SpaceId, Value};
use crate::identity::{CredentialKind, DeviceKey, IdentityKey, Issuer, Role, Run};
use crate::model::{documents_prefix, space_prefix, Space, SpaceOptions, WriteBatch};
use crate::store::{ChunkStore, CompactionPolicy, MemoryStore};

const ONE_SHARD: SpaceOptions = SpaceOptions { shard_count: 1 };
const FOUR: SpaceOptions = SpaceOptions { shard_count: 4 };

struct Person {
    id: IdentityKey,
    dev: DeviceKey,
    cert: crate::identity::DeviceCertificate,
}

/// Everything a space stored: its chunks and its documents' CRDT bytes.
fn stored(store: &MemoryStore, id: SpaceId) -> Vec<(String, Vec<u8>)> {
    let mut entries = store.list_prefix(&space_prefix(&id)).unwrap();
    entries.extend(store.list_prefix(&documents_prefix(&id)).unwrap());
    entries
}

fn person() -> Person {
    let id = IdentityKey::generate().unwrap();
    let dev = DeviceKey::generate().unwrap();
    let cert = id
        .certify_device(&dev.request_authorization(id.public_key()))
        .unwrap();
    Person { id, dev, cert }
}

fn admit(owner: &mut Replica, p: Person, role: Role, options: SpaceOptions) -> Replica {
    owner
        .issue(CredentialKind::Admit {
            member: p.id.public_key(),
            role,
        })
        .unwrap();
    let creds = owner.control().credentials().cloned().collect();
    let (mut r, _) = Replica::join(creds, p.id.public_key(), p.dev, options).unwrap();
    r.issue_as(
        Issuer::Identity(&p.id),
        CredentialKind::AuthorizeDevice {
            certificate: p.cert,
        },
    )
    .unwrap();
    let creds = r.control().credentials().cloned().collect();
    owner.receive_credentials(creds).unwrap();
    r
}

fn owner(options: SpaceOptions) -> Replica {
    let o = person();
    Replica::create(SpaceId::random(), o.id.public_key(), o.dev, o.cert, options).unwrap()
}

fn owner_and_editor(options: SpaceOptions) -> (Replica, Replica) {
    let mut o = owner(options);
    let e = admit(&mut o, person(), Role::Editor, options);
    (o, e)
}

fn note(n: i64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.create("note", [("n", Value::Int(n))]);
    b
}

fn objects(r: &Replica) -> Vec<ObjectState> {
    let mut v: Vec<ObjectState> = r.space().index().iter().cloned().collect();
    v.sort_by_key(|o| o.id);
    v
}

/// Seals and returns the new bundles with their changes.
fn sealed(r: &mut Replica) -> Vec<WireBundle> {
    let idx = r.seal().unwrap();
    idx.into_iter().map(|i| r.wire_bundle(i).unwrap()).collect()
}

fn codes(out: &Outcome) -> Vec<&'static str> {
    out.rejected.iter().map(|r| r.code()).collect()
}

#[test]
fn bundles_and_messages_round_trip_and_garbage_is_an_error() {
    let (mut owner, _) = owner_and_editor(FOUR);
    owner.write(note(1)).unwrap();
    owner.write(note(2)).unwrap();
    let b = sealed(&mut owner).remove(0);
    let bytes = b.header.to_bytes();
    assert_eq!(
        crate::identity::SignedChanges::from_bytes(&bytes).unwrap(),
        b.header
    );
    let m = SyncMessage::Bundles {
        bundles: vec![b.clone()],
    };
    assert_eq!(SyncMessage::decode(&m.encode()).unwrap(), m);
    let encoded = m.encode();
    for n in 0..encoded.len() {
        assert!(SyncMessage::decode(&encoded[..n]).is_err());
    }
    let mut trailing = encoded.clone();
    trailing.push(0);
    assert_eq!(
        SyncMessage::decode(&trailing).unwrap_err().code(),
        "sync.malformed_message"
    );
    let mut x: u32 = 0x9e37_79b9;
    for len in [1usize, 7, 64, 300, 5000] {
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        let _ = SyncMessage::decode(&noise);
        let _ = crate::identity::SignedChanges::from_bytes(&noise);
    }
}

#[test]
fn a_bundle_waits_for_the_changes_it_builds_on() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    editor.write(note(1)).unwrap();
    let first = sealed(&mut editor);
    editor.write(note(2)).unwrap();
    let second = sealed(&mut editor);
    let out = owner.receive(second, None, 0);
    assert_eq!((out.accepted, out.waiting), (0, 1));
    assert!(out.applied.changed.is_empty());
    let out = owner.receive(first, None, 0);
    assert_eq!((out.accepted, out.waiting), (2, 0));
    assert_eq!(out.applied.changed.len(), 2);
    assert_eq!(objects(&owner), objects(&editor));
}

#[test]
fn a_tampered_copy_of_a_kept_bundle_is_judged_not_taken_for_a_duplicate() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    editor.write(note(1)).unwrap();
    let b = sealed(&mut editor);
    owner.receive(b.clone(), None, 0);
    let mut copy = b[0].clone();
    copy.header.control_heads.clear();
    let out = owner.receive(vec![copy, b[0].clone()], None, 0);
    assert_eq!(out.duplicates, 1);
    assert_eq!(codes(&out), ["identity.bundle.malformed"]);
    assert_eq!(owner.bundles().len(), 1, "only the editor's");
}

#[test]
fn forged_tampered_moved_and_foreign_bundles_are_rejected() {
    let (mut owner, mut editor) = owner_and_editor(FOUR);
    editor.write(note(1)).unwrap();
    let first = sealed(&mut editor).remove(0);
    editor.write(note(2)).unwrap();
    let second = sealed(&mut editor).remove(0);
    let before = objects(&owner);

    let mut forged = first.clone();
    forged.header.signature = crate::identity::Signature::from_bytes([7; 64]);
    assert_eq!(
        codes(&owner.receive(vec![forged], None, 0)),
        ["identity.bundle.bad_signature"]
    );
    let mut tampered = first.clone();
    let last = tampered.changes[0][0].len() - 1;
    tampered.changes[0][0][last] ^= 1;
    let code = codes(&owner.receive(vec![tampered], None, 0))[0];
    assert!(
        code == "identity.bundle.malformed_change" || code == "identity.bundle.bad_signature",
        "{code}"
    );
    let mut swapped = first.clone();
    swapped.changes = second.changes.clone();
    let code = codes(&owner.receive(vec![swapped], None, 0))[0];
    assert!(
        code == "identity.bundle.bad_signature" || code == "identity.bundle.malformed",
        "{code}"
    );
    // Moved to another shard by a relay: the shard is signed.
    let mut moved = first.clone();
    moved.header.runs[0].shard = (moved.header.runs[0].shard + 1) % 4;
    let code = codes(&owner.receive(vec![moved], None, 0))[0];
    assert_eq!(code, "identity.bundle.bad_signature");
    let mut moved = first.clone();
    moved.header.runs[0].shard = 4;
    assert_eq!(
        codes(&owner.receive(vec![moved], None, 0)),
        ["sync.bundle.no_such_shard"]
    );
    // Replayed into another space.
    let mut other = self::owner(FOUR);
    assert_eq!(
        codes(&other.receive(vec![first.clone()], None, 0)),
        ["identity.bundle.wrong_space"]
    );
    assert_eq!(objects(&owner), before);
    let out = owner.receive(vec![first, second], None, 0);
    assert_eq!(out.accepted, 2);
}

#[test]
fn control_changes_seal_pending_writes_at_the_heads_they_were_made_at() {
    let (mut owner, _) = owner_and_editor(ONE_SHARD);
    let before = owner.bundles().len();
    owner.write(note(1)).unwrap();
    let heads = owner.control().heads();
    let other = IdentityKey::generate().unwrap();
    owner
        .issue(CredentialKind::Admit {
            member: other.public_key(),
            role: Role::Reader,
        })
        .unwrap();
    owner.write(note(2)).unwrap();
    owner.seal().unwrap();
    let b = &owner.bundles()[before..];
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].control_heads, heads);
    assert_eq!(b[1].control_heads, owner.control().heads());
}

#[test]
fn large_seals_are_split_into_bounded_bundles() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    for n in 0..(MAX_SEAL_CHANGES as i64 + 10) {
        editor.write(note(n)).unwrap();
    }
    let b = sealed(&mut editor);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].header.change_count(), MAX_SEAL_CHANGES);
    assert_eq!(b[1].header.change_count(), 10);
    let out = owner.receive(b, None, 0);
    assert_eq!(out.accepted, 2);
    assert_eq!(owner.space().len(), MAX_SEAL_CHANGES + 10);
}

#[test]
fn parts_must_belong_together() {
    let (owner, _) = owner_and_editor(ONE_SHARD);
    let dev = DeviceKey::generate().unwrap();
    let space = Space::create(SpaceId::random(), dev.actor_id(), ONE_SHARD).unwrap();
    let control =
        crate::identity::SpaceControl::from_genesis(owner.control().genesis().clone()).unwrap();
    let err = Replica::from_parts(space, control, owner.identity(), dev).unwrap_err();
    assert_eq!(err.code(), "sync.space_mismatch");
    let err = Replica::join(
        Vec::new(),
        owner.identity(),
        DeviceKey::generate().unwrap(),
        ONE_SHARD,
    )
    .unwrap_err();
    assert_eq!(err.code(), "sync.no_genesis");
}

#[test]
fn an_equivocating_writer_is_refused_and_the_evidence_kept() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    editor.write(note(1)).unwrap();
    let genuine = sealed(&mut editor);
    owner.receive(genuine.clone(), None, 0);
    // The same device signs another change as its change number 1.
    let mut twin_space = Space::create(editor.id(), editor.device().actor_id(), ONE_SHARD).unwrap();
    twin_space.apply(note(99)).unwrap();
    let raw = twin_space
        .changes_since(&Default::default())
        .unwrap()
        .remove(0)
        .changes
        .remove(0);
    let change = automerge::Change::from_bytes(raw.clone()).unwrap();
    assert_eq!(change.seq(), 1);
    let header = editor
        .device()
        .sign_changes(
            editor.id(),
            editor.control().heads(),
            vec![(
                Run {
                    shard: 0,
                    first_seq: 1,
                    count: 1,
                },
                vec![change.hash()],
            )],
        )
        .unwrap();
    let twin = WireBundle {
        header: header.clone(),
        changes: vec![vec![raw]],
    };
    let before = objects(&owner);
    let out = owner.receive(vec![twin], None, 0);
    assert_eq!(codes(&out), ["identity.bundle.equivocation"]);
    assert_eq!(objects(&owner), before);
    let e = &owner.equivocations()[0];
    assert_eq!((e.shard, e.seq), (0, 1));
    assert_eq!(e.held, genuine[0].header);
    assert_eq!(e.refused, header);
    assert_ne!(e.held_hash, e.refused_hash);
    // Kept in storage too.
    let mut store = MemoryStore::new();
    let save = owner
        .prepare_save(&CompactionPolicy::default(), false)
        .unwrap()
        .unwrap();
    store.apply(save.batch).unwrap();
    owner.save_done(save.receipt);
    let entries = stored(&store, owner.id());
    assert!(entries.iter().any(|(k, _)| k.contains("/evidence/")));
}

#[test]
fn a_replica_saves_and_reopens_with_everything() {
    let (mut owner, mut editor) = owner_and_editor(FOUR);
    editor.write(note(1)).unwrap();
    owner.receive(sealed(&mut editor), None, 0);
    owner.write(note(2)).unwrap();
    let peer = editor.device().public_key();
    let heads = owner.shard_heads(0).unwrap();
    owner
        .record_baseline(peer, vec![(0, heads.clone())])
        .unwrap();
    let policy = CompactionPolicy::default();
    let mut store = MemoryStore::new();
    // Saved without sealing: the owner's write stays unsealed until a peer
    // is to get it.
    let save = owner.prepare_save(&policy, false).unwrap().unwrap();
    assert!(matches!(
        owner.prepare_save(&policy, false),
        Err(SyncError::SaveInFlight)
    ));
    store.apply(save.batch).unwrap();
    owner.save_done(save.receipt);
    assert!(!owner.has_unsaved_changes());
    assert!(owner.prepare_save(&policy, false).unwrap().is_none());
    assert!(owner.has_unsealed());

    // A failed save is offered again, whole.
    owner.write(note(3)).unwrap();
    let failed = owner.prepare_save(&policy, true).unwrap().unwrap();
    let failed_keys = failed.batch.len();
    owner.save_failed(failed.receipt);
    let save = owner.prepare_save(&policy, true).unwrap().unwrap();
    assert_eq!(save.batch.len(), failed_keys);
    store.apply(save.batch).unwrap();
    owner.save_done(save.receipt);
    assert!(!owner.has_unsealed());

    let id = owner.id();
    let entries = stored(&store, id);
    for part in ["/control/", "/bundles/", "/sealed", "/peers/"] {
        assert!(entries.iter().any(|(k, _)| k.contains(part)), "{part}");
    }
    let (wrap, _) = crate::identity::ChaChaKeyWrap::generate().unwrap();
    let sealed_key = owner.device().seal_with(&wrap).unwrap();
    let same_device = || DeviceKey::unseal_with(&sealed_key, &wrap).unwrap();
    let identity = owner.identity();
    let mut reopened = Replica::open(id, identity, same_device(), entries.clone()).unwrap();
    assert_eq!(objects(&reopened), objects(&owner));
    assert_eq!(reopened.control().state(), owner.control().state());
    assert_eq!(reopened.bundles(), owner.bundles());
    assert_eq!(reopened.baseline(&peer, 0), heads);
    assert!(!reopened.has_unsaved_changes());
    assert!(!reopened.has_unsealed());
    // A new write seals alone, after what is covered.
    reopened.write(note(4)).unwrap();
    let b = sealed(&mut reopened);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].header.change_count(), 1);
    // The stored bundles relay with their changes: a peer gets the data.
    let all: Vec<WireBundle> = (0..reopened.bundles().len())
        .map(|i| reopened.wire_bundle(i).unwrap())
        .collect();
    editor.receive(all, None, 0);
    assert_eq!(objects(&editor), objects(&reopened));

    // Missing or damaged chunks are named.
    let err = Replica::open(id, identity, same_device(), Vec::new()).unwrap_err();
    assert_eq!(err.code(), "sync.corrupt_chunk");
    for part in ["/bundles/", "/control/", "/sealed", "/peers/"] {
        let mut damaged = entries.clone();
        let i = damaged.iter().position(|(k, _)| k.contains(part)).unwrap();
        let last = damaged[i].1.len() - 1;
        damaged[i].1[last] ^= 1;
        let err = Replica::open(id, identity, same_device(), damaged).unwrap_err();
        assert_eq!(err.code(), "sync.corrupt_chunk", "{part}");
    }
}

#[test]
fn writes_stored_unsealed_are_sealed_after_a_restart() {
    let mut owner = owner(FOUR);
    for n in 0..5 {
        owner.write(note(n)).unwrap();
    }
    let mut store = MemoryStore::new();
    let save = owner
        .prepare_save(&CompactionPolicy::default(), false)
        .unwrap()
        .unwrap();
    store.apply(save.batch).unwrap();
    owner.save_done(save.receipt);
    let id = owner.id();
    let (wrap, _) = crate::identity::ChaChaKeyWrap::generate().unwrap();
    let key = owner.device().seal_with(&wrap).unwrap();
    let entries = stored(&store, id);
    let mut reopened = Replica::open(
        id,
        owner.identity(),
        DeviceKey::unseal_with(&key, &wrap).unwrap(),
        entries,
    )
    .unwrap();
    assert!(reopened.has_unsealed());
    let b = sealed(&mut reopened);
    assert_eq!(b.iter().map(|b| b.header.change_count()).sum::<usize>(), 5);
    let mut fresh = Replica::join(
        owner.control().credentials().cloned().collect(),
        person().id.public_key(),
        DeviceKey::generate().unwrap(),
        FOUR,
    )
    .unwrap()
    .0;
    let n = b.len();
    assert!(
        b.iter().all(|b| b.header.runs.len() == 1),
        "one bundle per shard"
    );
    assert_eq!(fresh.receive(b, None, 0).accepted, n);
    assert_eq!(objects(&fresh), objects(&owner));
}

#[test]
fn a_snapshot_brings_a_new_member_the_whole_space() {
    let (mut owner, mut editor) = owner_and_editor(FOUR);
    for n in 0..20 {
        owner.write(note(n)).unwrap();
    }
    owner.seal().unwrap();
    editor.write(note(100)).unwrap();
    owner.receive(sealed(&mut editor), None, 0);
    let mut fresh = admit(&mut owner, person(), Role::Reader, FOUR);
    let snap = owner.snapshot().unwrap();
    assert!(!snap.shards.is_empty());
    let out = fresh.receive_snapshot(snap, None, 0).unwrap();
    assert_eq!(out.applied.changed.len(), 21);
    assert_eq!(objects(&fresh), objects(&owner));
    assert_eq!(fresh.bundles().len(), owner.bundles().len());
    fresh.read().verify_index().unwrap();
    // Stored as it came, and reopened from storage.
    let mut store = MemoryStore::new();
    let save = fresh
        .prepare_save(&CompactionPolicy::default(), false)
        .unwrap()
        .unwrap();
    store.apply(save.batch).unwrap();
    fresh.save_done(save.receipt);
    let entries = stored(&store, fresh.id());
    let key = fresh.device().duplicate();
    let reopened = Replica::open(fresh.id(), fresh.identity(), key, entries).unwrap();
    assert_eq!(objects(&reopened), objects(&owner));
}

#[test]
fn a_snapshot_with_an_unauthorized_change_is_refused_whole() {
    let mut owner = owner(FOUR);
    let mut reader = admit(&mut owner, person(), Role::Reader, FOUR);
    owner.write(note(1)).unwrap();
    owner.seal().unwrap();
    // The reader has the data and writes past its role.
    let snap = owner.snapshot().unwrap();
    reader.receive_snapshot(snap, None, 0).unwrap();
    reader.write_unchecked(note(2)).unwrap();
    reader.seal().unwrap();
    let bad = reader.snapshot().unwrap();
    let mut fresh = admit(&mut owner, person(), Role::Reader, FOUR);
    let err = fresh.receive_snapshot(bad.clone(), None, 0).unwrap_err();
    assert_eq!(err.code(), "sync.bad_snapshot");
    assert!(err.to_string().contains("read_only"), "{err}");
    assert!(objects(&fresh).is_empty());
    // A change no bundle covers: the reader's bundle left out.
    let mut uncovered = bad;
    let reader_dev = reader.device().public_key();
    uncovered.bundles.retain(|b| b.signer != reader_dev);
    let err = fresh.receive_snapshot(uncovered, None, 0).unwrap_err();
    assert!(err.to_string().contains("covered by no bundle"), "{err}");
    assert!(objects(&fresh).is_empty());
}

#[test]
fn a_snapshot_into_a_space_with_changes_goes_the_ordinary_way() {
    let (mut owner, mut editor) = owner_and_editor(FOUR);
    for n in 0..5 {
        owner.write(note(n)).unwrap();
    }
    owner.seal().unwrap();
    editor.write(note(50)).unwrap();
    let out = editor
        .receive_snapshot(owner.snapshot().unwrap(), None, 0)
        .unwrap();
    assert_eq!(out.applied.changed.len(), 5);
    assert_eq!(editor.space().len(), 6);
}

#[test]
fn what_a_peer_lacks_is_found_from_its_heads_or_its_baseline() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    owner.write(note(1)).unwrap();
    let all = sealed(&mut owner);
    editor.receive(all, None, 0);
    let common = owner.shard_heads(0).unwrap();
    owner
        .record_baseline(editor.device().public_key(), vec![(0, common.clone())])
        .unwrap();
    // Both change while apart.
    owner.write(note(2)).unwrap();
    owner.seal().unwrap();
    editor.write(note(3)).unwrap();
    editor.seal().unwrap();
    let theirs = editor.shard_heads(0).unwrap();
    let total = owner.bundles().len();
    // Their heads are unknown here: without a baseline, everything.
    assert_eq!(owner.bundles_missing(0, &theirs, &[]).unwrap().len(), total);
    // With the baseline, only what changed since.
    let missing = owner.bundles_missing(0, &theirs, &common).unwrap();
    assert_eq!(missing, vec![total - 1]);
    // Known heads: exact.
    let own = owner.shard_heads(0).unwrap();
    assert!(owner.bundles_missing(0, &own, &[]).unwrap().is_empty());
}

#[test]
fn pending_bundles_are_bounded_per_signer_and_expire() {
    let mut owner = owner(ONE_SHARD);
    // A stranger's bundles (a key the log never saw) wait for credentials
    // that never come: within a quota, then they expire.
    let mut other_space = self::owner(ONE_SHARD);
    let stranger_heads = other_space.control().heads();
    let mut r = Replica::join(
        owner.control().credentials().cloned().collect(),
        person().id.public_key(),
        DeviceKey::generate().unwrap(),
        ONE_SHARD,
    )
    .unwrap()
    .0
    .with_pending_limits(PendingLimits {
        max_bundles: 8,
        max_bytes: 1 << 20,
        per_signer_bundles: 4,
        per_signer_bytes: 1 << 20,
        ttl_ms: 1000,
    });
    let _ = &mut owner;
    let mut bundles = Vec::new();
    for n in 0..6 {
        other_space.write(note(n)).unwrap();
        let mut b = sealed(&mut other_space).remove(0);
        // Re-signed for r's space, naming heads r does not know.
        let hashes: Vec<_> = b.changes[0]
            .iter()
            .map(|c| automerge::Change::from_bytes(c.clone()).unwrap().hash())
            .collect();
        b.header = other_space
            .device()
            .sign_changes(
                r.id(),
                stranger_heads.clone(),
                vec![(b.header.runs[0], hashes)],
            )
            .unwrap();
        bundles.push(b);
    }
    let out = r.receive(bundles, None, 10);
    // Strangers share a quarter of 8: two wait, the rest are dropped.
    assert_eq!(out.waiting, 2);
    assert_eq!(out.dropped.len(), 4);
    assert_eq!(out.dropped[0].error.code(), "identity.pending_changes_full");
    r.set_clock(2000);
    assert_eq!(r.pending(), 0, "expired");
}

#[test]
fn a_removed_member_cannot_write_on_by_naming_old_control_heads() {
    let mut owner = owner(ONE_SHARD);
    let mut editor = admit(&mut owner, person(), Role::Editor, ONE_SHARD);
    editor.write(note(1)).unwrap();
    owner.receive(sealed(&mut editor), None, 0);
    let old_heads = editor.control().heads();
    let removal = owner
        .issue(CredentialKind::Remove {
            member: editor.identity(),
        })
        .unwrap();
    assert_eq!(
        removal
            .watermark()
            .max_seq(&editor.device().public_key(), 0),
        1
    );
    // The removed editor writes on, never taking the removal in, and signs
    // with the heads from before it.
    editor.write(note(2)).unwrap();
    let late = sealed(&mut editor).remove(0);
    assert_eq!(late.header.control_heads, old_heads);
    let before = objects(&owner);
    let out = owner.receive(vec![late.clone()], None, 0);
    assert_eq!(codes(&out), ["identity.bundle.backdated"]);
    assert_eq!(objects(&owner), before);
    // A third replica that learns the removal refuses it too.
    let mut third = admit(&mut owner, person(), Role::Reader, ONE_SHARD);
    let all: Vec<WireBundle> = (0..owner.bundles().len())
        .map(|i| owner.wire_bundle(i).unwrap())
        .collect();
    third.receive(all, None, 0);
    assert_eq!(
        codes(&third.receive(vec![late], None, 0)),
        ["identity.bundle.backdated"]
    );
}

#[test]
fn control_heads_never_go_backwards_along_dependencies() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    let old_heads = editor.control().heads();
    // The owner writes after a control change; the editor builds on it.
    owner
        .issue(CredentialKind::Admit {
            member: IdentityKey::generate().unwrap().public_key(),
            role: Role::Reader,
        })
        .unwrap();
    owner.write(note(1)).unwrap();
    let b = sealed(&mut owner);
    editor
        .receive_credentials(owner.control().credentials().cloned().collect())
        .unwrap();
    editor.receive(b, None, 0);
    let mut set = WriteBatch::new();
    set.set(objects(&editor)[0].id, "n", Value::Int(2));
    editor.write(set).unwrap();
    let honest = sealed(&mut editor).remove(0);
    // Re-signed naming the older heads: refused.
    let hashes: Vec<_> = honest.changes[0]
        .iter()
        .map(|c| automerge::Change::from_bytes(c.clone()).unwrap().hash())
        .collect();
    let regressed = WireBundle {
        header: editor
            .device()
            .sign_changes(
                editor.id(),
                old_heads,
                vec![(honest.header.runs[0], hashes)],
            )
            .unwrap(),
        changes: honest.changes.clone(),
    };
    assert_eq!(
        codes(&owner.receive(vec![regressed], None, 0)),
        ["identity.bundle.control_regressed"]
    );
    assert_eq!(owner.receive(vec![honest], None, 0).accepted, 1);
}

#[test]
fn a_restriction_voids_accepted_writes_past_its_watermark_everywhere_alike() {
    let mut owner = owner(ONE_SHARD);
    let mut editor = admit(&mut owner, person(), Role::Editor, ONE_SHARD);
    let mut early = admit(&mut owner, person(), Role::Reader, ONE_SHARD);
    let all = |r: &mut Replica| -> Vec<WireBundle> {
        (0..r.bundles().len())
            .map(|i| r.wire_bundle(i).unwrap())
            .collect()
    };
    editor.write(note(1)).unwrap();
    let first = sealed(&mut editor);
    owner.receive(first.clone(), None, 0);
    early.receive(first, None, 0);
    // A member who will build on what `early` has.
    let mut builder = admit(&mut owner, person(), Role::Editor, ONE_SHARD);
    early
        .receive_credentials(owner.control().credentials().cloned().collect())
        .unwrap();
    // The owner demotes the editor (watermark: change 1), while the editor,
    // not knowing, writes change 2; `early` accepts it before hearing of
    // the demotion, and `builder` builds on it.
    owner
        .issue(CredentialKind::ChangeRole {
            member: editor.identity(),
            role: Role::Reader,
        })
        .unwrap();
    editor.write(note(2)).unwrap();
    let concurrent = sealed(&mut editor);
    assert_eq!(early.receive(concurrent.clone(), None, 0).accepted, 1);
    let mut set = WriteBatch::new();
    set.set(
        objects(&early)
            .iter()
            .find(|o| o.fields["n"] == Value::Int(2))
            .unwrap()
            .id,
        "n",
        Value::Int(3),
    );
    builder
        .receive_credentials(early.control().credentials().cloned().collect())
        .unwrap();
    builder.receive(all(&mut early), None, 0);
    assert_eq!(builder.space().len(), 2);
    builder.write(set).unwrap();
    let dependent = sealed(&mut builder);
    early.receive(dependent.clone(), None, 0);
    assert_eq!(early.space().len(), 2);
    // The demotion reaches `early`: the concurrent write and the write built
    // on it leave; the first write stays.
    let before_gen = early.generation();
    let out = early
        .receive_credentials(owner.control().credentials().cloned().collect())
        .unwrap();
    assert_eq!(out.voided.bundles.len(), 2);
    assert!(early.generation() > before_gen);
    assert_eq!(early.space().len(), 1);
    early.read().verify_index().unwrap();
    // The owner, who knew first, refuses both; both end alike.
    assert_eq!(
        codes(&owner.receive(concurrent, None, 0)),
        ["identity.bundle.backdated"]
    );
    let out = owner.receive(dependent, None, 0);
    assert_eq!(out.accepted, 0);
    assert_eq!(objects(&owner), objects(&early));
    // Storage holds the rewritten list.
    let mut store = MemoryStore::new();
    let save = early
        .prepare_save(&CompactionPolicy::default(), false)
        .unwrap()
        .unwrap();
    store.apply(save.batch).unwrap();
    early.save_done(save.receipt);
    let entries = stored(&store, early.id());
    let key = early.device().duplicate();
    let reopened = Replica::open(early.id(), early.identity(), key, entries).unwrap();
    assert_eq!(objects(&reopened), objects(&early));
    assert_eq!(reopened.bundles(), early.bundles());
}
