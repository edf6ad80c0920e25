// 10. The dedicated-worker fallback (docs/browser-vault.md, section 4): every vault-origin page (top-level and
// iframe) runs without SharedWorker — an init script deletes `SharedWorker` and the storage-access handle's
// `SharedWorker` before the page's scripts run, only on the vault origin. Then:
//   - two manage pages: one engine runs (one dedicated engine worker, the Web Locks "echo-engine-leader" and
//     "echo-engine" held once), a write through either page shows in the other, and when the leader page
//     closes the other takes over (its own engine worker) and reads and writes the same data;
//   - the probe app's iframe relays through a manage page: its acknowledged objects show on the manage pages;
//     when the leader closes, a second manage page takes over, the app reconnects and reads all of them and
//     writes more;
//   - with no top-level vault page left, the app's iframe does not run an engine of its own (it would get the
//     iframe's partitioned storage: a second, empty vault): the app gets storage_partitioned, typed, within 5 s;
//     once a vault page is open again, it reconnects to the same vault and all its data.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { identity, loaded, setName, showsName } from "./lib/manage.mjs";
import { allowInPopup, openProbe, timing, until, waitState, watchErrors } from "./lib/util.mjs";

const sites = await getSites();
let browser;

before(async () => {
  browser = await launchRegime("storage-access");
  await browser.context.addInitScript((vault) => {
    if (location.origin !== vault) return;
    delete globalThis.SharedWorker;
    // The storage-access handle's SharedWorker too (its interface is not a global: reach it through a handle).
    const request = Document.prototype.requestStorageAccess;
    if (typeof request === "function") {
      Document.prototype.requestStorageAccess = async function (...args) {
        const handle = await request.apply(this, args);
        if (handle && typeof handle === "object") delete Object.getPrototypeOf(handle).SharedWorker;
        return handle;
      };
    }
  }, sites.vault);
});
after(async () => browser?.close());

const isEngine = (w) => new URL(w.url()).pathname === "/engine-worker.js";
/** The engine workers of each page (dedicated workers are listed per page, their iframes' included). */
const engines = (pages) => pages.map((p) => p.workers().filter(isEngine).length);

/** The Web Locks of the vault's first-party storage as a top-level vault page sees them. */
const locks = (page) => page.evaluate(async () => {
  const q = await navigator.locks.query();
  const count = (list, name) => list.filter((l) => l.name === name).length;
  return {
    leaderHeld: count(q.held, "echo-engine-leader"),
    leaderPending: count(q.pending, "echo-engine-leader"),
    engineHeld: count(q.held, "echo-engine"),
  };
});

