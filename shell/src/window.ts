// The vault window (/window.html; docs/browser-vault.md, section 8): a
// top-level vault page an app opens on a click where its vault iframe
// cannot reach the vault's storage (storage partitioned or blocked, access
// refused, or granted for cookies only). Being first party, it joins the
// vault's own engine (the SharedWorker over the vault's IndexedDB) and
// answers `{echo: "connect"}` from its opener exactly as the iframe shell
// answers its parent: one MessagePort to the engine, tagged with the
// opener's origin as the browser reported it (`event.origin`), never a
// field of a message. Consent rules are the engine's, unchanged.
//
// Only the window that opened this one (`window.opener`) is served; an
// opener without an origin ("null": a sandboxed frame) is refused; every
// postMessage names its target origin. Closing this window ends the app
// connections it made (their lifeline is this page's Web Lock), and the app
// shows that it is disconnected, with one click to open the window again.
import type { RpcError } from "@echo/client/protocol";
import { globalScope, rpcError } from "./control";
import { byId } from "./dom";
import { joinEngine, type EngineLink } from "./engine";
import { joinNetElection } from "./net";
import { errorText, refuseFraming } from "./page";
import { registerServiceWorker } from "./sw-register";

/** How often the page looks whether its opener is still there. */
const OPENER_WATCH_MS = 1000;

const titleEl = byId("title");
const appEl = byId("app");
const noticeEl = byId("notice");

function notice(text: string, kind: "info" | "error" = "info"): void {
  noticeEl.textContent = text;
  noticeEl.className = `notice ${kind}`;
  noticeEl.hidden = text === "";
}

/** A port that answers the app's hello with a refusal (the engine cannot start). */
function refusingPort(port: MessagePort, error: RpcError): void {
  port.onmessage = () => {
    port.postMessage(JSON.stringify({ refused: { error } }));
    port.close();
  };
}

/** The origin this window serves (the opener's, from the last connect it answered). */
let served: string | null = null;

function serve(link: EngineLink, origin: string, target: Window): void {
  // The engine crashed: this page reloads in a moment, and the app asks again.
  if (link.status?.engine === "crashed") return;
  const channel = new MessageChannel();
  const status = link.status;
  if (status && status.engine === "failed") refusingPort(channel.port2, status.error);
  else link.attachApp(origin, channel.port2);
  target.postMessage({ echo: "connected", storage: "persistent" }, origin, [channel.port1]);
  if (served !== origin) {
    served = origin;
    const host = new URL(origin).host;
    document.title = `Your vault, open for ${host} — ECHO vault`;
    titleEl.textContent = "Your vault is open for";
    appEl.textContent = origin;
    appEl.hidden = false;
    document.documentElement.dataset["served"] = origin;
  }
}

function start(): void {
  refuseFraming();
  registerServiceWorker();
  const opener = window.opener as Window | null;
  if (!opener) {
    titleEl.textContent = "No app opened this window";
    notice("This window connects an app to your vault. Open it from the app (its “Open your vault” button).", "error");
    return;
  }

  /** The token of the app that opened this page (`?n=`, client/src/window.ts); none: any connect of the opener. */
  const token = new URLSearchParams(location.search).get("n");
  const scope = globalScope();
  document.documentElement.dataset["storage"] = scope.via;
  const link = joinEngine(scope);
  // The window stays open while the app works: it may drive the vault's WebRTC.
  joinNetElection(link, scope, () => {});
  link.onStatus((status) => {
    if (status.engine === "failed") notice(`Your vault cannot start: ${errorText(status.error)}`, "error");
    else if (status.engine === "crashed") notice("Your vault stopped unexpectedly and restarts now.", "error");
  });
  // A relayed connection (dedicated-worker fallback) lost its leader: reloading makes the app ask again.
  link.onDisconnect(() => location.reload());

  addEventListener("message", (event: MessageEvent) => {
    // Only the opener is served, and only what its browser says it is.
    if (event.source !== opener) return;
    const data: unknown = event.data;
    if (typeof data !== "object" || data === null || (data as { echo?: unknown }).echo !== "connect") return;
    // Only the connect of the app that opened this page: a reloaded app reopening the window sends its
    // new token while this (earlier) page may still be shown; the page that replaces it answers.
    if (token !== null && (data as { n?: unknown }).n !== token) return;
    const origin = event.origin;
    if (!origin || origin === "null") {
      // A sandboxed page has no origin the person could allow, and it could only be answered with "*":
      // nothing is posted; the person sees why here (the SDK refuses such a page before opening a window).
      const error = rpcError(
        "rpc.not_authorized",
        'The page that opened this window has no origin of its own (it runs in a sandboxed frame, origin "null"), so your vault cannot tell which site it is and does not serve it. You can close this window.',
      );
      titleEl.textContent = "An app without an address";
      notice(error.message, "error");
      return;
    }
    serve(link, origin, opener);
  });

  // Going away (closed, or reloading after an engine crash): tell the app at once, at its origin only.
  addEventListener("pagehide", () => {
    if (served === null) return;
    try {
      opener.postMessage({ echo: "window_closed" }, served);
    } catch {
      // The opener is gone too.
    }
  });

  // The app went away: this window has no one left to serve.
  const watch = setInterval(() => {
    if (!opener.closed) return;
    clearInterval(watch);
    titleEl.textContent = "The app closed";
    notice("The app that opened this window is gone. This window closes now.");
    window.close();
  }, OPENER_WATCH_MS);
}

start();
