// Reaching the vault through a hidden iframe of its shell page
// (docs/browser-vault.md section 1): the page loads, the app posts
// `{echo: "connect"}` to it every second until the shell answers with a
// MessagePort (`connected`) or a refusal (`refused`). A second `load` of the
// frame (the vault page reloaded: the engine crashed, or its connection
// lost its leader) drops the link, and the connection asks again at once.
//
// Storage access on a click (section 8): where the browser gives the frame
// the vault's storage only after a click inside the vault's own document,
// the shell's refusal says `ask: true` and shows a "Connect to your vault"
// button; given an `accessSlot`, the frame lives there and is shown (small)
// until the person clicked and the browser answered (`{echo: "access",
// result}`): granted → the frame hides and the connection asks again.

import { EchoError } from "./errors.js";
import { connectedPort, echoMessage, portLink, refusedState, type Transport, type TransportSink } from "./transport.js";

/** Options of [`IframeTransport`]. */
export interface IframeTransportOptions {
  /** The vault site's base URL, no trailing slash (`<baseUrl>/vault.html` is framed). */
  baseUrl: string;
  /** The vault's origin: the only one whose messages count, and the target of `connect`. */
  origin: string;
  /** Where the iframe goes (default `document.body`). */
  container?: HTMLElement | undefined;
  /** How often `connect` is posted while the shell has not answered (default 1 000 ms). */
  retryMs?: number;
  /**
   * Where the vault's "Connect to your vault" button may show: the frame is
   * placed here (instead of `container`) and shown when the browser needs a
   * click inside the vault to give it its storage.
   */
  accessSlot?: HTMLElement | undefined;
  /** Told every change of [`StorageAccessState`] (null: nothing to ask, or not known yet). */
  onAccess?: ((access: StorageAccessState | null) => void) | undefined;
}

/**
 * Where asking the browser for the vault's storage stands, in the vault's
 * frame: `ask` — its button is shown in the slot, a click lets the browser
 * decide; `asking` — the browser is asking the person (a prompt may show);
 * `granted` — it gave the vault its storage (the app connects); `cookies_only`
 * — it gave cookies but not the vault's storage (WebKit); `refused` — it said
 * no. After `cookies_only` or `refused`, the vault window
 * (`Vault.openWindow()`) is the way.
 */
export type StorageAccessState = "ask" | "asking" | "granted" | "cookies_only" | "refused";

/** The size of the frame while it shows the vault's button. */
const SLOT_WIDTH = "100%";
const SLOT_HEIGHT = "76px";

/** The hidden vault iframe as a [`Transport`]. */
export class IframeTransport implements Transport {
  private readonly baseUrl: string;
  private readonly origin: string;
  private readonly container: HTMLElement | undefined;
  private readonly retryMs: number;
  private readonly slot: HTMLElement | undefined;
  private readonly onAccess: ((access: StorageAccessState | null) => void) | undefined;
  private accessValue: StorageAccessState | null = null;
  private sink: TransportSink | null = null;
  private iframe: HTMLIFrameElement | null = null;
  /** `load` events of the current iframe. */
  private loads = 0;
  /** An attempt is running: `connect` is posted until the shell answers. */
  private asking = false;
  private retryTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private readonly onWindowMessage = (event: MessageEvent): void => this.windowMessage(event);

  constructor(options: IframeTransportOptions) {
    if (typeof document === "undefined" || typeof window === "undefined") {
      throw new EchoError("rpc.bad_request", "echo-client runs in a browser page (it needs document and window)", { reason: "not_a_browser" });
    }
    this.baseUrl = options.baseUrl;
    this.origin = options.origin;
    this.container = options.container;
    this.retryMs = options.retryMs ?? 1_000;
    this.slot = options.accessSlot;
    this.onAccess = options.onAccess;
  }

  /** Where asking the browser for the vault's storage stands (null: nothing to ask). */
  get access(): StorageAccessState | null {
    return this.accessValue;
  }

  open(sink: TransportSink): void {
    this.sink = sink;
    window.addEventListener("message", this.onWindowMessage);
  }

  connect(fresh: boolean): void {
    if (this.closed) return;
    this.stop();
    this.asking = true;
    // A page that is there is asked at once; otherwise its (first) load starts asking.
    if (fresh || !this.iframe || this.loads === 0) this.createIframe();
    else this.ask();
  }

