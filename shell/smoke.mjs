#!/usr/bin/env node
// A smoke check of the built vault site, by hand:
//
//   node shell/smoke.mjs [--build] [web-build flags, e.g. --no-wasm --no-demo]
//
// --build runs scripts/web-build.mjs first (with the other flags). With the
// engine (pkg/echo-vault, built by scripts/wasm-build.sh) the storage-access regime
// also runs the whole consent flow: the app connects, asks, the user allows
// in the popup, the manage page lists the app and revokes it. Then it
// starts target/debug/echo-signal (build it once: cargo build -p echo-signal)
// with --vault-dir shell/dist and an app site (demo-app/dist when it exists
// and --no-demo is not given, else a throw-away probe app), opens
// http://vault.localhost:8600/{consent,manage,vault,index}.html in headless
// Chromium (playwright-core from .tools/npm, /usr/bin/chromium) and fails on
// any CSP violation, console error or page error. Then a probe app page on
// http://app.localhost:8601 embeds vault.html in each storage regime of
// TOOLCHAIN.md and checks the shell's answer to {echo: "connect"}:
// "connected" with a port and the engine's reply to a hello when the iframe
// gets storage access, "refused" with storage_partitioned / storage_blocked
// otherwise. Ports: ECHO_SMOKE_VAULT_PORT / ECHO_SMOKE_APP_PORT (8600/8601).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { launchRegime } from "../e2e/lib/regimes.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const BUILD = args.includes("--build");
const buildFlags = args.filter((a) => a !== "--build");
let NO_WASM = true; // set once shell/dist is there: built with the engine?
const VAULT_PORT = Number(process.env.ECHO_SMOKE_VAULT_PORT ?? 8600);
const APP_PORT = Number(process.env.ECHO_SMOKE_APP_PORT ?? 8601);
const VAULT = `http://vault.localhost:${VAULT_PORT}`;
const APP = `http://app.localhost:${APP_PORT}`;


let failures = 0;
const ok = (msg) => console.log(`  ok   ${msg}`);
const fail = (msg) => {
  failures++;
  console.log(`  FAIL ${msg}`);
};

