// Generated from the Rust types of echo_core::rpc (core/src/rpc) by ts-rs.
// Do not edit: run `ECHO_UPDATE_TS=1 cargo test -p echo-core rpc::ts`.
// Wire forms and error codes are documented in core/src/rpc/mod.rs.

/** The API versions this build speaks. */
export const SUPPORTED_VERSIONS: readonly number[] = [1];

/** Method names of API v1. */
export const METHODS = ["ping", "identity.info", "spaces.create", "spaces.list", "space.properties", "space.set_property", "space.heads", "object.create", "object.update", "object.delete", "object.get", "object.batch", "query.run", "query.subscribe", "query.unsubscribe", "text.splice", "text.read", "space.status"] as const;

/** The `rpc.*` error codes; other modules' codes pass through (`model.*`, `query.*`, …). */
export const RPC_ERROR_CODES = ["rpc.bad_request", "rpc.unknown_method", "rpc.unsupported_version", "rpc.not_connected", "rpc.duplicate_id", "rpc.not_authorized", "rpc.no_such_space", "rpc.no_such_subscription", "rpc.too_large", "rpc.too_deep", "rpc.too_many_subscriptions", "rpc.rate_limited", "rpc.storage_partitioned", "rpc.storage_blocked", "rpc.storage_lost", "rpc.timeout", "rpc.cancelled", "rpc.disconnected", "rpc.internal"] as const;

/**
 * The engine's limits (see core/src/rpc/mod.rs). `maxValueDepth`: levels of
 * lists / maps a value may nest (its deepest item at most this many levels
 * below the field), in a field and in a filter alike; `maxFilterDepth`:
 * levels of and / or / not / refers_to in a filter.
 */
export const LIMITS = { maxMessageBytes: 4194304, maxFrameMessages: 4096, maxBatch: 10000, maxGetIds: 1000, maxValueDepth: 32, maxFilterDepth: 32, maxTraversalDepth: 256, maxClientName: 128, maxSubscriptions: 256 } as const;

/** A method's name (one of `METHODS`). */
export type Method = (typeof METHODS)[number];

/** What each method takes: the content of its `Request` variant. */
export type MethodParams = { [M in Method]: Extract<Request, { [K in M]: unknown }>[M] };

/** What each method answers on success: its `Response` variant. */
export type MethodResponses = {
  "ping": Extract<Response, { "done": unknown }>;
  "identity.info": Extract<Response, { "identity": unknown }>;
  "spaces.create": Extract<Response, { "space": unknown }>;
  "spaces.list": Extract<Response, { "spaces": unknown }>;
  "space.properties": Extract<Response, { "properties": unknown }>;
  "space.set_property": Extract<Response, { "done": unknown }>;
  "space.heads": Extract<Response, { "heads": unknown }>;
  "object.create": Extract<Response, { "written": unknown }>;
  "object.update": Extract<Response, { "written": unknown }>;
  "object.delete": Extract<Response, { "written": unknown }>;
  "object.get": Extract<Response, { "objects": unknown }>;
  "object.batch": Extract<Response, { "written": unknown }>;
  "query.run": Extract<Response, { "result": unknown }>;
  "query.subscribe": Extract<Response, { "subscribed": unknown }>;
  "query.unsubscribe": Extract<Response, { "done": unknown }>;
  "text.splice": Extract<Response, { "written": unknown }>;
  "text.read": Extract<Response, { "text": unknown }>;
  "space.status": Extract<Response, { "space_status": unknown }>;
};

/**
 * What an app sends, externally tagged: `{ "hello": {..} }`,
 * `{ "request": {..} }`, `{ "cancel": {..} }`.
 *
 * No field names the sender: the vault knows an app's origin only from the
 * shell, which tags each port with the `event.origin` it checked.
 */
