// The control messages between vault pages and the engine worker
// (docs/browser-vault.md, section 2), and the browser APIs the shell uses
// that TypeScript's DOM lib does not describe yet.
import type { RpcError } from "@echo/client/protocol";

/** Page → engine on the control port. */
export type ControlMessage =
  // lifeline: a Web Lock the attaching page holds for its life; once the engine gets it, the page is gone.
  | { attach: { origin: string; port: MessagePort; lifeline?: string } }
  | { attach_admin: { port: MessagePort; lifeline?: string } }
  | { attach_net: { port: MessagePort } }
  // Answered with {diagnosis: {wasm_bytes, connections, status}} (tests, diagnosis).
  | { diagnose: Record<string, never> }
  // The person chose to start a new vault where the old one's storage was lost (`rpc.storage_lost`): the
  // engine forgets its marker and says `crashed`, every vault page reloads, and a new vault starts.
  | { start_new_vault: Record<string, never> };

/**
 * Engine → page on the control port. `crashed`: the engine trapped (a panic,
 * out of memory) and its worker is closing; pages reload, and the next
 * connection starts a fresh engine from what is stored.
 */
export type EngineStatus =
  | { engine: "ready" }
  | { engine: "failed"; error: RpcError }
  | { engine: "crashed"; error: RpcError };

/** The worker script and the options every vault page joins it with. */
export const ENGINE_URL = "/engine-worker.js";
export const ENGINE_NAME = "echo-engine";
export const SHARED_WORKER_OPTIONS = {
  type: "module",
  name: ENGINE_NAME,
  sameSiteCookies: "none",
} as const;

/** The Web Lock of the vault page that drives WebRTC for the engine (section 7). */
export const NET_LOCK = "echo-net-host";

/** Lock and channel names of the dedicated-worker fallback (section 4). */
export const LEADER_LOCK = "echo-engine-leader";
export const BUS_NAME = "echo-engine-bus";

export type SharedWorkerOptionsExt = {
  type: "module";
  name: string;
  sameSiteCookies: "none" | "all";
};

/** What `document.requestStorageAccess({...})` resolves with in Chromium. */
export interface StorageAccessHandle {
  indexedDB?: IDBFactory;
  locks?: LockManager;
  SharedWorker?: (url: string, options?: SharedWorkerOptionsExt) => SharedWorker;
  BroadcastChannel?: (name: string) => BroadcastChannel;
}

export interface StorageAccessTypes {
  indexedDB?: boolean;
  locks?: boolean;
  SharedWorker?: boolean;
  BroadcastChannel?: boolean;
}

export interface StorageAccessDocument {
  hasStorageAccess?: () => Promise<boolean>;
  requestStorageAccess?: (types?: StorageAccessTypes) => Promise<StorageAccessHandle | undefined>;
}

/**
 * The storage a page reaches its engine through: the globals (first party)
 * or a storage-access handle's first-party versions of them.
 */
export interface StorageScope {
  via: "global" | "handle";
  sharedWorker: ((url: string, options: SharedWorkerOptionsExt) => SharedWorker) | null;
  locks: LockManager | null;
  broadcastChannel: ((name: string) => BroadcastChannel) | null;
}

/** The globals of this page as a scope. */
export function globalScope(): StorageScope {
  const SW = typeof SharedWorker === "function" ? SharedWorker : null;
  return {
    via: "global",
    sharedWorker: SW
      ? (url, options) => new SW(url, options as unknown as WorkerOptions)
      : null,
    locks: typeof navigator !== "undefined" && navigator.locks ? navigator.locks : null,
    broadcastChannel:
      typeof BroadcastChannel === "function" ? (name) => new BroadcastChannel(name) : null,
  };
}

/** A scope from a storage-access handle; what the handle lacks stays missing. */
export function handleScope(handle: StorageAccessHandle): StorageScope {
  const sw = handle.SharedWorker;
  const bc = handle.BroadcastChannel;
  return {
    via: "handle",
    sharedWorker: typeof sw === "function" ? (url, options) => sw.call(handle, url, options) : null,
    locks: handle.locks ?? null,
    broadcastChannel: typeof bc === "function" ? (name) => bc.call(handle, name) : null,
  };
}

/** An RpcError-shaped object. */
export function rpcError(code: string, message: string): RpcError {
  return { code, message };
}

/** `promise`, or `fallback` once `ms` passed. */
export function withTimeout<T>(promise: Promise<T>, ms: number, fallback: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => resolve(fallback()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
