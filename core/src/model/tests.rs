//! Behaviour of spaces: writes, batches, text, references, history, merge,
//! persistence.

use std::collections::BTreeMap;

use automerge::ActorId;

use super::*;
use crate::query::{Compare, Filter, Query};
use crate::store::{ChunkStore, CompactionPolicy, MemoryStore};

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 32].as_slice())
}

fn space() -> Space {
    Space::create(SpaceId::random(), actor(1), SpaceOptions { shard_count: 4 }).unwrap()
}

fn fields(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn all_kinds() -> Vec<(String, Value)> {
    let mut map = BTreeMap::new();
    map.insert(
        "nested".to_string(),
        Value::List(vec![Value::Int(1), Value::String("x".into())]),
    );
    fields(&[
        ("null", Value::Null),
        ("bool", Value::Bool(true)),
        ("int", Value::Int(-42)),
        ("float", Value::Float(2.5)),
        ("string", Value::String("héllo".into())),
        ("bytes", Value::Bytes(vec![0, 1, 255])),
        (
            "list",
            Value::List(vec![
                Value::Bool(false),
                Value::Ref(Reference::local(ObjectId::random())),
            ]),
        ),
        ("map", Value::Map(map)),
        (
            "ref",
            Value::Ref(Reference::remote(SpaceId::random(), ObjectId::random())),
        ),
        ("text", Value::Text("hello world".into())),
    ])
}

fn save_into(space: &mut Space, store: &mut MemoryStore) {
    save_with(space, store, &CompactionPolicy::default());
}

fn save_with(space: &mut Space, store: &mut MemoryStore, policy: &CompactionPolicy) {
    if let Some(pending) = space.prepare_save(policy).unwrap() {
        store.apply(pending.batch).unwrap();
        space.save_done(pending.receipt);
    }
}

/// Everything a space stored: its chunks and its documents' CRDT bytes.
fn stored(store: &MemoryStore, id: SpaceId) -> Vec<(String, Vec<u8>)> {
    let mut entries = store.list_prefix(&space_prefix(&id)).unwrap();
    entries.extend(store.list_prefix(&documents_prefix(&id)).unwrap());
    entries
}

/// Keeps no CRDT bytes inside a chunk: every chunk has them apart.
const APART: CompactionPolicy = CompactionPolicy {
    max_inline_crdt_bytes: 0,
    ..CompactionPolicy::NEVER
};

fn reopen(space: &Space, store: &MemoryStore, actor_byte: u8) -> Space {
    Space::open(space.id(), actor(actor_byte), stored(store, space.id())).unwrap()
}

fn by_type(t: &str) -> Query {
    Query {
        filter: Filter::Type(t.into()),
        ..Query::default()
    }
}

#[test]
fn every_value_kind_round_trips_through_the_document() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let id = b.create("thing", all_kinds());
    s.apply(b).unwrap();
    let state = s.get(&id).unwrap().unwrap().clone();
    assert_eq!(state.type_name, "thing");
    assert_eq!(state.fields.len(), 10);
    assert_eq!(
        state.field("text"),
        Some(&Value::Text("hello world".into()))
    );
    s.verify_index().unwrap();
}

#[test]
fn a_batch_with_one_bad_write_changes_nothing() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let a = b.create("task", fields(&[("title", "a".into())]));
    s.apply(b).unwrap();
    let heads = s.heads().unwrap();

    let mut b = WriteBatch::new();
    b.set(a, "title", "changed");
    let new = b.create("task", fields(&[("title", "new".into())]));
    b.set(ObjectId::random(), "title", "nobody"); // does not exist
    let err = s.apply(b).unwrap_err();
    assert_eq!(err.code(), "model.not_found");

    assert_eq!(
        s.heads().unwrap(),
        heads,
        "no change may reach the documents"
    );
    assert_eq!(
        s.get(&a).unwrap().unwrap().field("title"),
        Some(&"a".into())
    );
    assert!(s.get(&new).unwrap().is_none());
    s.verify_index().unwrap();
}

