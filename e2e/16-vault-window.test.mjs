// 16. Third-party storage blocked or partitioned (issue 12, sections 1–3): the app shows the vault's own
// "Connect to your vault" button (the vault's frame, in the app's slot) and "Open your vault" within 5 s; a click
// on the vault's button asks the browser (headless Chromium refuses: it denies the prompt), and "Open your vault"
// opens the first-party vault window, which joins the vault's real engine and hands the app a port tagged with
// its origin. Every click a person makes is counted. The data is the vault's own both ways (a name set in the
// first-party manage page is read through the window; a space written through the window is listed by the manage
// page); closing the window shows the disconnected state and one click reconnects; the window serves no page
// without an origin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { clickInPopup, allowInPopup, openProbe, sleep, timing, waitState, watchErrors } from "./lib/util.mjs";

const sites = await getSites();

const STORAGE_STATE = { partitioned: "storage_partitioned", blocked: "storage_blocked" };

/** Counts the clicks a person makes (on the page or in a vault window). */
function clicker() {
  const counter = { n: 0, log: [] };
  counter.click = async (locator, what) => {
    counter.n++;
    counter.log.push(what);
    await locator.click();
  };
  return counter;
}

const demoState = (page) => page.getByTestId("state").getAttribute("data-state");
const waitDemoState = (page, states, timeout = 10000) =>
  page.waitForFunction((want) => want.includes(document.querySelector("[data-testid=state]")?.dataset.state), [states].flat(), { timeout });
const boardReady = (page, timeout = 15000) => page.waitForFunction(() => document.querySelector("[data-testid=board]")?.dataset.ready === "true", null, { timeout });

for (const regime of ["partitioned", "blocked"]) {
  const expected = STORAGE_STATE[regime];

  test(`${regime}: the demo app offers the vault's button and its window within 5 s; two clicks reach the vault; closing the window disconnects, one click reconnects`, async (t) => {
    const browser = await launchRegime(regime);
    try {
      const { context } = browser;
      const page = await context.newPage();
      const errors = watchErrors(page, { ignore: [/requestStorageAccess/i, /storage access/i] });
      const clicks = clicker();

      // An honest, actionable state within 5 s: what the browser does, the vault's button, "Open your vault", the help page.
      const t0 = Date.now();
      await page.goto(`${sites.demo}/`);
      await waitDemoState(page, expected, 8000);
      const vaultButton = page.frameLocator("[data-testid=vault-slot] iframe").getByTestId("access");
      await vaultButton.waitFor({ state: "visible", timeout: 5000 });
      await page.getByTestId("open-window").waitFor({ state: "visible", timeout: 5000 });
      const actionable = Date.now() - t0;
      timing(t, `${regime}: ${expected} with the vault's button and "Open your vault" after`, actionable);
      assert.ok(actionable < 5000, `actionable after ${actionable} ms (limit 5000 ms)`);
      const text = await page.getByTestId("state-text").textContent();
      assert.match(text, /Connect to your vault/, `the banner says what to click: ${text}`);
      assert.match(text, /your browser may ask/i);
      // Section 3: the setting, in the browser's words, and the vault site's help page for this browser.
      const help = await page.getByTestId("help").getAttribute("href");
      assert.equal(help, `${sites.vault}/help.html#chrome`, "a link to the help page's Chrome section");
      assert.equal(await page.getByTestId("help").isVisible(), true);

      // Click 1: the vault's own button, inside the vault's document. Headless Chromium denies the prompt.
      const t1 = Date.now();
      await clicks.click(vaultButton, "the vault's Connect to your vault");
      await page.waitForFunction(() => /did not allow/.test(document.querySelector("[data-testid=state-text]")?.textContent ?? ""), null, { timeout: 8000 });
      timing(t, `${regime}: the browser answered the vault's button (refused) after`, Date.now() - t1);
      assert.equal(await page.getByTestId("vault-slot").isVisible(), false, "the vault's button is gone once the browser answered");
      assert.match(await page.getByTestId("state-text").textContent(), /Third-party cookies/, "the Chrome setting is named");

      // Click 2: "Open your vault" — the first-party vault window.
      const t2 = Date.now();
      const popupP = context.waitForEvent("page");
      await clicks.click(page.getByTestId("open-window"), "Open your vault");
      const vaultWindow = await popupP;
      assert.equal(new URL(vaultWindow.url()).origin, sites.vault);
      assert.equal(new URL(vaultWindow.url()).pathname, "/window.html");
      await waitDemoState(page, "not_authorized", 10000);
      timing(t, `${regime}: the window opened → the app reached the vault (not_authorized, a new app) after`, Date.now() - t2);
      assert.equal(clicks.n, 2, `reached the vault in ${clicks.n} clicks: ${clicks.log.join(", ")}`);
      assert.equal(await vaultWindow.evaluate(() => document.documentElement.dataset.served), sites.demo, "the window serves the demo's origin");
      assert.equal(await vaultWindow.evaluate(() => document.documentElement.dataset.storage), "global", "first party: the globals");

      // A new app still needs the person's consent, as everywhere: Connect, then Allow in the vault's consent popup.
      const consentP = context.waitForEvent("page");
      await clicks.click(page.getByTestId("connect"), "Connect (consent)");
      const consent = await consentP;
      clicks.n++;
      clicks.log.push("Allow");
      assert.ok(await clickInPopup(consent, "#allow"), "the consent popup closed after Allow");
      await boardReady(page);
      timing(t, `${regime}: a new app with the board ready after ${clicks.n} clicks (${clicks.log.join(", ")})`, Date.now() - t0);
      assert.equal(await page.getByTestId("state").getAttribute("data-via"), "window");
      assert.match(await page.getByTestId("state-text").textContent(), /through its window/);

      await page.getByTestId("new-list-name").fill("Groceries");
      await page.getByTestId("add-list").click();
      await page.getByTestId("list-Groceries").waitFor();

      // The first-party vault holds it: the manage page lists the demo's space with its object.
      const manage = await context.newPage();
      await manage.goto(`${sites.vault}/manage.html`);
      await manage.waitForFunction((app) => [...document.querySelectorAll("#spaces tbody tr")].some((tr) => tr.textContent.includes(app) && /^[1-9]/.test(tr.querySelector("td.num")?.textContent ?? "")), sites.demo, { timeout: 10000 });
      await manage.close();

      // Closing the window: the app says so at once, and one click opens it again.
      const t3 = Date.now();
      await vaultWindow.close();
      await waitDemoState(page, "disconnected", 5000);
      timing(t, `${regime}: window closed → disconnected after`, Date.now() - t3);
      await sleep(1500);
      assert.equal(await demoState(page), "disconnected", "it stays disconnected: no window opens by itself");
      assert.match(await page.getByTestId("state-text").textContent(), /window was closed/);
      const again = page.getByTestId("open-window");
      assert.equal(await again.textContent(), "Open your vault again");
      const reopened = context.waitForEvent("page");
      const before = clicks.n;
      const t4 = Date.now();
      await clicks.click(again, "Open your vault again");
      await reopened;
      await waitDemoState(page, "connected", 10000);
      timing(t, `${regime}: one click → connected again after`, Date.now() - t4);
      assert.equal(clicks.n - before, 1);
      await page.getByTestId("list-Groceries").waitFor({ timeout: 10000 });

      // A returning person (the app already allowed): a reload, then one click on "Open your vault".
      for (const p of context.pages()) if (new URL(p.url()).pathname === "/window.html") await p.close();
      const t5 = Date.now();
      await page.reload();
      await waitDemoState(page, expected, 8000);
      const back = context.waitForEvent("page");
      const before2 = clicks.n;
      await clicks.click(page.getByTestId("open-window"), "Open your vault (returning)");
      await back;
      await boardReady(page);
      await page.getByTestId("list-Groceries").waitFor({ timeout: 10000 });
      timing(t, `${regime}: returning person, reload → board ready after 1 click`, Date.now() - t5);
      assert.equal(clicks.n - before2, 1);
      assert.deepEqual(errors, [], "no page errors");
    } finally {
      await browser.close();
    }
  });
}

