// Joining the engine worker (docs/browser-vault.md, sections 1, 2 and 4):
// a SharedWorker when the page has one, else the dedicated-worker fallback —
// one leader page (Web Lock "echo-engine-leader"; without Web Locks the same
// lock over IndexedDB, idb-lock.ts) runs a dedicated Worker and the other
// vault pages relay their connections to it over
// BroadcastChannel("echo-engine-bus"). A SharedWorker that cannot run the
// engine (it says `dedicated_only`: WebKit's cannot keep a CryptoKey in
// IndexedDB) sends the page to the fallback too, and this tab remembers it.
import {
  BUS_NAME,
  ENGINE_URL,
  LEADER_LOCK,
  SHARED_WORKER_OPTIONS,
  rpcError,
  type ControlMessage,
  type EngineStatus,
  type StorageScope,
} from "./control";
import { holdIdbLock } from "./idb-lock";

/** A page's connection to the engine. */
export interface EngineLink {
  /** "shared": SharedWorker; "fallback": dedicated worker (leader or relay). */
  readonly kind: "shared" | "fallback";
  /** The last status the engine reported (null: none yet). */
  readonly status: EngineStatus | null;
  /** Called on every status the engine reports, and at once with a known one. */
  onStatus(callback: (status: EngineStatus) => void): void;
  /** Called when connections of this page were lost (a relay's leader left). */
  onDisconnect(callback: () => void): void;
  /** Hands the engine one end of an app connection, tagged with its origin. */
  attachApp(origin: string, port: MessagePort): void;
  /** Hands the engine one end of a management connection. */
  attachAdmin(port: MessagePort): void;
  /**
   * Hands the engine the port of this page's WebRTC driver; false when this
   * page cannot (a fallback page that relays to another page's engine).
   * A promise while the page does not know yet which worker it joins.
   */
  attachNet(port: MessagePort): boolean | Promise<boolean>;
  /**
   * The person chose to start a new vault where the browser deleted the old one's storage (the engine
   * failed with `rpc.storage_lost`): every vault page reloads and a new, empty vault starts.
   */
  startNewVault(): void;
}

/** Joins the engine through `scope` (the globals or a storage-access handle). */
export function joinEngine(scope: StorageScope): EngineLink {
  const link = joinWorker(scope);
  link.onStatus((status) => {
    if (status.engine === "crashed") reloadAfterCrash(status.error.message);
  });
  return link;
}

function joinWorker(scope: StorageScope): EngineLink {
  if (scope.sharedWorker && !rememberedDedicated()) {
    try {
      return new SharedFirstLink(scope, scope.sharedWorker(ENGINE_URL, { ...SHARED_WORKER_OPTIONS }));
    } catch (error) {
      console.warn("echo: SharedWorker failed, using a dedicated worker", error);
    }
  }
  return new FallbackLink(scope);
}

/** This tab's note that the SharedWorker cannot run the engine here (sessionStorage: later pages skip it). */
const DEDICATED_KEY = "echo-engine-dedicated-only";

function rememberedDedicated(): boolean {
  try {
    return sessionStorage.getItem(DEDICATED_KEY) === "1";
  } catch {
    return false;
  }
}

function rememberDedicated(): void {
  try {
    sessionStorage.setItem(DEDICATED_KEY, "1");
  } catch {
    // No session storage here: the next page asks the SharedWorker again (it answers at once).
  }
}

/** Reloads after a crash at most this often within CRASH_WINDOW_MS (then stays, saying why). */
const CRASH_RELOADS = 3;
const CRASH_WINDOW_MS = 60_000;
const CRASH_KEY = "echo-engine-crash-reloads";

/**
 * The engine crashed and its worker is closing: this page reloads, which
 * starts (or joins) a fresh engine; an app's iframe reloading makes the app
 * reconnect at once. An engine that crashes again and again is not reloaded
 * into forever: after CRASH_RELOADS in a minute the page stays and says so.
 */
