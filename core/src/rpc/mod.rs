//! The app ↔ vault protocol: the messages, API v1's calls, responses and
//! events, their wire forms, and the errors apps see. Sans-IO types only —
//! the `vault` module decides the calls; the TypeScript
//! types in `client/src/protocol.ts` are generated from these (see `ts.rs`).
//!
//! | file | concept |
//! |---|---|
//! | `envelope.rs` | [`ClientMessage`] / [`VaultMessage`], the handshake ([`negotiate`]), decoding with typed errors ([`decode_client_message`]) |
//! | `methods.rs` | [`Request`] (one variant per call), [`Response`], [`Event`] |
//! | `admin.rs` | the vault's own pages' protocol: [`AdminRequest`], [`AdminReply`] |
//! | `values.rs` | wire forms of values, objects, heads, queries, mutations, and their checked conversions |
//! | `errors.rs` | [`RpcError`] and the `rpc.*` codes |
//! | `ts.rs` | TypeScript generation (tests only) |
//!
//! # Conversation
//!
//! ```text
//! client                                   vault
//!   {hello: {versions: [1], client}}   ─►
//!                                      ◄─  {welcome: {version: 1, vault}}  | {refused: {error}}
//!   {request: {id: 1, method: {"object.get": {..}}}} ─►
//!                                      ◄─  {response: {id: 1, result: {Ok: {objects: ..}}}}
//!   {request: {id: 2, method: {"query.subscribe": {..}}}} ─►
//!                                      ◄─  {response: {id: 2, result: {Ok: {subscribed: {subscription: 5, ..}}}}}
//!                                      ◄─  {event: {subscription: 5, event: {query_diff: ..}}}
//!   {cancel: {id: 3}}                  ─►
//! ```
//!
//! - **Ids**: the client numbers its calls (`u32`, unique among its
//!   pending calls); every call gets exactly one `response` with its id,
//!   unless the client cancelled it. A message that cannot be decoded is
//!   answered for its call when its id can still be read, else with
//!   `rejected`.
//! - **Versions**: `hello` lists the versions the client speaks; the vault
//!   picks the highest it shares ([`SUPPORTED_VERSIONS`]) or refuses with
//!   `rpc.unsupported_version` (its `details.supported` lists the vault's).
//! - **Cancellation and timeouts** are the client's: on a timeout or a
//!   cancel it fails the call at once (`rpc.timeout` / `rpc.cancelled`),
//!   sends `cancel`, and ignores a late answer.
//! - **Disconnects**: when the port closes or the `ping` heartbeat gets no
//!   answer (the vault reloaded), the client fails every pending call with
//!   `rpc.disconnected`, shows [`ConnectionState::Disconnected`] and
//!   reconnects (a new `hello`; subscriptions are re-opened by the client).
//! - **Origins**: no message carries the app's origin. The shell checks
//!   `event.origin` and tags the port it hands the worker; the engine trusts
//!   only that tag. An app sees only the spaces its origin was granted;
//!   others answer `rpc.no_such_space`, like spaces that do not exist.
//! - **Frames**: on the browser's ports either side may send several
//!   messages as one JSON array (`echo-vault`'s `frame.rs`); each message
//!   in it is handled as if it came alone, in order.
//!
//! # Wire forms
//!
//! Every type is plain data (objects, arrays, strings, numbers, booleans):
//! it travels as JSON (`serde_json`) and as a structured clone through
//! `serde-wasm-bindgen`, and both give the same value provided the host
//! uses `serde_wasm_bindgen::Serializer::json_compatible()` (maps as plain
//! objects, not `Map`; no `undefined`). The choices:
//!
//! - **Enums are externally tagged**: `{ "<tag>": <content> }`, unit
//!   variants as the bare tag string (`"null"`, `"all"`, `"reader"`).
//!   Adjacent or internal tagging would make serde buffer content that
//!   precedes its tag, with no depth limit; external tagging decodes in one
//!   pass, under the nesting guard ([`MAX_NESTING`]).
//! - **Ids** (space, object, public keys) are their canonical strings (26
//!   lower-case base32hex characters for ids). They are checked when
//!   converted to model types: a malformed one is `model.invalid_id` with
//!   `details.field` naming where it was.
//! - **Values** ([`WireValue`]): `"null"`, `{bool}`, `{int}`, `{float}`,
//!   `{string}`, `{bytes}`, `{list}`, `{map}`, `{ref: {space?, object}}`,
//!   `{text}` (collaborative text).
//! - **Integers** (`Value::Int`, i64): a JSON number when |n| ≤ 2^53 − 1
//!   (exact in a JavaScript number), else the decimal string; decoding
//!   accepts both, and refuses non-integral or unsafe numbers (a client
//!   must send a big integer as a string, never a rounded number). TS type
//!   `Int = number | string`.
//! - **Floats**: a number when finite, else `"NaN"`, `"Infinity"`,
//!   `"-Infinity"` (JSON has no such numbers); −0.0 is `"-0"`
//!   (`JSON.stringify(-0)` is `"0"`, so a JavaScript client that reads a
//!   float and writes it back would otherwise lose its sign), and decoding
//!   also takes the number `-0.0`. Ints and floats are distinct on the wire
//!   (`{int: 2}` ≠ `{float: 2}`): a client keeps the kind it read (the SDK
//!   reads an integral float as `FloatValue`). A host parsing JSON text
//!   with serde_json enables its `float_roundtrip` feature: the default
//!   parser can be one ulp off.
//! - **Bytes**: standard base64 with padding (RFC 4648 §4), one string —
//!   compact in JSON and identical in both encodings (a `Vec<u8>` would be
//!   a 4× longer number array in JSON). Decoding is strict.
//! - **Heads**: an array of opaque strings `"<shard>:<64 hex digits>"`.
//! - Counts, positions, limits and call / subscription ids are `u32`
//!   (JavaScript numbers); nothing on the wire is a u64.
//! - Optional fields are omitted when absent (an `Option` field also takes
//!   `null`). Structs refuse unknown fields, so a typo is an error, not a
//!   no-op.
//!
//! # Limits
//!
//! | constant | value | checked by |
//! |---|---|---|
//! | [`MAX_MESSAGE_BYTES`] | 4 MiB | the host, on a port message's (a frame's) byte length ([`check_size`]) |
//! | [`MAX_FRAME_MESSAGES`] | 4 096 messages per frame | the host, while cutting a frame (`rpc.too_large`, one for the frame) |
//! | [`MAX_BATCH`] | 10 000 mutations per `object.batch` | [`check_limits`] |
//! | [`MAX_GET_IDS`] | 1 000 ids per `object.get` | [`check_limits`] |
//! | [`crate::data::MAX_VALUE_DEPTH`] | 32 levels of lists / maps in a value (its deepest item at most 32 levels below the field), stored or in a filter | the model (`model.too_deep`), the query module (`query.too_deep`) |
//! | [`crate::query::MAX_FILTER_DEPTH`] | 32 levels of `and` / `or` / `not` / `refers_to` | the query module (`query.too_deep`) |
//! | [`MAX_NESTING`] | 72 levels of values and filters while decoding: above the two caps together, so only a message beyond them meets it | the decoder (`rpc.too_deep`), before the model's and query's own checks |
//! | [`MAX_CLIENT_NAME`] | 128 bytes | [`check_limits`], [`answer_hello`] |
//! | [`MAX_SUBSCRIPTIONS`] | 256 live queries per connection | the dispatcher (`rpc.too_many_subscriptions`) |
//!
//! Apps see these as `LIMITS` in `client/src/protocol.ts` (generated, so
//! one source): `maxMessageBytes`, `maxFrameMessages`, `maxBatch`,
//! `maxGetIds`, `maxValueDepth`, `maxFilterDepth`, `maxTraversalDepth`
//! ([`crate::query::MAX_TRAVERSAL_DEPTH`]), `maxClientName`,
//! `maxSubscriptions`. The decoder's guard is not among them: no message
//! within the others reaches it. (A host parsing JSON text meets
//! serde_json's own limit of 128 levels first in one corner: more than 27
//! levels of `and` / `or` around a value at its depth limit, each 2 JSON
//! levels, is `rpc.too_deep` though within both caps.)
//!
//! # Error codes
//!
//! An [`RpcError`]'s `code` is `module.reason`. This module's codes:
//!
//! | code | meaning | set by |
//! |---|---|---|
//! | `rpc.bad_request` | the message does not decode as a call of this version (wrong types, missing or unknown fields, bad base64 or heads) | vault |
//! | `rpc.unknown_method` | no such method in this version (`details.method`) | vault |
//! | `rpc.unsupported_version` | no API version in common (`details.supported`) | vault, in `refused` |
//! | `rpc.not_connected` | a call before the handshake finished | vault |
//! | `rpc.duplicate_id` | a call id that is still pending | vault |
//! | `rpc.not_authorized` | consent denied or revoked, or the role does not allow it | vault |
//! | `rpc.no_such_space` | the space does not exist or was not granted to this origin | vault |
//! | `rpc.no_such_subscription` | unsubscribing what is not open | vault |
//! | `rpc.too_large` | over a size limit (`details.limit`) | vault |
//! | `rpc.too_deep` | values or filters nested beyond [`MAX_NESTING`] | vault |
//! | `rpc.too_many_subscriptions` | over [`MAX_SUBSCRIPTIONS`] | vault |
//! | `rpc.rate_limited` | too many calls; retry later | vault |
//! | `rpc.storage_partitioned` | the vault's storage is partitioned for this site; writes would not reach the user's vault | vault |
//! | `rpc.storage_blocked` | the browser refuses the vault storage | vault, in `refused` |
//! | `rpc.storage_lost` | the browser deleted the vault's storage (it held an identity; now it is empty): the person decides on the vault's page to start a new vault | vault, in `refused` |
//! | `rpc.timeout` | no answer within the call's timeout | client |
//! | `rpc.cancelled` | the app cancelled the call | client |
//! | `rpc.disconnected` | the vault went away with the call pending | client |
//! | `rpc.internal` | a bug in the vault; the message says what failed | vault |
//!
//! Errors of the engine keep their module's code ([`From`] impls use
//! their `code()`): `model.*` ([`crate::model::ModelError`] and
//! [`crate::data::InvalidId`], e.g.
//! `model.not_found`, `model.invalid_id`, `model.deleted`,
//! `model.text_range`, `model.unknown_heads`), `query.*`
//! ([`crate::query::QueryError`]), `store.*` ([`crate::store::StoreError`],
//! e.g. `store.quota_exceeded`), `sync.*` ([`crate::sync::SyncError`]) and
//! `identity.*` ([`crate::identity::IdentityError`]). Apps match on the
//! code; the message is for people.

