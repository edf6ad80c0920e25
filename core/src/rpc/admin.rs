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
    /// Invites a person to a space this vault holds and may manage:
    /// `role` (default `editor`), valid `ttl_minutes` (default 60, at most
    /// a week), for one guest unless `multi_use` → `invitation` (its code
    /// to share). The vault waits for the guest on signaling.
    #[serde(rename = "invitations.create")]
    CreateInvitation {
        space: String,
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        role: Option<Role>,
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        ttl_minutes: Option<u32>,
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        multi_use: Option<bool>,
    },
    /// Every invitation this vault made or is answering → `invitations`.
    #[serde(rename = "invitations.list")]
    ListInvitations {},
    /// Ends an invitation (made here, or being answered here) → `done`.
    #[serde(rename = "invitations.cancel")]
    CancelInvitation { invitation: String },
    /// Answers an invite code (or link) someone shared → `invitation`;
    /// the vault looks for the host on signaling.
    #[serde(rename = "invitations.accept")]
    AcceptInvitation { code: String },
    /// The 6-digit code the host's vault shows, as the guest typed it →
    /// `done`; the outcome shows in `invitations.list`.
    #[serde(rename = "invitations.enter_code")]
    EnterAuthCode { invitation: String, code: String },
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
    Invitation {
        invitation: Box<InvitationInfo>,
    },
    Invitations {
        invitations: Vec<InvitationInfo>,
    },
}

/// Which end of an invitation this vault is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InvitationSide {
    Host,
    Guest,
}

/// Where an invitation stands, as its vault pages show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    /// Host: waiting for a guest to come.
    Waiting,
    /// Guest: looking for the host, or waiting for its answer.
    Connecting,
    /// Host: a guest is connected, show it the code; guest: type the code.
    ReadyForCode,
    /// The code was typed; the host is checking it.
    Authenticating,
    Success,
    Cancelled,
    Expired,
    Failed,
}

/// An invitation as the vault's pages show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct InvitationInfo {
    /// Its id (hex).
    pub invitation: String,
    pub side: InvitationSide,
    pub state: InvitationState,
    /// The invite code to share (host side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub code: Option<String>,
    /// The 6-digit code to show the guest (host side, while a guest is
    /// connected). Never sent to an app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub auth_code: Option<String>,
    /// The space (host side; guest side once admitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub space: Option<String>,
    pub role: Role,
    /// When it expires, in milliseconds since the Unix epoch (the host's
    /// clock).
    pub expires_at: f64,
    /// Wrong codes that may still be typed before it ends.
    pub attempts_left: u32,
    pub multi_use: bool,
    /// Identities admitted through it (host side).
    pub admitted: Vec<String>,
    /// The other vault's identity, once known (guest side: the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub peer_identity: Option<String>,
    /// Why it ended or what went wrong last (e.g. `invite.wrong_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub error: Option<RpcError>,
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
    /// The spaces it may use: those the user checked, and those it created since.
    pub spaces: Vec<String>,
    /// Open connections of this origin now.
    pub connections: u32,
    /// When the user decided, in milliseconds since the Unix epoch.
    pub decided_at: f64,
    /// Bytes the spaces it created hold in storage (as last known: exact
    /// for open spaces, a recorded size otherwise).
    pub stored_bytes: f64,
    /// The most those spaces may hold, in bytes (`None`: no limit): each
    /// site's share of the vault's storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub share_bytes: Option<f64>,
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
    /// Peers syncing it with this vault now.
    pub peers: u32,
    /// When a peer was last heard on it, in milliseconds since the Unix
    /// epoch (none since this vault started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub synced_at: Option<f64>,
    /// Whether this vault is on signaling (can meet peers at all).
    pub online: bool,
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