#[test]
fn invalid_writes_get_typed_errors() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let a = b.create(
        "task",
        fields(&[("n", Value::Int(1)), ("note", Value::Text("abc".into()))]),
    );
    s.apply(b).unwrap();

    let cases: Vec<(WriteBatch, &str)> = vec![
        (
            {
                let mut b = WriteBatch::new();
                b.create_with_id(a, "task", fields(&[]));
                b
            },
            "model.already_exists",
        ),
        (
            {
                let mut b = WriteBatch::new();
                b.create("", fields(&[]));
                b
            },
            "model.invalid_type_name",
        ),
        (
            {
                let mut b = WriteBatch::new();
                b.set(a, "", 1i64);
                b
            },
            "model.invalid_field_name",
        ),
        (
            {
                let mut b = WriteBatch::new();
                b.set(a, "\u{0}ref", 1i64);
                b
            },
            "model.invalid_field_name",
        ),
        (
            {
                let mut m = BTreeMap::new();
                m.insert("\u{0}ref".to_string(), Value::Null);
                let mut b = WriteBatch::new();
                b.set(a, "m", Value::Map(m));
                b
            },
            "model.invalid_field_name",
        ),
        (
            {
                let mut b = WriteBatch::new();
                b.splice_text(a, "n", 0, 0, "x");
                b
            },
            "model.not_text",
        ),
        (
            {
                let mut b = WriteBatch::new();
                b.splice_text(a, "nope", 0, 0, "x");
                b
            },
            "model.not_text",
        ),
        (
            {
                let mut b = WriteBatch::new();
                b.splice_text(a, "note", 2, 2, "x");
                b
            },
            "model.text_range",
        ),
        (
            {
                let mut b = WriteBatch::new();
                b.splice_text(a, "note", usize::MAX, 1, "");
                b
            },
            "model.text_range",
        ),
    ];
    for (batch, code) in cases {
        assert_eq!(s.apply(batch).unwrap_err().code(), code);
    }
    s.verify_index().unwrap();
}

#[test]
fn a_malformed_id_is_a_model_error_with_the_id_code_and_message() {
    let e = ModelError::from("x".parse::<SpaceId>().unwrap_err());
    assert_eq!(e.code(), "model.invalid_id");
    assert_eq!(
        e.to_string(),
        "invalid space id \"x\": expected 26 lower-case base32hex characters"
    );
    assert!(matches!(e, ModelError::InvalidId(_)));
}

#[test]
fn deleted_objects_stay_readable_and_refuse_writes() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let target = b.create("list", fields(&[("name", "inbox".into())]));
    let task = b.create(
        "task",
        fields(&[("list", Value::Ref(Reference::local(target)))]),
    );
    s.apply(b).unwrap();

    let mut b = WriteBatch::new();
    b.delete(target);
    s.apply(b).unwrap();

    let reference = *s
        .get(&task)
        .unwrap()
        .unwrap()
        .field("list")
        .unwrap()
        .as_ref()
        .unwrap();
    assert!(matches!(s.resolve(&reference).unwrap(), Resolved::Deleted(o) if o.id == target));
    assert!(matches!(
        s.resolve(&Reference::local(ObjectId::random())).unwrap(),
        Resolved::Missing
    ));
    let other = SpaceId::random();
    assert_eq!(
        s.resolve(&Reference::remote(other, target)).unwrap(),
        Resolved::OtherSpace(other)
    );

    assert_eq!(s.query(&by_type("list")).unwrap(), Vec::<ObjectId>::new());
    let mut with_deleted = by_type("list");
    with_deleted.include_deleted = true;
    assert_eq!(s.query(&with_deleted).unwrap(), vec![target]);

    let mut b = WriteBatch::new();
    b.set(target, "name", "x");
    assert_eq!(s.apply(b).unwrap_err().code(), "model.deleted");
}

#[test]
fn text_splices_within_one_batch_track_lengths() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let id = b.create("doc", fields(&[("body", Value::Text(String::new()))]));
    b.splice_text(id, "body", 0, 0, "hello");
    b.splice_text(id, "body", 5, 0, " world");
    s.apply(b).unwrap();
    assert_eq!(s.text(&id, "body").unwrap(), "hello world");

    // A later batch: lengths come from the document.
    let mut b = WriteBatch::new();
    b.splice_text(id, "body", 0, 5, "héllo");
    b.splice_text(id, "body", 11, 0, "!");
    s.apply(b).unwrap();
    assert_eq!(s.text(&id, "body").unwrap(), "héllo world!");

    // The second splice is out of range only because of the first one.
    let mut b = WriteBatch::new();
    b.splice_text(id, "body", 0, 12, "");
    b.splice_text(id, "body", 1, 0, "x");
    assert_eq!(s.apply(b).unwrap_err().code(), "model.text_range");
    assert_eq!(s.text(&id, "body").unwrap(), "héllo world!");
    s.verify_index().unwrap();
}

