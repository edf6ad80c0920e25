//! One app near the storage quota must not fail other apps' writes
//! (`core/src/vault/flush.rs`): when a flush holding several spaces' writes
//! fails over quota, each space is written on its own, and only the writes
//! that do not fit fail — the others are answered, and stored. And one
//! site may not take the vault's storage from the others: each site's
//! spaces hold at most its share (`core/src/vault/quota.rs`).

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

/// `len` characters that do not compress (a space's chunks are compressed).
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

const SHARE: u64 = 256 * 1024;

#[test]
fn a_site_over_its_share_cannot_grow_its_spaces_and_other_sites_write_on() {
    let mut n = Node::with_config("vault", 32, T, |c| c.origin_quota = Some(SHARE));
    n.allow(T, A, vec![]);
    let a = n.connect_app(T, A);
    let a_space = n.create_space(T, a);
    // A writes 32 KiB notes until the vault refuses.
    let mut stored = 0;
    let refusal = loop {
        match n.call(T, a, note(&a_space, noise(stored, 32 * 1024))) {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(
            stored < 64,
            "A wrote {stored} × 32 KiB past a 256 KiB share"
        );
    };
    assert_eq!(refusal.code, "store.quota_exceeded");
    assert_eq!(refusal.detail("scope"), Some("site"));
    assert_eq!(refusal.detail("site"), Some(A));
    let used: u64 = refusal.detail("used").unwrap().parse().unwrap();
    assert!(used >= SHARE, "refused at {used} bytes");
    // A note is stored twice (in the CRDT, and its state beside it for
    // fast opens): one call may end over the share by that, not more.
    assert!(
        used < SHARE + 3 * 32 * 1024,
        "one call may end over the share by its own size, not more: {used}"
    );
    assert!(
        refusal.message.contains("this site's spaces hold"),
        "{}",
        refusal.message
    );
    assert!(
        stored >= 3,
        "A stored {stored} notes of 32 KiB in a 256 KiB share"
    );
    // Nothing else of A's grows: no new space, no property; reads and
    // deletes still work.
    let created = n.call(
        T,
        a,
        Request::CreateSpace {
            properties: Default::default(),
        },
    );
    assert_eq!(created.unwrap_err().code, "store.quota_exceeded");
    assert_eq!(notes(&mut n, T, a, &a_space), stored as usize);

    // B has a share of its own, and writing in A's space (granted to it
    // too) counts against A's.
    n.allow(T, B, vec![a_space.clone()]);
    let b = n.connect_app(T, B);
    let b_space = n.create_space(T, b);
    for i in 0..4 {
        n.call(T, b, note(&b_space, noise(1_000 + i, 32 * 1024)))
            .expect("B writes in its own space");
    }
    let e = n
        .call(T, b, note(&a_space, "small".into()))
        .expect_err("A's space is full for every app");
    assert_eq!(e.detail("site"), Some(A));
    assert!(e.message.contains(A), "{}", e.message);

    // After a restart A's full space is not open: its recorded size counts
    // (it lags the exact one by less than a step). A new space of A's takes
    // at most about that before A is refused again — not a new share.
    n.restart(T + 1);
    let a = n.connect_app(T + 1, A);
    let mut more = 0;
    if let Ok(Response::Space(info)) = n.call(
        T + 1,
        a,
        Request::CreateSpace {
            properties: Default::default(),
        },
    ) {
        while n
            .call(T + 1, a, note(&info.space, noise(500 + more, 16 * 1024)))
            .is_ok()
        {
            more += 1;
            assert!(more < 64, "A wrote past its share after a restart");
        }
    }
    assert!(
        more * 16 * 1024 <= 2 * 64 * 1024,
        "after a restart A wrote {more} × 16 KiB more: its full space's size was not recorded"
    );
    let b = n.connect_app(T + 1, B);
    n.call(T + 1, b, note(&b_space, "still fine".into()))
        .expect("B writes on");
}

#[test]
fn without_a_share_a_site_writes_as_much_as_storage_takes() {
    let mut n = Node::new("vault", 33, T);
    n.allow(T, A, vec![]);
    let a = n.connect_app(T, A);
    let space = n.create_space(T, a);
    for i in 0..12 {
        n.call(T, a, note(&space, noise(i, 32 * 1024)))
            .expect("no share configured: no refusal");
    }
}
