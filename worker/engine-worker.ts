// The engine's worker entry (/engine-worker.js; docs/browser-vault.md,
// sections 2, 4 and 6). Runs as the SharedWorker "echo-engine" (control ports
// arrive by `connect`) or as the dedicated worker of the fallback (the worker
// itself is the control port). Loads the echo-vault wasm, starts the engine
// once (the engine holds the exclusive Web Lock "echo-engine"), answers every control port
// `{engine: "ready"}` / `{engine: "failed"}` and forwards `attach` /
// `attach_admin` to the engine (queued until it is ready).
import type { RpcError } from "@echo/client/protocol";
import { Mirror, type MirrorOps, type MirrorState } from "./mirror";

/** The second copy (mirror.ts), once the engine prepared it under its lock; its state for the diagnosis. */
let mirror: Mirror | null = null;
let mirrorState: MirrorState | null = null;
/** When (ms after the worker started) and how long `prepare` ran, and how many keys the mirror holds. */
let mirrorTimes: { mirrorStartMs: number; mirrorPrepareMs: number } | null = null;
let mirrorKeys: number | null = null;

/**
 * For the benchmarks (read over DevTools, bench/browser/run.mjs): what the start did with the mirror, and why
 * it fell behind if it did — the diagnosis's facts (`diagnose`) with their times.
 */
Object.defineProperty(globalThis, "echoStartup", {
  get: () =>
    mirrorState === null ? null : { mirror: mirrorState, ...mirrorTimes, mirrorKeys, mirrorBehind: mirror?.whyBehind ?? null },
});

/**
 * What the engine calls (vault-wasm engine.rs): `prepare` once it holds its lock, before it opens storage —
 * resolves with the mirror's state; `apply` with every batch it writes (at once, beside the default database's
 * write), and `settle` once the default database committed it: the answer waits for both copies, the mirror's
 * for at most a bounded time more.
 */
(globalThis as unknown as { echoMirror: unknown }).echoMirror = {
  prepare: async (): Promise<MirrorState> => {
    const t0 = performance.now();
    const prepared = await Mirror.prepare();
    mirror = prepared.mirror;
    mirrorState = prepared.state;
    mirrorTimes = { mirrorStartMs: t0, mirrorPrepareMs: performance.now() - t0 };
    if (prepared.state === "restored") {
      console.warn("echo-engine: the vault's storage was deleted by the browser; restored from its mirror");
    }
    return prepared.state;
  },
  apply: (ops: MirrorOps, relaxed: boolean): Promise<true | Error> => (mirror ? mirror.apply(ops, relaxed) : Promise.resolve(true)),
  settle: (write: Promise<true | Error>): Promise<void> => (mirror ? mirror.settle(write) : Promise.resolve()),
};

/** Set by scripts/web-build.mjs: the wasm-bindgen JS and wasm, relative to this script (null: built without). */
declare const __ECHO_WASM_JS__: string | null;
declare const __ECHO_WASM_BG__: string | null;

interface VaultEngine {
  attach_app(port: MessagePort, origin: string): number;
  attach_admin(port: MessagePort): number;
  attach_net(port: MessagePort): void;
  detach(conn: number): void;
  connections(): number;
}

interface EchoVaultModule {
  default(input?: { module_or_path: URL | string }): Promise<{ memory?: WebAssembly.Memory }>;
  VaultEngine: { start(): Promise<VaultEngine> };
  /** Forgets the marker that names the vault's identity (vault-wasm's marker.rs). */
  forgetLostVault(database?: string): Promise<void>;
}

type Attach =
  | { kind: "app"; origin: string; port: MessagePort; lifeline: string | null }
  | { kind: "admin"; port: MessagePort; lifeline: string | null }
  | { kind: "net"; port: MessagePort };

type EngineStatus =
  | { engine: "ready" }
  // This SharedWorker cannot run the engine (it cannot keep a CryptoKey in IndexedDB): pages use a dedicated worker.
  | { engine: "dedicated_only"; error: RpcError }
  | { engine: "failed"; error: RpcError }
  | { engine: "crashed"; error: RpcError };

/** How long connections wait for the engine to start before a typed refusal. */
const START_TIMEOUT_MS = 8_000;

let status: EngineStatus | null = null;
let engine: VaultEngine | null = null;
/** The engine's linear memory (it only grows: its size is the engine's peak). */
let wasmMemory: WebAssembly.Memory | null = null;
/** The loaded echo-vault module (null until loaded). */
let wasmModule: EchoVaultModule | null = null;
const queued: Attach[] = [];
const controls: Array<(message: EngineStatus) => void> = [];

