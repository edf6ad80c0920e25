#!/usr/bin/env node
// The vault's own figures in headless Chromium (make bench, browser section):
//
//   node bench/browser/vault.mjs          # prints a table, writes target/bench/browser-vault.json
//
// - RPC no-op round trip app → vault engine → app (`ping` over the port the
//   shell handed over), p50/p99 and the mean of batches of sequential calls,
//   beside two floors measured in the same run: (a) a bare MessagePort echo
//   between the app page and a SharedWorker of the vault origin, (b) a bare
//   window.postMessage echo with the cross-site iframe.
// - 10,000 object creates until durable (= acknowledged by the vault, which
//   acknowledges only after IndexedDB committed), one by one and in batches
//   of 100; each run in a fresh space; counted again after a reload.
// - Reload → first query result ("type = task and done = false") on a
//   100,000-object space: ms from the navigation's start to the result, on a
//   cold engine (the vault's worker is gone before the page comes back).
// - The engine's wasm, raw and gzip.
//
// Sites: the built vault (shell/dist, plus the floor pages) and a bench app
// on two *.localhost sites served by target/debug/echo-signal; Chromium in
// the storage-access regime (e2e/lib/regimes.mjs). Knobs: ECHO_BENCH_RUNS
// (5), ECHO_BENCH_QUICK=1 (small sizes), ECHO_BENCH_JSON (output path).
import { spawn } from "node:child_process";
import { cp, mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile, copyFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { tmpdir, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { launchRegime } from "../../e2e/lib/regimes.mjs";
import { clickInPopup } from "../../e2e/lib/util.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const HERE = join(ROOT, "bench", "browser", "vault");
const TOOLS = resolve(process.env.ECHO_TOOLS_DIR ?? join(ROOT, ".tools"), "npm");
const SERVER = join(ROOT, "target", "debug", "echo-signal");
const QUICK = process.env.ECHO_BENCH_QUICK === "1";
const RUNS = Number(process.env.ECHO_BENCH_RUNS ?? (QUICK ? 1 : 5));
const CREATES = QUICK ? 1_000 : 10_000;
const BIG = Number(process.env.ECHO_BENCH_BIG ?? (QUICK ? 10_000 : 100_000));
const NOOPS = QUICK ? 300 : 2_000;
const OUT = process.env.ECHO_BENCH_JSON ?? join(ROOT, "target", "bench", "browser-vault.json");

const log = (m) => console.error(`[bench:vault] ${m}`);

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitHealthy(url, proc) {
  for (let i = 0; i < 150; i++) {
    if (proc.exitCode !== null) throw new Error(`echo-signal exited before ${url} came up`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 3 : 1)} ms`);

async function sites() {
  for (const f of [SERVER, join(ROOT, "shell", "dist", "vault.html")]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run make web signal (or make bench)`);
  }
  const tmp = await mkdtemp(join(tmpdir(), "echo-bench-vault-"));
  const vaultDir = join(tmp, "vault");
  const appDir = join(tmp, "app");
  await cp(join(ROOT, "shell", "dist"), vaultDir, { recursive: true });
  await copyFile(join(HERE, "floor.html"), join(vaultDir, "bench-floor.html"));
  await copyFile(join(HERE, "floor.js"), join(vaultDir, "bench-floor.js"));
  await copyFile(join(HERE, "floor-worker.js"), join(vaultDir, "bench-floor-worker.js"));
  const V = await freePort();
  const A = await freePort();
  const vaultUrl = `http://vault.localhost:${V}`;
  const appUrl = `http://app.localhost:${A}`;
  await mkdir(appDir);
  const esbuild = createRequire(join(TOOLS, "package.json"))("esbuild");
  await esbuild.build({
    entryPoints: [join(HERE, "app.ts")],
    outfile: join(appDir, "bench-app.js"),
    bundle: true,
    format: "esm",
    target: "es2022",
    conditions: ["source"], // @echo/client from client/src
    define: { __VAULT_URL__: JSON.stringify(vaultUrl) },
    logLevel: "warning",
  });
  await copyFile(join(HERE, "index.html"), join(appDir, "index.html"));
  const proc = spawn(SERVER, ["--vault-dir", vaultDir, "--vault-addr", `127.0.0.1:${V}`, "--app-dir", appDir,
    "--app-addr", `127.0.0.1:${A}`, "--vault-origin", vaultUrl,
    // Only the shell is framable on a vault site; the floor page must be too.
    "--framable-page", "/bench-floor.html"], { stdio: ["ignore", "ignore", "inherit"] });
  await waitHealthy(`http://127.0.0.1:${V}/healthz`, proc);
  await waitHealthy(`http://127.0.0.1:${A}/healthz`, proc);
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
    }
    await rm(tmp, { recursive: true, force: true });
  };
  return { vaultUrl, appUrl, vaultDir, stop };
}

