#!/usr/bin/env node
// Browser benchmark harness: ECHO vs automerge-repo vs Yjs in headless Chromium.
//
//   node bench/browser/run.mjs                 full suite (many minutes)
//   ECHO_BENCH_QUICK=1 node bench/browser/run.mjs   small sizes, for development
//
// Environment (all optional):
//   ECHO_BENCH_QUICK=1          small sizes (1k objects, 10k for the load, 100 updates, 10k edits), 1 run, no warm-up
//   ECHO_BENCH_RUNS=N           measured runs per figure (default 5; quick 1); the median is reported
//   ECHO_BENCH_WARMUP=N         discarded warm-up runs before them (default 1; quick 0)
//   ECHO_BENCH_TIMEOUT_S=S      per timed phase of one run (default 300; quick 60); then "did not finish within S s"
//   ECHO_BENCH_STORES=a,b       subset of: echo,automerge,yjs,idb (idb: IndexedDB's own floor, w1, w1b, w3, w3r)
//   ECHO_BENCH_WORKLOADS=a,b    subset of: w1,w1p,w1b,w2,w3,w3r,w4   (w5 = memory, measured during w2; w3r = w3, ECHO with relaxed durability)
//   ECHO_BENCH_N, ECHO_BENCH_LOAD_N, ECHO_BENCH_UPDATES, ECHO_BENCH_TEXT_EDITS   override sizes (0 edits = whole trace)
//   ECHO_BENCH_VERIFY=kill      verify after SIGKILL of the browser + relaunch instead of a page reload (w2 always reloads)
//   ECHO_BENCH_DIST=dir         where the pages are built (default bench/browser/dist)
//   ECHO_BENCH_OUT=path         results JSON (default bench/browser/results.json); the table goes next to it (.txt)
//   ECHO_TRACES_DIR=dir         editing traces (default ../shared/data/traces relative to the repository)
//   ECHO_BENCH_CHROMIUM=path    browser binary (default /usr/bin/chromium)
//   ECHO_BENCH_CPUPROFILE=dir   CPU profiles (.cpuprofile) of the page and our workers during the timed phases of w1, w1b, w3 and w4,
//                               and of the vault's engine worker from its start in w2
//   ECHO_BENCH_CPUPROFILE_US=n  their sampling interval in µs (default 500)
import { execSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clickInPopup } from '../../e2e/lib/util.mjs';
import { nestedSessions } from '../../e2e/lib/cdp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const env = process.env;

// ---- install + build --------------------------------------------------------
// The benchmarks' packages are a workspace of the repository's package.json (installed at its root); make
// test links the others only (scripts/setup.sh), so the first benchmark run installs them all.
if (['playwright-core', 'esbuild', 'yjs'].some((p) => !existsSync(join(repoRoot, 'node_modules', p)))) {
  console.error('[bench] installing the workspaces with the pinned benchmark packages (npm ci at the repository root) ...');
  execSync('npm ci --no-audit --no-fund', { cwd: repoRoot, stdio: 'inherit' });
}
const { buildPages } = await import('./build.mjs');
const { startServer, loadTrace } = await import('./server.mjs');
const { chromium } = await import('playwright-core');
const distDir = resolve(env.ECHO_BENCH_DIST ?? join(here, 'dist'));
// (the pages are built once the server's port is known: the ECHO page has the vault URL baked in)

// ---- configuration ----------------------------------------------------------
const QUICK = env.ECHO_BENCH_QUICK === '1' || env.ECHO_BENCH_QUICK === 'true';
const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const cfg = {
  quick: QUICK,
  runs: num(env.ECHO_BENCH_RUNS, QUICK ? 1 : 5),
  warmup: num(env.ECHO_BENCH_WARMUP, QUICK ? 0 : 1),
  timeoutS: num(env.ECHO_BENCH_TIMEOUT_S, QUICK ? 60 : 300),
  n: num(env.ECHO_BENCH_N, QUICK ? 1000 : 10000),
  batch: 100,
  loadN: num(env.ECHO_BENCH_LOAD_N, QUICK ? 10000 : 100000),
  loadBatch: 1000, // setup of workload 2 (untimed)
  updates: num(env.ECHO_BENCH_UPDATES, QUICK ? 100 : 1000),
  textEdits: num(env.ECHO_BENCH_TEXT_EDITS, QUICK ? 10000 : 0),
  trace: 'automerge-paper',
  tracesDir: resolve(env.ECHO_TRACES_DIR ?? join(repoRoot, '..', 'shared', 'data', 'traces')),
  chromium: env.ECHO_BENCH_CHROMIUM ?? '/usr/bin/chromium',
  out: resolve(env.ECHO_BENCH_OUT ?? join(here, 'results.json')),
  verify: env.ECHO_BENCH_VERIFY === 'kill' ? 'kill' : 'reload',
};
const STORES = [
  { id: 'echo', page: 'echo', label: 'ECHO' },
  { id: 'automerge', page: 'automerge', label: 'automerge-repo' },
  { id: 'yjs', page: 'yjs', label: 'Yjs' },
  // Not a store: IndexedDB written straight from the page (src/idb.js), the floor of workloads 1 and 3.
  { id: 'idb', page: 'idb', label: 'IndexedDB floor' },
];
const wantStores = env.ECHO_BENCH_STORES ? env.ECHO_BENCH_STORES.split(',').map((s) => s.trim()) : STORES.map((s) => s.id);
const wantWorkloads = env.ECHO_BENCH_WORKLOADS ? env.ECHO_BENCH_WORKLOADS.split(',').map((s) => s.trim()) : ['w1', 'w1p', 'w1b', 'w2', 'w3', 'w4'];

