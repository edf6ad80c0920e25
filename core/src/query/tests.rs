//! Tests of the query module: every filter kind, ordering, slicing, deleted
//! objects, index maintenance, live diffs, and a property test comparing the
//! indexed executor with a naive reference evaluator.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::data::{ObjectId, ObjectState, Reference, SpaceId, Value, MAX_VALUE_DEPTH};

fn oid(n: u8) -> ObjectId {
    ObjectId::from_bytes([n; 16])
}

fn obj(n: u8, ty: &str, fields: Vec<(&str, Value)>) -> ObjectState {
    ObjectState {
        id: oid(n),
        type_name: ty.into(),
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        deleted: false,
    }
}

fn rf(n: u8) -> Value {
    Value::Ref(Reference::local(oid(n)))
}

fn ids(ns: &[u8]) -> Vec<ObjectId> {
    ns.iter().map(|n| oid(*n)).collect()
}

fn run(index: &Index, filter: Filter) -> Vec<ObjectId> {
    index.run(&Query::new(filter)).expect("valid query")
}

/// Tasks 1..=6 and people 10, 11.
fn sample() -> Index {
    let mut index = Index::new();
    type Task = (u8, &'static str, Value, bool, Vec<&'static str>, Option<u8>);
    let tasks: Vec<Task> = vec![
        (
            1,
            "Write docs",
            Value::Int(3),
            true,
            vec!["a", "b"],
            Some(10),
        ),
        (
            2,
            "Fix BUG in parser",
            Value::Float(1.5),
            false,
            vec!["b"],
            Some(11),
        ),
        (3, "review", Value::Int(7), false, vec![], None),
        (
            4,
            "Docs review",
            Value::Float(3.0),
            true,
            vec!["a"],
            Some(10),
        ),
        (5, "ship", Value::Null, false, vec!["c"], Some(11)),
        (6, "plan", Value::String("high".into()), true, vec![], None),
    ];
    for (n, title, prio, done, tags, owner) in tasks {
        let mut fields = vec![
            ("title", Value::String(title.into())),
            ("prio", prio),
            ("done", Value::Bool(done)),
            (
                "tags",
                Value::List(tags.into_iter().map(Value::from).collect()),
            ),
        ];
        if let Some(o) = owner {
            fields.push(("owner", rf(o)));
        }
        index.upsert(obj(n, "task", fields));
    }
    index.upsert(obj(
        10,
        "person",
        vec![("name", "Ada".into()), ("age", Value::Int(36))],
    ));
    index.upsert(obj(
        11,
        "person",
        vec![
            ("name", Value::Text("Grace".into())),
            ("age", Value::Int(45)),
        ],
    ));
    index
}

#[test]
fn type_filter_uses_type_index() {
    let index = sample();
    assert_eq!(
        run(&index, Filter::type_is("task")),
        ids(&[1, 2, 3, 4, 5, 6])
    );
    assert_eq!(run(&index, Filter::type_is("person")), ids(&[10, 11]));
    assert!(run(&index, Filter::type_is("nope")).is_empty());
    assert_eq!(run(&index, Filter::All).len(), 8);
    assert_eq!(index.len(), 8);
}

#[test]
fn field_comparisons() {
    let index = sample();
    let f = |op, v: Value| run(&index, Filter::field("prio", op, v));
    // Int(3) == Float(3.0).
    assert_eq!(f(Compare::Eq, Value::Int(3)), ids(&[1, 4]));
    assert_eq!(f(Compare::Eq, Value::Float(3.0)), ids(&[1, 4]));
    // Ne: present and different (any kind); 6 has a string, 5 Null.
    assert_eq!(f(Compare::Ne, Value::Int(3)), ids(&[2, 3, 5, 6]));
    // Ranges stay within the number kind.
    assert_eq!(f(Compare::Lt, Value::Int(3)), ids(&[2]));
    assert_eq!(f(Compare::Le, Value::Int(3)), ids(&[1, 2, 4]));
    assert_eq!(f(Compare::Gt, Value::Float(2.9)), ids(&[1, 3, 4]));
    assert_eq!(f(Compare::Ge, Value::Int(7)), ids(&[3]));
    assert_eq!(f(Compare::Gt, Value::String("a".into())), ids(&[6]));
    assert_eq!(f(Compare::Eq, Value::Null), ids(&[5]));
    // Missing field matches no comparison.
    assert!(run(&index, Filter::field("missing", Compare::Ne, 1i64)).is_empty());
    // Bool and string ranges.
    assert_eq!(
        run(&index, Filter::field("done", Compare::Gt, false)),
        ids(&[1, 4, 6])
    );
    assert_eq!(
        run(&index, Filter::field("title", Compare::Lt, "G")),
        ids(&[2, 4])
    );
    // String == Text by content.
    assert_eq!(
        run(&index, Filter::eq("name", Value::String("Grace".into()))),
        ids(&[11])
    );
    // Structural equality of lists.
    let tags = Value::List(vec!["a".into(), "b".into()]);
    assert_eq!(run(&index, Filter::eq("tags", tags)), ids(&[1]));
}

#[test]
fn in_exists_text_and_list_contains() {
    let index = sample();
    let q = Filter::In {
        field: "prio".into(),
        values: vec![Value::Float(7.0), Value::Null, Value::Int(99)],
    };
    assert_eq!(run(&index, q), ids(&[3, 5]));
    let empty_in = Filter::In {
        field: "prio".into(),
        values: vec![],
    };
    assert!(run(&index, empty_in).is_empty());
    assert_eq!(
        run(&index, Filter::Exists("owner".into())),
        ids(&[1, 2, 4, 5])
    );
    assert_eq!(
        run(&index, Filter::Exists("prio".into())).len(),
        6,
        "Null counts as present"
    );
    let text = |field: &str, needle: &str| {
        run(
            &index,
            Filter::TextContains {
                field: field.into(),
                needle: needle.into(),
            },
        )
    };
    assert_eq!(text("title", "DOCS"), ids(&[1, 4]));
    assert_eq!(text("title", "bug"), ids(&[2]));
    assert_eq!(text("name", "RAC"), ids(&[11]), "Text fields are searched");
    assert_eq!(text("prio", "3"), ids(&[]), "numbers are not text");
    assert_eq!(text("title", "").len(), 6);
    let mut unicode = Index::new();
    unicode.upsert(obj(1, "t", vec![("s", "Straße ÉCOLE".into())]));
    unicode.upsert(obj(2, "t", vec![("s", "ecole".into())]));
    assert_eq!(
        run(
            &unicode,
            Filter::TextContains {
                field: "s".into(),
                needle: "éco".into()
            }
        ),
        ids(&[1])
    );
    let lc = Filter::ListContains {
        field: "tags".into(),
        value: "b".into(),
    };
    assert_eq!(run(&index, lc), ids(&[1, 2]));
}