test("partitioned: the window reaches the same vault both ways — a name set first party is read, a space written is listed", async (t) => {
  const browser = await launchRegime("partitioned");
  try {
    const { context } = browser;
    // First party: the manage page sets the display name.
    const manage = await context.newPage();
    await manage.goto(`${sites.vault}/manage.html`);
    await manage.fill("#name-input", "Ada of the first party");
    await manage.click("#name-save");
    await manage.waitForFunction(() => /Ada of the first party/.test(document.getElementById("identity")?.textContent ?? ""), null, { timeout: 10000 });

    const app = await openProbe(context, sites.probeA, { state: "storage_partitioned" });
    // Without a slot there is no button to show; the window is the way.
    assert.equal(await app.evaluate(() => window.probe.vault.storageAccess), null);
    const popupP = context.waitForEvent("page");
    const t0 = Date.now();
    await app.click("#open-window");
    const vaultWindow = await popupP;
    await waitState(app, "not_authorized", 10000);
    timing(t, "probe: window → not_authorized", Date.now() - t0);
    assert.equal(await app.evaluate(() => window.probe.vault.via), "window");
    await allowInPopup(context, app);
    await waitState(app, "connected");

    const r = await app.evaluate(async () => {
      const v = window.probe.vault;
      const identity = await v.identity();
      const space = await v.spaces.create({ name: "through the window" });
      const id = await v.space(space.id).create("note", { text: "written through the vault window" });
      return { name: identity.display_name, space: space.id, id };
    });
    assert.equal(r.name, "Ada of the first party", "the first-party vault's name, read through the window");
    await manage.reload();
    await manage.waitForFunction(
      ({ space, app }) => [...document.querySelectorAll("#spaces tbody tr")].some((tr) => tr.textContent.includes(space) && tr.textContent.includes(app) && tr.querySelector("td.num")?.textContent === "1"),
      { space: r.space, app: sites.probeA },
      { timeout: 10000 },
    );
    // The port was tagged with the app's origin (created_by above), and the apps list names it.
    assert.match(await manage.locator("#apps").textContent(), new RegExp(sites.probeA.replace(/[.:/]/g, "\\$&")));

    // A second app in the same browser through its own window sees nothing of the first's (consent unchanged).
    const other = await openProbe(context, sites.probeB, { state: "storage_partitioned" });
    const otherWindowP = context.waitForEvent("page");
    await other.click("#open-window");
    await otherWindowP;
    await waitState(other, "not_authorized", 10000);
    const denied = await other.evaluate(() => window.probe.settle(window.probe.vault.spaces.list()));
    assert.equal(denied.ok, false);
    assert.equal(denied.code, "rpc.not_authorized");

    // The app's own window, closed by the app's Vault.close(): it goes with the connection.
    await app.evaluate(() => window.probe.vault.close());
    await vaultWindow.waitForEvent("close", { timeout: 5000 });
  } finally {
    await browser.close();
  }
});