  stop(): void {
    this.asking = false;
    if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
    this.retryTimer = undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    window.removeEventListener("message", this.onWindowMessage);
    this.iframe?.remove();
    this.iframe = null;
    this.sink = null;
    this.setAccess(null);
  }

  private setAccess(access: StorageAccessState | null): void {
    if (access === this.accessValue) return;
    this.accessValue = access;
    try {
      this.onAccess?.(access);
    } catch (e) {
      console.error("echo-client: an access listener threw", e);
    }
  }

  /** Shows the frame in the slot (its button), or hides it. */
  private show(shown: boolean): void {
    const iframe = this.iframe;
    if (!iframe) return;
    if (shown) {
      iframe.style.display = "block";
      iframe.style.width = SLOT_WIDTH;
      iframe.style.height = SLOT_HEIGHT;
      iframe.style.border = "0";
      iframe.style.colorScheme = "normal";
      iframe.removeAttribute("aria-hidden");
      iframe.tabIndex = 0;
    } else {
      iframe.style.display = "none";
      iframe.setAttribute("aria-hidden", "true");
      iframe.tabIndex = -1;
    }
  }

  private createIframe(): void {
    if (this.iframe) {
      this.iframe.remove();
      this.iframe = null;
    }
    this.loads = 0;
    this.setAccess(null);
    const iframe = document.createElement("iframe");
    iframe.src = `${this.baseUrl}/vault.html`;
    iframe.title = "ECHO vault";
    iframe.setAttribute("aria-hidden", "true");
    iframe.tabIndex = -1;
    iframe.style.display = "none";
    iframe.addEventListener("load", () => {
      if (this.iframe !== iframe || this.closed) return;
      this.loads++;
      if (this.loads > 1) {
        // The vault page reloaded: its engine connection is gone. The
        // connection asks again at once (connect(false) → ask()).
        this.stop();
        this.sink?.dropped(new EchoError("rpc.disconnected", "the vault page reloaded; reconnecting"), true);
      } else if (this.asking) {
        this.ask();
      }
    });
    this.iframe = iframe;
    // With a slot the frame lives there from the start: moving a frame would reload it.
    const parent = this.slot ?? this.container;
    const mount = () => (parent ?? document.body ?? document.documentElement).appendChild(iframe);
    if (parent || document.body) mount();
    else document.addEventListener("DOMContentLoaded", mount, { once: true });
  }

  /** Posts `connect` now and every `retryMs` until the shell answers (or `stop`). */
  private ask(): void {
    if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
    const post = () => {
      if (!this.asking) return;
      try {
        this.iframe?.contentWindow?.postMessage({ echo: "connect" }, this.origin);
      } catch {
        // The frame is navigating; the next tick retries.
      }
    };
    this.sink?.reached();
    post();
    this.retryTimer = setInterval(post, this.retryMs);
  }

  private windowMessage(event: MessageEvent): void {
    const msg = this.closed ? null : echoMessage(event, this.iframe?.contentWindow, this.origin);
    if (!msg) return;
    if (msg.echo === "connected") {
      const port = connectedPort(event, this.asking);
      if (!port) return;
      this.stop();
      this.sink?.link(portLink(port));
    } else if (msg.echo === "refused") {
      if (!this.asking) return;
      this.stop();
      // not_authorized: the app has no origin the vault can serve (a sandboxed frame, origin "null").
      const state = refusedState(msg.state);
      const error = msg.error
        ? EchoError.fromWire(msg.error)
        : state === "not_authorized"
          ? new EchoError("rpc.not_authorized", "the vault cannot serve this page: it has no origin of its own")
          : new EchoError(state === "storage_partitioned" ? "rpc.storage_partitioned" : "rpc.storage_blocked", "the vault cannot reach its storage from this site");
      // The vault's frame can ask the browser on a click: show its button where the app put the slot.
      const canAsk = msg.ask === true && this.slot !== undefined && state !== "not_authorized";
      this.show(canAsk);
      this.setAccess(canAsk ? "ask" : null);
      this.sink?.refused(state, error);
    } else if (msg.echo === "access") {
      // The person clicked the vault's button: what the browser answered.
      const result = msg.result;
      if (result === "asking") {
        this.setAccess("asking");
      } else if (result === "granted") {
        this.show(false);
        this.setAccess("granted");
        this.sink?.again();
      } else if (result === "cookies_only" || result === "refused") {
        this.show(false);
        this.setAccess(result);
      }
    }
  }
}
