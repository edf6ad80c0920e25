// 11. One engine per database: while another engine of the vault holds the Web Lock "echo-engine" (say an
// older worker script in another tab), a new engine waits for it — and the app is told so with a typed
// state instead of waiting in silence; once the lock is free, it reconnects to the vault.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { readFile } from "node:fs/promises";
import { allowInPopup, openProbe, sleep, timing, until, waitState } from "./lib/util.mjs";

const sites = await getSites();
let browser;

before(async () => {
  browser = await launchRegime("storage-access");
});
after(async () => browser?.close());

test("an engine whose lock is held elsewhere: the app gets storage_blocked (no silent wait); after the lock frees, it connects", async (t) => {
  const { context } = browser;
  // A vault-origin page that does not start the engine takes the lock, as another engine would.
  const holder = await context.newPage();
  await holder.goto(`${sites.vault}/index.html`);
  await holder.evaluate(() => new Promise((held) => {
    navigator.locks.request("echo-engine", () => {
      held();
      return new Promise((release) => { window.releaseEngineLock = release; });
    });
  }));

  const t0 = Date.now();
  const app = await openProbe(context, sites.probeA);
  const state = await waitState(app, ["storage_blocked", "connected", "not_authorized"], 15000);
  const ms = Date.now() - t0;
  timing(t, "lock held elsewhere → app state", ms);
  assert.equal(state, "storage_blocked");
  const r = await app.evaluate(async () => {
    const p = window.probe;
    const call = await p.settle(p.vault.ping());
    return { code: p.vault.lastError?.code, message: p.vault.lastError?.message, call };
  });
  assert.equal(r.code, "rpc.storage_blocked");
  assert.match(r.message, /Close other vault tabs/);
  assert.equal(r.call.ok, false, "calls fail at once while refused");

  // The other engine goes away: the waiting engine takes the lock and starts; a reconnect reaches it.
  await holder.evaluate(() => window.releaseEngineLock());
  const t1 = Date.now();
  let now = null;
  for (let i = 0; i < 20 && now !== "connected" && now !== "not_authorized"; i++) {
    await app.evaluate(() => window.probe.vault.reconnect());
    now = await waitState(app, ["connected", "not_authorized", "storage_blocked"], 10000).catch(() => null);
    if (now === "storage_blocked") await new Promise((res) => setTimeout(res, 500));
  }
  timing(t, "lock freed → app reconnected", Date.now() - t1);
  assert.ok(now === "connected" || now === "not_authorized", `state after the lock was freed: ${now}`);
  const ping = await app.evaluate(async () => window.probe.settle(window.probe.vault.ping()));
  assert.equal(ping.ok, true);
  await app.close();
  await holder.close();
});

test("a vault that cannot start says why, and its manage page saves everything it stored to a file", async (t) => {
  const { context } = browser;
  // A vault with data.
  const app = await openProbe(context, sites.probeA, { state: ["not_authorized", "connected"] });
  if ((await app.evaluate(() => window.probe.vault.state)) !== "connected") await allowInPopup(context, app);
  await waitState(app, "connected");
  const { S, ids } = await app.evaluate(async () => {
    const { vault } = window.probe;
    const S = (await vault.spaces.create({ name: "Saved raw" })).id;
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await vault.space(S).create("item", { n: i }));
    return { S, ids };
  });
  await app.close();
  // Every page gone, the engine's worker ends; another engine takes the lock, so this vault cannot start.
  for (const p of context.pages()) await p.close();
  const holder = await context.newPage();
  await holder.goto(`${sites.vault}/index.html`);
  await until(
    () => holder.evaluate(() => navigator.locks.query().then((q) => q.held.length === 0 && q.pending.length === 0)),
    { timeoutMs: 10000, what: "the old engine's lock to go" },
  );
  await holder.evaluate(() => new Promise((held) => {
    navigator.locks.request("echo-engine", () => {
      held();
      return new Promise((release) => { window.releaseEngineLock = release; });
    });
  }));
  const manage = await context.newPage();
  const t0 = Date.now();
  await manage.goto(`${sites.vault}/manage.html`);
  await manage.waitForSelector("#raw-export", { timeout: 15000 }).catch(async (e) => {
    throw new Error(`${e.message}; banner: ${await manage.locator("#banner").textContent()}; hidden: ${await manage.locator("#banner").isHidden()}`);
  });
  timing(t, "manage page → the way out offered", Date.now() - t0);
  assert.match(await manage.locator("#banner").textContent(), /Close other vault tabs/, "the banner says why, in words a person can act on");
  const downloadP = manage.waitForEvent("download", { timeout: 10000 });
  await manage.click("#raw-export");
  const download = await downloadP;
  const raw = JSON.parse(await readFile(await download.path(), "utf8"));
  assert.equal(raw.format, "echo-vault-raw-1");
  const keys = raw.entries.map((e) => e.key);
  assert.ok(keys.some((k) => k.startsWith("vault/")), `the vault's records: ${keys.slice(0, 5)}`);
  assert.ok(keys.some((k) => k.startsWith(`space/${S}/`)), "the space's data");
  const bytes = raw.entries.reduce((n, e) => n + Buffer.from(e.bytes, "base64").length, 0);
  console.log(`  [probe] vault that cannot start: the manage page saved ${raw.entries.length} entries (${bytes} bytes), space ${S} with ${ids.length} objects among them`);
  await manage.waitForFunction(() => /Saved \d+ entries/.test(document.getElementById("raw-export-status")?.textContent ?? ""), null, { timeout: 5000 });
  await holder.evaluate(() => window.releaseEngineLock());
  await sleep(200);
  await manage.close();
  await holder.close();
});