function toRpcError(error: unknown, fallbackCode = "rpc.internal"): RpcError {
  if (typeof error === "object" && error !== null) {
    const e = error as { code?: unknown; message?: unknown };
    if (typeof e.code === "string" && typeof e.message === "string") return { code: e.code, message: e.message };
    if (typeof e.message === "string") return { code: fallbackCode, message: e.message };
  }
  return { code: fallbackCode, message: String(error) };
}

async function loadEngine(): Promise<VaultEngine> {
  if (__ECHO_WASM_JS__ === null || __ECHO_WASM_BG__ === null) {
    throw { code: "rpc.internal", message: "This vault was built without its engine (web-build --no-wasm)." };
  }
  const jsUrl = new URL(__ECHO_WASM_JS__, import.meta.url).href;
  const wasmUrl = new URL(__ECHO_WASM_BG__, import.meta.url);
  const wasm = (await import(jsUrl)) as EchoVaultModule;
  wasmMemory = (await wasm.default({ module_or_path: wasmUrl })).memory ?? null;
  wasmModule = wasm;
  return await wasm.VaultEngine.start();
}

/** The probe's own database: never one of the engine's (`echo-vault`, `echo-vault-keys`). */
const PROBE_DB = "echo-probe-key-storage";
/** A probe that has not answered by then counts as passed: the engine's own start says what is wrong. */
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Whether this worker can keep a non-extractable CryptoKey in IndexedDB, as the engine's keyring must (its
 * wrapping key, vault-wasm keyring.rs). WebKit's SharedWorker cannot (DataCloneError), its dedicated worker
 * can. The probe puts a fresh key into a throw-away store of a database of its own, inside the upgrade
 * transaction, which it then aborts (nothing is written), and deletes that database. Only a DataCloneError
 * says false; anything else (no IndexedDB, storage blocked, no WebCrypto, too slow) says true and leaves it to
 * the engine's start to report what is wrong, as before.
 */
async function probeKeyStorage(): Promise<boolean> {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  } catch {
    return true;
  }
  const verdict = new Promise<boolean>((resolve) => {
    let request: IDBOpenDBRequest;
    try {
      request = indexedDB.open(PROBE_DB, 1);
    } catch {
      resolve(true);
      return;
    }
    const cloneError = (error: unknown): boolean => (error as { name?: unknown } | null)?.name === "DataCloneError";
    request.onupgradeneeded = () => {
      const tx = request.transaction;
      if (!tx) return resolve(true);
      const abort = (keeps: boolean): void => {
        resolve(keeps);
        try {
          tx.abort();
        } catch {
          // Already finished.
        }
      };
      try {
        const put = request.result.createObjectStore("probe").put(key, "key");
        put.onsuccess = () => abort(true);
        put.onerror = (event) => {
          event.preventDefault();
          abort(!cloneError(put.error));
        };
      } catch (error) {
        abort(!cloneError(error));
      }
    };
    // Aborted as intended (error), or an existing probe database of the same version (success: close it).
    request.onsuccess = () => {
      request.result.close();
      resolve(true);
    };
    request.onerror = (event) => {
      event.preventDefault();
      resolve(true);
    };
    request.onblocked = () => resolve(true);
  });
  const keeps = await Promise.race([verdict, new Promise<boolean>((resolve) => setTimeout(() => resolve(true), PROBE_TIMEOUT_MS))]);
  try {
    const removing = indexedDB.deleteDatabase(PROBE_DB);
    await Promise.race([
      new Promise<void>((resolve) => {
        removing.onsuccess = removing.onerror = removing.onblocked = () => resolve();
      }),
      new Promise<void>((resolve) => setTimeout(resolve, PROBE_TIMEOUT_MS)),
    ]);
  } catch {
    // Nothing was written; a leftover empty probe database is deleted by the next probe.
  }
  if (!keeps) console.warn("echo-engine: this SharedWorker cannot store a CryptoKey in IndexedDB; pages use a dedicated worker");
  return keeps;
}

/**
 * Starts the engine once. VaultEngine.start() itself holds the exclusive Web
 * Lock "echo-engine" for the life of this worker (vault-wasm's engine.rs), so
 * this entry must not request it too: that would wait forever.
 */