function reloadAfterCrash(reason: string): void {
  const now = Date.now();
  let recent: number[] = [];
  try {
    recent = (JSON.parse(sessionStorage.getItem(CRASH_KEY) ?? "[]") as number[]).filter(
      (t) => typeof t === "number" && now - t < CRASH_WINDOW_MS,
    );
    sessionStorage.setItem(CRASH_KEY, JSON.stringify([...recent, now]));
  } catch {
    // No session storage here (a partitioned frame): reload regardless.
  }
  if (recent.length >= CRASH_RELOADS) {
    console.error(`echo: the vault engine keeps stopping (${reason}); not reloading again`);
    return;
  }
  console.warn(`echo: ${reason}; reloading`);
  // A moment for the old worker to close, so the reload gets a fresh one.
  setTimeout(() => location.reload(), 150);
}

abstract class BaseLink {
  status: EngineStatus | null = null;
  private statusCallbacks: Array<(status: EngineStatus) => void> = [];
  protected disconnectCallbacks: Array<() => void> = [];

  onStatus(callback: (status: EngineStatus) => void): void {
    this.statusCallbacks.push(callback);
    if (this.status) callback(this.status);
  }

  onDisconnect(callback: () => void): void {
    this.disconnectCallbacks.push(callback);
  }

  protected setStatus(status: EngineStatus): void {
    this.status = status;
    for (const callback of this.statusCallbacks) callback(status);
  }

  protected disconnected(): void {
    for (const callback of this.disconnectCallbacks) callback();
  }
}

/** Reads an engine status out of a control-port message, if it is one. */
function asStatus(data: unknown): EngineStatus | null {
  if (typeof data !== "object" || data === null) return null;
  const d = data as { engine?: unknown; error?: unknown };
  if (d.engine === "ready") return { engine: "ready" };
  if (d.engine === "failed" || d.engine === "crashed") {
    const e = (d.error ?? {}) as { code?: unknown; message?: unknown };
    return {
      engine: d.engine,
      error: rpcError(
        typeof e.code === "string" ? e.code : "rpc.internal",
        typeof e.message === "string" ? e.message : "The vault engine failed to start.",
      ),
    };
  }
  return null;
}

/**
 * A Web Lock this page holds for its whole life, named for it alone: the engine asks for the same lock for
 * the connections this page attached, and is granted it only once the page is gone (closed, reloaded,
 * its iframe removed) — then it drops them. A MessagePort's own `close` event does not fire reliably (not
 * at all in some browsers and versions), so without this a closed tab's connections would linger until they
 * expire idle. Resolves with the lock's name once held (null without Web Locks).
 */
function holdLifeline(locks: LockManager | null): Promise<string | null> {
  if (!locks) return Promise.resolve(null);
  const name = `echo-page-${crypto.randomUUID()}`;
  return new Promise((resolve) => {
    locks
      .request(name, () => {
        resolve(name);
        // Held until the page goes away.
        return new Promise<never>(() => {});
      })
      .catch((error: unknown) => {
        console.warn("echo: no lifeline lock for this page's connections", error);
        resolve(null);
      });
  });
}

class SharedLink extends BaseLink implements EngineLink {
  readonly kind = "shared";
  private readonly port: MessagePort;
  /** This page's lifeline lock, once held (connections are attached after it is). */
  private readonly lifeline: Promise<string | null>;

  /** `dedicatedOnly`: called when the worker says it cannot run the engine (`{engine: "dedicated_only"}`). */
  constructor(worker: SharedWorker, lifeline: Promise<string | null>, dedicatedOnly: () => void) {
    super();
    this.lifeline = lifeline;
    this.port = worker.port;
    this.port.onmessage = (event) => {
      if ((event.data as { engine?: unknown } | null)?.engine === "dedicated_only") {
        this.port.close();
        dedicatedOnly();
        return;
      }
      const status = asStatus(event.data);
      if (status) this.setStatus(status);
    };
    worker.onerror = () => {
      this.setStatus({
        engine: "failed",
        error: rpcError("rpc.internal", "The vault engine's worker script failed to load."),
      });
    };
  }

