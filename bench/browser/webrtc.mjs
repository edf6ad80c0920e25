// Two people over WebRTC: ECHO (two vaults) vs Yjs + y-webrtc (the anchor), in the same run.
//
//   node bench/browser/webrtc.mjs                        # 5 runs, sizes 1,000, 10,000 and 100,000 (~6 min)
//   ECHO_BENCH_QUICK=1 node bench/browser/webrtc.mjs     # 1 run, sizes 1,000 and 10,000
//   ECHO_BENCH_RUNS=3 ECHO_BENCH_STORES=echo node bench/browser/webrtc.mjs
//
// Each run launches two fresh headless Chromium profiles per store (A and B) and measures, per store:
// initial sync of N objects, edit → visible on the other side (p50 / p99), and the lag after typing the
// first 20,000 edits of the automerge-paper trace (webrtc/echo.mjs and webrtc/yjs.mjs say exactly how).
// The trace comes from ECHO_TRACES_DIR (default ../shared/data/traces); without it that figure is skipped.
//
// Network rule: everything runs inside a network namespace with only `lo` (this file re-executes itself
// under `unshare --net`, as root, and refuses to start browsers where another interface exists), so ICE can
// only use host candidates on 127.0.0.1; `--allow-loopback-in-peer-connection` lets Chromium use them.
// Output: a table on stdout, JSON in target/bench/webrtc.json (ECHO_BENCH_OUT overrides the path).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { assertLoopbackOnly, inLoopbackNamespace, runInLoopbackNamespace } from "../../e2e/lib/netns.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..", "..");
const QUICK = process.env.ECHO_BENCH_QUICK === "1";
const cfg = {
  runs: Number(process.env.ECHO_BENCH_RUNS ?? (QUICK ? 1 : 5)),
  // 1,000 first: the first sync of an engine's life also compiles its code (wasm tiers up), which the
  // 10,000 and 100,000 figures then do not include; the 1,000 row shows that cold start.
  sizes: (process.env.ECHO_BENCH_WEBRTC_SIZES ?? (QUICK ? "1000,10000" : "1000,10000,100000")).split(",").map(Number),
  edits: Number(process.env.ECHO_BENCH_WEBRTC_EDITS ?? 200),
  traceEdits: Number(process.env.ECHO_BENCH_WEBRTC_TRACE_EDITS ?? 20000),
  tracesDir: resolve(process.env.ECHO_TRACES_DIR ?? join(ROOT, "..", "shared", "data", "traces")),
  stores: (process.env.ECHO_BENCH_STORES ?? "echo,yjs").split(","),
  out: process.env.ECHO_BENCH_OUT ?? join(ROOT, "target", "bench", "webrtc.json"),
};
const log = (s) => console.log(`[webrtc] ${s}`);

if (!inLoopbackNamespace()) {
  // The benchmarks' packages: a workspace of the repository's package.json, installed at its root.
  if (!existsSync(join(ROOT, "node_modules", "yjs"))) {
    const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: ROOT, stdio: "inherit" });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  const r = runInLoopbackNamespace({ file: fileURLToPath(import.meta.url), cwd: ROOT, stdio: "inherit" });
  if (r.error) throw r.error;
  process.exit(r.status ?? 1);
}

assertLoopbackOnly("the WebRTC benchmark");
const { loadTrace } = await import("./server.mjs");
const { launchRegime } = await import("../../e2e/lib/regimes.mjs");
const { startSites } = await import("../../e2e/lib/sites.mjs");
const { runEchoOnce } = await import("./webrtc/echo.mjs");
const { percentile } = await import("./webrtc/stats.mjs");
const { runYjsOnce } = cfg.stores.includes("yjs") ? await import("./webrtc/yjs.mjs") : {};

const LOOPBACK_ARGS = ["--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream"];
const newBrowser = () => launchRegime("storage-access", { extraArgs: LOOPBACK_ARGS });

