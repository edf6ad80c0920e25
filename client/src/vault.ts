// The typed API apps use (docs/browser-vault.md sections 1 and 3): `Vault`,
// `Space`, live queries (`Subscription`), status watches, the vault's
// consent and invitation windows. It sits on a `Connection`
// (connection.ts: handshake, heartbeat, reconnects, consent state), which
// sits on a `Transport` (transport.ts; today the hidden iframe, iframe.ts).
// Responses are typed per method (`MethodResponses`, generated in
// protocol.ts), not checked at run time.

import type { CallOptions } from "./calls.js";
import { Connection, opaqueOriginError } from "./connection.js";
import { EchoError } from "./errors.js";
import { IframeTransport, type StorageAccessState } from "./iframe.js";
import { LiveResult, type QueryDiff } from "./live.js";
import { openVaultWindow, popupBlocked } from "./popups.js";
import {
  LIMITS,
  type ConnectionState,
  type Consent,
  type Durability,
  type Event as VaultEvent,
  type Heads,
  type AppIdentity,
  type Method,
  type MethodParams,
  type MethodResponses,
  type Mutation,
  type ObjectState,
  type Query,
  type Request,
  type Response,
  type Role,
  type SpaceInfo,
  type SpaceStatus,
  type Value,
  type VaultInfo,
} from "./protocol.js";
import { SwitchTransport } from "./switch.js";
import type { Transport } from "./transport.js";
import { WindowTransport } from "./window.js";
import {
  childPath,
  fieldsFromWire,
  fieldsToWire,
  objectFromWire,
  toWire,
  type EchoObject,
  type JsFields,
  type PlainFields,
  type PlainValue,
} from "./values.js";

export type { CallOptions } from "./calls.js";

/** The client library's name and version, sent in `hello` when the app gives no `clientName`. */
export const CLIENT_NAME = "echo-client 0.1";

/** Options of [`connect`]. */
export interface ConnectOptions {
  /** The vault site, e.g. `"http://vault.localhost:8600"` (a path prefix is kept). */
  vaultUrl: string;
  /** Sent in `hello` for the vault's logs (at most 128 bytes). */
  clientName?: string;
  /**
   * How durable a write is when the vault answers it. `"strict"` (the
   * default): it survives a power cut — never lost once answered.
   * `"relaxed"`: it survives the app, the tab or the browser crashing, but
   * the writes of the last moments before a power cut may be lost; answers
   * come sooner (IndexedDB's `durability: "relaxed"`, the trade-off Yjs'
   * IndexedDB provider makes). Per connection: a write that shares its
   * storage transaction with a strict connection's is stored strictly.
   */
  durability?: Durability;
  /** Gives up a connection attempt after this many ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Default timeout of each call (default 30 000 ms). */
  callTimeoutMs?: number;
  /** Heartbeat period (default 5 000 ms). */
  heartbeatMs?: number;
  /** A heartbeat unanswered for this long, with nothing else heard from the
   *  vault meanwhile, is a disconnect (default 10 000 ms). */
  heartbeatTimeoutMs?: number;
  /** Where the hidden iframe goes (default `document.body`). */
  container?: HTMLElement;
  /**
   * Where the vault's own "Connect to your vault" button may show (an
   * element of the app's page, sized by the app; the vault's frame fills
   * its width, 76 px high). Where the browser gives the vault its storage
   * only after a click inside the vault (storage access), the vault's frame
   * is shown there; `storageAccess` / `onStorageAccess` tell what the
   * browser answered. Without a slot, the vault window (`openWindow()`) is
   * the way.
   */
  accessSlot?: HTMLElement;
  /** `window.open` features of the vault window (`openWindow()`). */
  windowFeatures?: string;
  /**
   * How to reach the vault (transport.ts). Default: a hidden iframe of
   * `<vaultUrl>/vault.html` (`IframeTransport`).
   */
  transport?: Transport;
}

/** A space as listed to the app, its properties decoded. */
export interface SpaceSummary {
  id: string;
  role: Role;
  properties: JsFields;
  wire: SpaceInfo;
}

/** Options of reads that may look at an earlier point in history. */
export interface ReadOptions extends CallOptions {
  /** Heads from `space.heads()`: read the space as it was then. */
  at?: Heads;
}