#[test]
fn text_contains_sees_spliced_text() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let id = b.create("doc", fields(&[("body", Value::Text("abc".into()))]));
    s.apply(b).unwrap();
    let mut b = WriteBatch::new();
    b.splice_text(id, "body", 3, 0, " Needle");
    s.apply(b).unwrap();
    let q = Query {
        filter: Filter::TextContains {
            field: "body".into(),
            needle: "NEEDLE".into(),
        },
        ..Query::default()
    };
    assert_eq!(s.query(&q).unwrap(), vec![id]);
}

#[test]
fn cursors_follow_their_character_through_concurrent_edits() {
    let mut a = space();
    let mut b_space = Space::create(a.id(), actor(2), SpaceOptions { shard_count: 4 }).unwrap();
    let mut b = WriteBatch::new();
    let id = b.create(
        "doc",
        fields(&[("body", Value::Text("hello world".into()))]),
    );
    a.apply(b).unwrap();
    sync(&mut a, &mut b_space);

    let cursor = a.text_cursor(&id, "body", 6).unwrap(); // at 'w'
    let mut b = WriteBatch::new();
    b.splice_text(id, "body", 0, 0, ">> ");
    b_space.apply(b).unwrap();
    sync(&mut b_space, &mut a);
    assert_eq!(a.text(&id, "body").unwrap(), ">> hello world");
    assert_eq!(a.text_cursor_position(&id, "body", &cursor).unwrap(), 9);
    assert_eq!(
        a.text_cursor_position(&id, "body", "garbage")
            .unwrap_err()
            .code(),
        "model.invalid_cursor"
    );
    assert_eq!(
        a.text_cursor(&id, "body", 99).unwrap_err().code(),
        "model.text_range"
    );
}

#[test]
fn reads_at_earlier_heads() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let a = b.create("task", fields(&[("done", false.into())]));
    s.apply(b).unwrap();
    let before = s.heads().unwrap();

    let mut b = WriteBatch::new();
    b.set(a, "done", true);
    let later = b.create("task", fields(&[("done", false.into())]));
    s.apply(b).unwrap();

    assert_eq!(
        s.get_at(&a, &before).unwrap().unwrap().field("done"),
        Some(&Value::Bool(false))
    );
    assert_eq!(s.get_at(&later, &before).unwrap(), None);
    let open = Query {
        filter: Filter::Field {
            field: "done".into(),
            op: Compare::Eq,
            value: false.into(),
        },
        ..Query::default()
    };
    assert_eq!(s.query_at(&open, &before).unwrap(), vec![a]);
    assert_eq!(s.query(&open).unwrap(), vec![later]);

    let foreign = Heads {
        entries: vec![(0, automerge::ChangeHash([7; 32]))],
    };
    assert_eq!(
        s.get_at(&a, &foreign).unwrap_err().code(),
        "model.unknown_heads"
    );
    let bad_shard = Heads {
        entries: vec![(99, automerge::ChangeHash([7; 32]))],
    };
    assert_eq!(
        s.query_at(&open, &bad_shard).unwrap_err().code(),
        "model.unknown_heads"
    );
}

fn sync(from: &mut Space, to: &mut Space) {
    let heads = to.heads().unwrap();
    let changes = from.changes_since(&heads).unwrap();
    to.apply_changes(changes).unwrap();
}

#[test]
fn concurrent_writers_converge() {
    let id = SpaceId::random();
    let mut a = Space::create(id, actor(1), SpaceOptions { shard_count: 4 }).unwrap();
    let mut b = Space::create(id, actor(2), SpaceOptions { shard_count: 4 }).unwrap();
    let mut batch = WriteBatch::new();
    let task = batch.create(
        "task",
        fields(&[("title", "t".into()), ("note", Value::Text("ab".into()))]),
    );
    a.apply(batch).unwrap();
    a.set_property("name", "Home".into()).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(b.properties().get("name"), Some(&Value::from("Home")));

    let mut x = WriteBatch::new();
    x.set(task, "title", "from a")
        .splice_text(task, "note", 0, 0, "A");
    a.apply(x).unwrap();
    let mut y = WriteBatch::new();
    y.set(task, "done", true)
        .splice_text(task, "note", 2, 0, "B");
    b.apply(y).unwrap();

    sync(&mut a, &mut b);
    sync(&mut b, &mut a);
    let sa = a.get(&task).unwrap().unwrap().clone();
    let sb = b.get(&task).unwrap().unwrap().clone();
    assert_eq!(sa, sb);
    assert_eq!(sa.field("note"), Some(&Value::Text("AabB".into())));
    assert_eq!(sa.field("done"), Some(&Value::Bool(true)));
    assert_eq!(sa.field("title"), Some(&Value::from("from a")));
    a.verify_index().unwrap();
    b.verify_index().unwrap();
}

