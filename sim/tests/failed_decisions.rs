//! A decision of the user that is answered as failed gives nothing, even when
//! a flush that stores only part of a turn (the grants alone first, or one
//! space after a flush over quota) was stored before the one that failed
//! (`core/src/vault/flush.rs` `storable_grants`). Found by the API-sequence
//! property test (`api_sequences.rs`, bug D).

use echo_core::rpc::{AdminMessage, AdminReply, AdminRequest, AdminResponse, Request, WireFields};
use echo_core::store::StoreError;
use echo_core::vault::{ConnId, Input};
use echo_sim::Node;

const A: &str = "https://a.example";
const B: &str = "https://b.example";
const T: u64 = 1_700_000_000_000;

fn quota() -> StoreError {
    StoreError::QuotaExceeded {
        store: "memory".into(),
        message: "full".into(),
    }
}

fn setup() -> (Node, ConnId, ConnId, String, String) {
    let mut n = Node::new("vault", 0, T);
    let admin = n.connect_admin(T);
    n.allow(T, A, vec![]);
    let a = n.connect_app(T, A);
    let (s0, s1) = (n.create_space(T, a), n.create_space(T, a));
    n.allow(T, B, vec![s0.clone()]);
    (n, admin, a, s0, s1)
}

/// One turn: a decision about B and app A's writes in `writes`; the
/// decision's call id.
fn turn(n: &mut Node, admin: ConnId, a: ConnId, b_spaces: Vec<String>, writes: &[&String]) -> u32 {
    n.auto_io = false;
    let decide = n.next_id();
    let mut inputs = vec![Input::AdminMessage {
        conn: admin,
        message: Ok(AdminMessage::Request {
            id: decide,
            method: AdminRequest::Decide {
                origin: B.into(),
                allow: true,
                spaces: b_spaces,
            },
        }),
    }];
    for s in writes {
        let create = Request::CreateObject {
            space: (*s).clone(),
            id: None,
            type_name: "t".into(),
            fields: WireFields::new(),
        };
        inputs.push(n.request(a, create).1);
    }
    n.input_many(T, inputs);
    decide
}

fn failed_decision_gives_nothing(n: &mut Node, admin: ConnId, decide: u32, s1: &str) {
    n.auto_io = true;
    let answer = n.admin[&admin].iter().find_map(|m| match m {
        AdminReply::Response { id, result } if *id == decide => Some(result.clone()),
        _ => None,
    });
    assert!(matches!(answer, Some(Err(_))), "{answer:?}");
    for restart in [false, true] {
        if restart {
            n.restart(T + 1);
        }
        let admin = n.connect_admin(T + 1);
        let Ok(AdminResponse::Apps { apps }) =
            n.admin_call(T + 1, admin, AdminRequest::ListApps {})
        else {
            panic!()
        };
        let b = apps.iter().find(|g| g.origin == B).unwrap();
        assert!(
            !b.spaces.iter().any(|s| s == s1),
            "restart {restart}: a failed decision gave B {s1}: {b:?}"
        );
    }
}

#[test]
fn a_decision_answered_as_failed_gives_nothing() {
    let (mut n, admin, a, s0, s1) = setup();
    // B: {s0} -> {s1} (takes and gives) with an app write: the grants go
    // alone first.
    let decide = turn(&mut n, admin, a, vec![s1.clone()], &[&s0]);
    n.complete_one_write(T);
    n.fail_write(
        T,
        StoreError::Io {
            store: "memory".into(),
            key: None,
            message: "gone".into(),
        },
    );
    n.complete_io(T);
    failed_decision_gives_nothing(&mut n, admin, decide, &s1);
}

#[test]
fn a_decision_answered_as_failed_gives_nothing_after_a_flush_over_quota() {
    let (mut n, admin, a, s0, s1) = setup();
    // B: {s0} -> {s0, s1}; writes in two spaces: the retry goes space by
    // space.
    let decide = turn(&mut n, admin, a, vec![s0.clone(), s1.clone()], &[&s0, &s1]);
    n.fail_write(T, quota());
    n.complete_one_write(T);
    while !n.writes.is_empty() {
        n.fail_write(T, quota());
    }
    failed_decision_gives_nothing(&mut n, admin, decide, &s1);
}
