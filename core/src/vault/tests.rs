use super::*;
use crate::identity::{ChaChaKeyWrap, KeyWrap, SealedKey};
use crate::rpc::{
    AdminMessage, AdminRequest, ClientMessage, Event, Request, RpcError, WireFields, WireFilter,
    WireQuery, WireValue,
};
use crate::store::{ChunkStore, MemoryStore, StoreError};

const APP: &str = "http://app.localhost:8601";
const OTHER: &str = "http://other.localhost:8602";

/// A vault over a memory store, sealed with a native cipher.
struct Harness {
    store: MemoryStore,
    wrap: ChaChaKeyWrap,
    vault: Vault,
    admin: ConnId,
    next_id: u32,
}

fn stored(store: &MemoryStore) -> StoredVault {
    StoredVault::parse(store.list_prefix(PREFIX).unwrap()).unwrap()
}

impl Harness {
    fn new() -> Self {
        let (wrap, _key) = ChaChaKeyWrap::generate().unwrap();
        let new = NewIdentity::generate().unwrap();
        let [a, b] = new.seal_requests();
        let cts = [
            wrap.seal(a.plaintext(), &a.aad()).unwrap(),
            wrap.seal(b.plaintext(), &b.aad()).unwrap(),
        ];
        let vault = Vault::create(new, cts, StoredVault::default()).unwrap();
        let mut h = Harness {
            store: MemoryStore::new(),
            wrap,
            vault,
            admin: ConnId(0),
            next_id: 1,
        };
        h.admin = h.vault.connect_admin();
        h.flush();
        h
    }

    /// Opens the vault again from its store, as after a reload.
    fn reopen(self) -> Self {
        let stored = stored(&self.store);
        let sealed = stored.sealed_device().unwrap().unwrap();
        let plain = self
            .wrap
            .unseal(sealed.ciphertext(), &sealed.aad())
            .unwrap();
        let mut vault = Vault::open(stored, &plain).unwrap();
        let admin = vault.connect_admin();
        Harness {
            store: self.store,
            wrap: self.wrap,
            vault,
            admin,
            next_id: 1,
        }
    }

    fn flush(&mut self) -> usize {
        let Some(flush) = self.vault.prepare_flush().unwrap() else {
            return 0;
        };
        let calls = flush.ticket.calls();
        self.store.apply(flush.batch).unwrap();
        self.vault.flush_done(flush.ticket);
        calls
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.vault.poll_output()).collect()
    }

    fn open_needed(&mut self, request: &Request) {
        if let Some(id) = self.vault.space_to_open(request) {
            let entries = self.store.list_prefix(&Vault::storage_prefix(&id)).unwrap();
            self.vault.open_space(id, entries).unwrap();
        }
    }

    fn connect(&mut self, origin: &str) -> ConnId {
        let conn = self.vault.connect_app(origin);
        self.vault.app_message(
            conn,
            Ok(ClientMessage::Hello {
                versions: vec![1],
                client: "test".into(),
            }),
        );
        let welcome = self.outputs();
        assert!(
            welcome.iter().any(|o| matches!(
                o,
                Output::App {
                    message: VaultMessage::Welcome { .. },
                    ..
                }
            )),
            "{welcome:?}"
        );
        conn
    }

    /// Sends a call; returns its answer (flushing when it waits for one).
    fn call(&mut self, conn: ConnId, method: Request) -> Result<Response, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        self.open_needed(&method);
        self.vault
            .app_message(conn, Ok(ClientMessage::Request { id, method }));
        let mut outs = self.outputs();
        if !outs.iter().any(|o| is_response(o, conn, id)) {
            self.flush();
            outs.extend(self.outputs());
        }
        outs.into_iter()
            .find_map(|o| match o {
                Output::App {
                    conn: c,
                    message: VaultMessage::Response { id: i, result },
                } if c == conn && i == id => Some(result),
                _ => None,
            })
            .expect("every call is answered")
    }

    fn admin(&mut self, method: AdminRequest) -> Result<AdminResponse, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        self.vault
            .admin_message(self.admin, AdminMessage::Request { id, method }, 1.0e12);
        self.flush();
        self.outputs()
            .into_iter()
            .find_map(|o| match o {
                Output::Admin {
                    message: AdminReply::Response { id: i, result },
                    ..
                } if i == id => Some(result),
                _ => None,
            })
            .expect("every admin call is answered")
    }

    fn allow(&mut self, origin: &str, spaces: Vec<String>) {
        self.admin(AdminRequest::Decide {
            origin: origin.into(),
            allow: true,
            spaces,
        })
        .unwrap();
    }

    fn create_space(&mut self, conn: ConnId, name: &str) -> String {
        let mut properties = WireFields::new();
        properties.insert("name".into(), WireValue::String(name.into()));
        match self
            .call(conn, Request::CreateSpace { properties })
            .unwrap()
        {
            Response::Space(info) => info.space,
            other => panic!("{other:?}"),
        }
    }
}

