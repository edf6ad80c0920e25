// 2. Live updates across tabs: two demo-app tabs on one vault; a list and a task added in one appear in the
// other without a reload, and a task marked done in the second shows as done in the first.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowDemo, timing, watchErrors } from "./lib/util.mjs";

const sites = await getSites();
let browser;
before(async () => {
  browser = await launchRegime("storage-access");
});
after(async () => browser?.close());

const ready = (page) => page.waitForFunction(() => document.querySelector("[data-testid=board]")?.dataset.ready === "true", null, { timeout: 15000 });
const taskRow = (page, title) => page.getByTestId("task").filter({ has: page.getByTestId("task-title").getByText(title, { exact: true }) });

test("demo app: a task added in one tab appears in the other without reload", async (t) => {
  const { context } = browser;
  const a = await context.newPage();
  const errors = [watchErrors(a)];
  await a.goto(`${sites.demo}/`);
  await a.waitForFunction(() => document.querySelector("[data-testid=state]")?.dataset.state === "not_authorized", null, { timeout: 15000 });
  await allowDemo(context, a);
  await ready(a);

  const b = await context.newPage();
  errors.push(watchErrors(b));
  await b.goto(`${sites.demo}/`);
  await ready(b);
  assert.equal(await b.getByTestId("no-list").isVisible(), true, "tab B starts with no list");

  // A list made in A shows up in B.
  let t0 = Date.now();
  await a.getByTestId("new-list-name").fill("Shared");
  await a.getByTestId("add-list").click();
  await b.getByTestId("list-Shared").waitFor({ timeout: 5000 });
  timing(t, "list in A → visible in B", Date.now() - t0);
  await b.getByTestId("list-Shared").click();
  // The tab the user works in is in front (a background tab gets no animation frames: Playwright's
  // actionability checks then wait ~2 s); the other tab updates from the background.
  await a.bringToFront();
  await a.getByTestId("list-Shared").click();

  // A task added in A appears in B.
  t0 = Date.now();
  await a.getByTestId("new-task-title").fill("Water the plants");
  await a.getByTestId("new-task-tags").fill("home");
  await a.getByTestId("add-task").click();
  await taskRow(a, "Water the plants").waitFor({ timeout: 5000 });
  timing(t, "task in A → visible in A", Date.now() - t0);
  await taskRow(b, "Water the plants").waitFor({ timeout: 5000 });
  timing(t, "task in A → visible in B", Date.now() - t0);
  assert.deepEqual(await taskRow(b, "Water the plants").getByTestId("task-tag").allTextContents().then((x) => x.map((s) => s.replace(/^#/, "").trim())), ["home"]);

  // And back: B marks it done, A sees it done; B adds one, A sees it.
  await b.bringToFront();
  t0 = Date.now();
  await taskRow(b, "Water the plants").getByTestId("task-done").check();
  await a.waitForFunction(() => [...document.querySelectorAll("[data-testid=task]")]
    .some((el) => el.textContent.includes("Water the plants") && el.dataset.done === "true"), null, { timeout: 5000 });
  await b.getByTestId("new-task-title").fill("Feed the cat");
  await b.getByTestId("add-task").click();
  await taskRow(a, "Feed the cat").waitFor({ timeout: 5000 });
  timing(t, "done + task in B → visible in A", Date.now() - t0);
  assert.equal(await a.getByTestId("task").count(), 2);
  assert.equal(await b.getByTestId("task").count(), 2);
  for (const e of errors) assert.deepEqual(e, [], "no page or console errors");
});
