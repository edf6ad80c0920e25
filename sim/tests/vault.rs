//! The vault machine on one node: boot, consent and grants, group commit
//! and durability, failed flushes, live queries, text, listings — driven
//! through `Vault::handle_input` / `poll_output` by the simulator's host.

use echo_core::data::SpaceId;
use echo_core::rpc::{
    AdminRequest, AdminResponse, ClientMessage, Durability, Event, Request, Response, Role,
    RpcError, VaultMessage, WireFields, WireFilter, WireFloat, WireQuery, WireValue,
};
use echo_core::store::{ChunkStore, StoreError};
use echo_core::vault::{ConnId, Input};
use echo_sim::Node;

const APP: &str = "http://app.localhost:8601";
const OTHER: &str = "http://other.localhost:8602";
const T: u64 = 1_700_000_000_000;

fn node() -> Node {
    Node::new("vault", 7, T)
}

fn allow(n: &mut Node, origin: &str, spaces: Vec<String>) {
    let admin = n.connect_admin(T);
    n.admin_call(
        T,
        admin,
        AdminRequest::Decide {
            origin: origin.into(),
            allow: true,
            spaces,
        },
    )
    .unwrap();
}

fn create_space(n: &mut Node, conn: ConnId, name: &str) -> String {
    let mut properties = WireFields::new();
    properties.insert("name".into(), WireValue::String(name.into()));
    match n
        .call(T, conn, Request::CreateSpace { properties })
        .unwrap()
    {
        Response::Space(info) => info.space,
        other => panic!("{other:?}"),
    }
}

fn create(space: &str, title: &str) -> Request {
    let mut fields = WireFields::new();
    fields.insert("title".into(), WireValue::String(title.into()));
    fields.insert("done".into(), WireValue::Bool(false));
    Request::CreateObject {
        space: space.into(),
        id: None,
        type_name: "task".into(),
        fields,
    }
}

fn all_tasks() -> WireQuery {
    WireQuery {
        filter: WireFilter::Type("task".into()),
        order: Vec::new(),
        limit: None,
        offset: 0,
        include_deleted: false,
    }
}

fn query(space: &str) -> Request {
    Request::Query {
        space: space.into(),
        query: all_tasks(),
        at: None,
        resolve: false,
    }
}

fn ids(response: Result<Response, RpcError>) -> Vec<String> {
    match response.unwrap() {
        Response::Result { ids, .. } => ids,
        other => panic!("{other:?}"),
    }
}

fn code(result: Result<Response, RpcError>) -> (String, Option<String>) {
    let e = result.unwrap_err();
    let reason = e.detail("reason").map(str::to_owned);
    (e.code, reason)
}

#[test]
fn identity_is_created_once_and_survives_a_restart() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let before = n.call(T, app, Request::IdentityInfo {}).unwrap();
    n.restart(T + 1);
    let app = n.connect_app(T + 1, APP);
    assert_eq!(
        n.call(T + 1, app, Request::IdentityInfo {}).unwrap(),
        before
    );
    // No secret key it sealed is stored in the clear.
    assert_eq!(n.sealed_plaintexts().len(), 2);
    for secret in n.sealed_plaintexts() {
        for (_, value) in n.store.iter() {
            assert!(!value.windows(secret.len()).any(|w| w == &secret[..]));
        }
    }
}

