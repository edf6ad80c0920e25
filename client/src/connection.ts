// The connection to the vault, whatever the way of reaching it: the state
// machine above a `Transport` (transport.ts). It makes the handshake on the
// link the transport hands over (`hello` → `welcome` or `refused`), keeps
// it alive (heartbeat), reconnects with back-off, follows consent and
// revocation, and owns the call table. It knows nothing of iframes or
// windows, nor of spaces and live queries (vault.ts, above it).

import { CallTable, type CallOptions } from "./calls.js";
import { EchoError } from "./errors.js";
import { Outbox, unframe } from "./frames.js";
import {
  LIMITS,
  SUPPORTED_VERSIONS,
  type ClientMessage,
  type ConnectionState,
  type Consent,
  type Durability,
  type Event as VaultEvent,
  type Request,
  type Response,
  type VaultInfo,
  type VaultMessage,
} from "./protocol.js";
import type { Link, RefusedState, Transport, TransportSink } from "./transport.js";
import { checkMessageText } from "./values.js";

/** Timings and name of a [`Connection`] (the defaults are `connect`'s). */
export interface ConnectionOptions {
  /** The vault's origin, for messages. */
  origin: string;
  /** Sent in `hello` (already cut to `LIMITS.maxClientName` bytes). */
  clientName: string;
  /** How durable this connection's writes are when answered; sent in `hello` when relaxed. */
  durability?: Durability;
  /** Gives up an attempt this long after the vault was reached without a welcome. */
  connectTimeoutMs: number;
  /** Default timeout of each call. */
  callTimeoutMs: number;
  /** Heartbeat period. */
  heartbeatMs: number;
  /** A heartbeat unanswered this long, with nothing else heard meanwhile, is a disconnect. */
  heartbeatTimeoutMs: number;
}

/** What the layer above hears from a [`Connection`]. */
export interface ConnectionEvents {
  /** Every event the vault pushes, after the connection handled its own (consent, revocation). */
  event(event: VaultEvent, subscription: number | undefined): void;
  /** The connection became `connected` (or was welcomed again while it was): re-open live queries. */
  connected(): void;
  /** The link went (or was closed): the vault forgot this connection's subscriptions. */
  linkLost(): void;
}

type Listener<T> = (value: T) => void;

/** The error of a call or a connection that went away. */
export function disconnected(message: string): EchoError {
  return new EchoError("rpc.disconnected", message);
}

/**
 * A page whose origin is opaque (`"null"`: a sandboxed frame without
 * allow-same-origin, a data: URL) cannot be told apart from any other such
 * page: the vault can grant it nothing, and its own vault frame would be
 * sandboxed too. The error apps get for it, or null.
 */
export function opaqueOriginError(): EchoError | null {
  if (typeof self === "undefined" || self.origin !== "null") return null;
  return new EchoError(
    "rpc.not_authorized",
    'this page has no origin of its own (it runs in a sandboxed frame, origin "null"), so the vault cannot tell which site it is and cannot serve it; load the app without the sandbox, or with allow-same-origin',
    { reason: "opaque_origin" },
  );
}

/** The back-off before the next attempt after `failures` failed ones: 0.5 s doubling to 30 s, jittered (half to all of it). */
export function backoffMs(failures: number, random: number = Math.random()): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
  return base / 2 + random * (base / 2);
}

/**
 * The connection's state machine. States (`ConnectionState`):
 * `connecting` → `connected` on a welcome (or `not_authorized` without
 * consent, `storage_partitioned` with partitioned storage); a refusal →
 * that state, and calls fail at once until `reconnect()`; a lost link or a
 * timed-out attempt → `disconnected`, pending calls fail with
 * `rpc.disconnected`, and it tries again (`reconnect` with back-off, or at
 * once when the vault page reloaded).
 */
