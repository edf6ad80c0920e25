// The seam between the connection (connection.ts) and the ways of reaching
// the vault. A transport knows how to get a MessagePort to the vault's engine
// (today: a hidden iframe of the vault's shell page, iframe.ts) and nothing
// of what runs on it; the connection speaks the rpc envelope on the port and
// knows nothing of iframes or windows. Another way to reach the vault is
// one more module implementing `Transport`: the first-party vault window
// (window.ts); switch.ts moves one connection from one way to another.

import type { EchoError } from "./errors.js";
import type { ConnectionState, RpcError } from "./protocol.js";

/**
 * One link to the engine: an app port. The connection posts JSON text on
 * it (docs/browser-vault.md, "Messages on app and admin ports are JSON
 * text") and gets the engine's messages, as sent, through `onMessage`.
 */
export interface Link {
  /** Posts one port message. */
  send(text: string): void;
  /** Sets the one receiver of the engine's messages (starts delivery). */
  onMessage(receive: (data: unknown) => void): void;
  /** Stops delivery and closes the port. */
  close(): void;
}

/** The states a transport may report as a refusal (no link, and retrying does not help). */
export type RefusedState = Extract<ConnectionState, "storage_partitioned" | "storage_blocked" | "not_authorized">;

/** What a transport tells the connection above it. */
export interface TransportSink {
  /**
   * The vault is there and is being asked for a link (the iframe loaded,
   * say): the connection's connect timeout runs from here.
   */
  reached(): void;
  /** The vault handed over a link (the answer to the current `connect`). */
  link(link: Link): void;
  /** The vault cannot serve this page (its storage, the page's origin): no link. */
  refused(state: RefusedState, error: EchoError): void;
  /**
   * The way to the vault went away (the vault page reloaded, its window
   * closed): the current link is dead. `retry`: the transport can be asked
   * again at once (`connect(false)`); false when it needs the app first
   * (a user gesture), so the connection stays disconnected until
   * `reconnect()`.
   */
  dropped(error: EchoError, retry: boolean): void;
  /**
   * The vault can serve now where it refused (the person granted it its
   * storage with a click in the vault's frame): the connection asks again
   * (`connect(false)`) and is `connecting` meanwhile.
   */
  again(): void;
}

/**
 * A way of reaching the vault (the style of Penpal's messengers). The
 * connection calls `open` once, then `connect` for each attempt; the
 * transport answers each attempt through the sink with `reached` and then
 * `link` or `refused` — or not at all, and the connection gives up after its
 * connect timeout and calls `connect` again later.
 */
export interface Transport {
  /** Where events go from now on; called once, before anything else. */
  open(sink: TransportSink): void;
  /**
   * Starts an attempt to get a link. `fresh`: start from scratch (reload
   * the vault page) — after failed attempts, or when the app asked to
   * reconnect. A link or refusal that arrives when no attempt is running
   * (or after the attempt's link) is dropped (its port closed).
   */
  connect(fresh: boolean): void;
  /** Ends the current attempt (the connection gave up on it, or lost its link). */
  stop(): void;
  /** Ends the transport for good: no more events. */
  close(): void;
}

/** A `Link` over a MessagePort. */
export function portLink(port: MessagePort): Link {
  return {
    send: (text) => port.postMessage(text),
    onMessage: (receive) => {
      port.onmessage = (event: MessageEvent) => receive(event.data);
      port.onmessageerror = () => console.warn("echo-client: a message from the vault could not be deserialized");
      port.start();
    },
    close: () => {
      port.onmessage = null;
      try {
        port.close();
      } catch {
        // already closed
      }
    },
  };
}

/**
 * A vault page's message to the app (`{echo: …}`: the iframe shell's, the vault window's), when it comes from
 * `source` on the vault's `origin`; null for anything else, which is not the vault's.
 */
export function echoMessage(
  event: MessageEvent,
  source: MessageEventSource | null | undefined,
  origin: string,
): { echo: string; state?: unknown; error?: RpcError; ask?: unknown; result?: unknown } | null {
  if (!source || event.source !== source || event.origin !== origin) return null;
  const data: unknown = event.data;
  if (!data || typeof data !== "object" || typeof (data as { echo?: unknown }).echo !== "string") return null;
  return data as { echo: string; state?: unknown; error?: RpcError; ask?: unknown; result?: unknown };
}

/**
 * The port of an `{echo: "connected"}` for the connect that is `asking`; an answer to a retried connect after
 * the first (nobody asking any more) has its port closed: one port is enough.
 */
export function connectedPort(event: MessageEvent, asking: boolean): MessagePort | null {
  const port = event.ports[0];
  if (!port) return null;
  if (!asking) {
    port.close();
    return null;
  }
  return port;
}

/** A refusal's state as the SDK names it (anything unknown: storage blocked). */
export function refusedState(state: unknown): RefusedState {
  return state === "storage_partitioned" ? "storage_partitioned" : state === "not_authorized" ? "not_authorized" : "storage_blocked";
}