#[test]
fn garbage_changes_are_rejected_before_anything_is_applied() {
    let mut s = space();
    let mut b = WriteBatch::new();
    b.create("task", fields(&[]));
    s.apply(b).unwrap();
    let heads = s.heads().unwrap();
    let err = s
        .apply_changes(vec![ShardChanges {
            shard: 0,
            changes: vec![vec![1, 2, 3]],
        }])
        .unwrap_err();
    assert_eq!(err.code(), "model.corrupt");
    let err = s
        .apply_changes(vec![ShardChanges {
            shard: 4,
            changes: vec![],
        }])
        .unwrap_err();
    assert_eq!(err.code(), "model.no_such_shard");
    assert_eq!(s.heads().unwrap(), heads);
}

#[test]
fn live_queries_report_local_and_merged_changes() {
    let id = SpaceId::random();
    let mut a = Space::create(id, actor(1), SpaceOptions { shard_count: 4 }).unwrap();
    let mut b = Space::create(id, actor(2), SpaceOptions { shard_count: 4 }).unwrap();
    let (sub, initial) = a.subscribe(by_type("task")).unwrap();
    assert!(initial.is_empty());

    let mut batch = WriteBatch::new();
    let local = batch.create("task", fields(&[]));
    batch.create("note", fields(&[]));
    a.apply(batch).unwrap();
    let Some(SpaceEvent::Live(diff)) = a.poll_event() else {
        panic!("expected a live diff")
    };
    assert_eq!(diff.subscription, sub);
    assert_eq!(diff.added, vec![local]);
    assert!(a.poll_event().is_none());

    let mut batch = WriteBatch::new();
    let remote = batch.create("task", fields(&[]));
    b.apply(batch).unwrap();
    sync(&mut b, &mut a);
    let Some(SpaceEvent::Live(diff)) = a.poll_event() else {
        panic!("expected a live diff")
    };
    assert_eq!(diff.added, vec![remote]);

    let mut batch = WriteBatch::new();
    batch.delete(local);
    a.apply(batch).unwrap();
    let Some(SpaceEvent::Live(diff)) = a.poll_event() else {
        panic!("expected a live diff")
    };
    assert_eq!(diff.removed, vec![local]);

    assert!(a.unsubscribe(sub));
    let mut batch = WriteBatch::new();
    batch.create("task", fields(&[]));
    a.apply(batch).unwrap();
    assert!(a.poll_event().is_none());
}

#[test]
fn a_saved_space_opens_without_loading_documents() {
    let mut store = MemoryStore::default();
    let mut s = space();
    s.set_property("name", "Work".into()).unwrap();
    let mut ids = Vec::new();
    for round in 0..3 {
        let mut b = WriteBatch::new();
        for i in 0..50 {
            ids.push(b.create(
                format!("type{}", i % 3),
                fields(&[("n", Value::Int(round * 100 + i))]),
            ));
        }
        s.apply(b).unwrap();
        save_into(&mut s, &mut store);
    }
    let mut b = WriteBatch::new();
    let doc = b.create("doc", fields(&[("body", Value::Text("x".into()))]));
    b.splice_text(doc, "body", 1, 0, "yz");
    s.apply(b).unwrap();
    let mut b = WriteBatch::new();
    b.splice_text(doc, "body", 0, 1, "X");
    s.apply(b).unwrap();
    save_into(&mut s, &mut store);
    assert!(!s.has_unsaved_changes());

    let mut r = reopen(&s, &store, 1);
    assert_eq!(r.len(), 151);
    assert_eq!(r.properties().get("name"), Some(&Value::from("Work")));
    assert_eq!(
        r.query(&by_type("type1")).unwrap(),
        s.query(&by_type("type1")).unwrap()
    );
    assert_eq!(r.text(&doc, "body").unwrap(), "Xyz");
    assert!(
        r.shards.iter().all(|sh| !sh.is_loaded()),
        "opening and querying must not parse the CRDT"
    );

    // Writing after reopen loads the shard and continues its history.
    let mut b = WriteBatch::new();
    b.set(ids[0], "n", -1i64);
    r.apply(b).unwrap();
    r.verify_index().unwrap();
    save_into(&mut r, &mut store);
    let mut again = reopen(&s, &store, 1);
    assert_eq!(
        again.get(&ids[0]).unwrap().unwrap().field("n"),
        Some(&Value::Int(-1))
    );
    again.verify_index().unwrap();
}

