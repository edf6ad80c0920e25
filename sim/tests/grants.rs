//! The user's decisions about apps fail closed (`core/src/vault/grants.rs`,
//! `flush.rs`): a revocation that meets a failing write holds and is
//! written again until stored; it is written before an app's data, in a
//! transaction of its own; narrowing a grant ends the app's live queries
//! on the spaces taken away and tells it; re-allowing gives exactly what
//! the user checked.

use echo_core::rpc::{
    AdminRequest, Event, Request, Response, VaultMessage, WireFields, WireFilter, WireQuery,
    WireValue,
};
use echo_core::store::StoreError;
use echo_core::vault::{ConnId, Input};
use echo_sim::Node;

const APP: &str = "https://app.example";
const OTHER: &str = "https://other.example";
const T: u64 = 1_700_000_000_000;

fn node() -> Node {
    Node::new("vault", 23, T)
}

fn task(space: &str, title: &str) -> Request {
    let mut fields = WireFields::new();
    fields.insert("title".into(), WireValue::String(title.into()));
    Request::CreateObject {
        space: space.into(),
        id: None,
        type_name: "task".into(),
        fields,
    }
}

fn subscribe(space: &str) -> Request {
    Request::Subscribe {
        space: space.into(),
        query: WireQuery {
            filter: WireFilter::Type("task".into()),
            order: Vec::new(),
            limit: None,
            offset: 0,
            include_deleted: false,
        },
        resolve: false,
    }
}

fn quota() -> StoreError {
    StoreError::QuotaExceeded {
        store: "test".into(),
        message: "full".into(),
    }
}

/// Hands the vault a management call without waiting for its answer.
fn admin_request(n: &mut Node, admin: ConnId, method: AdminRequest) {
    let id = n.next_id();
    n.input(
        T,
        Input::AdminMessage {
            conn: admin,
            message: Ok(echo_core::rpc::AdminMessage::Request { id, method }),
        },
    );
}

/// The consent a fresh connection of `origin` is welcomed with.
fn consent(n: &mut Node, now: u64, origin: &str) -> echo_core::rpc::Consent {
    let conn = n.connect_app(now, origin);
    n.app[&conn]
        .iter()
        .find_map(|m| match m {
            VaultMessage::Welcome { vault, .. } => Some(vault.consent),
            _ => None,
        })
        .expect("welcomed")
}

#[test]
fn a_revocation_that_meets_a_failing_write_holds_and_is_stored_by_a_retry() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let admin = n.connect_admin(T);
    n.auto_io = false;
    admin_request(&mut n, admin, AdminRequest::Revoke { origin: APP.into() });
    n.fail_write(T, quota());
    n.drain(T);
    // The revocation holds in memory: the app is out.
    assert_eq!(consent(&mut n, T, APP), echo_core::rpc::Consent::Required);
    assert!(n.writes.is_empty(), "retried at once, not after a wait");
    // It is written again once the wait is over.
    let at = n.vault().poll_timeout().expect("a retry is scheduled");
    assert!(at > T && at <= T + 1_000, "retry at +{} ms", at - T);
    n.input(at, Input::Timeout);
    assert_eq!(n.writes.len(), 1, "the retry");
    n.complete_io(at);
    assert!(n.vault().poll_timeout().is_none_or(|t| t > at + 1_000));
    n.auto_io = true;
    n.restart(at + 1);
    assert_eq!(
        consent(&mut n, at + 1, APP),
        echo_core::rpc::Consent::Required
    );
}

#[test]
fn retries_back_off_while_storage_keeps_failing() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let admin = n.connect_admin(T);
    n.auto_io = false;
    admin_request(&mut n, admin, AdminRequest::Revoke { origin: APP.into() });
    let mut now = T;
    let mut waits = Vec::new();
    for _ in 0..8 {
        n.fail_write(now, quota());
        n.drain(now);
        let at = n.vault().poll_timeout().expect("a retry is scheduled");
        waits.push(at - now);
        now = at;
        n.input(now, Input::Timeout);
    }
    assert_eq!(
        waits,
        vec![1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    );
    n.complete_io(now);
    n.auto_io = true;
    n.restart(now + 1);
    assert_eq!(
        consent(&mut n, now + 1, APP),
        echo_core::rpc::Consent::Required
    );
}

