// 7. Kill test: the probe app writes 1,000 objects one by one, awaiting each; the test records every
// acknowledged id (from the page's console) and SIGKILLs the whole browser (its process group: no clean
// shutdown) after a seeded-random number of acknowledgements; Chromium restarts on the same profile, the vault
// must open (the app connected, its grant there) and every acknowledged object must be there (queried by type).
// Three kill points in `make test`, printed. Storage-access regime.
//   E2E_KILL_ROUNDS=<n> kills n times (the long run: E2E_KILL_ROUNDS=100, ~15 min; e2e/README.md).
//   E2E_KILL_SEED=<n> picks other kill points (default below).
//   E2E_KILL_NEGATIVE=1 is the negative control: the probe "acknowledges" ids before writing them, so this
//   test must FAIL (objects reported as lost) — it shows the check can see a loss.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, chromiumArgs, EXECUTABLE, writeProfile } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowInPopup, openProbe, timing, until, waitState } from "./lib/util.mjs";

const sites = await getSites();
const SEED = Number(process.env.E2E_KILL_SEED ?? 20261201);
const NEGATIVE = process.env.E2E_KILL_NEGATIVE === "1";
const ROUNDS = Number(process.env.E2E_KILL_ROUNDS ?? 3);
// Writes per round: fewer in a long run, whose kill points then come sooner.
const PER_ROUND = ROUNDS > 10 ? 300 : 1000;
/** Totals over the rounds, printed at the end (the closing note's figure). */
const summary = { rounds: 0, lost: 0, acked: 0, extra: 0 };

// mulberry32: a small seeded PRNG.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const userDataDir = await mkdtemp(join(tmpdir(), "echo-e2e-kill-"));
await writeProfile(userDataDir, "storage-access");
let current = null;
let starts = 0;
after(async () => {
  if (current) await current.kill();
  if (process.env.E2E_KILL_DEBUG) console.log(`  profile kept: ${userDataDir}`);
  else await rm(userDataDir, { recursive: true, force: true });
});

/** Chromium started by hand (its own process group), Playwright attached over CDP. */
async function startBrowser() {
  const portFile = join(userDataDir, "DevToolsActivePort");
  rmSync(portFile, { force: true });
  // E2E_KILL_DEBUG=DIR: Chromium's own log of every start goes to DIR, and the profile is kept there.
  const debug = process.env.E2E_KILL_DEBUG;
  const log = debug ? openSync(join(debug, `chromium-${++starts}.log`), "w") : "ignore";
  const proc = spawn(EXECUTABLE, [...chromiumArgs("storage-access"), "--headless=new", `--user-data-dir=${userDataDir}`,
    "--remote-debugging-port=0", ...(debug ? ["--enable-logging=stderr", "--v=0"] : []), "about:blank"], { detached: true, stdio: ["ignore", log, log] });
  const exited = new Promise((r) => proc.once("exit", r));
  const port = await until(() => existsSync(portFile) && readFileSync(portFile, "utf8").split("\n")[0].trim(), { timeoutMs: 15000, what: "DevToolsActivePort" });
  const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
  const context = browser.contexts()[0];
  const b = {
    proc,
    context,
    /** SIGKILL to every process of this Chromium (the group), then wait for the main one to go. */
    kill: async () => {
      try {
        process.kill(-proc.pid, "SIGKILL");
      } catch {
        // gone already
      }
      await exited;
      await browser.close().catch(() => {});
      if (current === b) current = null;
    },
  };
  current = b;
  return b;
}