#[test]
fn compaction_replaces_increments_with_a_snapshot() {
    let mut store = MemoryStore::default();
    let mut s =
        Space::create(SpaceId::random(), actor(1), SpaceOptions { shard_count: 1 }).unwrap();
    let policy = CompactionPolicy {
        max_incremental_chunks: 3,
        max_incremental_bytes: usize::MAX,
        ..CompactionPolicy::default()
    };
    for i in 0..10 {
        let mut b = WriteBatch::new();
        b.create("t", fields(&[("i", Value::Int(i))]));
        s.apply(b).unwrap();
        save_with(&mut s, &mut store, &policy);
    }
    let keys = store.list_keys(&space_prefix(&s.id())).unwrap();
    let increments = keys.iter().filter(|k| k.contains("/i/")).count();
    assert!(keys.iter().any(|k| k.ends_with("/snap")), "{keys:?}");
    assert!(
        increments < 3,
        "increments must be folded into the snapshot: {keys:?}"
    );
    let mut r = reopen(&s, &store, 1);
    assert_eq!(r.len(), 10);
    r.verify_index().unwrap();
}

#[test]
fn a_failed_save_is_offered_again() {
    let mut store = MemoryStore::default();
    let mut s = space();
    let mut b = WriteBatch::new();
    let a = b.create("t", fields(&[]));
    s.apply(b).unwrap();
    let pending = s
        .prepare_save(&CompactionPolicy::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        s.prepare_save(&CompactionPolicy::default())
            .unwrap_err()
            .code(),
        "model.save_in_flight"
    );
    s.save_failed(pending.receipt); // the host's write failed: nothing stored
    assert!(s.has_unsaved_changes());
    save_into(&mut s, &mut store);
    let mut r = reopen(&s, &store, 1);
    assert!(r.get(&a).unwrap().is_some());
    r.verify_index().unwrap();
}

#[test]
fn a_corrupt_chunk_is_reported_by_key_and_other_spaces_still_open() {
    let mut store = MemoryStore::default();
    let mut damaged = space();
    let mut healthy = space();
    for s in [&mut damaged, &mut healthy] {
        let mut b = WriteBatch::new();
        b.create("t", fields(&[("x", Value::Int(1))]));
        s.apply(b).unwrap();
        save_into(s, &mut store);
    }
    let key = store
        .list_keys(&space_prefix(&damaged.id()))
        .unwrap()
        .into_iter()
        .find(|k| k.contains("/s/"))
        .unwrap();
    let mut bytes = store.get(&key).unwrap().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let mut batch = crate::store::Batch::new();
    batch.put(key.clone(), bytes);
    store.apply(batch).unwrap();

    let err = Space::open(damaged.id(), actor(1), stored(&store, damaged.id()))
        .err()
        .expect("corruption must be detected");
    assert_eq!(err.code(), "model.corrupt_chunk");
    let message = err.to_string();
    assert!(
        message.contains(&key) && message.contains(&damaged.id().to_string()),
        "{message}"
    );

    let mut ok = reopen(&healthy, &store, 1);
    assert_eq!(ok.len(), 1);
    ok.verify_index().unwrap();
}

#[test]
fn a_space_opened_without_its_documents_answers_reads_and_refuses_writes_until_they_are_read() {
    let mut store = MemoryStore::default();
    let mut s = space();
    let mut b = WriteBatch::new();
    let a = b.create("t", fields(&[("x", Value::Int(1))]));
    s.apply(b).unwrap();
    save_with(&mut s, &mut store, &APART);
    // A second chunk, so the documents are a snapshot and an increment.
    let mut b = WriteBatch::new();
    b.set(a, "x", Value::Int(2));
    s.apply(b).unwrap();
    save_with(&mut s, &mut store, &APART);
    let documents = store.list_prefix(&documents_prefix(&s.id())).unwrap();
    assert_eq!(documents.len(), 2, "one CRDT value per chunk");

    let entries = store.list_prefix(&space_prefix(&s.id())).unwrap();
    let mut r = Space::open(s.id(), actor(1), entries).unwrap();
    assert!(r.documents_pending());
    assert_eq!(
        r.get(&a).unwrap().unwrap().fields["x"],
        Value::Int(2),
        "current state is read without the documents"
    );
    assert_eq!(r.query(&by_type("t")).unwrap().len(), 1);
    let mut b = WriteBatch::new();
    b.set(a, "x", Value::Int(3));
    assert_eq!(
        r.apply(b).unwrap_err().code(),
        "model.documents_not_read",
        "a write waits for the documents"
    );
    assert_eq!(r.get(&a).unwrap().unwrap().fields["x"], Value::Int(2));

    // One of the two values only: the space names the one missing.
    let err = r.attach_documents(documents[..1].to_vec()).unwrap_err();
    assert_eq!(err.code(), "model.corrupt_chunk");
    assert!(err.to_string().contains(&documents[1].0), "{err}");
    r.attach_documents(documents.clone()).unwrap();
    assert!(!r.documents_pending());
    let mut b = WriteBatch::new();
    b.set(a, "x", Value::Int(3));
    r.apply(b).unwrap();
    r.verify_index().unwrap();
    assert_eq!(r.get(&a).unwrap().unwrap().fields["x"], Value::Int(3));
}

