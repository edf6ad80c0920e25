//! One app near the storage quota must not fail other apps' writes
//! (`core/src/vault/flush.rs`): when a flush holding several spaces' writes
//! fails over quota, each space is written on its own, and only the writes
//! that do not fit fail — the others are answered, and stored.

use echo_core::rpc::{Request, Response, WireFields, WireFilter, WireQuery, WireValue};
use echo_core::vault::ConnId;
use echo_sim::Node;

const A: &str = "https://a.example";
const B: &str = "https://b.example";
const T: u64 = 1_700_000_000_000;

fn note(space: &str, body: String) -> Request {
    let mut fields = WireFields::new();
    fields.insert("body".into(), WireValue::String(body));
    Request::CreateObject {
        space: space.into(),
        id: None,
        type_name: "note".into(),
        fields,
    }
}

fn notes(n: &mut Node, now: u64, conn: ConnId, space: &str) -> usize {
    let query = WireQuery {
        filter: WireFilter::Type("note".into()),
        order: Vec::new(),
        limit: None,
        offset: 0,
        include_deleted: false,
    };
    match n
        .call(
            now,
            conn,
            Request::Query {
                space: space.into(),
                query,
                at: None,
                resolve: false,
            },
        )
        .unwrap()
    {
        Response::Result { ids, .. } => ids.len(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_write_over_quota_fails_alone_and_the_other_apps_write_is_stored() {
    let mut n = Node::new("vault", 31, T);
    n.allow(T, A, vec![]);
    n.allow(T, B, vec![]);
    let a = n.connect_app(T, A);
    let b = n.connect_app(T, B);
    let big_space = n.create_space(T, a);
    let small_space = n.create_space(T, b);
    // A browser with little room left: any transaction putting more than
    // 64 KiB fails.
    n.quota_bytes = Some(64 * 1024);
    // In one turn: A writes 200 KB, B a small note.
    let (big, first) = n.request(a, note(&big_space, "x".repeat(200_000)));
    let (small, second) = n.request(b, note(&small_space, "hello".into()));
    n.input_many(T, vec![first, second]);
    n.complete_io(T);
    assert_eq!(
        n.answer(a, big).expect("A answered").unwrap_err().code,
        "store.quota_exceeded"
    );
    assert!(
        matches!(n.answer(b, small), Some(Ok(Response::Written { .. }))),
        "B's write failed with A's: {:?}",
        n.answer(b, small)
    );
    // Nothing is left to write once idle.
    assert!(n.writes.is_empty());
    n.quota_bytes = None;
    // A's space is as stored (without the big note); both go on working.
    assert_eq!(notes(&mut n, T, a, &big_space), 0);
    assert_eq!(notes(&mut n, T, b, &small_space), 1);
    n.call(T, a, note(&big_space, "small".into())).unwrap();
    n.restart(T + 1);
    let a = n.connect_app(T + 1, A);
    let b = n.connect_app(T + 1, B);
    assert_eq!(notes(&mut n, T + 1, a, &big_space), 1);
    assert_eq!(notes(&mut n, T + 1, b, &small_space), 1);
}

#[test]
fn a_new_space_over_quota_goes_and_a_new_space_that_fits_stays_with_its_grant() {
    let mut n = Node::new("vault", 37, T);
    n.allow(T, A, vec![]);
    n.allow(T, B, vec![]);
    let a = n.connect_app(T, A);
    let b = n.connect_app(T, B);
    n.quota_bytes = Some(64 * 1024);
    let mut props = WireFields::new();
    props.insert("name".into(), WireValue::String("y".repeat(100_000)));
    let (big, first) = n.request(a, Request::CreateSpace { properties: props });
    let (small, second) = n.request(
        b,
        Request::CreateSpace {
            properties: WireFields::new(),
        },
    );
    n.input_many(T, vec![first, second]);
    n.complete_io(T);
    assert_eq!(
        n.answer(a, big).expect("A answered").unwrap_err().code,
        "store.quota_exceeded"
    );
    let Some(Ok(Response::Space(info))) = n.answer(b, small) else {
        panic!("B's space: {:?}", n.answer(b, small))
    };
    n.quota_bytes = None;
    n.restart(T + 1);
    let a = n.connect_app(T + 1, A);
    let b = n.connect_app(T + 1, B);
    let Response::Spaces { spaces } = n.call(T + 1, b, Request::ListSpaces {}).unwrap() else {
        panic!()
    };
    assert_eq!(
        spaces.iter().map(|s| s.space.clone()).collect::<Vec<_>>(),
        vec![info.space]
    );
    let Response::Spaces { spaces } = n.call(T + 1, a, Request::ListSpaces {}).unwrap() else {
        panic!()
    };
    assert!(spaces.is_empty());
}
