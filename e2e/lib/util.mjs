// Small helpers shared by the e2e tests.
import assert from "node:assert/strict";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Logs a timing line. */
export function timing(t, label, ms) {
  const line = `${label}: ${Math.round(ms)} ms`;
  console.log(`  [time] ${line}`);
}

/** Polls `fn` until it returns a truthy value, or throws after `timeoutMs` with `what`. */
export async function until(fn, { timeoutMs = 10000, every = 50, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(every);
  }
}

/** Collects page errors and console errors (CSP violations show up there too). */
export function watchErrors(page, { ignore = [] } = {}) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    if (ignore.some((re) => re.test(text))) return;
    errors.push(`console: ${text}`);
  });
  return errors;
}

/** Opens the probe page at `url`, starts its SDK connection and waits until its state is `state` (or one of them). */
export async function openProbe(context, url, { options = {}, state = null, timeoutMs = 15000 } = {}) {
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.waitForFunction(() => window.probe !== undefined);
  await page.evaluate((o) => window.probe.start(o), options);
  if (state) await waitState(page, state, timeoutMs);
  return page;
}

export async function waitState(page, states, timeoutMs = 15000) {
  const want = Array.isArray(states) ? states : [states];
  await page.waitForFunction((w) => w.includes(window.probe.vault?.state), want, { timeout: timeoutMs });
  return page.evaluate(() => window.probe.vault.state);
}

/**
 * A person in the consent popup: moves the pointer in it (its buttons arm only once the popup was visible and
 * focused for a moment and a pointer moved: shell/src/consent.ts), waits until `button` works, clicks it.
 * Resolves with whether the popup then closed.
 */
export async function clickInPopup(popup, button, { timeoutMs = 10000 } = {}) {
  await popup.waitForLoadState("load");
  await popup.mouse.move(5, 5);
  await popup.mouse.move(60, 40, { steps: 4 });
  await popup.waitForFunction((b) => document.querySelector(b)?.disabled === false, button, { timeout: timeoutMs });
  const closed = popup.waitForEvent("close", { timeout: timeoutMs }).then(() => true, () => false);
  await popup.click(button);
  return closed;
}

/**
 * The user allows the probe app in the consent popup: click "Ask", the popup opens, check the spaces whose
 * ids are in `spaces`, click Allow. Returns the popup's list of offered space ids.
 */
export async function allowInPopup(context, page, { spaces = [] } = {}) {
  const popupP = context.waitForEvent("page", { timeout: 10000 });
  await page.click("#ask");
  const popup = await popupP;
  await popup.waitForLoadState("load");
  // The spaces are listed once the admin port answered.
  await popup.waitForFunction(() => !/Loading/.test(document.getElementById("spaces")?.textContent ?? "Loading"), null, { timeout: 10000 });
  const offered = await popup.$$eval("input[name=space]", (els) => els.map((e) => e.value));
  for (const id of spaces) await popup.check(`input[name=space][value="${id}"]`);
  if (!(await clickInPopup(popup, "#allow"))) {
    throw new Error(`the consent popup did not close after Allow; it says: ${await popup.locator("#notice").textContent().catch((e) => e.message)}`);
  }
  const access = await (await page.waitForFunction(() => window.probe.access, null, { timeout: 10000 })).jsonValue();
  assert.equal(access.ok, true, `requestAccess failed: ${JSON.stringify(access)}`);
  assert.equal(access.value.allowed, true);
  return offered;
}

/** The user connects the demo app on `page`: "Connect to your vault" → the consent popup → Allow (it closes). */
export async function allowDemo(context, page) {
  const popupP = context.waitForEvent("page");
  await page.getByTestId("connect").click();
  const popup = await popupP;
  assert.ok(await clickInPopup(popup, "#allow"), "the consent popup closed after Allow");
}

/**
 * The engine's diagnosis (`{diagnose: {}}` on a control port of its own to the vault's SharedWorker), read from a
 * Playwright page of the vault's origin.
 */
export const engineDiagnosis = (page) =>
  page.evaluate(
    () =>
      new Promise((resolve) => {
        const worker = new SharedWorker("/engine-worker.js", { type: "module", name: "echo-engine", sameSiteCookies: "none" });
        worker.port.onmessage = (event) => {
          if (event.data?.diagnosis) {
            worker.port.close();
            resolve(event.data.diagnosis);
          }
        };
        worker.port.postMessage({ diagnose: {} });
      }),
  );