  attachApp(origin: string, port: MessagePort): void {
    void this.lifeline.then((lifeline) => {
      const message: ControlMessage = { attach: { origin, port, ...(lifeline ? { lifeline } : {}) } };
      this.port.postMessage(message, [port]);
    });
  }

  attachAdmin(port: MessagePort): void {
    void this.lifeline.then((lifeline) => {
      const message: ControlMessage = { attach_admin: { port, ...(lifeline ? { lifeline } : {}) } };
      this.port.postMessage(message, [port]);
    });
  }

  attachNet(port: MessagePort): boolean {
    const message: ControlMessage = { attach_net: { port } };
    this.port.postMessage(message, [port]);
    return true;
  }

  startNewVault(): void {
    const message: ControlMessage = { start_new_vault: {} };
    this.port.postMessage(message);
  }
}

/**
 * The SharedWorker first, and the dedicated-worker fallback when the SharedWorker says it cannot run the engine
 * in this browser (`dedicated_only`, before it starts any engine: WebKit's SharedWorker cannot store the
 * engine's wrapping key, a CryptoKey, in IndexedDB). Until the SharedWorker's first word the page's
 * connections wait here — in the worker they would wait for the engine just the same.
 */
class SharedFirstLink extends BaseLink implements EngineLink {
  private inner: EngineLink | null = null;
  private readonly waiting: Array<(link: EngineLink) => void> = [];

  constructor(scope: StorageScope, worker: SharedWorker) {
    super();
    const shared: SharedLink = new SharedLink(worker, holdLifeline(scope.locks), () => {
      if (this.inner) return;
      rememberDedicated();
      console.info("echo: this browser's SharedWorker cannot run the vault engine; using a dedicated worker");
      const fallback = new FallbackLink(scope);
      this.use(fallback);
      fallback.onStatus((status) => this.setStatus(status));
      fallback.onDisconnect(() => this.disconnected());
    });
    shared.onStatus((status) => {
      this.use(shared);
      if (this.inner === shared) this.setStatus(status);
    });
  }

  get kind(): "shared" | "fallback" {
    return this.inner?.kind ?? "shared";
  }

  private use(link: EngineLink): void {
    if (this.inner) return;
    this.inner = link;
    for (const run of this.waiting.splice(0)) run(link);
  }

  private then<T>(run: (link: EngineLink) => T): T | Promise<T> {
    if (this.inner) return run(this.inner);
    return new Promise<T>((resolve) => this.waiting.push((link) => resolve(run(link))));
  }

  attachApp(origin: string, port: MessagePort): void {
    void this.then((link) => link.attachApp(origin, port));
  }

  attachAdmin(port: MessagePort): void {
    void this.then((link) => link.attachAdmin(port));
  }

  attachNet(port: MessagePort): boolean | Promise<boolean> {
    if (this.inner) return this.inner.attachNet(port);
    return new Promise<boolean>((resolve) => this.waiting.push((link) => resolve(link.attachNet(port))));
  }

  startNewVault(): void {
    void this.then((link) => link.startNewVault());
  }
}

// ---------------------------------------------------------------------------
// Dedicated-worker fallback.

/** One message on the bus: `{to: "leader" | <page id> | "*", conn, data}`. */
interface BusMessage {
  to: string;
  conn: string;
  data: BusData;
}

type BusData =
  | { open: { kind: "app"; origin: string } | { kind: "admin" } } // follower → leader
  | { opened: { leader: string } } // leader → follower
  | { msg: unknown } // either way, one message of the connection
  | { close: Record<string, never> } // either way
  | { leader: string } // leader → all: a new leader took over
  | { leader_gone: string } // leader → all: it is leaving
  | { status_query: string } // follower → leader
  | { status: EngineStatus } // leader → follower / all
  | { start_new_vault: string } // follower → leader: see EngineLink.startNewVault
  | { bye: string }; // follower → leader: the page is leaving

