// 6. Disconnect: the vault iframe reloads while calls are pending → every pending call fails with
// rpc.disconnected (none hangs), the client reconnects by itself, a new call works and a live subscription
// keeps delivering.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowInPopup, openProbe, timing, waitState } from "./lib/util.mjs";

const sites = await getSites();
const ITEMS = 200;
const CALLS = 2000;
let browser;
before(async () => {
  browser = await launchRegime("storage-access");
});
after(async () => browser?.close());

test("vault iframe reload: pending calls fail with rpc.disconnected, the client reconnects, calls work", async (t) => {
  const { context } = browser;
  const page = await openProbe(context, sites.probeA, { state: "not_authorized" });
  await allowInPopup(context, page);
  await waitState(page, "connected");
  const S = await page.evaluate(async (n) => {
    const { vault, echo } = window.probe;
    const S = (await vault.spaces.create({ name: "Disconnect" })).id;
    await vault.space(S).batch(Array.from({ length: n }, (_, i) => echo.mutation.create("item", { n: i })));
    window.subIds = null;
    window.resyncs = 0;
    window.sub = await vault.space(S).subscribe(echo.query(echo.where.type("item")), (diff, s) => {
      if (diff.resync) window.resyncs++;
      window.subIds = [...s.ids];
    });
    return S;
  }, ITEMS);
  assert.equal(await page.evaluate(() => window.sub.ids.length), ITEMS);

  // Many calls in flight, then the vault page reloads under them.
  await page.evaluate(({ S, n }) => {
    const { vault, echo, settle } = window.probe;
    window.results = [];
    const q = echo.query(echo.where.type("item"));
    for (let i = 0; i < n; i++) {
      settle(vault.space(S).query(q, { resolve: true })).then((r) => window.results.push(r));
    }
  }, { S, n: CALLS });
  const frame = page.frames().find((f) => f.url().startsWith(`${sites.vault}/vault.html`) && f.parentFrame() === page.mainFrame());
  assert.ok(frame, "the SDK's vault iframe");
  const t0 = Date.now();
  await frame.evaluate(() => location.reload()).catch(() => {}); // the context goes away with the reload
  const settled = await page.waitForFunction((n) => window.results.length === n, CALLS, { timeout: 10000 })
    .then(() => Date.now() - t0, () => null);
  const summary = await page.evaluate(() => {
    const codes = {};
    for (const r of window.results) {
      const k = r.ok ? "ok" : r.code;
      codes[k] = (codes[k] ?? 0) + 1;
    }
    return { codes, n: window.results.length, states: window.probe.states.map((s) => s.state) };
  });
  console.log(`  calls at the reload: ${JSON.stringify(summary.codes)}`);
  assert.notEqual(settled, null, `pending calls hang: ${summary.n}/${CALLS} settled (${JSON.stringify(summary.codes)})`);
  timing(t, `all ${CALLS} calls settled after the reload`, settled);
  for (const code of Object.keys(summary.codes)) assert.ok(code === "ok" || code === "rpc.disconnected", `a call failed with ${code}`);
  assert.ok((summary.codes["rpc.disconnected"] ?? 0) > 0, "some calls were pending at the reload and failed with rpc.disconnected");

  // It reconnects on its own.
  await waitState(page, "connected", 15000);
  timing(t, "reload → connected again", Date.now() - t0);
  const states = await page.evaluate(() => window.probe.states.map((s) => s.state));
  assert.ok(states.slice(2).includes("disconnected"), `the client went through disconnected: ${states}`);
  const after = await page.evaluate(async (S) => {
    const { vault, echo, settle } = window.probe;
    const ping = await settle(vault.ping());
    const count = (await vault.space(S).query(echo.query(echo.where.type("item")))).ids.length;
    const id = await vault.space(S).create("item", { n: -1 });
    return { ping, count, id };
  }, S);
  assert.equal(after.ping.ok, true);
  assert.equal(after.count, ITEMS);
  // The subscription was re-opened and sees the new object.
  await page.waitForFunction((id) => window.subIds?.includes(id), after.id, { timeout: 5000 });
  assert.ok((await page.evaluate(() => window.resyncs)) >= 1, "the subscription resynced after the reconnect");
});
