// The Yjs anchor of the WebRTC benchmark: yjs 13.6.33 + y-webrtc 10.3.0 between two Chromium profiles
// (A and B, two people), each with one page holding an in-memory Y.Doc (no persistence), connected through
// y-webrtc's own signaling server (its bin/server.js, run here on a free loopback port). One run measures:
//
//   sync N        A's doc holds N objects (Y.Map 'objects': id -> Y.Map of the fields of data.js's
//                 makeObject, as src/yjs.js). B's page, already loaded with an empty doc, creates its
//                 WebrtcProvider on A's room; the figure is the time from B's `new WebrtcProvider(...)` call
//                 to B's `objects.size === N` (B's observer on the map): signaling, ICE/DTLS/SCTP, y-webrtc's
//                 sync steps and applying the update. A fresh room (random name, no password) and fresh
//                 pages per N.
//   edit          After the first N's sync, with A and B connected and the traffic settled: A sets the title
//                 of one object `edits` times, each its own transaction, ≥ 20 ms apart; each figure is the
//                 time B's observeDeep on `objects` saw the value − A's time just before its transact().
//   trace lag     Then A applies the first `traceEdits` edits of the automerge-paper trace to a Y.Text as
//                 fast as it can, one transaction each (delete, then insert); the figure is the time from just
//                 after A's last edit to B's text (checked on each of its observe events) equal to the
//                 trace's text.
//
// Times are wall-clock (performance.timeOrigin + performance.now()) in each page: one clock, as both
// browsers run on this machine. Before the edit and trace figures both pages must have exactly one WebRTC
// peer and no BroadcastChannel peer (separate profiles cannot share one anyway).
//
// Stock y-webrtc cannot sync 10,000 objects between two Chromiums (its one ~1.8 MB sync message exceeds the
// data-channel message limit and the error is swallowed: yjs/y-webrtc#20, #61), so the page carries a
// chunking shim — bench-only harness code, see yjs-page.js — that sends messages over 16 KiB as 16 KiB
// pieces (with backpressure) and reassembles them; smaller messages take stock y-webrtc's path untouched.
// Every wait has a deadline: a figure that cannot be taken is null, with the reason in `notes`.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { startServer } from '../server.mjs';
import { percentile } from './stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SECOND = 1000;
const EDIT_GAP_MS = 20;