const trace = loadTrace(cfg.tracesDir, "automerge-paper", cfg.traceEdits);
if (!trace) log(`the editing trace automerge-paper.json.gz is not in ${cfg.tracesDir} (set ECHO_TRACES_DIR): the trace figure is skipped`);

const results = { echo: [], yjs: [] };
const loads = [];
const { sites, stop } = await startSites({ log });
try {
  for (let run = 1; run <= cfg.runs; run++) {
    for (const store of cfg.stores) {
      const t0 = Date.now();
      loads.push(loadavg()[0]);
      let r;
      try {
        r =
          store === "echo"
            ? await runEchoOnce({ newBrowser, sites, trace, sizes: cfg.sizes, edits: cfg.edits, log })
            : await runYjsOnce({ newBrowser, tracesDir: cfg.tracesDir, sizes: cfg.sizes, edits: cfg.edits, traceEdits: cfg.traceEdits, log });
      } catch (e) {
        log(`${store} run ${run} failed: ${e?.stack ?? e}`);
        r = { syncMs: {}, editP50Ms: null, editP99Ms: null, editSamples: [], traceLagMs: null, notes: [`failed: ${e?.message ?? e}`] };
      }
      results[store].push(r);
      log(`${store} run ${run}/${cfg.runs} (${((Date.now() - t0) / 1000).toFixed(0)} s): ${JSON.stringify({ ...r, editSamples: r.editSamples.length })}`);
    }
  }
} finally {
  await stop();
}

// ---- the table: median (min–max) over the runs, ECHO ÷ Yjs from the same runs
const fmtN = (n) => n.toLocaleString("en-US");
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`);
const stats = (xs) => {
  const ok = xs.filter((x) => typeof x === "number" && Number.isFinite(x));
  if (!ok.length) return null;
  return { median: percentile(ok, 50), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
};
const rows = [
  ...cfg.sizes.map((n) => ({ title: `initial sync of ${fmtN(n)} objects`, pick: (r) => r.syncMs[n], target: n === 10000 ? "≤ 0.3 s" : n === 100000 ? "≤ 2 s" : "" })),
  { title: "edit → visible on the other side, p50", pick: (r) => r.editP50Ms, target: "≤ 3 ms" },
  { title: "edit → visible on the other side, p99", pick: (r) => r.editP99Ms, target: "≤ 15 ms" },
  { title: `trace: ${fmtN(cfg.traceEdits)} automerge-paper edits typed, lag after the last`, pick: (r) => r.traceLagMs, target: "≤ 0.3 s" },
];
const cell = (s) => (s ? `${fmtMs(s.median)} (${fmtMs(s.min)}–${fmtMs(s.max)})${s.n < cfg.runs ? ` [${s.n}/${cfg.runs} runs]` : ""}` : "—");
const table = [["figure", "ECHO", "Yjs + y-webrtc (chunking shim)", "ECHO/Yjs", "target"]];
const json = { date: new Date().toISOString(), cfg: { ...cfg, traceFound: !!trace }, rows: [], results };
for (const row of rows) {
  const e = stats(results.echo.map(row.pick));
  const y = stats(results.yjs.map(row.pick));
  const ratio = e && y && y.median > 0 ? `${(e.median / y.median).toFixed(2)}×` : "—";
  table.push([row.title, cell(e), cell(y), ratio, row.target]);
  json.rows.push({ title: row.title, echo: e, yjs: y, target: row.target });
}
const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
console.log();
console.log(line(table[0]));
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const r of table.slice(1)) console.log(line(r));
const chromium = spawnSync(process.env.CHROMIUM_PATH || "/usr/bin/chromium", ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "?";
console.log(
  `${cfg.runs} run(s) per store, median (min–max); two fresh headless profiles per store and run, loopback-only network namespace; ${chromium}; ` +
    `1-min load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}.`,
);
for (const store of cfg.stores) for (const note of new Set(results[store].flatMap((r) => r.notes))) console.log(`note (${store}): ${note}`);
mkdirSync(dirname(cfg.out), { recursive: true });
writeFileSync(cfg.out, JSON.stringify(json, null, 2));
log(`JSON: ${cfg.out}`);