#[test]
fn references_follow_lists_and_maps_but_not_other_spaces() {
    let mut index = Index::new();
    let other = SpaceId::from_bytes([9; 16]);
    index.upsert(obj(1, "t", vec![("a", rf(9))]));
    index.upsert(obj(
        2,
        "t",
        vec![("l", Value::List(vec![Value::Int(1), rf(9)]))],
    ));
    let m = BTreeMap::from([("k".to_owned(), rf(9))]);
    index.upsert(obj(3, "t", vec![("m", Value::Map(m))]));
    index.upsert(obj(
        4,
        "t",
        vec![("a", Value::Ref(Reference::remote(other, oid(9))))],
    ));
    index.upsert(obj(5, "t", vec![("a", rf(8))]));
    assert_eq!(run(&index, Filter::References(oid(9))), ids(&[1, 2, 3]));
    // Maintained after a change.
    index.upsert(obj(1, "t", vec![("a", rf(8))]));
    assert_eq!(run(&index, Filter::References(oid(9))), ids(&[2, 3]));
    assert_eq!(run(&index, Filter::References(oid(8))), ids(&[1, 5]));
}

#[test]
fn refers_to_is_one_hop_and_nests() {
    let index = sample();
    let older = Filter::RefersTo {
        field: "owner".into(),
        target: Box::new(Filter::field("age", Compare::Gt, 40i64)),
    };
    assert_eq!(run(&index, older), ids(&[2, 5]));
    let to_person = Filter::RefersTo {
        field: "owner".into(),
        target: Box::new(Filter::type_is("person")),
    };
    assert_eq!(run(&index, to_person), ids(&[1, 2, 4, 5]));
    // Wrong field: nothing.
    let wrong = Filter::RefersTo {
        field: "title".into(),
        target: Box::new(Filter::All),
    };
    assert!(run(&index, wrong).is_empty());
}

/// A folder tree by `parent` refs: 1 ← 2 ← 3 ← 4, 1 ← 5, and a `next`
/// cycle 1 → 2 → 3 → 1.
fn tree() -> Index {
    let mut index = Index::new();
    index.upsert(obj(1, "folder", vec![("next", rf(2))]));
    index.upsert(obj(2, "folder", vec![("parent", rf(1)), ("next", rf(3))]));
    index.upsert(obj(3, "folder", vec![("parent", rf(2)), ("next", rf(1))]));
    index.upsert(obj(4, "doc", vec![("parent", rf(3))]));
    index.upsert(obj(
        5,
        "doc",
        vec![("parent", Value::List(vec![rf(1), rf(77)]))],
    ));
    index
}

fn reach(root: u8, field: &str, direction: Direction, max_depth: u32) -> Filter {
    Filter::Reachable {
        root: oid(root),
        field: field.into(),
        direction,
        max_depth,
    }
}

#[test]
fn reachable_with_depth_limits_and_cycles() {
    let mut index = tree();
    use Direction::*;
    assert_eq!(run(&index, reach(1, "parent", Incoming, 1)), ids(&[2, 5]));
    assert_eq!(
        run(&index, reach(1, "parent", Incoming, 2)),
        ids(&[2, 3, 5])
    );
    assert_eq!(
        run(&index, reach(1, "parent", Incoming, 10)),
        ids(&[2, 3, 4, 5])
    );
    assert_eq!(run(&index, reach(4, "parent", Outgoing, 2)), ids(&[2, 3]));
    assert_eq!(
        run(&index, reach(4, "parent", Outgoing, 10)),
        ids(&[1, 2, 3])
    );
    // The cycle terminates and never yields the root.
    assert_eq!(run(&index, reach(1, "next", Outgoing, 256)), ids(&[2, 3]));
    assert_eq!(run(&index, reach(1, "next", Incoming, 256)), ids(&[2, 3]));
    // Combined with other filters.
    let docs = Filter::And(vec![
        Filter::type_is("doc"),
        reach(1, "parent", Incoming, 10),
    ]);
    assert_eq!(run(&index, docs), ids(&[4, 5]));
    // A deleted waypoint cuts the walk unless deleted objects are included.
    let mut three = index.get(&oid(3)).cloned().expect("exists");
    three.deleted = true;
    index.upsert(three);
    assert_eq!(run(&index, reach(1, "parent", Incoming, 10)), ids(&[2, 5]));
    let q = Query::new(reach(1, "parent", Incoming, 10)).include_deleted(true);
    assert_eq!(index.run(&q).expect("valid"), ids(&[2, 3, 4, 5]));
    // Backlinks are maintained: moving 4 under 5.
    index.upsert(obj(4, "doc", vec![("parent", rf(5))]));
    assert_eq!(run(&index, reach(5, "parent", Incoming, 1)), ids(&[4]));
    assert_eq!(
        run(&index, reach(1, "parent", Incoming, 10)),
        ids(&[2, 4, 5])
    );
}

#[test]
fn and_or_not() {
    let index = sample();
    let done = Filter::eq("done", true);
    let tagged_a = Filter::ListContains {
        field: "tags".into(),
        value: "a".into(),
    };
    assert_eq!(
        run(
            &index,
            Filter::And(vec![
                Filter::type_is("task"),
                done.clone(),
                tagged_a.clone()
            ])
        ),
        ids(&[1, 4])
    );
    assert_eq!(
        run(
            &index,
            Filter::Or(vec![Filter::eq("prio", 7i64), Filter::type_is("person")])
        ),
        ids(&[3, 10, 11])
    );
    assert_eq!(
        run(&index, Filter::not(done.clone())),
        ids(&[2, 3, 5, 10, 11])
    );
    assert_eq!(
        run(
            &index,
            Filter::And(vec![Filter::type_is("task"), Filter::not(done)])
        ),
        ids(&[2, 3, 5])
    );
    assert_eq!(run(&index, Filter::And(vec![])).len(), 8);
    assert!(run(&index, Filter::Or(vec![])).is_empty());
    // Or mixing an indexable and a non-indexable branch.
    let mixed = Filter::Or(vec![
        Filter::eq("prio", 7i64),
        Filter::TextContains {
            field: "title".into(),
            needle: "ship".into(),
        },
    ]);
    assert_eq!(run(&index, mixed), ids(&[3, 5]));
}