/** A connection of this page, relayed to a leader. */
interface OwnConn {
  kind: { kind: "app"; origin: string } | { kind: "admin" };
  /** The engine's end, held by this page. */
  port: MessagePort;
  /** Messages read from `port` while no leader acknowledged the connection. */
  pending: unknown[];
  /** The leader that acknowledged it (null: not yet). */
  leader: string | null;
}

/**
 * Resolves once this page holds the fallback's leader lock, for the life of the page: the Web Lock, or without
 * Web Locks the same lock over IndexedDB. Null when the page has neither.
 */
function leaderLock(locks: LockManager | null): Promise<void> | null {
  if (locks) {
    return new Promise<void>((resolve, reject) => {
      locks
        .request(LEADER_LOCK, () => {
          resolve();
          // Held for the life of the page.
          return new Promise<never>(() => {});
        })
        .catch(reject);
    });
  }
  return typeof indexedDB === "undefined" ? null : holdIdbLock(indexedDB, LEADER_LOCK);
}

/** How long an iframe shell waits for a top-level page's engine (fallback). */
const NO_LEADER_MS = 2_000;

class FallbackLink extends BaseLink implements EngineLink {
  readonly kind = "fallback";
  private readonly id = crypto.randomUUID();
  private readonly bus: BroadcastChannel | null;
  private worker: Worker | null = null;
  private isLeader = false;
  private nextConn = 1;
  private readonly own = new Map<string, OwnConn>();
  /** As leader: the worker-side ports of connections relayed by other pages. */
  private readonly relayed = new Map<string, MessagePort>();

  constructor(scope: StorageScope) {
    super();
    this.bus = scope.broadcastChannel ? scope.broadcastChannel(BUS_NAME) : null;
    if (this.bus) this.bus.onmessage = (event: MessageEvent) => this.onBus(event.data as BusMessage);
    addEventListener("pagehide", () => this.leave());
    // Back from the back/forward cache: this page's engine worker was ended when it went in (`leave`), and
    // its connections with it; a reload joins (or leads) the vault's engine again.
    addEventListener("pageshow", (event: PageTransitionEvent) => {
      if (event.persisted) location.reload();
    });
    // Only a top-level vault page may run the engine: a dedicated worker
    // started from a cross-site iframe gets the iframe's partitioned
    // storage, i.e. a second, empty vault. An iframe shell follows a
    // leader; with none it refuses with a typed error instead of waiting.
    if (window.top !== window) {
      this.send({ to: "leader", conn: "", data: { status_query: this.id } });
      setTimeout(() => {
        if (this.status === null) this.noLeader();
      }, NO_LEADER_MS);
      return;
    }
    // One top-level page leads at a time: the holder of the leader lock — a Web Lock, or where the browser has
    // none (Safari before 15.4, Firefox before 96) the same lock over IndexedDB (idb-lock.ts). Without either
    // every page would run an engine of its own on the one database, and the last writer would win.
    const lead = leaderLock(scope.locks);
    if (!lead) {
      // No IndexedDB either: the engine cannot open its storage and says so (one engine per page, none working).
      this.becomeLeader();
      return;
    }
    void lead.then(
      () => this.becomeLeader(),
      (error: unknown) => {
        console.error("echo: cannot take the engine leader lock", error);
        this.setStatus({
          engine: "failed",
          error: rpcError(
            "rpc.storage_blocked",
            scope.locks ? "Web Locks are not available to the vault." : "This browser refuses the vault its storage (IndexedDB).",
          ),
        });
      },
    );
    if (this.bus) {
      this.send({ to: "leader", conn: "", data: { status_query: this.id } });
      return;
    }
    // No BroadcastChannel (Safari before 15.4): a page that does not lead cannot reach the leader's engine. It
    // says so, typed, and takes over by itself when the leading page goes (its connections wait for that).
    setTimeout(() => {
      if (this.isLeader || this.status !== null) return;
      this.setStatus({
        engine: "failed",
        error: rpcError(
          "rpc.storage_blocked",
          "Your vault is open in another tab, and this browser cannot share it between tabs. Close the other vault tab: this one takes over.",
        ),
      });
    }, NO_LEADER_MS);
  }

