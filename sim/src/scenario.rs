//! Spaces set up the way people set them up — through the vault's RPC,
//! from an app and the vault's own pages — for tests and benchmarks that
//! run several vaults on a [`Sim`].

use echo_core::rpc::{
    AdminRequest, AdminResponse, Request, Response, Role, RpcError, WireFields, WireFilter,
    WireObject, WireQuery, WireValue,
};
use echo_core::vault::{ConnId, VaultEvent};

use crate::Sim;

/// The origin of the app every node's tests use.
pub const APP: &str = "http://app.localhost:8601";

/// A space shared by some nodes: its id, and each node's app connection
/// (in the order the nodes were given).
#[derive(Clone, Debug)]
pub struct Shared {
    pub space: String,
    pub apps: Vec<ConnId>,
}

/// A call from node `n`'s own pages.
pub fn admin(sim: &mut Sim, n: usize, request: AdminRequest) -> Result<AdminResponse, RpcError> {
    let now = sim.now;
    let conn = sim.nodes[n].connect_admin(now);
    sim.nodes[n].admin_call(now, conn, request)
}

/// Node `n`'s identity key, as its pages show it.
pub fn identity_of(sim: &mut Sim, n: usize) -> String {
    match admin(sim, n, AdminRequest::Status {}) {
        Ok(AdminResponse::Status { identity, .. }) => identity.identity_key,
        other => panic!("{other:?}"),
    }
}

/// Connects [`APP`] to node `n` and grants it `spaces` (and creating new
/// ones).
pub fn allow(sim: &mut Sim, n: usize, spaces: Vec<String>) -> ConnId {
    let now = sim.now;
    let app = sim.nodes[n].connect_app(now, APP);
    admin(
        sim,
        n,
        AdminRequest::Decide {
            origin: APP.into(),
            allow: true,
            spaces,
        },
    )
    .unwrap_or_else(|e| panic!("granting {APP}: {e:?}"));
    app
}

/// Creates a space through `app` on node `n`.
pub fn create_space(sim: &mut Sim, n: usize, app: ConnId) -> String {
    match write(
        sim,
        n,
        app,
        Request::CreateSpace {
            properties: WireFields::new(),
        },
    ) {
        Response::Space(info) => info.space,
        other => panic!("{other:?}"),
    }
}

/// Node `owner` admits node `n`'s identity to `space` with `role` and
/// exports the space; node `n` joins it.
pub fn join(sim: &mut Sim, owner: usize, n: usize, space: &str, role: Role) {
    let identity = identity_of(sim, n);
    admin(
        sim,
        owner,
        AdminRequest::Admit {
            space: space.into(),
            identity,
            role,
        },
    )
    .unwrap_or_else(|e| panic!("admitting node {n}: {e:?}"));
    let Ok(AdminResponse::Export { export }) = admin(
        sim,
        owner,
        AdminRequest::Export {
            space: space.into(),
        },
    ) else {
        panic!("export")
    };
    let joined = admin(sim, n, AdminRequest::Join { export });
    assert!(
        matches!(joined, Ok(AdminResponse::Joined { .. })),
        "{joined:?}"
    );
}

/// A space created by `nodes[0]`, every other node admitted with `role`
/// and joined, and an app on each node granted it.
pub fn share(sim: &mut Sim, nodes: &[usize], role: Role) -> Shared {
    let owner = nodes[0];
    let app = allow(sim, owner, vec![]);
    let space = create_space(sim, owner, app);
    let mut apps = vec![app];
    for &n in &nodes[1..] {
        join(sim, owner, n, &space, role);
        apps.push(allow(sim, n, vec![space.clone()]));
    }
    Shared { space, apps }
}

/// A request creating a note titled `title` whose body text is `title`.
pub fn note(space: &str, title: &str) -> Request {
    let mut fields = WireFields::new();
    fields.insert("title".into(), WireValue::String(title.into()));
    fields.insert("body".into(), WireValue::Text(title.into()));
    Request::CreateObject {
        space: space.into(),
        id: None,
        type_name: "note".into(),
        fields,
    }
}

/// A query of `space` now, unordered, unlimited: its ids, or with
/// `resolve` the objects too.
pub fn query(space: &str, filter: WireFilter, include_deleted: bool, resolve: bool) -> Request {
    Request::Query {
        space: space.into(),
        query: WireQuery {
            filter,
            order: Vec::new(),
            limit: None,
            offset: 0,
            include_deleted,
        },
        at: None,
        resolve,
    }
}

/// A query for every note of `space`, deleted ones too.
pub fn notes_query(space: &str) -> Request {
    query(space, WireFilter::Type("note".into()), true, true)
}

/// Every note of `space` (deleted ones too) as node `n`'s app reads them,
/// ordered by id.
pub fn notes(sim: &mut Sim, n: usize, app: ConnId, space: &str) -> Vec<WireObject> {
    objects(sim, n, app, space, "note")
}

/// Every object of type `type_name` in `space` (deleted ones too) as node
/// `n`'s app reads them, ordered by id.
pub fn objects(
    sim: &mut Sim,
    n: usize,
    app: ConnId,
    space: &str,
    type_name: &str,
) -> Vec<WireObject> {
    let request = query(space, WireFilter::Type(type_name.into()), true, true);
    match write(sim, n, app, request) {
        Response::Result { objects, .. } => {
            let mut o = objects.unwrap_or_default();
            o.sort_by(|a, b| a.id.cmp(&b.id));
            o
        }
        other => panic!("{other:?}"),
    }
}

/// A call through `app` on node `n` that must succeed.
pub fn write(sim: &mut Sim, n: usize, app: ConnId, request: Request) -> Response {
    let now = sim.now;
    sim.nodes[n]
        .call(now, app, request)
        .unwrap_or_else(|e| panic!("node {n}: {e:?}"))
}

/// Whether node `n` has started syncing some space with a peer.
pub fn synced(sim: &Sim, n: usize) -> bool {
    sim.nodes[n]
        .events
        .iter()
        .any(|e| matches!(e, VaultEvent::SyncStarted { .. }))
}
