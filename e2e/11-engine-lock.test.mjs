// 11. One engine per database: while another engine of the vault holds the Web Lock "echo-engine" (say an
// older worker script in another tab), a new engine waits for it — and the app is told so with a typed
// state instead of waiting in silence; once the lock is free, it reconnects to the vault.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { openProbe, timing, waitState } from "./lib/util.mjs";

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
