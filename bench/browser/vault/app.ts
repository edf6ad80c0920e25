// App side of the vault's own browser benchmarks (bench/browser/vault.mjs):
// the RPC round trip beside its two floors, creates until durable, and
// reload → first query. Built on client/ like any app.
import { connect, query, where, mutation, type Vault, type Space } from "@echo/client";
import { makeObject } from "../src/data.js";

declare const __VAULT_URL__: string;

type Obj = ReturnType<typeof makeObject>;

function fields(o: Obj) {
  return { title: o.title, done: o.done, priority: o.priority, tags: o.tags, ref: o.ref };
}

let vault: Vault | undefined;
let floor: HTMLIFrameElement | undefined;
let floorPort: MessagePort | undefined;

function need(): Vault {
  if (!vault) throw new Error("bench.start() first");
  return vault;
}

/** Per-call latencies of `n` sequential calls, and the time of the whole batch. */
async function sequential(n: number, call: () => Promise<unknown>) {
  const samples = new Float64Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await call();
    samples[i] = performance.now() - s;
  }
  const total = performance.now() - t0;
  return { samples: Array.from(samples), total, n };
}

function floorFrame(): Promise<HTMLIFrameElement> {
  if (floor) return Promise.resolve(floor);
  return new Promise((resolve, reject) => {
    // Never wait forever: a vault site that refuses to be framed here
    // (only its shell is framable unless told otherwise) never answers.
    const timer = setTimeout(() => reject(new Error("the floor page did not load in its iframe within 10 s (is /bench-floor.html framable on the vault site?)")), 10_000);
    const f = document.createElement("iframe");
    f.src = `${__VAULT_URL__}/bench-floor.html`;
    f.style.display = "none";
    addEventListener("message", function ready(e) {
      if (e.source === f.contentWindow && e.data?.floor === "ready") {
        removeEventListener("message", ready);
        clearTimeout(timer);
        floor = f;
        resolve(f);
      }
    });
    document.body.append(f);
  });
}

const bench = {
  start(options: { callTimeoutMs?: number } = {}) {
    vault = connect({ vaultUrl: __VAULT_URL__, clientName: "echo-bench", callTimeoutMs: options.callTimeoutMs ?? 600_000 });
    document.getElementById("ask")?.addEventListener("click", () => {
      need()
        .requestAccess({ appName: "ECHO bench" })
        .then((r) => ((window as unknown as { access: unknown }).access = r));
    });
  },
  state: () => vault?.state,
  /** Resolves once connected, with the time (ms since navigation start). */
  async whenConnected() {
    await need().whenConnected();
    return performance.now();
  },
  /** The bench space, created on first use (property `bench`). */
  async space(name: string): Promise<string> {
    const v = need();
    const found = (await v.spaces.list()).find((s) => s.properties.bench === name);
    if (found) return found.id;
    return (await v.spaces.create({ bench: name })).id;
  },
  async noop(n: number) {
    const v = need();
    return sequential(n, () => v.ping());
  },
  /** Floor (a): a bare MessagePort echo with a SharedWorker of the vault origin. */
  async floorPort(n: number) {
    const f = await floorFrame();
    if (!floorPort) {
      floorPort = await new Promise<MessagePort>((resolve) => {
        addEventListener("message", function got(e) {
          if (e.source === f.contentWindow && e.data?.floor === "port") {
            removeEventListener("message", got);
            resolve(e.ports[0]);
          }
        });
        f.contentWindow!.postMessage({ floor: "port" }, __VAULT_URL__);
      });
    }
    const port = floorPort;
    let answer: (() => void) | undefined;
    port.onmessage = () => answer?.();
    const message = JSON.stringify({ request: { id: 1, method: { ping: {} } } });
    return sequential(n, () => new Promise<void>((r) => { answer = r; port.postMessage(message); }));
  },
  /** Floor (b): a bare window.postMessage echo with the cross-site iframe. */
  async floorWindow(n: number) {
    const f = await floorFrame();
    let answer: (() => void) | undefined;
    addEventListener("message", (e) => {
      if (e.source === f.contentWindow && e.data?.floor === "echo") answer?.();
    });
    return sequential(n, () => new Promise<void>((r) => { answer = r; f.contentWindow!.postMessage({ floor: "echo", id: 1 }, __VAULT_URL__); }));
  },
  /** n creates issued one by one without waiting, until every one is acknowledged (= durable). */
  async createOneByOne(spaceId: string, n: number, offset = 0) {
    const space: Space = need().space(spaceId);
    const t0 = performance.now();
    const all: Promise<string>[] = [];
    for (let i = 0; i < n; i++) {
      const o = makeObject(offset + i, n);
      all.push(space.create(o.type, fields(o)));
    }
    const issued = performance.now() - t0;
    await Promise.all(all);
    return { ms: performance.now() - t0, issued };
  },
  /** n creates in object.batch calls of `size`, issued without waiting, until all are acknowledged. */
  async createBatches(spaceId: string, n: number, size: number, offset = 0, sequentially = false) {
    const space: Space = need().space(spaceId);
    const t0 = performance.now();
    const all: Promise<unknown>[] = [];
    for (let start = 0; start < n; start += size) {
      const ms = [];
      for (let i = start; i < Math.min(n, start + size); i++) {
        const o = makeObject(offset + i, n);
        ms.push(mutation.create(o.type, fields(o)));
      }
      const p = space.batch(ms);
      if (sequentially) await p;
      all.push(p);
    }
    await Promise.all(all);
    return { ms: performance.now() - t0 };
  },
  async count(spaceId: string, type?: string) {
    const space = need().space(spaceId);
    const r = await space.query(query(type ? where.type(type) : where.all()));
    return r.ids.length;
  },
  /** Workload 2's query; the time is ms since this page's navigation started. */
  async firstQuery(spaceId: string) {
    const space = need().space(spaceId);
    const r = await space.query(query(where.and(where.type("task"), where.eq("done", false)), { limit: 1 }));
    return { at: performance.now(), found: r.ids.length };
  },
  async matches(spaceId: string) {
    const space = need().space(spaceId);
    const r = await space.query(query(where.and(where.type("task"), where.eq("done", false))));
    return r.ids.length;
  },
};

(window as unknown as { bench: typeof bench }).bench = bench;
