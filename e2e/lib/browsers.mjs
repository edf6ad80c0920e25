// One small driver interface over the three browser engines the e2e flows run in:
//
//   chromium  Debian's /usr/bin/chromium through playwright-core (CDP)           — lib/regimes.mjs's settings
//   firefox   Debian's /usr/bin/firefox-esr through puppeteer-core over WebDriver BiDi
//   webkit    WebKitGTK's MiniBrowser through Debian's WebKitWebDriver (classic WebDriver over HTTP, with the
//             small client below), on an Xvfb display: this MiniBrowser has no headless mode
//
// Nothing downloads a browser: each drives the Debian package's binary. Firefox and WebKit phone home (updates,
// telemetry, safe browsing, captive portal, remote settings, …), so `launch` refuses to start them outside a
// network namespace that has only `lo` (lib/netns.mjs); the tests that use them re-run themselves inside one,
// with their sites.
//
// A Browser: `newPage(url?)`, `popup(action)` (the page a click opens), `close()`, `regime`, `engine`.
// A Page: `goto`, `reload`, `evaluate(fn, arg)` (fn is serialized: no closures; arg and result are JSON),
// `waitFor(fn, arg, {timeoutMs, what})` (polls evaluate), `click(selector, {dialog: "accept"})`, `fill`,
// `check`, `pointer()` (a person's pointer moving over the page), `focus()`, `inFrame(urlPrefix, fn, arg)`,
// `clickInFrame(urlPrefix, selector)` (Chromium and Firefox),
// `setOffline(bool)` (false when the driver cannot), `url()`, `close()`.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { inLoopbackNamespace, assertLoopbackOnly } from "./netns.mjs";
import { launchRegime } from "./regimes.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOOLS = resolve(process.env.ECHO_TOOLS_DIR ?? join(ROOT, ".tools"), "npm");
const requireTool = createRequire(join(TOOLS, "package.json"));

export const FIREFOX = process.env.FIREFOX_PATH || "/usr/bin/firefox-esr";
export const WEBKIT_DRIVER = process.env.WEBKIT_WEBDRIVER_PATH || "/usr/bin/WebKitWebDriver";
export const MINIBROWSER = process.env.MINIBROWSER_PATH || "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

export const ENGINES = ["chromium", "firefox", "webkit"];

/**
 * The storage regimes of each engine: how a person's browser can be set, and what that means for the vault's
 * cross-site iframe.
 *   chromium  allowed (third-party cookies allowed) · partitioned (blocked; Chrome's default for many) · blocked
 *   firefox   allowed (network.cookie.cookieBehavior 0) · trackers (4: only known trackers' cookies blocked,
 *             the vault is none) · partitioned (5, Firefox's default: Total Cookie Protection) · blocked (1,
 *             "all third-party cookies") · private (a private window). Firefox 153 has no separate pref partitioning non-cookie storage:
 *             cookieBehavior decides it (privacy.partition.always_partition_third_party_non_cookie_storage is gone)
 *   webkit    default (MiniBrowser: no third-party cookies; ITP off) · cookies (--cookies-policy=always) ·
 *             itp (--enable-itp, Safari's default)
 */