function start(): void {
  // Never a silent wait: when the engine is not up in time (its lock is held
  // by another engine of this vault — an older worker script, or a dedicated
  // worker of the fallback), connections are refused with a typed error; the
  // engine still starts when the lock frees, and later connections get it.
  const slow = setTimeout(() => {
    if (status !== null) return;
    setStatus({
      engine: "failed",
      error: {
        code: "rpc.storage_blocked",
        message: "Another copy of the vault is using its storage (perhaps an older version in another tab). Close other vault tabs, then reconnect.",
      },
    });
  }, START_TIMEOUT_MS);
  const begin = isShared ? probeKeyStorage() : Promise.resolve(true);
  begin
    .then((keeps) => {
      if (keeps) return loadEngine();
      clearTimeout(slow);
      // Not a failure of the vault: pages start the engine in a dedicated worker instead (shell/src/engine.ts).
      setStatus({
        engine: "dedicated_only",
        error: {
          code: "rpc.internal",
          message: "This browser's SharedWorker cannot keep the vault's key in IndexedDB (DataCloneError); the vault runs its engine in a dedicated worker.",
        },
      });
      return null;
    })
    .then(
      (started) => {
        if (started === null) return;
        clearTimeout(slow);
        engine = started;
        setStatus({ engine: "ready" });
        mirror
          ?.copyKeys()
          .then((copied) => {
            mirrorKeys = copied;
          })
          .catch((error: unknown) => console.warn("echo-engine: cannot copy the wrapping key to the mirror", error));
      },
      (error: unknown) => {
        clearTimeout(slow);
        console.error("echo-engine: cannot start", error);
        setStatus({ engine: "failed", error: toRpcError(error) });
      },
    );
}

/**
 * The engine trapped (its panic hook called `echoEngineFatal`, or a
 * WebAssembly.RuntimeError reached this scope: out of memory, a trap): its
 * state cannot be trusted and none of it may run again. Every control port
 * hears `crashed`, this worker closes, and the pages reload, which starts a
 * fresh engine from what is stored (acknowledged writes were stored before
 * they were acknowledged). Connections arriving meanwhile are refused.
 */
function crash(reason: string): void {
  endWorker({
    code: "rpc.internal",
    message: `The vault engine stopped after an error and starts again; apps reconnect by themselves (${reason.slice(0, 300)})`,
  });
}

/** Says `crashed` (every vault page reloads) and closes this worker, so that the next connection starts afresh. */
function endWorker(error: RpcError): void {
  if (status?.engine === "crashed") return;
  engine = null;
  setStatus({ engine: "crashed", error });
  setTimeout(() => self.close(), 50);
}

(globalThis as unknown as { echoEngineFatal: (message: string) => void }).echoEngineFatal = crash;
self.addEventListener("error", (event: ErrorEvent) => {
  if (event.error instanceof WebAssembly.RuntimeError) crash(String(event.error));
});
self.addEventListener("unhandledrejection", (event: PromiseRejectionEvent) => {
  if (event.reason instanceof WebAssembly.RuntimeError) crash(String(event.reason));
});

function setStatus(next: EngineStatus): void {
  status = next;
  for (const send of controls) send(next);
  const pending = queued.splice(0);
  for (const attach of pending) deliver(attach);
}

/** Connections per lifeline lock (see `watchLifeline`). */
const lifelines = new Map<string, number[]>();

/**
 * Drops `conn` once the page that attached it is gone: that page holds the Web Lock `lifeline` for its life
 * (shell/src/engine.ts), so this request is granted only when the page closed, reloaded or its frame was
 * removed. A MessagePort's `close` event does not fire reliably, so this is how a closed tab's connections end.
 */
function watchLifeline(lifeline: string, conn: number): void {
  const known = lifelines.get(lifeline);
  if (known) {
    known.push(conn);
    return;
  }
  const conns = [conn];
  lifelines.set(lifeline, conns);
  const locks = self.navigator.locks as LockManager | undefined;
  if (!locks) return;
  locks
    .request(lifeline, () => {
      lifelines.delete(lifeline);
      for (const c of conns) engine?.detach(c);
    })
    .catch(() => lifelines.delete(lifeline));
}

/** A lifeline name a vault page made (`echo-page-<uuid>`), or null. */
function lifelineOf(value: unknown): string | null {
  return typeof value === "string" && /^echo-page-[0-9a-f-]{36}$/.test(value) ? value : null;
}

function deliver(attach: Attach): void {
  if (engine) {
    try {
      if (attach.kind === "net") {
        engine.attach_net(attach.port);
      } else {
        const conn = attach.kind === "app" ? engine.attach_app(attach.port, attach.origin) : engine.attach_admin(attach.port);
        if (attach.lifeline) watchLifeline(attach.lifeline, conn);
      }
    } catch (error) {
      refuse(attach, toRpcError(error));
    }
    return;
  }
  if (status?.engine === "failed" || status?.engine === "crashed" || status?.engine === "dedicated_only") refuse(attach, status.error);
  else queued.push(attach);
}