fn is_response(o: &Output, conn: ConnId, id: u32) -> bool {
    matches!(o, Output::App { conn: c, message: VaultMessage::Response { id: i, .. } } if *c == conn && *i == id)
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
fn identity_is_created_once_and_survives_reopening() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let before = h.call(app, Request::IdentityInfo {}).unwrap();
    let mut h = h.reopen();
    let app = h.connect(APP);
    assert_eq!(h.call(app, Request::IdentityInfo {}).unwrap(), before);
    // The stored record holds no secret in the clear.
    let stored = stored(&h.store);
    let record = stored.identity.unwrap();
    let sealed = SealedKey::from_bytes(&record.sealed_device).unwrap();
    assert_eq!(
        sealed.public_key_bytes(),
        record.certificate.device.as_bytes()
    );
}

#[test]
fn an_unknown_origin_needs_consent_and_a_denied_one_stays_out() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    assert_eq!(h.call(app, Request::Ping {}).unwrap(), Response::Done {});
    assert_eq!(
        code(h.call(app, Request::ListSpaces {})),
        ("rpc.not_authorized".into(), Some("consent_required".into()))
    );
    h.admin(AdminRequest::Decide {
        origin: APP.into(),
        allow: false,
        spaces: vec![],
    })
    .unwrap();
    assert_eq!(
        code(h.call(app, Request::ListSpaces {})),
        ("rpc.not_authorized".into(), Some("denied".into()))
    );
}

#[test]
fn consent_grants_access_and_tells_open_connections() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.vault.admin_message(
        h.admin,
        AdminMessage::Request {
            id: 99,
            method: AdminRequest::Decide {
                origin: APP.into(),
                allow: true,
                spaces: vec![],
            },
        },
        5.0,
    );
    let outs = h.outputs();
    assert!(outs.iter().any(|o| matches!(o,
        Output::App { conn, message: VaultMessage::Event { event: Event::AccessGranted {}, .. } } if *conn == app)));
    // The decision is answered only once stored.
    assert!(!outs.iter().any(|o| matches!(
        o,
        Output::Admin {
            message: AdminReply::Response { id: 99, .. },
            ..
        }
    )));
    assert_eq!(h.flush(), 1);
    let space = h.create_space(app, "board");
    let listed = h.call(app, Request::ListSpaces {}).unwrap();
    let Response::Spaces { spaces } = listed else {
        panic!()
    };
    assert_eq!(spaces.len(), 1);
    assert_eq!(spaces[0].space, space);
    assert_eq!(spaces[0].role, crate::rpc::Role::Owner);
}

#[test]
fn an_origin_sees_only_its_granted_spaces() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let mine = h.create_space(app, "mine");
    let shared = h.create_space(app, "shared");
    h.call(app, create(&mine, "secret")).unwrap();

    let other = h.connect(OTHER);
    assert_eq!(
        code(h.call(other, create(&mine, "x"))).1,
        Some("consent_required".into())
    );
    h.allow(OTHER, vec![shared.clone()]);
    let Response::Spaces { spaces } = h.call(other, Request::ListSpaces {}).unwrap() else {
        panic!()
    };
    assert_eq!(
        spaces.iter().map(|s| s.space.clone()).collect::<Vec<_>>(),
        vec![shared.clone()]
    );
    for request in [
        create(&mine, "x"),
        Request::Query {
            space: mine.clone(),
            query: all_tasks(),
            at: None,
            resolve: true,
        },
        Request::SpaceProperties {
            space: mine.clone(),
        },
    ] {
        assert_eq!(code(h.call(other, request)).0, "rpc.no_such_space");
    }
    h.call(other, create(&shared, "hello")).unwrap();
    let q = Request::Query {
        space: shared.clone(),
        query: all_tasks(),
        at: None,
        resolve: false,
    };
    assert_eq!(ids(h.call(app, q)).len(), 1);
    // Nothing of the refused writes reached the space.
    let q = Request::Query {
        space: mine.clone(),
        query: all_tasks(),
        at: None,
        resolve: false,
    };
    assert_eq!(ids(h.call(app, q)).len(), 1);
}