/** Options of `query`. */
export interface QueryRunOptions extends ReadOptions {
  /** Return the objects along with the ids. */
  resolve?: boolean;
}

/** A query's result. */
export interface QueryResult {
  ids: string[];
  /** With `resolve`: the objects, in the same order. */
  objects?: EchoObject[];
}

/** Options of `subscribe`. */
export interface SubscribeOptions extends CallOptions {
  /** Deliver objects with the ids (initial result and every diff). */
  resolve?: boolean;
  /** Called when re-opening the subscription after a reconnect fails. */
  onError?: (error: EchoError) => void;
}

/** What `requestAccess` resolves with. */
export interface AccessResult {
  /** The user allowed the app (false: denied). */
  allowed: boolean;
}

/** How an invitation ended, as `space.invite()` / `vault.acceptInvitation()` resolve. */
export interface InvitationResult {
  /** `success`, `cancelled`, `expired` or `failed`. */
  state: "success" | "cancelled" | "expired" | "failed";
  /** The space (the one shared, or the one joined). */
  space?: string;
}

/** What a person invited to a space may do in it. */
export type InviteRole = "reader" | "editor" | "admin";

/** Options of `requestAccess`. */
export interface RequestAccessOptions {
  /** The app's name as the consent page shows it (next to its origin). */
  appName?: string;
}

type Listener<T> = (value: T) => void;

function summary(info: SpaceInfo): SpaceSummary {
  return { id: info.space, role: info.role, properties: fieldsFromWire(info.properties ?? {}, "properties"), wire: info };
}

