// The vault's own windows an app opens on a user gesture: the consent page
// (docs/browser-vault.md section 3) and the invitation page. Each is a
// top-level window on the vault origin that says it is ready
// (`{echo: "<x>_ready"}` to its opener), gets the app's request, and
// answers with its result; closing it first cancels.

import { EchoError } from "./errors.js";

/** How to talk to one kind of vault window. */
export interface VaultWindowSpec<R> {
  /** Its URL on the vault site. */
  url: string;
  /** The window's name (a second open reuses the window). */
  name: string;
  /** `window.open` features. */
  features: string;
  /** The vault's origin: only the window's messages from it count. */
  origin: string;
  /** The `echo` of its ready message. */
  ready: string;
  /** What to post to it once it is ready. */
  request: Record<string, unknown>;
  /** The result a message carries, or undefined when it is not the result. */
  result: (message: { echo: string } & Record<string, unknown>) => R | undefined;
  /** The message of the error when the window closes first. */
  closed: string;
  /** How often to look whether the window was closed (default 400 ms). */
  watchMs?: number;
}

/** An open vault window and the promise of its result. */
export interface VaultWindow<R> {
  window: Window;
  result: Promise<R>;
}

/**
 * Opens a vault window. **Call it from a user gesture.** Returns null
 * when the browser blocked it. The result rejects with `rpc.cancelled`
 * (`details.reason = "popup_closed"`) when the window closes first.
 */
export function openVaultWindow<R>(spec: VaultWindowSpec<R>): VaultWindow<R> | null {
  const popup = window.open(spec.url, spec.name, spec.features);
  if (!popup) return null;
  const result = new Promise<R>((resolve, reject) => {
    let done = false;
    const finish = () => {
      done = true;
      window.removeEventListener("message", onMessage);
      clearInterval(watch);
    };
    const onMessage = (event: MessageEvent) => {
      if (done || event.source !== popup || event.origin !== spec.origin) return;
      const data: unknown = event.data;
      if (!data || typeof data !== "object" || typeof (data as { echo?: unknown }).echo !== "string") return;
      const msg = data as { echo: string } & Record<string, unknown>;
      if (msg.echo === spec.ready) {
        popup.postMessage(spec.request, spec.origin);
        return;
      }
      const r = spec.result(msg);
      if (r !== undefined) {
        finish();
        resolve(r);
      }
    };
    const watch = setInterval(() => {
      if (!done && popup.closed) {
        finish();
        reject(new EchoError("rpc.cancelled", spec.closed, { reason: "popup_closed" }));
      }
    }, spec.watchMs ?? 400);
    window.addEventListener("message", onMessage);
  });
  return { window: popup, result };
}

/** The error of a vault window the browser blocked. */
export function popupBlocked(message: string): EchoError {
  return new EchoError("rpc.cancelled", message, { reason: "popup_blocked" });
}