#[test]
fn ordering_across_kinds_missing_first_ties_by_id() {
    let mut index = Index::new();
    let values = [
        (1, Some(Value::String("b".into()))),
        (2, Some(Value::Int(2))),
        (3, None),
        (4, Some(Value::Float(1.5))),
        (5, Some(Value::Null)),
        (6, Some(Value::Bool(true))),
        (7, Some(Value::Text("a".into()))),
        (8, Some(Value::Float(f64::NAN))),
        (9, Some(Value::Int(2))),
        (10, Some(Value::List(vec![]))),
        (11, Some(Value::Bytes(vec![1]))),
        (12, Some(rf(1))),
        (13, None),
        (14, Some(Value::Map(BTreeMap::new()))),
    ];
    for (n, v) in values {
        let fields = v.map(|v| vec![("k", v)]).unwrap_or_default();
        index.upsert(obj(n, "t", fields));
    }
    let asc = index
        .run(&Query::default().order_by("k", false))
        .expect("valid");
    assert_eq!(asc, ids(&[3, 13, 5, 6, 4, 2, 9, 8, 7, 1, 11, 12, 10, 14]));
    let desc = index
        .run(&Query::default().order_by("k", true))
        .expect("valid");
    // Descending reverses values; ties stay ascending by id.
    assert_eq!(desc, ids(&[14, 10, 12, 11, 1, 7, 8, 2, 9, 4, 6, 5, 3, 13]));
}

#[test]
fn multi_key_order_limit_offset() {
    let index = sample();
    let q = Query::new(Filter::type_is("task"))
        .order_by("done", true)
        .order_by("title", false);
    let all = index.run(&q).expect("valid");
    // done first (true > false, descending), then by title (code point
    // order: upper case first).
    assert_eq!(all, ids(&[4, 1, 6, 2, 3, 5]));
    assert_eq!(index.run(&q.clone().limit(2)).expect("valid"), ids(&[4, 1]));
    assert_eq!(
        index.run(&q.clone().offset(2).limit(3)).expect("valid"),
        ids(&[6, 2, 3])
    );
    assert_eq!(
        index.run(&q.clone().offset(5).limit(10)).expect("valid"),
        ids(&[5])
    );
    assert!(index.run(&q.clone().offset(50)).expect("valid").is_empty());
    assert!(index.run(&q.clone().limit(0)).expect("valid").is_empty());
    let unordered = Query::new(Filter::All).offset(1).limit(usize::MAX);
    assert_eq!(index.run(&unordered).expect("valid").len(), 7);
}

#[test]
fn deleted_objects_are_excluded_unless_asked_for() {
    let mut index = sample();
    let mut two = index.get(&oid(2)).cloned().expect("exists");
    two.deleted = true;
    let prev = index.upsert(two).expect("replaced");
    assert!(!prev.deleted);
    assert_eq!(run(&index, Filter::type_is("task")), ids(&[1, 3, 4, 5, 6]));
    let q = Query::new(Filter::type_is("task")).include_deleted(true);
    assert_eq!(index.run(&q).expect("valid"), ids(&[1, 2, 3, 4, 5, 6]));
    // A deleted target is not a RefersTo target.
    let mut ada = index.get(&oid(10)).cloned().expect("exists");
    ada.deleted = true;
    index.upsert(ada);
    let owned = Filter::RefersTo {
        field: "owner".into(),
        target: Box::new(Filter::All),
    };
    assert_eq!(run(&index, owned.clone()), ids(&[5]));
    let q = Query::new(owned).include_deleted(true);
    assert_eq!(index.run(&q).expect("valid"), ids(&[1, 2, 4, 5]));
    assert_eq!(index.len(), 8, "deleted objects stay in the index");
}

#[test]
fn field_index_is_lazy_and_maintained() {
    let mut index = sample();
    assert!(index.indexed_fields().is_empty());
    assert_eq!(run(&index, Filter::eq("prio", 3i64)), ids(&[1, 4]));
    assert_eq!(index.indexed_fields(), vec!["prio".to_owned()]);
    assert_eq!(
        run(&index, Filter::field("prio", Compare::Gt, 2i64)),
        ids(&[1, 3, 4])
    );
    // Changing the field moves the object between buckets.
    let mut one = index.get(&oid(1)).cloned().expect("exists");
    one.fields.insert("prio".into(), Value::Int(7));
    index.upsert(one.clone());
    assert_eq!(run(&index, Filter::eq("prio", 3i64)), ids(&[4]));
    assert_eq!(run(&index, Filter::eq("prio", 7.0)), ids(&[1, 3]));
    // Removing the field removes it from the index.
    one.fields.remove("prio");
    index.upsert(one);
    assert_eq!(run(&index, Filter::eq("prio", 7i64)), ids(&[3]));
    assert_eq!(
        run(&index, Filter::field("prio", Compare::Ge, 0i64)),
        ids(&[2, 3, 4])
    );
    // New objects enter built indexes and the type index.
    index.upsert(obj(20, "task", vec![("prio", Value::Int(3))]));
    assert_eq!(run(&index, Filter::eq("prio", 3i64)), ids(&[4, 20]));
    assert_eq!(run(&index, Filter::type_is("task")).len(), 7);
    // A (model-forbidden) type change still keeps the type index right.
    index.upsert(obj(20, "other", vec![]));
    assert_eq!(run(&index, Filter::type_is("other")), ids(&[20]));
    assert_eq!(run(&index, Filter::type_is("task")).len(), 6);
    assert_eq!(run(&index, Filter::eq("prio", 3i64)), ids(&[4]));
    // Removal.
    assert!(index.remove(&oid(4)).is_some());
    assert!(run(&index, Filter::eq("prio", 3i64)).is_empty());
    assert!(index.remove(&oid(4)).is_none());
    // Dropped indexes are rebuilt with the same answers.
    let before = run(&index, Filter::field("prio", Compare::Lt, 100i64));
    index.drop_lazy_indexes();
    assert!(index.indexed_fields().is_empty());
    assert_eq!(
        run(&index, Filter::field("prio", Compare::Lt, 100i64)),
        before
    );
}

