// 12. Two people share a space: two browser profiles (two vaults, two identities). A's vault makes an
// invitation on its invitation page; B opens the link in its vault, types the 6-digit code A's page shows,
// and is admitted as an editor; the vaults then find each other on signaling and replicate the space over a
// WebRTC data channel, both ways and live. Three wrong codes end an invitation on both sides.
//
// WebRTC traffic stays on loopback: this file runs inside a network namespace that has only `lo` (it
// re-executes itself under `unshare --net` as root, and refuses to run where another interface exists), so
// the only ICE candidates are host candidates on 127.0.0.1. `--allow-loopback-in-peer-connection` lets
// Chromium use them; that switch is test configuration, not something the product asks for.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { assertLoopbackOnly, inLoopbackNamespace, runInLoopbackNamespace } from "./lib/netns.mjs";
import { launchRegime } from "./lib/regimes.mjs";
import { ROOT, startSites } from "./lib/sites.mjs";
import { allowDemo, allowInPopup, openProbe, timing, until, waitState } from "./lib/util.mjs";

const SELF = fileURLToPath(import.meta.url);

if (!inLoopbackNamespace()) {
  // Outside the namespace: run this very file inside a new one, as one test.
  test("two vaults in a loopback-only network namespace", () => {
    // A fresh test run in the namespace (not a nested one, which node would skip).
    const env = { ...process.env, E2E_SITES: "" };
    delete env.NODE_TEST_CONTEXT;
    const r = runInLoopbackNamespace({ file: SELF, nodeArgs: ["--test", "--test-reporter=spec"], env, cwd: ROOT, timeoutMs: 240_000 });
    // Indented, so that the outer runner's summary stays the last one.
    const indent = (text) => (text ?? "").replace(/^(?=.)/gm, "  │ ");
    process.stdout.write(indent(r.stdout));
    process.stderr.write(indent(r.stderr));
    assert.equal(r.status, 0, `the tests in the namespace failed (status ${r.status}, ${r.error ?? "no spawn error"})`);
    // They ran, all of them.
    assert.match(r.stdout ?? "", /ℹ pass 3\b/, "every test ran and passed in the namespace");
    assert.match(r.stdout ?? "", /ℹ fail 0\b/);
  });
} else {
  assertLoopbackOnly("WebRTC tests");

  let sites;
  let stopSites;
  const browsers = [];
  /** Console lines of every page, per browser (printed when a test fails). */
  const logs = [[], []];
  before(async () => {
    ({ sites, stop: stopSites } = await startSites());
    for (let i = 0; i < 2; i++) {
      const b = await launchRegime("storage-access", { extraArgs: ["--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream"] });
      b.context.on("page", (page) => page.on("console", (m) => logs[i].push(`${page.url().split("?")[0].split("#")[0]} ${m.type()}: ${m.text()}`)));
      browsers.push(b);
    }
  });

  /** What each vault's manage page says about `space`'s peers, and the pages' console lines. */
  async function diagnose(space) {
    const out = [];
    for (let i = 0; i < 2; i++) {
      const page = await browsers[i].context.newPage();
      await page.goto(`${sites.vault}/manage.html`);
      const peers = await page
        .waitForFunction((s) => document.querySelector(`tr:has([data-space="${s}"]) .peers`)?.textContent, space, { timeout: 5000 })
        .then((h) => h.jsonValue(), (e) => `no peers cell: ${e.message}`);
      out.push(`vault ${"AB"[i]}: ${peers}`);
      await page.close();
    }
    const status = await fetch(`${sites.vault.replace("vault.localhost", "127.0.0.1")}/signal/status`).then((r) => r.text(), (e) => e.message);
    out.push(`signaling: ${status}`);
    for (let i = 0; i < 2; i++) {
      for (const page of browsers[i].context.pages()) {
        const net = await page.evaluate(() => document.documentElement.dataset.net ?? "-").catch((e) => e.message);
        out.push(`${"AB"[i]} page ${page.url().split("#")[0]}: net ${net}`);
      }
    }
    for (let i = 0; i < 2; i++) out.push(`--- console of ${"AB"[i]}:`, ...logs[i].slice(-40));
    return out.join("\n");
  }
  after(async () => {
    for (const b of browsers) await b.close();
    await stopSites?.();
  });

  /** A probe app connected and allowed in browser `b`; `spaces` granted in the popup. */
  async function app(b, spaces = []) {
    const page = await openProbe(b.context, sites.probeA, { state: ["not_authorized", "connected"] });
    if ((await page.evaluate(() => window.probe.vault.state)) !== "connected") {
      await allowInPopup(b.context, page, { spaces });
      await waitState(page, "connected");
    }
    return page;
  }

  /** Titles of the notes in `space`, sorted, as the app on `page` reads them. */
  const titles = (page, space) =>
    page.evaluate(async (s) => {
      const { vault, echo } = window.probe;
      const r = await vault.space(s).query(echo.query(echo.where.type("note")), { resolve: true });
      return r.objects.map((o) => o.fields.title).sort();
    }, space);

  const state = (page, id) => page.evaluate((el) => document.getElementById(el)?.dataset.state ?? "", id);

  /** A's invitation page for `space`: returns the page and the code. */
  async function invite(space) {
    const host = await browsers[0].context.newPage();
    await host.goto(`${sites.vault}/invite.html?space=${space}`);
    await host.waitForFunction(() => document.getElementById("invite-code")?.value.startsWith("echo-invite-"), null, { timeout: 15000 });
    const code = await host.inputValue("#invite-code");
    assert.equal(await state(host, "host-state"), "waiting");
    return { host, code };
  }

  test("A invites B with a code; both edit the space and see each other's writes live over WebRTC", async (t) => {
    const a = await app(browsers[0]);
    const space = await a.evaluate(async () => {
      const v = window.probe.vault;
      const s = await v.spaces.create({ name: "Groceries" });
      await v.space(s.id).create("note", { title: "milk" });
      return s.id;
    });

    let t0 = Date.now();
    const { host, code } = await invite(space);
    const guest = await browsers[1].context.newPage();
    await guest.goto(`${sites.vault}/invite.html#${code}`);
    await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 15000, what: "B connected to A" });
    const auth = await host.waitForFunction(() => document.getElementById("auth-code")?.textContent?.match(/^\d{6}$/)?.[0], null, { timeout: 10000 });
    const digits = await auth.jsonValue();
    assert.equal(await guest.locator("#auth-code").textContent(), "", "the code is shown only on the host's page");
    assert.equal(await guest.locator("#auth-box").isHidden(), true);
    await guest.fill("#code-input", digits);
    await guest.click("#code-button");
    await until(async () => (await state(guest, "guest-state")) === "success", { timeoutMs: 15000, what: "B admitted" });
    await until(async () => (await state(host, "host-state")) === "success", { timeoutMs: 5000, what: "A sees success" });
    timing(t, "invitation: open link → admitted", Date.now() - t0);

    // B's app, allowed the joined space, gets A's note over WebRTC.
    t0 = Date.now();
    const b = await app(browsers[1], [space]);
    await until(async () => (await titles(b, space)).includes("milk"), { timeoutMs: 30000, what: "A's note on B" }).catch(async (e) => {
      throw new Error(`${e.message}\n${await diagnose(space)}`);
    });
    timing(t, "first sync A → B", Date.now() - t0);

    // Both write; each sees the other's write live.
    t0 = Date.now();
    await b.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "bread" }), space);
    await until(async () => (await titles(a, space)).includes("bread"), { timeoutMs: 10000, what: "B's note on A" });
    timing(t, "B writes → visible on A", Date.now() - t0);
    t0 = Date.now();
    await a.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "eggs" }), space);
    await until(async () => (await titles(b, space)).includes("eggs"), { timeoutMs: 10000, what: "A's note on B" });
    timing(t, "A writes → visible on B", Date.now() - t0);
    assert.deepEqual(await titles(a, space), ["bread", "eggs", "milk"]);
    assert.deepEqual(await titles(b, space), ["bread", "eggs", "milk"]);

    // A's manage page lists B as an editor.
    const manage = await browsers[0].context.newPage();
    await manage.goto(`${sites.vault}/manage.html`);
    await manage.waitForFunction(
      (s) => document.querySelector(`[data-space="${s}"] .members`)?.children.length === 2,
      space,
      { timeout: 10000 },
    );
    for (const p of [host, guest, manage, a, b]) await p.close();
  });

  test("demo app: A shares the board, B joins it from its own demo app; a task added by either shows on both", async (t) => {
    const demo = async (i) => {
      const page = await browsers[i].context.newPage();
      await page.goto(`${sites.demo}/`);
      await page.waitForFunction(() => ["not_authorized", "connected"].includes(document.querySelector("[data-testid=state]")?.dataset.state), null, { timeout: 15000 });
      if ((await page.getByTestId("state").getAttribute("data-state")) === "not_authorized") {
        await allowDemo(browsers[i].context, page);
      }
      await page.waitForFunction(() => document.querySelector("[data-testid=board]")?.dataset.ready === "true", null, { timeout: 15000 });
      return page;
    };
    // A vault page of each person leads their WebRTC connections (on loopback, Chromium offers no candidates
    // to a cross-site iframe without media permission; a real network gives it mDNS/STUN candidates).
    const leads = [];
    for (let i = 0; i < 2; i++) {
      const page = await browsers[i].context.newPage();
      await page.goto(`${sites.vault}/manage.html`);
      await page.waitForFunction(() => document.documentElement.dataset.net === "driving", null, { timeout: 15000 });
      leads.push(page);
    }
    const a = await demo(0);
    await a.getByTestId("new-list-name").fill("Household");
    await a.getByTestId("add-list").click();
    await a.getByTestId("list-Household").waitFor({ timeout: 5000 });

    let t0 = Date.now();
    const hostP = browsers[0].context.waitForEvent("page");
    await a.getByTestId("share-board").click();
    const host = await hostP;
    await host.waitForFunction(() => document.getElementById("invite-code")?.value.startsWith("echo-invite-"), null, { timeout: 15000 });
    const code = await host.inputValue("#invite-code");

    const b = await demo(1);
    const guestP = browsers[1].context.waitForEvent("page");
    await b.getByTestId("join-board").click();
    const guest = await guestP;
    await guest.waitForSelector("#accept-input", { timeout: 10000 });
    await guest.fill("#accept-input", code);
    await guest.click("#accept-button");
    await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 15000, what: "B connected to A" });
    const digits = await (await host.waitForFunction(() => document.getElementById("auth-code")?.textContent?.match(/^\d{6}$/)?.[0], null, { timeout: 10000 })).jsonValue();
    await guest.fill("#code-input", digits);
    await guest.click("#code-button");
    // The invitation window reports to the demo app, which opens the shared board.
    await b.getByTestId("list-Household").waitFor({ timeout: 30000 }).catch(async (e) => {
      throw new Error(`${e.message}\n${await diagnose("")}`);
    });
    timing(t, "demo: Share → B sees A's list", Date.now() - t0);

    t0 = Date.now();
    await b.getByTestId("list-Household").click();
    await b.getByTestId("new-task-title").fill("Buy milk");
    await b.getByTestId("add-task").click();
    await a.bringToFront();
    await a.getByTestId("list-Household").click();
    await a.getByTestId("task-title").getByText("Buy milk", { exact: true }).waitFor({ timeout: 10000 });
    timing(t, "demo: B's task → visible in A's app", Date.now() - t0);
    for (const p of [host, guest, a, b, ...leads]) await p.close().catch(() => {});
  });

  test("three wrong codes end the invitation on both sides; a new attempt is refused", async () => {
    const a = await app(browsers[0]);
    const space = await a.evaluate(async () => (await window.probe.vault.spaces.create({ name: "Secret" })).id);
    const { host, code } = await invite(space);
    const guest = await browsers[1].context.newPage();
    await guest.goto(`${sites.vault}/invite.html#${code}`);
    await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 15000, what: "B connected" });
    const digits = await (await host.waitForFunction(() => document.getElementById("auth-code")?.textContent?.match(/^\d{6}$/)?.[0], null, { timeout: 10000 })).jsonValue();
    const wrong = (k) => String((Number(digits) + 1 + k) % 1_000_000).padStart(6, "0");
    for (let k = 0; k < 3; k++) {
      await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 10000, what: `ready for attempt ${k + 1}` });
      await guest.fill("#code-input", wrong(k));
      await guest.click("#code-button");
      await until(
        async () => {
          const text = await guest.locator("#guest-state").textContent();
          return k < 2 ? /invite\.wrong_code/.test(text ?? "") : (await state(guest, "guest-state")) === "failed";
        },
        { timeoutMs: 10000, what: `the verdict on wrong code ${k + 1}` },
      );
    }
    assert.match(await guest.locator("#guest-state").textContent(), /invite\.too_many_attempts/);
    await until(async () => (await state(host, "host-state")) === "failed", { timeoutMs: 5000, what: "A's page says it ended" });
    assert.equal(await host.locator("#auth-box").isHidden(), true, "no code is shown once it ended");

    // A fourth try, on a new connection (a fresh page): refused before any code is asked for.
    const again = await browsers[1].context.newPage();
    await again.goto(`${sites.vault}/invite.html#${code}`);
    await until(async () => (await state(again, "guest-state")) === "failed", { timeoutMs: 15000, what: "the fourth try refused" });
    assert.match(await again.locator("#guest-state").textContent(), /invite\.too_many_attempts/);
    for (const p of [host, guest, again, a]) await p.close();
  });
}