/// What a connection to a vault that failed to boot is told.
fn refusal(n: &mut Node, now: u64) -> RpcError {
    let conn = n.say_hello(now, APP, Durability::Strict);
    match n.app.get(&conn).and_then(|m| m.last()) {
        Some(VaultMessage::Refused { error }) => error.clone(),
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn storage_deleted_under_a_known_identity_is_reported_not_replaced_by_a_new_vault() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    create_space(&mut n, app, "kept");
    let identity = n.vault().identity().expect("booted");

    // The host's marker names the identity; the browser deletes the storage.
    n.lose_storage();
    let error = n
        .restart_with(T + 1, |c| c.expected_identity = Some(identity))
        .expect_err("a vault whose storage is gone must not boot as a new one");
    assert_eq!(error.code, "rpc.storage_lost");
    assert!(
        error.message.contains(&identity.to_string()[..12]),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("start a new vault"),
        "{}",
        error.message
    );
    assert_eq!(
        n.store.iter().count(),
        0,
        "nothing was written: no new identity"
    );
    // Apps hear the same reason, and the vault stays down.
    assert_eq!(refusal(&mut n, T + 2).code, "rpc.storage_lost");
    assert!(!n.vault().is_ready());

    // The person chose to start a new vault: the host forgot its marker.
    n.restart_with(T + 3, |c| c.expected_identity = None)
        .expect("a new vault");
    let fresh = n.vault().identity().expect("booted");
    assert_ne!(fresh, identity);

    // A marker naming another identity than the stored one (stale) does
    // not stop a vault that has its storage: what is stored wins.
    n.restart_with(T + 4, |c| c.expected_identity = Some(identity))
        .expect("the stored vault boots");
    assert_eq!(n.vault().identity(), Some(fresh));
}

#[test]
fn an_unknown_origin_needs_consent_and_a_denied_one_stays_out() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    assert_eq!(n.call(T, app, Request::Ping {}).unwrap(), Response::Done {});
    assert_eq!(
        code(n.call(T, app, Request::ListSpaces {})),
        ("rpc.not_authorized".into(), Some("consent_required".into()))
    );
    let admin = n.connect_admin(T);
    n.admin_call(
        T,
        admin,
        AdminRequest::Decide {
            origin: APP.into(),
            allow: false,
            spaces: vec![],
        },
    )
    .unwrap();
    assert_eq!(
        code(n.call(T, app, Request::ListSpaces {})),
        ("rpc.not_authorized".into(), Some("denied".into()))
    );
}

#[test]
fn consent_grants_access_and_tells_open_connections() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    let admin = n.connect_admin(T);
    n.auto_io = false;
    let flushes = n.flushes;
    let id = n.next_id();
    n.input(
        T,
        Input::AdminMessage {
            conn: admin,
            message: Ok(echo_core::rpc::AdminMessage::Request {
                id,
                method: AdminRequest::Decide {
                    origin: APP.into(),
                    allow: true,
                    spaces: vec![],
                },
            }),
        },
    );
    assert!(n.app[&app].iter().any(|m| matches!(
        m,
        VaultMessage::Event {
            event: Event::AccessGranted {},
            ..
        }
    )));
    // The decision is answered only once stored.
    let answered = |n: &Node| {
        n.admin.get(&admin).is_some_and(|m| {
            m.iter().any(
                |r| matches!(r, echo_core::rpc::AdminReply::Response { id: i, .. } if *i == id),
            )
        })
    };
    assert!(!answered(&n));
    n.complete_io(T);
    assert!(answered(&n));
    assert_eq!(n.flushes, flushes + 1);
    n.auto_io = true;
    let space = create_space(&mut n, app, "board");
    let Response::Spaces { spaces } = n.call(T, app, Request::ListSpaces {}).unwrap() else {
        panic!()
    };
    assert_eq!(spaces.len(), 1);
    assert_eq!(spaces[0].space, space);
    assert_eq!(spaces[0].role, Role::Owner);
    assert_eq!(
        spaces[0].properties.get("name"),
        Some(&WireValue::String("board".into()))
    );
}

