//! A space stored by an earlier build opens, and moves to the current
//! storage format as it is saved.
//!
//! `fixtures/space-format-2.json` was written by the build at `2a7a2ad`
//! (storage format 2: each shard chunk holds its CRDT bytes beside the
//! object states), by a one-off program against that build's public API:
//! a space of 4 shards with the property `name`, 24 objects (`note` and
//! `task`, an integer, a boolean and a text field) created in one batch,
//! then 6 rounds each updating a fifth of them (an integer set, a text
//! spliced) and, in round 4, one deleted — saved after each batch with at
//! most 4 incremental chunks per shard, so it holds snapshots and
//! increments. It lists every stored entry (hex) and the states and
//! properties the space answered then.

use automerge::ActorId;
use echo_core::data::{ObjectId, ObjectState, SpaceId, Value};
use echo_core::model::{documents_prefix, space_prefix, Space, WriteBatch};
use echo_core::store::{Batch, ChunkStore, CompactionPolicy, MemoryStore};
use std::collections::BTreeMap;

struct Fixture {
    space: SpaceId,
    store: MemoryStore,
    states: Vec<ObjectState>,
    properties: BTreeMap<String, Value>,
}

fn fixture() -> Fixture {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/space-format-2.json")).unwrap();
    let space: SpaceId = json["space"].as_str().unwrap().parse().unwrap();
    let mut batch = Batch::new();
    for entry in json["entries"].as_array().unwrap() {
        let key = entry[0].as_str().unwrap();
        let hex = entry[1].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        batch.put(key, bytes);
    }
    let mut store = MemoryStore::default();
    store.apply(batch).unwrap();
    let states: Vec<Option<ObjectState>> = serde_json::from_value(json["states"].clone()).unwrap();
    Fixture {
        space,
        store,
        states: states.into_iter().map(Option::unwrap).collect(),
        properties: serde_json::from_value(json["properties"].clone()).unwrap(),
    }
}

/// The writing device of the fixture, after the upgrade.
fn actor() -> ActorId {
    ActorId::from([7u8; 32].as_slice())
}

fn all_stored(store: &MemoryStore, id: SpaceId) -> Vec<(String, Vec<u8>)> {
    let mut entries = store.list_prefix(&space_prefix(&id)).unwrap();
    entries.extend(store.list_prefix(&documents_prefix(&id)).unwrap());
    entries
}

fn save(space: &mut Space, store: &mut MemoryStore, policy: &CompactionPolicy) {
    let pending = space.prepare_save(policy).unwrap().unwrap();
    store.apply(pending.batch).unwrap();
    space.save_done(pending.receipt);
}

fn states(space: &mut Space, ids: &[ObjectId]) -> Vec<ObjectState> {
    ids.iter()
        .map(|id| space.get(id).unwrap().unwrap().clone())
        .collect()
}

/// The format version in a stored value's frame (`store::frame`).
fn version(bytes: &[u8]) -> u8 {
    bytes[4]
}

#[test]
fn a_space_of_format_2_opens_as_it_was_and_moves_to_format_3_as_it_is_saved() {
    let Fixture {
        space: id,
        mut store,
        states: expected,
        properties,
    } = fixture();
    let ids: Vec<ObjectId> = expected.iter().map(|s| s.id).collect();
    let old_keys: Vec<String> = store.list_keys(&space_prefix(&id)).unwrap();
    assert!(
        old_keys.iter().any(|k| k.contains("/i/")) && old_keys.iter().any(|k| k.ends_with("/snap"))
    );

    // Opened by this build: the same states, properties and history.
    let mut s = Space::open(id, actor(), all_stored(&store, id)).unwrap();
    assert!(!s.documents_pending(), "format 2 holds its CRDT bytes");
    assert_eq!(states(&mut s, &ids), expected);
    assert_eq!(s.properties(), &properties);
    s.verify_index().unwrap();

    // Written to and saved: the new chunk is of format 3, its CRDT bytes
    // stored apart (small ones stay inside by default: kept apart here),
    // beside the chunks of format 2.
    let mut b = WriteBatch::new();
    b.splice_text(ids[0], "body", 0, 0, "upgraded ");
    b.set(ids[2], "n", Value::Int(-1));
    s.apply(b).unwrap();
    let apart = CompactionPolicy {
        max_inline_crdt_bytes: 0,
        ..CompactionPolicy::default()
    };
    save(&mut s, &mut store, &apart);
    let after_write = states(&mut s, &ids);
    let new_keys: Vec<String> = store
        .list_keys(&space_prefix(&id))
        .unwrap()
        .into_iter()
        .filter(|k| !old_keys.contains(k))
        .collect();
    assert!(!new_keys.is_empty());
    for key in &new_keys {
        assert_eq!(version(&store.get(key).unwrap().unwrap()), 3, "{key}");
        let crdt = format!("crdt/{}", key.strip_prefix("space/").unwrap());
        assert!(store.get(&crdt).unwrap().is_some(), "{crdt}");
    }

    // Opened from the chunks alone: reads answer, the documents follow.
    let mut r = Space::open(id, actor(), store.list_prefix(&space_prefix(&id)).unwrap()).unwrap();
    assert!(r.documents_pending());
    assert_eq!(states(&mut r, &ids), after_write);
    r.attach_documents(store.list_prefix(&documents_prefix(&id)).unwrap())
        .unwrap();
    r.verify_index().unwrap();
    assert_eq!(r.properties(), &properties);

    // Every shard compacted (small: the CRDT bytes inside again): nothing
    // of format 2 is left, nothing apart, and what was there is.
    let mut b = WriteBatch::new();
    for id in &ids {
        if *id != ids[1] {
            b.set(*id, "seen", Value::Bool(true));
        }
    }
    r.apply(b).unwrap();
    save(&mut r, &mut store, &CompactionPolicy::ALWAYS);
    let compacted = states(&mut r, &ids);
    assert!(store
        .list_prefix(&documents_prefix(&id))
        .unwrap()
        .is_empty());
    for (key, bytes) in all_stored(&store, id) {
        assert!(!key.contains("/i/"), "increments folded away: {key}");
        assert_eq!(version(&bytes), 3, "{key}");
    }
    let mut again = Space::open(id, actor(), all_stored(&store, id)).unwrap();
    assert_eq!(states(&mut again, &ids), compacted);
    assert_eq!(again.properties(), &properties);
    again.verify_index().unwrap();
    for (before, after) in expected.iter().zip(&compacted) {
        assert_eq!(before.type_name, after.type_name);
        assert_eq!(before.deleted, after.deleted);
    }
}
