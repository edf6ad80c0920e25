//! API v1: one [`Request`] variant per call, the [`Response`] payloads and
//! the [`Event`]s pushed for live queries and access changes.

use serde::{Deserialize, Serialize};

use super::values::{
    is_false, WireFields, WireHeads, WireMutation, WireObject, WireQuery, WireValue,
};
use crate::query::LiveDiff;

/// The method names of API v1, as they appear on the wire.
pub const METHODS: &[&str] = &[
    "ping",
    "identity.info",
    "spaces.create",
    "spaces.list",
    "space.properties",
    "space.set_property",
    "space.heads",
    "object.create",
    "object.update",
    "object.delete",
    "object.get",
    "object.batch",
    "query.run",
    "query.subscribe",
    "query.unsubscribe",
    "text.splice",
    "text.read",
    "space.status",
];

/// A call, externally tagged by its method name:
/// `{ "object.get": { "space": "..", "ids": [".."] } }`.
///
/// Space ids name spaces granted to the caller's origin; any other space
/// answers `rpc.no_such_space`. Reads take an optional `at` (heads from
/// `space.heads`) to read the space as it was then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub enum Request {
    /// Liveness check (the client's heartbeat) → `done`.
    #[serde(rename = "ping")]
    Ping {},
    /// The user as this app may see them (`AppIdentity`: an id for this
    /// app alone, the display name) → `identity`.
    #[serde(rename = "identity.info")]
    IdentityInfo {},
    /// A new space owned by the user, granted to the caller → `space`.
    #[serde(rename = "spaces.create")]
    CreateSpace {
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        properties: WireFields,
    },
    /// The spaces granted to the caller → `spaces`.
    #[serde(rename = "spaces.list")]
    ListSpaces {},
    /// A space's properties (name, …) → `properties`.
    #[serde(rename = "space.properties")]
    SpaceProperties { space: String },
    /// Sets one property of a space → `done`.
    #[serde(rename = "space.set_property")]
    SetSpaceProperty {
        space: String,
        name: String,
        value: WireValue,
    },
    /// The current point in the space's history → `heads`.
    #[serde(rename = "space.heads")]
    SpaceHeads { space: String },
    /// Creates one object → `written` (with its id in `created`).
    #[serde(rename = "object.create")]
    CreateObject {
        space: String,
        /// Chosen by the app; a random id when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        id: Option<String>,
        #[serde(rename = "type")]
        type_name: String,
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        fields: WireFields,
    },
    /// Sets and removes fields of one object, atomically → `written`.
    #[serde(rename = "object.update")]
    UpdateObject {
        space: String,
        id: String,
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        set: WireFields,
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        remove: Vec<String>,
    },
    /// Soft-deletes one object → `written`.
    #[serde(rename = "object.delete")]
    DeleteObject { space: String, id: String },
    /// Objects by id, now or `at` earlier heads → `objects` (same order,
    /// `null` for ids that do not exist).
    #[serde(rename = "object.get")]
    GetObjects {
        space: String,
        ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        at: Option<WireHeads>,
    },
    /// Writes applied together: all, or none when any is invalid → `written`.
    #[serde(rename = "object.batch")]
    Batch {
        space: String,
        mutations: Vec<WireMutation>,
    },
    /// A query's result, now or `at` earlier heads → `result`. With
    /// `resolve`, the objects come along.
    #[serde(rename = "query.run")]
    Query {
        space: String,
        query: WireQuery,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        at: Option<WireHeads>,
        #[serde(default, skip_serializing_if = "is_false")]
        #[cfg_attr(test, ts(optional = nullable))]
        resolve: bool,
    },
    /// A live query → `subscribed` (the initial result), then
    /// `query_diff` events for the returned subscription.
    #[serde(rename = "query.subscribe")]
    Subscribe {
        space: String,
        query: WireQuery,
        #[serde(default, skip_serializing_if = "is_false")]
        #[cfg_attr(test, ts(optional = nullable))]
        resolve: bool,
    },
    /// Ends a live query → `done`. No event for it follows the response.
    #[serde(rename = "query.unsubscribe")]
    Unsubscribe { subscription: u32 },
    /// Edits a text field (positions in Unicode code points) → `written`.
    /// `context`: the characters just before `pos` as the app saw the text
    /// (a few dozen at most). When someone else's edit reached the vault
    /// first and moved them, the splice goes right after the same
    /// characters nearest to `pos` — so two people typing in one text at
    /// once each keep their place.
    #[serde(rename = "text.splice")]
    SpliceText {
        space: String,
        id: String,
        field: String,
        pos: u32,
        delete: u32,
        insert: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        context: Option<String>,
    },
    /// A text field's content, now or `at` earlier heads → `text`.
    #[serde(rename = "text.read")]
    ReadText {
        space: String,
        id: String,
        field: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        at: Option<WireHeads>,
    },
    /// How the space is connected to its other members' vaults now →
    /// `space_status`; from then on this connection gets a `space_status`
    /// event whenever that changes.
    #[serde(rename = "space.status")]
    SpaceStatus { space: String },
}

