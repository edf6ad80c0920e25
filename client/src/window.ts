// Reaching the vault through a top-level vault window (docs/browser-vault.md
// section 8): where the vault's iframe cannot reach the vault's storage (the
// browser partitions or blocks it, refused storage access, or granted it
// for cookies only), the app opens `<vaultUrl>/window.html` on a click. The
// window is first party: it joins the vault's own engine and answers
// `{echo: "connect"}` from its opener with a MessagePort tagged with the
// app's origin, as the iframe shell does. While the window is open the app
// is connected; when it closes, the link is dropped for good
// (`dropped(error, false)`): the connection stays `disconnected` until the
// app calls `reconnect()` from a click, which opens the window again.

import { EchoError } from "./errors.js";
import { connectedPort, echoMessage, portLink, refusedState, type Transport, type TransportSink } from "./transport.js";

/** Options of [`WindowTransport`]. */
export interface WindowTransportOptions {
  /** The vault site's base URL, no trailing slash (`<baseUrl>/window.html` is opened). */
  baseUrl: string;
  /** The vault's origin: the only one whose messages count, and the target of `connect`. */
  origin: string;
  /** The window's name (default `"echo-vault"`: opening it again reuses the window). */
  name?: string;
  /** `window.open` features (default a small popup). */
  features?: string;
  /** How often `connect` is posted while the window has not answered (default 500 ms). */
  retryMs?: number;
  /** How often to look whether the window was closed (default 300 ms). */
  watchMs?: number;
}

/** `details.reason` of the errors this transport reports. */
export type WindowDropReason = "window_closed" | "popup_blocked";

/** The vault window as a [`Transport`]. */
export class WindowTransport implements Transport {
  private readonly url: string;
  private readonly origin: string;
  private readonly name: string;
  private readonly features: string;
  private readonly retryMs: number;
  private readonly watchMs: number;
  private sink: TransportSink | null = null;
  private popup: Window | null = null;
  /**
   * The token of the window this transport opened (in its URL, `?n=`, and in every `connect`): a vault
   * window answers only its own token, so a window still showing an earlier page (a reloaded app reopening
   * it navigates it anew) never answers for the page that replaces it.
   */
  private nonce = "";
  /** An attempt is running: `connect` is posted until the window answers. */
  private asking = false;
  private retryTimer: ReturnType<typeof setInterval> | undefined;
  private watchTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private readonly onWindowMessage = (event: MessageEvent): void => this.windowMessage(event);

  constructor(options: WindowTransportOptions) {
    if (typeof window === "undefined" || typeof window.open !== "function") {
      throw new EchoError("rpc.bad_request", "echo-client runs in a browser page (it needs window.open)", { reason: "not_a_browser" });
    }
    this.url = `${options.baseUrl}/window.html`;
    this.origin = options.origin;
    this.name = options.name ?? "echo-vault";
    this.features = options.features ?? "popup,width=440,height=360";
    this.retryMs = options.retryMs ?? 500;
    this.watchMs = options.watchMs ?? 300;
  }

  /** The vault window, while it is open. */
  get window(): Window | null {
    return this.popup && !this.popup.closed ? this.popup : null;
  }

  open(sink: TransportSink): void {
    this.sink = sink;
    window.addEventListener("message", this.onWindowMessage);
  }

  /**
   * Asks the open window for a link, or opens the window first. Opening
   * needs a user gesture: **the first `connect` (and `reconnect()` after the
   * window closed) must run inside a click.** A blocked window is reported
   * as `dropped` (`details.reason = "popup_blocked"`, no retry).
   */
  connect(_fresh: boolean): void {
    if (this.closed) return;
    this.stop();
    if (!this.window) {
      // Never a window the person did not ask for: without a click being handled now (an automatic retry),
      // the connection waits for reconnect() from one.
      if (!userActive()) {
        this.popup = null;
        this.sink?.dropped(closedError(), false);
        return;
      }
      this.nonce = windowNonce();
      const popup = window.open(`${this.url}?n=${this.nonce}`, this.name, this.features);
      if (!popup) {
        this.popup = null;
        this.sink?.dropped(
          new EchoError("rpc.cancelled", "the browser blocked the vault's window; open it from a click (and allow pop-ups for this site)", {
            reason: "popup_blocked",
          }),
          false,
        );
        return;
      }
      this.popup = popup;
      this.watch();
    }
    this.asking = true;
    this.sink?.reached();
    this.ask();
  }