/** Opens the bench app, connected and allowed (the consent popup on first use). */
async function openApp(context, appUrl) {
  const page = await context.newPage();
  await page.goto(`${appUrl}/`);
  await page.waitForFunction(() => window.bench !== undefined);
  await page.evaluate(() => window.bench.start());
  await page.waitForFunction(() => ["connected", "not_authorized"].includes(window.bench.state()), null, { timeout: 20000 });
  if ((await page.evaluate(() => window.bench.state())) === "not_authorized") {
    const popupP = context.waitForEvent("page", { timeout: 10000 });
    await page.click("#ask");
    const popup = await popupP;
    if (!(await clickInPopup(popup, "#allow"))) throw new Error("the consent popup did not close after Allow");
    await page.waitForFunction(() => window.bench.state() === "connected", null, { timeout: 10000 });
  }
  return page;
}

async function main() {
  const started = Date.now();
  const s = await sites();
  const { context, close } = await launchRegime("storage-access");
  const result = { machine: { loadavg: loadavg(), cores: (await import("node:os")).cpus().length }, runs: RUNS, quick: QUICK };
  try {
    let page = await openApp(context, s.appUrl);
    result.chromium = context.browser()?.version() ?? null;

    // --- RPC round trip and its floors.
    const rtt = {};
    for (const [name, fn] of [["rpc", "noop"], ["floor_a_port", "floorPort"], ["floor_b_window", "floorWindow"]]) {
      await page.evaluate(([f, n]) => window.bench[f](n), [fn, 200]); // warm-up
      const samples = [];
      const means = [];
      for (let r = 0; r < RUNS; r++) {
        const out = await page.evaluate(([f, n]) => window.bench[f](n), [fn, NOOPS]);
        samples.push(...out.samples);
        means.push(out.total / out.n);
      }
      rtt[name] = { p50: pct(samples, 50), p99: pct(samples, 99), mean_of_batches: median(means), calls: samples.length };
      log(`${name}: p50 ${fmtMs(rtt[name].p50)}, p99 ${fmtMs(rtt[name].p99)}, batch mean ${fmtMs(rtt[name].mean_of_batches)}`);
    }
    result.rtt = rtt;

    // --- Creates until durable.
    const creates = {};
    for (const [name, call] of [
      ["one_by_one", (space, n) => window.bench.createOneByOne(space, n)],
      ["batches_of_100", (space, n) => window.bench.createBatches(space, n, 100)],
    ]) {
      const times = [];
      const spaces = [];
      for (let r = -1; r < RUNS; r++) {
        const space = await page.evaluate((nm) => window.bench.space(nm), `${name}-${r}`);
        const out = await page.evaluate(`(${call.toString()})(${JSON.stringify(space)}, ${CREATES})`);
        if (r >= 0) {
          times.push(out.ms);
          spaces.push(space);
        }
      }
      creates[name] = { median: median(times), min: Math.min(...times), max: Math.max(...times), n: CREATES, spaces };
      log(`${CREATES} creates ${name}: median ${fmtMs(creates[name].median)} (${fmtMs(creates[name].min)}–${fmtMs(creates[name].max)})`);
    }

    // --- 100k objects, then reload → first query on a cold engine.
    const big = await page.evaluate((nm) => window.bench.space(nm), "big");
    const fill = await page.evaluate(([sp, n]) => window.bench.createBatches(sp, n, 1000), [big, BIG]);
    log(`filled ${BIG} objects in ${fmtMs(fill.ms)}`);
    const expected = await page.evaluate((sp) => window.bench.matches(sp), big);
    const first = [];
    const connectedAt = [];
    for (let r = -1; r < RUNS; r++) {
      await page.goto("about:blank");
      // The vault's SharedWorker ends with its last page; give it a moment to go.
      await new Promise((res) => setTimeout(res, 1500));
      await page.goto(`${s.appUrl}/`);
      await page.waitForFunction(() => window.bench !== undefined);
      const out = await page.evaluate(async (sp) => {
        window.bench.start();
        const connected = await window.bench.whenConnected();
        return { ...(await window.bench.firstQuery(sp)), connected };
      }, big);
      if (out.found !== 1) throw new Error(`the first query found ${out.found} objects`);
      if (r >= 0) {
        first.push(out.at);
        connectedAt.push(out.connected);
      }
    }
    const total = await page.evaluate((sp) => window.bench.matches(sp), big);
    if (total !== expected) throw new Error(`after reloads the query finds ${total}, before ${expected}: data lost`);
    result.reload_first_query = { median: median(first), min: Math.min(...first), max: Math.max(...first), objects: BIG, matches: total,
      connected_median: median(connectedAt) };
    log(`reload → first query (${BIG} objects): median ${fmtMs(result.reload_first_query.median)}`);

    // Every acknowledged create is there after the reloads.
    for (const [name, c] of Object.entries(creates)) {
      for (const sp of c.spaces) {
        const n = await page.evaluate((x) => window.bench.count(x), sp);
        if (n !== c.n) throw new Error(`${name}: ${n} of ${c.n} acknowledged objects found after reload`);
      }
      c.verified = true;
      delete c.spaces;
    }
    result.creates = creates;
  } finally {
    await close();
    await s.stop();
  }

  // --- Wasm size.
  const dist = join(ROOT, "shell", "dist");
  const wasm = (await readdir(dist)).find((f) => /^echo_vault_bg\.[0-9a-f]+\.wasm$/.test(f));
  const bytes = await readFile(join(dist, wasm));
  result.wasm = { file: wasm, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };

  const r = result;
  const lines = [
    `ECHO vault in headless Chromium ${r.chromium ?? ""} — ${RUNS} run(s) per figure, load ${r.machine.loadavg.map((x) => x.toFixed(1)).join(" ")}`,
    "",
    "| figure | p50 | p99 | mean of sequential batches |",
    "|---|---:|---:|---:|",
    ...[["RPC no-op: app → vault engine → app", r.rtt.rpc], ["floor (a): MessagePort echo, vault SharedWorker", r.rtt.floor_a_port], ["floor (b): window.postMessage echo, cross-site iframe", r.rtt.floor_b_window]]
      .map(([n, x]) => `| ${n} | ${fmtMs(x.p50)} | ${fmtMs(x.p99)} | ${fmtMs(x.mean_of_batches)} |`),
    `| RPC ÷ floor (a) | ${(r.rtt.rpc.p50 / r.rtt.floor_a_port.p50).toFixed(2)}× | ${(r.rtt.rpc.p99 / r.rtt.floor_a_port.p99).toFixed(2)}× | ${(r.rtt.rpc.mean_of_batches / r.rtt.floor_a_port.mean_of_batches).toFixed(2)}× |`,
    "",
    "| figure | median | min–max |",
    "|---|---:|---:|",
    `| ${CREATES} creates until durable, one by one | ${fmtMs(r.creates.one_by_one.median)} | ${fmtMs(r.creates.one_by_one.min)}–${fmtMs(r.creates.one_by_one.max)} |`,
    `| ${CREATES} creates until durable, batches of 100 | ${fmtMs(r.creates.batches_of_100.median)} | ${fmtMs(r.creates.batches_of_100.min)}–${fmtMs(r.creates.batches_of_100.max)} |`,
    `| reload → first query, ${BIG} objects (${r.reload_first_query.matches} matches) | ${fmtMs(r.reload_first_query.median)} | ${fmtMs(r.reload_first_query.min)}–${fmtMs(r.reload_first_query.max)} |`,
    `| … of which until connected (page, iframe, worker, wasm, engine start) | ${fmtMs(r.reload_first_query.connected_median)} | |`,
    "",
    `wasm ${r.wasm.file}: ${(r.wasm.raw / 1024).toFixed(0)} KiB raw, ${(r.wasm.gzip / 1024).toFixed(0)} KiB gzip`,
    `(${((Date.now() - started) / 1000).toFixed(0)} s)`,
  ];
  console.log(lines.join("\n"));
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, JSON.stringify(result, null, 2));
  console.log(`JSON: ${OUT}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