const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// ECHO: the app page (app.localhost) embeds the vault (vault.localhost), a cross-site iframe that
// reaches the vault's first-party storage only in Chromium's storage-access regime: third-party
// cookies allowed (profile pref cookie_controls_mode 0) and third-party storage partitioning ON
// (Playwright's own --disable-features list turns it off; regimes.mjs replaces that list).
// e2e/lib/regimes.mjs has both; the competitors keep the plain arguments (single-site anyway).
const { chromiumArgs, writeProfile } = await import('../../e2e/lib/regimes.mjs');
const REGIME = 'storage-access';
const argsFor = (store) => (store?.id === 'echo' ? ['--headless=new', ...chromiumArgs(REGIME)] : CHROMIUM_ARGS);
/** A new (empty) user-data-dir for `store`: the regime's preferences for ECHO. */
async function initProfile(dir, store) {
  if (store?.id === 'echo') await writeProfile(dir, REGIME);
}

const log = (...a) => console.error('[bench]', ...a);
const fmtN = (n) => n.toLocaleString('en-US');

// ---- browser plumbing -------------------------------------------------------
class Timeout extends Error {}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, rej) => { timer = setTimeout(() => rej(new Timeout(`${what}: did not finish within ${ms / 1000} s`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

let baseUrl;

/**
 * One run = one fresh profile (so IndexedDB starts empty); reloads happen inside it.
 * With `template`, the fresh profile starts as a copy of a closed profile that holds only a
 * workload's untimed setup (w2's 100,000 objects), so the setup is not redone for every run.
 */
async function withProfile(fn, { template, keep = false, store } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'echo-bench-profile-'));
  if (template) cpSync(template, dir, { recursive: true });
  else await initProfile(dir, store);
  const errors = [];
  const launch = async () => {
    const ctx = await chromium.launchPersistentContext(dir, {
      executablePath: cfg.chromium,
      headless: true,
      args: argsFor(store),
      viewport: { width: 800, height: 600 },
    });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on('pageerror', (e) => errors.push(String(e?.stack ?? e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    return { ctx, page };
  };
  const p = { errors, ...(await launch()) };
  /**
   * Before verifying: load the page again in the same profile. With ECHO_BENCH_VERIFY=kill,
   * SIGKILL the browser instead (no unload, no orderly IndexedDB shutdown) and relaunch it on
   * the same profile: only what was really committed when durable() resolved survives that.
   */
  p.reopen = async (store) => {
    if (cfg.verify === 'kill') {
      const out = execSync('ps -eo pid=,args=').toString();
      const pids = out.split('\n').filter((l) => l.includes(`--user-data-dir=${dir}`) && !l.includes('--type=')).map((l) => Number(l.trim().split(/\s+/)[0]));
      if (!pids.length) throw new Error('browser process not found for kill');
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await p.ctx.close().catch(() => {});
      for (let i = 0; i < 50 && existsSync(join(dir, 'SingletonLock')); i++) {
        rmSync(join(dir, 'SingletonLock'), { force: true });
        await new Promise((r) => setTimeout(r, 100));
      }
      Object.assign(p, await launch());
    }
    await openPage(p.page, store);
    return p.page;
  };
  try {
    return await fn(p);
  } finally {
    await p.ctx.close().catch(() => {});
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** w3 / w3r: cfg.updates single-field updates, each awaited until durable (the page opened with `query`). */
async function awaitedUpdates({ store, page, reopen }, id, query) {
  await openPage(page, store, query);
  const n = cfg.n;
  await withTimeout(step(page, 'create', { n, batch: cfg.batch }), SETUP_T(), 'setup');
  const r = await profiled(page.context(), page, id, () => withTimeout(step(page, 'updates', { n, count: cfg.updates }), T(), 'updates'));
  const page2 = await reopen(store);
  const verify = await withTimeout(step(page2, 'verifyObjects', { n, handoff: r.handoff, updates: cfg.updates }), SETUP_T(), 'verify');
  return { ms: r.ms, verify, extra: { idb: r.idb, diag: r.diag } };
}

async function openPage(page, store, query = '') {
  await page.goto(`${baseUrl}/${store.page}.html${query}`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__bench, null, { timeout: 60000 });
  if (store.id === 'echo') await echoConsent(page);
}

/**
 * ECHO: wait until the page is connected to the vault; on a fresh profile the vault first wants
 * the user's consent: click the page's #ask button (its click handler calls vault.requestAccess()),
 * then "Allow" in the vault's consent popup (selectors as in e2e/lib/util.mjs allowInPopup).
 * The grant is kept by the vault, so a reload in the same profile connects straight away.
 */
async function echoConsent(page) {
  const ctx = page.context();
  const state = () => page.evaluate(() => window.__echo?.state);
  await page.waitForFunction(() => ['connected', 'consent-needed', 'failed'].includes(window.__echo?.state), null, { timeout: 60000 });
  if ((await state()) === 'consent-needed') {
    const popupP = ctx.waitForEvent('page', { timeout: 20000 });
    await page.click('#ask');
    const popup = await popupP;
    await popup.waitForLoadState('load');
    await popup.waitForFunction(() => !/Loading/.test(document.getElementById('spaces')?.textContent ?? 'Loading'), null, { timeout: 20000 });
    if (!(await clickInPopup(popup, '#allow', { timeoutMs: 20000 }))) {
      throw new Error(`ECHO consent popup did not close after Allow: ${await popup.locator('#notice').textContent().catch((e) => e.message)}`);
    }
    await page.waitForFunction(() => window.__echo?.state === 'connected' || window.__echo?.access?.error, null, { timeout: 30000 });
  }
  const st = await page.evaluate(() => window.__echo);
  if (st?.state !== 'connected') throw new Error(`ECHO vault not connected: ${JSON.stringify(st)}`);
}
const step = (page, name, params) => page.evaluate(([s, p]) => window.__bench.run(s, p), [name, params]);


// The workers and out-of-process iframes of our sites (`types` of CDP targets), each with an
// `attach()` giving `send(method, params)` over a session nested in `cdp`, the page's session.
async function ourTargets(cdp, types) {
  const attach = nestedSessions(cdp);
  const { targetInfos } = await cdp.send('Target.getTargets').catch(() => ({ targetInfos: [] }));
  return targetInfos
    .filter((t) => types.includes(t.type) && /^https?:\/\/([a-z0-9-]+\.)*localhost:/.test(t.url) && t.url.includes(`:${new URL(baseUrl).port}/`))
    .map((t) => ({ ...t, attach: () => attach(t.targetId) }));
}

// JS heap after GC, via CDP: the page itself plus every worker and out-of-process iframe of our sites (the ECHO
// vault runs its engine in a SharedWorker, which the page's own isolate does not include).
// backingStorageSize = ArrayBuffer backing stores (wasm memories among them, in recent V8).
async function heapAfterGc(ctx, page) {
  const cdp = await ctx.newCDPSession(page);
  const measure = async (send) => {
    await send('HeapProfiler.enable').catch(() => {});
    for (let i = 0; i < 3; i++) await send('HeapProfiler.collectGarbage');
    return send('Runtime.getHeapUsage');
  };
  const own = await measure((m, p) => cdp.send(m, p));
  const workers = [];
  // iframe: out-of-process cross-site frames (the ECHO vault's vault.html)
  for (const t of await ourTargets(cdp, ['shared_worker', 'worker', 'service_worker', 'iframe'])) {
    try {
      const { send, detach } = await t.attach();
      const h = await withTimeout(measure(send), 30000, 'worker heap');
      // The vault's engine: its wasm linear memory is the `memory` export of the wasm-bindgen
      // module the engine worker imported; importing the same URL again gives the same module
      // instance, whose init function returns the (already initialised) exports.
      let wasmBytes = 0;
      // (workers only: in any other context the import would instantiate a new engine)
      if (vaultEngineModule && (t.type === "shared_worker" || t.type === "worker") && t.url.startsWith(`${vaultUrl}/`)) {
        const ev = await withTimeout(send('Runtime.evaluate', {
          expression: `(async () => { const m = await import(${JSON.stringify(`${vaultUrl}/${vaultEngineModule}`)}); const w = await m.default(); return w?.memory?.buffer?.byteLength ?? -1; })()`,
          awaitPromise: true,
          returnByValue: true,
        }), 30000, 'worker wasm').catch((e) => ({ error: e }));
        const v = ev?.result?.value;
        if (typeof v === 'number' && v > 0) wasmBytes = v;
      }
      // The engine worker's start: what its storage mirror cost (worker/engine-worker.ts).
      const startup = (t.type === "shared_worker" || t.type === "worker") && t.url.startsWith(`${vaultUrl}/`)
        ? (await send('Runtime.evaluate', { expression: 'globalThis.echoStartup ?? null', returnByValue: true }).catch(() => null))?.result?.value ?? null
        : null;
      if (startup) log(`  engine worker start: ${JSON.stringify(startup)}`);
      workers.push({ type: t.type, url: t.url, usedSize: h.usedSize, backingStorageSize: h.backingStorageSize ?? 0, wasmBytes, startup });
      await detach();
    } catch (e) {
      workers.push({ type: t.type, url: t.url, error: String(e?.message ?? e) });
    }
  }
  await cdp.detach().catch(() => {});
  const sum = (k) => (own[k] ?? 0) + workers.reduce((a, w) => a + (w[k] ?? 0), 0);
  return { usedSize: sum('usedSize'), backingStorageSize: sum('backingStorageSize'), wasmBytes: workers.reduce((a, w) => a + (w.wasmBytes ?? 0), 0), page: own, workers };
}

// ECHO_BENCH_CPUPROFILE=dir: a CPU profile (.cpuprofile, for Chromium's DevTools) of the page and of every
// worker of our sites for the timed phases of w1, w1b, w3 and w4, written to dir/<workload>-<target>.cpuprofile.
async function profiled(ctx, page, name, fn) {
  const dir = env.ECHO_BENCH_CPUPROFILE;
  if (!dir) return fn();
  mkdirSync(dir, { recursive: true });
  const cdp = await ctx.newCDPSession(page);
  const sessions = [{ label: 'page', send: (m, p) => cdp.send(m, p) }];
  for (const t of await ourTargets(cdp, ['shared_worker', 'worker', 'iframe'])) {
    sessions.push({ label: `${t.type}-${new URL(t.url).pathname.replace(/[^a-z0-9]+/gi, '_')}`, ...(await t.attach()) });
  }
  for (const s of sessions) {
    await s.send('Profiler.enable');
    await s.send('Profiler.setSamplingInterval', { interval: Number(env.ECHO_BENCH_CPUPROFILE_US ?? 500) });
    await s.send('Profiler.start');
  }
  try {
    return await fn();
  } finally {
    for (const s of sessions) {
      const { profile } = await s.send('Profiler.stop').catch(() => ({}));
      if (profile) writeFileSync(join(dir, `${name}-${s.label}.cpuprofile`), JSON.stringify(profile));
    }
    await cdp.detach().catch(() => {});
    log(`CPU profiles of ${name} in ${dir}`);
  }
}

// ECHO_BENCH_CPUPROFILE=dir, w2: the vault's engine worker starts anew with the reload; its profile starts
// as soon as it is seen (polled every 5 ms), before the engine boots. Resolves with a function that stops it.
async function profileNewWorker(ctx, page, name) {
  const dir = env.ECHO_BENCH_CPUPROFILE;
  if (!dir) return null;
  mkdirSync(dir, { recursive: true });
  const cdp = await ctx.newCDPSession(page);
  const started = Date.now();
  while (Date.now() - started < 10000) {
    const t = (await ourTargets(cdp, ['shared_worker'])).find((t) => t.url.startsWith(`${vaultUrl}/`));
    if (t) {
      const s = await t.attach();
      await s.send('Profiler.enable');
      await s.send('Profiler.setSamplingInterval', { interval: Number(env.ECHO_BENCH_CPUPROFILE_US ?? 500) });
      await s.send('Profiler.start');
      return async () => {
        const { profile } = await s.send('Profiler.stop').catch(() => ({}));
        if (profile) writeFileSync(join(dir, `${name}-engine-worker.cpuprofile`), JSON.stringify(profile));
        await cdp.detach().catch(() => {});
        log(`CPU profile of ${name}'s engine worker in ${dir}`);
      };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await cdp.detach().catch(() => {});
  return null;
}

// ---- workloads --------------------------------------------------------------
// Each run(store, page, ...) does one fresh-profile run and returns
// { ms, verify: {ok, problems}, extra } ; timed phases are bounded by cfg.timeoutS.
const T = () => cfg.timeoutS * 1000;
const SETUP_T = () => Math.max(600, cfg.timeoutS * 3) * 1000;

const WORKLOADS = [
  {
    id: 'w1',
    title: () => `1. create ${fmtN(cfg.n)} one by one, until durable`,
    stores: ['echo', 'automerge', 'yjs', 'idb'],
    unit: 's',
    async run({ store, page, reopen }) {
      await openPage(page, store);
      const variant = store.id === 'automerge' ? 'one-doc' : undefined;
      const r = await profiled(page.context(), page, 'w1', () => withTimeout(step(page, 'create', { n: cfg.n, batch: 1, variant }), T(), 'create'));
      const page2 = await reopen(store);
      const verify = await withTimeout(step(page2, 'verifyObjects', { n: cfg.n, handoff: r.handoff, variant }), SETUP_T(), 'verify');
      return { ms: r.ms, verify, extra: { issuedMs: r.issuedMs, idb: r.idb, diag: r.diag } };
    },
  },
  {
    id: 'w1p',
    title: () => `1. create ${fmtN(cfg.n)} one by one — one document per object`,
    stores: ['automerge'],
    unit: 's',
    async run({ store, page, reopen }) {
      await openPage(page, store);
      const variant = 'doc-per-object';
      const r = await withTimeout(step(page, 'create', { n: cfg.n, batch: 1, variant }), T(), 'create');
      const page2 = await reopen(store);
      const verify = await withTimeout(step(page2, 'verifyObjects', { n: cfg.n, handoff: r.handoff, variant }), SETUP_T(), 'verify');
      return { ms: r.ms, verify, extra: { issuedMs: r.issuedMs, idb: r.idb, diag: r.diag } };
    },
  },
  {
    id: 'w1b',
    title: () => `1. create ${fmtN(cfg.n)} in batches of ${cfg.batch}, until durable`,
    stores: ['echo', 'automerge', 'yjs', 'idb'],
    unit: 's',
    async run({ store, page, reopen }) {
      await openPage(page, store);
      const r = await profiled(page.context(), page, 'w1b', () => withTimeout(step(page, 'create', { n: cfg.n, batch: cfg.batch }), T(), 'create'));
      const page2 = await reopen(store);
      const verify = await withTimeout(step(page2, 'verifyObjects', { n: cfg.n, handoff: r.handoff }), SETUP_T(), 'verify');
      return { ms: r.ms, verify, extra: { issuedMs: r.issuedMs, idb: r.idb, diag: r.diag } };
    },
  },
  {
    id: 'w2',
    title: () => `2. reload → first "type=task and done=false" (${fmtN(cfg.loadN)} objects)`,
    stores: ['echo', 'automerge', 'yjs'],
    unit: 's',
    // Untimed setup, once per store: a profile holding the objects (closed, then copied per run).
    async prepare({ store }) {
      const dir = mkdtempSync(join(tmpdir(), 'echo-bench-template-'));
      await initProfile(dir, store);
      const ctx = await chromium.launchPersistentContext(dir, { executablePath: cfg.chromium, headless: true, args: argsFor(store) });
      try {
        const page = ctx.pages()[0] ?? (await ctx.newPage());
        await openPage(page, store);
        const setup = await withTimeout(step(page, 'create', { n: cfg.loadN, batch: cfg.loadBatch }), SETUP_T(), 'setup');
        await step(page, 'idle', {});
        if (store.id === 'echo') await heapAfterGc(ctx, page); // logs the engine worker's mirror facts
        await page.goto('about:blank');
        return { template: dir, handoff: setup.handoff, setupMs: setup.ms };
      } finally {
        await ctx.close().catch(() => {});
      }
    },
    async run({ store, page, ctx, prepared }) {
      const q = `?auto=query&handoff=${encodeURIComponent(JSON.stringify(prepared.handoff))}`;
      const t0 = Date.now();
      await page.goto(`${baseUrl}/${store.page}.html${q}`, { waitUntil: 'commit' });
      const workerProfile = store.id === 'echo' ? profileNewWorker(ctx, page, 'w2') : null;
      const r = await withTimeout(
        (async () => {
          await page.waitForFunction(() => window.__bench, null, { timeout: T() });
          return page.evaluate(() => window.__bench.auto);
        })(),
        T(),
        'load+query',
      );
      const wallMs = Date.now() - t0;
      // Workload 5: memory once the store is loaded and idle, after GC. A second after the first
      // query, for every store: ECHO reads its documents' CRDT bytes after answering it (~0.2 s).
      await new Promise((r) => setTimeout(r, 1000));
      if (workerProfile) await (await workerProfile)?.();
      await step(page, 'idle', {});
      const heap = await heapAfterGc(ctx, page);
      const mem = await step(page, 'memory', {});
      const verify = await withTimeout(step(page, 'verifyQuery', { n: cfg.loadN }), SETUP_T(), 'verify');
      if (!r.first || r.first.type !== 'task' || r.first.done !== false) {
        verify.ok = false;
        verify.problems.push(`first result is not a match: ${JSON.stringify(r.first)}`);
      }
      return {
        ms: r.ms,
        verify,
        extra: {
          wallMs,
          openMs: r.openMs,
          setupMs: prepared.setupMs,
          jsHeapBytes: heap.usedSize + mem.extraJsHeapBytes,
          wasmBytes: mem.wasmBytes + heap.wasmBytes, // page's wasm memories + the vault worker's engine memory (ECHO)
          backingStorageBytes: heap.backingStorageSize,
          workers: heap.workers,
        },
      };
    },
  },
  {
    id: 'w3',
    title: () => `3. ${fmtN(cfg.updates)} single-field updates, each awaited until durable`,
    stores: ['echo', 'automerge', 'yjs', 'idb'],
    unit: 's',
    run: (ctx) => awaitedUpdates(ctx, 'w3', ''),
  },
  {
    id: 'w3r',
    title: () => `3r. the same, ECHO (and the IndexedDB floor) asking for relaxed durability (survives crashes, not power cuts, like Yjs)`,
    stores: ['echo', 'idb'],
    unit: 's',
    run: (ctx) => awaitedUpdates(ctx, 'w3r', '?durability=relaxed'),
  },
  {
    id: 'w4',
    title: () => `4. text: replay ${cfg.trace} (${traceInfo ? `${fmtN(traceInfo.edits)} edits` : 'trace file not found'}), until durable`,
    stores: ['echo', 'automerge', 'yjs'],
    unit: 's',
    skip: () => (traceInfo ? null : `trace ${cfg.trace}.json.gz not found in ${cfg.tracesDir} (set ECHO_TRACES_DIR)`),
    async run({ store, page, reopen }) {
      await openPage(page, store);
      const r = await profiled(page.context(), page, 'w4', () => withTimeout(step(page, 'text', { trace: cfg.trace, edits: cfg.textEdits }), T(), 'replay'));
      if (!r.textOk) return { ms: r.ms, verify: { ok: false, problems: ['text differs from the trace end content before reload'] }, extra: {} };
      const page2 = await reopen(store);
      const verify = await withTimeout(step(page2, 'verifyText', { trace: cfg.trace, edits: cfg.textEdits, handoff: r.handoff }), SETUP_T(), 'verify');
      return { ms: r.ms, verify, extra: { issuedMs: r.issuedMs, idb: r.idb, diag: r.diag } };
    },
  },
];

let traceInfo = null;
{
  const t = loadTrace(cfg.tracesDir, cfg.trace, cfg.textEdits);
  if (t) traceInfo = { edits: t.patches.length, totalEdits: t.totalEdits, length: t.expected.length };
  else log(`editing trace ${cfg.trace}.json.gz is not in ${cfg.tracesDir}: workload 4 is skipped`);
}

// ---- statistics + table -----------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
function summarise(values) {
  if (!values.length) return null;
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
}
const fmtSecs = (ms) => {
  const s = ms / 1000;
  return s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s >= 1 ? s.toFixed(2) : s.toFixed(3);
};
const fmtMB = (b) => (b / 1048576).toFixed(b >= 100 * 1048576 ? 0 : 1);

function cell(res, fmt, unit) {
  if (!res) return '—';
  if (res.status === 'unavailable') return 'n/a';
  if (res.status === 'timeout') return `did not finish within ${cfg.timeoutS} s`;
  if (res.status === 'lost-data') return 'LOST DATA (no score)';
  if (res.status === 'error') return 'error';
  if (res.status === 'skipped') return 'skipped (see below)';
  const s = res.summary;
  if (!s) return '—';
  if (s.n === 1) return `${fmt(s.median)} ${unit}`;
  return `${fmt(s.median)} ${unit} (${fmt(s.min)}–${fmt(s.max)})`;
}

function renderTable(rows, storesShown, echoAvailable) {
  const competitors = storesShown.filter((s) => s.id !== 'echo');
  const header = ['workload', ...storesShown.map((s) => s.label)];
  if (echoAvailable) for (const c of competitors) header.push(`ECHO/${c.label}`);
  const lines = [header];
  for (const row of rows) {
    const line = [row.title];
    for (const s of storesShown) line.push(cell(row.cells[s.id], row.fmt, row.unit));
    if (echoAvailable) {
      const e = row.cells.echo;
      for (const c of competitors) {
        const o = row.cells[c.id];
        line.push(e?.summary && o?.summary && e.status === 'ok' && o.status === 'ok' && o.summary.median > 0 ? (e.summary.median / o.summary.median).toFixed(2) + '×' : '—');
      }
    }
    lines.push(line);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => String(l[i]).length)));
  const fmtLine = (l) => '| ' + l.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |';
  const out = [fmtLine(lines[0]), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...lines.slice(1).map(fmtLine)];
  return out.join('\n');
}

// ---- main -------------------------------------------------------------------
// ECHO's vault: the built vault site (shell/dist, engine wasm included), copied (others may rebuild
// shell/dist meanwhile) and served as its own site, http://vault.localhost:PORT.
let vaultUrl = null;
let vaultEngineModule = null; // e.g. echo_vault.8d73d028.js (for the worker's wasm memory)
let vaultCopy = null;
if (wantStores.includes('echo') && !env.ECHO_BENCH_SITE_VAULT) {
  const shellDist = join(repoRoot, 'shell', 'dist');
  if (!existsSync(join(shellDist, 'vault.html'))) {
    log('shell/dist is missing: building the vault site (node scripts/web-build.mjs) ...');
    execSync('node scripts/web-build.mjs', { cwd: repoRoot, stdio: 'inherit' });
  }
  vaultCopy = mkdtempSync(join(tmpdir(), 'echo-bench-vault-'));
  cpSync(shellDist, vaultCopy, { recursive: true });
  env.ECHO_BENCH_SITE_VAULT = vaultCopy;
}
if (env.ECHO_BENCH_SITE_VAULT) vaultEngineModule = readdirSync(env.ECHO_BENCH_SITE_VAULT).find((f) => /^echo_vault\.[0-9a-f]+\.js$/.test(f)) ?? null;
const { server, port } = await startServer({ root: distDir, tracesDir: cfg.tracesDir });
baseUrl = `http://app.localhost:${port}`;
vaultUrl = `http://vault.localhost:${port}`;
await buildPages({ quiet: true, dist: distDir, define: { __ECHO_VAULT_URL__: JSON.stringify(vaultUrl) } });
if (env.ECHO_BENCH_SITE_VAULT) log(`vault ${vaultUrl} from ${env.ECHO_BENCH_SITE_VAULT}`);
log(`serving ${baseUrl}  (quick=${cfg.quick} runs=${cfg.runs} warmup=${cfg.warmup} timeout=${cfg.timeoutS}s)`);

// Which stores are really there (the ECHO slot may not be filled in yet)?
const storeInfo = {};
for (const s of STORES.filter((s) => wantStores.includes(s.id))) {
  try {
    storeInfo[s.id] = await withProfile(async ({ page }) => {
      await openPage(page, s);
      return step(page, 'info', {});
    }, { store: s });
  } catch (e) {
    storeInfo[s.id] = { available: false, error: String(e?.message ?? e) };
  }
  log(`${s.label}: ${storeInfo[s.id].available ? 'available' : 'not available' + (storeInfo[s.id].error ? ` (${storeInfo[s.id].error.split('\n')[0]})` : '')}`);
}
let chromiumVersion = '?';
try { chromiumVersion = execSync(`${cfg.chromium} --version 2>/dev/null`).toString().trim().replace(/^Chromium /, '').split(' ')[0]; } catch {}
const storesShown = STORES.filter((s) => wantStores.includes(s.id));
const echoAvailable = !!storeInfo.echo?.available;

const results = [];
const rows = [];
const memoryRows = []; // workload 5 rows go last
const startedAt = new Date();

for (const w of WORKLOADS.filter((w) => wantWorkloads.includes(w.id))) {
  const row = { id: w.id, title: w.title(), unit: 's', fmt: fmtSecs, cells: {} };
  const memRows = w.id === 'w2'
    ? [
      { id: 'w2-open', title: '2. … of which until the store was open (ECHO: connected; the space opens at the query)', unit: 's', fmt: fmtSecs, cells: {}, pick: (x) => x.openMs },
      { id: 'w5-js', title: '5. memory after 2: JS heap after GC', unit: 'MB', fmt: fmtMB, cells: {}, pick: (x) => x.jsHeapBytes },
      { id: 'w5-wasm', title: '5. memory after 2: wasm memory', unit: 'MB', fmt: fmtMB, cells: {}, pick: (x) => x.wasmBytes },
      { id: 'w5-total', title: '5. memory after 2: JS heap + wasm', unit: 'MB', fmt: fmtMB, cells: {}, pick: (x) => x.jsHeapBytes + x.wasmBytes },
    ]
    : [];
  rows.push(row);
  memoryRows.push(...memRows);
  const skip = w.skip?.();
  for (const s of storesShown) {
    if (!w.stores.includes(s.id)) continue;
    if (!storeInfo[s.id]?.available) {
      row.cells[s.id] = { status: 'unavailable' };
      for (const m of memRows) m.cells[s.id] = { status: 'unavailable' };
      continue;
    }
    if (skip) {
      row.cells[s.id] = { status: 'skipped', reason: skip };
      continue;
    }
    const total = cfg.warmup + cfg.runs;
    const runs = [];
    let status = 'ok';
    let reason = null;
    let prepared = null;
    if (w.prepare) {
      try {
        const t0 = Date.now();
        prepared = await w.prepare({ store: s });
        log(`${w.id} ${s.label}: setup done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      } catch (e) {
        status = e instanceof Timeout ? 'timeout' : 'error';
        reason = String(e?.stack ?? e);
        log(`${w.id} ${s.label}: setup failed: ${reason}`);
      }
    }
    for (let i = 0; i < total && status === 'ok'; i++) {
      const warm = i < cfg.warmup;
      const label = `${w.id} ${s.label} ${warm ? 'warm-up' : `run ${i - cfg.warmup + 1}/${cfg.runs}`}`;
      const t0 = Date.now();
      let r;
      try {
        r = await withProfile(async (p) => {
          try {
            return await w.run({ store: s, prepared, ...p });
          } catch (e) {
            if (!(e instanceof Error)) e = new Error(String(e));
            if (p.errors.length) e.pageErrors = p.errors.slice(0, 5);
            if (e instanceof Timeout) {
              // How far did it get? (the page is usually just waiting on IndexedDB by then)
              const st = await withTimeout(step(p.page, 'idb', {}), 3000, 'idb stats').catch(() => null);
              if (st) e.message += ` (${fmtN(st.completed)} of ${fmtN(st.opened)} IndexedDB write transactions committed by then)`;
            }
            throw e;
          }
        }, { template: prepared?.template, store: s });
      } catch (e) {
        if (e instanceof Timeout) {
          status = 'timeout';
          reason = e.message;
          log(`${label}: ${e.message}`);
        } else {
          status = 'error';
          reason = String(e?.stack ?? e) + (e.pageErrors ? `\npage errors:\n${e.pageErrors.join('\n')}` : '');
          log(`${label}: ERROR ${reason}`);
        }
        break; // a store that cannot finish a run gets no figure; don't repeat it
      }
      if (!r.verify.ok) {
        status = 'lost-data';
        reason = r.verify.problems.slice(0, 5).join('; ');
        log(`${label}: VERIFY FAILED ${reason}`);
        break;
      }
      log(`${label}: ${fmtSecs(r.ms)} s${r.extra?.jsHeapBytes ? `, heap ${fmtMB(r.extra.jsHeapBytes)} MB, wasm ${fmtMB(r.extra.wasmBytes)} MB, ArrayBuffer backing ${fmtMB(r.extra.backingStorageBytes)} MB` : ''} (run took ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      r.loadavg1 = loadavg()[0];
      if (!warm) runs.push(r);
    }
    if (prepared?.template) rmSync(prepared.template, { recursive: true, force: true });
    const cellRes = { status, reason, runs: runs.map((r) => ({ ms: r.ms, loadavg1: r.loadavg1, extra: r.extra })), summary: status === 'ok' ? summarise(runs.map((r) => r.ms)) : null };
    row.cells[s.id] = cellRes;
    for (const m of memRows) {
      m.cells[s.id] = { status, reason, summary: status === 'ok' ? summarise(runs.map((r) => m.pick(r.extra))) : null };
    }
    results.push({ workload: w.id, title: row.title, store: s.id, ...cellRes });
    writeResults(false);
  }
  writeResults(false);
}
// Written after every cell (so an interrupted suite leaves what it measured) and at the end.
function writeResults(final) {
  const allRows = [...rows, ...memoryRows];
  const loads = results.flatMap((r) => r.runs.map((x) => x.loadavg1)).filter((x) => x !== undefined);
  const skips = [...new Set(allRows.flatMap((r) => Object.values(r.cells).filter((c) => c.status === 'skipped').map((c) => c.reason)))];
  const table = renderTable(allRows, storesShown, echoAvailable) + skips.map((x) => `\nskipped: ${x}`).join('') + `\n${final ? '' : 'PARTIAL (suite still running or interrupted). '}${cfg.quick ? 'QUICK mode (small sizes). ' : ''}${cfg.runs} run(s) + ${cfg.warmup} warm-up per figure; median (min–max). ` +
    `Chromium ${chromiumVersion}; ${new Date().toISOString()}; 1-min load average during runs ${loads.length ? `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}` : '?'} on ${cpus().length} cores.`;
  const meta = {
    startedAt: startedAt.toISOString(),
    finishedAt: final ? new Date().toISOString() : null,
    chromium: cfg.chromium,
    chromiumVersion,
    cores: cpus().length,
    config: cfg,
    trace: traceInfo,
    stores: storeInfo,
    note: 'times in ms (summary = median/min/max over measured runs, warm-up excluded); memory in bytes',
  };
  mkdirSync(dirname(cfg.out), { recursive: true });
  writeFileSync(cfg.out, JSON.stringify({ meta, complete: final, rows: allRows.map(({ fmt, ...r }) => r), results }, null, 2));
  const txt = cfg.out.replace(/\.json$/, '') + '.txt';
  writeFileSync(txt, table + '\n');
  return { table, txt };
}

server.close();
if (vaultCopy) rmSync(vaultCopy, { recursive: true, force: true });
const { table, txt } = writeResults(true);
console.log(table);
log(`wrote ${cfg.out} and ${txt}`);