export const REGIMES = {
  chromium: { allowed: "storage-access", partitioned: "partitioned", blocked: "blocked" },
  firefox: {
    allowed: { "network.cookie.cookieBehavior": 0 },
    trackers: { "network.cookie.cookieBehavior": 4 },
    partitioned: { "network.cookie.cookieBehavior": 5 },
    blocked: { "network.cookie.cookieBehavior": 1 },
    private: { "browser.privatebrowsing.autostart": true },
  },
  webkit: { default: [], cookies: ["--cookies-policy=always"], itp: ["--enable-itp"] },
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const source = (fn) => (typeof fn === "function" ? fn.toString() : `() => (${fn})`);

/**
 * What a Playwright page (Chromium) and a Puppeteer page (Firefox over BiDi) do alike: a person's pointer
 * moving in it, bringing it to the front, a script in one of its frames.
 */
function sharedPageOps(page) {
  return {
    async pointer() {
      await page.mouse.move(5, 5);
      await page.mouse.move(60, 40, { steps: 4 });
    },
    focus: () => page.bringToFront(),
    async inFrame(prefix, fn, arg) {
      const frame = page.frames().find((f) => f.url().startsWith(prefix));
      if (!frame) throw new Error(`no frame at ${prefix}`);
      return frame.evaluate(`(${source(fn)})(${JSON.stringify(arg ?? null)})`);
    },
    // A person's click on an element inside one of the page's frames (input events: the frame's own gesture).
    async clickInFrame(prefix, selector) {
      const frame = await poll(async () => page.frames().find((f) => f.url().startsWith(prefix)), null, null, { timeoutMs: 10000, what: `a frame at ${prefix}` });
      // Playwright (a `context()`) and Puppeteer spell "visible" differently.
      await frame.waitForSelector(selector, typeof page.context === "function" ? { state: "visible", timeout: 10000 } : { visible: true, timeout: 10000 });
      await frame.click(selector);
    },
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `engine` in `regime` (a key of REGIMES[engine]). */
export async function launch(engine, regime, options = {}) {
  if (engine !== "chromium") {
    // The network rule: these browsers contact their vendors' services unless every such feature is off;
    // inside a namespace with only `lo` nothing can leave the machine whatever they try.
    if (!inLoopbackNamespace()) throw new Error(`${engine} runs only inside a loopback-only network namespace (lib/netns.mjs)`);
    assertLoopbackOnly(engine);
  }
  const settings = REGIMES[engine]?.[regime];
  if (settings === undefined) throw new Error(`unknown ${engine} regime ${regime}`);
  if (engine === "chromium") return launchChromium(settings, regime, options);
  if (engine === "firefox") return launchFirefox(settings, regime, options);
  if (engine === "webkit") return launchWebKit(settings, regime, options);
  throw new Error(`unknown engine ${engine}`);
}

// --- Chromium (playwright-core) ---------------------------------------------------------------------------

// `contextOptions` and `setup(context)` (Chromium only): a test's own Playwright options and init scripts/routes.
async function launchChromium(chromiumRegime, regime, { userDataDir, contextOptions, setup } = {}) {
  const b = await launchRegime(chromiumRegime, { userDataDir, contextOptions });
  if (setup) await setup(b.context).catch(async (e) => {
    await b.close();
    throw e;
  });
  const wrap = (page) => playwrightPage(page);
  return {
    engine: "chromium",
    regime,
    userDataDir: b.userDataDir,
    async newPage(url) {
      const page = wrap(await b.context.newPage());
      if (url) await page.goto(url);
      return page;
    },
    async popup(action) {
      const next = b.context.waitForEvent("page", { timeout: 10000 });
      await action();
      const p = await next;
      await p.waitForLoadState("load");
      return wrap(p);
    },
    close: () => b.close(),
  };
}

function playwrightPage(page) {
  let dialogs = false;
  return {
    raw: page,
    goto: async (url) => void (await page.goto(url)),
    reload: async () => void (await page.reload()),
    url: () => page.url(),
    evaluate: (fn, arg) => page.evaluate(`(${source(fn)})(${JSON.stringify(arg ?? null)})`),
    waitFor: (fn, arg, opts) => poll((f, a) => page.evaluate(`(${source(f)})(${JSON.stringify(a ?? null)})`), fn, arg, opts),
    async click(selector, { dialog } = {}) {
      if (dialog && !dialogs) {
        dialogs = true;
        page.on("dialog", (d) => d.accept());
      }
      await page.click(selector);
    },
    fill: (selector, value) => page.fill(selector, value),
    check: (selector) => page.check(selector),
    ...sharedPageOps(page),
    setOffline: async (offline) => (await page.context().setOffline(offline), true),
    closed: () => page.isClosed(),
    close: () => page.close(),
  };
}

// --- Firefox (puppeteer-core over WebDriver BiDi) ---------------------------------------------------------

async function launchFirefox(prefs, regime, { userDataDir } = {}) {
  const puppeteer = requireTool("puppeteer-core");
  const dir = userDataDir ?? (await mkdtemp(join(tmpdir(), `echo-e2e-firefox-${regime}-`)));
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    userDataDir: dir,
    extraPrefsFirefox: {
      ...prefs,
      // Popups from a click open as windows (the consent popup), not tabs.
      "browser.link.open_newwindow.restriction": 0,
    },
  });
  const wrap = (page) => puppeteerPage(page);
  return {
    engine: "firefox",
    regime,
    userDataDir: dir,
    async newPage(url) {
      const page = wrap(await browser.newPage());
      if (url) await page.goto(url);
      return page;
    },
    async popup(action) {
      const before = new Set(await browser.pages());
      await action();
      const page = await poll(async () => (await browser.pages()).find((p) => !before.has(p)), null, null, { timeoutMs: 10000, what: "a popup" });
      const p = wrap(page);
      await p.waitFor(() => location.href !== "about:blank" && document.readyState === "complete", null, { what: "the popup to load" });
      return p;
    },
    async close() {
      await browser.close().catch(() => {});
      if (!userDataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

function puppeteerPage(page) {
  let dialogs = false;
  const evaluate = (fn, arg) => page.evaluate(`(${source(fn)})(${JSON.stringify(arg ?? null)})`);
  return {
    raw: page,
    goto: async (url) => void (await page.goto(url)),
    reload: async () => void (await page.reload()),
    url: () => page.url(),
    evaluate,
    waitFor: (fn, arg, opts) => poll(evaluate, fn, arg, opts),
    async click(selector, { dialog } = {}) {
      if (dialog && !dialogs) {
        dialogs = true;
        page.on("dialog", (d) => d.accept());
      }
      await page.click(selector);
    },
    async fill(selector, value) {
      await page.$eval(selector, (el) => (el.value = ""));
      await page.type(selector, value);
    },
    async check(selector) {
      if (!(await page.$eval(selector, (el) => el.checked))) await page.click(selector);
    },
    ...sharedPageOps(page),
    async setOffline(offline) {
      // BiDi emulation.setNetworkConditions; an old Firefox without it says so.
      try {
        await page.setOfflineMode(offline);
        return true;
      } catch (e) {
        if (/not supported|unknown command|UnsupportedOperation/i.test(String(e?.message))) return false;
        throw e;
      }
    },
    closed: () => page.isClosed(),
    close: () => page.close(),
  };
}

// --- WebKit (WebKitWebDriver, classic WebDriver) ----------------------------------------------------------
//
// A client of its own rather than an npm one: the tests need about fifteen endpoints of the W3C WebDriver spec,
// which are a few lines each over fetch; WebdriverIO and selenium-webdriver bring large dependency trees and
// download drivers or browsers of their own when they miss one (selenium-manager, @wdio/utils), which this
// project must never do.

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

class WebDriverError extends Error {}

async function startXvfb() {
  // -displayfd: Xvfb picks a free display and writes its number on that fd.
  const proc = spawn("Xvfb", ["-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "1280x1024x24"], { stdio: ["ignore", "ignore", "ignore", "pipe"] });
  const display = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdio[3].on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(`:${out.trim()}`);
    });
    proc.once("exit", (code) => reject(new Error(`Xvfb exited with ${code}`)));
    setTimeout(() => reject(new Error("Xvfb did not start")), 10000);
  });
  // A window manager (Debian's matchbox-window-manager, scripts/setup.sh), so that a popup a page opens
  // becomes the focused window, as on a desktop: without one, WebKit's popups never get the focus, and the
  // vault's consent popup arms Allow only once it is focused.
  const wm = spawn("matchbox-window-manager", ["-use_titlebar", "no"], { stdio: "ignore", env: { ...process.env, DISPLAY: display } });
  wm.on("error", () => {});
  await new Promise((r) => setTimeout(r, 300));
  return { display, stop: () => { wm.kill(); proc.kill(); } };
}

async function launchWebKit(args, regime) {
  const xvfb = await startXvfb();
  const port = await freePort();
  const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`], { stdio: ["ignore", "ignore", process.env.E2E_VERBOSE ? "inherit" : "ignore"], env: { ...process.env, DISPLAY: xvfb.display } });
  const base = `http://127.0.0.1:${port}`;
  const request = async (method, path, body) => {
    const r = await fetch(base + path, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await r.json().catch(() => ({}));
    if (!r.ok) throw new WebDriverError(`${method} ${path}: ${json.value?.error ?? r.status} ${json.value?.message ?? ""}`);
    return json.value;
  };
  await poll(() => request("GET", "/status").then(() => true, () => false), null, null, { timeoutMs: 10000, what: "WebKitWebDriver" });
  const session = await request("POST", "/session", {
    capabilities: { alwaysMatch: { "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation", ...args] }, unhandledPromptBehavior: "ignore" } },
  });
  const S = (p) => `/session/${session.sessionId}${p}`;
  let current = await request("GET", S("/window"));
  // Classic WebDriver drives one window at a time: each command switches to its page's window first.
  const on = async (handle) => {
    if (current !== handle) {
      await request("POST", S("/window"), { handle });
      current = handle;
    }
  };
  const first = { handle: current, used: false };
  const handles = () => request("GET", S("/window/handles"));

  const wrap = (handle) => {
    const cmd = async (method, path, body) => {
      await on(handle);
      return request(method, S(path), body);
    };
    const evaluate = async (fn, arg) => {
      const r = await cmd("POST", "/execute/async", {
        script: `const done = arguments[arguments.length - 1];
          Promise.resolve().then(() => (${source(fn)})(arguments[0]))
            .then((v) => done({ ok: v === undefined ? null : v }), (e) => done({ err: String((e && e.stack) || e) }));`,
        args: [arg ?? null],
      });
      if (r && "err" in r) throw new Error(`in the page: ${r.err}`);
      return r?.ok;
    };
    const find = async (selector) => {
      const el = await cmd("POST", "/element", { using: "css selector", value: selector });
      return el[ELEMENT];
    };
    let closed = false;
    return {
      handle,
      goto: (url) => cmd("POST", "/url", { url }).then(() => {}),
      reload: () => cmd("POST", "/refresh", {}).then(() => {}),
      url: () => cmd("GET", "/url"),
      evaluate,
      waitFor: (fn, arg, opts) => poll(evaluate, fn, arg, opts),
      async click(selector, { dialog } = {}) {
        // A page that re-renders between the find and the click (the demo app redraws its lists on every change)
        // leaves a stale element: find it again, as Playwright and Puppeteer do by themselves.
        await poll(
          async () => {
            const el = await find(selector).catch(() => null);
            if (!el) return false;
            return cmd("POST", `/element/${el}/click`, {}).then(
              () => true,
              (e) => {
                if (/stale element/i.test(e.message)) return false;
                throw e;
              },
            );
          },
          null,
          null,
          { timeoutMs: 10000, what: selector },
        );
        if (dialog) {
          await poll(() => cmd("GET", "/alert/text").then(() => true, () => false), null, null, { timeoutMs: 5000, what: "the dialog" });
          await cmd("POST", "/alert/accept", {});
        }
      },
      async fill(selector, value) {
        const el = await find(selector);
        await cmd("POST", `/element/${el}/clear`, {});
        await cmd("POST", `/element/${el}/value`, { text: value });
      },
      async check(selector) {
        const el = await find(selector);
        if (!(await cmd("GET", `/element/${el}/selected`))) await cmd("POST", `/element/${el}/click`, {});
      },
      async pointer() {
        await cmd("POST", "/actions", {
          actions: [{ type: "pointer", id: "mouse", parameters: { pointerType: "mouse" }, actions: [
            { type: "pointerMove", x: 5, y: 5, duration: 0 },
            { type: "pointerMove", x: 60, y: 40, duration: 100 },
          ] }],
        });
      },
      focus: () => on(handle),
      async inFrame(prefix, fn, arg) {
        await on(handle);
        const frames = await request("POST", S("/elements"), { using: "css selector", value: "iframe" });
        for (const f of frames) {
          await request("POST", S("/frame"), { id: f });
          try {
            if ((await request("GET", S("/url"))).startsWith(prefix) || (await evaluate(() => location.href)).startsWith(prefix)) return await evaluate(fn, arg);
          } finally {
            await request("POST", S("/frame/parent"), {});
          }
        }
        throw new Error(`no frame at ${prefix}`);
      },
      setOffline: async () => false,
      closed: () => closed,
      async close() {
        if (closed) return;
        closed = true;
        await on(handle);
        await request("DELETE", S("/window")).catch(() => {});
        current = null;
        const left = await handles().catch(() => []);
        if (left.length) await on(left[0]);
      },
    };
  };

  return {
    engine: "webkit",
    regime,
    async newPage(url) {
      let handle;
      if (!first.used) {
        first.used = true;
        handle = first.handle;
      } else {
        // A window, not a tab: MiniBrowser opens a new tab in the background (visibilityState "hidden"), and
        // WebKit blocks window.open from a hidden page even in a click (measured: the vault window came back
        // null, popup_blocked) — a person clicks in the tab they look at.
        handle = (await request("POST", S("/window/new"), { type: "window" })).handle;
      }
      const page = wrap(handle);
      if (url) await page.goto(url);
      return page;
    },
    async popup(action) {
      const before = new Set(await handles());
      await action();
      const handle = await poll(async () => (await handles()).find((h) => !before.has(h)), null, null, { timeoutMs: 10000, what: "a popup" });
      const page = wrap(handle);
      await page.waitFor(() => location.href !== "about:blank" && document.readyState === "complete", null, { what: "the popup to load" });
      return page;
    },
    async close() {
      await request("DELETE", S("")).catch(() => {});
      driver.kill();
      xvfb.stop();
    },
  };
}

/** Polls `fn(f, arg)` (or `fn()`) until truthy; throws after timeoutMs saying `what` and the last value. */
export async function poll(fn, f, arg, { timeoutMs = 15000, every = 100, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = f ? await fn(f, arg) : await fn();
    } catch (e) {
      // A page between two documents (a reload) cannot evaluate for a moment; a closed one never will.
      if (/no such window|Target closed|has been closed/i.test(e.message)) throw e;
      last = undefined;
    }
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(every);
  }
}
