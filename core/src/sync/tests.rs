use super::*;
use crate::data::{ObjectState, SpaceId, Value};
use crate::identity::{CredentialKind, DeviceKey, IdentityKey, Issuer, Role};
use crate::model::{Space, SpaceOptions, WriteBatch};

const ONE_SHARD: SpaceOptions = SpaceOptions { shard_count: 1 };

fn owner_and_editor(options: SpaceOptions) -> (Replica, Replica) {
    let oid = IdentityKey::generate().unwrap();
    let odev = DeviceKey::generate().unwrap();
    let ocert = oid
        .certify_device(&odev.request_authorization(oid.public_key()))
        .unwrap();
    let mut owner =
        Replica::create(SpaceId::random(), oid.public_key(), odev, ocert, options).unwrap();
    let eid = IdentityKey::generate().unwrap();
    let edev = DeviceKey::generate().unwrap();
    let ecert = eid
        .certify_device(&edev.request_authorization(eid.public_key()))
        .unwrap();
    owner
        .issue(CredentialKind::Admit {
            member: eid.public_key(),
            role: Role::Editor,
        })
        .unwrap();
    let creds = owner.control().credentials().cloned().collect();
    let (mut editor, _) = Replica::join(creds, eid.public_key(), edev, options).unwrap();
    editor
        .issue_as(
            Issuer::Identity(&eid),
            CredentialKind::AuthorizeDevice { certificate: ecert },
        )
        .unwrap();
    let creds = editor.control().credentials().cloned().collect();
    owner.receive_credentials(creds).unwrap();
    (owner, editor)
}

fn note(n: i64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.create("note", [("n", Value::Int(n))]);
    b
}

fn objects(r: &mut Replica) -> Vec<ObjectState> {
    let mut v: Vec<ObjectState> = r.space().index().iter().cloned().collect();
    v.sort_by_key(|o| o.id);
    v
}

#[test]
fn shard_bundles_round_trip_and_garbage_is_an_error() {
    let (mut owner, _) = owner_and_editor(ONE_SHARD);
    owner.write(note(1)).unwrap();
    let sealed = owner.seal().unwrap();
    let bytes = sealed[0].to_bytes();
    let back = ShardBundle::from_bytes(&bytes).unwrap();
    assert_eq!(back, sealed[0]);
    assert!(back.binding_is_valid());
    assert_eq!(back.len(), 1);

    assert_eq!(
        ShardBundle::from_bytes(&[]).unwrap_err().code(),
        "sync.malformed_bundle"
    );
    let mut v2 = bytes.clone();
    v2[0] = 2;
    assert_eq!(
        ShardBundle::from_bytes(&v2).unwrap_err().code(),
        "sync.unsupported_version"
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(ShardBundle::from_bytes(&trailing).is_err());
    // Every truncation and some noise: errors, never panics.
    for n in 0..bytes.len() {
        assert!(ShardBundle::from_bytes(&bytes[..n]).is_err());
    }
    let mut x: u32 = 0x9e37_79b9;
    for len in [1usize, 7, 64, 300, 5000] {
        let noise: Vec<u8> = (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if i == 0 {
                    SHARD_BUNDLE_VERSION
                } else {
                    (x >> 24) as u8
                }
            })
            .collect();
        let _ = ShardBundle::from_bytes(&noise);
    }
    // Garbage through receive_bytes changes nothing.
    let before = objects(&mut owner);
    let (out, errors) = owner.receive_bytes(&[vec![1, 2, 3], vec![]]);
    assert_eq!(errors.len(), 2);
    assert_eq!(out.accepted + out.rejected.len(), 0);
    assert_eq!(objects(&mut owner), before);
}

#[test]
fn bundles_out_of_causal_order_are_merged_once_complete() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    editor.write(note(1)).unwrap();
    let first = editor.seal().unwrap();
    editor.write(note(2)).unwrap();
    let second = editor.seal().unwrap();
    let out = owner.receive(second);
    assert_eq!(out.accepted, 1);
    assert!(out.applied.changed.is_empty(), "waits inside Automerge");
    let out = owner.receive(first);
    assert_eq!(out.applied.changed.len(), 2);
    assert_eq!(objects(&mut owner), objects(&mut editor));
}

#[test]
fn a_tampered_copy_of_a_kept_bundle_is_rejected_not_a_duplicate() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    editor.write(note(1)).unwrap();
    let sealed = editor.seal().unwrap();
    owner.receive(sealed.clone());
    let mut copy = sealed[0].clone();
    copy.bundle.control_heads.clear();
    let out = owner.receive(vec![copy, sealed[0].clone()]);
    assert_eq!(out.duplicates, 1);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].code(), "identity.bundle.malformed");
    assert_eq!(owner.all_bundles().len(), 1);
}

#[test]
fn control_changes_seal_pending_writes_at_the_heads_they_were_made_at() {
    let (mut owner, _) = owner_and_editor(ONE_SHARD);
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
    let sealed = owner.seal().unwrap();
    assert_eq!(sealed.len(), 2);
    assert_eq!(sealed[0].bundle.control_heads, heads);
    assert_eq!(sealed[1].bundle.control_heads, owner.control().heads());
    assert_eq!(owner.all_bundles(), &sealed[..]);
}