  attachApp(origin: string, port: MessagePort): void {
    this.attach({ kind: "app", origin }, port);
  }

  attachAdmin(port: MessagePort): void {
    this.attach({ kind: "admin" }, port);
  }

  startNewVault(): void {
    if (this.isLeader && this.worker) {
      const message: ControlMessage = { start_new_vault: {} };
      this.worker.postMessage(message);
    } else {
      this.send({ to: "leader", conn: "", data: { start_new_vault: this.id } });
    }
  }

  attachNet(port: MessagePort): boolean {
    // Only the page that runs the dedicated worker reaches it directly.
    if (!this.isLeader || !this.worker) return false;
    const message: ControlMessage = { attach_net: { port } };
    this.worker.postMessage(message, [port]);
    return true;
  }

  private attach(kind: OwnConn["kind"], port: MessagePort): void {
    if (this.isLeader && this.worker) {
      this.post(kind, port);
      return;
    }
    const conn = `${this.id}/${this.nextConn++}`;
    const entry: OwnConn = { kind, port, pending: [], leader: null };
    this.own.set(conn, entry);
    port.onmessage = (event) => {
      if (entry.leader === null) entry.pending.push(event.data);
      else this.send({ to: "leader", conn, data: { msg: event.data } });
    };
    this.send({ to: "leader", conn, data: { open: kind } });
  }

  /** As leader: hands a port to the dedicated worker. */
  private post(kind: OwnConn["kind"], port: MessagePort): void {
    const message: ControlMessage =
      kind.kind === "app" ? { attach: { origin: kind.origin, port } } : { attach_admin: { port } };
    this.worker?.postMessage(message, [port]);
  }

  private send(message: BusMessage): void {
    try {
      this.bus?.postMessage(message);
    } catch (error) {
      console.warn("echo: cannot relay a message", error);
    }
  }

  /** No top-level vault page runs the engine: refuse what waits for one. */
  private noLeader(): void {
    const error = rpcError(
      "rpc.storage_partitioned",
      "This browser cannot share the vault's engine with other sites (it has no SharedWorker). Open your vault in a tab of its own, then reconnect.",
    );
    this.setStatus({ engine: "failed", error });
    for (const [conn, entry] of this.own) {
      if (entry.leader !== null) continue;
      entry.port.postMessage(JSON.stringify({ refused: { error } }));
      entry.port.close();
      this.own.delete(conn);
    }
  }

  private becomeLeader(): void {
    this.isLeader = true;
    const worker = new Worker(ENGINE_URL, { type: "module", name: "echo-engine" });
    this.worker = worker;
    worker.onmessage = (event) => {
      const status = asStatus(event.data);
      if (!status) return;
      this.setStatus(status);
      this.send({ to: "*", conn: "", data: { status } });
    };
    worker.onerror = () => {
      const status: EngineStatus = {
        engine: "failed",
        error: rpcError("rpc.internal", "The vault engine's worker script failed to load."),
      };
      this.setStatus(status);
      this.send({ to: "*", conn: "", data: { status } });
    };
    // Own connections: those a previous leader acknowledged are lost; those
    // nobody acknowledged yet go to our worker, with what they buffered.
    let lost = false;
    for (const [conn, entry] of this.own) {
      this.own.delete(conn);
      if (entry.leader !== null) {
        entry.port.close();
        lost = true;
        continue;
      }
      const channel = new MessageChannel();
      this.post(entry.kind, channel.port2);
      for (const message of entry.pending) channel.port1.postMessage(message);
      entry.port.onmessage = (event) => channel.port1.postMessage(event.data);
      channel.port1.onmessage = (event) => entry.port.postMessage(event.data);
    }
    this.send({ to: "*", conn: "", data: { leader: this.id } });
    if (lost) this.disconnected();
  }

