// 17. A browser without Web Locks (`navigator.locks` undefined: Safari before 15.4, Firefox before 96), in Chromium:
// the vault's pages and its engine workers lose Web Locks —
//   - pages: an init script (vault origin only, every frame) makes `Navigator.prototype.locks` undefined, and the
//     storage-access handle's `locks` too;
//   - workers: `context.route` serves /engine-worker.js with a prefix that makes `WorkerNavigator.prototype.locks`
//     undefined (init scripts do not run in workers). Service workers are blocked in these contexts: the vault's
//     service worker precaches /engine-worker.js and would serve it past the route. The prefix also answers
//     "ask" on BroadcastChannel("e2e-no-web-locks") with what the worker sees, so the test reads it from inside
//     the running SharedWorker / dedicated worker.
// Two cases (docs/browser-vault.md, section 4):
//   (a) SharedWorker, no Web Locks: one SharedWorker runs the engine as usual; the core flows of lib/flows.mjs
//       (connect, consent, create/update/delete, text, reload, a second tab live, revoke) pass.
//   (b) no SharedWorker and no Web Locks: the top-level vault pages elect the one that runs the engine with the
//       same leader lock held over IndexedDB (shell/src/idb-lock.ts) — without it every top-level vault page ran
//       an engine of its own on the one database. Two manage pages: one engine, relayed writes both ways, the
//       other page takes over when the leader closes, with the data; then the same core flows, the app's iframe
//       relaying through a manage page.
//   (b') neither BroadcastChannel (Safari before 15.4 has none of the three): the page that does not lead cannot
//       reach the engine; it says so (rpc.storage_blocked, "open in another tab") within 3 s and runs no engine,
//       and takes over when the leading page closes.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "./lib/browsers.mjs";
import { FLOWS } from "./lib/flows.mjs";
import { getSites } from "./lib/sites.mjs";
import { identity, loaded, setName, showsName } from "./lib/manage.mjs";
import { engineDiagnosis, sleep, timing, until, watchErrors } from "./lib/util.mjs";

const sites = await getSites();
const PROBE_CHANNEL = "e2e-no-web-locks";

/** Vault-origin pages and frames lose Web Locks (and SharedWorker / BroadcastChannel where asked). */
function hidePieces({ vault, sharedWorker, broadcastChannel, channel }) {
  if (location.origin !== vault) return;
  const gone = { configurable: true, get: () => undefined };
  Object.defineProperty(Navigator.prototype, "locks", gone);
  // The test's own channel to the workers' probe, kept even where the vault loses BroadcastChannel.
  const BC = globalThis.BroadcastChannel;
  globalThis.__e2eAskWorkers = (ms) =>
    new Promise((resolve) => {
      const bc = new BC(channel);
      const replies = [];
      bc.onmessage = (event) => replies.push(event.data);
      bc.postMessage("ask");
      setTimeout(() => (bc.close(), resolve(replies)), ms);
    });
  if (!sharedWorker) delete globalThis.SharedWorker;
  if (!broadcastChannel) delete globalThis.BroadcastChannel;
  // The storage-access handle's versions of them (its interface is not a global: reach it through a handle).
  const request = Document.prototype.requestStorageAccess;
  if (typeof request === "function") {
    Document.prototype.requestStorageAccess = async function (...args) {
      const handle = await request.apply(this, args);
      if (handle && typeof handle === "object") {
        const proto = Object.getPrototypeOf(handle);
        Object.defineProperty(proto, "locks", gone);
        if (!sharedWorker) delete proto.SharedWorker;
        if (!broadcastChannel) delete proto.BroadcastChannel;
      }
      return handle;
    };
  }
}

/** Prepended to /engine-worker.js: no Web Locks in the worker, and a probe the test asks over BroadcastChannel. */
const WORKER_PREFIX = `Object.defineProperty(WorkerNavigator.prototype, "locks", { configurable: true, get: () => undefined });
{
  const e2eProbe = new BroadcastChannel(${JSON.stringify(PROBE_CHANNEL)});
  e2eProbe.onmessage = (event) => {
    if (event.data !== "ask") return;
    e2eProbe.postMessage({
      kind: typeof SharedWorkerGlobalScope === "function" && self instanceof SharedWorkerGlobalScope ? "shared" : "dedicated",
      locks: typeof navigator.locks,
    });
  };
}
`;

/** A Chromium (driver of lib/browsers.mjs) whose vault lacks Web Locks and what else `hide` says. */
async function launchWithout({ sharedWorker, broadcastChannel = true }) {
  const routed = { count: 0 };
  const browser = await launch("chromium", "allowed", {
    contextOptions: { serviceWorkers: "block" },
    async setup(context) {
      await context.addInitScript(hidePieces, { vault: sites.vault, sharedWorker, broadcastChannel, channel: PROBE_CHANNEL });
      await context.route(`${sites.vault}/engine-worker.js`, async (route) => {
        // Node cannot resolve *.localhost: the same request to 127.0.0.1, with the site's Host.
        const url = new URL(route.request().url());
        const response = await route.fetch({ url: url.href.replace(url.hostname, "127.0.0.1"), headers: { ...route.request().headers(), host: url.host } });
        routed.count++;
        await route.fulfill({ response, body: WORKER_PREFIX + (await response.text()) });
      });
    },
  });
  return { browser, routed };
}

