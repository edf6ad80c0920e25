// The iframe shell apps embed (/vault.html; docs/browser-vault.md, section 1):
// answers `{echo: "connect"}` from the embedding page with a MessagePort to
// the engine, tagged with the app's origin as the browser reported it.
// Where the browser gives this frame the vault's storage only after a click
// inside it (storage access, section 8), the refusal says `ask: true` and
// the page shows a "Connect to your vault" button (the SDK shows the frame
// in the app's slot); the click asks the browser, and the page tells the
// app what it answered (`{echo: "access", result}`).
import type { RpcError } from "@echo/client/protocol";
import { blockedAdvice } from "./advice";
import {
  globalScope,
  handleScope,
  rpcError,
  withTimeout,
  type StorageAccessDocument,
  type StorageAccessHandle,
  type StorageScope,
} from "./control";
import { h } from "./dom";
import { joinEngine, type EngineLink } from "./engine";
import { joinNetElection } from "./net";
import { registerServiceWorker } from "./sw-register";

type Setup =
  | { ok: true; scope: StorageScope }
  | { ok: false; state: "storage_partitioned" | "storage_blocked"; error: RpcError };

const HAS_ACCESS_TIMEOUT_MS = 1000;
/** Without a gesture browsers answer at once; only a browser under heavy load takes long. */
const REQUEST_ACCESS_TIMEOUT_MS = 5000;
const PROBE_TIMEOUT_MS = 2000;

const embedded = window.parent !== window;
let link: EngineLink | null = null;
/** The browser refused storage access without a click, and may give it on one (in this document). */
let canAsk = false;
/** The app this frame serves: origin and window of its last connect (the target of access messages). */
let app: { origin: string; window: Window } | null = null;
/** The storage set-up connects are answered with (replaced when a click got the vault its storage). */
let setup: Promise<Setup> | null = null;

/** The types of storage the vault asks the browser for (the handle form, where supported). */
const ACCESS_TYPES = { indexedDB: true, locks: true, SharedWorker: true, BroadcastChannel: true } as const;

/**
 * Where the engine's storage is reachable from here, if it is.
 *
 * `hasStorageAccess()` true is not enough in an iframe: Chromium answers true
 * once third-party cookies are allowed, while the plain `indexedDB` and
 * `SharedWorker` stay partitioned by the top-level site. So the shell always
 * asks `requestStorageAccess` for the non-cookie storage (it resolves at once
 * when access is already there) and uses the handle's first-party versions;
 * the globals only where the browser grants no such handle.
 */
async function storageSetup(): Promise<Setup> {
  const doc = document as unknown as StorageAccessDocument;
  let has = true;
  if (typeof doc.hasStorageAccess === "function") {
    has = await withTimeout(doc.hasStorageAccess(), HAS_ACCESS_TIMEOUT_MS, () => false).catch(
      () => false,
    );
  }

  if (typeof doc.requestStorageAccess === "function") {
    let timedOut = false;
    try {
      const handle = await withTimeout(
        doc.requestStorageAccess({ ...ACCESS_TYPES }),
        REQUEST_ACCESS_TIMEOUT_MS,
        () => {
          timedOut = true;
          return null;
        },
      );
      if (handle && (handle.SharedWorker || handle.indexedDB || handle.locks)) {
        return { ok: true, scope: handleScope(handle) };
      }
      // Access without a handle. Where nothing restricts this frame (Firefox with third-party cookies
      // allowed) the globals are the vault's own. Where it came from an earlier grant they may not be:
      // Firefox's and WebKit's grants cover cookies only — measured in Firefox ESR 153 (Total Cookie
      // Protection): the next load of this frame after a grant has hasStorageAccess() true, this request
      // resolving with nothing, and IndexedDB still partitioned (a database made first party is not
      // there), so an engine started here would be a second, empty vault.
      if (handle === undefined) {
        if (!(await accessFromGrant()) || (await globalsAreTheVaults())) return { ok: true, scope: globalScope() };
        has = false;
      }
    } catch {
      // Refused (without a click): a click in this page may get it.
      canAsk = true;
    }
    if (timedOut) {
      // No answer is not a "no": in Chromium the globals here are this site's partition, and using them
      // would start a second, empty vault (found by the 100-kill run, e2e/07, on a loaded machine). Say so;
      // the app's reconnect asks again.
      return {
        ok: false,
        state: "storage_partitioned",
        error: rpcError(
          "rpc.storage_partitioned",
          "The browser did not answer the vault's request for its storage in time. Reconnect (or reload the page) to ask again.",
        ),
      };
    }
  }
  if (has) return { ok: true, scope: globalScope() };

  const works = await probeIndexedDB();
  return works
    ? {
        ok: false,
        state: "storage_partitioned",
        error: blockedAdvice(
          "rpc.storage_partitioned",
          "This browser keeps the vault's storage separate for each site, so this app cannot reach your vault from here.",
        ),
      }
    : {
        ok: false,
        state: "storage_blocked",
        error: blockedAdvice("rpc.storage_blocked", "This browser blocks the vault's storage inside other sites."),
      };
}