#[test]
fn an_origin_sees_only_its_granted_spaces_and_nothing_is_read_for_others() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let mine = create_space(&mut n, app, "mine");
    let shared = create_space(&mut n, app, "shared");
    n.call(T, app, create(&mine, "secret")).unwrap();
    // After a restart no space is open: an origin that may not use `mine`
    // must not make the vault read it.
    n.restart(T + 1);
    let other = n.connect_app(T + 1, OTHER);
    n.auto_io = false;
    let id = n.send(T + 1, other, create(&mine, "x"));
    assert!(n.reads.is_empty(), "read for an origin without consent");
    assert_eq!(
        code(n.answer(other, id).unwrap()).1,
        Some("consent_required".into())
    );
    n.auto_io = true;
    allow(&mut n, OTHER, vec![shared.clone()]);
    n.auto_io = false;
    for request in [
        create(&mine, "x"),
        query(&mine),
        Request::SpaceProperties {
            space: mine.clone(),
        },
    ] {
        let id = n.send(T + 1, other, request);
        assert!(n.reads.is_empty(), "read a space not granted");
        assert_eq!(code(n.answer(other, id).unwrap()).0, "rpc.no_such_space");
    }
    n.auto_io = true;
    let Response::Spaces { spaces } = n.call(T + 1, other, Request::ListSpaces {}).unwrap() else {
        panic!()
    };
    assert_eq!(
        spaces.iter().map(|s| s.space.clone()).collect::<Vec<_>>(),
        vec![shared.clone()]
    );
    n.call(T + 1, other, create(&shared, "hello")).unwrap();
    let app = n.connect_app(T + 1, APP);
    assert_eq!(ids(n.call(T + 1, app, query(&shared))).len(), 1);
    assert_eq!(ids(n.call(T + 1, app, query(&mine))).len(), 1);
}

#[test]
fn writes_are_answered_once_durable_and_share_one_flush() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "board");
    n.auto_io = false;
    // A hundred calls that arrived together: one flush.
    let calls: Vec<(u32, Input)> = (0..100)
        .map(|i| n.request(app, create(&space, &format!("t{i}"))))
        .collect();
    let ids_sent: Vec<u32> = calls.iter().map(|(id, _)| *id).collect();
    n.input_many(T, calls.into_iter().map(|(_, i)| i).collect());
    assert_eq!(n.writes.len(), 1, "one flush for all of them");
    assert!(ids_sent.iter().all(|id| n.answer(app, *id).is_none()));
    // Reads see the writes at once.
    let q = n.send(T, app, query(&space));
    assert_eq!(ids(n.answer(app, q).unwrap()).len(), 100);
    // A write during the flush goes into the next one.
    let late = n.send(T, app, create(&space, "late"));
    assert_eq!(n.writes.len(), 1, "one flush at a time");
    n.complete_io(T);
    assert!(ids_sent
        .iter()
        .all(|id| matches!(n.answer(app, *id), Some(Ok(_)))));
    assert!(matches!(n.answer(app, late), Some(Ok(_))));
    n.auto_io = true;
    n.restart(T + 1);
    let app = n.connect_app(T + 1, APP);
    assert_eq!(ids(n.call(T + 1, app, query(&space))).len(), 101);
}

#[test]
fn answers_come_only_after_the_flush_completed() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "board");
    n.auto_io = false;
    let calls: Vec<(u32, Input)> = (0..10)
        .map(|i| n.request(app, create(&space, &format!("t{i}"))))
        .collect();
    let sent: Vec<u32> = calls.iter().map(|(id, _)| *id).collect();
    n.input_many(T, calls.into_iter().map(|(_, i)| i).collect());
    let late = n.send(T, app, create(&space, "late"));
    assert!(sent.iter().all(|id| n.answer(app, *id).is_none()));
    // The first flush completes: its ten are answered, the late one waits
    // for the second flush, which starts now.
    let (write, batch) = n.writes.pop_front().unwrap();
    n.store.apply(batch).unwrap();
    n.input(
        T,
        Input::WriteDone {
            write,
            result: Ok(()),
        },
    );
    assert!(sent
        .iter()
        .all(|id| matches!(n.answer(app, *id), Some(Ok(_)))));
    assert!(n.answer(app, late).is_none());
    assert_eq!(n.writes.len(), 1);
    n.complete_io(T);
    assert!(matches!(n.answer(app, late), Some(Ok(_))));
    n.auto_io = true;
    n.restart(T + 1);
    let app = n.connect_app(T + 1, APP);
    assert_eq!(ids(n.call(T + 1, app, query(&space))).len(), 11);
}

