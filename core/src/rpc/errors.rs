//! [`RpcError`]: what an app sees when a call fails — a stable code, a
//! sentence a person can act on, and optional details.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::data::InvalidId;
use crate::identity::IdentityError;
use crate::model::ModelError;
use crate::query::QueryError;
use crate::store::StoreError;
use crate::sync::SyncError;

/// The codes this module defines (the `rpc.*` rows of the table in the
/// module docs). Codes of other modules pass through unchanged.
pub mod codes {
    pub const BAD_REQUEST: &str = "rpc.bad_request";
    pub const UNKNOWN_METHOD: &str = "rpc.unknown_method";
    pub const UNSUPPORTED_VERSION: &str = "rpc.unsupported_version";
    pub const NOT_CONNECTED: &str = "rpc.not_connected";
    pub const DUPLICATE_ID: &str = "rpc.duplicate_id";
    pub const NOT_AUTHORIZED: &str = "rpc.not_authorized";
    pub const NO_SUCH_SPACE: &str = "rpc.no_such_space";
    pub const NO_SUCH_SUBSCRIPTION: &str = "rpc.no_such_subscription";
    pub const TOO_LARGE: &str = "rpc.too_large";
    pub const TOO_DEEP: &str = "rpc.too_deep";
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "rpc.too_many_subscriptions";
    pub const RATE_LIMITED: &str = "rpc.rate_limited";
    pub const STORAGE_PARTITIONED: &str = "rpc.storage_partitioned";
    pub const STORAGE_BLOCKED: &str = "rpc.storage_blocked";
    pub const STORAGE_LOST: &str = "rpc.storage_lost";
    pub const TIMEOUT: &str = "rpc.timeout";
    pub const CANCELLED: &str = "rpc.cancelled";
    pub const DISCONNECTED: &str = "rpc.disconnected";
    pub const INTERNAL: &str = "rpc.internal";

    /// Every `rpc.*` code, for tests and for the TypeScript side.
    pub const ALL: &[&str] = &[
        BAD_REQUEST,
        UNKNOWN_METHOD,
        UNSUPPORTED_VERSION,
        NOT_CONNECTED,
        DUPLICATE_ID,
        NOT_AUTHORIZED,
        NO_SUCH_SPACE,
        NO_SUCH_SUBSCRIPTION,
        TOO_LARGE,
        TOO_DEEP,
        TOO_MANY_SUBSCRIPTIONS,
        RATE_LIMITED,
        STORAGE_PARTITIONED,
        STORAGE_BLOCKED,
        STORAGE_LOST,
        TIMEOUT,
        CANCELLED,
        DISCONNECTED,
        INTERNAL,
    ];
}

/// A failed call as the app sees it.
///
/// `code` is stable and machine-readable (`module.reason`, see the table in
/// the module docs); `message` is one sentence for a person; `details`
/// carries machine-readable context (e.g. `field` for the offending part of
/// a request, `supported` for versions), all strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RpcError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub details: Option<BTreeMap<String, String>>,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

impl RpcError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        RpcError {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    /// Adds one detail (replacing one of the same key).
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }

    pub fn detail(&self, key: &str) -> Option<&str> {
        self.details.as_ref()?.get(key).map(String::as_str)
    }

    /// The message could not be decoded as a call of this API version.
    pub fn bad_request(reason: impl fmt::Display) -> Self {
        Self::new(
            codes::BAD_REQUEST,
            format!("the request is malformed: {reason}. Check it against the protocol types (client/src/protocol.ts)"),
        )
    }

    pub fn unknown_method(method: &str) -> Self {
        let shown: String = method.chars().take(64).collect();
        Self::new(
            codes::UNKNOWN_METHOD,
            format!(
                "unknown method {shown:?}: this vault speaks {}",
                super::methods::METHODS.join(", ")
            ),
        )
        .with_detail("method", shown)
    }

    pub fn too_large(what: &str, size: usize, max: usize) -> Self {
        Self::new(
            codes::TOO_LARGE,
            format!("{what} is {size}, more than the limit of {max}; split it into smaller calls"),
        )
        .with_detail("limit", max.to_string())
    }

    pub fn too_deep() -> Self {
        Self::new(
            codes::TOO_DEEP,
            format!(
                "the request nests values or filters more than {} levels deep; flatten it",
                super::MAX_NESTING
            ),
        )
        .with_detail("limit", super::MAX_NESTING.to_string())
    }

    /// For the client: the call did not finish within its timeout.
    pub fn timeout(method: &str, millis: u64) -> Self {
        Self::new(
            codes::TIMEOUT,
            format!("{method} got no answer within {millis} ms; the vault may be busy, retry or raise the timeout"),
        )
    }

    /// For the client: the app cancelled the call.
    pub fn cancelled() -> Self {
        Self::new(codes::CANCELLED, "the call was cancelled by the app")
    }

    /// For the client: the connection ended (vault reloaded or closed)
    /// while the call was pending; it may or may not have been carried out.
    pub fn disconnected() -> Self {
        Self::new(
            codes::DISCONNECTED,
            "the connection to the vault was lost (it reloaded or closed) before the answer came; reconnect, then check whether the write happened before retrying it",
        )
    }

    pub fn not_authorized(reason: impl fmt::Display) -> Self {
        Self::new(
            codes::NOT_AUTHORIZED,
            format!("this app is not allowed to do that: {reason}. Ask the user to grant access in the vault"),
        )
    }

    /// A space that does not exist or was not granted to this app's origin
    /// (the two are not told apart, so apps cannot probe for spaces).
    pub fn no_such_space(space: &str) -> Self {
        let shown: String = space.chars().take(64).collect();
        Self::new(
            codes::NO_SUCH_SPACE,
            format!("space {shown} does not exist or was not shared with this app"),
        )
        .with_detail("space", shown)
    }

    pub fn no_such_subscription(id: u32) -> Self {
        Self::new(
            codes::NO_SUCH_SUBSCRIPTION,
            format!("subscription {id} is not open (already closed, or never opened on this connection)"),
        )
    }
}

impl From<ModelError> for RpcError {
    fn from(e: ModelError) -> Self {
        RpcError::new(e.code(), e.to_string())
    }
}

impl From<InvalidId> for RpcError {
    fn from(e: InvalidId) -> Self {
        RpcError::new(e.code(), e.to_string())
    }
}

impl From<QueryError> for RpcError {
    fn from(e: QueryError) -> Self {
        RpcError::new(e.code(), e.to_string())
    }
}

impl From<StoreError> for RpcError {
    fn from(e: StoreError) -> Self {
        RpcError::new(e.code(), e.to_string())
    }
}

impl From<SyncError> for RpcError {
    fn from(e: SyncError) -> Self {
        RpcError::new(e.code(), e.to_string())
    }
}

impl From<crate::invite::InviteError> for RpcError {
    fn from(e: crate::invite::InviteError) -> Self {
        RpcError::new(e.code(), e.to_string())
    }
}

impl From<IdentityError> for RpcError {
    fn from(e: IdentityError) -> Self {
        RpcError::new(e.code(), e.to_string())
    }
}
