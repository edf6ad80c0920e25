// 15. Three browser engines: Chromium, Firefox ESR (WebDriver BiDi) and WebKitGTK (WebKitWebDriver) — the
// drivers are lib/browsers.mjs. For each engine, in a loopback-only network namespace of its own (Firefox and
// WebKit phone home; inside it nothing can leave the machine) with its own sites:
//   - each of its storage regimes: what the demo app shows within 5 s (the support table; asserted, so that a
//     browser that changes its behaviour fails here and the table gets measured again);
//   - which worker runs the engine: the SharedWorker where it can keep the engine's wrapping key (a CryptoKey)
//     in IndexedDB (Chromium, Firefox), else the dedicated-worker fallback (WebKit: the SharedWorker says
//     `dedicated_only` before it starts any engine, and vault pages lead a dedicated worker);
//   - the core flows of lib/flows.mjs (connect, consent, create/update/delete, text, reload, a second tab
//     live, revoke, offline reload) in the regime where the vault's iframe reaches its storage — or, where no
//     regime does (WebKit), through the first-party vault window the app opens on a click.
//
//   node e2e/run.mjs e2e/15-browsers.test.mjs      E2E_ENGINES=firefox,webkit picks engines
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ENGINES, launch, REGIMES, poll } from "./lib/browsers.mjs";
import { FLOWS } from "./lib/flows.mjs";
import { inLoopbackNamespace, runTestsInLoopbackNamespace } from "./lib/netns.mjs";
import { ROOT, startSites } from "./lib/sites.mjs";

const SELF = fileURLToPath(import.meta.url);
const ENGINE_ENV = "E2E_ENGINE";

/**
 * What each regime gives the demo app, measured here (WebKitGTK 2.50, Firefox ESR 153, Chromium 156), as the
 * demo app's `data-state` within 5 s. "not_authorized": the vault works and asks for consent.
 */
const EXPECTED = {
  chromium: { allowed: "not_authorized", partitioned: "storage_partitioned", blocked: "storage_blocked" },
  firefox: { allowed: "not_authorized", trackers: "not_authorized", partitioned: "storage_partitioned", blocked: "storage_blocked", private: "storage_partitioned" },
  webkit: { default: "storage_partitioned", cookies: "storage_partitioned", itp: "storage_partitioned" },
};

/**
 * The regime the flows run in (or why none can: `{skip, why}`), and whether the app reaches the vault through its
 * window there. WebKit keeps a cross-site iframe's storage partitioned by the top-level site in every setting
 * (measured: hasStorageAccess() false even with --cookies-policy=always, requestStorageAccess() refused without a
 * gesture; WebKit's storage access covers cookies only), so its flows go through the vault window.
 */
const FLOW_REGIME = {
  chromium: "allowed",
  firefox: "allowed",
  webkit: "default",
};
const FLOW_WINDOW = { chromium: false, firefox: false, webkit: true };

/**
 * Flows that cannot run in an engine here, from the first of them on, and exactly why (measured): none today.
 * (WebKit's flows from "reload" on were blocked here until the vault window's engine worker stopped outliving
 * its page in the back/forward cache — shell/src/engine.ts, FallbackLink.leave.) Shape: `{engine: {from, skip,
 * why}}`.
 */
const FLOW_BLOCKED = {};

/** What the engine's SharedWorker says first, measured: WebKit's cannot keep a CryptoKey in IndexedDB. */
const SHARED_WORKER = { chromium: "ready", firefox: "ready", webkit: "dedicated_only" };