#[test]
fn a_failed_flush_fails_its_calls_and_reverts_them() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "board");
    n.call(T, app, create(&space, "kept")).unwrap();
    let Response::Subscribed {
        subscription,
        ids: initial,
        ..
    } = n
        .call(
            T,
            app,
            Request::Subscribe {
                space: space.clone(),
                query: all_tasks(),
                resolve: false,
            },
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(initial.len(), 1);
    n.auto_io = false;
    let (lost, a) = n.request(app, create(&space, "lost"));
    let (new_space, b) = n.request(
        app,
        Request::CreateSpace {
            properties: WireFields::new(),
        },
    );
    n.input_many(T, vec![a, b]);
    n.take_app(app);
    // An I/O error (a flush over quota is retried space by space first:
    // sim/tests/quota.rs).
    n.fail_write(
        T,
        StoreError::Io {
            store: "test".into(),
            key: None,
            message: "disk gone".into(),
        },
    );
    for id in [lost, new_space] {
        assert_eq!(n.answer(app, id).unwrap().unwrap_err().code, "store.io");
    }
    // The space is read again from storage (the vault asks): the lost write
    // is gone, the live query is told so, and the space created in the
    // failed flush too.
    assert_eq!(n.reads.len(), 1);
    n.complete_io(T);
    let removed = n.app[&app].iter().find_map(|m| match m {
        VaultMessage::Event {
            subscription: Some(s),
            event: Event::QueryDiff { removed, .. },
        } if *s == subscription => Some(removed.len()),
        _ => None,
    });
    assert_eq!(removed, Some(1));
    n.auto_io = true;
    assert_eq!(ids(n.call(T, app, query(&space))).len(), 1);
    let Response::Spaces { spaces } = n.call(T, app, Request::ListSpaces {}).unwrap() else {
        panic!()
    };
    assert_eq!(spaces.len(), 1);
    // The vault keeps working: the next write is stored.
    n.call(T, app, create(&space, "after")).unwrap();
    n.restart(T + 1);
    let app = n.connect_app(T + 1, APP);
    assert_eq!(ids(n.call(T + 1, app, query(&space))).len(), 2);
}

#[test]
fn revoking_closes_connections_at_once_and_persists() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "board");
    let admin = n.connect_admin(T);
    n.admin_call(T, admin, AdminRequest::Revoke { origin: APP.into() })
        .unwrap();
    let msgs = &n.app[&app];
    assert!(msgs.iter().any(|m| matches!(
        m,
        VaultMessage::Event {
            event: Event::AccessRevoked { space: None },
            ..
        }
    )));
    assert!(n.closed.contains(&app));
    n.restart(T + 1);
    let again = n.connect_app(T + 1, APP);
    assert_eq!(
        code(n.call(T + 1, again, create(&space, "x"))).1,
        Some("consent_required".into())
    );
    // Allowing it again gives exactly the spaces the user checked: the
    // space it created comes back only when checked.
    allow(&mut n, APP, vec![]);
    assert_eq!(
        code(n.call(T + 1, again, create(&space, "x"))).0,
        "rpc.no_such_space"
    );
    allow(&mut n, APP, vec![space.clone()]);
    n.call(T + 1, again, create(&space, "x")).unwrap();
}

#[test]
fn live_queries_push_diffs_with_objects() {
    let mut n = node();
    let a = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let b = n.connect_app(T, APP);
    let space = create_space(&mut n, a, "board");
    let Response::Subscribed { subscription, .. } = n
        .call(
            T,
            b,
            Request::Subscribe {
                space: space.clone(),
                query: all_tasks(),
                resolve: true,
            },
        )
        .unwrap()
    else {
        panic!()
    };
    n.take_app(b);
    n.call(T, a, create(&space, "new")).unwrap();
    let pushed = n.app[&b].iter().find_map(|m| match m {
        VaultMessage::Event {
            subscription: Some(s),
            event: Event::QueryDiff { added, objects, .. },
        } if *s == subscription => Some((added.len(), objects.as_ref().map(Vec::len))),
        _ => None,
    });
    assert_eq!(pushed, Some((1, Some(1))));
    assert_eq!(
        code(n.call(T, a, Request::Unsubscribe { subscription })).0,
        "rpc.no_such_subscription"
    );
    assert_eq!(
        n.call(T, b, Request::Unsubscribe { subscription }).unwrap(),
        Response::Done {}
    );
}