test(`SIGKILL of the browser while writing: every acknowledged object survives (${ROUNDS} kill points, seed ${SEED})`, { timeout: ROUNDS * 60_000 }, async (t) => {
  const rand = prng(SEED);
  const killPoints = Array.from({ length: ROUNDS }, () => 20 + Math.floor(rand() * (PER_ROUND - 40)));
  console.log(`  kill points (acks seen before SIGKILL), seed ${SEED}: ${killPoints.join(", ")}`);

  // First start: the user allows the probe app; it makes the space.
  let b = await startBrowser();
  let page = await openProbe(b.context, sites.probeA, { state: ["not_authorized", "connected"] });
  if ((await page.evaluate(() => window.probe.vault.state)) !== "connected") await allowInPopup(b.context, page);
  await waitState(page, "connected");
  const S = await page.evaluate(async () => (await window.probe.vault.spaces.create({ name: "Kill test" })).id);
  // The vault's identity, as its manage page shows it (to tell a lost vault from a lost grant).
  let identityBefore = null;
  {
    const manage = await b.context.newPage();
    await manage.goto(`${sites.vault}/manage.html`);
    identityBefore = await manage.waitForFunction(() => document.querySelector("#identity code.key")?.textContent, null, { timeout: 10000 })
      .then((h) => h.jsonValue()).catch(() => null);
    await manage.close();
  }

  const acked = new Set();
  let next = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const killAt = killPoints[round];
    let seen = 0;
    let killing = null;
    let writeError = null;
    const t0 = Date.now();
    page.on("console", (m) => {
      const text = m.text();
      const ack = /^ACK (\d+) (\S+)$/.exec(text);
      if (ack) {
        acked.add(ack[2]);
        seen++;
        if (seen >= killAt && !killing) killing = b.kill();
      } else if (text.startsWith("WRITE-ERROR")) writeError = text;
    });
    let evalError = null;
    void page.evaluate(({ S, n, start, early }) => window.probe.writeMany(S, "item", n, start, early), { S, n: PER_ROUND, start: next, early: NEGATIVE })
      .catch((e) => { if (!killing) evalError = e.message; });
    await until(() => killing !== null || writeError !== null || evalError !== null, { timeoutMs: 60000, what: `${killAt} acknowledged writes` })
      .catch(async (e) => {
        throw new Error(`${e.message}; ${seen} seen on the console, ${await page.evaluate(() => window.probe.acked.length).catch((x) => x.message)} in the page`);
      });
    assert.equal(evalError, null, `the write loop failed: ${evalError}`);
    assert.equal(writeError, null, `a write failed before the kill: ${writeError}`);
    await killing;
    const writeMs = Date.now() - t0;
    next += PER_ROUND;
    timing(t, `round ${round + 1}: ${seen} writes acknowledged, then SIGKILL`, writeMs);

    // Restart on the same profile and look.
    const t1 = Date.now();
    b = await startBrowser();
    page = await openProbe(b.context, sites.probeA, { state: ["connected", "not_authorized"], timeoutMs: 20000 });
    const opened = await page.evaluate(() => ({
      state: window.probe.vault.state,
      states: window.probe.states.map((s) => s.state),
      error: window.probe.vault.lastError ? { code: window.probe.vault.lastError.code, message: window.probe.vault.lastError.message } : null,
      info: window.probe.vault.info ?? null,
    }));
    if (opened.state !== "connected") {
      // Which storage the vault frame joined (shell/src/vault.ts sets it), and what the first-party vault holds.
      const frame = page.frames().find((f) => f.url().includes("/vault.html"));
      opened.frameStorage = await frame?.evaluate(() => document.documentElement.dataset["storage"]).catch((e) => e.message);
      const manage = await b.context.newPage();
      await manage.goto(`${sites.vault}/manage.html`);
      opened.manage = await manage.waitForFunction(() => {
        const loaded = (id) => document.getElementById(id)?.dataset["loaded"] === "yes";
        if (!loaded("apps") || !loaded("identity") || !loaded("spaces")) return null;
        return {
          identity: document.querySelector("#identity code.key")?.textContent,
          apps: document.getElementById("apps").textContent.slice(0, 200),
          spaces: document.getElementById("spaces").textContent.slice(0, 300),
        };
      }, null, { timeout: 10000 }).then((h) => h.jsonValue()).catch((e) => e.message);
      opened.identityBefore = identityBefore;
      // The raw database: how many entries, and which prefixes.
      opened.raw = await manage.evaluate(() => new Promise((resolve) => {
        const open = indexedDB.open("echo-vault");
        open.onsuccess = () => {
          const tx = open.result.transaction("chunks", "readonly");
          const keys = tx.objectStore("chunks").getAllKeys();
          keys.onsuccess = () => {
            const byPrefix = {};
            for (const k of keys.result) byPrefix[String(k).split("/").slice(0, 2).join("/")] = (byPrefix[String(k).split("/").slice(0, 2).join("/")] ?? 0) + 1;
            resolve({ count: keys.result.length, byPrefix, vault: keys.result.filter((k) => String(k).startsWith("vault/")) });
          };
        };
        open.onerror = () => resolve(open.error?.message);
      })).catch((e) => e.message);
    }
    if (opened.error?.code === "rpc.storage_lost") {
      assert.fail(`Chromium deleted the vault's IndexedDB on the restart after the kill at ack ${killAt} of round ${round + 1} (it finds its database damaged; with E2E_KILL_DEBUG its log says "recovering from a corrupted (and deleted) database"); the vault refused to start as a new one (rpc.storage_lost), but every write of this profile is gone: ${JSON.stringify(opened)}`);
    }
    assert.equal(opened.state, "connected", `the vault opened with the grant after the kill: ${JSON.stringify(opened)}`);
    const ids = await page.evaluate(async (S) => {
      const { vault, echo } = window.probe;
      return (await vault.space(S).query(echo.query(echo.where.type("item")))).ids;
    }, S);
    const present = new Set(ids);
    const missing = [...acked].filter((id) => !present.has(id));
    timing(t, `round ${round + 1}: restart and query`, Date.now() - t1);
    console.log(`  round ${round + 1}: ${acked.size} acknowledged in all, ${present.size} present, ${present.size - acked.size} more than acknowledged, ${missing.length} missing`);
    summary.rounds++;
    summary.lost += missing.length;
    summary.acked = acked.size;
    summary.extra = present.size - acked.size;
    assert.deepEqual(missing, [], `acknowledged objects lost after SIGKILL at ack ${killAt} of round ${round + 1}`);
    // Every present object is a readable, whole object.
    const sample = await page.evaluate(async ({ S, ids }) => {
      const objs = await window.probe.vault.space(S).getMany(ids);
      return objs.map((o) => o && o.type === "item" && typeof o.fields.n === "number" && o.fields.label === `object ${o.fields.n}`);
    }, { S, ids: ids.slice(-50) });
    assert.ok(sample.every(Boolean), "recent objects are whole");
  }
  await b.kill();
  console.log(`  [kill] ${summary.rounds} SIGKILLs during awaited writes: ${summary.acked} writes acknowledged, ${summary.lost} lost, ${summary.extra} stored but not acknowledged (in flight at the kill); the vault opened after every one`);
});