/**
 * Whether this page's plain storage is the vault's own: a browser that
 * grants storage access without a handle gives either the first-party
 * globals (Firefox) or cookies only, its storage still partitioned (WebKit).
 * Only a first-party context can hold the engine's database (an iframe
 * never starts an engine in partitioned storage), so its presence tells.
 * A vault never opened first party yet cannot be told apart: no — the vault
 * window opens it, and the next click here finds it.
 */
async function globalsAreTheVaults(): Promise<boolean> {
  try {
    const list = await withTimeout(indexedDB.databases(), PROBE_TIMEOUT_MS, () => []);
    return list.some((db) => db.name === "echo-vault");
  } catch {
    return false;
  }
}

/**
 * Whether this frame's storage access comes from a grant (the `storage-access` permission is "granted"),
 * as opposed to a browser that does not restrict this frame at all (the permission still "prompt": Firefox
 * with third-party cookies allowed). Unknown (no such permission name) counts as a grant.
 */
async function accessFromGrant(): Promise<boolean> {
  try {
    const status = await withTimeout(
      navigator.permissions.query({ name: "storage-access" as PermissionName }),
      PROBE_TIMEOUT_MS,
      () => null,
    );
    return status === null || status.state === "granted";
  } catch {
    return true;
  }
}

/** Tells the app what the browser answered to the click (explicit target: the app's origin). */
function tellApp(result: "asking" | "granted" | "cookies_only" | "refused"): void {
  if (!app) return;
  try {
    app.window.postMessage({ echo: "access", result }, app.origin);
  } catch {
    // The app went away.
  }
}

/** The vault's button: shown by the SDK in the app's slot; a click asks the browser for the vault's storage. */
function showAccessButton(): void {
  const vaultHost = location.hostname;
  const button = h("button", { type: "button", class: "primary", "data-testid": "access" }, "Connect to your vault");
  const caption = h("p", { class: "caption", "data-testid": "access-caption" }, `Your browser will ask whether ${vaultHost} may use its data here.`);
  const box = h("div", { class: "access" }, button, caption);
  document.body.appendChild(box);
  document.body.classList.add("asking-access");
  const say = (text: string): void => {
    caption.textContent = text;
  };
  button.addEventListener("click", () => {
    const doc = document as unknown as StorageAccessDocument;
    if (typeof doc.requestStorageAccess !== "function") return;
    const appHost = app ? new URL(app.origin).host : "this site";
    button.disabled = true;
    say(`Your browser asks whether ${vaultHost} may use its cookies and site data on ${appHost}: choose “Allow”.`);
    tellApp("asking");
    // Called in the click (the browser wants the gesture), before any await.
    let request: Promise<StorageAccessHandle | undefined>;
    try {
      request = doc.requestStorageAccess({ ...ACCESS_TYPES });
    } catch (error) {
      request = Promise.reject(error);
    }
    void request.then(
      async (handle) => {
        let scope: StorageScope | null = null;
        if (handle && (handle.SharedWorker || handle.indexedDB || handle.locks)) scope = handleScope(handle);
        else if (await globalsAreTheVaults()) scope = globalScope();
        if (!scope) {
          say(`Your browser let ${vaultHost} use its cookies here, but not its storage. Open your vault in its own window instead.`);
          tellApp("cookies_only");
          return;
        }
        const granted: Setup = { ok: true, scope };
        setup = Promise.resolve(granted);
        link ??= startEngine(scope);
        box.remove();
        document.body.classList.remove("asking-access");
        tellApp("granted");
      },
      () => {
        say("Your browser did not allow it. Open your vault in its own window instead.");
        tellApp("refused");
      },
    );
  });
}