#[test]
fn a_revocation_is_stored_before_an_app_write_that_fails_over_quota() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let app = n.connect_app(T, APP);
    let space = n.create_space(T, app);
    n.allow(T, OTHER, vec![space.clone()]);
    let admin = n.connect_admin(T);
    n.auto_io = false;
    // In one turn: the app writes, the user revokes it.
    let (_, write) = n.request(app, task(&space, "big"));
    let id = n.next_id();
    n.input_many(
        T,
        vec![
            write,
            Input::AdminMessage {
                conn: admin,
                message: Ok(echo_core::rpc::AdminMessage::Request {
                    id,
                    method: AdminRequest::Revoke { origin: APP.into() },
                }),
            },
        ],
    );
    // The first transaction holds the grants alone, and succeeds; the
    // app's data goes in the next, which fails over quota.
    assert_eq!(n.writes.len(), 1);
    assert!(n.writes[0].1.len() <= 1, "grants only: {:?}", n.writes[0].1);
    n.complete_one_write(T);
    assert_eq!(n.writes.len(), 1);
    n.fail_write(T, quota());
    n.complete_io(T);
    n.auto_io = true;
    n.restart(T + 1);
    assert_eq!(
        consent(&mut n, T + 1, APP),
        echo_core::rpc::Consent::Required
    );
    // The app's write (its answer went nowhere: the app was revoked) is
    // not stored.
    let other = n.connect_app(T + 1, OTHER);
    let Response::Subscribed { ids, .. } = n.call(T + 1, other, subscribe(&space)).unwrap() else {
        panic!()
    };
    assert!(ids.is_empty());
}

#[test]
fn narrowing_a_grant_ends_live_queries_on_the_spaces_taken_away() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let app = n.connect_app(T, APP);
    let kept = n.create_space(T, app);
    let taken = n.create_space(T, app);
    let Response::Subscribed {
        subscription: on_taken,
        ..
    } = n.call(T, app, subscribe(&taken)).unwrap()
    else {
        panic!()
    };
    let Response::Subscribed {
        subscription: on_kept,
        ..
    } = n.call(T, app, subscribe(&kept)).unwrap()
    else {
        panic!()
    };
    n.call(
        T,
        app,
        Request::SpaceStatus {
            space: taken.clone(),
        },
    )
    .unwrap();
    n.take_app(app);
    // The user unchecks `taken` and keeps `kept`.
    n.allow(T, APP, vec![kept.clone()]);
    let told: Vec<Option<String>> = n.app[&app]
        .iter()
        .filter_map(|m| match m {
            VaultMessage::Event {
                event: Event::AccessRevoked { space },
                ..
            } => Some(space.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(told, vec![Some(taken.clone())]);
    assert!(!n.closed.contains(&app), "the connection stays");
    // Writes to `taken` (by an app that still has it) reach no live query
    // of the app; writes to `kept` do.
    n.allow(T, OTHER, vec![taken.clone()]);
    let other = n.connect_app(T, OTHER);
    n.take_app(app);
    n.call(T, other, task(&taken, "hidden")).unwrap();
    n.call(T, app, task(&kept, "seen")).unwrap();
    let diffs: Vec<u32> = n.app[&app]
        .iter()
        .filter_map(|m| match m {
            VaultMessage::Event {
                subscription: Some(s),
                event: Event::QueryDiff { .. },
            } => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(diffs, vec![on_kept]);
    assert_eq!(
        n.call(
            T,
            app,
            Request::Unsubscribe {
                subscription: on_taken
            }
        )
        .unwrap_err()
        .code,
        "rpc.no_such_subscription"
    );
    assert_eq!(
        n.call(T, app, task(&taken, "x")).unwrap_err().code,
        "rpc.no_such_space"
    );
}

#[test]
fn spaces_given_by_a_flush_that_failed_are_taken_back_from_the_app() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let owner = n.connect_app(T, APP);
    let space = n.create_space(T, owner);
    n.allow(T, OTHER, vec![]);
    let other = n.connect_app(T, OTHER);
    let admin = n.connect_admin(T);
    n.auto_io = false;
    admin_request(
        &mut n,
        admin,
        AdminRequest::Decide {
            origin: OTHER.into(),
            allow: true,
            spaces: vec![space.clone()],
        },
    );
    // Before the decision is stored the app starts using the space.
    let sub = n.send(T, other, subscribe(&space));
    assert!(matches!(
        n.answer(other, sub),
        Some(Ok(Response::Subscribed { .. }))
    ));
    n.fail_write(T, quota());
    assert!(
        n.app[&other].iter().any(|m| matches!(m,
        VaultMessage::Event { event: Event::AccessRevoked { space: Some(s) }, .. } if *s == space))
    );
    n.complete_io(T);
    n.auto_io = true;
    assert_eq!(
        n.call(T, other, task(&space, "x")).unwrap_err().code,
        "rpc.no_such_space"
    );
}
