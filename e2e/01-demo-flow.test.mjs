// 1. The demo task board end to end, storage-access regime: connect, consent popup, a list, tasks with title,
// due date and tags, one toggled done, a note edited; after a reload everything is still there.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { clickInPopup, timing, watchErrors } from "./lib/util.mjs";

const sites = await getSites();
let browser;
before(async () => {
  browser = await launchRegime("storage-access");
});
after(async () => browser?.close());

const TASKS = [
  { title: "Buy milk", due: "2031-03-04", tags: ["shop", "home"] },
  { title: "Call Ana", due: "2031-05-06", tags: ["phone"] },
  { title: "Fix bike", due: "", tags: [] },
];
const NOTE = "2 litres, the organic one — ünïcødé ✓";

const task = (page, title) => page.getByTestId("task").filter({ has: page.getByTestId("task-title").getByText(title, { exact: true }) });

test("demo app: connect, consent, list, tasks, done, note — all there after a reload", async (t) => {
  const { context } = browser;
  const page = await context.newPage();
  const errors = watchErrors(page);
  const t0 = Date.now();
  await page.goto(`${sites.demo}/`);
  const state = page.getByTestId("state");
  await page.waitForFunction(() => document.querySelector("[data-testid=state]")?.dataset.state === "not_authorized", null, { timeout: 15000 });
  timing(t, "demo app reached not_authorized", Date.now() - t0);
  assert.equal(await page.getByTestId("connect").isVisible(), true, "the Connect button shows before consent");

  // Connect → the vault's consent popup → Allow.
  const popupP = context.waitForEvent("page");
  await page.getByTestId("connect").click();
  const popup = await popupP;
  await popup.waitForLoadState("load");
  assert.equal(new URL(popup.url()).origin, sites.vault, "the consent popup is a vault page");
  await popup.waitForFunction((app) => document.getElementById("origin")?.textContent === app, sites.demo, { timeout: 10000 });
  assert.ok(await clickInPopup(popup, "#allow"), "the consent popup closed after Allow");
  await page.waitForFunction(() => document.querySelector("[data-testid=board]")?.dataset.ready === "true", null, { timeout: 15000 });
  assert.equal(await state.getAttribute("data-state"), "connected");
  timing(t, "consent → board ready", Date.now() - t0);

  // A list.
  await page.getByTestId("new-list-name").fill("Groceries");
  await page.getByTestId("add-list").click();
  await page.getByTestId("list-Groceries").waitFor();
  await page.getByTestId("list-Groceries").click();
  await page.getByTestId("current-list-name").getByText("Groceries").waitFor();

  // Tasks with title, due date, tags.
  for (const x of TASKS) {
    await page.getByTestId("new-task-title").fill(x.title);
    if (x.due) await page.getByTestId("new-task-due").fill(x.due);
    await page.getByTestId("new-task-tags").fill(x.tags.join(", "));
    await page.getByTestId("add-task").click();
    await task(page, x.title).waitFor();
  }
  assert.equal(await page.getByTestId("task").count(), TASKS.length);

  // Toggle one done.
  await task(page, "Call Ana").getByTestId("task-done").check();
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=task]")]
    .some((el) => el.textContent.includes("Call Ana") && el.dataset.done === "true"), null, { timeout: 5000 });

  // Edit a note.
  const milk = task(page, "Buy milk");
  await milk.getByTestId("task-edit").click();
  await milk.getByTestId("task-note").fill(NOTE);
  await page.waitForFunction(() => /saved/.test(document.querySelector("[data-testid=task-note-status]")?.textContent ?? ""), null, { timeout: 5000 });
  timing(t, "list, 3 tasks, done, note", Date.now() - t0);

  // Reload: everything comes back from the vault.
  const t1 = Date.now();
  await page.reload();
  await page.waitForFunction(() => document.querySelector("[data-testid=board]")?.dataset.ready === "true", null, { timeout: 15000 });
  timing(t, "reload → board ready", Date.now() - t1);
  await page.getByTestId("list-Groceries").waitFor();
  await page.getByTestId("list-Groceries").click();
  await task(page, "Fix bike").waitFor({ timeout: 5000 });
  assert.equal(await page.getByTestId("task").count(), TASKS.length, "every task is back");
  for (const x of TASKS) {
    const row = task(page, x.title);
    assert.equal(await row.count(), 1, `${x.title} is there once`);
    if (x.due) assert.match(await row.getByTestId("task-due").textContent(), new RegExp(x.due), `${x.title}: due date`);
    else assert.doesNotMatch((await row.getByTestId("task-due").allTextContents()).join(" "), /\d{4}-\d\d-\d\d/, `${x.title}: no due date`);
    const tags = (await row.getByTestId("task-tag").allTextContents()).map((s) => s.replace(/^#/, "").trim()).sort();
    assert.deepEqual(tags, [...x.tags].sort(), `${x.title}: tags`);
    assert.equal(await row.getAttribute("data-done"), x.title === "Call Ana" ? "true" : "false", `${x.title}: done`);
  }
  const milkAgain = task(page, "Buy milk");
  await milkAgain.getByTestId("task-edit").click();
  await page.waitForFunction((note) => [...document.querySelectorAll("[data-testid=task-note]")].some((n) => n.value === note), NOTE, { timeout: 5000 })
    .catch(() => {});
  assert.equal(await milkAgain.getByTestId("task-note").inputValue(), NOTE, "the note text is back");
  assert.deepEqual(errors, [], "no page or console errors");
  await page.close();
});