const isEngine = (w) => new URL(w.url()).pathname === "/engine-worker.js";
/** The dedicated engine workers of each page (their iframes' included). */
const engines = (pages) => pages.map((p) => p.workers().filter(isEngine).length);
/** What the running engine workers see, read from a top-level vault page (sorted). */
const askWorkers = async (page) =>
  (await page.evaluate(() => window.__e2eAskWorkers(500))).map((r) => `${r.kind}:${r.locks}`).sort();

/** A manage page (raw Playwright page, with its errors collected), not waiting for its vault. */
async function openManage(browser) {
  const page = (await browser.newPage()).raw;
  const errors = watchErrors(page);
  await page.goto(`${sites.vault}/manage.html`);
  assert.equal(await page.evaluate(() => typeof navigator.locks), "undefined", "the init script hid Web Locks");
  return { page, errors };
}

/** The core flows (lib/flows.mjs) on `browser`, each a test; the offline one needs service workers (blocked here). */
function coreFlows(label, get) {
  const log = (line) => console.log(`  [${label}] ${line}`);
  const ctx = { sites, window: false, state: {}, log };
  let failed = false;
  for (const flow of FLOWS.filter((f) => !f.name.startsWith("offline"))) {
    test(`${label}: ${flow.name}`, async () => {
      if (failed) throw new Error("an earlier flow failed");
      ctx.browser = get().browser;
      try {
        await flow.run(ctx);
      } catch (e) {
        failed = true;
        throw e;
      }
    });
  }
}

// --- (a) SharedWorker, no Web Locks -------------------------------------------------------------------------

let a = null;
after(async () => a?.browser.close());

test("(a) SharedWorker without Web Locks: neither the pages nor the SharedWorker have them; one SharedWorker runs the engine", async (t) => {
  const t0 = Date.now();
  a = await launchWithout({ sharedWorker: true });
  const m = await openManage(a.browser);
  await loaded(m.page);
  assert.equal(await m.page.evaluate(() => typeof SharedWorker), "function");
  assert.ok(a.routed.count >= 1, "the engine worker's script went through the route");
  assert.deepEqual(await askWorkers(m.page), ["shared:undefined"], "one engine worker, a SharedWorker, without Web Locks");
  assert.deepEqual(engines([m.page]), [0], "no dedicated engine worker");
  assert.equal(await m.page.evaluate(() => sessionStorage.getItem("echo-engine-dedicated-only")), null);
  // Without Web Locks no page can be elected to drive WebRTC (shell/src/net.ts): the vault works without peers.
  assert.equal(await m.page.evaluate(() => document.documentElement.dataset.net ?? null), null);
  assert.deepEqual(m.errors, []);
  await m.page.close();
  timing(t, "(a) manage page up, worker probed", Date.now() - t0);
});

coreFlows("(a) no Web Locks", () => a);

test("(a) after the flows: the app's iframe reached the engine through the storage-access handle without its locks", async () => {
  const m = await openManage(a.browser);
  await loaded(m.page);
  assert.deepEqual(await askWorkers(m.page), ["shared:undefined"], "still one SharedWorker, without Web Locks");
  const app = (await a.browser.newPage(`${sites.probeA}/`)).raw;
  await app.waitForFunction(() => window.probe !== undefined);
  await app.evaluate(() => void window.probe.start({}));
  await app.waitForFunction(() => ["connected", "not_authorized"].includes(window.probe.vault?.state));
  const frame = app.frames().find((f) => f.url().startsWith(`${sites.vault}/vault.html`));
  assert.ok(frame, "the app embeds the vault");
  assert.deepEqual(await frame.evaluate(async () => {
    const handle = await document.requestStorageAccess({ SharedWorker: true, locks: true });
    return [typeof navigator.locks, typeof handle.locks, typeof handle.SharedWorker];
  }), ["undefined", "undefined", "function"]);
  // A closed tab's connections: without Web Locks no lifeline lock tells the engine the page is gone. Measured,
  // not asserted: what the SharedWorker still holds 10 s after the app's tab closed (the engine also listens for
  // the port's `close` event; Chromium 156 did not fire it here). What ends them is the engine's idle expiry
  // (180 s, swept every 30 s: sim/tests/hostile_apps.rs, idle_connections_expire_and_live_ones_stay).
  const before = await connections(m.page);
  const t0 = Date.now();
  await app.close();
  const later = await until(async () => {
    const n = await connections(m.page);
    return n < before ? { n } : null;
  }, { timeoutMs: 10000, what: "the closed tab's connection to be dropped" }).then((r) => r.n, () => null);
  console.log(`  [(a) no Web Locks] connections before/after the app's tab closed: ${before} → ${later ?? "unchanged after 10 s"}${later !== null ? ` in ${Date.now() - t0} ms` : ""}`);
  await m.page.close();
  await a.browser.close();
  a = null;
});