export type ClientMessage = { "hello": { versions: Array<number>, 
/**
 * The client library and version, for logs (e.g. `"echo-client 0.1"`).
 */
client: string, 
/**
 * How durable this connection's writes must be before they are
 * answered (`strict` when absent).
 */
durability?: Durability, } } | { "request": { id: number, method: Request, } } | { "cancel": { id: number, } };

/**
 * What the vault sends, externally tagged.
 */
export type VaultMessage = { "welcome": { version: number, vault: VaultInfo, } } | { "refused": { error: RpcError, } } | { "response": { id: number, result: { Ok : Response } | { Err : RpcError }, } } | { "event": { subscription?: number, event: Event, } } | { "rejected": { error: RpcError, } };

/**
 * What the vault tells about itself in the handshake.
 */
export type VaultInfo = { 
/**
 * The vault build, for logs (e.g. `"echo-vault 0.1.0"`).
 */
vault: string, 
/**
 * How the vault's storage is reachable from this app's page.
 */
storage: StorageState, 
/**
 * What the user decided about this app's origin.
 */
consent: Consent, };

/**
 * The vault's storage as seen from the embedding app.
 */
export type StorageState = "persistent" | "partitioned";

/**
 * The user's decision about an app's origin, as the app is told it.
 */
export type Consent = "granted" | "required" | "denied";

/**
 * The states a client's connection goes through, for apps to show
 * (the client derives them; the vault never sends them as such).
 */
export type ConnectionState = "connecting" | "connected" | "not_authorized" | "storage_partitioned" | "storage_blocked" | "storage_lost" | "disconnected";

/**
 * How durable a connection's writes are when the vault answers them.
 *
 * `strict` (the default): stored so that they survive a power cut (the
 * browser's IndexedDB transaction with `durability: "strict"`, flushed to
 * disk) — an answered write is never lost. `relaxed`: stored so that they
 * survive the app, the tab or the browser crashing, but the last second or
 * so of answered writes may be lost if the machine loses power (IndexedDB
 * `durability: "relaxed"`: the operating system writes them out a moment
 * later) — the trade-off Yjs' IndexedDB provider makes, for apps that want
 * its speed. A flush is relaxed only when every answer it holds is for a
 * relaxed connection and it holds no decision of the person (grants,
 * identity, invitations); anything else makes it strict.
 */
export type Durability = "strict" | "relaxed";

/**
 * A call, externally tagged by its method name:
 * `{ "object.get": { "space": "..", "ids": [".."] } }`.
 *
 * Space ids name spaces granted to the caller's origin; any other space
 * answers `rpc.no_such_space`. Reads take an optional `at` (heads from
 * `space.heads`) to read the space as it was then.
 */
export type Request = { "ping": Record<symbol, never> } | { "identity.info": Record<symbol, never> } | { "spaces.create": { properties?: { [key in string]: Value }, } } | { "spaces.list": Record<symbol, never> } | { "space.properties": { space: string, } } | { "space.set_property": { space: string, name: string, value: Value, } } | { "space.heads": { space: string, } } | { "object.create": { space: string, 
/**
 * Chosen by the app; a random id when absent.
 */
id?: string, type: string, fields?: { [key in string]: Value }, } } | { "object.update": { space: string, id: string, set?: { [key in string]: Value }, remove?: Array<string>, } } | { "object.delete": { space: string, id: string, } } | { "object.get": { space: string, ids: Array<string>, at?: Heads, } } | { "object.batch": { space: string, mutations: Array<Mutation>, } } | { "query.run": { space: string, query: Query, at?: Heads, resolve?: boolean, } } | { "query.subscribe": { space: string, query: Query, resolve?: boolean, } } | { "query.unsubscribe": { subscription: number, } } | { "text.splice": { space: string, id: string, field: string, pos: number, delete: number, insert: string, context?: string, } } | { "text.read": { space: string, id: string, field: string, at?: Heads, } } | { "space.status": { space: string, } };

