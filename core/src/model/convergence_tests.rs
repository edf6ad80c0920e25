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