#[test]
fn nan_is_deterministic() {
    let mut index = Index::new();
    index.upsert(obj(1, "t", vec![("x", Value::Float(f64::NAN))]));
    index.upsert(obj(2, "t", vec![("x", Value::Float(f64::INFINITY))]));
    index.upsert(obj(3, "t", vec![("x", Value::Int(0))]));
    assert_eq!(run(&index, Filter::eq("x", f64::NAN)), ids(&[1]));
    assert_eq!(
        run(&index, Filter::field("x", Compare::Gt, f64::INFINITY)),
        ids(&[1])
    );
    assert_eq!(
        run(&index, Filter::field("x", Compare::Lt, f64::NAN)),
        ids(&[2, 3])
    );
    assert_eq!(run(&index, Filter::eq("x", -0.0)), ids(&[3]));
}

#[test]
fn invalid_queries_have_codes_and_messages() {
    let index = sample();
    let err = |f: Filter| index.run(&Query::new(f)).expect_err("invalid");
    let e = err(Filter::field("tags", Compare::Lt, Value::List(vec![])));
    assert_eq!(e.code(), "query.incomparable");
    assert!(e.to_string().contains("\"tags\""), "{e}");
    assert_eq!(
        err(Filter::field("a", Compare::Ge, Value::Null)).code(),
        "query.incomparable"
    );
    assert_eq!(
        err(Filter::field("a", Compare::Gt, rf(1))).code(),
        "query.incomparable"
    );
    assert_eq!(
        err(reach(1, "p", Direction::Outgoing, 0)).code(),
        "query.invalid_depth"
    );
    let e = err(reach(1, "p", Direction::Outgoing, MAX_TRAVERSAL_DEPTH + 1));
    assert_eq!(e.code(), "query.invalid_depth");
    assert!(e.to_string().contains("256"), "{e}");
    let mut deep = Filter::All;
    for _ in 0..MAX_FILTER_DEPTH {
        deep = Filter::not(deep);
    }
    assert_eq!(err(deep).code(), "query.too_deep");
    let mut v = Value::Null;
    for _ in 0..=MAX_VALUE_DEPTH {
        v = Value::List(vec![v]);
    }
    assert_eq!(err(Filter::eq("a", v)).code(), "query.too_deep");
    assert_eq!(
        err(Filter::Exists(String::new())).code(),
        "query.empty_field"
    );
    let e = index
        .run(&Query::default().order_by("", false))
        .expect_err("invalid");
    assert_eq!(e.code(), "query.empty_field");
    // Ranges against bool / bytes are fine.
    assert!(index
        .run(&Query::new(Filter::field(
            "a",
            Compare::Lt,
            Value::Bytes(vec![])
        )))
        .is_ok());
    let mut live = LiveQueries::new();
    let bad = Query::new(reach(1, "p", Direction::Incoming, 0));
    assert_eq!(
        live.subscribe(bad, &index).expect_err("invalid").code(),
        "query.invalid_depth"
    );
    assert!(live.is_empty());
}

// ------------------------------------------------------------------ live

#[test]
fn live_plain_query_diffs() {
    let mut index = sample();
    let mut live = LiveQueries::new();
    let (sub, initial) = live
        .subscribe(Query::new(Filter::eq("done", true)), &index)
        .expect("valid");
    assert_eq!(initial, ids(&[1, 4, 6]));
    assert!(!live.is_empty());

    // Unrelated change: no diff.
    index.upsert(obj(11, "person", vec![("name", "G".into())]));
    assert!(live.on_change(&index, &[oid(11)]).is_empty());

    // 2 becomes done (added), 1 is undone (removed), 4 changes title (changed).
    let mut two = index.get(&oid(2)).cloned().expect("exists");
    two.fields.insert("done".into(), true.into());
    let mut one = index.get(&oid(1)).cloned().expect("exists");
    one.fields.insert("done".into(), false.into());
    let mut four = index.get(&oid(4)).cloned().expect("exists");
    four.fields.insert("title".into(), "renamed".into());
    for s in [two, one, four] {
        index.upsert(s);
    }
    let diffs = live.on_change(&index, &[oid(2), oid(1), oid(4), oid(99)]);
    assert_eq!(
        diffs,
        vec![LiveDiff {
            subscription: sub,
            added: ids(&[2]),
            removed: ids(&[1]),
            changed: ids(&[4]),
            window: None,
        }]
    );
    assert_eq!(live.result(sub).expect("subscribed"), ids(&[2, 4, 6]));

    // Deleting removes.
    let mut six = index.get(&oid(6)).cloned().expect("exists");
    six.deleted = true;
    index.upsert(six);
    let diffs = live.on_change(&index, &[oid(6)]);
    assert_eq!(diffs[0].removed, ids(&[6]));

    assert!(live.unsubscribe(sub));
    assert!(!live.unsubscribe(sub));
    assert!(live.is_empty());
    assert!(live.on_change(&index, &[oid(2)]).is_empty());
}