/** `text` cut to at most `max` UTF-8 bytes, on a character boundary (the vault refuses longer client names). */
function clampUtf8(text: string, max: number): string {
  const encoder = new TextEncoder();
  if (encoder.encode(text).length <= max) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * A live query opened with `subscribe`. Its callback gets every
 * `query_diff`; `ids` / `objects` hold the current result. It survives
 * reconnects: the client re-opens it and delivers the difference as one
 * diff with `resync: true`.
 */
export class Subscription {
  readonly space: string;
  readonly query: Query;
  readonly resolve: boolean;
  /** The result the subscription opened with. */
  readonly initial: QueryResult;
  /** @internal */ readonly live: LiveResult;
  /** @internal */ wireId: number | undefined;
  /** @internal */ readonly onDiff: (diff: QueryDiff, subscription: Subscription) => void;
  /** @internal */ readonly onError: ((error: EchoError) => void) | undefined;
  private closedFlag = false;
  private readonly vault: Vault;

  /** @internal */
  constructor(
    vault: Vault,
    space: string,
    query: Query,
    resolve: boolean,
    onDiff: (diff: QueryDiff, subscription: Subscription) => void,
    onError: ((error: EchoError) => void) | undefined,
    wireId: number,
    ids: string[],
    objects: ObjectState[] | undefined,
  ) {
    this.vault = vault;
    this.space = space;
    this.query = query;
    this.resolve = resolve;
    this.onDiff = onDiff;
    this.onError = onError;
    this.wireId = wireId;
    this.live = new LiveResult((query.order?.length ?? 0) > 0 || query.limit !== undefined || (query.offset ?? 0) > 0);
    this.live.reset(ids, objects);
    this.initial = objects ? { ids: [...ids], objects: objects.map(objectFromWire) } : { ids: [...ids] };
  }

  /** Ids of the current result, in the query's order. */
  get ids(): readonly string[] {
    return this.live.ids;
  }

  /** Current objects by id (resolving subscriptions). */
  get objects(): ReadonlyMap<string, EchoObject> {
    return this.live.objects;
  }

  /** The current objects in result order (resolving subscriptions). */
  list(): EchoObject[] {
    return this.live.ids.map((id) => this.live.objects.get(id)).filter((o): o is EchoObject => o !== undefined);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** @internal The vault ended it. */
  _end(): void {
    this.closedFlag = true;
  }

  /** Ends the live query (no callback runs after this resolves). */
  async unsubscribe(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    await this.vault._unsubscribe(this);
  }
}

/**
 * The connection to the vault. Get one with [`connect`]. Calls made
 * before the connection is up (or while it reconnects) wait for it, up to
 * their timeout.
 */
export class Vault {
  /** The vault's origin, e.g. `"http://vault.localhost:8600"`. */
  readonly origin: string;
  /** The vault site's base URL (no trailing slash). */
  readonly baseUrl: string;

  private readonly connection: Connection;
  private readonly transport: SwitchTransport;
  private readonly windowFeatures: string | undefined;
  private accessValue: StorageAccessState | null = null;
  private readonly accessListeners = new Set<Listener<StorageAccessState | null>>();
  private readonly eventListeners = new Set<(event: VaultEvent, subscription: number | undefined) => void>();
  /** Listeners of `Space.onStatus`, per space id. */
  private readonly statusListeners = new Map<string, Set<Listener<SpaceStatus>>>();

  private readonly subscriptions = new Set<Subscription>();
  private readonly byWireId = new Map<number, Subscription>();

  private consentPopup: Promise<AccessResult> | null = null;
  private popupWindow: Window | null = null;

  /** Calls on one space: `vault.space(id).create(...)`. */
  readonly spaces = {
    /** Creates a space (granted to this app) with plain properties. */
    create: async (properties: PlainFields = {}, options?: CallOptions): Promise<SpaceSummary> =>
      summary((await this.request({ "spaces.create": { properties: fieldsToWire(properties, "properties") } }, options)).space),
    /** The spaces granted to this app. */
    list: async (options?: CallOptions): Promise<SpaceSummary[]> => (await this.request({ "spaces.list": {} }, options)).spaces.spaces.map(summary),
  };

  constructor(options: ConnectOptions) {
    if (typeof options?.vaultUrl !== "string" || options.vaultUrl === "") {
      throw new EchoError("rpc.bad_request", "connect: vaultUrl is required (e.g. \"http://vault.localhost:8600\")", { path: "vaultUrl" });
    }
    const base = new URL(options.vaultUrl, globalThis.location?.href);
    this.origin = base.origin;
    this.baseUrl = (base.origin + base.pathname).replace(/\/+$/, "");
    this.windowFeatures = options.windowFeatures;
    const first =
      options.transport ??
      new IframeTransport({
        baseUrl: this.baseUrl,
        origin: this.origin,
        container: options.container,
        accessSlot: options.accessSlot,
        onAccess: (access) => this.setAccess(access),
      });
    this.transport = new SwitchTransport(first);
    this.connection = new Connection(
      this.transport,
      {
        origin: this.origin,
        clientName: clampUtf8(options.clientName ?? CLIENT_NAME, LIMITS.maxClientName),
        durability: options.durability ?? "strict",
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        callTimeoutMs: options.callTimeoutMs ?? 30_000,
        heartbeatMs: options.heartbeatMs ?? 5_000,
        heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 10_000,
      },
      {
        event: (event, subscription) => this.vaultEvent(event, subscription),
        connected: () => {
          this.reopenSubscriptions();
          this.rewatchStatuses();
        },
        linkLost: () => this.forgetWireSubscriptions(),
      },
    );
    this.connection.start();
  }

  // ------------------------------------------------------------ state

  /** The connection's state (see `ConnectionState` in protocol.ts). */
  get state(): ConnectionState {
    return this.connection.state;
  }

  /** What the user decided about this app (from the welcome; `undefined` before it). */
  get consent(): Consent | undefined {
    return this.connection.consent;
  }

  /** The vault's welcome (`vault`, `storage`, `consent`), once connected. */
  get info(): VaultInfo | undefined {
    return this.connection.info;
  }

  /** Why the connection is not `connected`, when there is an error to show (refused, timed out, revoked). */
  get lastError(): EchoError | undefined {
    return this.connection.lastError;
  }

  /** Calls `listener` on every state change; returns the unsubscribe function. */
  onStateChange(listener: Listener<ConnectionState>): () => void {
    return this.connection.onStateChange(listener);
  }

  /** Calls `listener` on every event the vault pushes (query diffs included). Returns the unsubscribe function. */
  onEvent(listener: (event: VaultEvent, subscription: number | undefined) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Resolves once the state is `connected`; rejects when `signal` aborts. */
  whenConnected(signal?: AbortSignal): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.onStateChange((s) => {
        if (s === "connected") {
          off();
          resolve();
        }
      });
      signal?.addEventListener("abort", () => {
        off();
        reject(new EchoError("rpc.cancelled", "stopped waiting for the vault"));
      }, { once: true });
    });
  }

  /**
   * Drops the connection and connects again now (e.g. after the user granted storage access). Through the
   * vault window (`via === "window"`) it opens the window again when it was closed: **call it from a click**.
   */
  reconnect(): void {
    this.connection.reconnect();
  }

  // ------------------------------------------------------- vault window

  /**
   * Reaches the vault through a top-level vault window (`<vaultUrl>/window.html`)
   * from now on: where this page's vault iframe cannot reach the vault's
   * storage (`storage_partitioned`, `storage_blocked`, or `storageAccess`
   * `refused` / `cookies_only`). **Call it from a click, synchronously**, or
   * the browser blocks the window (state `disconnected`, `lastError.details.reason
   * = "popup_blocked"`). While the window is open the app is connected to the
   * same vault as everywhere else; when it is closed, the state becomes
   * `disconnected` (`lastError.details.reason = "window_closed"`) and
   * `reconnect()` — from a click — opens it again. Called while the window is
   * open, it brings it to the front.
   */
  openWindow(): void {
    if (this.connection.closed) return;
    const current = this.transport.current;
    if (current instanceof WindowTransport) {
      if (current.window && this.state !== "disconnected") {
        current.focus();
        return;
      }
    } else {
      this.transport.use(
        new WindowTransport({
          baseUrl: this.baseUrl,
          origin: this.origin,
          ...(this.windowFeatures !== undefined ? { features: this.windowFeatures } : {}),
        }),
      );
    }
    this.connection.reconnect();
  }

  /** How the vault is reached now: its hidden iframe, the vault window, or a transport the app gave. */
  get via(): "iframe" | "window" | "custom" {
    const current = this.transport.current;
    return current instanceof WindowTransport ? "window" : current instanceof IframeTransport ? "iframe" : "custom";
  }

  /**
   * Where asking the browser for the vault's storage stands (only with an
   * `accessSlot`): `ask` (the vault's button shows in the slot), `asking`,
   * `granted`, `cookies_only`, `refused`; null when there is nothing to ask.
   */
  get storageAccess(): StorageAccessState | null {
    return this.accessValue;
  }

  /** Calls `listener` on every change of `storageAccess`; returns the unsubscribe function. */
  onStorageAccess(listener: Listener<StorageAccessState | null>): () => void {
    this.accessListeners.add(listener);
    return () => this.accessListeners.delete(listener);
  }

  private setAccess(access: StorageAccessState | null): void {
    if (access === this.accessValue) return;
    this.accessValue = access;
    for (const l of [...this.accessListeners]) {
      try {
        l(access);
      } catch (e) {
        console.error("echo-client: an access listener threw", e);
      }
    }
  }

  /** Closes the connection for good: pending calls fail with `rpc.disconnected`, the transport closes (the iframe goes). */
  close(): void {
    if (this.connection.closed) return;
    this.connection.close();
    this.subscriptions.clear();
    this.byWireId.clear();
  }

  // ------------------------------------------------------------ events

  private vaultEvent(event: VaultEvent, subscription: number | undefined): void {
    if (event && typeof event === "object") {
      if ("query_diff" in event && subscription !== undefined) {
        const sub = this.byWireId.get(subscription);
        if (sub && !sub.closed) {
          const diff = sub.live.apply(event.query_diff);
          try {
            sub.onDiff(diff, sub);
          } catch (e) {
            console.error("echo-client: a subscription callback threw", e);
          }
        }
      } else if ("access_revoked" in event) {
        // The whole vault's revocation is the connection's (it reconnects); one space's ends its live queries.
        const space = event.access_revoked.space;
        if (space !== undefined && space !== null) this.spaceRevoked(space);
      } else if ("space_status" in event) {
        this.tellStatus(event.space_status.space, event.space_status.status);
      }
    }
    for (const l of [...this.eventListeners]) {
      try {
        l(event, subscription);
      } catch (e) {
        console.error("echo-client: an event listener threw", e);
      }
    }
  }

  /** Access to one space ended: its live queries end (their `onError` gets `rpc.not_authorized`, `details.reason = "revoked"`). */
  private spaceRevoked(space: string): void {
    const error = new EchoError("rpc.not_authorized", `access to space ${space} was revoked`, { reason: "revoked", space });
    for (const sub of [...this.subscriptions]) {
      if (sub.space !== space) continue;
      this.subscriptions.delete(sub);
      if (sub.wireId !== undefined) this.byWireId.delete(sub.wireId);
      sub.wireId = undefined;
      sub._end();
      if (sub.onError) sub.onError(error);
    }
  }

  private forgetWireSubscriptions(): void {
    this.byWireId.clear();
    for (const sub of this.subscriptions) sub.wireId = undefined;
  }

  // --------------------------------------------------------------- calls

  /**
   * One call in its wire form, `{ "<method>": params }`; resolves with the
   * method's wire response (`MethodResponses` in protocol.ts: `{ "object.create": … }`
   * resolves with `{ written: { created } }`). Rejects with an `EchoError`.
   */
  request<M extends Method>(method: { [K in M]: MethodParams[K] }, options?: CallOptions): Promise<MethodResponses[M]>;
  request(method: Request, options?: CallOptions): Promise<Response>;
  request(method: Request, options?: CallOptions): Promise<Response> {
    return this.connection.call(method, options);
  }

  /** Liveness check. */
  async ping(options?: CallOptions): Promise<void> {
    await this.request({ ping: {} }, options);
  }

  /**
   * The user as this app sees them: `user`, an id for this app alone (the same every time, unrelated to the
   * id any other site gets), and the display name the user chose. Apps never see the user's keys
   * (docs/privacy.md).
   */
  async identity(options?: CallOptions): Promise<AppIdentity> {
    return (await this.request({ "identity.info": {} }, options)).identity;
  }

  /** Calls on one space. */
  space(id: string): Space {
    return new Space(this, id);
  }

  /** Opens a live query (see `Space.subscribe`). */
  async subscribe(
    space: string,
    query: Query,
    onDiff: (diff: QueryDiff, subscription: Subscription) => void,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    const resolve = options.resolve ?? false;
    const callOptions: CallOptions = {};
    if (options.timeoutMs !== undefined) callOptions.timeoutMs = options.timeoutMs;
    if (options.signal !== undefined) callOptions.signal = options.signal;
    const r = (await this.request({ "query.subscribe": { space, query, resolve } }, callOptions)).subscribed;
    const sub = new Subscription(this, space, query, resolve, onDiff, options.onError, r.subscription, r.ids, r.objects);
    this.subscriptions.add(sub);
    this.byWireId.set(r.subscription, sub);
    return sub;
  }

  /** @internal */
  async _unsubscribe(sub: Subscription): Promise<void> {
    this.subscriptions.delete(sub);
    const id = sub.wireId;
    sub.wireId = undefined;
    if (id === undefined) return;
    this.byWireId.delete(id);
    if (!this.connection.attached) return; // the vault forgot it with the connection
    try {
      await this.request({ "query.unsubscribe": { subscription: id } });
    } catch (e) {
      if (e instanceof EchoError && (e.code === "rpc.no_such_subscription" || e.code === "rpc.disconnected")) return;
      throw e;
    }
  }

  /** Calls the `onStatus` listeners of `space`. */
  private tellStatus(space: string, status: SpaceStatus): void {
    for (const l of [...(this.statusListeners.get(space) ?? [])]) {
      try {
        l(status);
      } catch (e) {
        console.error("echo-client: a status listener threw", e);
      }
    }
  }

  /** Asks for `space`'s status, which also makes the vault push its changes to this connection. */
  private watchStatus(space: string, options?: CallOptions): Promise<SpaceStatus> {
    return this.request({ "space.status": { space } }, options).then((r) => {
      const status = r.space_status;
      this.tellStatus(space, status);
      return status;
    });
  }

  /** @internal `Space.onStatus`. */
  _onStatus(space: string, listener: Listener<SpaceStatus>): () => void {
    let set = this.statusListeners.get(space);
    if (!set) this.statusListeners.set(space, (set = new Set()));
    set.add(listener);
    if (this.state === "connected") {
      this.watchStatus(space).catch((e: unknown) => console.warn("echo-client: space.status failed", e));
    }
    return () => {
      set.delete(listener);
      if (set.size === 0) this.statusListeners.delete(space);
    };
  }

  /** @internal `Space.status`. */
  _status(space: string, options?: CallOptions): Promise<SpaceStatus> {
    return this.watchStatus(space, options);
  }

  /** After a reconnect: the new connection watches the spaces whose status is listened to. */
  private rewatchStatuses(): void {
    for (const space of this.statusListeners.keys()) {
      this.watchStatus(space).catch((e: unknown) => {
        if (e instanceof EchoError && e.code === "rpc.disconnected") return;
        console.warn("echo-client: space.status failed", e);
      });
    }
  }

  /** After a reconnect: open every live subscription again and tell each what changed meanwhile. */
  private reopenSubscriptions(): void {
    for (const sub of [...this.subscriptions]) {
      if (sub.wireId !== undefined || sub.closed) continue;
      const { space, query, resolve } = sub;
      this.request({ "query.subscribe": { space, query, resolve } }).then(
        (response) => {
          const r = response.subscribed;
          if (sub.closed || !this.subscriptions.has(sub)) {
            this.request({ "query.unsubscribe": { subscription: r.subscription } }).catch(() => undefined);
            return;
          }
          sub.wireId = r.subscription;
          this.byWireId.set(r.subscription, sub);
          const diff = sub.live.resync(r.ids, r.objects);
          if (diff) {
            try {
              sub.onDiff(diff, sub);
            } catch (e) {
              console.error("echo-client: a subscription callback threw", e);
            }
          }
        },
        (e: unknown) => {
          // A disconnect retries on the next connect; anything else is the app's to know.
          if (e instanceof EchoError && e.code === "rpc.disconnected") return;
          const error = e instanceof EchoError ? e : new EchoError("rpc.internal", String(e));
          if (sub.onError) sub.onError(error);
          else console.warn("echo-client: re-opening a subscription failed", error);
        },
      );
    }
  }

  // ------------------------------------------------------------- consent

  /**
   * Asks the user to allow this app, in the vault's consent popup
   * (`<vaultUrl>/consent.html`). **Call it from a user gesture** (a click
   * handler, synchronously — before any `await`), or the browser blocks
   * the popup. Resolves with the user's decision; rejects with
   * `rpc.cancelled` when the popup was blocked (`details.reason =
   * "popup_blocked"`) or closed without a decision (`"popup_closed"`).
   * On "allow" the vault pushes `access_granted` and the state becomes
   * `connected`.
   */
  requestAccess(options: RequestAccessOptions = {}): Promise<AccessResult> {
    const opaque = opaqueOriginError();
    if (opaque) return Promise.reject(opaque);
    if (this.consentPopup) {
      this.popupWindow?.focus();
      return this.consentPopup;
    }
    const request: { echo: "consent_request"; app_name?: string } = { echo: "consent_request" };
    if (options.appName !== undefined) request.app_name = options.appName;
    const opened = openVaultWindow<AccessResult>({
      url: `${this.baseUrl}/consent.html`,
      name: "echo-consent",
      features: "popup,width=480,height=640",
      origin: this.origin,
      ready: "consent_ready",
      request,
      result: (msg) => (msg.echo === "consent_result" ? { allowed: msg["allowed"] === true } : undefined),
      closed: "the consent window was closed without a decision",
    });
    if (!opened) return Promise.reject(popupBlocked("the browser blocked the vault's consent window; call requestAccess() from a click"));
    this.popupWindow = opened.window;
    const promise = opened.result.then(
      (result) => {
        this.consentPopup = null;
        this.popupWindow = null;
        this.connection.consentDecided(result.allowed);
        return result;
      },
      (e: unknown) => {
        this.consentPopup = null;
        this.popupWindow = null;
        throw e;
      },
    );
    this.consentPopup = promise;
    return promise;
  }

  // ---------------------------------------------------------- invitations

  /**
   * Joins a space someone shared: opens the vault's invitation window with
   * `codeOrLink` (or empty, for the person to paste it), where the person
   * types the 6-digit code the other vault shows. **Call it from a user
   * gesture.** Resolves when it ended; on success this app may open the
   * joined space (`result.space`). The invite code is not secret; the
   * 6-digit code is typed in the vault's window and never reaches the app.
   */
  acceptInvitation(codeOrLink = ""): Promise<InvitationResult> {
    return this.invitationWindow({ code: codeOrLink });
  }

  /** @internal `space.invite()` and `acceptInvitation()`: the vault's invitation window. */
  invitationWindow(request: { space?: string; role?: InviteRole; code?: string }): Promise<InvitationResult> {
    const opened = openVaultWindow<InvitationResult>({
      url: `${this.baseUrl}/invite.html`,
      name: "echo-invite",
      features: "popup,width=520,height=760",
      origin: this.origin,
      ready: "invite_ready",
      request: { echo: "invite_request", ...request },
      result: (msg) => {
        if (msg.echo !== "invite_result" || typeof msg["state"] !== "string") return undefined;
        const result: InvitationResult = { state: msg["state"] as InvitationResult["state"] };
        if (typeof msg["space"] === "string") result.space = msg["space"];
        return result;
      },
      closed: "the invitation window was closed before the invitation ended",
    });
    if (!opened) return Promise.reject(popupBlocked("the browser blocked the vault's invitation window; call it from a click"));
    return opened.result;
  }
}