#[test]
fn small_crdt_bytes_stay_inside_their_chunk_and_large_ones_go_apart() {
    let mut store = MemoryStore::default();
    let mut s = space();
    let documents =
        |store: &MemoryStore, s: &Space| store.list_prefix(&documents_prefix(&s.id())).unwrap();
    let mut b = WriteBatch::new();
    b.create("t", fields(&[("x", Value::Int(1))]));
    s.apply(b).unwrap();
    save_into(&mut s, &mut store);
    assert!(
        documents(&store, &s).is_empty(),
        "a small change is one value"
    );

    // 40,000 characters no run-length encoding shortens: far over 1 KiB.
    let mut seed = 7u32;
    let text: String = (0..40_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'a' + (seed >> 16) as u8 % 26)
        })
        .collect();
    let mut b = WriteBatch::new();
    let long = b.create("t", fields(&[("body", Value::Text(text.clone()))]));
    s.apply(b).unwrap();
    save_into(&mut s, &mut store);
    assert_eq!(documents(&store, &s).len(), 1, "its CRDT bytes apart");
    let entries = store.list_prefix(&space_prefix(&s.id())).unwrap();
    let mut r = Space::open(s.id(), actor(1), entries).unwrap();
    assert!(r.documents_pending());
    assert_eq!(r.text(&long, "body").unwrap(), text);
    r.attach_documents(documents(&store, &s)).unwrap();
    r.verify_index().unwrap();

    // Compacted with everything inside: the value apart goes too.
    let mut b = WriteBatch::new();
    b.set(long, "seen", Value::Bool(true));
    r.apply(b).unwrap();
    let inside = CompactionPolicy {
        max_inline_crdt_bytes: usize::MAX,
        ..CompactionPolicy::ALWAYS
    };
    save_with(&mut r, &mut store, &inside);
    assert!(documents(&store, &r).is_empty());
    let mut again = reopen(&r, &store, 1);
    assert!(!again.documents_pending());
    assert_eq!(again.text(&long, "body").unwrap(), text);
    again.verify_index().unwrap();
}

#[test]
fn damaged_crdt_bytes_stored_apart_are_reported_by_key() {
    let mut store = MemoryStore::default();
    let mut s = space();
    let mut b = WriteBatch::new();
    b.create("t", fields(&[("x", Value::Int(1))]));
    s.apply(b).unwrap();
    save_with(&mut s, &mut store, &APART);
    let (key, mut bytes) = store
        .list_prefix(&documents_prefix(&s.id()))
        .unwrap()
        .remove(0);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let mut batch = crate::store::Batch::new();
    batch.put(key.clone(), bytes);
    store.apply(batch).unwrap();
    let err = Space::open(s.id(), actor(1), stored(&store, s.id()))
        .err()
        .expect("damage must be detected");
    assert_eq!(err.code(), "model.corrupt_chunk");
    assert!(err.to_string().contains(&key), "{err}");
}

#[test]
fn a_space_that_was_never_saved_is_reported() {
    let id = SpaceId::random();
    let err = Space::open(id, actor(1), Vec::new()).err().unwrap();
    assert_eq!(err.code(), "model.corrupt_chunk");
}

#[test]
fn text_objects_are_cached_after_the_first_splice() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let id = b.create("doc", fields(&[("body", Value::Text(String::new()))]));
    s.apply(b).unwrap();
    for i in 0..3 {
        let mut b = WriteBatch::new();
        b.splice_text(id, "body", i, 0, "x");
        s.apply(b).unwrap();
        assert_eq!(
            s.text_objs.get(&id).map(Vec::len),
            Some(1),
            "after splice {i}"
        );
    }
    // Replacing the field drops the cached object; the next splice edits the new text.
    let mut b = WriteBatch::new();
    b.set(id, "body", Value::Text("new".into()));
    s.apply(b).unwrap();
    assert_eq!(s.text_objs.get(&id).map(Vec::len), Some(0));
    let mut b = WriteBatch::new();
    b.splice_text(id, "body", 3, 0, "!");
    s.apply(b).unwrap();
    assert_eq!(s.text(&id, "body").unwrap(), "new!");
}