/** Without an engine, answers a connection with its error. */
function refuse(attach: Attach, error: RpcError): void {
  const { port } = attach;
  if (attach.kind === "net") {
    // No engine to drive WebRTC for.
    port.close();
    return;
  }
  if (attach.kind === "app") {
    // The app's first message is its hello: refuse it as the vault would.
    port.onmessage = () => {
      port.postMessage(JSON.stringify({ refused: { error } }));
      port.close();
    };
  } else {
    port.onmessage = (event: MessageEvent) => {
      let request: { id?: unknown } | undefined;
      try {
        request = (JSON.parse(String(event.data)) as { request?: { id?: unknown } } | null)?.request;
      } catch {
        return;
      }
      if (request && typeof request.id === "number") {
        port.postMessage(JSON.stringify({ response: { id: request.id, result: { Err: error } } }));
      }
    };
  }
}

/** What a vault page may ask of the engine's health: its memory and connections (tests, diagnosis). */
interface Diagnosis {
  wasm_bytes: number | null;
  connections: number | null;
  status: EngineStatus["engine"] | null;
  /** The second copy at start (none: no storage buckets; in_sync, seeded, restored, both_lost), or behind. */
  mirror: MirrorState | "behind" | null;
}

function diagnose(): Diagnosis {
  let connections: number | null = null;
  try {
    connections = engine ? engine.connections() : null;
  } catch {
    // A trapped engine answers nothing.
  }
  return {
    wasm_bytes: wasmMemory ? wasmMemory.buffer.byteLength : null,
    connections,
    status: status?.engine ?? null,
    mirror: mirror?.behind ? "behind" : mirrorState,
  };
}

/**
 * The person chose, on a vault page, to start a new vault where the browser deleted the old one's storage.
 * Honoured only then (the engine failed with `rpc.storage_lost`): the marker naming the lost identity is
 * forgotten and this worker ends as after a crash, so every vault page reloads and a new vault starts.
 */
function startNewVault(): void {
  if (status?.engine !== "failed" || status.error.code !== "rpc.storage_lost" || !wasmModule) return;
  Promise.all([wasmModule.forgetLostVault(), mirror?.clear()]).then(
    () =>
      endWorker({
        code: "rpc.storage_lost",
        message: "A new, empty vault starts, as you chose (the browser had deleted the old one's storage); apps reconnect by themselves.",
      }),
    (error: unknown) => {
      console.error("echo-engine: cannot forget the lost vault", error);
      setStatus({
        engine: "failed",
        error: {
          code: "rpc.storage_blocked",
          message: `The vault cannot start a new vault: the browser refused to change its storage (${String(error)}). Allow site data for the vault, then reload.`,
        },
      });
    },
  );
}

/** Reads one control message; anything else is ignored. */
function onControl(data: unknown, reply: (message: unknown) => void): void {
  if (typeof data !== "object" || data === null) return;
  const message = data as {
    attach?: { origin?: unknown; port?: unknown; lifeline?: unknown };
    attach_admin?: { port?: unknown; lifeline?: unknown };
    attach_net?: { port?: unknown };
    diagnose?: unknown;
    start_new_vault?: unknown;
  };
  if (message.diagnose !== undefined) {
    reply({ diagnosis: diagnose() });
  } else if (message.start_new_vault !== undefined) {
    startNewVault();
  } else if (message.attach) {
    const { origin, port, lifeline } = message.attach;
    if (typeof origin === "string" && port instanceof MessagePort) deliver({ kind: "app", origin, port, lifeline: lifelineOf(lifeline) });
  } else if (message.attach_admin) {
    const { port } = message.attach_admin;
    if (port instanceof MessagePort) deliver({ kind: "admin", port, lifeline: lifelineOf(message.attach_admin.lifeline) });
  } else if (message.attach_net) {
    const { port } = message.attach_net;
    if (port instanceof MessagePort) deliver({ kind: "net", port });
  }
}

function addControl(send: (message: EngineStatus) => void): void {
  controls.push(send);
  if (status) send(status);
}

/** A SharedWorker (control ports arrive by `connect`), else the fallback's dedicated worker. */
const isShared = "onconnect" in self;

const scope = self as unknown as {
  onconnect?: ((event: MessageEvent) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

if (isShared) {
  scope.onconnect = (event: MessageEvent) => {
    const port = event.ports[0];
    if (!port) return;
    port.onmessage = (message: MessageEvent) => onControl(message.data, (m) => port.postMessage(m));
    addControl((message) => port.postMessage(message));
  };
} else {
  scope.onmessage = (event: MessageEvent) => onControl(event.data, (m) => scope.postMessage(m));
  addControl((message) => scope.postMessage(message));
}

start();