#[test]
fn live_ordered_window() {
    let mut index = Index::new();
    for n in 1..=10u8 {
        index.upsert(obj(n, "t", vec![("score", Value::Int(i64::from(n) * 10))]));
    }
    let mut live = LiveQueries::new();
    let top = Query::new(Filter::type_is("t"))
        .order_by("score", true)
        .limit(3);
    let (sub, initial) = live.subscribe(top.clone(), &index).expect("valid");
    assert_eq!(initial, ids(&[10, 9, 8]));

    // A change below the window: nothing visible.
    index.upsert(obj(2, "t", vec![("score", Value::Int(25))]));
    assert!(live.on_change(&index, &[oid(2)]).is_empty());

    // 1 jumps to the top: enters, 8 falls out.
    index.upsert(obj(1, "t", vec![("score", Value::Int(1000))]));
    let d = live.on_change(&index, &[oid(1)]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].added, ids(&[1]));
    assert_eq!(d[0].removed, ids(&[8]));
    assert_eq!(d[0].window.as_deref(), Some(&ids(&[1, 10, 9])[..]));

    // Reorder inside the window only: 9 overtakes 10.
    index.upsert(obj(9, "t", vec![("score", Value::Int(101))]));
    let d = live.on_change(&index, &[oid(9)]);
    assert!(d[0].added.is_empty() && d[0].removed.is_empty());
    assert_eq!(d[0].changed, ids(&[9]));
    assert_eq!(d[0].window.as_deref(), Some(&ids(&[1, 9, 10])[..]));

    // Leaving the filter (deleted) pulls the next one in.
    let mut nine = index.get(&oid(9)).cloned().expect("exists");
    nine.deleted = true;
    index.upsert(nine);
    let d = live.on_change(&index, &[oid(9)]);
    assert_eq!(d[0].removed, ids(&[9]));
    assert_eq!(d[0].added, ids(&[8]));
    assert_eq!(d[0].window.as_deref(), Some(&ids(&[1, 10, 8])[..]));
    assert_eq!(live.result(sub), Some(index.run(&top).expect("valid")));

    // Offset windows too.
    let page2 = Query::new(Filter::All)
        .order_by("score", false)
        .offset(2)
        .limit(2);
    let (_, p) = live.subscribe(page2.clone(), &index).expect("valid");
    assert_eq!(p, index.run(&page2).expect("valid"));
}

#[test]
fn live_traversal_query_reruns() {
    let mut index = tree();
    let mut live = LiveQueries::new();
    let inside = Query::new(reach(1, "parent", Direction::Incoming, 10));
    let (sub, initial) = live.subscribe(inside, &index).expect("valid");
    assert_eq!(initial, ids(&[2, 3, 4, 5]));
    // Moving 2 out of the tree removes its whole subtree, though only 2 changed.
    index.upsert(obj(2, "folder", vec![]));
    let d = live.on_change(&index, &[oid(2)]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].subscription, sub);
    assert_eq!(d[0].removed, ids(&[2, 3, 4]));
    assert!(d[0].added.is_empty());
    // A new child appears.
    index.upsert(obj(6, "doc", vec![("parent", rf(5))]));
    let d = live.on_change(&index, &[oid(6)]);
    assert_eq!(d[0].added, ids(&[6]));
    // A change of a member that keeps it in the result.
    index.upsert(obj(6, "doc", vec![("parent", rf(5)), ("x", Value::Int(1))]));
    let d = live.on_change(&index, &[oid(6)]);
    assert_eq!(d[0].changed, ids(&[6]));
}

// ------------------------------------------------- property: index == naive

mod naive {
    //! A deliberately simple reference evaluator: full scans, f64 numbers
    //! (the generated ints are small, so the conversion is exact).
    use super::*;
    use std::cmp::Ordering;

    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::String(_) | Value::Text(_) => 3,
            Value::Bytes(_) => 4,
            Value::Ref(_) => 5,
            Value::List(_) => 6,
            Value::Map(_) => 7,
        }
    }

    fn num(v: &Value) -> f64 {
        match v {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => unreachable!(),
        }
    }

    pub fn cmp(a: &Value, b: &Value) -> Ordering {
        if rank(a) != rank(b) {
            return rank(a).cmp(&rank(b));
        }
        match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::Int(_) | Value::Float(_), _) => {
                let (x, y) = (num(a), num(b));
                match (x.is_nan(), y.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ => x.partial_cmp(&y).expect("not NaN"),
                }
            }
            (Value::String(x) | Value::Text(x), Value::String(y) | Value::Text(y)) => x.cmp(y),
            (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
            (Value::Ref(x), Value::Ref(y)) => x.cmp(y),
            (Value::List(x), Value::List(y)) => {
                let n = x.len().min(y.len());
                (0..n)
                    .map(|i| cmp(&x[i], &y[i]))
                    .find(|o| o.is_ne())
                    .unwrap_or(x.len().cmp(&y.len()))
            }
            (Value::Map(x), Value::Map(y)) => {
                let xs: Vec<_> = x.iter().collect();
                let ys: Vec<_> = y.iter().collect();
                let n = xs.len().min(ys.len());
                (0..n)
                    .map(|i| xs[i].0.cmp(ys[i].0).then(cmp(xs[i].1, ys[i].1)))
                    .find(|o| o.is_ne())
                    .unwrap_or(xs.len().cmp(&ys.len()))
            }
            _ => Ordering::Equal,
        }
    }

    fn local_refs(v: &Value, out: &mut Vec<ObjectId>) {
        match v {
            Value::Ref(r) if r.space.is_none() => out.push(r.object),
            Value::List(l) => l.iter().for_each(|x| local_refs(x, out)),
            Value::Map(m) => m.values().for_each(|x| local_refs(x, out)),
            _ => {}
        }
    }

    fn refs(s: &ObjectState, field: &str) -> Vec<ObjectId> {
        let mut out = Vec::new();
        if let Some(v) = s.fields.get(field) {
            local_refs(v, &mut out);
        }
        out
    }

    type Objs = BTreeMap<ObjectId, ObjectState>;

    fn live(objs: &Objs, id: &ObjectId, incl: bool) -> Option<ObjectState> {
        objs.get(id).filter(|s| incl || !s.deleted).cloned()
    }

    fn matches(objs: &Objs, f: &Filter, s: &ObjectState, incl: bool) -> bool {
        match f {
            Filter::All => true,
            Filter::Type(t) => &s.type_name == t,
            Filter::Field { field, op, value } => s.fields.get(field).is_some_and(|v| {
                let c = cmp(v, value);
                match op {
                    Compare::Eq => c.is_eq(),
                    Compare::Ne => c.is_ne(),
                    _ if rank(v) != rank(value) => false,
                    Compare::Lt => c.is_lt(),
                    Compare::Le => c.is_le(),
                    Compare::Gt => c.is_gt(),
                    Compare::Ge => c.is_ge(),
                }
            }),
            Filter::In { field, values } => s
                .fields
                .get(field)
                .is_some_and(|v| values.iter().any(|x| cmp(v, x).is_eq())),
            Filter::Exists(field) => s.fields.contains_key(field),
            Filter::TextContains { field, needle } => s
                .fields
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|t| t.to_lowercase().contains(&needle.to_lowercase())),
            Filter::ListContains { field, value } => match s.fields.get(field) {
                Some(Value::List(l)) => l.iter().any(|x| cmp(x, value).is_eq()),
                _ => false,
            },
            Filter::References(x) => s.fields.keys().any(|k| refs(s, k).contains(x)),
            Filter::RefersTo { field, target } => refs(s, field)
                .iter()
                .any(|t| live(objs, t, incl).is_some_and(|ts| matches(objs, target, &ts, incl))),
            Filter::Reachable {
                root,
                field,
                direction,
                max_depth,
            } => {
                let mut reached = BTreeSet::new();
                let mut level = BTreeSet::from([*root]);
                for _ in 0..*max_depth {
                    let mut next = BTreeSet::new();
                    for id in &level {
                        let Some(w) = live(objs, id, incl) else {
                            continue;
                        };
                        match direction {
                            Direction::Outgoing => next.extend(refs(&w, field)),
                            Direction::Incoming => next.extend(
                                objs.values()
                                    .filter(|o| refs(o, field).contains(id))
                                    .map(|o| o.id),
                            ),
                        }
                    }
                    reached.extend(next.iter().copied());
                    level = next;
                }
                s.id != *root && reached.contains(&s.id)
            }
            Filter::And(fs) => fs.iter().all(|f| matches(objs, f, s, incl)),
            Filter::Or(fs) => fs.iter().any(|f| matches(objs, f, s, incl)),
            Filter::Not(f) => !matches(objs, f, s, incl),
        }
    }

    pub fn run(objs: &Objs, q: &Query) -> Vec<ObjectId> {
        let mut rows: Vec<&ObjectState> = objs
            .values()
            .filter(|s| {
                (q.include_deleted || !s.deleted) && matches(objs, &q.filter, s, q.include_deleted)
            })
            .collect();
        rows.sort_by(|a, b| {
            for o in &q.order {
                let c = match (a.fields.get(&o.field), b.fields.get(&o.field)) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => cmp(x, y),
                };
                let c = if o.descending { c.reverse() } else { c };
                if c.is_ne() {
                    return c;
                }
            }
            a.id.cmp(&b.id)
        });
        rows.into_iter()
            .map(|s| s.id)
            .skip(q.offset)
            .take(q.limit.unwrap_or(usize::MAX))
            .collect()
    }
}