impl Request {
    /// The method name on the wire (one of [`METHODS`]).
    pub fn method(&self) -> &'static str {
        match self {
            Request::Ping {} => "ping",
            Request::IdentityInfo {} => "identity.info",
            Request::CreateSpace { .. } => "spaces.create",
            Request::ListSpaces {} => "spaces.list",
            Request::SpaceProperties { .. } => "space.properties",
            Request::SetSpaceProperty { .. } => "space.set_property",
            Request::SpaceHeads { .. } => "space.heads",
            Request::CreateObject { .. } => "object.create",
            Request::UpdateObject { .. } => "object.update",
            Request::DeleteObject { .. } => "object.delete",
            Request::GetObjects { .. } => "object.get",
            Request::Batch { .. } => "object.batch",
            Request::Query { .. } => "query.run",
            Request::Subscribe { .. } => "query.subscribe",
            Request::Unsubscribe { .. } => "query.unsubscribe",
            Request::SpliceText { .. } => "text.splice",
            Request::ReadText { .. } => "text.read",
            Request::SpaceStatus { .. } => "space.status",
        }
    }

    /// The space the call addresses, if any: the dispatcher checks it was
    /// granted to the caller's origin before anything else.
    pub fn space(&self) -> Option<&str> {
        match self {
            Request::Ping {}
            | Request::IdentityInfo {}
            | Request::CreateSpace { .. }
            | Request::ListSpaces {}
            | Request::Unsubscribe { .. } => None,
            Request::SpaceProperties { space }
            | Request::SpaceStatus { space }
            | Request::SetSpaceProperty { space, .. }
            | Request::SpaceHeads { space }
            | Request::CreateObject { space, .. }
            | Request::UpdateObject { space, .. }
            | Request::DeleteObject { space, .. }
            | Request::GetObjects { space, .. }
            | Request::Batch { space, .. }
            | Request::Query { space, .. }
            | Request::Subscribe { space, .. }
            | Request::SpliceText { space, .. }
            | Request::ReadText { space, .. } => Some(space),
        }
    }
}

/// The user's role in a space, as its control log says now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reader,
    Editor,
    Admin,
    Owner,
    /// Not a member (removed, or not admitted yet): the vault still holds
    /// the data it had.
    None,
}

impl Role {
    /// The role of a member, or [`Role::None`].
    pub fn of(role: Option<crate::identity::Role>) -> Self {
        role.map_or(Role::None, Role::from)
    }
}

impl From<crate::identity::Role> for Role {
    fn from(r: crate::identity::Role) -> Self {
        use crate::identity::Role as R;
        match r {
            R::Reader => Role::Reader,
            R::Editor => Role::Editor,
            R::Admin => Role::Admin,
            R::Owner => Role::Owner,
        }
    }
}

/// The user as an app sees them (`identity.info`): a name for this app
/// alone, and the display name the user chose. Apps never see the user's
/// identity or device keys, so two sites cannot tell they serve the same
/// person (`docs/privacy.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AppIdentity {
    /// The user's id for this app (26 base32hex characters): the same on
    /// every call of this origin, unrelated to the id any other origin
    /// gets. Today it is this vault's (device's); it will become the
    /// identity's when a person's devices are linked.
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub display_name: Option<String>,
}

