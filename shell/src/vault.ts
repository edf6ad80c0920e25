// The iframe shell apps embed (/vault.html; docs/browser-vault.md, section 1):
// answers `{echo: "connect"}` from the embedding page with a MessagePort to
// the engine, tagged with the app's origin as the browser reported it.
import type { RpcError } from "../../client/src/protocol";
import {
  globalScope,
  handleScope,
  rpcError,
  withTimeout,
  type StorageAccessDocument,
  type StorageScope,
} from "./control";
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
        doc.requestStorageAccess({
          indexedDB: true,
          locks: true,
          SharedWorker: true,
          BroadcastChannel: true,
        }),
        REQUEST_ACCESS_TIMEOUT_MS,
        () => {
          timedOut = true;
          return null;
        },
      );
      if (handle && (handle.SharedWorker || handle.indexedDB || handle.locks)) {
        return { ok: true, scope: handleScope(handle) };
      }
      // A browser that grants cookie access only resolves with nothing; its
      // globals are then the first-party ones.
      if (handle === undefined) return { ok: true, scope: globalScope() };
    } catch {
      // Refused.
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
        error: rpcError(
          "rpc.storage_partitioned",
          "This browser keeps the vault's storage separate for each site, so this app cannot reach your vault.",
        ),
      }
    : {
        ok: false,
        state: "storage_blocked",
        error: rpcError(
          "rpc.storage_blocked",
          "This browser blocks the vault's storage inside other sites.",
        ),
      };
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
    target.postMessage({ echo: "refused", state: setup.state, error: setup.error }, origin);
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
  const setup = storageSetup();
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
    void setup.then((result) => answer(result, origin, target));
  });
  void setup.then((result) => {
    // Start the engine before the first connect, so that it opens its storage early.
    if (result.ok) link ??= startEngine(result.scope);
  });
} else {
  document.body.classList.add("top-level");
}

registerServiceWorker();