async function openManage(context) {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${sites.vault}/manage.html`);
  assert.equal(await page.evaluate(() => typeof globalThis.SharedWorker), "undefined", "the init script removed SharedWorker");
  await loaded(page);
  return { page, errors };
}

test("two manage pages without SharedWorker: one engine, the same data, the other page takes over", async (t) => {
  const t0 = Date.now();
  const { context } = browser;
  const a = await openManage(context);
  const b = await openManage(context);
  // One engine: a (first) leads with a dedicated worker, b relays.
  await until(() => engines([a.page, b.page]).join() === "1,0", { timeoutMs: 5000, what: "one engine worker, in the first page" });
  assert.deepEqual(await locks(b.page), { leaderHeld: 1, leaderPending: 1, engineHeld: 1 });
  const idA = await identity(a.page);
  assert.deepEqual(await identity(b.page), idA, "both pages read the same vault");
  assert.match(idA["Identity key"], /\S{16,}/);

  // A write through the relay shows in the leader page (its changed event), and the other way round.
  await setName(b.page, "Relayed name");
  await showsName(a.page, "Relayed name");
  await setName(a.page, "Leader name");
  await showsName(b.page, "Leader name");
  timing(t, "two pages: relayed writes both ways", Date.now() - t0);

  // The leader page closes: b takes over with its own engine on the same storage.
  const t1 = Date.now();
  await a.page.close();
  await until(() => engines([b.page]).join() === "1", { timeoutMs: 10000, what: "the second page to start its engine" });
  await loaded(b.page);
  await until(async () => JSON.stringify(await locks(b.page)) === JSON.stringify({ leaderHeld: 1, leaderPending: 0, engineHeld: 1 }), {
    timeoutMs: 5000, what: "b holding both locks",
  });
  await showsName(b.page, "Leader name");
  const idB = await identity(b.page);
  assert.equal(idB["Identity key"], idA["Identity key"], "the same vault after the takeover");
  assert.equal(idB.Name, "Leader name", "the last acknowledged write survived the takeover");
  await setName(b.page, "After takeover");
  timing(t, "takeover: the second page leads, reads and writes", Date.now() - t1);

  // A new page relays to the new leader and sees it.
  const c = await openManage(context);
  await showsName(c.page, "After takeover");
  assert.deepEqual(engines([b.page, c.page]), [1, 0]);
  assert.deepEqual(await locks(c.page), { leaderHeld: 1, leaderPending: 1, engineHeld: 1 });
  for (const { errors } of [a, b, c]) assert.deepEqual(errors, []);
  await b.page.close();
  await c.page.close();
  timing(t, "two manage pages test", Date.now() - t0);
});

test("the probe app relays through manage pages without SharedWorker; when the leader closes another manage page takes over and the app has all its data", async (t) => {
  const t0 = Date.now();
  const { context } = browser;
  const m1 = await openManage(context);
  const m2 = await openManage(context); // asks for the leader lock before the app's iframe: the next leader
  await until(() => engines([m1.page, m2.page]).join() === "1,0", { timeoutMs: 5000, what: "one engine, in the first manage page" });
  const vaultKey = (await identity(m1.page))["Identity key"];

  const app = await openProbe(context, sites.probeA, { state: ["not_authorized", "connected"] });
  if ((await app.evaluate(() => window.probe.vault.state)) !== "connected") await allowInPopup(context, app);
  await waitState(app, "connected");
  const frame = app.frames().find((f) => f.url().startsWith(`${sites.vault}/vault.html`));
  assert.ok(frame, "the app embeds the vault");
  assert.equal(await frame.evaluate(() => typeof globalThis.SharedWorker), "undefined");
  assert.equal(await frame.evaluate(async () => typeof (await document.requestStorageAccess({ SharedWorker: true })).SharedWorker), "undefined",
    "the storage-access handle has no SharedWorker either");
  assert.deepEqual(engines([m1.page, m2.page, app]), [1, 0, 0], "one engine: the first manage page's");
  assert.deepEqual(await locks(m2.page), { leaderHeld: 1, leaderPending: 1, engineHeld: 1 },
    "the second manage page waits for the lead; the app's iframe never asks for it (it may not run the engine)");

  const S = await app.evaluate(async () => (await window.probe.vault.spaces.create({ name: "Relayed space" })).id);
  const first = await app.evaluate(async (S) => {
    window.probe.acked.length = 0;
    await window.probe.writeMany(S, "item", 30, 0);
    return [...window.probe.acked];
  }, S);
  assert.equal(first.length, 30);
  for (const m of [m1, m2]) await m.page.locator("#spaces", { hasText: "Relayed space" }).waitFor({ timeout: 10000 });
  timing(t, "app relayed through the leader page: space + 30 writes", Date.now() - t0);

  // The leader closes: m2 leads; the app's relayed connection drops and the SDK reconnects (relaying to m2).
  const t1 = Date.now();
  const seen = await app.evaluate(() => window.probe.states.length);
  await m1.page.close();
  const states = await until(() => app.evaluate((from) => {
    const later = window.probe.states.slice(from).map((s) => s.state);
    const i = later.indexOf("disconnected");
    return i >= 0 && later.slice(i + 1).some((s) => s !== "connecting") ? later : null;
  }, seen), { timeoutMs: 15000, what: "the app to reconnect after the leader left" });
  assert.equal(await app.evaluate(() => window.probe.vault.state), "connected", `states after the leader left: ${states.join(" → ")}`);
  await until(() => engines([m2.page, app]).join() === "1,0", { timeoutMs: 5000, what: "the second manage page's engine" });
  const read = () => app.evaluate(async (S) => {
    const { vault, echo, settle } = window.probe;
    const r = await settle(vault.space(S).query(echo.query(echo.where.type("item"))));
    return r.ok ? { ok: true, ids: r.value.ids } : r;
  }, S);
  const got = await read();
  assert.equal(got.ok, true, `read after the takeover: ${JSON.stringify(got)}`);
  const present = new Set(got.ids);
  assert.deepEqual(first.filter((id) => !present.has(id)), [], "acknowledged objects missing after the takeover");
  const more = await app.evaluate(async (S) => {
    window.probe.acked.length = 0;
    await window.probe.writeMany(S, "item", 10, 30);
    return [...window.probe.acked];
  }, S);
  assert.equal(more.length, 10, "writes work after the takeover");
  assert.equal((await identity(m2.page))["Identity key"], vaultKey, "the same vault");
  const all = await read();
  assert.deepEqual(new Set(all.ids), new Set([...first, ...more]), "exactly the 40 acknowledged objects");
  timing(t, "takeover by the second manage page: reconnect, read, 10 writes", Date.now() - t1);
  assert.deepEqual([...m1.errors, ...m2.errors], []);
  await app.close();
  await m2.page.close();
  timing(t, "relay + takeover test", Date.now() - t0);
});

test("without SharedWorker and no top-level vault page, the app gets a typed state (no second vault); with the vault open again, all its data", async (t) => {
  const t0 = Date.now();
  const { context } = browser;
  const m = await openManage(context);
  await until(() => engines([m.page]).join() === "1", { timeoutMs: 5000, what: "the manage page's engine" });
  const vaultKey = (await identity(m.page))["Identity key"];

  const app = await openProbe(context, sites.probeA, { state: ["not_authorized", "connected"] });
  if ((await app.evaluate(() => window.probe.vault.state)) !== "connected") await allowInPopup(context, app);
  await waitState(app, "connected");
  // The app's vault iframe has no SharedWorker either, and relays (no engine of its own).
  const frame = app.frames().find((f) => f.url().startsWith(`${sites.vault}/vault.html`));
  assert.ok(frame, "the app embeds the vault");
  assert.equal(await frame.evaluate(() => typeof globalThis.SharedWorker), "undefined");
  assert.equal(await frame.evaluate(async () => typeof (await document.requestStorageAccess({ SharedWorker: true })).SharedWorker), "undefined");
  assert.deepEqual(engines([m.page, app]), [1, 0], "one engine: the manage page's");

  const S = await app.evaluate(async () => (await window.probe.vault.spaces.create({ name: "Fallback space" })).id);
  const first = await app.evaluate(async (S) => {
    await window.probe.writeMany(S, "item", 30, 0);
    return [...window.probe.acked];
  }, S);
  assert.equal(first.length, 30);
  // The manage page (the leader's engine) lists the space the app made.
  await m.page.locator("#spaces", { hasText: "Fallback space" }).waitFor({ timeout: 10000 });
  timing(t, "app relayed through the manage page: space + 30 writes", Date.now() - t0);

  // The leader leaves: the app's relayed connection drops, the iframe takes the lead and the SDK reconnects.
  const t1 = Date.now();
  const seen = await app.evaluate(() => window.probe.states.length);
  await m.page.close();
  // The iframe shell never runs the engine itself (its dedicated worker would
  // get the iframe's partitioned storage: a second, empty vault): the app is
  // told, typed and within 5 s, instead of silently switching vaults.
  const settled = await until(() => app.evaluate((from) => {
    const later = window.probe.states.slice(from).map((s) => s.state);
    return later.includes("storage_partitioned") ? later : null;
  }, seen), { timeoutMs: 5000 + 3000, what: "the app to learn that no engine is reachable" });
  timing(t, "leader left → app state storage_partitioned", Date.now() - t1);
  assert.ok(!settled.includes("connected"), `states after the leader left: ${settled.join(" → ")}`);
  assert.equal(await app.evaluate(() => window.probe.vault.lastError?.code), "rpc.storage_partitioned");
  assert.deepEqual(engines([app]), [0], "no engine in the app's vault iframe");

  // The user opens the vault again: the app reconnects to the same vault and its data.
  const t2 = Date.now();
  const m2 = await openManage(context);
  assert.equal((await identity(m2.page))["Identity key"], vaultKey, "the same vault");
  await app.evaluate(() => window.probe.vault.reconnect());
  await waitState(app, "connected");
  const read = () => app.evaluate(async (S) => {
    const { vault, echo, settle } = window.probe;
    const r = await settle(vault.space(S).query(echo.query(echo.where.type("item"))));
    return r.ok ? { ok: true, ids: r.value.ids } : r;
  }, S);
  const got = await read();
  assert.equal(got.ok, true, `read after the vault came back: ${JSON.stringify(got)}`);
  const present = new Set(got.ids);
  assert.deepEqual(first.filter((id) => !present.has(id)), [], "acknowledged objects missing");
  const more = await app.evaluate(async (S) => {
    window.probe.acked.length = 0;
    await window.probe.writeMany(S, "item", 10, 30);
    return [...window.probe.acked];
  }, S);
  assert.equal(more.length, 10, "writes work again");
  const all = await read();
  assert.equal(new Set(all.ids).size, 40);
  assert.equal(engines([m2.page, app]).reduce((a, b) => a + b, 0), 1, "one engine: the manage page's");
  timing(t, "vault open again: reconnect, read, 10 writes", Date.now() - t2);
  await m2.page.close();
  await app.close();
  timing(t, "probe flow test", Date.now() - t0);
});
