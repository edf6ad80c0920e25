// The vault's core flows, written once against the driver interface of lib/browsers.mjs so that every engine
// runs the same steps (e2e/15-browsers.test.mjs). Each flow is `{name, run(ctx)}`; they run in order on one
// browser and share `ctx`: {browser, sites, offline(), window, state: {...}}. What they check mirrors the Chromium
// tests 01 (demo app, reload), 02 (a second tab live), 03 (consent, revoke), 08 (offline reload), and 16 (the vault
// window): with `ctx.window` (an engine whose cross-site iframe never reaches the vault's storage: WebKit) the
// app first settles in storage_partitioned and the person clicks its "Open your vault" — the first-party vault
// window — wherever the flow connects.
import assert from "node:assert/strict";

/** Every state the probe's SDK can settle in (anything but "connecting"). */
const SETTLED = ["connected", "not_authorized", "storage_partitioned", "storage_blocked", "disconnected"];

/** Opens the probe app at `url`, starts the SDK and waits until it settled; returns [page, state]. */
export async function openProbe(browser, url, { timeoutMs = 15000 } = {}) {
  const page = await browser.newPage(`${url}/`);
  await page.waitFor(() => window.probe !== undefined, null, { what: "the probe app" });
  await page.evaluate(() => void window.probe.start({}));
  const state = await page.waitFor((s) => s.includes(window.probe.vault?.state) && window.probe.vault.state, SETTLED, { timeoutMs, what: "the SDK to settle" });
  return [page, state];
}

/**
 * A person allows the app on `page` in the vault's consent popup: the app's "Ask" button opens it; the person's
 * pointer moves in it (its buttons arm only once it was visible and focused for a moment and a person moved
 * there: shell/src/consent.ts); Allow.
 */
export async function allowProbe(browser, page) {
  await page.evaluate(() => void (window.probe.access = null));
  const popup = await browser.popup(() => page.click("#ask"));
  assert.match(await popup.url(), /\/consent\.html/, "the consent popup is the vault's page");
  await popup.waitFor(() => !/Loading/.test(document.getElementById("spaces")?.textContent ?? "Loading"), null, { what: "the popup's spaces" });
  await popup.focus();
  await popup.pointer();
  await popup.waitFor(() => document.querySelector("#allow")?.disabled === false, null, { what: "Allow to arm", timeoutMs: 10000 });
  await popup.click("#allow");
  const access = await page.waitFor(() => window.probe.access, null, { what: "requestAccess to settle", timeoutMs: 10000 });
  assert.equal(access.ok, true, `requestAccess: ${JSON.stringify(access)}`);
  assert.equal(access.value.allowed, true);
}

/**
 * With `ctx.window`: the SDK settled in storage_partitioned (the iframe cannot reach the vault), the person
 * clicks the probe's "Open your vault" and the app reaches the vault through its window. Returns the state the
 * SDK then settles in (`state` unchanged without `ctx.window`).
 */
export async function throughWindow(ctx, page, state) {
  if (!ctx.window) return state;
  assert.equal(state, "storage_partitioned", "the vault's iframe cannot reach the vault's storage here");
  const t0 = Date.now();
  await page.click("#open-window");
  const reached = await page.waitFor(() => ["not_authorized", "connected"].includes(window.probe.vault.state) && window.probe.vault.state, null, { timeoutMs: 10000, what: "the app to reach the vault through its window" });
  ctx.log(`"Open your vault" → ${reached} through the vault window in ${Date.now() - t0} ms`);
  assert.equal(await page.evaluate(() => window.probe.vault.via), "window");
  return reached;
}

/** What the demo app's board shows (a failed wait says it): its state, the lists (the selected one marked), tasks. */
const boardShows = () => ({
  state: document.querySelector("[data-testid=state]")?.dataset.state,
  ready: document.querySelector("[data-testid=board]")?.dataset.ready,
  lists: [...document.querySelectorAll("[data-testid=lists] button")].map((b) => (b.classList.contains("selected") ? `*${b.textContent}` : b.textContent)),
  tasks: [...document.querySelectorAll("[data-testid=task-title]")].map((t) => t.textContent),
  ...Object.fromEntries(
    ["error", "busy"].map((id) => {
      const el = document.querySelector(`[data-testid=${id}]`);
      return [id, el && !el.hidden ? el.textContent.trim() : null];
    }),
  ),
});