export class Connection {
  private stateValue: ConnectionState = "connecting";
  private consentValue: Consent | undefined;
  private infoValue: VaultInfo | undefined;
  private errorValue: EchoError | undefined;
  private readonly stateListeners = new Set<Listener<ConnectionState>>();

  private readonly transport: Transport;
  private readonly options: ConnectionOptions;
  private readonly events: ConnectionEvents;
  readonly calls: CallTable;

  /** An attempt is running: waiting for the transport's link, then for the welcome. */
  private handshaking = false;
  private link: Link | null = null;
  /** Messages for `link`, posted as frames at the end of the turn. */
  private outbox: Outbox | null = null;
  private welcomed = false;
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private grantTimer: ReturnType<typeof setTimeout> | undefined;
  /** Failed attempts in a row (the back-off grows with them). */
  private failures = 0;
  /** When the link last delivered anything (Date.now() ms). */
  private lastHeard = 0;
  private closedFlag = false;

  constructor(transport: Transport, options: ConnectionOptions, events: ConnectionEvents) {
    this.transport = transport;
    this.options = options;
    this.events = events;
    this.calls = new CallTable(options.callTimeoutMs);
  }

  /** Starts connecting (once). */
  start(): void {
    const sink: TransportSink = {
      reached: () => this.reached(),
      link: (link) => this.adopt(link),
      refused: (state, error) => this.transportRefused(state, error),
      dropped: (error, retry) => this.dropped(error, retry),
      again: () => this.again(),
    };
    const opaque = opaqueOriginError();
    if (opaque) {
      // No vault can serve a page without an origin: say so at once (not after the connect timeout).
      this.errorValue = opaque;
      this.calls.refuse(opaque);
      queueMicrotask(() => this.setState("not_authorized"));
      return;
    }
    this.transport.open(sink);
    this.beginAttempt(true);
  }

  // ------------------------------------------------------------ state

  get state(): ConnectionState {
    return this.stateValue;
  }

  get consent(): Consent | undefined {
    return this.consentValue;
  }

  get info(): VaultInfo | undefined {
    return this.infoValue;
  }

  get lastError(): EchoError | undefined {
    return this.errorValue;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  onStateChange(listener: Listener<ConnectionState>): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    for (const l of [...this.stateListeners]) {
      try {
        l(state);
      } catch (e) {
        console.error("echo-client: a state listener threw", e);
      }
    }
    if (state === "connected") this.events.connected();
  }

  /** The state a welcomed connection is in. */
  private welcomedState(): ConnectionState {
    if (this.infoValue?.storage === "partitioned") return "storage_partitioned";
    if (this.consentValue !== "granted") return "not_authorized";
    return "connected";
  }

  // ---------------------------------------------------------- attempts

  /** Asks the transport for a link; the connect timeout runs once it reached the vault. */
  private beginAttempt(fresh: boolean): void {
    this.stopDeadline();
    this.handshaking = true;
    this.welcomed = false;
    this.transport.connect(fresh);
  }