/**
 * A successful call's result, externally tagged by kind (see each
 * [`Request`] variant for which one it gets).
 */
export type Response = { "done": Record<symbol, never> } | { "identity": AppIdentity } | { "space": SpaceInfo } | { "spaces": { spaces: Array<SpaceInfo>, } } | { "properties": { properties: { [key in string]: Value }, } } | { "heads": { heads: Heads, } } | { "written": { created: Array<string>, } } | { "objects": { objects: Array<ObjectState | null>, } } | { "result": { ids: Array<string>, objects?: Array<ObjectState>, } } | { "subscribed": { subscription: number, ids: Array<string>, objects?: Array<ObjectState>, } } | { "text": { text: string, } } | { "space_status": SpaceStatus };

/**
 * Something the vault pushes without being asked, externally tagged.
 */
export type Event = { "query_diff": { added: Array<string>, removed: Array<string>, changed: Array<string>, window?: Array<string>, objects?: Array<ObjectState>, } } | { "space_changed": { space: string, } } | { "space_status": { space: string, status: SpaceStatus, } } | { "access_granted": Record<symbol, never> } | { "access_revoked": { space?: string, } };

/**
 * A failed call as the app sees it.
 *
 * `code` is stable and machine-readable (`module.reason`, see the table in
 * the module docs); `message` is one sentence for a person; `details`
 * carries machine-readable context (e.g. `field` for the offending part of
 * a request, `supported` for versions), all strings.
 */
export type RpcError = { code: string, message: string, details?: { [key in string]: string }, };

/**
 * The user as an app sees them (`identity.info`): a name for this app
 * alone, and the display name the user chose. Apps never see the user's
 * identity or device keys, so two sites cannot tell they serve the same
 * person (`docs/privacy.md`).
 */
export type AppIdentity = { 
/**
 * The user's id for this app (26 base32hex characters): the same on
 * every call of this origin, unrelated to the id any other origin
 * gets. Today it is this vault's (device's); it will become the
 * identity's when a person's devices are linked.
 */
user: string, display_name?: string, };

/**
 * The user's identity as the vault's own pages see it: public keys.
 */
export type IdentityInfo = { 
/**
 * The identity public key (52 lower-case base32hex characters).
 */
identity_key: string, 
/**
 * This vault's device public key.
 */
device_key: string, display_name?: string, };

/**
 * A space as listed to an app.
 */
export type SpaceInfo = { space: string, 
/**
 * The user's role in it.
 */
role: Role, properties: { [key in string]: Value }, };

/**
 * How a space is connected to its other members' vaults, as this vault
 * sees it now.
 */
export type SpaceStatus = { 
/**
 * Members' vaults syncing the space with this one now.
 */
peers: number, 
/**
 * When a peer was last heard on the space, in milliseconds since the
 * Unix epoch (none since the vault started).
 */
synced_at?: number, 
/**
 * The vault is on the signaling network (it can meet peers at all).
 */
online: boolean, 
/**
 * The vault can open connections to peers now. In the browser that
 * needs an open vault page (WebRTC lives in pages, not in the vault's
 * worker): false means no vault page is open, and nothing syncs
 * until one is.
 */
can_connect: boolean, };

/**
 * The user's role in a space, as its control log says now.
 */
export type Role = "reader" | "editor" | "admin" | "owner" | "none";

/**
 * A field value on the wire, externally tagged: `"null"`, `{ "bool": true }`,
 * `{ "int": 5 }`, `{ "float": 1.5 }`, `{ "string": "hi" }`,
 * `{ "bytes": "<base64>" }`, `{ "list": [..] }`, `{ "map": { .. } }`,
 * `{ "ref": { "object": ".." } }`, `{ "text": "collaborative" }`.
 */
export type Value = "null" | { "bool": boolean } | { "int": Int } | { "float": Float } | { "string": string } | { "bytes": string } | { "list": Array<Value> } | { "map": { [key in string]: Value } } | { "ref": Reference } | { "text": string };

