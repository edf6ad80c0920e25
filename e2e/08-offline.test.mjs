// 8. Offline: after one online visit of the demo app (consent, a list, a task), the browser goes offline; a
// reload loads the demo app and the vault from their service workers, a new task can be added, and it is still
// there after another reload — and in a fresh tab opened offline after every tab was closed (the engine's
// worker then starts offline too).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowDemo, sleep, timing } from "./lib/util.mjs";

const sites = await getSites();
let browser;
before(async () => {
  browser = await launchRegime("storage-access");
});
after(async () => browser?.close());

const ready = (page) => page.waitForFunction(() => document.querySelector("[data-testid=board]")?.dataset.ready === "true", null, { timeout: 15000 });
const taskRow = (page, title) => page.getByTestId("task").filter({ has: page.getByTestId("task-title").getByText(title, { exact: true }) });
const vaultFrame = (page) => page.frames().find((f) => f.url().startsWith(`${sites.vault}/vault.html`));
const swReady = (target) => target.evaluate(async () => {
  const reg = await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(() => r(null), 10000))]);
  if (!reg) return null;
  let cached = 0;
  for (const key of await caches.keys()) cached += (await (await caches.open(key)).keys()).length;
  return { scope: reg.scope, cached };
});

async function addTask(page, title) {
  await page.getByTestId("new-task-title").fill(title);
  await page.getByTestId("add-task").click();
  await taskRow(page, title).waitFor({ timeout: 5000 });
}

test("offline: demo app and vault load from their service workers; a task added offline stays", async (t) => {
  const { context } = browser;
  let page = await context.newPage();
  const failed = [];
  const t0 = Date.now();
  await page.goto(`${sites.demo}/`);
  await page.waitForFunction(() => document.querySelector("[data-testid=state]")?.dataset.state === "not_authorized", null, { timeout: 15000 });
  await allowDemo(context, page);
  await ready(page);
  await page.getByTestId("new-list-name").fill("Trip");
  await page.getByTestId("add-list").click();
  await page.getByTestId("list-Trip").click();
  await addTask(page, "Pack online");

  // Both service workers are installed and have cached their sites.
  const appSw = await swReady(page);
  assert.ok(appSw && appSw.cached > 0, `demo app service worker: ${JSON.stringify(appSw)}`);
  const frameSw = await swReady(vaultFrame(page));
  assert.ok(frameSw && frameSw.cached > 0, `vault service worker (iframe): ${JSON.stringify(frameSw)}`);
  timing(t, "online visit done, service workers ready", Date.now() - t0);

  await context.setOffline(true);
  context.on("requestfailed", (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`));
  // Reload offline.
  const t1 = Date.now();
  const response = await page.reload();
  assert.equal(response?.fromServiceWorker(), true, "the demo page came from its service worker");
  await ready(page);
  timing(t, "offline reload → board ready", Date.now() - t1);
  assert.equal(await page.getByTestId("state").getAttribute("data-state"), "connected");
  assert.equal(await vaultFrame(page).evaluate(() => navigator.serviceWorker.controller !== null), true, "the vault iframe is served by its service worker");
  await page.getByTestId("list-Trip").click();
  await taskRow(page, "Pack online").waitFor({ timeout: 5000 });
  await addTask(page, "Added offline");

  // Another reload, still offline.
  await page.reload();
  await ready(page);
  await page.getByTestId("list-Trip").click();
  await taskRow(page, "Added offline").waitFor({ timeout: 5000 });
  assert.equal(await page.getByTestId("task").count(), 2);

  // Every tab closed (the engine's SharedWorker goes), then a fresh tab, offline.
  await page.close();
  await sleep(1500);
  page = await context.newPage();
  const t2 = Date.now();
  await page.goto(`${sites.demo}/`);
  await ready(page);
  timing(t, "offline fresh tab → board ready", Date.now() - t2);
  await page.getByTestId("list-Trip").click();
  await taskRow(page, "Added offline").waitFor({ timeout: 5000 });
  await taskRow(page, "Pack online").waitFor({ timeout: 5000 });

  // The whole browser closed and started again on the same profile, offline from the start: nothing of the
  // vault is running, everything comes from the service workers and IndexedDB.
  await context.close();
  const again = await launchRegime("storage-access", { userDataDir: browser.userDataDir });
  try {
    await again.context.setOffline(true);
    const p2 = await again.context.newPage();
    const t3 = Date.now();
    const r = await p2.goto(`${sites.demo}/`);
    assert.equal(r?.fromServiceWorker(), true);
    await ready(p2);
    timing(t, "browser restarted offline → board ready", Date.now() - t3);
    await p2.getByTestId("list-Trip").click();
    await taskRow(p2, "Added offline").waitFor({ timeout: 5000 });
    await taskRow(p2, "Pack online").waitFor({ timeout: 5000 });
    await addTask(p2, "Added after restart");
    await p2.reload();
    await ready(p2);
    await p2.getByTestId("list-Trip").click();
    await taskRow(p2, "Added after restart").waitFor({ timeout: 5000 });
  } finally {
    await again.context.close();
  }
  console.log(`  requests that failed offline (answered by the pages' fallbacks): ${failed.length ? failed.join(" | ") : "none"}`);
});