if (!inLoopbackNamespace()) {
  const engines = (process.env.E2E_ENGINES ?? ENGINES.join(",")).split(",").filter(Boolean);
  for (const engine of engines) {
    test(`${engine}: regimes and flows, in a loopback-only network namespace`, () => {
      const out = runTestsInLoopbackNamespace({ file: SELF, env: { [ENGINE_ENV]: engine }, cwd: ROOT, timeoutMs: 240_000 });
      const skipped = FLOW_BLOCKED[engine] ? FLOWS.length - FLOW_BLOCKED[engine].from : 0;
      const regimes = Object.keys(REGIMES[engine]).length;
      const extra = 1;
      assert.match(out, new RegExp(`ℹ pass ${regimes + extra + FLOWS.length - skipped}\\b`), "every test ran");
      assert.match(out, new RegExp(`ℹ skipped ${skipped}\\b`));
    });
    // A known failure shows in this run's summary too, not only inside the namespace's output.
    if (FLOW_BLOCKED[engine]) test(`${engine}: the core flows from "${FLOWS[FLOW_BLOCKED[engine].from].name}" on`, { skip: FLOW_BLOCKED[engine].skip }, () => {});
  }
} else {
  const engine = process.env[ENGINE_ENV];
  assert.ok(ENGINES.includes(engine), `${ENGINE_ENV}=${engine}`);
  const { sites, stop } = await startSites({ log: (m) => console.error(m) });
  after(() => stop());
  const log = (line) => console.log(`  [${engine}] ${line}`);

  for (const regime of Object.keys(REGIMES[engine])) {
    test(`${engine}, regime ${regime}: the demo app settles within 5 s in ${EXPECTED[engine][regime]}`, async () => {
      const browser = await launch(engine, regime);
      try {
        const page = await browser.newPage();
        const t0 = Date.now();
        await page.goto(`${sites.demo}/`);
        const settled = await poll(
          () => page.evaluate(() => {
            const el = document.querySelector("[data-testid=state]");
            return el && el.dataset.state !== "connecting" && { state: el.dataset.state, text: document.querySelector("[data-testid=state-text]").textContent };
          }),
          null,
          null,
          { timeoutMs: 5000, every: 50, what: "the demo app to leave 'connecting'" },
        );
        const ms = Date.now() - t0;
        console.log(`  [table] ${engine} | ${regime} | ${settled.state} | ${ms} ms | "${settled.text}"`);
        assert.equal(settled.state, EXPECTED[engine][regime]);
        assert.ok(ms <= 5000);
      } finally {
        await browser.close();
      }
    });
  }

  // Which worker runs the engine. The engine's worker script started by hand on a top-level vault page (which
  // starts no engine of its own), each kind on a fresh browser (the engine holds a lock while it runs); then a
  // vault page joining as every page does (shell/src/engine.ts), on a fresh browser too.
  test(`${engine}: the engine in its workers — SharedWorker says ${SHARED_WORKER[engine]}, a dedicated worker starts it, vault pages ${SHARED_WORKER[engine] === "ready" ? "use the SharedWorker" : "fall back to a dedicated worker"}`, async () => {
    // Starts the engine's worker script as `kind` and resolves with its first control message.
    const start = (kind) =>
      new Promise((resolve) => {
        setTimeout(() => resolve(JSON.stringify("timeout")), 15000);
        const w = kind === "shared" ? new SharedWorker("/engine-worker.js", { type: "module", name: "echo-engine" }) : new Worker("/engine-worker.js", { type: "module" });
        w.onerror = () => resolve(JSON.stringify("worker error"));
        (kind === "shared" ? w.port : w).onmessage = (m) => resolve(JSON.stringify(m.data));
      });
    const out = {};
    for (const kind of ["dedicated", "shared"]) {
      const browser = await launch(engine, FLOW_REGIME[engine]);
      try {
        const page = await browser.newPage(`${sites.vault}/vault.html`);
        out[kind] = JSON.parse(await page.evaluate(start, kind));
        // The probe's database is gone; where the SharedWorker cannot run the engine, it made none of the engine's.
        out[`${kind} databases`] = await page.waitFor((want) => indexedDB.databases().then((list) => list.map((d) => d.name).sort()).then((names) => (want === "none" ? names.length === 0 : names.includes("echo-vault-keys")) && names), kind === "shared" && SHARED_WORKER[engine] !== "ready" ? "none" : "engine's", { timeoutMs: 5000, what: "the databases" });
      } finally {
        await browser.close();
      }
    }
    log(`engine in a dedicated worker: ${JSON.stringify(out.dedicated)}; in a SharedWorker: ${JSON.stringify(out.shared)}; databases: ${JSON.stringify(out["shared databases"])}`);
    assert.deepEqual(out.dedicated, { engine: "ready" }, "the dedicated-worker fallback starts the engine");
    assert.equal(out.shared.engine, SHARED_WORKER[engine]);
    if (SHARED_WORKER[engine] !== "ready") assert.match(out.shared.error.message, /DataCloneError/);
    for (const kind of ["dedicated", "shared"]) assert.ok(!out[`${kind} databases`].includes("echo-probe-key-storage"), `the probe database is deleted (${kind})`);

    // A vault page joins as every page does: the manage page's vault, and which way it took (this tab's note).
    const browser = await launch(engine, FLOW_REGIME[engine]);
    try {
      const manage = await browser.newPage(`${sites.vault}/manage.html`);
      const identity = await manage.waitFor(() => /Identity key/.test(document.getElementById("identity")?.textContent ?? "") && document.getElementById("identity").textContent, null, { timeoutMs: 10000, what: "the manage page's vault identity" });
      const note = await manage.evaluate(() => sessionStorage.getItem("echo-engine-dedicated-only"));
      log(`manage page: vault ${identity.slice(0, 60)}…; dedicated-only note: ${note}`);
      assert.equal(note, SHARED_WORKER[engine] === "ready" ? null : "1", "the way the vault page joined the engine");
    } finally {
      await browser.close();
    }
  });

  const flowRegime = FLOW_REGIME[engine];
  const blocked = FLOW_BLOCKED[engine];
  if (blocked) console.log(`  [${engine}] flows from "${FLOWS[blocked.from].name}" on are skipped: ${blocked.why}`);
  {
    let browser = null;
    const ctx = {
      sites,
      window: FLOW_WINDOW[engine],
      state: {},
      log,
      // The network gone: the sites stop answering (for every request, the service workers' included, which a
      // page's offline emulation may not cover), and the browser goes offline where its driver can say so.
      async offline(page) {
        await stop();
        return (await page.setOffline(true)) ? "sites stopped + the browser's offline mode" : "sites stopped (no offline mode in this driver)";
      },
    };
    after(() => browser?.close());
    let failed = false;
    for (const [i, flow] of FLOWS.entries()) {
      if (blocked && i >= blocked.from) {
        test(`${engine}: ${flow.name}`, { skip: blocked.skip }, () => {});
        continue;
      }
      test(`${engine}: ${flow.name}`, async () => {
        // The flows build on each other: after a failure the rest cannot mean anything.
        if (failed) throw new Error("an earlier flow failed");
        browser ??= ctx.browser = await launch(engine, flowRegime);
        try {
          await flow.run(ctx);
        } catch (e) {
          failed = true;
          throw e;
        }
      });
    }
  }
}