#[test]
fn calls_before_hello_and_duplicate_ids_are_refused() {
    let mut n = node();
    let conn = ConnId(900);
    n.input(
        T,
        Input::AppConnected {
            conn,
            origin: APP.into(),
        },
    );
    n.input(
        T,
        Input::AppMessage {
            conn,
            message: Ok(ClientMessage::Request {
                id: 1,
                method: Request::Ping {},
            }),
        },
    );
    // Refused, and the connection ends (guard.rs: hello first).
    assert!(n.app[&conn].iter().any(|m| matches!(m,
        VaultMessage::Refused { error } if error.code == "rpc.not_connected")));
    assert!(n.closed.contains(&conn));
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "s");
    let twice = |method| Input::AppMessage {
        conn: app,
        message: Ok(ClientMessage::Request { id: 500, method }),
    };
    n.auto_io = false;
    n.input_many(
        T,
        vec![twice(create(&space, "a")), twice(create(&space, "b"))],
    );
    assert!(n.app[&app].iter().any(|m| matches!(m,
        VaultMessage::Response { id: 500, result: Err(e) } if e.code == "rpc.duplicate_id")));
}

#[test]
fn text_and_reads_at_earlier_heads() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "s");
    let mut fields = WireFields::new();
    fields.insert("note".into(), WireValue::Text("hello".into()));
    let Response::Written { created } = n
        .call(
            T,
            app,
            Request::CreateObject {
                space: space.clone(),
                id: None,
                type_name: "task".into(),
                fields,
            },
        )
        .unwrap()
    else {
        panic!()
    };
    let id = created[0].clone();
    let Response::Heads { heads } = n
        .call(
            T,
            app,
            Request::SpaceHeads {
                space: space.clone(),
            },
        )
        .unwrap()
    else {
        panic!()
    };
    n.call(
        T,
        app,
        Request::SpliceText {
            space: space.clone(),
            id: id.clone(),
            field: "note".into(),
            pos: 5,
            delete: 0,
            insert: " world".into(),
            context: None,
        },
    )
    .unwrap();
    let read = |at| Request::ReadText {
        space: space.clone(),
        id: id.clone(),
        field: "note".into(),
        at,
    };
    assert_eq!(
        n.call(T, app, read(None)).unwrap(),
        Response::Text {
            text: "hello world".into()
        }
    );
    assert_eq!(
        n.call(T, app, read(Some(heads))).unwrap(),
        Response::Text {
            text: "hello".into()
        }
    );
    n.restart(T + 1);
    let app = n.connect_app(T + 1, APP);
    assert_eq!(
        n.call(T + 1, app, read(None)).unwrap(),
        Response::Text {
            text: "hello world".into()
        }
    );
}