  stop(): void {
    this.asking = false;
    if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Ends the transport and closes the vault window. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    if (this.watchTimer !== undefined) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    window.removeEventListener("message", this.onWindowMessage);
    try {
      this.popup?.close();
    } catch {
      // already gone
    }
    this.popup = null;
    this.sink = null;
  }

  /** Brings the window to the front (when it is open). */
  focus(): void {
    try {
      this.window?.focus();
    } catch {
      // not allowed: the person finds it
    }
  }

  /** Posts `connect` now and every `retryMs` until the window answers (or `stop`). */
  private ask(): void {
    const popup = this.popup;
    const post = () => {
      if (!this.asking || !popup || popup.closed) return;
      try {
        // Target: the vault's origin. While the window is still about:blank (loading), nothing is delivered.
        popup.postMessage({ echo: "connect", n: this.nonce }, this.origin);
      } catch {
        // navigating; the next tick retries
      }
    };
    post();
    this.retryTimer = setInterval(post, this.retryMs);
  }

  /** Reports the window's closing once (no retry: reopening it needs a click). */
  private watch(): void {
    if (this.watchTimer !== undefined) clearInterval(this.watchTimer);
    const popup = this.popup;
    const timer = setInterval(() => {
      if (this.closed || this.popup !== popup) {
        clearInterval(timer);
        return;
      }
      if (popup && popup.closed) this.gone();
    }, this.watchMs);
    this.watchTimer = timer;
  }

  /** The window is closed: the link is dropped for good (reopening it needs a click). */
  private gone(): void {
    if (this.watchTimer !== undefined) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    this.popup = null;
    this.stop();
    this.sink?.dropped(closedError(), false);
  }

  private windowMessage(event: MessageEvent): void {
    const msg = this.closed ? null : echoMessage(event, this.popup, this.origin);
    if (!msg) return;
    if (msg.echo === "connected") {
      const port = connectedPort(event, this.asking);
      if (!port) return;
      this.stop();
      this.sink?.link(portLink(port));
    } else if (msg.echo === "refused") {
      if (!this.asking) return;
      this.stop();
      const state = refusedState(msg.state);
      const error = msg.error ? EchoError.fromWire(msg.error) : new EchoError(`rpc.${state}`, "the vault's window cannot serve this page");
      this.sink?.refused(state, error);
    } else if (msg.echo === "window_closed") {
      // Closing, or reloading (its engine restarted): the link is gone. Closed: for good; reloading: ask
      // again (if it closes after all, the watch reports it in a moment).
      if (!this.popup || this.popup.closed) {
        this.gone();
        return;
      }
      this.stop();
      this.sink?.dropped(new EchoError("rpc.disconnected", "the vault's window reloaded; reconnecting"), true);
    }
  }
}

/** The error of a closed vault window. */
function closedError(): EchoError {
  return new EchoError("rpc.disconnected", "the vault's window was closed; open it again to reconnect", { reason: "window_closed" });
}

/**
 * Whether the page is handling a user gesture now (transient activation), where the browser says so;
 * browsers without `navigator.userActivation` are taken to be (their popup blocker decides).
 */
function userActive(): boolean {
  const activation = (globalThis.navigator as { userActivation?: { isActive?: boolean } } | undefined)?.userActivation;
  return activation?.isActive !== false;
}

/** A fresh token for a vault window (16 random bytes, hex). */
function windowNonce(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
