// 4. Storage regimes without first-party vault storage: third-party storage blocked → the app's state is
// storage_blocked; partitioned (no storage access) → storage_partitioned; each within 5 s of opening the page,
// no hang, and calls then fail at once with that error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowInPopup, openProbe, timing, waitState } from "./lib/util.mjs";

const sites = await getSites();

for (const [regime, expected] of [["blocked", "storage_blocked"], ["partitioned", "storage_partitioned"]]) {
  test(`${regime} regime: the app's state becomes ${expected} within 5 s`, async (t) => {
    const browser = await launchRegime(regime);
    try {
      const { context } = browser;
      // The demo app: its banner shows the state and offers "Try again".
      const page = await context.newPage();
      const t0 = Date.now();
      await page.goto(`${sites.demo}/`);
      await page.waitForFunction((s) => document.querySelector("[data-testid=state]")?.dataset.state === s, expected, { timeout: 8000 });
      const ms = Date.now() - t0;
      timing(t, `${regime}: demo app ${expected} after`, ms);
      assert.ok(ms < 5000, `${expected} after ${ms} ms (limit 5000 ms)`);
      assert.equal(await page.getByTestId("retry").isVisible(), true, "the Try again button shows");
      assert.equal(await page.getByTestId("connect").isVisible(), false, "no Connect button in a storage state");

      // The SDK itself (probe app): the state, measured in the page from connect(); calls fail at once.
      const probe = await openProbe(context, sites.probeA);
      await waitState(probe, expected, 8000);
      const r = await probe.evaluate(async () => {
        const p = window.probe;
        const first = p.states[0].at;
        const reached = p.states.find((s) => s.state !== "connecting").at;
        const call = await p.settle(p.vault.spaces.list());
        const ping = await p.settle(p.vault.ping());
        return { ms: reached - first, states: p.states.map((s) => s.state), call, ping, lastError: p.vault.lastError?.code };
      });
      timing(t, `${regime}: SDK ${expected} after`, r.ms);
      assert.ok(r.ms < 5000, `SDK state after ${r.ms} ms`);
      assert.deepEqual(r.states, ["connecting", expected], "no other state on the way");
      // The shell's own answer to a hand-made connect: refused with that state, no port, within 5 s.
      const raw = await probe.evaluate(async () => {
        const conn = await window.probe.raw();
        return conn.connect({}, 8000);
      });
      assert.equal(raw?.echo, "refused", `shell answer: ${JSON.stringify(raw)}`);
      assert.equal(raw.state, expected);
      assert.equal(raw.error?.code, `rpc.${expected}`);
      assert.equal(raw.ports, 0, "no port when refused");
      assert.ok(raw.sinceCreated < 5000, `the shell answered ${raw.sinceCreated} ms after its iframe was created`);
      timing(t, `${regime}: shell refused a raw connect (from iframe creation)`, raw.sinceCreated);
      const code = `rpc.${expected}`;
      assert.equal(r.lastError, code);
      for (const c of [r.call, r.ping]) {
        assert.equal(c.ok, false);
        assert.equal(c.code, code);
        assert.ok(c.ms < 500, `a call failed after ${c.ms} ms, not at once`);
      }
    } finally {
      await browser.close();
    }
  });
}

// Found by the 100-kill run on a loaded machine: when `requestStorageAccess` answered late, the vault's iframe took
// its own (partitioned) storage and started a second, empty vault — the app, already allowed, was suddenly
// "not allowed". A late answer is now waited for (5 s), and no answer is a typed refusal, never a second vault.
test("a slow storage-access answer never opens a second, empty vault", async (t) => {
  const browser = await launchRegime("storage-access");
  try {
    const { context } = browser;
    const app = await openProbe(context, sites.probeA, { state: "not_authorized" });
    await allowInPopup(context, app);
    await waitState(app, "connected");
    await app.close();
    // Every later vault frame: requestStorageAccess answers after window.__rsaDelay ms (as a loaded browser
    // might); the init scripts setting it run in order, the last one added wins.
    await context.addInitScript(() => {
      if (location.pathname !== "/vault.html") return;
      const original = Document.prototype.requestStorageAccess;
      Document.prototype.requestStorageAccess = function (types) {
        const answer = original.call(this, types);
        return new Promise((resolve, reject) => setTimeout(() => answer.then(resolve, reject), window.__rsaDelay ?? 0));
      };
    });
    for (const [delay, expected] of [[2000, "connected"], [7000, "storage_partitioned"]]) {
      await context.addInitScript((d) => { window.__rsaDelay = d; }, delay);
      const t0 = Date.now();
      const page = await openProbe(context, sites.probeA, { state: ["connected", "not_authorized", "storage_partitioned"], timeoutMs: 20000 });
      const state = await page.evaluate(() => window.probe.vault.state);
      timing(t, `storage access answered after ${delay} ms → ${state}`, Date.now() - t0);
      assert.equal(state, expected, `after a ${delay} ms answer the app is ${state}, not in a second vault`);
      await page.close();
    }
  } finally {
    await browser.close();
  }
});