/// The user's identity as the vault's own pages see it: public keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct IdentityInfo {
    /// The identity public key (52 lower-case base32hex characters).
    pub identity_key: String,
    /// This vault's device public key.
    pub device_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub display_name: Option<String>,
}

impl IdentityInfo {
    pub fn new(
        identity: &crate::identity::IdentityPublicKey,
        device: &crate::identity::DevicePublicKey,
        display_name: Option<String>,
    ) -> Self {
        IdentityInfo {
            identity_key: identity.to_string(),
            device_key: device.to_string(),
            display_name,
        }
    }
}

/// A space as listed to an app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SpaceInfo {
    pub space: String,
    /// The user's role in it.
    pub role: Role,
    pub properties: WireFields,
}

/// How a space is connected to its other members' vaults, as this vault
/// sees it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SpaceStatus {
    /// Members' vaults syncing the space with this one now.
    pub peers: u32,
    /// When a peer was last heard on the space, in milliseconds since the
    /// Unix epoch (none since the vault started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub synced_at: Option<f64>,
    /// The vault is on the signaling network (it can meet peers at all).
    pub online: bool,
    /// The vault can open connections to peers now. In the browser that
    /// needs an open vault page (WebRTC lives in pages, not in the vault's
    /// worker): false means no vault page is open, and nothing syncs
    /// until one is.
    pub can_connect: bool,
}

/// A successful call's result, externally tagged by kind (see each
/// [`Request`] variant for which one it gets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Done {},
    Identity(AppIdentity),
    Space(SpaceInfo),
    Spaces {
        spaces: Vec<SpaceInfo>,
    },
    Properties {
        properties: WireFields,
    },
    Heads {
        heads: WireHeads,
    },
    /// A write committed (and durable: acknowledged only after storage
    /// committed). `created`: ids of created objects, in request order.
    Written {
        created: Vec<String>,
    },
    Objects {
        objects: Vec<Option<WireObject>>,
    },
    /// Ids of a query's result in order; `objects` (same order) when the
    /// request asked to `resolve`.
    Result {
        ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        objects: Option<Vec<WireObject>>,
    },
    /// A live query opened: its initial result, then `query_diff` events
    /// under `subscription`.
    Subscribed {
        subscription: u32,
        ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        objects: Option<Vec<WireObject>>,
    },
    Text {
        text: String,
    },
    SpaceStatus(SpaceStatus),
}

/// Something the vault pushes without being asked, externally tagged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A live query's result changed (the envelope names the
    /// subscription). Contract of `echo_core::query`: `added` / `removed`
    /// / `changed` ascending; `window` is the whole new result for
    /// ordered / limited queries; `objects` holds the new state of the
    /// added and changed objects when the subscription asked to `resolve`.
    QueryDiff {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        window: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        objects: Option<Vec<WireObject>>,
    },
    /// A space's properties or membership changed (e.g. after a sync).
    SpaceChanged { space: String },
    /// A space's connection status changed (sent to connections that
    /// asked `space.status` for it): peers came or went, the vault went
    /// on or off the signaling network, or a vault page opened or closed;
    /// also, at most once a second, when a peer was heard again.
    SpaceStatus { space: String, status: SpaceStatus },
    /// The user allowed this app's origin (in the consent popup): calls go
    /// through from now on, on the spaces listed in `spaces.list`.
    AccessGranted {},
    /// Access ended: to one space (`space`), or to the whole vault (no
    /// `space`: the user revoked this app's consent; the vault closes the
    /// connection after this event, and pending calls fail).
    AccessRevoked {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        space: Option<String>,
    },
}

impl Event {
    /// The wire form of a live query diff (ids only; the dispatcher fills
    /// `objects` for resolving subscriptions).
    pub fn from_diff(diff: &LiveDiff) -> Self {
        let ids = |v: &[crate::data::ObjectId]| v.iter().map(|id| id.to_string()).collect();
        Event::QueryDiff {
            added: ids(&diff.added),
            removed: ids(&diff.removed),
            changed: ids(&diff.changed),
            window: diff.window.as_deref().map(ids),
            objects: None,
        }
    }
}