  private onBus(message: BusMessage): void {
    if (typeof message !== "object" || message === null) return;
    const { to, conn, data } = message;
    if (to === "leader") {
      if (this.isLeader) this.onLeaderMessage(conn, data);
      return;
    }
    if (to !== this.id && to !== "*") return;
    if ("status" in data) {
      this.setStatus(data.status);
    } else if ("leader" in data) {
      if (data.leader === this.id) return;
      // A new leader: connections another leader acknowledged are gone; the
      // others are opened again with it.
      this.dropAcknowledged((leader) => leader !== data.leader);
      for (const [id, entry] of this.own) {
        if (entry.leader === null) this.send({ to: "leader", conn: id, data: { open: entry.kind } });
      }
      this.send({ to: "leader", conn: "", data: { status_query: this.id } });
    } else if ("leader_gone" in data) {
      this.dropAcknowledged((leader) => leader === data.leader_gone);
    } else if ("opened" in data) {
      const entry = this.own.get(conn);
      if (!entry || entry.leader !== null) return;
      entry.leader = data.opened.leader;
      for (const pending of entry.pending) this.send({ to: "leader", conn, data: { msg: pending } });
      entry.pending = [];
    } else if ("msg" in data) {
      this.own.get(conn)?.port.postMessage(data.msg);
    } else if ("close" in data) {
      const entry = this.own.get(conn);
      if (entry) {
        entry.port.close();
        this.own.delete(conn);
        this.disconnected();
      }
    }
  }

  private dropAcknowledged(match: (leader: string) => boolean): void {
    let lost = false;
    for (const [id, entry] of this.own) {
      if (entry.leader !== null && match(entry.leader)) {
        entry.port.close();
        this.own.delete(id);
        lost = true;
      }
    }
    if (lost) this.disconnected();
  }

  /** As leader: a message from a follower page. */
  private onLeaderMessage(conn: string, data: BusData): void {
    const page = conn.split("/")[0] ?? "";
    if ("open" in data) {
      if (this.relayed.has(conn)) return;
      const channel = new MessageChannel();
      this.relayed.set(conn, channel.port1);
      channel.port1.onmessage = (event) =>
        this.send({ to: page, conn, data: { msg: event.data } });
      this.post(data.open, channel.port2);
      this.send({ to: page, conn, data: { opened: { leader: this.id } } });
    } else if ("msg" in data) {
      const port = this.relayed.get(conn);
      if (port) port.postMessage(data.msg);
      else this.send({ to: page, conn, data: { close: {} } });
    } else if ("close" in data) {
      this.relayed.get(conn)?.close();
      this.relayed.delete(conn);
    } else if ("bye" in data) {
      for (const [id, port] of this.relayed) {
        if (id.startsWith(`${data.bye}/`)) {
          port.close();
          this.relayed.delete(id);
        }
      }
    } else if ("status_query" in data) {
      if (this.status) this.send({ to: data.status_query, conn: "", data: { status: this.status } });
    } else if ("start_new_vault" in data) {
      this.startNewVault();
    }
  }

  /**
   * The page is going away — or into the back/forward cache, where a browser keeps the page and its
   * dedicated worker suspended: WebKit then releases the page's own Web Locks (the leader lock goes to
   * the next vault page) but not the lock its worker's engine holds ("echo-engine"), so the next leader's
   * engine would wait for it as long as the old page stays cached (measured in WebKitGTK 2.50: an app
   * reopening its vault window, which navigates that window to a new vault page, got `storage_blocked`).
   * A leader therefore ends its worker here, which releases the engine's lock at once.
   */
  private leave(): void {
    if (this.isLeader) {
      this.send({ to: "*", conn: "", data: { leader_gone: this.id } });
      this.worker?.terminate();
      this.worker = null;
    } else {
      this.send({ to: "leader", conn: "", data: { bye: this.id } });
    }
  }
}
