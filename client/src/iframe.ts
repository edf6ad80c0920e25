// Reaching the vault through a hidden iframe of its shell page
// (docs/browser-vault.md section 1): the page loads, the app posts
// `{echo: "connect"}` to it every second until the shell answers with a
// MessagePort (`connected`) or a refusal (`refused`). A second `load` of the
// frame (the vault page reloaded: the engine crashed, or its connection
// lost its leader) drops the link, and the connection asks again at once.

import { EchoError } from "./errors.js";
import type { RpcError } from "./protocol.js";
import { portLink, type RefusedState, type Transport, type TransportSink } from "./transport.js";

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
}

/** The hidden vault iframe as a [`Transport`]. */
export class IframeTransport implements Transport {
  private readonly baseUrl: string;
  private readonly origin: string;
  private readonly container: HTMLElement | undefined;
  private readonly retryMs: number;
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
    const mount = () => (this.container ?? document.body ?? document.documentElement).appendChild(iframe);
    if (this.container || document.body) mount();
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
    if (this.closed || !this.iframe || event.source !== this.iframe.contentWindow || event.origin !== this.origin) return;
    const data: unknown = event.data;
    if (!data || typeof data !== "object" || typeof (data as { echo?: unknown }).echo !== "string") return;
    const msg = data as { echo: string; state?: unknown; error?: RpcError };
    if (msg.echo === "connected") {
      const port = event.ports[0];
      if (!port) return;
      if (!this.asking) {
        // An answer to a retried connect: one port is enough.
        port.close();
        return;
      }
      this.stop();
      this.sink?.link(portLink(port));
    } else if (msg.echo === "refused") {
      if (!this.asking) return;
      this.stop();
      // not_authorized: the app has no origin the vault can serve (a sandboxed frame, origin "null").
      const state: RefusedState =
        msg.state === "storage_partitioned" ? "storage_partitioned" : msg.state === "not_authorized" ? "not_authorized" : "storage_blocked";
      const error = msg.error
        ? EchoError.fromWire(msg.error)
        : state === "not_authorized"
          ? new EchoError("rpc.not_authorized", "the vault cannot serve this page: it has no origin of its own")
          : new EchoError(state === "storage_partitioned" ? "rpc.storage_partitioned" : "rpc.storage_blocked", "the vault cannot reach its storage from this site");
      this.sink?.refused(state, error);
    }
  }
}