  private reached(): void {
    if (this.closedFlag || !this.handshaking || this.link) return;
    this.stopDeadline();
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      this.connectFailed(disconnected(`the vault at ${this.options.origin} did not answer within ${this.options.connectTimeoutMs} ms`));
    }, this.options.connectTimeoutMs);
  }

  private stopDeadline(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }

  private adopt(link: Link): void {
    if (this.closedFlag || !this.handshaking || this.link) {
      link.close();
      return;
    }
    this.link = link;
    this.outbox = new Outbox((text) => link.send(text), LIMITS.maxMessageBytes, LIMITS.maxFrameMessages);
    link.onMessage((data) => this.linkMessage(link, data));
    const hello: ClientMessage = {
      hello: {
        versions: [...SUPPORTED_VERSIONS],
        client: this.options.clientName,
        ...(this.options.durability === "relaxed" ? { durability: "relaxed" as const } : {}),
      },
    };
    link.send(JSON.stringify(hello));
  }

  private transportRefused(state: RefusedState, error: EchoError): void {
    if (this.closedFlag || !this.handshaking || this.link) return;
    this.stopDeadline();
    this.handshaking = false;
    this.errorValue = error;
    this.calls.refuse(error);
    this.setState(state);
  }

  private dropped(error: EchoError, retry: boolean): void {
    if (this.closedFlag) return;
    this.lose(error);
    if (retry) this.beginAttempt(false);
    // No attempt runs until the app's reconnect() (a click: the vault window closed): calls fail at once.
    else this.calls.refuse(error);
  }

  /** The transport can reach the vault now after a refusal: a new attempt, `connecting` meanwhile. */
  private again(): void {
    if (this.closedFlag || this.link || this.handshaking) return;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.calls.refuse(null);
    this.errorValue = undefined;
    this.failures = 0;
    this.setState("connecting");
    this.beginAttempt(false);
  }

  private linkMessage(link: Link, received: unknown): void {
    if (this.link !== link) return;
    this.lastHeard = Date.now();
    // The engine sends JSON text (docs/browser-vault.md): one message or a
    // frame of several; a plain object is taken as is.
    let data: unknown = received;
    if (typeof data === "string") {
      try {
        data = JSON.parse(data);
      } catch {
        console.warn("echo-client: the vault sent a message that is not JSON");
        return;
      }
    }
    for (const msg of unframe(data)) {
      // A message may end this link (a refusal, a revocation).
      if (this.link !== link) return;
      this.vaultMessage(msg as VaultMessage);
    }
  }

  /**
   * Queues one message as JSON text (app ports carry JSON strings); the
   * messages of one turn are posted together as a frame.
   */
  private send(message: ClientMessage): void {
    if (!this.link || !this.outbox) throw disconnected("the vault is not connected");
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

  private vaultMessage(msg: VaultMessage): void {
    if (!msg || typeof msg !== "object") return;
    if ("welcome" in msg) {
      if (!this.handshaking || this.welcomed) return;
      this.stopDeadline();
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
      if (state === "connected" && this.stateValue === "connected") this.events.connected();
      this.setState(state);
    } else if ("refused" in msg) {
      const error = EchoError.fromWire(msg.refused.error);
      if (this.welcomed && (error.code === "rpc.disconnected" || error.code === "rpc.rate_limited")) {
        // The vault ended a working connection for now, not for good: it was idle too long, or its site had
        // too many (the quietest goes; core/src/vault/guard.rs). Pending calls fail; it reconnects by itself.
        this.connectFailed(error);
        return;
      }
      this.stopDeadline();
      this.handshaking = false;
      this.transport.stop();
      this.closeLink();
      this.errorValue = error;
      const state: ConnectionState =
        error.code === "rpc.storage_blocked"
          ? "storage_blocked"
          : error.code === "rpc.storage_lost"
            ? "storage_lost"
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
      if ("access_granted" in event) {
        this.consentValue = "granted";
        this.errorValue = undefined;
        if (this.welcomed) this.setState(this.welcomedState());
      } else if ("access_revoked" in event && (event.access_revoked.space === undefined || event.access_revoked.space === null)) {
        this.revoked();
      }
    }
    this.events.event(event, subscription);
  }

  /** The user revoked this app: pending calls fail, state `not_authorized`, a fresh handshake tells what is allowed now. */
  private revoked(): void {
    const error = new EchoError("rpc.not_authorized", "the user revoked this app's access to the vault", { reason: "revoked" });
    this.errorValue = error;
    this.consentValue = undefined;
    this.stopHeartbeat();
    this.closeLink();
    this.calls.detach(error);
    this.events.linkLost();
    this.setState("not_authorized");
    // The engine closes this connection; a new one gets a welcome with the consent as it is now.
    this.beginAttempt(false);
  }

  private closeLink(): void {
    const link = this.link;
    this.link = null;
    // Queued messages belong to calls the caller fails now (or already has).
    this.outbox?.clear();
    this.outbox = null;
    this.welcomed = false;
    link?.close();
  }

  /** The link is gone: pending calls fail, state `disconnected`. */
  private lose(error: EchoError): void {
    this.stopDeadline();
    this.stopHeartbeat();
    this.handshaking = false;
    this.transport.stop();
    this.closeLink();
    this.calls.detach(error);
    this.events.linkLost();
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
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closedFlag) return;
      // After repeated failures the vault page itself may be stuck: load it afresh.
      this.beginAttempt(this.failures >= 2);
    }, backoffMs(this.failures));
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const link = this.link;
    this.heartbeatTimer = setInterval(() => {
      if (this.link !== link || !this.welcomed) return;
      this.calls.call({ ping: {} }, { timeoutMs: this.options.heartbeatTimeoutMs }, true).catch((e: unknown) => {
        if (this.link !== link) return;
        if (e instanceof EchoError && e.code === "rpc.timeout") {
          // A busy engine (a big write, a first query on a large space)
          // answers the ping late but still talks: only silence is a loss.
          if (Date.now() - this.lastHeard < this.options.heartbeatTimeoutMs) return;
          this.connectFailed(disconnected(`the vault did not answer the heartbeat within ${this.options.heartbeatTimeoutMs} ms; reconnecting`));
        }
      });
    }, this.options.heartbeatMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  // ------------------------------------------------------------ calls

  /** One call (held while no link is up; `immediate`: fail at once instead). */
  call(method: Request, options?: CallOptions, immediate = false): Promise<Response> {
    return this.calls.call(method, options, immediate);
  }

  /** Whether calls go out now (a welcomed link is up). */
  get attached(): boolean {
    return this.calls.attached;
  }

  // ------------------------------------------------------------ consent

  /**
   * The user decided in the vault's consent window. Allowed: the vault
   * pushes `access_granted`; if that does not come within 2 s (this link was
   * refused, or lost meanwhile), a fresh handshake learns the consent.
   * Denied: state `not_authorized` (once welcomed).
   */
  consentDecided(allowed: boolean): void {
    if (this.closedFlag) return;
    if (!allowed) {
      this.consentValue = "denied";
      if (this.welcomed) this.setState(this.welcomedState());
      return;
    }
    if (this.grantTimer !== undefined) clearTimeout(this.grantTimer);
    this.grantTimer = setTimeout(() => {
      this.grantTimer = undefined;
      if (this.closedFlag || this.consentValue === "granted") return;
      if (this.stateValue === "not_authorized" || this.stateValue === "disconnected") {
        if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        this.stopHeartbeat();
        this.closeLink();
        this.calls.detach(disconnected("reconnecting after the user's consent"), false);
        this.events.linkLost();
        this.beginAttempt(false);
      }
    }, 2_000);
  }

  // ------------------------------------------------------------ control

  /** Drops the link and connects again now, from scratch (e.g. after the user granted storage access). */
  reconnect(): void {
    if (this.closedFlag) return;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.calls.refuse(null);
    this.stopDeadline();
    this.stopHeartbeat();
    this.transport.stop();
    this.closeLink();
    this.calls.detach(disconnected("reconnecting to the vault"));
    this.events.linkLost();
    this.failures = 0;
    this.setState("connecting");
    this.beginAttempt(true);
  }

  /** Closes for good: pending calls fail with `rpc.disconnected`, the transport goes. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    if (this.grantTimer !== undefined) clearTimeout(this.grantTimer);
    this.reconnectTimer = undefined;
    this.grantTimer = undefined;
    this.stopDeadline();
    this.stopHeartbeat();
    this.handshaking = false;
    this.closeLink();
    const error = disconnected("the app closed its vault connection");
    this.calls.refuse(error);
    this.calls.detach(error);
    this.events.linkLost();
    this.transport.close();
    this.setState("disconnected");
  }
}