#[test]
fn references_to_the_own_space_are_stored_as_local() {
    let mut s = space();
    let target = ObjectId::random();
    let mut b = WriteBatch::new();
    let id = b.create(
        "t",
        fields(&[("r", Value::Ref(Reference::remote(s.id(), target)))]),
    );
    s.apply(b).unwrap();
    assert_eq!(
        s.get(&id).unwrap().unwrap().field("r"),
        Some(&Value::Ref(Reference::local(target)))
    );
    let mut b = WriteBatch::new();
    b.set(
        id,
        "rs",
        Value::List(vec![Value::Ref(Reference::remote(s.id(), target))]),
    );
    s.apply(b).unwrap();
    assert_eq!(
        s.get(&id).unwrap().unwrap().field("rs"),
        Some(&Value::List(vec![Value::Ref(Reference::local(target))]))
    );
    s.verify_index().unwrap();
}

#[test]
fn values_nested_too_deep_are_refused() {
    let mut s = space();
    let mut deep = Value::Null;
    for _ in 0..40 {
        deep = Value::List(vec![deep]);
    }
    let mut b = WriteBatch::new();
    b.create("t", fields(&[("deep", deep)]));
    assert_eq!(s.apply(b).unwrap_err().code(), "model.too_deep");
}

/// A value `levels` lists and maps deep around `leaf`, alternating the
/// two kinds, a list outermost.
fn nested(levels: usize, leaf: Value) -> Value {
    let mut v = leaf;
    for level in (0..levels).rev() {
        v = if level % 2 == 0 {
            Value::List(vec![Value::Int(level as i64), v])
        } else {
            Value::Map([("k".to_string(), v)].into_iter().collect())
        };
    }
    v
}

#[test]
fn any_value_that_can_be_stored_can_be_found_by_an_equality_filter() {
    use crate::data::MAX_VALUE_DEPTH;
    let mut s = space();
    // At the limit: the deepest item sits MAX_VALUE_DEPTH levels below the
    // field (a scalar, or an empty list).
    let at_limit = [
        nested(MAX_VALUE_DEPTH, Value::Float(-0.0)),
        nested(MAX_VALUE_DEPTH, Value::String("leaf".into())),
        nested(MAX_VALUE_DEPTH, Value::List(vec![])),
    ];
    for (n, value) in at_limit.iter().enumerate() {
        assert_eq!(value.depth(), MAX_VALUE_DEPTH);
        let mut b = WriteBatch::new();
        let id = b.create(
            "t",
            fields(&[("v", value.clone()), ("n", Value::Int(n as i64))]),
        );
        s.apply(b).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(s.get(&id).unwrap().unwrap().field("v"), Some(value));
        let Value::List(items) = value else {
            panic!("a list outermost")
        };
        for filter in [
            Filter::eq("v", value.clone()),
            Filter::In {
                field: "v".into(),
                values: vec![Value::Null, value.clone()],
            },
            Filter::ListContains {
                field: "v".into(),
                value: items[1].clone(),
            },
        ] {
            let found = s.query(&Query::new(filter.clone()));
            assert_eq!(
                found.unwrap_or_else(|e| panic!("{n} {filter:?}: {e}")),
                vec![id]
            );
        }
    }
    // One level deeper: refused alike when stored and when filtered on.
    let deeper = nested(MAX_VALUE_DEPTH + 1, Value::Null);
    assert_eq!(deeper.depth(), MAX_VALUE_DEPTH + 1);
    let mut b = WriteBatch::new();
    b.create("t", fields(&[("v", deeper.clone())]));
    assert_eq!(s.apply(b).unwrap_err().code(), "model.too_deep");
    assert_eq!(
        s.query(&Query::new(Filter::eq("v", deeper)))
            .unwrap_err()
            .code(),
        "query.too_deep"
    );
}