/** Calls on one space. Every method takes `CallOptions` (timeout, AbortSignal) last. */
export class Space {
  readonly id: string;
  private readonly vault: Vault;

  /**
   * Invites a person to this space: opens the vault's invitation window,
   * which shows the code to send them and, once they open it, the 6-digit
   * code they type. `role`: `editor` by default. **Call it from a user
   * gesture.** Resolves when the invitation ended (`success` once they
   * joined). The app never sees either code: the vault's window shows them.
   */
  invite(options: { role?: InviteRole } = {}): Promise<InvitationResult> {
    return this.vault.invitationWindow({ space: this.id, role: options.role ?? "editor" });
  }

  constructor(vault: Vault, id: string) {
    this.vault = vault;
    this.id = id;
  }

  /** The space's properties, decoded. */
  async properties(options?: CallOptions): Promise<JsFields> {
    return fieldsFromWire(await this.propertiesWire(options), "properties");
  }

  /** The space's properties in wire form. */
  async propertiesWire(options?: CallOptions): Promise<{ [key: string]: Value }> {
    return (await this.vault.request({ "space.properties": { space: this.id } }, options)).properties.properties;
  }

  /** Sets one property (a plain value). */
  async setProperty(name: string, value: PlainValue, options?: CallOptions): Promise<void> {
    await this.vault.request({ "space.set_property": { space: this.id, name, value: toWire(value, childPath("properties", name)) } }, options);
  }