/**
 * Selects the demo board's list `name` and waits until the board shows it selected. The board redraws its list
 * buttons on every change (a live query's answer, say), so a click may land on a button just replaced: it is
 * clicked again until the selection shows (seen in WebKit: connected and ready, the click lost, the list's tasks
 * never shown).
 */
async function openList(page, name) {
  const selected = (n) => document.querySelector(`[data-testid="list-${n}"]`)?.classList.contains("selected") === true;
  await page.waitFor((n) => document.querySelector(`[data-testid="list-${n}"]`) !== null, name, { what: `the list ${name}` });
  for (let attempt = 1; ; attempt++) {
    await page.click(`[data-testid="list-${name}"]`);
    try {
      await page.waitFor(selected, name, { timeoutMs: 2000, what: `the list ${name} selected` });
      return;
    } catch (e) {
      if (attempt === 5) throw e;
    }
  }
}

export const FLOWS = [
  {
    name: "connect: the app reaches the vault and is told consent is required",
    async run(ctx) {
      const t0 = Date.now();
      const [page, settled] = await openProbe(ctx.browser, ctx.sites.probeA);
      ctx.log(`connect → ${settled} in ${Date.now() - t0} ms`);
      const st = await throughWindow(ctx, page, settled);
      assert.equal(st, "not_authorized", `the SDK settled in ${st}`);
      assert.equal(await page.evaluate(() => window.probe.vault.consent), "required");
      const r = await page.evaluate(async () => window.probe.settle(window.probe.vault.spaces.list()));
      assert.equal(r.code, "rpc.not_authorized");
      assert.equal(r.reason, "consent_required");
      assert.equal((await page.evaluate(async () => window.probe.settle(window.probe.vault.ping()))).ok, true, "ping answers before consent");
      ctx.state.page = page;
    },
  },
  {
    name: "consent: Allow in the vault's popup connects the app",
    async run(ctx) {
      const { page } = ctx.state;
      await allowProbe(ctx.browser, page);
      await page.waitFor(() => window.probe.vault.state === "connected", null, { what: "connected" });
      assert.equal(await page.evaluate(() => window.probe.vault.consent), "granted");
    },
  },
  {
    name: "create, update, delete: objects and a space round-trip",
    async run(ctx) {
      const r = await ctx.state.page.evaluate(async () => {
        const { vault, echo } = window.probe;
        const space = (await vault.spaces.create({ name: "Cross-browser" })).id;
        const s = vault.space(space);
        const a = await s.create("note", { title: "first", n: 1, tags: ["x", "y"], nested: { ok: true } });
        const b = await s.create("note", { title: "second", n: 2 });
        await s.update(a, { title: "first, edited", n: 10 }, ["tags"]);
        await s.delete(b);
        const got = await s.get(a);
        const gone = await s.get(b);
        const q = await s.query(echo.query(echo.where.type("note")), { resolve: true });
        return { space, a, fields: got?.fields, gone, ids: q.objects.map((o) => o.id) };
      });
      assert.deepEqual(r.fields, { title: "first, edited", n: 10, nested: { ok: true } });
      assert.ok(r.gone === null || r.gone.deleted === true, `a deleted object reads back as gone: ${JSON.stringify(r.gone)}`);
      assert.deepEqual(r.ids, [r.a], "the query lists only the live object");
      Object.assign(ctx.state, { space: r.space, a: r.a });
    },
  },
  {
    name: "text: a collaborative text field is created, spliced and read back",
    async run(ctx) {
      const r = await ctx.state.page.evaluate(async (space) => {
        const { vault, echo } = window.probe;
        const s = vault.space(space);
        const id = await s.create("doc", { body: echo.text("Hello world") });
        await s.splice(id, "body", 5, 6, ", ünïcødé ✓");
        await s.splice(id, "body", 0, 0, "» ");
        return { id, text: await s.readText(id, "body") };
      }, ctx.state.space);
      assert.equal(r.text, "» Hello, ünïcødé ✓");
      ctx.state.doc = r.id;
    },
  },
  {
    name: "reload: after a page reload the app is still allowed and everything is there",
    async run(ctx) {
      const { page } = ctx.state;
      await page.reload();
      await page.waitFor(() => window.probe !== undefined, null, { what: "the probe app" });
      await page.evaluate(() => void window.probe.start({}));
      if (ctx.window) {
        const settled = await page.waitFor(() => window.probe.vault?.state !== "connecting" && window.probe.vault?.state, null, { what: "the SDK to settle after reload" });
        await throughWindow(ctx, page, settled);
      }
      await page.waitFor(() => window.probe.vault?.state === "connected", null, { what: "connected after reload" });
      const r = await page.evaluate(async ({ space, a, doc }) => {
        const s = window.probe.vault.space(space);
        return { title: (await s.get(a))?.fields.title, text: await s.readText(doc, "body"), spaces: (await window.probe.vault.spaces.list()).map((x) => x.id) };
      }, ctx.state);
      assert.deepEqual(r, { title: "first, edited", text: "» Hello, ünïcødé ✓", spaces: [ctx.state.space] });
    },
  },
  {
    name: "a second tab: a live query there sees the first tab's writes without reload",
    async run(ctx) {
      const [second, settled] = await openProbe(ctx.browser, ctx.sites.probeA);
      assert.equal(await throughWindow(ctx, second, settled), "connected");
      await second.evaluate(async (space) => {
        const { vault, echo } = window.probe;
        window.seen = [];
        await vault.space(space).subscribe(echo.query(echo.where.type("task")), (_diff, sub) => {
          window.seen = sub.list().map((o) => o.fields.title).sort();
        }, { resolve: true });
      }, ctx.state.space);
      await ctx.state.page.focus();
      const t0 = Date.now();
      await ctx.state.page.evaluate(async (space) => {
        const s = window.probe.vault.space(space);
        await s.create("task", { title: "from tab one" });
        await s.create("task", { title: "and another" });
      }, ctx.state.space);
      await second.waitFor(() => window.seen.length === 2 && window.seen, null, { timeoutMs: 5000, what: "the second tab to see both tasks" });
      ctx.log(`write in tab 1 → seen live in tab 2: ${Date.now() - t0} ms`);
      assert.deepEqual(await second.evaluate(() => window.seen), ["and another", "from tab one"]);
      await second.close();
    },
  },
  {
    name: "revoke: Revoke on the manage page cuts the app off at once",
    async run(ctx) {
      const { page } = ctx.state;
      const manage = await ctx.browser.newPage(`${ctx.sites.vault}/manage.html`);
      const probeA = ctx.sites.probeA;
      await manage.waitFor((o) => [...document.querySelectorAll(".card")].some((c) => c.textContent.includes(o)), probeA, { what: "the app's card on the manage page" });
      // The Revoke button of that app's card (marked, so that every driver can click it by a selector).
      await manage.evaluate((o) => {
        const card = [...document.querySelectorAll(".card")].find((c) => c.textContent.includes(o));
        const button = [...card.querySelectorAll("button")].find((b) => b.textContent === "Revoke");
        button.id = "e2e-revoke";
      }, probeA);
      const t0 = Date.now();
      await manage.click("#e2e-revoke", { dialog: "accept" });
      await page.waitFor(() => window.probe.vault.state === "not_authorized", null, { timeoutMs: 5000, what: "not_authorized after the revoke" });
      ctx.log(`Revoke click → app not_authorized in ${Date.now() - t0} ms`);
      const r = await page.evaluate(async (space) => window.probe.settle(window.probe.vault.space(space).properties()), ctx.state.space);
      assert.equal(r.code, "rpc.not_authorized");
      assert.ok(r.ms < 1000, `a call after the revoke took ${r.ms} ms to fail`);
      await manage.waitFor((o) => ![...document.querySelectorAll(".card")].some((c) => c.textContent.includes(o)), probeA, { timeoutMs: 5000, what: "the manage page to drop the app" });
      await manage.close();
      await page.close();
    },
  },
  {
    name: "offline reload: the demo app and the vault load from their service workers, with the data",
    async run(ctx) {
      const { browser, sites } = ctx;
      const ready = () => document.querySelector("[data-testid=board]")?.dataset.ready === "true";
      const page = await browser.newPage(`${sites.demo}/`);
      // Where the iframe cannot reach the vault: the demo's "Open your vault", and that window serves the app.
      const openWindow = async () => {
        await page.waitFor(() => document.querySelector("[data-testid=state]")?.dataset.state === "storage_partitioned", null, { what: "the demo app offering its vault window" });
        return browser.popup(() => page.click("[data-testid=open-window]"));
      };
      const vaultWindow = ctx.window ? await openWindow() : null;
      // After a reload of the app, a returning person clicks "Open your vault" once (the window reloads).
      const againThroughWindow = async (when) => {
        if (!vaultWindow) return;
        await page.waitFor(() => document.querySelector("[data-testid=state]")?.dataset.state === "storage_partitioned", null, { what: `the demo app offering its vault window, ${when}` });
        await page.click("[data-testid=open-window]");
      };
      await page.waitFor(() => document.querySelector("[data-testid=state]")?.dataset.state === "not_authorized", null, { what: "the demo app asking to connect" });
      const popup = await browser.popup(() => page.click("[data-testid=connect]"));
      await popup.focus();
      await popup.pointer();
      await popup.waitFor(() => document.querySelector("#allow")?.disabled === false, null, { what: "Allow to arm", timeoutMs: 10000 });
      await popup.click("#allow");
      await page.waitFor(ready, null, { what: "the board" });
      await page.fill("[data-testid=new-list-name]", "Trip");
      await page.click("[data-testid=add-list]");
      await openList(page, "Trip");
      await page.fill("[data-testid=new-task-title]", "Pack online");
      await page.click("[data-testid=add-task]");
      const hasTask = (title) => [...document.querySelectorAll("[data-testid=task-title]")].some((e) => e.textContent === title);
      await page.waitFor(hasTask, "Pack online", { what: "the task" });
      // Both service workers installed and have cached their sites.
      const cached = async () => {
        if (!navigator.serviceWorker.controller) return 0;
        let n = 0;
        for (const key of await caches.keys()) n += (await (await caches.open(key)).keys()).length;
        return n;
      };
      await page.waitFor(cached, null, { what: "the demo app's service worker" });
      await page.reload(); // the vault iframe is controlled by its service worker from its second load on
      await againThroughWindow("after an online reload");
      await page.waitFor(ready, null, { what: "the board after an online reload" });
      await page.waitFor(cached, null, { what: "the demo app's service worker" });
      if (vaultWindow) {
        await vaultWindow.waitFor(cached, null, { what: "the vault window's service worker" });
      } else {
        await page.inFrame(`${sites.vault}/vault.html`, cached).then((n) => assert.ok(n > 0, "the vault iframe's service worker has cached the vault"));
      }

      const how = await ctx.offline(page);
      ctx.log(`offline: ${how}`);
      const t0 = Date.now();
      await page.reload();
      // The window is still open (its opener only reloaded): "Open your vault" loads it anew — offline, from the
      // vault's service worker.
      await againThroughWindow("offline");
      await page.waitFor(ready, null, { what: "the board, offline" });
      ctx.log(`offline reload → board ready in ${Date.now() - t0} ms`);
      assert.equal(await page.evaluate(() => document.querySelector("[data-testid=state]").dataset.state), "connected");
      await openList(page, "Trip");
      // Seen once in ~10 WebKit runs: connected and ready, yet the task never showed; say what the page showed.
      await page.waitFor(hasTask, "Pack online", { what: "the task, offline" }).catch(async (e) => {
        const shown = await page.evaluate(boardShows).catch((err) => `(unreadable: ${err.message})`);
        throw new Error(`${e.message}; the page showed ${JSON.stringify(shown)}`);
      });
      await page.fill("[data-testid=new-task-title]", "Added offline");
      await page.click("[data-testid=add-task]");
      await page.waitFor(hasTask, "Added offline", { what: "the task added offline" });
      await page.reload();
      await againThroughWindow("offline, again");
      await page.waitFor(ready, null, { what: "the board, offline again" });
      await openList(page, "Trip");
      await page.waitFor(hasTask, "Added offline", { what: "the offline task after another reload" });
      assert.ok(await page.evaluate(hasTask, "Pack online"));
    },
  },
];