mod property {
    use super::*;
    use proptest::prelude::*;

    const N: u8 = 12;
    const FIELDS: [&str; 4] = ["a", "b", "r", "zz"];

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..4).prop_map(Value::Int),
            prop_oneof![
                Just(-1.5),
                Just(0.0),
                Just(-0.0),
                Just(2.0),
                Just(3.0),
                Just(f64::NAN),
                Just(f64::INFINITY)
            ]
            .prop_map(Value::Float),
            prop_oneof![Just(""), Just("a"), Just("Ab"), Just("b"), Just("ÄB")]
                .prop_map(|s| Value::String(s.into())),
            prop_oneof![Just("a"), Just("xAy")].prop_map(|s| Value::Text(s.into())),
            prop_oneof![Just(vec![]), Just(vec![1u8])].prop_map(Value::Bytes),
        ]
    }

    fn reference() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => (0..N).prop_map(rf),
            1 => (0..N).prop_map(|n| Value::Ref(Reference::remote(SpaceId::from_bytes([1; 16]), oid(n)))),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => scalar(),
            3 => reference(),
            2 => prop::collection::vec(prop_oneof![scalar(), reference()], 0..3).prop_map(Value::List),
            1 => prop::collection::btree_map(prop_oneof![Just("k".to_owned()), Just("l".to_owned())], reference(), 0..2)
                .prop_map(Value::Map),
        ]
    }

    fn refs() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => reference(),
            2 => prop::collection::vec(reference(), 0..3).prop_map(Value::List),
            1 => value(),
        ]
    }

    /// `a`: scalars, `b`: anything, `r`: mostly references.
    fn object() -> impl Strategy<Value = ObjectState> {
        let opt = |s: BoxedStrategy<Value>| prop::option::weighted(0.75, s);
        (
            0..N,
            0..3u8,
            (
                opt(scalar().boxed()),
                opt(value().boxed()),
                opt(refs().boxed()),
            ),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(n, t, (a, b, r), deleted)| ObjectState {
                id: oid(n),
                type_name: format!("t{t}"),
                fields: [("a", a), ("b", b), ("r", r)]
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                    .collect(),
                deleted,
            })
    }

    fn field() -> impl Strategy<Value = String> {
        prop::sample::select(&FIELDS[..]).prop_map(str::to_owned)
    }

    fn op() -> impl Strategy<Value = Compare> {
        prop::sample::select(vec![
            Compare::Eq,
            Compare::Ne,
            Compare::Lt,
            Compare::Le,
            Compare::Gt,
            Compare::Ge,
        ])
    }

    fn filter() -> impl Strategy<Value = Filter> {
        let leaf = prop_oneof![
            Just(Filter::All),
            (0..4u8).prop_map(|t| Filter::Type(format!("t{t}"))),
            (field(), op(), value()).prop_map(|(field, op, value)| Filter::Field {
                field,
                op,
                value
            }),
            (field(), op(), scalar()).prop_map(|(field, op, value)| Filter::Field {
                field,
                op,
                value
            }),
            (op(), scalar()).prop_map(|(op, value)| Filter::Field {
                field: "a".into(),
                op,
                value
            }),
            (op(), scalar(), op(), scalar()).prop_map(|(o1, v1, o2, v2)| Filter::And(vec![
                Filter::field("a", o1, v1),
                Filter::field("a", o2, v2),
            ])),
            (field(), prop::collection::vec(value(), 0..4))
                .prop_map(|(field, values)| Filter::In { field, values }),
            field().prop_map(Filter::Exists),
            (
                field(),
                prop_oneof![Just("a"), Just("B"), Just(""), Just("ä")]
            )
                .prop_map(|(field, n)| {
                    Filter::TextContains {
                        field,
                        needle: n.into(),
                    }
                }),
            (field(), prop_oneof![scalar(), reference()])
                .prop_map(|(field, value)| Filter::ListContains { field, value }),
            (0..N).prop_map(|n| Filter::References(oid(n))),
            (0..N, field(), any::<bool>(), 1..5u32).prop_map(|(n, field, out, max_depth)| {
                Filter::Reachable {
                    root: oid(n),
                    field,
                    direction: if out {
                        Direction::Outgoing
                    } else {
                        Direction::Incoming
                    },
                    max_depth,
                }
            }),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
                prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::Or),
                inner.clone().prop_map(|f| Filter::Not(Box::new(f))),
                (field(), inner).prop_map(|(field, t)| Filter::RefersTo {
                    field,
                    target: Box::new(t),
                }),
            ]
        })
    }

    fn query() -> impl Strategy<Value = Query> {
        (
            filter(),
            prop::collection::vec((field(), any::<bool>()), 0..3),
            prop::option::of(0..6usize),
            prop_oneof![3 => Just(0usize), 1 => 0..5usize],
            prop::bool::weighted(0.3),
        )
            .prop_map(|(filter, order, limit, offset, include_deleted)| Query {
                filter,
                order: order
                    .into_iter()
                    .map(|(field, descending)| Order { field, descending })
                    .collect(),
                limit,
                offset,
                include_deleted,
            })
    }

    fn has_bad_range(f: &Filter) -> bool {
        match f {
            Filter::Field { op, value, .. } => {
                matches!(op, Compare::Lt | Compare::Le | Compare::Gt | Compare::Ge)
                    && matches!(
                        value,
                        Value::Null | Value::Ref(_) | Value::List(_) | Value::Map(_)
                    )
            }
            Filter::And(fs) | Filter::Or(fs) => fs.iter().any(has_bad_range),
            Filter::Not(f) | Filter::RefersTo { target: f, .. } => has_bad_range(f),
            _ => false,
        }
    }

    /// Applies a diff to a previous result the way a client would.
    fn apply(prev: &[ObjectId], d: &LiveDiff) -> Vec<ObjectId> {
        if let Some(w) = &d.window {
            return w.clone();
        }
        let mut set: BTreeSet<ObjectId> = prev.iter().copied().collect();
        for id in &d.removed {
            assert!(set.remove(id), "removed id was not in the result");
        }
        for id in &d.added {
            assert!(set.insert(*id), "added id was already in the result");
        }
        for id in &d.changed {
            assert!(set.contains(id), "changed id is not in the result");
        }
        set.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn indexed_run_matches_naive_and_live_diffs_track_it(
            initial in prop::collection::vec(object(), 0..20),
            updates in prop::collection::vec(prop::collection::vec(object(), 1..4), 0..4),
            queries in prop::collection::vec(query(), 1..4),
            stored in any::<bool>(),
        ) {
            let mut index = Index::new();
            let mut objs = BTreeMap::new();
            for o in initial {
                objs.insert(o.id, o.clone());
                index.upsert(o);
            }
            if stored {
                // As a space opens: not decoded until read.
                index = Index::stored_from(objs.values());
            }
            let mut live = LiveQueries::new();
            let mut subs = Vec::new();
            for q in &queries {
                match index.run(q) {
                    Err(e) => {
                        prop_assert_eq!(e.code(), "query.incomparable");
                        prop_assert!(has_bad_range(&q.filter));
                        continue;
                    }
                    Ok(got) => {
                        prop_assert!(!has_bad_range(&q.filter));
                        prop_assert_eq!(&got, &naive::run(&objs, q), "query {:?}", q);
                        let (sid, res) = live.subscribe(q.clone(), &index).expect("valid");
                        prop_assert_eq!(&res, &got);
                        subs.push((sid, q.clone(), res));
                    }
                }
            }
            // Lazily built indexes are now maintained through upserts.
            for batch in updates {
                let changed: Vec<ObjectId> = batch.iter().map(|o| o.id).collect();
                for o in batch {
                    objs.insert(o.id, o.clone());
                    index.upsert(o);
                }
                let diffs = live.on_change(&index, &changed);
                for (sid, q, res) in subs.iter_mut() {
                    let expected = naive::run(&objs, q);
                    prop_assert_eq!(&index.run(q).expect("valid"), &expected, "after update: {:?}", q);
                    let mine: Vec<&LiveDiff> = diffs.iter().filter(|d| d.subscription == *sid).collect();
                    prop_assert!(mine.len() <= 1);
                    if let Some(d) = mine.first() {
                        let next = apply(res, d);
                        prop_assert!(next != *res || !d.changed.is_empty() || d.window.is_some(), "empty diff");
                        *res = next;
                    }
                    prop_assert_eq!(&*res, &expected, "live result of {:?}", q);
                }
            }
            // A fresh index (no lazy state) agrees with the maintained one.
            let mut fresh = Index::new();
            for o in objs.values() {
                fresh.upsert(o.clone());
            }
            for (_, q, _) in &subs {
                prop_assert_eq!(fresh.run(q).expect("valid"), index.run(q).expect("valid"));
            }
        }
    }

    // Conjunctions of index answers: the planner intersects them through the
    // indexes (merging or probing sets, `Or` / `Not` / `In` / `Reachable`
    // included) and walks the order field's index both ways. Many objects
    // with few distinct values, so every part matches a lot.

    const M: u8 = 60;

    fn small() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            (0i64..3).prop_map(Value::Int),
            Just(Value::Float(1.0)),
            Just(Value::String("x".into())),
        ]
    }

    fn dense_object() -> impl Strategy<Value = ObjectState> {
        (
            0..M,
            0..3u8,
            prop::option::weighted(0.9, small()),
            prop::option::weighted(0.6, small()),
            prop::option::weighted(0.5, (0..M).prop_map(rf)),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(n, t, a, b, r, deleted)| ObjectState {
                id: oid(n),
                type_name: format!("t{t}"),
                fields: [("a", a), ("b", b), ("r", r)]
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                    .collect(),
                deleted,
            })
    }

    fn indexable() -> impl Strategy<Value = Filter> {
        let ab = || prop_oneof![Just("a"), Just("b")];
        let leaf = prop_oneof![
            4 => (0..4u8).prop_map(|t| Filter::Type(format!("t{t}"))),
            4 => (ab(), small()).prop_map(|(f, v)| Filter::eq(f, v)),
            2 => (ab(), prop::collection::vec(small(), 0..3))
                .prop_map(|(f, values)| Filter::In { field: f.into(), values }),
            1 => (0..M, 1..3u32).prop_map(|(n, max_depth)| Filter::Reachable {
                root: oid(n),
                field: "r".into(),
                direction: Direction::Incoming,
                max_depth,
            }),
            // Not decidable from indexes alone: checked on the objects.
            1 => Just(Filter::Exists("b".into())),
            1 => (ab(), small()).prop_map(|(f, v)| Filter::field(f, Compare::Ne, v)),
            1 => (ab(), small()).prop_map(|(f, v)| Filter::field(f, Compare::Ge, v)),
        ];
        let nested = leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        });
        prop::collection::vec(nested, 1..4).prop_map(Filter::And)
    }

    fn dense_query() -> impl Strategy<Value = Query> {
        (
            indexable(),
            prop::collection::vec((prop_oneof![Just("a"), Just("b")], any::<bool>()), 0..3),
            prop::option::of(0..8usize),
            prop_oneof![3 => Just(0usize), 1 => 0..3usize],
            prop::bool::weighted(0.2),
        )
            .prop_map(|(filter, order, limit, offset, include_deleted)| Query {
                filter,
                order: order
                    .into_iter()
                    .map(|(f, descending)| Order {
                        field: f.into(),
                        descending,
                    })
                    .collect(),
                limit,
                offset,
                include_deleted,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn conjunctions_of_index_answers_match_naive(
            initial in prop::collection::vec(dense_object(), 0..80),
            updates in prop::collection::vec(dense_object(), 0..10),
            removed in prop::collection::vec(0..M, 0..4),
            queries in prop::collection::vec(dense_query(), 1..5),
            stored in any::<bool>(),
        ) {
            let mut index = Index::new();
            let mut objs = BTreeMap::new();
            for o in initial {
                objs.insert(o.id, o.clone());
                index.upsert(o);
            }
            if stored {
                index = Index::stored_from(objs.values());
            }
            for q in &queries {
                let got = index.run(q).expect("valid");
                prop_assert_eq!(&got, &naive::run(&objs, q), "query {:?}", q);
            }
            // The built indexes (and their presence counts) are maintained.
            for o in updates {
                objs.insert(o.id, o.clone());
                index.upsert(o);
            }
            for n in removed {
                objs.remove(&oid(n));
                index.remove(&oid(n));
            }
            for q in &queries {
                let got = index.run(q).expect("valid");
                prop_assert_eq!(&got, &naive::run(&objs, q), "after updates: {:?}", q);
            }
        }
    }
}

#[test]
fn range_conjuncts_on_one_field_merge() {
    let mut index = Index::new();
    for n in 0..50u8 {
        index.upsert(obj(n, "t", vec![("n", Value::Int(i64::from(n)))]));
    }
    index.upsert(obj(60, "t", vec![("n", "str".into())]));
    let between = |lo: (Compare, Value), hi: (Compare, Value)| {
        run(
            &index,
            Filter::And(vec![
                Filter::field("n", lo.0, lo.1),
                Filter::type_is("t"),
                Filter::field("n", hi.0, hi.1),
            ]),
        )
    };
    assert_eq!(
        between(
            (Compare::Ge, Value::Int(10)),
            (Compare::Lt, Value::Float(13.0))
        ),
        ids(&[10, 11, 12])
    );
    assert_eq!(
        between(
            (Compare::Gt, Value::Float(9.5)),
            (Compare::Le, Value::Int(12))
        ),
        ids(&[10, 11, 12])
    );
    // Inverted, empty and single-point ranges don't panic.
    assert!(between((Compare::Gt, Value::Int(20)), (Compare::Lt, Value::Int(10))).is_empty());
    assert!(between((Compare::Gt, Value::Int(20)), (Compare::Lt, Value::Int(20))).is_empty());
    assert!(between((Compare::Ge, Value::Int(20)), (Compare::Lt, Value::Int(20))).is_empty());
    assert_eq!(
        between((Compare::Ge, Value::Int(20)), (Compare::Le, Value::Int(20))),
        ids(&[20])
    );
    // Ranges of different kinds exclude each other.
    assert!(between((Compare::Ge, Value::Int(0)), (Compare::Le, "zzz".into())).is_empty());
    assert_eq!(
        between((Compare::Ge, "a".into()), (Compare::Le, "zzz".into())),
        ids(&[60])
    );
    // Tighter bounds of the same side.
    assert_eq!(
        between((Compare::Lt, Value::Int(3)), (Compare::Le, Value::Int(1))),
        ids(&[0, 1])
    );
}

#[test]
fn ascending_window_walks_the_index_only_when_every_object_has_the_field() {
    let mut index = Index::new();
    for n in 0..40u8 {
        let ty = if n % 2 == 0 { "even" } else { "odd" };
        let flag = Value::Bool(n % 4 < 2);
        index.upsert(obj(
            n,
            ty,
            vec![("n", Value::Int(40 - i64::from(n))), ("f", flag)],
        ));
    }
    let first_two = |index: &Index| {
        index
            .run(
                &Query::new(Filter::And(vec![
                    Filter::type_is("even"),
                    Filter::eq("f", true),
                ]))
                .order_by("n", false)
                .limit(2),
            )
            .expect("valid")
    };
    // Even with f = true: 0, 4, 8, …, 36; ascending n = 40 - id.
    assert_eq!(first_two(&index), ids(&[36, 32]));
    // An object without `n` sorts first, so the walk must not skip it.
    index.upsert(obj(8, "even", vec![("f", Value::Bool(true))]));
    assert_eq!(first_two(&index), ids(&[8, 36]));
    // A non-matching object without `n` doesn't change the window.
    index.upsert(obj(
        8,
        "even",
        vec![("n", Value::Int(32)), ("f", Value::Bool(true))],
    ));
    index.upsert(obj(50, "odd", vec![("f", Value::Bool(true))]));
    assert_eq!(first_two(&index), ids(&[36, 32]));
    // Removing it restores the count of objects holding `n`.
    index.remove(&oid(50));
    assert_eq!(first_two(&index), ids(&[36, 32]));
    let desc = Query::new(Filter::And(vec![
        Filter::type_is("even"),
        Filter::eq("f", true),
    ]))
    .order_by("n", true)
    .limit(3);
    assert_eq!(index.run(&desc).expect("valid"), ids(&[0, 4, 8]));
}