  /**
   * How the space is connected to its other members' vaults now: peers
   * syncing it, when one was last heard, whether the vault is online and
   * whether it can connect at all (in the browser a vault page must be
   * open for that). Listeners of `onStatus` hear it too.
   */
  async status(options?: CallOptions): Promise<SpaceStatus> {
    return this.vault._status(this.id, options);
  }

  /**
   * Calls `listener` with the space's status now and on every change (peers
   * coming and going, online or not, a vault page opening or closing, and
   * at most once a second when a peer is heard), across reconnects.
   * Returns the function that stops it.
   */
  onStatus(listener: (status: SpaceStatus) => void): () => void {
    return this.vault._onStatus(this.id, listener);
  }

  /** The current point in the space's history (for reads `at` it later). */
  async heads(options?: CallOptions): Promise<Heads> {
    return (await this.vault.request({ "space.heads": { space: this.id } }, options)).heads.heads;
  }

  /** Creates an object; returns its id. `options.id`: an id chosen by the app (see `newId()`). */
  async create(type: string, fields: PlainFields = {}, options: CallOptions & { id?: string } = {}): Promise<string> {
    const create: { space: string; id?: string; type: string; fields: { [key: string]: Value } } = { space: this.id, type, fields: fieldsToWire(fields) };
    if (options.id !== undefined) create.id = options.id;
    const r = (await this.vault.request({ "object.create": create }, options)).written;
    const id = r.created[0] ?? options.id;
    if (id === undefined) throw new EchoError("rpc.internal", "object.create: the vault did not say which id it created");
    return id;
  }