/**
 * An i64: a number when |n| <= 2^53 - 1, else its decimal string.
 */
export type Int = number | string;

/**
 * An f64: a number when finite and not -0, else one of four strings
 * (JSON.stringify(-0) is "0", so -0 travels as "-0").
 */
export type Float = number | "NaN" | "Infinity" | "-Infinity" | "-0";

/**
 * A reference on the wire: `{ object }` (same space) or `{ space, object }`.
 */
export type Reference = { 
/**
 * The other space's id; absent for a reference within the same space.
 */
space?: string, object: string, };

/**
 * An object's current state on the wire.
 */
export type ObjectState = { id: string, 
/**
 * The type name, e.g. `"task"`.
 */
type: string, fields: { [key in string]: Value }, 
/**
 * Soft-deleted: still readable; references to it resolve as deleted.
 */
deleted: boolean, };

/**
 * A point in a space's history: opaque strings `"<shard>:<64 hex digits>"`
 * (a shard number and the lower-case hex of an Automerge change hash).
 */
export type Heads = Array<string>;

/**
 * A query on the wire. Only `filter` is required.
 */
export type Query = { filter: Filter, order?: Array<Order>, limit?: number, offset?: number, include_deleted?: boolean, };

/**
 * A filter on the wire, externally tagged like values: `"all"`,
 * `{ "type": "task" }`, `{ "and": [..] }`, … Semantics: `echo_core::query`.
 */
export type Filter = "all" | { "type": string } | { "field": { field: string, op: Compare, value: Value, } } | { "in": { field: string, values: Array<Value>, } } | { "exists": string } | { "text_contains": { field: string, needle: string, } } | { "list_contains": { field: string, value: Value, } } | { "references": string } | { "refers_to": { field: string, target: Filter, } } | { "reachable": { root: string, field: string, direction: Direction, max_depth: number, } } | { "and": Array<Filter> } | { "or": Array<Filter> } | { "not": Filter };

/**
 * Comparison operators of a field filter.
 */
export type Compare = "eq" | "ne" | "lt" | "le" | "gt" | "ge";

/**
 * Direction of a `reachable` traversal.
 */
export type Direction = "outgoing" | "incoming";

/**
 * One sort key.
 */
export type Order = { field: string, descending?: boolean, };

/**
 * One write of an `object.batch`, externally tagged:
 * `{ "create": { .. } }`, `{ "set": { .. } }`, …
 */
export type Mutation = { "create": { id?: string, type: string, fields?: { [key in string]: Value }, } } | { "set": { id: string, field: string, value: Value, } } | { "remove": { id: string, field: string, } } | { "delete": { id: string, } } | { "splice_text": { id: string, field: string, pos: number, delete: number, insert: string, } };

/**
 * What a vault page sends on an admin port.
 */
export type AdminMessage = { "request": { id: number, method: AdminRequest, } };

/**
 * A management call, externally tagged by its name.
 */
export type AdminRequest = { "vault.status": Record<symbol, never> } | { "apps.list": Record<symbol, never> } | { "consent.decide": { origin: string, allow: boolean, spaces?: Array<string>, } } | { "apps.revoke": { origin: string, } } | { "spaces.list": Record<symbol, never> } | { "identity.set_name": { name: string, } } | { "members.list": { space: string, } } | { "members.admit": { space: string, identity: string, role: Role, } } | { "members.set_role": { space: string, identity: string, role: Role, } } | { "members.remove": { space: string, identity: string, } } | { "devices.revoke": { space: string, identity: string, device: string, } } | { "space.export": { space: string, } } | { "space.join": { export: string, } } | { "invitations.create": { space: string, role?: Role | null, ttl_minutes?: number | null, multi_use?: boolean | null, } } | { "invitations.list": Record<symbol, never> } | { "invitations.cancel": { invitation: string, } } | { "invitations.accept": { code: string, } } | { "invitations.enter_code": { invitation: string, code: string, } };

