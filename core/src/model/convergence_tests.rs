//! Property (model level, merging unverified changes through the
//! crate-private merge): replicas that apply random writes concurrently and merge in
//! random orders end in identical state with identical query results.

use crate::model::{ObjectId, ObjectState, Space, SpaceId, SpaceOptions, Value, WriteBatch};
use crate::query::{Compare, Filter, Order, Query};
use automerge::ActorId;
use proptest::prelude::*;

const REPLICAS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Create {
        replica: usize,
        kind: u8,
        n: i64,
    },
    Set {
        replica: usize,
        pick: usize,
        field: u8,
        n: i64,
    },
    Remove {
        replica: usize,
        pick: usize,
        field: u8,
    },
    Delete {
        replica: usize,
        pick: usize,
    },
    Splice {
        replica: usize,
        pick: usize,
        pos: usize,
        delete: usize,
        text: String,
    },
    Sync {
        from: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..REPLICAS;
    prop_oneof![
        3 => (r.clone(), 0u8..3, -5i64..5).prop_map(|(replica, kind, n)| Op::Create { replica, kind, n }),
        4 => (r.clone(), any::<usize>(), 0u8..3, -5i64..5)
            .prop_map(|(replica, pick, field, n)| Op::Set { replica, pick, field, n }),
        1 => (r.clone(), any::<usize>(), 0u8..3).prop_map(|(replica, pick, field)| Op::Remove { replica, pick, field }),
        1 => (r.clone(), any::<usize>()).prop_map(|(replica, pick)| Op::Delete { replica, pick }),
        3 => (r.clone(), any::<usize>(), 0usize..8, 0usize..3, "[a-cé ]{0,3}")
            .prop_map(|(replica, pick, pos, delete, text)| Op::Splice { replica, pick, pos, delete, text }),
        3 => (r.clone(), r).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

fn sync(spaces: &mut [Space], from: usize, to: usize) {
    if from == to {
        return;
    }
    let heads = spaces[to].heads().unwrap();
    let changes = spaces[from].changes_since(&heads).unwrap();
    spaces[to].apply_changes(changes).unwrap();
}

/// Live (not deleted) objects a replica knows, in id order.
fn live_ids(space: &Space) -> Vec<ObjectId> {
    let mut ids: Vec<ObjectId> = space
        .index()
        .iter()
        .filter(|o| !o.deleted)
        .map(|o| o.id)
        .collect();
    ids.sort();
    ids
}

fn apply(spaces: &mut [Space], op: &Op) {
    let field_name = |f: u8| format!("f{f}");
    match op {
        Op::Create { replica, kind, n } => {
            let mut b = WriteBatch::new();
            b.create(
                format!("type{kind}"),
                [
                    ("f0".to_string(), Value::Int(*n)),
                    ("note".to_string(), Value::Text("ab".into())),
                ],
            );
            spaces[*replica].apply(b).unwrap();
        }
        Op::Sync { from, to } => sync(spaces, *from, *to),
        Op::Set { replica, pick, .. }
        | Op::Remove { replica, pick, .. }
        | Op::Delete { replica, pick }
        | Op::Splice { replica, pick, .. } => {
            let ids = live_ids(&spaces[*replica]);
            if ids.is_empty() {
                return;
            }
            let id = ids[pick % ids.len()];
            let space = &mut spaces[*replica];
            let mut b = WriteBatch::new();
            match op {
                Op::Set { field, n, .. } => {
                    let value = if *n % 2 == 0 {
                        Value::Int(*n)
                    } else {
                        Value::String(format!("s{n}"))
                    };
                    b.set(id, field_name(*field), value);
                }
                Op::Remove { field, .. } => {
                    b.remove(id, field_name(*field));
                }
                Op::Delete { .. } => {
                    b.delete(id);
                }
                Op::Splice {
                    pos, delete, text, ..
                } => {
                    let len = space.text(&id, "note").unwrap().chars().count();
                    let pos = pos % (len + 1);
                    let delete = (*delete).min(len - pos);
                    b.splice_text(id, "note", pos, delete, text.clone());
                }
                _ => unreachable!(),
            }
            space.apply(b).unwrap();
        }
    }
}

fn snapshot(space: &mut Space) -> Vec<ObjectState> {
    let mut ids: Vec<ObjectId> = space.index().iter().map(|o| o.id).collect();
    ids.sort();
    ids.iter()
        .map(|id| space.get(id).unwrap().unwrap().clone())
        .collect()
}

fn queries() -> Vec<Query> {
    vec![
        Query {
            filter: Filter::Type("type1".into()),
            ..Query::default()
        },
        Query {
            filter: Filter::Field {
                field: "f0".into(),
                op: Compare::Ge,
                value: Value::Int(0),
            },
            order: vec![Order {
                field: "f0".into(),
                descending: true,
            }],
            ..Query::default()
        },
        Query {
            filter: Filter::TextContains {
                field: "note".into(),
                needle: "A".into(),
            },
            ..Query::default()
        },
        Query {
            filter: Filter::All,
            include_deleted: true,
            limit: Some(5),
            offset: 1,
            ..Query::default()
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(ops in proptest::collection::vec(op(), 1..60), shard_count in 1u16..5) {
        let id = SpaceId::random();
        let mut spaces: Vec<Space> = (0..REPLICAS)
            .map(|r| Space::create(id, ActorId::from([r as u8 + 1; 32].as_slice()), SpaceOptions { shard_count }).unwrap())
            .collect();
        for op in &ops {
            apply(&mut spaces, op);
        }
        // Everyone hears from everyone, in a fixed ring and back.
        for _ in 0..2 {
            for from in 0..REPLICAS {
                for to in 0..REPLICAS {
                    sync(&mut spaces, from, to);
                }
            }
        }
        let reference = snapshot(&mut spaces[0]);
        let reference_results: Vec<Vec<ObjectId>> =
            queries().iter().map(|q| spaces[0].query(q).unwrap()).collect();
        for space in spaces.iter_mut() {
            space.verify_index().map_err(TestCaseError::fail)?;
            prop_assert_eq!(&snapshot(space), &reference);
            let results: Vec<Vec<ObjectId>> = queries().iter().map(|q| space.query(q).unwrap()).collect();
            prop_assert_eq!(&results, &reference_results);
        }
    }
}

/// One keystroke of a person editing a text: `(kind, at, what)`.
fn keystroke() -> impl Strategy<Value = (u8, usize, String)> {
    (0u8..4, any::<usize>(), "[a-cé😀]{1,2}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A batch of keystrokes is written as runs of merged splices
    /// (`splice_run`), and applied to the index's copy of the text run by
    /// run. It must leave the text the keystrokes leave one batch each, in
    /// the document and the index, and merge with a concurrent peer's edits
    /// the same way.
    #[test]
    fn keystrokes_in_one_batch_merge_like_keystrokes_one_by_one(
        keys in proptest::collection::vec(keystroke(), 1..40),
        theirs in proptest::collection::vec((any::<usize>(), 0usize..3, "[xy]{0,2}"), 1..4),
    ) {
        let id = SpaceId::random();
        let mine = ActorId::from([1u8; 32].as_slice());
        let mut batched = Space::create(id, mine.clone(), SpaceOptions { shard_count: 1 }).unwrap();
        let mut b = WriteBatch::new();
        let doc = b.create("doc", [("body".to_string(), Value::Text("hello world".into()))]);
        batched.apply(b).unwrap();
        // The same replica twice (same actor, same history): one gets the
        // keystrokes as one batch, the other one batch each.
        let mut one_by_one = Space::create(id, mine, SpaceOptions { shard_count: 1 }).unwrap();
        let mut peer = Space::create(id, ActorId::from([2u8; 32].as_slice()), SpaceOptions { shard_count: 1 }).unwrap();
        let mut spaces = [batched, one_by_one, peer];
        sync(&mut spaces, 0, 1);
        sync(&mut spaces, 0, 2);
        [batched, one_by_one, peer] = spaces;

        // Typing runs on from a cursor, with backspaces, forward deletes and jumps.
        let mut expected: Vec<char> = "hello world".chars().collect();
        let mut cursor = 5;
        let mut splices = Vec::new();
        for (kind, at, what) in &keys {
            let splice = match kind {
                0 => (cursor, 0, what.clone()),
                1 if cursor > 0 => (cursor - 1, 1, String::new()),
                2 if cursor < expected.len() => (cursor, 1, String::new()),
                _ => {
                    cursor = at % (expected.len() + 1);
                    continue;
                }
            };
            let (pos, delete, insert) = &splice;
            expected.splice(*pos..pos + delete, insert.chars());
            cursor = pos + insert.chars().count();
            splices.push(splice);
        }
        let mut b = WriteBatch::new();
        for (pos, delete, insert) in &splices {
            b.splice_text(doc, "body", *pos, *delete, insert.clone());
        }
        batched.apply(b).unwrap();
        for (pos, delete, insert) in &splices {
            let mut b = WriteBatch::new();
            b.splice_text(doc, "body", *pos, *delete, insert.clone());
            one_by_one.apply(b).unwrap();
        }
        let expected: String = expected.into_iter().collect();
        // The index kept the text current itself: nothing to re-read.
        prop_assert!(!batched.stale_text.contains(&doc) && !one_by_one.stale_text.contains(&doc));
        batched.verify_index().map_err(TestCaseError::fail)?;
        one_by_one.verify_index().map_err(TestCaseError::fail)?;
        prop_assert_eq!(&batched.text(&doc, "body").unwrap(), &expected);
        prop_assert_eq!(&one_by_one.text(&doc, "body").unwrap(), &expected);

        // The peer edited concurrently; both hear from it.
        for (at, delete, insert) in &theirs {
            let len = peer.text(&doc, "body").unwrap().chars().count();
            let pos = at % (len + 1);
            let mut b = WriteBatch::new();
            b.splice_text(doc, "body", pos, (*delete).min(len - pos), insert.clone());
            peer.apply(b).unwrap();
        }
        let mut spaces = [batched, one_by_one, peer];
        sync(&mut spaces, 2, 0);
        sync(&mut spaces, 2, 1);
        let merged = spaces[0].text(&doc, "body").unwrap();
        prop_assert_eq!(&spaces[1].text(&doc, "body").unwrap(), &merged);
        sync(&mut spaces, 0, 2);
        prop_assert_eq!(&spaces[2].text(&doc, "body").unwrap(), &merged);
    }
}