if (BUILD) {
  const run = spawnSync(process.execPath, [join(ROOT, "scripts", "web-build.mjs"), ...buildFlags], { stdio: "inherit" });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
const server = join(ROOT, "target", "debug", "echo-signal");
if (!existsSync(server)) {
  console.error("target/debug/echo-signal is missing: cargo build -p echo-signal");
  process.exit(1);
}
if (!existsSync(join(ROOT, "shell", "dist", "manage.html"))) {
  console.error("shell/dist is not built: node scripts/web-build.mjs (or pass --build)");
  process.exit(1);
}
NO_WASM = !readdirSync(join(ROOT, "shell", "dist")).some((f) => /^echo_vault\.[0-9a-f]{8}\.js$/.test(f));

// The probe app: an app page that embeds the vault and reports what it answered.
const probeDir = await mkdtemp(join(tmpdir(), "echo-smoke-app-"));
await writeFile(
  join(probeDir, "probe.html"),
  `<!doctype html><html><head><meta charset="utf-8"><title>probe</title>
<script type="module" src="/probe.js"></script></head><body><button id="consent">Ask</button></body></html>\n`,
);
await writeFile(
  join(probeDir, "probe.js"),
  `const vault = ${JSON.stringify(VAULT)};
window.__probe = new Promise((resolve) => {
  const frame = document.createElement("iframe");
  frame.src = vault + "/vault.html";
  frame.addEventListener("load", () => {
    const started = Date.now();
    addEventListener("message", (event) => {
      if (event.origin !== vault || event.source !== frame.contentWindow) return;
      const data = event.data;
      const result = { echo: data.echo, state: data.state, error: data.error, storage: data.storage,
                       ports: event.ports.length, ms: Date.now() - started };
      if (data.echo !== "connected" || !event.ports[0]) return resolve(result);
      const port = event.ports[0];
      window.__port = port;
      window.__events = [];
      const timer = setTimeout(() => resolve({ ...result, reply: "none within 5 s" }), 5000);
      port.onmessage = (reply) => {
        clearTimeout(timer);
        resolve({ ...result, reply: JSON.parse(reply.data) });
        port.onmessage = (later) => window.__events.push(JSON.parse(later.data));
      };
      port.postMessage(JSON.stringify({ hello: { versions: [1], client: "echo-smoke" } }));
    });
    frame.contentWindow.postMessage({ echo: "connect" }, vault);
  }, { once: true });
  document.body.appendChild(frame);
});
// A second connect on the same iframe: a second, independent port.
window.__second = () => new Promise((resolve) => {
  const frame = document.querySelector("iframe");
  const first = window.__port;
  const firstEvents = window.__events;
  const onMessage = (event) => {
    if (event.origin !== vault || event.source !== frame.contentWindow || event.data.echo !== "connected") return;
    removeEventListener("message", onMessage);
    // The first probe's listener saw this answer too: keep the first port as the app's.
    window.__port = first;
    window.__events = firstEvents;
    const port = event.ports[0];
    if (!port || port === first) return resolve({ ports: event.ports.length, same: port === first });
    port.onmessage = (reply) => resolve({ ports: 1, reply: Object.keys(JSON.parse(reply.data))[0] });
    port.postMessage(JSON.stringify({ hello: { versions: [1], client: "echo-smoke second" } }));
  };
  addEventListener("message", onMessage);
  frame.contentWindow.postMessage({ echo: "connect" }, vault);
});
// The SDK's side of the consent popup (docs/browser-vault.md, section 3).
window.__consent = [];
document.getElementById("consent").addEventListener("click", () => {
  const popup = window.open(vault + "/consent.html", "echo-consent", "popup,width=480,height=640");
  addEventListener("message", (event) => {
    if (event.source !== popup || event.origin !== vault) return;
    window.__consent.push(event.data);
    if (event.data.echo === "consent_ready") popup.postMessage({ echo: "consent_request", app_name: "Smoke probe" }, vault);
  });
});
`,
);
const useDemo = !buildFlags.includes("--no-demo") && existsSync(join(ROOT, "demo-app", "dist", "index.html"));
let appDir = probeDir;
if (useDemo) {
  // The demo app's files plus the probe, in a copy (dist/ stays as built).
  appDir = join(probeDir, "site");
  await mkdir(appDir);
  spawnSync("cp", ["-r", `${join(ROOT, "demo-app", "dist")}/.`, appDir]);
  spawnSync("cp", [join(probeDir, "probe.html"), join(probeDir, "probe.js"), appDir]);
}

const proc = spawn(
  server,
  ["--vault-dir", join(ROOT, "shell", "dist"), "--vault-addr", `127.0.0.1:${VAULT_PORT}`,
   "--app-dir", appDir, "--app-addr", `127.0.0.1:${APP_PORT}`],
  { stdio: ["ignore", "inherit", "inherit"] },
);
const stopServer = () => {
  if (proc.exitCode === null) proc.kill("SIGTERM");
};
process.on("exit", stopServer);

async function waitHealthy(url) {
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`echo-signal exited with ${proc.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

// Chromium in the storage regimes of TOOLCHAIN.md: e2e/lib/regimes.mjs.
const REGIMES = {
  "storage-access": { expect: "connected" },
  partitioned: { expect: "storage_partitioned" },
  blocked: { expect: "storage_blocked" },
};
const launch = (regime) => launchRegime(regime);

/** Console errors, page errors and CSP violations of a page while `fn` runs. */
function watch(page) {
  const problems = [];
  const expected = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    if (/^Failed to load resource/.test(text)) return; // reported with its URL below
    // Chromium's own notes when it refuses requestStorageAccess (partitioned, blocked).
    if (/^requestStorageAccess: /.test(text)) return void expected.push(text);
    // Built without the engine, its failure is expected (and logged).
    if (NO_WASM && /vault engine failed|cannot start|without its engine/.test(text)) expected.push(text);
    else problems.push(`console: ${text}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });
  return { problems, expected };
}