  /** Sets fields (plain values) and removes fields of one object, atomically. */
  async update(id: string, set: PlainFields = {}, remove: string[] = [], options?: CallOptions): Promise<void> {
    const update: { space: string; id: string; set?: { [key: string]: Value }; remove?: string[] } = { space: this.id, id };
    if (Object.keys(set).length > 0) update.set = fieldsToWire(set);
    if (remove.length > 0) update.remove = remove;
    await this.vault.request({ "object.update": update }, options);
  }

  /** Soft-deletes one object. */
  async delete(id: string, options?: CallOptions): Promise<void> {
    await this.vault.request({ "object.delete": { space: this.id, id } }, options);
  }

  /** One object (null when it does not exist). */
  async get(id: string, options?: ReadOptions): Promise<EchoObject | null> {
    return (await this.getMany([id], options))[0] ?? null;
  }

  /** Objects by id, same order, null for missing ones (at most 1 000 ids). */
  async getMany(ids: string[], options: ReadOptions = {}): Promise<Array<EchoObject | null>> {
    const get: { space: string; ids: string[]; at?: Heads } = { space: this.id, ids };
    if (options.at !== undefined) get.at = options.at;
    const r = (await this.vault.request({ "object.get": get }, options)).objects;
    return r.objects.map((o) => (o ? objectFromWire(o) : null));
  }