#[test]
fn writes_are_answered_once_durable_and_share_one_flush() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let space = h.create_space(app, "board");
    for i in 0..100u32 {
        h.vault.app_message(
            app,
            Ok(ClientMessage::Request {
                id: 1000 + i,
                method: create(&space, &format!("t{i}")),
            }),
        );
    }
    assert!(h.outputs().iter().all(|o| !matches!(
        o,
        Output::App {
            message: VaultMessage::Response { .. },
            ..
        }
    )));
    // Reads see the writes at once.
    let q = Request::Query {
        space: space.clone(),
        query: all_tasks(),
        at: None,
        resolve: false,
    };
    assert_eq!(ids(h.call(app, q)).len(), 100);
    // One flush stores all of them and answers all of them.
    let flush = h.vault.prepare_flush().unwrap().unwrap();
    assert_eq!(flush.ticket.calls(), 100);
    // A write during the flush goes into the next one.
    h.vault.app_message(
        app,
        Ok(ClientMessage::Request {
            id: 5000,
            method: create(&space, "late"),
        }),
    );
    assert!(
        h.vault.prepare_flush().unwrap().is_none(),
        "one flush at a time"
    );
    h.store.apply(flush.batch).unwrap();
    h.vault.flush_done(flush.ticket);
    let answered = h
        .outputs()
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::App {
                    message: VaultMessage::Response { result: Ok(_), .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(answered, 100);
    assert_eq!(h.flush(), 1);
    let mut h = h.reopen();
    let app = h.connect(APP);
    let q = Request::Query {
        space,
        query: all_tasks(),
        at: None,
        resolve: false,
    };
    assert_eq!(ids(h.call(app, q)).len(), 101);
}

#[test]
fn a_failed_flush_fails_its_calls_and_reverts_them() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let space = h.create_space(app, "board");
    h.call(app, create(&space, "kept")).unwrap();
    let sub = h
        .call(
            app,
            Request::Subscribe {
                space: space.clone(),
                query: all_tasks(),
                resolve: false,
            },
        )
        .unwrap();
    let Response::Subscribed {
        subscription,
        ids: initial,
        ..
    } = sub
    else {
        panic!()
    };
    assert_eq!(initial.len(), 1);

    h.vault.app_message(
        app,
        Ok(ClientMessage::Request {
            id: 77,
            method: create(&space, "lost"),
        }),
    );
    let created_space_req = Request::CreateSpace {
        properties: WireFields::new(),
    };
    h.vault.app_message(
        app,
        Ok(ClientMessage::Request {
            id: 78,
            method: created_space_req,
        }),
    );
    h.outputs();
    let flush = h.vault.prepare_flush().unwrap().unwrap();
    let full = StoreError::QuotaExceeded {
        store: "test".into(),
        message: "full".into(),
    };
    h.vault.flush_failed(flush.ticket, &full);
    let outs = h.outputs();
    for id in [77, 78] {
        let err = outs.iter().find_map(|o| match o {
            Output::App {
                message:
                    VaultMessage::Response {
                        id: i,
                        result: Err(e),
                    },
                ..
            } if *i == id => Some(e.code.clone()),
            _ => None,
        });
        assert_eq!(err.as_deref(), Some("store.quota_exceeded"), "{outs:?}");
    }
    // The space is reopened from storage: the lost write is gone, the live
    // query is told so, and the space created in the failed flush too.
    assert_eq!(h.vault.spaces_to_reload().len(), 1);
    let id: SpaceId = space.parse().unwrap();
    let entries = h.store.list_prefix(&Vault::storage_prefix(&id)).unwrap();
    h.vault.open_space(id, entries).unwrap();
    let diff = h.outputs().into_iter().find_map(|o| match o {
        Output::App {
            message:
                VaultMessage::Event {
                    subscription: Some(s),
                    event: Event::QueryDiff { removed, .. },
                },
            ..
        } if s == subscription => Some(removed),
        _ => None,
    });
    assert_eq!(diff.map(|r| r.len()), Some(1));
    let q = Request::Query {
        space: space.clone(),
        query: all_tasks(),
        at: None,
        resolve: false,
    };
    assert_eq!(ids(h.call(app, q)).len(), 1);
    let Response::Spaces { spaces } = h.call(app, Request::ListSpaces {}).unwrap() else {
        panic!()
    };
    assert_eq!(spaces.len(), 1);
    // The vault keeps working: the next write is stored.
    h.call(app, create(&space, "after")).unwrap();
    let mut h = h.reopen();
    let app = h.connect(APP);
    let q = Request::Query {
        space,
        query: all_tasks(),
        at: None,
        resolve: false,
    };
    assert_eq!(ids(h.call(app, q)).len(), 2);
}