mod admin;
mod envelope;
mod errors;
mod methods;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod ts;
mod values;

pub use admin::{
    AdminMessage, AdminReply, AdminRequest, AdminResponse, AppGrant, InvitationInfo,
    InvitationSide, InvitationState, Member, VaultSpace,
};
pub use envelope::{
    answer_hello, check_limits, check_size, decode_client_message, negotiate, ClientMessage,
    ConnectionState, Consent, Durability, Probe, StorageState, Undecodable, VaultInfo,
    VaultMessage,
};
pub use errors::{codes, RpcError};
pub use methods::{
    AppIdentity, Event, IdentityInfo, Request, Response, Role, SpaceInfo, SpaceStatus, METHODS,
};
pub use values::{
    fields_from_wire, fields_to_wire, mutation_from_wire, parse_object_id, parse_space_id,
    WireCompare, WireDirection, WireFields, WireFilter, WireFloat, WireHeads, WireInt,
    WireMutation, WireObject, WireOrder, WireQuery, WireReference, WireValue, MAX_SAFE_INTEGER,
};

/// The API versions this build speaks.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];
/// Largest message a host accepts from an app, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Most messages one port message (a frame) may carry; a frame with more
/// is refused whole, with one `rpc.too_large`.
pub const MAX_FRAME_MESSAGES: usize = 4_096;
/// Most mutations in one `object.batch`.
pub const MAX_BATCH: usize = 10_000;
/// Most ids in one `object.get`.
pub const MAX_GET_IDS: usize = 1_000;
/// Most levels of values and filters nested in one decoded message: the
/// query module's filter and value caps together, plus room for the
/// wrappers, so those caps report first with their precise errors.
pub const MAX_NESTING: usize = crate::query::MAX_FILTER_DEPTH + crate::data::MAX_VALUE_DEPTH + 8;
/// Longest client name in `hello`, in bytes.
pub const MAX_CLIENT_NAME: usize = 128;
/// Most live queries one connection may hold open.
pub const MAX_SUBSCRIPTIONS: usize = 256;