  /** Writes applied together (all or none); returns the ids of created objects in order. See `mutation.*` builders. */
  async batch(mutations: Mutation[], options?: CallOptions): Promise<string[]> {
    return (await this.vault.request({ "object.batch": { space: this.id, mutations } }, options)).written.created;
  }

  /** Runs a query (see `query()` / `where`), now or `at` earlier heads. */
  async query(query: Query, options: QueryRunOptions = {}): Promise<QueryResult> {
    const run: { space: string; query: Query; at?: Heads; resolve?: boolean } = { space: this.id, query };
    if (options.at !== undefined) run.at = options.at;
    if (options.resolve) run.resolve = true;
    const r = (await this.vault.request({ "query.run": run }, options)).result;
    return r.objects ? { ids: r.ids, objects: r.objects.map(objectFromWire) } : { ids: r.ids };
  }

  /**
   * Opens a live query: resolves with the subscription (its `initial`
   * result); `onDiff` gets every change. Call `unsubscribe()` when done.
   */
  subscribe(
    query: Query,
    onDiff: (diff: QueryDiff, subscription: Subscription) => void,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    return this.vault.subscribe(this.id, query, onDiff, options);
  }

  /**
   * Edits a text field: at `pos` delete `del` characters and insert `insert` (Unicode code points).
   * `options.context`: the characters just before `pos` in the text the app shows (see `spliceContext`);
   * when someone else's edit reached the vault first and moved them, the vault puts the splice right
   * after them — two people typing in one text each keep their place.
   */
  async splice(id: string, field: string, pos: number, del: number, insert: string, options: CallOptions & { context?: string } = {}): Promise<void> {
    const splice: { space: string; id: string; field: string; pos: number; delete: number; insert: string; context?: string } = { space: this.id, id, field, pos, delete: del, insert };
    if (options.context) splice.context = options.context;
    await this.vault.request({ "text.splice": splice }, options);
  }