/** How many connections the SharedWorker's engine holds. */
const connections = async (page) => (await engineDiagnosis(page)).connections;

// --- (b) no SharedWorker, no Web Locks ----------------------------------------------------------------------

let b = null;
after(async () => b?.browser.close());

test("(b) no SharedWorker, no Web Locks: two manage pages run one engine (leader lock over IndexedDB), relay both ways, the other takes over", async (t) => {
  const t0 = Date.now();
  b = await launchWithout({ sharedWorker: false });
  const p = await openManage(b.browser);
  const q = await openManage(b.browser);
  assert.equal(await p.page.evaluate(() => typeof SharedWorker), "undefined");
  await loaded(p.page);
  await loaded(q.page);
  // One engine: a dedicated worker in one page only (without the election, each page ran its own).
  await until(() => engines([p.page, q.page]).join() === "1,0", { timeoutMs: 5000, what: "one engine worker, in the first page" })
    .catch((e) => assert.fail(`${e.message}; engine workers per page: ${engines([p.page, q.page]).join()}`));
  await sleep(500);
  assert.deepEqual(engines([p.page, q.page]), [1, 0], "still one engine worker");
  assert.ok(b.routed.count >= 1, "the engine worker's script went through the route");
  const [worker] = p.page.workers().filter(isEngine);
  assert.equal(await worker.evaluate(() => typeof navigator.locks), "undefined", "the dedicated engine worker has no Web Locks");
  assert.deepEqual(await askWorkers(q.page), ["dedicated:undefined"], "one engine worker in all, without Web Locks");
  const idP = await identity(p.page);
  assert.deepEqual(await identity(q.page), idP, "both pages read the same vault");

  await setName(q.page, "Relayed name");
  await showsName(p.page, "Relayed name");
  await setName(p.page, "Leader name");
  await showsName(q.page, "Leader name");
  timing(t, "(b) two pages: one engine, relayed writes both ways", Date.now() - t0);

  // The leader closes: its IndexedDB lock connection closes with it, and q leads with its own engine.
  const t1 = Date.now();
  await p.page.close();
  await until(() => engines([q.page]).join() === "1", { timeoutMs: 10000, what: "the second page to start its engine" });
  await loaded(q.page);
  await showsName(q.page, "Leader name");
  assert.equal((await identity(q.page))["Identity key"], idP["Identity key"], "the same vault after the takeover");
  await setName(q.page, "After takeover");
  assert.deepEqual(await askWorkers(q.page), ["dedicated:undefined"], "one engine worker after the takeover");
  timing(t, "(b) takeover: the second page leads, reads and writes", Date.now() - t1);

  const r = await openManage(b.browser);
  await showsName(r.page, "After takeover");
  assert.deepEqual(engines([q.page, r.page]), [1, 0]);
  for (const { errors } of [p, q, r]) assert.deepEqual(errors, []);
  await r.page.close();
  // q stays open: the app's iframe in the flows relays through it (an iframe never runs the engine).
  b.leader = q.page;
});

coreFlows("(b) no SharedWorker, no Web Locks", () => b);

test("(b) after the flows: still one engine, the leading manage page's", async () => {
  const pages = b.leader.context().pages();
  assert.equal(engines(pages).reduce((x, y) => x + y, 0), 1, `engine workers per page: ${engines(pages).join()}`);
  assert.deepEqual(await askWorkers(b.leader), ["dedicated:undefined"]);
  await b.browser.close();
  b = null;
});

// --- (b') no SharedWorker, no Web Locks, no BroadcastChannel ---------------------------------------------------

test("(b') no BroadcastChannel either: the second page runs no engine and says why, typed; it takes over when the first closes", async (t) => {
  const t0 = Date.now();
  const { browser } = await launchWithout({ sharedWorker: false, broadcastChannel: false });
  try {
    const p = await openManage(browser);
    await loaded(p.page);
    assert.equal(await p.page.evaluate(() => typeof BroadcastChannel), "undefined");
    const idP = await identity(p.page);
    const t1 = Date.now();
    const q = await openManage(browser);
    const banner = await until(() => q.page.evaluate(() => {
      const text = document.getElementById("banner")?.textContent ?? "";
      return /another tab/.test(text) && text;
    }), { timeoutMs: 3000, what: "the second page to say the vault is open in another tab" })
      .catch((e) => assert.fail(`${e.message}; engine workers per page: ${engines([p.page, q.page]).join()}`));
    timing(t, "(b') second page opened → its typed refusal", Date.now() - t1);
    assert.match(banner, /rpc\.storage_blocked/);
    assert.deepEqual(engines([p.page, q.page]), [1, 0], "no second engine");
    const t2 = Date.now();
    await p.page.close();
    await loaded(q.page);
    timing(t, "(b') first page closed → the second page's vault loaded", Date.now() - t2);
    assert.deepEqual(engines([q.page]), [1]);
    assert.equal((await identity(q.page))["Identity key"], idP["Identity key"], "the same vault");
    assert.deepEqual([...p.errors, ...q.errors], []);
  } finally {
    await browser.close();
  }
});