/** Whether the plain (partitioned) IndexedDB opens at all. */
function probeIndexedDB(): Promise<boolean> {
  const probe = new Promise<boolean>((resolve) => {
    try {
      const name = "echo-probe";
      const request = indexedDB.open(name);
      request.onsuccess = () => {
        request.result.close();
        try {
          indexedDB.deleteDatabase(name);
        } catch {
          // Left behind: harmless.
        }
        resolve(true);
      };
      request.onerror = () => resolve(false);
      request.onblocked = () => resolve(false);
    } catch {
      resolve(false);
    }
  });
  return withTimeout(probe, PROBE_TIMEOUT_MS, () => false);
}

/** A port that answers the app's hello with a refusal (the engine is not there). */
function refusingPort(port: MessagePort, error: RpcError): void {
  port.onmessage = () => {
    port.postMessage(JSON.stringify({ refused: { error } }));
    port.close();
  };
}

function answer(setup: Setup, origin: string, target: Window): void {
  if (!setup.ok) {
    target.postMessage({ echo: "refused", state: setup.state, error: setup.error, ask: canAsk }, origin);
    return;
  }
  link ??= startEngine(setup.scope);
  // The engine crashed and this page reloads in a moment; the app connects
  // again once it has (its iframe's load event).
  if (link.status?.engine === "crashed") return;
  const channel = new MessageChannel();
  const status = link.status;
  if (status && status.engine === "failed") refusingPort(channel.port2, status.error);
  else link.attachApp(origin, channel.port2);
  target.postMessage({ echo: "connected", storage: "persistent" }, origin, [channel.port1]);
}

function startEngine(scope: StorageScope): EngineLink {
  // For tests and debugging: which storage the engine was joined through.
  document.documentElement.dataset["storage"] = scope.via;
  const engine = joinEngine(scope);
  engine.onStatus((status) => {
    if (status.engine === "failed") console.error("echo: the vault engine failed", status.error);
  });
  // A relayed connection lost its leader: reloading tells the app (its
  // iframe loads again), which connects anew.
  engine.onDisconnect(() => location.reload());
  joinNetElection(engine, scope, () => {});
  return engine;
}

if (embedded) {
  setup = storageSetup();
  addEventListener("message", (event: MessageEvent) => {
    if (event.source !== window.parent) return;
    const data: unknown = event.data;
    if (typeof data !== "object" || data === null || (data as { echo?: unknown }).echo !== "connect") {
      return;
    }
    const origin = event.origin;
    if (!origin || origin === "null") {
      // A sandboxed frame (or a data: URL) has no origin the user could allow: a typed refusal at once, not
      // a connect timeout. It can only be addressed with "*"; the message carries nothing secret.
      const error = rpcError(
        "rpc.not_authorized",
        'This page has no origin of its own (it runs in a sandboxed frame, origin "null"), so the vault cannot tell which site it is and cannot serve it. Load the app without the sandbox, or with allow-same-origin.',
      );
      (event.source as Window).postMessage(
        { echo: "refused", state: "not_authorized", error: { ...error, details: { reason: "opaque_origin" } } },
        "*",
      );
      return;
    }
    const target = event.source as Window;
    app = { origin, window: target };
    void setup?.then((result) => answer(result, origin, target));
  });
  void setup.then((result) => {
    // Start the engine before the first connect, so that it opens its storage early.
    if (result.ok) link ??= startEngine(result.scope);
    else if (canAsk) showAccessButton();
  });
} else {
  document.body.classList.add("top-level");
}

registerServiceWorker();
