// 15. Three browser engines: Chromium, Firefox ESR (WebDriver BiDi) and WebKitGTK (WebKitWebDriver) — the
// drivers are lib/browsers.mjs. For each engine, in a loopback-only network namespace of its own (Firefox and
// WebKit phone home; inside it nothing can leave the machine) with its own sites:
//   - each of its storage regimes: what the demo app shows within 5 s (the support table; asserted, so that a
//     browser that changes its behaviour fails here and the table gets measured again);
//   - the core flows of lib/flows.mjs (connect, consent, create/update/delete, text, reload, a second tab
//     live, revoke, offline reload) in the regime where the vault's iframe reaches its storage — or, where no
//     regime does, each flow skipped with the reason.
//
//   node e2e/run.mjs e2e/15-browsers.test.mjs      E2E_ENGINES=firefox,webkit picks engines
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ENGINES, launch, REGIMES, poll } from "./lib/browsers.mjs";
import { FLOWS } from "./lib/flows.mjs";
import { inLoopbackNamespace, runInLoopbackNamespace } from "./lib/netns.mjs";
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

/** The regime the flows run in, or why none can. */
const FLOW_REGIME = {
  chromium: "allowed",
  firefox: "allowed",
  webkit: {
    skip: "known failure in WebKit: a cross-site app gets storage_partitioned in every regime, and the engine cannot start in its SharedWorker (DataCloneError)",
    why:
      "WebKit keeps a cross-site iframe's storage partitioned by the top-level site in every setting (measured: " +
      "hasStorageAccess() false even with --cookies-policy=always, requestStorageAccess() refused without a gesture; " +
      "WebKit's storage access covers cookies only), so a cross-site app gets storage_partitioned and needs the " +
      "first-party vault window of issue 12 section 2. And even first-party, the engine cannot start in WebKit's " +
      "SharedWorker: storing its wrapping key, a non-extractable CryptoKey, in IndexedDB from a SharedWorker throws " +
      "DataCloneError (a dedicated worker can: the test 'the engine in WebKit's workers').",
  },
};

if (!inLoopbackNamespace()) {
  const engines = (process.env.E2E_ENGINES ?? ENGINES.join(",")).split(",").filter(Boolean);
  for (const engine of engines) {
    test(`${engine}: regimes and flows, in a loopback-only network namespace`, () => {
      const env = { ...process.env, E2E_SITES: "", [ENGINE_ENV]: engine };
      delete env.NODE_TEST_CONTEXT;
      const r = runInLoopbackNamespace({ file: SELF, nodeArgs: ["--test", "--test-reporter=spec"], env, cwd: ROOT, timeoutMs: 240_000 });
      const indent = (text) => (text ?? "").replace(/^(?=.)/gm, "  │ ");
      process.stdout.write(indent(r.stdout));
      process.stderr.write(indent(r.stderr));
      assert.equal(r.status, 0, `the tests in the namespace failed (status ${r.status}, ${r.error ?? "no spawn error"})`);
      assert.match(r.stdout ?? "", /ℹ fail 0\b/);
      const skipped = typeof FLOW_REGIME[engine] === "object" ? FLOWS.length : 0;
      const regimes = Object.keys(REGIMES[engine]).length;
      const extra = engine === "webkit" ? 2 : 0;
      assert.match(r.stdout ?? "", new RegExp(`ℹ pass ${regimes + extra + FLOWS.length - skipped}\\b`), "every test ran");
      assert.match(r.stdout ?? "", new RegExp(`ℹ skipped ${skipped}\\b`));
    });
    // A known failure shows in this run's summary too, not only inside the namespace's output.
    if (typeof FLOW_REGIME[engine] === "object") test(`${engine}: the core flows`, { skip: FLOW_REGIME[engine].skip }, () => {});
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

  if (engine === "webkit") {
    // Why the flows cannot run in WebKit even for a first-party vault page: its SharedWorker cannot store the
    // engine's wrapping key (a non-extractable CryptoKey) in IndexedDB. Shown on the vault's own origin, with the
    // engine's worker script, each worker type on a fresh browser (the engine holds a lock while it runs).
    test("webkit: the engine in WebKit's workers — a dedicated worker starts it, a SharedWorker cannot store its key", async () => {
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
        const browser = await launch(engine, "default");
        try {
          // /vault.html top-level starts no engine of its own.
          const page = await browser.newPage(`${sites.vault}/vault.html`);
          out[kind] = JSON.parse(await page.evaluate(start, kind));
        } finally {
          await browser.close();
        }
      }
      log(`engine in a dedicated worker: ${JSON.stringify(out.dedicated)}; in a SharedWorker: ${JSON.stringify(out.shared)}`);
      assert.deepEqual(out.dedicated, { engine: "ready" }, "the dedicated-worker fallback starts the engine in WebKit");
      // When this fails, WebKit stores CryptoKeys from SharedWorkers: the flows' known failure has one reason less.
      assert.equal(out.shared.engine, "failed");
      assert.match(out.shared.error.message, /echo-vault-keys.*DataCloneError/);
    });
  }

  if (engine === "webkit") {
    // The flows cannot run in WebKit yet; what they need of its driver is shown to work here, on what does
    // work: a click in the app opens the vault's consent popup, which says why it cannot help; the app's vault
    // iframe is reachable; a pointer moves; a page closes.
    test("webkit: the driver — the app's Ask opens the consent popup, which says the vault cannot start", async () => {
      const browser = await launch(engine, "default");
      try {
        const page = await browser.newPage(`${sites.probeA}/`);
        await page.waitFor(() => window.probe !== undefined, null, { what: "the probe app" });
        await page.evaluate(() => void window.probe.start({}));
        await page.waitFor(() => window.probe.vault?.state === "storage_partitioned", null, { timeoutMs: 5000, what: "storage_partitioned" });
        const inFrame = await page.inFrame(`${sites.vault}/vault.html`, () => ({ href: location.href, storage: document.documentElement.dataset.storage ?? null }));
        assert.equal(inFrame.storage, null, "the vault iframe started no engine (it has no storage of the vault's)");
        const popup = await browser.popup(() => page.click("#ask"));
        assert.match(await popup.url(), /\/consent\.html$/);
        await popup.focus();
        await popup.pointer();
        const notice = await popup.waitFor(() => document.querySelector("#notice:not([hidden])")?.textContent, null, { timeoutMs: 10000, what: "the popup's notice" });
        log(`consent popup: "${notice}"`);
        assert.match(notice, /key storage|DataCloneError/);
        assert.equal(await popup.evaluate(() => document.querySelector("#allow").disabled), true, "Allow stays disabled");
        await popup.close();
        assert.equal(await page.evaluate(() => window.probe.vault.state), "storage_partitioned");
      } finally {
        await browser.close();
      }
    });
  }

  const flowRegime = FLOW_REGIME[engine];
  if (typeof flowRegime === "object") {
    console.log(`  [${engine}] the flows are skipped: ${flowRegime.why}`);
    for (const flow of FLOWS) test(`${engine}: ${flow.name}`, { skip: flowRegime.skip }, () => {});
  } else {
    let browser = null;
    const ctx = {
      sites,
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
    for (const flow of FLOWS) {
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