#[test]
fn revoking_closes_connections_at_once_and_persists() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let space = h.create_space(app, "board");
    h.vault.admin_message(
        h.admin,
        AdminMessage::Request {
            id: 5,
            method: AdminRequest::Revoke { origin: APP.into() },
        },
        2.0,
    );
    let outs = h.outputs();
    let revoked = outs.iter().position(|o| matches!(o, Output::App { conn, message: VaultMessage::Event { event: Event::AccessRevoked { space: None }, .. } } if *conn == app));
    let closed = outs
        .iter()
        .position(|o| matches!(o, Output::Close { conn } if *conn == app));
    assert!(revoked.is_some() && closed > revoked, "{outs:?}");
    h.flush();
    let mut h = h.reopen();
    let again = h.connect(APP);
    assert_eq!(
        code(h.call(again, create(&space, "x"))).1,
        Some("consent_required".into())
    );
    // Allowing it again gives back the spaces it created.
    h.allow(APP, vec![]);
    h.call(again, create(&space, "x")).unwrap();
}

#[test]
fn live_queries_push_diffs_with_objects() {
    let mut h = Harness::new();
    let a = h.connect(APP);
    h.allow(APP, vec![]);
    let b = h.connect(APP);
    let space = h.create_space(a, "board");
    let Response::Subscribed { subscription, .. } = h
        .call(
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
    h.vault.app_message(
        a,
        Ok(ClientMessage::Request {
            id: 9,
            method: create(&space, "new"),
        }),
    );
    // Staged writes are applied (and their diffs pushed) together.
    assert!(h.outputs().is_empty());
    h.vault.commit_staged();
    let outs = h.outputs();
    let pushed = outs.iter().find_map(|o| match o {
        Output::App {
            conn,
            message:
                VaultMessage::Event {
                    subscription: Some(s),
                    event: Event::QueryDiff { added, objects, .. },
                },
        } if *conn == b && *s == subscription => {
            Some((added.len(), objects.as_ref().map(Vec::len)))
        }
        _ => None,
    });
    assert_eq!(pushed, Some((1, Some(1))));
    assert_eq!(
        code(h.call(a, Request::Unsubscribe { subscription })).0,
        "rpc.no_such_subscription"
    );
    assert_eq!(
        h.call(b, Request::Unsubscribe { subscription }).unwrap(),
        Response::Done {}
    );
}

#[test]
fn calls_before_hello_and_duplicate_ids_are_refused() {
    let mut h = Harness::new();
    let conn = h.vault.connect_app(APP);
    h.vault.app_message(
        conn,
        Ok(ClientMessage::Request {
            id: 1,
            method: Request::Ping {},
        }),
    );
    let outs = h.outputs();
    assert!(outs.iter().any(|o| matches!(o, Output::App { message: VaultMessage::Response { id: 1, result: Err(e) }, .. } if e.code == "rpc.not_connected")));
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let space = h.create_space(app, "s");
    h.vault.app_message(
        app,
        Ok(ClientMessage::Request {
            id: 500,
            method: create(&space, "a"),
        }),
    );
    h.vault.app_message(
        app,
        Ok(ClientMessage::Request {
            id: 500,
            method: create(&space, "b"),
        }),
    );
    let outs = h.outputs();
    assert!(outs.iter().any(|o| matches!(o, Output::App { message: VaultMessage::Response { id: 500, result: Err(e) }, .. } if e.code == "rpc.duplicate_id")));
}

#[test]
fn text_and_reads_at_earlier_heads() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let space = h.create_space(app, "s");
    let mut fields = WireFields::new();
    fields.insert("note".into(), WireValue::Text("hello".into()));
    let Response::Written { created } = h
        .call(
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
    let Response::Heads { heads } = h
        .call(
            app,
            Request::SpaceHeads {
                space: space.clone(),
            },
        )
        .unwrap()
    else {
        panic!()
    };
    h.call(
        app,
        Request::SpliceText {
            space: space.clone(),
            id: id.clone(),
            field: "note".into(),
            pos: 5,
            delete: 0,
            insert: " world".into(),
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
        h.call(app, read(None)).unwrap(),
        Response::Text {
            text: "hello world".into()
        }
    );
    assert_eq!(
        h.call(app, read(Some(heads))).unwrap(),
        Response::Text {
            text: "hello".into()
        }
    );
    let mut h = h.reopen();
    let app = h.connect(APP);
    assert_eq!(
        h.call(
            app,
            Request::ReadText {
                space: space.clone(),
                id,
                field: "note".into(),
                at: None
            }
        )
        .unwrap(),
        Response::Text {
            text: "hello world".into()
        }
    );
}

#[test]
fn admin_listings_and_bad_origins() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let space = h.create_space(app, "board");
    let Ok(AdminResponse::Apps { apps }) = h.admin(AdminRequest::ListApps {}) else {
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
    let Ok(AdminResponse::Spaces { spaces }) = h.admin(AdminRequest::ListSpaces {}) else {
        panic!()
    };
    assert_eq!(spaces[0].created_by.as_deref(), Some(APP));
    for bad in ["", "app.localhost", "http://a/b", "javascript:alert(1)"] {
        let e = h
            .admin(AdminRequest::Decide {
                origin: bad.into(),
                allow: true,
                spaces: vec![],
            })
            .unwrap_err();
        assert_eq!(e.code, "rpc.bad_request", "{bad}");
    }
    let e = h
        .admin(AdminRequest::Decide {
            origin: OTHER.into(),
            allow: true,
            spaces: vec!["0000000000000000000000000a".into()],
        })
        .unwrap_err();
    assert!(
        e.code == "rpc.no_such_space" || e.code == "model.invalid_id",
        "{e:?}"
    );
    h.admin(AdminRequest::SetName { name: "Ada".into() })
        .unwrap();
    let h2 = h.reopen();
    let stored = stored(&h2.store);
    assert_eq!(
        stored.identity.unwrap().display_name.as_deref(),
        Some("Ada")
    );
    assert_eq!(stored.grants.len(), 1);
}

#[test]
fn concurrent_writes_are_applied_together_and_a_bad_one_fails_alone() {
    let mut h = Harness::new();
    let app = h.connect(APP);
    h.allow(APP, vec![]);
    let space = h.create_space(app, "s");
    for i in 0..50u32 {
        h.vault.app_message(
            app,
            Ok(ClientMessage::Request {
                id: 100 + i,
                method: create(&space, &format!("t{i}")),
            }),
        );
    }
    // One call whose write is invalid: an update of an object that does not exist.
    let missing = crate::data::ObjectId::random().to_string();
    let mut set = WireFields::new();
    set.insert("done".into(), WireValue::Bool(true));
    h.vault.app_message(
        app,
        Ok(ClientMessage::Request {
            id: 999,
            method: Request::UpdateObject {
                space: space.clone(),
                id: missing,
                set,
                remove: vec![],
            },
        }),
    );
    assert!(h.vault.has_staged());
    h.vault.commit_staged();
    let outs = h.outputs();
    let refused = outs.iter().find_map(|o| match o {
        Output::App {
            message:
                VaultMessage::Response {
                    id: 999,
                    result: Err(e),
                },
            ..
        } => Some(e.code.clone()),
        _ => None,
    });
    assert_eq!(refused.as_deref(), Some("model.not_found"), "{outs:?}");
    assert_eq!(h.flush(), 50);
    let answered = h
        .outputs()
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::App {
                    message: VaultMessage::Response {
                        result: Ok(Response::Written { .. }),
                        ..
                    },
                    ..
                }
            )
        })
        .count();
    assert_eq!(answered, 50);
    let q = Request::Query {
        space: space.clone(),
        query: all_tasks(),
        at: None,
        resolve: false,
    };
    assert_eq!(ids(h.call(app, q)).len(), 50);

    // Without a bad one, a burst is one Automerge change per touched shard.
    let sid: SpaceId = space.parse().unwrap();
    let before = h.vault.replica(&sid).unwrap().space_mut().heads().unwrap();
    for i in 0..200u32 {
        h.vault.app_message(
            app,
            Ok(ClientMessage::Request {
                id: 2000 + i,
                method: create(&space, &format!("u{i}")),
            }),
        );
    }
    h.flush();
    let changes = h
        .vault
        .replica(&sid)
        .unwrap()
        .space_mut()
        .changes_since(&before)
        .unwrap();
    let total: usize = changes.iter().map(|c| c.changes.len()).sum();
    assert!(
        total <= changes.len(),
        "{total} changes in {} shards",
        changes.len()
    );
    assert!(total > 0);
}