async function checkPage(context, path, check) {
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile ?? ""}:${e.lineNumber ?? ""}`));
  });
  const seen = watch(page);
  const response = await page.goto(`${VAULT}${path}`, { waitUntil: "load" });
  if (!response || response.status() !== 200) fail(`${path}: HTTP ${response?.status()}`);
  await page.waitForTimeout(1500);
  const csp = await page.evaluate(() => window.__csp);
  for (const v of csp) seen.problems.push(`CSP: ${v}`);
  if (check) await check(page, seen);
  if (seen.problems.length) fail(`${path}: ${seen.problems.join(" | ")}`);
  else ok(`${path}: no CSP violation, console error or page error${seen.expected.length ? ` (engine failure expected: no wasm)` : ""}`);
  await page.close();
}

/** Opens the consent popup from the probe app and answers its handshake. */
async function checkConsent(page) {
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#consent")]);
  const seen = watch(popup);
  await popup.waitForLoadState("load");
  try {
    await popup.waitForFunction((app) => document.getElementById("origin")?.textContent === app, APP, { timeout: 5000 });
    ok(`consent popup shows the requesting origin ${APP} (${await popup.locator("#app-name").textContent()})`);
  } catch {
    fail(`consent popup shows ${JSON.stringify(await popup.locator("#origin").textContent())}, not ${APP}`);
    return;
  }
  await popup.waitForTimeout(500);
  if (NO_WASM) {
    await popup.click("#deny");
    await popup.waitForFunction(() => /Could not save/.test(document.getElementById("notice")?.textContent ?? ""), null, { timeout: 5000 })
      .then(() => ok("consent popup: Deny without an engine shows the error, popup stays open"))
      .catch(async () => fail(`consent popup after Deny: ${await popup.locator("#notice").textContent()}`));
  } else {
    const boxes = await popup.locator("input[name=space]").count();
    if (boxes > 0) await popup.locator("input[name=space]").first().check();
    await popup.screenshot({ path: join(tmpdir(), "echo-smoke-consent.png") });
    const closed = popup.waitForEvent("close", { timeout: 5000 }).then(() => true, () => false);
    await popup.click("#allow");
    if (!(await closed)) fail(`consent popup did not close after Allow: ${await popup.locator("#notice").textContent()}`);
    const messages = await page.evaluate(() => window.__consent);
    if (messages.some((m) => m.echo === "consent_result" && m.allowed === true))
      ok(`consent popup: Allow (${boxes} space box(es)) → consent_result {allowed: true}, closed`);
    else fail(`consent popup: opener got ${JSON.stringify(messages)}`);
  }
  if (seen.problems.length) fail(`consent popup: ${seen.problems.join(" | ")}`);
}

/** As the user allowed the probe app: it gets access_granted, the manage page lists it, Revoke cuts it off. */
async function checkGrantAndRevoke(context, page) {
  const call = (id, method) => page.evaluate(([id, method]) => new Promise((resolve) => {
    const port = window.__port;
    const previous = port.onmessage;
    port.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (data.response?.id === id) { port.onmessage = previous; resolve(data.response.result); }
      else previous?.(event);
    };
    port.postMessage(JSON.stringify({ request: { id, method } }));
  }), [id, method]);
  await page.waitForTimeout(300);
  const events = await page.evaluate(() => window.__events);
  if (events.some((e) => e.event?.event?.access_granted)) ok("the app's connection got access_granted");
  else fail(`no access_granted on the app's connection: ${JSON.stringify(events)}`);
  const created = await call(1, { "spaces.create": { properties: { name: { string: "Smoke notes" } } } });
  if (created.Ok?.space) ok(`the app created a space: ${created.Ok.space.space}`);
  else fail(`spaces.create: ${JSON.stringify(created)}`);

  const manage = await context.newPage();
  const seen = watch(manage);
  manage.on("dialog", (dialog) => dialog.accept());
  await manage.goto(`${VAULT}/manage.html`);
  const card = manage.locator(".card", { hasText: APP });
  try {
    await card.waitFor({ timeout: 5000 });
    await manage.locator("td", { hasText: "Smoke notes" }).waitFor({ timeout: 5000 });
    ok(`manage page lists ${APP} (${(await card.innerText()).split("\n").join(" / ")}) and its space`);
  } catch {
    fail(`manage page does not list the app and its space: ${await manage.locator("main").innerText()}`);
    return;
  }
  await manage.screenshot({ path: join(tmpdir(), "echo-smoke-manage.png"), fullPage: true });
  await card.locator("button", { hasText: "Revoke" }).click();
  try {
    await manage.locator("#apps .empty").waitFor({ timeout: 5000 });
    ok("Revoke: the manage page lists no app any more");
  } catch {
    fail(`after Revoke: ${await manage.locator("#apps").innerText()}`);
  }
  await page.waitForTimeout(300);
  const after = await page.evaluate(() => window.__events);
  if (after.some((e) => e.event?.event?.access_revoked)) ok("the app's connection got access_revoked");
  else fail(`no access_revoked on the app's connection: ${JSON.stringify(after)}`);

  // Asked again, the popup offers the space; allowed with it, the manage page says so.
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#consent")]);
  const popupSeen = watch(popup);
  const box = popup.locator("input[name=space]");
  try {
    await box.first().waitFor({ timeout: 5000 });
    if (await box.first().isChecked()) fail("consent popup: a space is checked at first");
    await box.first().check();
    await popup.screenshot({ path: join(tmpdir(), "echo-smoke-consent-spaces.png") });
    const closed = popup.waitForEvent("close", { timeout: 5000 }).then(() => true, () => false);
    await popup.click("#allow");
    if (!(await closed)) fail("consent popup did not close after Allow");
    await manage.locator(".card", { hasText: "Can see: Smoke notes" }).waitFor({ timeout: 5000 });
    ok("asked again: the popup lists the space unchecked; allowed with it, the manage page shows the grant");
  } catch (error) {
    fail(`second consent: ${error.message.split("\n")[0]}`);
  }
  for (const problem of popupSeen.problems) seen.problems.push(`popup: ${problem}`);
  if (seen.problems.length) fail(`manage page: ${seen.problems.join(" | ")}`);
  await manage.close();
}