#[test]
fn a_malformed_object_from_a_peer_is_reported_and_left_out() {
    use automerge::transaction::Transactable;
    // A peer writes an object whose initial state is garbage, bypassing the engine.
    let mut honest = space();
    let mut peer = Space::create(honest.id(), actor(9), SpaceOptions { shard_count: 4 }).unwrap();
    let bad = ObjectId::random();
    let mut b = WriteBatch::new();
    let good = b.create("t", fields(&[]));
    peer.apply(b).unwrap();
    let shard = peer.shard_of(&bad);
    {
        let doc = peer.shards[shard].doc(&peer.id_text, &peer.actor).unwrap();
        let mut tx = doc.transaction();
        tx.put(
            automerge::ROOT,
            bad.to_string(),
            automerge::ScalarValue::Bytes(vec![1, 0xff, 0xff]),
        )
        .unwrap();
        tx.commit();
    }
    sync(&mut peer, &mut honest);
    assert!(honest.get(&good).unwrap().is_some());
    assert!(honest.get(&bad).unwrap().is_none());
    let event = honest.poll_event();
    assert!(
        matches!(event, Some(SpaceEvent::Unreadable { object, .. }) if object == bad),
        "{event:?}"
    );
    honest.verify_index().unwrap();
}

#[test]
fn cached_text_lengths_follow_local_and_merged_edits() {
    let id = SpaceId::random();
    let mut a = Space::create(id, actor(1), SpaceOptions { shard_count: 2 }).unwrap();
    let mut b_space = Space::create(id, actor(2), SpaceOptions { shard_count: 2 }).unwrap();
    let mut b = WriteBatch::new();
    let doc = b.create("doc", fields(&[("body", Value::Text("abc".into()))]));
    a.apply(b).unwrap();
    sync(&mut a, &mut b_space);

    let mut b = WriteBatch::new();
    b.splice_text(doc, "body", 3, 0, "de"); // caches the length, then 5
    a.apply(b).unwrap();
    let mut b = WriteBatch::new();
    b.splice_text(doc, "body", 5, 1, "");
    assert_eq!(
        a.apply(b).unwrap_err().code(),
        "model.text_range",
        "length 5 must be known"
    );

    let mut b = WriteBatch::new();
    b.splice_text(doc, "body", 0, 0, "XYZ");
    b_space.apply(b).unwrap();
    sync(&mut b_space, &mut a); // a merge makes the text longer: 8
    let mut b = WriteBatch::new();
    b.splice_text(doc, "body", 8, 0, "!");
    a.apply(b).unwrap();
    assert_eq!(a.text(&doc, "body").unwrap(), "XYZabcde!");
}

#[test]
fn an_object_created_and_changed_in_one_batch_ends_in_its_last_state() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let a = b.create("t", fields(&[("x", Value::Int(1)), ("y", Value::Int(2))]));
    b.set(a, "x", 10i64).remove(a, "y");
    let gone = b.create("t", fields(&[]));
    b.delete(gone);
    let plain = b.create("t", fields(&[("z", Value::Int(3))]));
    s.apply(b).unwrap();
    let state = s.get(&a).unwrap().unwrap().clone();
    assert_eq!(state.field("x"), Some(&Value::Int(10)));
    assert_eq!(state.field("y"), None);
    assert!(s.get(&gone).unwrap().unwrap().deleted);
    assert_eq!(
        s.get(&plain).unwrap().unwrap().field("z"),
        Some(&Value::Int(3))
    );
    s.verify_index().unwrap();
}

/// A splice keeps the index's text current in place — except where a field
/// index covers the field, whose keys must follow the text: queries on the
/// text find it by its new content, not its old.
#[test]
fn a_text_field_an_index_covers_is_found_by_its_spliced_content() {
    let mut s = space();
    let mut b = WriteBatch::new();
    let doc = b.create("doc", fields(&[("body", Value::Text("hello".into()))]));
    let other = b.create("doc", fields(&[("body", Value::Text("other".into()))]));
    s.apply(b).unwrap();
    let body_is = |text: &str| Query {
        filter: Filter::Field {
            field: "body".into(),
            op: Compare::Eq,
            value: Value::Text(text.into()),
        },
        ..Query::default()
    };
    // The first query builds the field index on `body`.
    assert_eq!(s.query(&body_is("hello")).unwrap(), vec![doc]);
    let mut b = WriteBatch::new();
    b.splice_text(doc, "body", 5, 0, " ");
    b.splice_text(doc, "body", 6, 0, "you");
    b.splice_text(other, "body", 0, 1, "");
    s.apply(b).unwrap();
    assert_eq!(s.query(&body_is("hello")).unwrap(), Vec::<ObjectId>::new());
    assert_eq!(s.query(&body_is("hello you")).unwrap(), vec![doc]);
    assert_eq!(s.query(&body_is("ther")).unwrap(), vec![other]);
    assert!(s.stale_text.is_empty());
    s.verify_index().unwrap();
}
