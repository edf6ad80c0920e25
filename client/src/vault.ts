// The connection to the user's vault (docs/browser-vault.md sections 1
// and 3): a hidden iframe of the vault's shell page hands over a
// MessagePort; the rpc envelope (core/src/rpc) runs on it. Heartbeat,
// reconnects, re-opened subscriptions, consent.

import { CallTable, type CallOptions } from "./calls.js";
import { EchoError } from "./errors.js";
import { Outbox, unframe } from "./frames.js";
import { LiveResult, type QueryDiff } from "./live.js";
import {
  LIMITS,
  SUPPORTED_VERSIONS,
  type ClientMessage,
  type ConnectionState,
  type Consent,
  type Event as VaultEvent,
  type Heads,
  type AppIdentity,
  type Mutation,
  type ObjectState,
  type Query,
  type Request,
  type Response,
  type Role,
  type RpcError,
  type SpaceInfo,
  type SpaceStatus,
  type Value,
  type VaultInfo,
  type VaultMessage,
} from "./protocol.js";
import {
  checkMessageText,
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

function expect<K extends string>(response: Response, kind: K, method: string): Extract<Response, Record<K, unknown>>[K] {
  if (response && typeof response === "object" && kind in response) {
    return (response as Record<string, unknown>)[kind] as Extract<Response, Record<K, unknown>>[K];
  }
  throw new EchoError("rpc.internal", `${method}: expected a ${kind} response, got ${JSON.stringify(Object.keys(response ?? {}))}`);
}

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

function disconnected(message: string): EchoError {
  return new EchoError("rpc.disconnected", message);
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

  private stateValue: ConnectionState = "connecting";
  private consentValue: Consent | undefined;
  private infoValue: VaultInfo | undefined;
  private errorValue: EchoError | undefined;

  private readonly calls: CallTable;
  private readonly options: Required<Omit<ConnectOptions, "container" | "clientName">> & { clientName: string };
  private readonly container: HTMLElement | undefined;
  private readonly stateListeners = new Set<Listener<ConnectionState>>();
  private readonly eventListeners = new Set<(event: VaultEvent, subscription: number | undefined) => void>();
  /** Listeners of `Space.onStatus`, per space id. */
  private readonly statusListeners = new Map<string, Set<Listener<SpaceStatus>>>();

  private iframe: HTMLIFrameElement | null = null;
  private loads = 0;
  private attempt = 0;
  private handshaking = false;
  private port: MessagePort | null = null;
  /** Messages for `port`, posted as frames at the end of the turn. */
  private outbox: Outbox | null = null;
  private welcomed = false;
  private retryTimer: ReturnType<typeof setInterval> | undefined;
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private closedFlag = false;

  private readonly subscriptions = new Set<Subscription>();
  private readonly byWireId = new Map<number, Subscription>();

  private consentPopup: Promise<AccessResult> | null = null;
  private popupWindow: Window | null = null;

  /** Calls on one space: `vault.space(id).create(...)`. */
  readonly spaces = {
    /** Creates a space (granted to this app) with plain properties. */
    create: async (properties: PlainFields = {}, options?: CallOptions): Promise<SpaceSummary> =>
      summary(expect(await this.request({ "spaces.create": { properties: fieldsToWire(properties, "properties") } }, options), "space", "spaces.create")),
    /** The spaces granted to this app. */
    list: async (options?: CallOptions): Promise<SpaceSummary[]> =>
      expect(await this.request({ "spaces.list": {} }, options), "spaces", "spaces.list").spaces.map(summary),
  };

  private readonly onWindowMessage = (event: MessageEvent): void => this.windowMessage(event);

  constructor(options: ConnectOptions) {
    if (typeof options?.vaultUrl !== "string" || options.vaultUrl === "") {
      throw new EchoError("rpc.bad_request", "connect: vaultUrl is required (e.g. \"http://vault.localhost:8600\")", { path: "vaultUrl" });
    }
    const base = new URL(options.vaultUrl, globalThis.location?.href);
    this.origin = base.origin;
    this.baseUrl = (base.origin + base.pathname).replace(/\/+$/, "");
    this.options = {
      vaultUrl: options.vaultUrl,
      clientName: clampUtf8(options.clientName ?? CLIENT_NAME, LIMITS.maxClientName),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      callTimeoutMs: options.callTimeoutMs ?? 30_000,
      heartbeatMs: options.heartbeatMs ?? 5_000,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 10_000,
    };
    this.container = options.container;
    this.calls = new CallTable(this.options.callTimeoutMs);
    window.addEventListener("message", this.onWindowMessage);
    this.start();
  }

  // ------------------------------------------------------------ state

  /** The connection's state (see `ConnectionState` in protocol.ts). */
  get state(): ConnectionState {
    return this.stateValue;
  }

  /** What the user decided about this app (from the welcome; `undefined` before it). */
  get consent(): Consent | undefined {
    return this.consentValue;
  }

  /** The vault's welcome (`vault`, `storage`, `consent`), once connected. */
  get info(): VaultInfo | undefined {
    return this.infoValue;
  }

  /** Why the connection is not `connected`, when there is an error to show (refused, timed out, revoked). */
  get lastError(): EchoError | undefined {
    return this.errorValue;
  }

  /** Calls `listener` on every state change; returns the unsubscribe function. */
  onStateChange(listener: Listener<ConnectionState>): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Calls `listener` on every event the vault pushes (query diffs included). Returns the unsubscribe function. */
  onEvent(listener: (event: VaultEvent, subscription: number | undefined) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Resolves once the state is `connected`; rejects when `signal` aborts. */
  whenConnected(signal?: AbortSignal): Promise<void> {
    if (this.stateValue === "connected") return Promise.resolve();
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

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    const was = this.stateValue;
    this.stateValue = state;
    for (const l of [...this.stateListeners]) {
      try {
        l(state);
      } catch (e) {
        console.error("echo-client: a state listener threw", e);
      }
    }
    if (state === "connected" && was !== "connected") {
      this.reopenSubscriptions();
      this.rewatchStatuses();
    }
  }

  /** The state a welcomed connection is in. */
  private welcomedState(): ConnectionState {
    if (this.infoValue?.storage === "partitioned") return "storage_partitioned";
    if (this.consentValue !== "granted") return "not_authorized";
    return "connected";
  }

  // -------------------------------------------------------- transport

  private start(): void {
    if (typeof document === "undefined") throw new EchoError("rpc.bad_request", "echo-client runs in a browser page (it needs document and window)", { reason: "not_a_browser" });
    const opaque = opaqueOriginError();
    if (opaque) {
      // No vault can serve a page without an origin: say so at once (not after the connect timeout).
      this.errorValue = opaque;
      this.calls.refuse(opaque);
      queueMicrotask(() => this.setState("not_authorized"));
      return;
    }
    this.createIframe();
  }

  private createIframe(): void {
    if (this.iframe) {
      this.iframe.remove();
      this.iframe = null;
    }
    this.loads = 0;
    const iframe = document.createElement("iframe");
    iframe.src = `${this.baseUrl}/vault.html`;
    iframe.title = "ECHO vault";
    iframe.setAttribute("aria-hidden", "true");
    iframe.tabIndex = -1;
    iframe.style.display = "none";
    iframe.addEventListener("load", () => {
      if (this.iframe !== iframe || this.closedFlag) return;
      this.loads++;
      if (this.loads === 1) {
        this.beginHandshake();
      } else {
        // The vault page reloaded: its engine connection is gone.
        this.lose(disconnected("the vault page reloaded; reconnecting"));
        this.beginHandshake();
      }
    });
    this.iframe = iframe;
    const mount = () => (this.container ?? document.body ?? document.documentElement).appendChild(iframe);
    if (this.container || document.body) mount();
    else document.addEventListener("DOMContentLoaded", mount, { once: true });
  }

  /** Posts `connect` every second until the shell answers, or the connect timeout. */
  private beginHandshake(): void {
    this.stopHandshakeTimers();
    const attempt = ++this.attempt;
    this.handshaking = true;
    this.welcomed = false;
    const post = () => {
      if (attempt !== this.attempt || this.port) return;
      try {
        this.iframe?.contentWindow?.postMessage({ echo: "connect" }, this.origin);
      } catch {
        // The frame is navigating; the next tick retries.
      }
    };
    post();
    this.retryTimer = setInterval(post, 1_000);
    this.deadlineTimer = setTimeout(() => {
      if (attempt !== this.attempt) return;
      this.connectFailed(disconnected(`the vault at ${this.origin} did not answer within ${this.options.connectTimeoutMs} ms`));
    }, this.options.connectTimeoutMs);
  }

  private stopHandshakeTimers(): void {
    if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.retryTimer = undefined;
    this.deadlineTimer = undefined;
  }

  private windowMessage(event: MessageEvent): void {
    if (this.closedFlag) return;
    if (!this.iframe || event.source !== this.iframe.contentWindow || event.origin !== this.origin) return;
    const data: unknown = event.data;
    if (!data || typeof data !== "object" || typeof (data as { echo?: unknown }).echo !== "string") return;
    const msg = data as { echo: string; state?: unknown; error?: RpcError; storage?: unknown };
    if (msg.echo === "connected") {
      const port = event.ports[0];
      if (!port) return;
      if (!this.handshaking || this.port) {
        // An answer to a retried connect: one port is enough.
        port.close();
        return;
      }
      this.adoptPort(port);
    } else if (msg.echo === "refused") {
      if (!this.handshaking || this.port) return;
      // not_authorized: the app has no origin the vault can serve (a sandboxed frame, origin "null").
      const state: ConnectionState =
        msg.state === "storage_partitioned" ? "storage_partitioned" : msg.state === "not_authorized" ? "not_authorized" : "storage_blocked";
      const error = msg.error
        ? EchoError.fromWire(msg.error)
        : state === "not_authorized"
          ? new EchoError("rpc.not_authorized", "the vault cannot serve this page: it has no origin of its own")
          : new EchoError(state === "storage_partitioned" ? "rpc.storage_partitioned" : "rpc.storage_blocked", "the vault cannot reach its storage from this site");
      this.stopHandshakeTimers();
      this.handshaking = false;
      this.errorValue = error;
      this.calls.refuse(error);
      this.setState(state);
    }
  }

  private adoptPort(port: MessagePort): void {
    this.port = port;
    this.outbox = new Outbox((text) => port.postMessage(text), LIMITS.maxMessageBytes, LIMITS.maxFrameMessages);
    if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    port.onmessage = (event: MessageEvent) => {
      if (this.port !== port) return;
      this.lastHeard = Date.now();
      // The engine sends JSON text (docs/browser-vault.md): one message or a
      // frame of several; a plain object is taken as is.
      let data: unknown = event.data;
      if (typeof data === "string") {
        try {
          data = JSON.parse(data);
        } catch {
          console.warn("echo-client: the vault sent a message that is not JSON");
          return;
        }
      }
      for (const msg of unframe(data)) {
        // A message may end this connection (a refusal, a revocation).
        if (this.port !== port) return;
        this.portMessage(msg as VaultMessage);
      }
    };
    port.onmessageerror = () => console.warn("echo-client: a message from the vault could not be deserialized");
    port.start();
    const hello: ClientMessage = { hello: { versions: [...SUPPORTED_VERSIONS], client: this.options.clientName } };
    port.postMessage(JSON.stringify(hello));
  }

  /**
   * Queues one message as JSON text (docs/browser-vault.md: app ports carry
   * JSON strings); the messages of one turn are posted together as a frame.
   */
  private send(message: ClientMessage): void {
    if (!this.port || !this.outbox) throw disconnected("the vault is not connected");
    const json = JSON.stringify(message);
    checkMessageText(json, message);
    const max = LIMITS.maxMessageBytes;
    if (json.length * 3 > max) {
      const bytes = new TextEncoder().encode(json).length;
      if (bytes > max) {
        throw new EchoError("rpc.too_large", `the message is ${bytes} bytes, more than the limit of ${max}; split it into smaller calls`, { limit: String(max) });
      }
    }
    this.outbox.push(json);
  }

  private portMessage(msg: VaultMessage): void {
    if (!msg || typeof msg !== "object") return;
    if ("welcome" in msg) {
      if (!this.handshaking || this.welcomed) return;
      this.stopHandshakeTimers();
      this.handshaking = false;
      this.welcomed = true;
      this.failures = 0;
      this.infoValue = msg.welcome.vault;
      this.consentValue = msg.welcome.vault.consent;
      this.errorValue = undefined;
      this.calls.refuse(null);
      this.calls.attach((m) => this.send(m));
      this.startHeartbeat();
      const state = this.welcomedState();
      if (state === "connected" && this.stateValue === "connected") {
        this.reopenSubscriptions();
        this.rewatchStatuses();
      }
      this.setState(state);
    } else if ("refused" in msg) {
      const error = EchoError.fromWire(msg.refused.error);
      if (this.welcomed && (error.code === "rpc.disconnected" || error.code === "rpc.rate_limited")) {
        // The vault ended a working connection for now, not for good: it was idle too long, or its site had
        // too many (the quietest goes; core/src/vault/guard.rs). Pending calls fail; it reconnects by itself.
        this.connectFailed(error);
        return;
      }
      this.stopHandshakeTimers();
      this.handshaking = false;
      this.closePort();
      this.errorValue = error;
      const state: ConnectionState =
        error.code === "rpc.storage_blocked"
          ? "storage_blocked"
          : error.code === "rpc.storage_partitioned"
            ? "storage_partitioned"
            : error.code === "rpc.not_authorized"
              ? "not_authorized"
              : "disconnected";
      // A refusal does not go away by retrying: calls fail at once until reconnect().
      this.calls.refuse(error);
      this.setState(state);
    } else if ("response" in msg) {
      this.calls.handleResponse(msg.response.id, msg.response.result);
    } else if ("event" in msg) {
      this.vaultEvent(msg.event.event, msg.event.subscription);
    } else if ("rejected" in msg) {
      console.warn("echo-client: the vault rejected a message:", msg.rejected.error?.code, msg.rejected.error?.message);
    }
  }

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
      } else if ("access_granted" in event) {
        this.consentValue = "granted";
        this.errorValue = undefined;
        if (this.welcomed) this.setState(this.welcomedState());
      } else if ("access_revoked" in event) {
        const space = event.access_revoked.space;
        if (space === undefined || space === null) this.revoked();
        else this.spaceRevoked(space);
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

  /** The user revoked this app: pending calls fail, state `not_authorized`, a fresh handshake tells what is allowed now. */
  private revoked(): void {
    const error = new EchoError("rpc.not_authorized", "the user revoked this app's access to the vault", { reason: "revoked" });
    this.errorValue = error;
    this.consentValue = undefined;
    this.stopHeartbeat();
    this.closePort();
    this.calls.detach(error);
    this.forgetWireSubscriptions();
    this.setState("not_authorized");
    // The engine closes this connection; a new one gets a welcome with the consent as it is now.
    this.beginHandshake();
  }

  private closePort(): void {
    const port = this.port;
    this.port = null;
    // Queued messages belong to calls the caller fails now (or already has).
    this.outbox?.clear();
    this.outbox = null;
    this.welcomed = false;
    if (port) {
      port.onmessage = null;
      try {
        port.close();
      } catch {
        // already closed
      }
    }
  }

  private forgetWireSubscriptions(): void {
    this.byWireId.clear();
    for (const sub of this.subscriptions) sub.wireId = undefined;
  }

  /** The connection is gone: pending calls fail, state `disconnected`. */
  private lose(error: EchoError): void {
    this.stopHandshakeTimers();
    this.stopHeartbeat();
    this.handshaking = false;
    this.closePort();
    this.calls.detach(error);
    this.forgetWireSubscriptions();
    this.errorValue = error;
    this.setState("disconnected");
  }

  private connectFailed(error: EchoError): void {
    this.lose(error);
    this.failures++;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closedFlag) return;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    const base = Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6));
    const delay = base / 2 + Math.random() * (base / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closedFlag) return;
      // After repeated failures the vault page itself may be stuck: load it afresh.
      if (this.failures >= 2 || !this.iframe || this.loads === 0) this.createIframe();
      else this.beginHandshake();
    }, delay);
  }

  /** When the port last delivered anything (ms since the epoch). */
  private lastHeard = 0;

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const port = this.port;
    this.heartbeatTimer = setInterval(() => {
      if (this.port !== port || !this.welcomed) return;
      this.calls.call({ ping: {} }, { timeoutMs: this.options.heartbeatTimeoutMs }, true).catch((e: unknown) => {
        if (this.port !== port) return;
        if (e instanceof EchoError && e.code === "rpc.timeout") {
          // A busy engine (a big write, a first query on a large space)
          // answers the ping late but still talks: only silence is a loss.
          if (Date.now() - this.lastHeard < this.options.heartbeatTimeoutMs) return;
          this.failures++;
          this.lose(disconnected(`the vault did not answer the heartbeat within ${this.options.heartbeatTimeoutMs} ms; reconnecting`));
          this.scheduleReconnect();
        }
      });
    }, this.options.heartbeatMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** Drops the connection and connects again now (e.g. after the user granted storage access). */
  reconnect(): void {
    if (this.closedFlag) return;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.calls.refuse(null);
    this.stopHandshakeTimers();
    this.stopHeartbeat();
    this.closePort();
    this.calls.detach(disconnected("reconnecting to the vault"));
    this.forgetWireSubscriptions();
    this.failures = 0;
    this.setState("connecting");
    this.createIframe();
  }

  /** Closes the connection for good: pending calls fail with `rpc.disconnected`, the iframe goes. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    window.removeEventListener("message", this.onWindowMessage);
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.stopHandshakeTimers();
    this.stopHeartbeat();
    this.closePort();
    const error = disconnected("the app closed its vault connection");
    this.calls.refuse(error);
    this.calls.detach(error);
    this.subscriptions.clear();
    this.byWireId.clear();
    this.iframe?.remove();
    this.iframe = null;
    this.setState("disconnected");
  }

  // --------------------------------------------------------------- calls

  /** One call in its wire form; resolves with the wire response. */
  request(method: Request, options?: CallOptions): Promise<Response> {
    return this.calls.call(method, options);
  }

  /** Liveness check. */
  async ping(options?: CallOptions): Promise<void> {
    expect(await this.request({ ping: {} }, options), "done", "ping");
  }

  /**
   * The user as this app sees them: `user`, an id for this app alone (the same every time, unrelated to the
   * id any other site gets), and the display name the user chose. Apps never see the user's keys
   * (docs/privacy.md).
   */
  async identity(options?: CallOptions): Promise<AppIdentity> {
    return expect(await this.request({ "identity.info": {} }, options), "identity", "identity.info");
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
    const r = expect(await this.request({ "query.subscribe": { space, query, resolve } }, callOptions), "subscribed", "query.subscribe");
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
    if (!this.calls.attached) return; // the vault forgot it with the connection
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
      const status = expect(r, "space_status", "space.status");
      this.tellStatus(space, status);
      return status;
    });
  }

  /** @internal `Space.onStatus`. */
  _onStatus(space: string, listener: Listener<SpaceStatus>): () => void {
    let set = this.statusListeners.get(space);
    if (!set) this.statusListeners.set(space, (set = new Set()));
    set.add(listener);
    if (this.stateValue === "connected") {
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
          const r = expect(response, "subscribed", "query.subscribe");
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
    const popup = window.open(`${this.baseUrl}/consent.html`, "echo-consent", "popup,width=480,height=640");
    if (!popup) {
      return Promise.reject(
        new EchoError("rpc.cancelled", "the browser blocked the vault's consent window; call requestAccess() from a click", { reason: "popup_blocked" }),
      );
    }
    this.popupWindow = popup;
    const promise = new Promise<AccessResult>((resolve, reject) => {
      let done = false;
      const finish = () => {
        done = true;
        window.removeEventListener("message", onMessage);
        clearInterval(watch);
        this.consentPopup = null;
        this.popupWindow = null;
      };
      const onMessage = (event: MessageEvent) => {
        if (done || event.source !== popup || event.origin !== this.origin) return;
        const data: unknown = event.data;
        if (!data || typeof data !== "object") return;
        const msg = data as { echo?: unknown; allowed?: unknown };
        if (msg.echo === "consent_ready") {
          const request: { echo: "consent_request"; app_name?: string } = { echo: "consent_request" };
          if (options.appName !== undefined) request.app_name = options.appName;
          popup.postMessage(request, this.origin);
        } else if (msg.echo === "consent_result") {
          finish();
          const allowed = msg.allowed === true;
          if (allowed) this.afterGrant();
          else {
            this.consentValue = "denied";
            if (this.welcomed) this.setState(this.welcomedState());
          }
          resolve({ allowed });
        }
      };
      const watch = setInterval(() => {
        if (!done && popup.closed) {
          finish();
          reject(new EchoError("rpc.cancelled", "the consent window was closed without a decision", { reason: "popup_closed" }));
        }
      }, 400);
      window.addEventListener("message", onMessage);
    });
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
    const popup = window.open(`${this.baseUrl}/invite.html`, "echo-invite", "popup,width=520,height=760");
    if (!popup) {
      return Promise.reject(
        new EchoError("rpc.cancelled", "the browser blocked the vault's invitation window; call it from a click", { reason: "popup_blocked" }),
      );
    }
    return new Promise<InvitationResult>((resolve, reject) => {
      let done = false;
      const finish = () => {
        done = true;
        window.removeEventListener("message", onMessage);
        clearInterval(watch);
      };
      const onMessage = (event: MessageEvent) => {
        if (done || event.source !== popup || event.origin !== this.origin) return;
        const data: unknown = event.data;
        if (!data || typeof data !== "object") return;
        const msg = data as { echo?: unknown; state?: unknown; space?: unknown };
        if (msg.echo === "invite_ready") {
          popup.postMessage({ echo: "invite_request", ...request }, this.origin);
        } else if (msg.echo === "invite_result" && typeof msg.state === "string") {
          finish();
          const result: InvitationResult = { state: msg.state as InvitationResult["state"] };
          if (typeof msg.space === "string") result.space = msg.space;
          resolve(result);
        }
      };
      const watch = setInterval(() => {
        if (!done && popup.closed) {
          finish();
          reject(new EchoError("rpc.cancelled", "the invitation window was closed before the invitation ended", { reason: "popup_closed" }));
        }
      }, 400);
      window.addEventListener("message", onMessage);
    });
  }

  /** Allowed in the popup: the vault pushes `access_granted`; if it does not come, a fresh handshake learns the consent. */
  private afterGrant(): void {
    setTimeout(() => {
      if (this.closedFlag || this.consentValue === "granted") return;
      if (this.stateValue === "not_authorized" || this.stateValue === "disconnected") {
        if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        this.stopHeartbeat();
        this.closePort();
        this.calls.detach(disconnected("reconnecting after the user's consent"), false);
        this.forgetWireSubscriptions();
        this.beginHandshake();
      }
    }, 2_000);
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
    return expect(await this.vault.request({ "space.properties": { space: this.id } }, options), "properties", "space.properties").properties;
  }

  /** Sets one property (a plain value). */
  async setProperty(name: string, value: PlainValue, options?: CallOptions): Promise<void> {
    expect(await this.vault.request({ "space.set_property": { space: this.id, name, value: toWire(value, childPath("properties", name)) } }, options), "done", "space.set_property");
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
    return expect(await this.vault.request({ "space.heads": { space: this.id } }, options), "heads", "space.heads").heads;
  }

  /** Creates an object; returns its id. `options.id`: an id chosen by the app (see `newId()`). */
  async create(type: string, fields: PlainFields = {}, options: CallOptions & { id?: string } = {}): Promise<string> {
    const create: { space: string; id?: string; type: string; fields: { [key: string]: Value } } = { space: this.id, type, fields: fieldsToWire(fields) };
    if (options.id !== undefined) create.id = options.id;
    const r = expect(await this.vault.request({ "object.create": create }, options), "written", "object.create");
    const id = r.created[0] ?? options.id;
    if (id === undefined) throw new EchoError("rpc.internal", "object.create: the vault did not say which id it created");
    return id;
  }

  /** Sets fields (plain values) and removes fields of one object, atomically. */
  async update(id: string, set: PlainFields = {}, remove: string[] = [], options?: CallOptions): Promise<void> {
    const update: { space: string; id: string; set?: { [key: string]: Value }; remove?: string[] } = { space: this.id, id };
    if (Object.keys(set).length > 0) update.set = fieldsToWire(set);
    if (remove.length > 0) update.remove = remove;
    expect(await this.vault.request({ "object.update": update }, options), "written", "object.update");
  }

  /** Soft-deletes one object. */
  async delete(id: string, options?: CallOptions): Promise<void> {
    expect(await this.vault.request({ "object.delete": { space: this.id, id } }, options), "written", "object.delete");
  }

  /** One object (null when it does not exist). */
  async get(id: string, options?: ReadOptions): Promise<EchoObject | null> {
    return (await this.getMany([id], options))[0] ?? null;
  }

  /** Objects by id, same order, null for missing ones (at most 1 000 ids). */
  async getMany(ids: string[], options: ReadOptions = {}): Promise<Array<EchoObject | null>> {
    const get: { space: string; ids: string[]; at?: Heads } = { space: this.id, ids };
    if (options.at !== undefined) get.at = options.at;
    const r = expect(await this.vault.request({ "object.get": get }, options), "objects", "object.get");
    return r.objects.map((o) => (o ? objectFromWire(o) : null));
  }

  /** Writes applied together (all or none); returns the ids of created objects in order. See `mutation.*` builders. */
  async batch(mutations: Mutation[], options?: CallOptions): Promise<string[]> {
    return expect(await this.vault.request({ "object.batch": { space: this.id, mutations } }, options), "written", "object.batch").created;
  }

  /** Runs a query (see `query()` / `where`), now or `at` earlier heads. */
  async query(query: Query, options: QueryRunOptions = {}): Promise<QueryResult> {
    const run: { space: string; query: Query; at?: Heads; resolve?: boolean } = { space: this.id, query };
    if (options.at !== undefined) run.at = options.at;
    if (options.resolve) run.resolve = true;
    const r = expect(await this.vault.request({ "query.run": run }, options), "result", "query.run");
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
    expect(await this.vault.request({ "text.splice": splice }, options), "written", "text.splice");
  }

  /** A text field's content, now or `at` earlier heads. */
  async readText(id: string, field: string, options: ReadOptions = {}): Promise<string> {
    const read: { space: string; id: string; field: string; at?: Heads } = { space: this.id, id, field };
    if (options.at !== undefined) read.at = options.at;
    return expect(await this.vault.request({ "text.read": read }, options), "text", "text.read").text;
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
/**
 * A page whose origin is opaque (`"null"`: a sandboxed frame without
 * allow-same-origin, a data: URL) cannot be told apart from any other such
 * page: the vault can grant it nothing, and its own vault frame would be
 * sandboxed too. The error apps get for it, or null.
 */
function opaqueOriginError(): EchoError | null {
  if (typeof self === "undefined" || self.origin !== "null") return null;
  return new EchoError(
    "rpc.not_authorized",
    'this page has no origin of its own (it runs in a sandboxed frame, origin "null"), so the vault cannot tell which site it is and cannot serve it; load the app without the sandbox, or with allow-same-origin',
    { reason: "opaque_origin" },
  );
}

export function connect(options: ConnectOptions): Vault {
  return new Vault(options);
}