#[test]
fn large_seals_are_split_into_bounded_bundles() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    for n in 0..(MAX_SEAL_CHANGES as i64 + 10) {
        editor.write(note(n)).unwrap();
    }
    let sealed = editor.seal().unwrap();
    assert_eq!(sealed.len(), 2);
    assert_eq!(sealed[0].len(), MAX_SEAL_CHANGES);
    assert_eq!(sealed[1].len(), 10);
    let out = owner.receive(sealed);
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
fn an_equivocating_writer_loses_only_the_conflicting_bundle() {
    let (mut owner, mut editor) = owner_and_editor(ONE_SHARD);
    // The same device signs two different changes with sequence number 1.
    let id = editor.id();
    let mut raw = Space::create(id, editor.device().actor_id(), ONE_SHARD).unwrap();
    raw.apply(note(99)).unwrap();
    let twin = raw.changes_since(&Default::default()).unwrap();
    let twin: Vec<automerge::Change> = twin[0]
        .changes
        .iter()
        .map(|b| automerge::Change::from_bytes(b.clone()).unwrap())
        .collect();
    let twin = editor
        .device()
        .sign_changes(id, editor.control().heads(), &twin)
        .unwrap();
    let twin = ShardBundle::bind(editor.device(), 0, twin);

    editor.write(note(1)).unwrap();
    let genuine = editor.seal().unwrap();
    owner.write(note(2)).unwrap();
    let own = owner.seal().unwrap();
    owner.receive(genuine);
    let mut editor_gets = own.clone();
    editor_gets.push(twin.clone());
    let out = editor.receive(editor_gets);
    assert_eq!(out.accepted, 1, "the owner's bundle");
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].code(), "sync.bundle.apply_failed");
    let out = owner.receive(vec![twin]);
    assert_eq!(out.rejected[0].code(), "sync.bundle.apply_failed");
    assert_eq!(objects(&mut owner), objects(&mut editor));
    owner.space_mut().verify_index().unwrap();
}

#[test]
fn a_replica_saves_and_reopens_with_its_log_and_bundles() {
    use crate::identity::ChaChaKeyWrap;
    use crate::model::space_prefix;
    use crate::store::{ChunkStore, CompactionPolicy, MemoryStore};

    let (mut owner, mut editor) = owner_and_editor(SpaceOptions { shard_count: 4 });
    editor.write(note(1)).unwrap();
    owner.receive(editor.seal().unwrap());
    owner.write(note(2)).unwrap();
    let policy = CompactionPolicy::default();
    let mut store = MemoryStore::new();
    let save = owner.prepare_save(&policy).unwrap().unwrap();
    assert!(matches!(
        owner.prepare_save(&policy),
        Err(SyncError::SaveInFlight)
    ));
    store.apply(save.batch).unwrap();
    owner.save_done(save.receipt);
    assert!(!owner.has_unsaved_changes());
    assert!(owner.prepare_save(&policy).unwrap().is_none());
    // The save sealed the owner's write; the next seal hands it out.
    assert_eq!(owner.seal().unwrap().len(), 1);
    assert_eq!(owner.all_bundles().len(), 2);

    // A failed save is offered again.
    owner.write(note(3)).unwrap();
    let failed = owner.prepare_save(&policy).unwrap().unwrap();
    let failed_keys = failed.batch.len();
    owner.save_failed(failed.receipt);
    let save = owner.prepare_save(&policy).unwrap().unwrap();
    assert_eq!(save.batch.len(), failed_keys);
    store.apply(save.batch).unwrap();
    owner.save_done(save.receipt);
    owner.seal().unwrap();

    let id = owner.id();
    let entries = store.list_prefix(&space_prefix(&id)).unwrap();
    assert!(entries.iter().any(|(k, _)| k.contains("/control/")));
    assert!(entries.iter().any(|(k, _)| k.contains("/bundles/")));

    // The same device, reopened: same log, data and bundles.
    let (wrap, _) = ChaChaKeyWrap::generate().unwrap();
    let sealed_key = owner.device().seal_with(&wrap).unwrap();
    let same_device = || DeviceKey::unseal_with(&sealed_key, &wrap).unwrap();
    let identity = owner.identity();
    let mut reopened = Replica::open(id, identity, same_device(), entries.clone()).unwrap();
    assert_eq!(objects(&mut reopened), objects(&mut owner));
    assert_eq!(reopened.control().heads(), owner.control().heads());
    assert_eq!(reopened.control().state(), owner.control().state());
    assert_eq!(reopened.all_bundles(), owner.all_bundles());
    assert!(!reopened.has_unsaved_changes());

    // Stored changes count as sealed: a new write seals alone.
    reopened.write(note(4)).unwrap();
    let sealed = reopened.seal().unwrap();
    assert_eq!(sealed.len(), 1);
    assert_eq!(sealed[0].len(), 1);
    // The stored bundles relay: a fresh peer gets the same data.
    editor.receive(reopened.all_bundles().to_vec());
    assert_eq!(objects(&mut editor), objects(&mut reopened));

    // Missing or damaged chunks are named.
    let err = Replica::open(id, identity, same_device(), Vec::new()).unwrap_err();
    assert_eq!(err.code(), "sync.corrupt_chunk");
    for part in ["/bundles/", "/control/"] {
        let mut damaged = entries.clone();
        let i = damaged.iter().position(|(k, _)| k.contains(part)).unwrap();
        let last = damaged[i].1.len() - 1;
        damaged[i].1[last] ^= 1;
        let err = Replica::open(id, identity, same_device(), damaged).unwrap_err();
        assert_eq!(err.code(), "sync.corrupt_chunk", "{part}");
    }
}