/** Without SharedWorker: two manage pages, one leads (dedicated worker), one relays; the relay survives the leader. */
async function checkFallback() {
  const { context, close } = await launch("storage-access");
  await context.addInitScript(() => {
    delete window.SharedWorker;
  });
  const open = async () => {
    const page = await context.newPage();
    const seen = watch(page);
    await page.goto(`${VAULT}/manage.html`);
    return { page, seen };
  };
  const identity = (page) =>
    page.waitForFunction(() => document.getElementById("identity")?.dataset.loaded === "yes", null, { timeout: 5000 })
      .then(() => true, () => false);
  const a = await open();
  const b = await open();
  if ((await identity(a.page)) && (await identity(b.page))) ok("no SharedWorker: the leader page and a relaying page both read the vault");
  else fail(`no SharedWorker: ${await a.page.locator("#banner").textContent()} / ${await b.page.locator("#banner").textContent()}`);
  // The relaying page names itself; the leader's engine must see it.
  await b.page.fill("#name-input", "Relayed");
  await b.page.click("#name-save");
  try {
    await a.page.locator("#identity", { hasText: "Relayed" }).waitFor({ timeout: 5000 });
    ok("no SharedWorker: a write through the relay reaches the leader's engine, and its changed event the leader page");
  } catch {
    fail(`no SharedWorker: the leader page did not see the relayed write: ${await a.page.locator("#identity").innerText()}`);
  }
  await a.page.close();
  await b.page.waitForTimeout(1000);
  await b.page.evaluate(() => { document.getElementById("identity").dataset.loaded = "no"; });
  await b.page.fill("#name-input", "After");
  await b.page.click("#name-save");
  try {
    await b.page.locator("#identity", { hasText: "After" }).waitFor({ timeout: 5000 });
    ok("no SharedWorker: after the leader left, the other page took over and reads and writes again");
  } catch {
    fail(`no SharedWorker: after the leader left: ${await b.page.locator("main").innerText()}`);
  }
  for (const { seen } of [a, b]) if (seen.problems.length) fail(`no SharedWorker: ${seen.problems.join(" | ")}`);
  await close();
}

