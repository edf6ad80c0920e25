//! The management protocol: what the vault's own top-level pages (the
//! consent popup, the manage page) ask the engine. Never reachable from an
//! app: the engine accepts these only on ports a vault page attached as
//! admin ports (`docs/browser-vault.md`, section 2).
//!
//! ```text
//! page                                        engine
//!   {request: {id: 1, method: {"apps.list": {}}}}  ─►
//!                                             ◄─  {response: {id: 1, result: {Ok: {apps: {apps: [..]}}}}}
//!                                             ◄─  {event: "changed"}   (grants or spaces changed)
//! ```

use serde::{Deserialize, Serialize};

use super::errors::RpcError;
use super::methods::{IdentityInfo, Role};
use super::values::WireFields;

/// What a vault page sends on an admin port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminMessage {
    Request { id: u32, method: AdminRequest },
}

/// A management call, externally tagged by its name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub enum AdminRequest {
    /// The identity and counts → `status`.
    #[serde(rename = "vault.status")]
    Status {},
    /// Every origin the user decided on → `apps`.
    #[serde(rename = "apps.list")]
    ListApps {},
    /// The user's decision in the consent popup for `origin`: allow (with
    /// the existing spaces it may see) or deny → `done`.
    #[serde(rename = "consent.decide")]
    Decide {
        origin: String,
        allow: bool,
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        spaces: Vec<String>,
    },
    /// Ends an app's access at once: its grant is removed and its open
    /// connections closed → `done`.
    #[serde(rename = "apps.revoke")]
    Revoke { origin: String },
    /// Every space in the vault → `spaces`.
    #[serde(rename = "spaces.list")]
    ListSpaces {},
    /// Sets the display name apps see in `identity.info` → `done`.
    #[serde(rename = "identity.set_name")]
    SetName { name: String },
    /// A space's members, their roles and devices → `members`.
    #[serde(rename = "members.list")]
    ListMembers { space: String },
    /// Admits an identity (its public key) with a role (`reader`,
    /// `editor` or `admin`) → `done`.
    #[serde(rename = "members.admit")]
    Admit {
        space: String,
        identity: String,
        role: Role,
    },
    /// Changes a member's role → `done`.
    #[serde(rename = "members.set_role")]
    SetRole {
        space: String,
        identity: String,
        role: Role,
    },
    /// Removes a member (this identity: leaves) → `done`.
    #[serde(rename = "members.remove")]
    Remove { space: String, identity: String },
    /// Revokes a member's device in the space → `done`.
    #[serde(rename = "devices.revoke")]
    RevokeDevice {
        space: String,
        identity: String,
        device: String,
    },
    /// What another vault needs to join a space this one holds (its
    /// control log and layout; no data, no secret) → `export`. Hand it over
    /// only to a device of an identity admitted first.
    #[serde(rename = "space.export")]
    Export { space: String },
    /// Joins a space from another vault's export: this device authorizes
    /// itself for this identity (which must be a member) → `joined`; its
    /// data arrives when a peer that holds it connects.
    #[serde(rename = "space.join")]
    Join { export: String },
}

/// The answer to an [`AdminRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminResponse {
    Done {},
    Status {
        identity: IdentityInfo,
        spaces: u32,
        apps: u32,
        /// Open app connections.
        connections: u32,
    },
    Apps {
        apps: Vec<AppGrant>,
    },
    Spaces {
        spaces: Vec<VaultSpace>,
    },
    Members {
        members: Vec<Member>,
    },
    Export {
        export: String,
    },
    Joined {
        space: String,
    },
}

/// A member of a space as the manage page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub identity: String,
    pub role: Role,
    /// Its devices authorized in this space (and not revoked).
    pub devices: Vec<String>,
}

/// One origin's standing with the vault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AppGrant {
    pub origin: String,
    /// `true`: allowed; `false`: denied.
    pub allowed: bool,
    /// The spaces it may see (granted in the popup, or created by it).
    pub spaces: Vec<String>,
    /// Open connections of this origin now.
    pub connections: u32,
    /// When the user decided, in milliseconds since the Unix epoch.
    pub decided_at: f64,
}

/// A space as the manage page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct VaultSpace {
    pub space: String,
    pub properties: WireFields,
    /// Live objects (`None` until the space was opened once in this run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub objects: Option<u32>,
    /// The origins it is granted to.
    pub apps: Vec<String>,
    /// The origin that created it, if an app did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub created_by: Option<String>,
}

/// What the engine sends on an admin port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminReply {
    Response {
        id: u32,
        result: Result<AdminResponse, RpcError>,
    },
    /// Something the manage page shows changed (grants, spaces,
    /// connections): list again.
    Changed {},
}