/**
 * The answer to an [`AdminRequest`].
 */
export type AdminResponse = { "done": Record<symbol, never> } | { "status": { identity: IdentityInfo, spaces: number, apps: number, 
/**
 * Open app connections.
 */
connections: number, } } | { "apps": { apps: Array<AppGrant>, } } | { "spaces": { spaces: Array<VaultSpace>, } } | { "members": { members: Array<Member>, } } | { "export": { export: string, } } | { "joined": { space: string, } } | { "invitation": { invitation: InvitationInfo, } } | { "invitations": { invitations: Array<InvitationInfo>, } };

/**
 * One origin's standing with the vault.
 */
export type AppGrant = { origin: string, 
/**
 * `true`: allowed; `false`: denied.
 */
allowed: boolean, 
/**
 * The spaces it may use: those the user checked, and those it created since.
 */
spaces: Array<string>, 
/**
 * Open connections of this origin now.
 */
connections: number, 
/**
 * When the user decided, in milliseconds since the Unix epoch.
 */
decided_at: number, 
/**
 * Bytes the spaces it created hold in storage (as last known: exact
 * for open spaces, a recorded size otherwise).
 */
stored_bytes: number, 
/**
 * The most those spaces may hold, in bytes (`None`: no limit): each
 * site's share of the vault's storage.
 */
share_bytes?: number, };

/**
 * A space as the manage page lists it.
 */
export type VaultSpace = { space: string, properties: { [key in string]: Value }, 
/**
 * Live objects (`None` until the space was opened once in this run).
 */
objects?: number, 
/**
 * The origins it is granted to.
 */
apps: Array<string>, 
/**
 * The origin that created it, if an app did.
 */
created_by?: string, 
/**
 * Peers syncing it with this vault now.
 */
peers: number, 
/**
 * When a peer was last heard on it, in milliseconds since the Unix
 * epoch (none since this vault started).
 */
synced_at?: number, 
/**
 * Whether this vault is on signaling (can meet peers at all).
 */
online: boolean, };

/**
 * A member of a space as the manage page lists it.
 */
export type Member = { identity: string, role: Role, 
/**
 * Its devices authorized in this space (and not revoked).
 */
devices: Array<string>, };

/**
 * What the engine sends on an admin port.
 */
export type AdminReply = { "response": { id: number, result: { Ok : AdminResponse } | { Err : RpcError }, } } | { "changed": Record<symbol, never> };

/**
 * An invitation as the vault's pages show it.
 */
export type InvitationInfo = { 
/**
 * Its id (hex).
 */
invitation: string, side: InvitationSide, state: InvitationState, 
/**
 * The invite code to share (host side).
 */
code?: string, 
/**
 * The 6-digit code to show the guest (host side, while a guest is
 * connected). Never sent to an app.
 */
auth_code?: string, 
/**
 * The space (host side; guest side once admitted).
 */
space?: string, role: Role, 
/**
 * When it expires, in milliseconds since the Unix epoch (the host's
 * clock).
 */
expires_at: number, 
/**
 * Wrong codes that may still be typed before it ends.
 */
attempts_left: number, multi_use: boolean, 
/**
 * Identities admitted through it (host side).
 */
admitted: Array<string>, 
/**
 * The other vault's identity, once known (guest side: the host).
 */
peer_identity?: string, 
/**
 * Why it ended or what went wrong last (e.g. `invite.wrong_code`).
 */
error?: RpcError, };

/**
 * Which end of an invitation this vault is.
 */
export type InvitationSide = "host" | "guest";

/**
 * Where an invitation stands, as its vault pages show it.
 */
export type InvitationState = "waiting" | "connecting" | "ready_for_code" | "authenticating" | "success" | "cancelled" | "expired" | "failed";