/** The demo app's page loads without CSP violations or errors and reaches a state. */
async function checkDemo() {
  const { context, close } = await launch("storage-access");
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const seen = watch(page);
  await page.goto(`${APP}/`);
  await page.waitForFunction(() => document.querySelector("[data-testid=state]")?.dataset.state !== "connecting", null, { timeout: 12000 })
    .catch(() => {});
  const state = await page.locator("[data-testid=state]").getAttribute("data-state").catch(() => null);
  const sw = await page.evaluate(async () => {
    const reg = await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(() => r(null), 5000))]);
    return reg ? { scope: reg.scope, caches: await caches.keys() } : null;
  });
  if (sw) ok(`demo app service worker active at ${sw.scope} (${sw.caches.join(",")})`);
  else fail("demo app: no service worker within 5 s");
  for (const v of await page.evaluate(() => window.__csp)) seen.problems.push(`CSP: ${v}`);
  if (!NO_WASM && state === "not_authorized") {
    // The SDK's requestAccess() opens our consent popup; allowing gets the board going.
    try {
      const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("[data-testid=connect]")]);
      const popupSeen = watch(popup);
      await popup.waitForFunction((app) => document.getElementById("origin")?.textContent === app, APP, { timeout: 5000 });
      await popup.waitForFunction(() => !document.getElementById("allow")?.disabled, null, { timeout: 5000 });
      await popup.click("#allow");
      await page.waitForFunction(() => document.querySelector("[data-testid=board]")?.dataset.ready === "true", null, { timeout: 10000 });
      ok("demo app: Connect → consent popup (the SDK's handshake) → Allow → board ready");
      for (const problem of popupSeen.problems) seen.problems.push(`popup: ${problem}`);
    } catch (error) {
      fail(`demo app consent flow: ${error.message.split("\n")[0]}; state ${await page.locator("[data-testid=state]").getAttribute("data-state")}`);
    }
  }
  if (seen.problems.length) fail(`demo app: ${seen.problems.join(" | ")}`);
  else ok(`demo app ${APP}/: no CSP violation, console error or page error; state ${state} at first`);
  await close();
}