  /** A text field's content, now or `at` earlier heads. */
  async readText(id: string, field: string, options: ReadOptions = {}): Promise<string> {
    const read: { space: string; id: string; field: string; at?: Heads } = { space: this.id, id, field };
    if (options.at !== undefined) read.at = options.at;
    return (await this.vault.request({ "text.read": read }, options)).text.text;
  }

  /** Reads of this space as it was at `heads` (from `heads()`). */
  at(heads: Heads): SpaceAt {
    return new SpaceAt(this, heads);
  }
}

/** Reads of a space at a point in its history. */
export class SpaceAt {
  readonly heads: Heads;
  private readonly space: Space;

  constructor(space: Space, heads: Heads) {
    this.space = space;
    this.heads = heads;
  }
  get(id: string, options: CallOptions = {}): Promise<EchoObject | null> {
    return this.space.get(id, { ...options, at: this.heads });
  }
  getMany(ids: string[], options: CallOptions = {}): Promise<Array<EchoObject | null>> {
    return this.space.getMany(ids, { ...options, at: this.heads });
  }
  query(query: Query, options: CallOptions & { resolve?: boolean } = {}): Promise<QueryResult> {
    return this.space.query(query, { ...options, at: this.heads });
  }
  readText(id: string, field: string, options: CallOptions = {}): Promise<string> {
    return this.space.readText(id, field, { ...options, at: this.heads });
  }
}

/** Connects to the vault at `vaultUrl`: returns at once (state `connecting`); calls wait for the connection. */
export function connect(options: ConnectOptions): Vault {
  return new Vault(options);
}