#[test]
fn admin_listings_and_bad_origins() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "board");
    let admin = n.connect_admin(T);
    let Ok(AdminResponse::Apps { apps }) = n.admin_call(T, admin, AdminRequest::ListApps {}) else {
        panic!()
    };
    assert_eq!(apps.len(), 1);
    assert_eq!(
        (
            apps[0].origin.as_str(),
            apps[0].allowed,
            apps[0].connections
        ),
        (APP, true, 1)
    );
    assert_eq!(apps[0].spaces, vec![space.clone()]);
    assert_eq!(apps[0].decided_at, T as f64);
    // After a restart the listing opens every space to tell its
    // properties (they live in the space, not in a record beside it).
    n.restart(T + 1);
    let admin = n.connect_admin(T + 1);
    let Ok(AdminResponse::Spaces { spaces }) =
        n.admin_call(T + 1, admin, AdminRequest::ListSpaces {})
    else {
        panic!()
    };
    assert_eq!(spaces[0].created_by.as_deref(), Some(APP));
    assert_eq!(
        spaces[0].properties.get("name"),
        Some(&WireValue::String("board".into()))
    );
    assert_eq!(spaces[0].objects, Some(0));
    // Plain http only on this machine: an insecure site is refused (denying it is fine).
    for insecure in [
        "http://example.com",
        "http://app.example:8601",
        "http://localhost.example.com",
    ] {
        let e = n
            .admin_call(
                T + 1,
                admin,
                AdminRequest::Decide {
                    origin: insecure.into(),
                    allow: true,
                    spaces: vec![],
                },
            )
            .unwrap_err();
        assert_eq!(e.code, "rpc.bad_request", "{insecure}");
        assert_eq!(
            e.details
                .as_ref()
                .and_then(|d| d.get("reason"))
                .map(String::as_str),
            Some("insecure_origin"),
            "{insecure}"
        );
        n.admin_call(
            T + 1,
            admin,
            AdminRequest::Decide {
                origin: insecure.into(),
                allow: false,
                spaces: vec![],
            },
        )
        .expect("denying an insecure origin is fine");
    }
    for secure in [
        "https://example.com",
        "http://127.0.0.1:9000",
        "http://[::1]:9000",
        "http://LOCALHOST:1",
    ] {
        n.admin_call(
            T + 1,
            admin,
            AdminRequest::Decide {
                origin: secure.into(),
                allow: true,
                spaces: vec![],
            },
        )
        .unwrap_or_else(|e| panic!("{secure}: {e:?}"));
    }
    for bad in ["", "app.localhost", "http://a/b", "javascript:alert(1)"] {
        let e = n
            .admin_call(
                T + 1,
                admin,
                AdminRequest::Decide {
                    origin: bad.into(),
                    allow: true,
                    spaces: vec![],
                },
            )
            .unwrap_err();
        assert_eq!(e.code, "rpc.bad_request", "{bad}");
    }
    let e = n
        .admin_call(
            T + 1,
            admin,
            AdminRequest::Decide {
                origin: OTHER.into(),
                allow: true,
                spaces: vec!["0000000000000000000000000a".into()],
            },
        )
        .unwrap_err();
    assert!(
        e.code == "rpc.no_such_space" || e.code == "model.invalid_id",
        "{e:?}"
    );
    n.admin_call(T + 1, admin, AdminRequest::SetName { name: "Ada".into() })
        .unwrap();
    n.restart(T + 2);
    let app = n.connect_app(T + 2, APP);
    let Response::Identity(info) = n.call(T + 2, app, Request::IdentityInfo {}).unwrap() else {
        panic!()
    };
    assert_eq!(info.display_name.as_deref(), Some("Ada"));
}

#[test]
fn concurrent_writes_are_applied_together_and_a_bad_one_fails_alone() {
    let mut n = node();
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "s");
    let mut calls: Vec<(u32, Input)> = (0..50)
        .map(|i| n.request(app, create(&space, &format!("t{i}"))))
        .collect();
    // One call whose write is invalid: an update of an object that does not exist.
    let missing = echo_core::data::ObjectId::from_bytes([7; 16]).to_string();
    let mut set = WireFields::new();
    set.insert("done".into(), WireValue::Bool(true));
    let bad = n.request(
        app,
        Request::UpdateObject {
            space: space.clone(),
            id: missing,
            set,
            remove: vec![],
        },
    );
    let bad_id = bad.0;
    calls.push(bad);
    let flushes = n.flushes;
    let sent: Vec<u32> = calls.iter().map(|(id, _)| *id).collect();
    n.input_many(T, calls.into_iter().map(|(_, i)| i).collect());
    assert_eq!(
        n.answer(app, bad_id).unwrap().unwrap_err().code,
        "model.not_found"
    );
    assert_eq!(n.flushes, flushes + 1);
    let written = sent
        .iter()
        .filter(|id| matches!(n.answer(app, **id), Some(Ok(Response::Written { .. }))))
        .count();
    assert_eq!(written, 50);
    assert_eq!(ids(n.call(T, app, query(&space))).len(), 50);

    // Without a bad one, a burst is one Automerge change per touched shard.
    let sid: SpaceId = space.parse().unwrap();
    let heads = |n: &Node| n.vault().replica_of(&sid).unwrap().space().index().len();
    let before = heads(&n);
    let calls: Vec<Input> = (0..200)
        .map(|i| n.request(app, create(&space, &format!("u{i}"))).1)
        .collect();
    let flushes = n.flushes;
    n.input_many(T, calls);
    assert_eq!(n.flushes, flushes + 1);
    assert_eq!(heads(&n), before + 200);
}