try {
  await waitHealthy(`http://127.0.0.1:${VAULT_PORT}/healthz`);
  await waitHealthy(`http://127.0.0.1:${APP_PORT}/healthz`);
  console.log(`smoke: ${VAULT} and ${APP}${NO_WASM ? " (no engine wasm: engine failure expected)" : ""}`);

  // Top-level vault pages.
  {
    const { context, close } = await launch("storage-access");
    await checkPage(context, "/manage.html", async (page) => {
      const banner = await page.locator("#banner").textContent();
      const hidden = await page.locator("#banner").isHidden();
      const storage = await page.locator("#storage").innerText();
      if (!/used of/.test(storage)) fail(`/manage.html: storage panel says ${JSON.stringify(storage)}`);
      if (NO_WASM) {
        if (hidden || !/cannot/i.test(banner ?? "")) fail(`/manage.html: no engine error shown (${banner})`);
        else ok(`/manage.html shows the engine's failure: ${banner}`);
      } else if (!hidden) fail(`/manage.html: banner ${banner}`);
      else ok(`/manage.html: identity ${(await page.locator("#identity").innerText()).split("\n").join(" ")}`);
    });
    await checkPage(context, "/consent.html", async (page) => {
      const notice = await page.locator("#notice").textContent();
      if (!/Open it from an app/.test(notice ?? "")) fail(`/consent.html without opener: ${notice}`);
      else ok("/consent.html without an opener says so, buttons disabled: " +
        String(await page.locator("#allow").isDisabled()));
    });
    await checkPage(context, "/vault.html");
    await checkPage(context, "/index.html");
    const sw = await context.newPage();
    await sw.goto(`${VAULT}/manage.html`);
    const registered = await sw.evaluate(async () => {
      const reg = await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(() => r(null), 5000))]);
      if (!reg) return null;
      const keys = await caches.keys();
      const cached = keys.length ? (await (await caches.open(keys[0])).keys()).length : 0;
      return { scope: reg.scope, keys, cached };
    });
    if (!registered) fail("service worker: not ready within 5 s");
    else {
      ok(`service worker active at ${registered.scope}, caches ${registered.keys.join(",")}, ${registered.cached} entries`);
      // No page left, so the engine's SharedWorker ends and must start again offline.
      for (const p of context.pages()) await p.close();
      await new Promise((r) => setTimeout(r, 1500));
      await context.setOffline(true);
      for (const path of ["/manage.html", "/consent.html", "/vault.html"]) {
        const page = await context.newPage();
        const seen = watch(page);
        try {
          await page.goto(`${VAULT}${path}`, { waitUntil: "load" });
          const css = await page.evaluate(() => getComputedStyle(document.body).fontFamily);
          const controlled = await page.evaluate(() => navigator.serviceWorker.controller !== null);
          const engine = path === "/manage.html" && !NO_WASM
            ? await page.waitForFunction(() => document.getElementById("identity")?.dataset.loaded === "yes", null, { timeout: 5000 })
              .then(() => " and the engine started offline", () => null)
            : "";
          if (!controlled || !/system-ui/.test(css)) fail(`offline ${path}: controlled ${controlled}, font ${css}`);
          else if (engine === null) fail(`offline ${path}: the engine did not start: ${await page.locator("#banner").textContent()}`);
          else if (seen.problems.length) fail(`offline ${path}: ${seen.problems.join(" | ")}`);
          else ok(`offline ${path}: served by the service worker (controlled, CSS applied, no failed request)${engine}`);
        } catch (error) {
          fail(`offline ${path}: ${error.message}`);
        }
        await page.close();
      }
      await context.setOffline(false);
    }
    await close();
  }

  if (!NO_WASM) await checkFallback();
  if (useDemo) await checkDemo();

  // The iframe shell in each storage regime.
  for (const [regime, r] of Object.entries(REGIMES)) {
    const { context, close } = await launch(regime);
    const page = await context.newPage();
    const seen = watch(page);
    await page.goto(`${APP}/probe.html`);
    const result = await page.evaluate(() => Promise.race([window.__probe,
      new Promise((res) => setTimeout(() => res({ echo: "no answer within 8 s" }), 8000))]));
    const via = await page.frames().find((f) => f.url().startsWith(VAULT))?.evaluate(() => document.documentElement.dataset.storage);
    result.via = via;
    const got = result.echo === "refused" ? result.state : result.echo;
    const summary = JSON.stringify(result);
    if (got !== r.expect) fail(`${regime}: expected ${r.expect}, got ${summary}`);
    else if (result.ms > 5000) fail(`${regime}: answered after ${result.ms} ms (> 5 s)`);
    else if (r.expect === "connected" && (result.ports !== 1 || !result.reply || typeof result.reply !== "object"))
      fail(`${regime}: connected without a working port: ${summary}`);
    else if (r.expect === "connected" && result.via !== "handle")
      fail(`${regime}: joined the engine through the ${result.via} (partitioned) storage, not the storage-access handle`);
    else ok(`${regime}: ${summary}`);
    if (regime === "storage-access" && got === "connected") {
      const second = await page.evaluate(() => Promise.race([window.__second(),
        new Promise((res) => setTimeout(() => res({ reply: "none within 5 s" }), 5000))]));
      const wanted = NO_WASM ? "refused" : "welcome";
      if (second.ports === 1 && second.reply === wanted) ok(`a second connect gets a second port, answered with ${wanted}`);
      else fail(`second connect: ${JSON.stringify(second)}`);
      await checkConsent(page);
      if (!NO_WASM) await checkGrantAndRevoke(context, page);
    }
    if (seen.problems.length) fail(`${regime}: ${seen.problems.join(" | ")}`);
    await close();
  }
} catch (error) {
  fail(String(error?.stack ?? error));
} finally {
  stopServer();
  await rm(probeDir, { recursive: true, force: true });
}
console.log(failures ? `smoke: ${failures} failed` : "smoke: all passed");
process.exit(failures ? 1 : 0);