test("the vault window serves only its opener, never a page without an origin, and nothing when opened by no app", async () => {
  const browser = await launchRegime("partitioned");
  try {
    const { context } = browser;
    // Opened as a tab of its own: no opener, no one to serve.
    const alone = await context.newPage();
    await alone.goto(`${sites.vault}/window.html`);
    await alone.getByText("No app opened this window").waitFor({ timeout: 5000 });
    await alone.close();

    // Framed by an app: refuses to run (a top-level vault page; the server also forbids framing).
    const framer = await context.newPage();
    await framer.goto(`${sites.probeA}/`);
    const framed = await framer.evaluate(async (url) => {
      const f = document.createElement("iframe");
      f.src = url;
      document.body.appendChild(f);
      await new Promise((r) => setTimeout(r, 1500));
      try {
        return f.contentDocument ? "readable" : "opaque";
      } catch {
        return "opaque";
      }
    }, `${sites.vault}/window.html`);
    assert.equal(framed, "opaque");
    const windowFrame = framer.frames().find((f) => f.url().includes("/window.html"));
    assert.ok(!windowFrame || !(await windowFrame.evaluate(() => document.documentElement.dataset.served ?? null).catch(() => null)), "a framed window serves no one");

    // Opened from a sandboxed frame (origin "null", popups escaping the sandbox): asked, it posts nothing back.
    await framer.evaluate(() => {
      const f = document.createElement("iframe");
      f.setAttribute("sandbox", "allow-scripts allow-popups allow-popups-to-escape-sandbox");
      // The app site forbids framing its pages by others; a srcdoc document is the app's own (the test drives it).
      f.srcdoc = "<p>a sandboxed frame</p>";
      f.name = "sandboxed";
      document.body.appendChild(f);
    });
    await sleep(1000);
    const sandboxed = framer.frame({ name: "sandboxed" });
    assert.ok(sandboxed, `the sandboxed frame loaded (frames: ${framer.frames().map((f) => f.url()).join(", ")})`);
    assert.equal(await sandboxed.evaluate(() => self.origin), "null");
    const popupP = context.waitForEvent("page");
    const answersP = sandboxed.evaluate(async (vaultOrigin) => {
      const w = window.open(`${vaultOrigin}/window.html`, "echo-vault", "popup");
      const answers = [];
      addEventListener("message", (e) => answers.push({ origin: e.origin, data: e.data, ports: e.ports.length }));
      for (let i = 0; i < 12; i++) {
        w.postMessage({ echo: "connect" }, vaultOrigin);
        await new Promise((r) => setTimeout(r, 250));
      }
      return answers;
    }, sites.vault);
    const popup = await popupP;
    const answers = await answersP;
    assert.deepEqual(answers, [], "no answer, no port to a page without an origin");
    await popup.getByText("An app without an address").waitFor({ timeout: 5000 });
    assert.equal(await popup.evaluate(() => document.documentElement.dataset.served ?? null), null);
  } finally {
    await browser.close();
  }
});

test("storage-access regime: nothing changes — connected through the iframe, no button, no window", async (t) => {
  const browser = await launchRegime("storage-access");
  try {
    const { context } = browser;
    const t0 = Date.now();
    const app = await openProbe(context, sites.probeA, { options: { slot: true }, state: ["not_authorized", "connected"], timeoutMs: 8000 });
    const ms = Date.now() - t0;
    timing(t, "storage-access: probe reached the vault through its iframe after", ms);
    assert.ok(ms < 5000, `${ms} ms`);
    const r = await app.evaluate(() => ({ via: window.probe.vault.via, access: window.probe.vault.storageAccess, shown: document.querySelector("#slot iframe")?.style.display }));
    assert.deepEqual(r, { via: "iframe", access: null, shown: "none" });
    assert.equal(context.pages().length, 2, "no window opened");
  } finally {
    await browser.close();
  }
});