#[test]
fn odd_numbers_as_space_properties_leave_nothing_to_flush_and_the_vault_opens_again() {
    // NaN, ±0.0 and ±Infinity as properties once made a record that never
    // compared equal to itself (NaN != NaN): endless flushes, and a vault
    // that would not start again.
    let mut n = node();
    allow(&mut n, APP, vec![]);
    let app = n.connect_app(T, APP);
    let space = create_space(&mut n, app, "numbers");
    let odd = [
        ("nan", f64::NAN),
        ("neg_zero", -0.0),
        ("inf", f64::INFINITY),
        ("neg_inf", f64::NEG_INFINITY),
        ("max", f64::MAX),
        ("tiny", f64::MIN_POSITIVE),
    ];
    for (name, value) in odd {
        n.call(
            T + 1,
            app,
            Request::SetSpaceProperty {
                space: space.clone(),
                name: name.into(),
                value: WireValue::Float(WireFloat(value)),
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    // Idle: no flush is wanted any more.
    let flushes = n.flushes;
    for k in 0..5 {
        n.input(T + 10 + k, Input::Timeout);
    }
    assert_eq!(n.flushes, flushes, "nothing left to flush once idle");
    assert!(n.writes.is_empty());
    // The vault starts again and every value comes back exactly.
    n.restart(T + 100);
    let app = n.connect_app(T + 100, APP);
    let Ok(Response::Properties { properties }) = n.call(
        T + 100,
        app,
        Request::SpaceProperties {
            space: space.clone(),
        },
    ) else {
        panic!("properties")
    };
    for (name, value) in odd {
        match properties.get(name) {
            Some(WireValue::Float(f)) => {
                let got = f.0;
                assert!(
                    got.to_bits() == value.to_bits() || (got.is_nan() && value.is_nan()),
                    "{name}: {got} vs {value}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn relaxed_writes_are_asked_relaxed_only_when_every_answer_in_the_flush_wants_it() {
    let mut n = node();
    let relaxed = n.connect_app_with(T, APP, Durability::Relaxed);
    allow(&mut n, APP, vec![]);
    let strict = n.connect_app(T, APP);
    // A new space changes its creator's grant: the person's data, strict.
    n.durabilities.clear();
    let space = create_space(&mut n, relaxed, "board");
    assert_eq!(n.durabilities, vec![Durability::Strict]);

    // The relaxed connection's writes alone: relaxed.
    n.durabilities.clear();
    n.call(T, relaxed, create(&space, "fast")).unwrap();
    assert_eq!(n.durabilities, vec![Durability::Relaxed]);

    // The strict connection's: strict.
    n.durabilities.clear();
    n.call(T, strict, create(&space, "safe")).unwrap();
    assert_eq!(n.durabilities, vec![Durability::Strict]);

    // Both in one turn, one flush: strict (an answer that wants strict).
    n.durabilities.clear();
    let (_, a) = n.request(relaxed, create(&space, "a"));
    let (_, b) = n.request(strict, create(&space, "b"));
    n.input_many(T, vec![a, b]);
    assert_eq!(n.durabilities, vec![Durability::Strict]);

    // A relaxed write beside a change of the person's data (here a new
    // space, which grants it to its creator), in the flush after one in
    // flight: strict.
    n.durabilities.clear();
    n.auto_io = false;
    let (_, first) = n.request(relaxed, create(&space, "c"));
    n.input_many(T, vec![first]);
    let (_, w) = n.request(relaxed, create(&space, "d"));
    let (_, made) = n.request(
        relaxed,
        Request::CreateSpace {
            properties: Default::default(),
        },
    );
    n.input_many(T, vec![w, made]);
    n.complete_io(T);
    n.auto_io = true;
    assert_eq!(
        n.durabilities,
        vec![Durability::Relaxed, Durability::Strict]
    );

    // What was answered is there after a restart, whichever way written.
    n.restart(T + 1);
    let app = n.connect_app(T + 1, APP);
    assert_eq!(ids(n.call(T + 1, app, query(&space))).len(), 6);
}

/// A node holding a space with one task, stored with every chunk's CRDT
/// bytes apart (by default only those over 1 KiB), restarted.
fn restarted_with_documents_apart() -> (Node, String) {
    let mut n = Node::with_config("vault", 7, T, |c| c.policy.max_inline_crdt_bytes = 0);
    let app = n.connect_app(T, APP);
    allow(&mut n, APP, vec![]);
    let space = create_space(&mut n, app, "board");
    n.call(T, app, create(&space, "first")).unwrap();
    n.restart(T + 1);
    (n, space)
}

#[test]
fn after_a_restart_reads_are_answered_before_the_documents_are_read_and_writes_wait_for_them() {
    let (mut n, space) = restarted_with_documents_apart();
    let app = n.connect_app(T + 1, APP);
    n.auto_io = false;
    let first = n.send(T + 1, app, query(&space));
    assert_eq!(n.reads.len(), 1);
    assert!(n.reads[0].1.starts_with("space/"), "{:?}", n.reads);
    n.complete_one_read(T + 1);
    assert_eq!(
        ids(n.answer(app, first).unwrap()).len(),
        1,
        "a query is answered before the documents are read"
    );
    assert_eq!(n.reads.len(), 1);
    assert!(n.reads[0].1.starts_with("crdt/"), "{:?}", n.reads);
    let write = n.send(T + 1, app, create(&space, "second"));
    let after = n.send(T + 1, app, query(&space));
    assert!(
        n.answer(app, write).is_none(),
        "a write waits for the documents"
    );
    assert!(
        n.answer(app, after).is_none(),
        "a connection's calls stay in order"
    );
    assert!(n.writes.is_empty());
    n.complete_io(T + 1);
    assert!(n.answer(app, write).unwrap().is_ok());
    assert_eq!(ids(n.answer(app, after).unwrap()).len(), 2);
    n.auto_io = true;
    n.restart(T + 2);
    let app = n.connect_app(T + 2, APP);
    assert_eq!(ids(n.call(T + 2, app, query(&space))).len(), 2);
}

#[test]
fn damaged_documents_refuse_the_calls_that_need_them_by_key() {
    let (mut n, space) = restarted_with_documents_apart();
    let mut batch = echo_core::store::Batch::new();
    let documents = n.store.list_prefix(&format!("crdt/{space}/")).unwrap();
    assert!(!documents.is_empty());
    for (key, mut bytes) in documents {
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        batch.put(key, bytes);
    }
    n.store.apply(batch).unwrap();
    let app = n.connect_app(T + 1, APP);
    assert_eq!(
        ids(n.call(T + 1, app, query(&space))).len(),
        1,
        "current state is intact"
    );
    let error = n.call(T + 1, app, create(&space, "second")).unwrap_err();
    assert_eq!(error.code, "model.corrupt_chunk", "{error:?}");
    assert!(
        error.message.contains(&format!("crdt/{space}/")),
        "{error:?}"
    );
}