/** Bundles yjs-page.js into a temporary directory with yjs.html; returns the directory. */
async function bundlePage() {
  const dir = mkdtempSync(join(tmpdir(), 'echo-bench-yjs-webrtc-'));
  await build({
    entryPoints: [join(HERE, 'yjs-page.js')],
    outfile: join(dir, 'yjs.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    logLevel: 'warning',
  });
  writeFileSync(join(dir, 'yjs.html'), '<!doctype html><meta charset="utf-8"><title>bench: yjs + y-webrtc</title><link rel="icon" href="data:,"><script type="module" src="./yjs.js"></script>\n');
  return dir;
}

/** A free TCP port on 127.0.0.1. */
const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** y-webrtc's signaling server (node_modules/y-webrtc/bin/server.js) as a child process; resolves once it answers. */
async function startSignaling(log) {
  const port = await freePort();
  // Wherever npm put the package (the workspaces hoist it to the repository's node_modules); its
  // exports map hides bin/, so the path is found from its main entry (dist/y-webrtc.cjs).
  const bin = join(dirname(createRequire(import.meta.url).resolve('y-webrtc')), '..', 'bin', 'server.js');
  const child = spawn(process.execPath, [bin], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  child.stderr.on('data', (d) => log(`yjs: signaling server: ${String(d).trim()}`));
  child.stdout.resume();
  const stop = () =>
    new Promise((resolve) => {
      if (exited) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  for (const t0 = Date.now(); ; await new Promise((r) => setTimeout(r, 50))) {
    if (exited) throw new Error(`the signaling server exited (${JSON.stringify(exited)})`);
    if (Date.now() - t0 > 10 * SECOND) {
      await stop();
      throw new Error('the signaling server did not answer within 10 s');
    }
    try {
      if ((await (await fetch(`http://127.0.0.1:${port}/`)).text()) === 'okay') break;
    } catch {}
  }
  return { url: `ws://127.0.0.1:${port}`, stop };
}

/** A page of the bench in `browser`, in `room`; its errors go to the log. */
async function openPage(browser, base, signaling, room, name, log) {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => log(`yjs: page ${name}: ${e?.stack ?? e}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`yjs: page ${name} console.${m.type()}: ${m.text()}`);
  });
  await page.goto(`${base}/yjs.html?signaling=${encodeURIComponent(signaling)}&room=${encodeURIComponent(room)}`);
  await page.waitForFunction(() => !!window.bench, null, { timeout: 15 * SECOND });
  return page;
}

/** Both pages have exactly one connected WebRTC peer and no BroadcastChannel peer (or why not). */
async function peeredOverWebrtc(a, b) {
  const pa = await a.evaluate(() => window.bench.peers());
  const pb = await b.evaluate(() => window.bench.peers());
  const ok = (p) => p.webrtc === 1 && p.connected === 1 && p.bc === 0;
  return ok(pa) && ok(pb) ? null : `A ${JSON.stringify({ ...pa, net: undefined })}, B ${JSON.stringify({ ...pb, net: undefined })}`;
}

/** Both pages' traffic settled: nothing sent or received for 300 ms (false after 30 s). */
const settle = async (a, b) =>
  (await Promise.all([a, b].map((p) => p.evaluate(() => window.bench.quiet(300, 30_000))))).every(Boolean);

/**
 * One run, on two fresh profiles.
 * @param {object} o
 * @param {() => Promise<{context: import('playwright-core').BrowserContext, close: () => Promise<void>}>} o.newBrowser  a fresh Chromium profile (headless, loopback WebRTC flags already set)
 * @param {string} o.tracesDir  where automerge-paper.json.gz is (may be missing → traceLagMs null, say why in `notes`)
 * @param {number[]} o.sizes  e.g. [10000, 100000]
 * @param {number} o.edits  e.g. 200
 * @param {number} o.traceEdits  e.g. 20000
 * @param {(s: string) => void} o.log
 * @returns {Promise<{ syncMs: Record<number, number|null>, editP50Ms: number|null, editP99Ms: number|null, editSamples: number[], traceLagMs: number|null, notes: string[] }>}  one run
 */
export async function runYjsOnce({ newBrowser, tracesDir, sizes, edits, traceEdits, log }) {
  const out = { syncMs: {}, editP50Ms: null, editP99Ms: null, editSamples: [], traceLagMs: null, notes: [] };
  const cleanup = []; // run in reverse order, also on error
  try {
    const dist = await bundlePage();
    cleanup.push(() => rmSync(dist, { recursive: true, force: true }));
    const { server, port } = await startServer({ root: dist, tracesDir });
    cleanup.push(() => new Promise((r) => server.close(r)));
    cleanup.push(() => server.closeAllConnections());
    const base = `http://app.localhost:${port}`;
    const signaling = await startSignaling(log);
    cleanup.push(signaling.stop);
    const A = await newBrowser();
    cleanup.push(() => A.close());
    const B = await newBrowser();
    cleanup.push(() => B.close());
    const traceFile = join(tracesDir, 'automerge-paper.json.gz');

    let first = true;
    for (const n of sizes) {
      const room = `echo-bench-yjs-${randomUUID()}`;
      const a = await openPage(A, base, signaling.url, room, `A${n}`, log);
      const b = await openPage(B, base, signaling.url, room, `B${n}`, log);
      try {
        const t0 = Date.now();
        await a.evaluate((n) => window.bench.fill(n), n);
        log(`yjs: A wrote ${n} objects in ${Date.now() - t0} ms`);
        if (!(await a.evaluate(() => window.bench.connect()))) {
          out.notes.push(`yjs sync ${n}: A's provider did not reach the signaling server within 10 s`);
          out.syncMs[n] = null;
          continue;
        }

        // ---- sync N
        const timeoutMs = 120 * SECOND;
        const { start, end } = await b.evaluate(({ n, timeoutMs }) => window.bench.syncFrom(n, timeoutMs), { n, timeoutMs });
        const peerProblem = await peeredOverWebrtc(a, b);
        if (end === null) out.notes.push(`yjs sync ${n}: B did not hold ${n} objects within ${timeoutMs / SECOND} s (${peerProblem ?? 'peers connected'})`);
        else if (peerProblem) out.notes.push(`yjs sync ${n}: not one WebRTC peer each after the sync: ${peerProblem}`);
        out.syncMs[n] = end === null || peerProblem ? null : end - start;
        // Where the time went, on B: data channel open (B's first message, its sync step 1), A's big sync
        // step 2 arriving (first to last frame), then B applying it.
        const net = (await b.evaluate(() => window.bench.peers())).net;
        const big = net.lastChunked;
        const ms = (t) => (t ? `${(t - start).toFixed(0)}` : '?');
        log(
          `yjs: sync ${n}: ${out.syncMs[n] === null ? 'null' : `${out.syncMs[n].toFixed(0)} ms`} (B received ${net.recvMsgs} messages, ${(net.recvBytes / 1e6).toFixed(2)} MB; ` +
            `ms after new WebrtcProvider: channel open ${ms(net.firstSentAt)}, sync step 2 from ${ms(big?.firstFrameAt)} to ${ms(big?.lastFrameAt)}, applied ${ms(end)})`,
        );

        if (first) {
          first = false;
          if (!(await settle(a, b))) out.notes.push('yjs: traffic after the sync did not settle within 30 s');
          const problem = await peeredOverWebrtc(a, b);
          if (problem) {
            out.notes.push(`yjs edit / trace: skipped, not one WebRTC peer each: ${problem}`);
          } else {
            await edit(a, b, edits, out, log);
            if (existsSync(traceFile)) await typeTrace(a, b, traceEdits, out, log);
            else out.notes.push(`yjs trace: no automerge-paper.json.gz in ${tracesDir}`);
          }
        }
      } finally {
        await a.close();
        await b.close();
      }
    }
  } finally {
    for (const f of cleanup.reverse()) {
      try {
        await f();
      } catch (e) {
        log(`yjs: cleanup: ${e?.message ?? e}`);
      }
    }
  }
  return out;
}

/** The edit → visible figures: `edits` title updates of one object on A, ≥ 20 ms apart, observed on B. */
async function edit(a, b, edits, out, log) {
  const id = 'obj-0';
  if (!(await b.evaluate((id) => window.bench.watchEdits(id), id))) {
    out.notes.push(`yjs edit: B has no ${id}`);
    return;
  }
  const sent = await a.evaluate(({ id, edits, gap }) => window.bench.edit(id, edits, gap), { id, edits, gap: EDIT_GAP_MS });
  const last = `v${edits}`;
  for (const t0 = Date.now(); Date.now() - t0 < 20 * SECOND; await new Promise((r) => setTimeout(r, 20))) {
    if (await b.evaluate((last) => window.__seen.has(last), last)) break;
  }
  const seen = new Map(await b.evaluate(() => window.bench.seenEdits()));
  const samples = [];
  for (let k = 1; k <= edits; k++) {
    const t = seen.get(`v${k}`);
    if (t !== undefined) samples.push(t - sent[k - 1]);
  }
  if (samples.length < edits) out.notes.push(`yjs edit: B saw ${samples.length} of ${edits} edits within 20 s of the last`);
  out.editSamples = samples;
  out.editP50Ms = percentile(samples, 50);
  out.editP99Ms = percentile(samples, 99);
  log(`yjs: edit → visible: p50 ${out.editP50Ms?.toFixed(2)} ms, p99 ${out.editP99Ms?.toFixed(2)} ms (${samples.length} samples)`);
}

/** The trace lag: A types the trace into a Y.Text; how long after A's last edit B's text equals the trace's. */
async function typeTrace(a, b, traceEdits, out, log) {
  const [na] = await Promise.all([a, b].map((p) => p.evaluate((e) => window.bench.traceLoad(e), traceEdits)));
  // The start content first (empty for automerge-paper), then B watches for the final text.
  await b.evaluate(() => window.bench.watchText('start', 20_000));
  await a.evaluate(() => window.bench.traceStart());
  if ((await b.evaluate(() => window.bench.textDone())) === null) {
    out.notes.push("yjs trace: B did not get the trace's start content within 20 s");
    return;
  }
  if (!(await settle(a, b))) out.notes.push('yjs trace: traffic before typing did not settle within 30 s');
  const before = await Promise.all([a, b].map((p) => p.evaluate(() => window.bench.peers().net)));
  await b.evaluate(() => window.bench.watchText('expected', 120_000));
  const typed = await a.evaluate(() => window.bench.type());
  const at = await b.evaluate(() => window.bench.textDone());
  if (!typed.correct) out.notes.push("yjs trace: A's own text differs from the trace's expected text");
  if (at === null) out.notes.push("yjs trace: B's text did not equal the trace's within 120 s of A's last edit");
  out.traceLagMs = at === null ? null : at - typed.last;
  await settle(a, b);
  const after = await Promise.all([a, b].map((p) => p.evaluate(() => window.bench.peers().net)));
  const d = (i, k) => after[i][k] - before[i][k];
  const kb = (x) => `${(x / 1024).toFixed(0)} KiB`;
  out.notes.push(
    `yjs trace: A typed ${na} edits in ${(typed.last - typed.start).toFixed(0)} ms; over the data channel A sent ${d(0, 'sentMsgs')} messages (${kb(d(0, 'sentBytes'))}) ` +
      `and B echoed ${d(1, 'sentMsgs')} messages (${kb(d(1, 'sentBytes'))}) back (y-webrtc rebroadcasts every update it applies)`,
  );
  log(`yjs: trace lag ${out.traceLagMs?.toFixed(0)} ms; ${out.notes.at(-1)}`);
}
