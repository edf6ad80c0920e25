// ECHO over WebRTC: two vaults in two Chromium profiles (A and B, two identities), each with the e2e probe
// app (the SDK in an app page, the vault in its iframe) and, where a figure needs B connected, a top-level
// vault page that leads B's WebRTC connections (on loopback, Chromium gives a cross-site iframe no ICE
// candidates). One run measures:
//
//   sync N        A's space holds N objects that B (a member, admitted by an invitation while the space was
//                 empty) has never seen. B's vault page opens; the figure is the time from the moment it starts
//                 driving WebRTC (as y-webrtc's starts at `new WebrtcProvider`) to B's app seeing all N objects
//                 in a live query: signaling, ICE/DTLS, peer authentication, the sync itself and B's IndexedDB
//                 write. The page's own load before that is reported apart (`pageLoadMs`).
//   edit          A's app sets one field of one object `edits` times, 20 ms apart; each figure is B's app's
//                 query diff time − A's call time (one wall clock: both browsers run on this machine).
//   trace lag     A's app replays the first `traceEdits` edits of an editing trace into one text field, one
//                 `text.splice` each, as fast as the SDK takes them; the figure is the time from A's last call
//                 to B's app seeing the final text.
//
// Every wait has a deadline: a figure that cannot be taken is null, with the reason in `notes`.
import { admit } from "../../../e2e/lib/invite.mjs";
import { allowInPopup, openProbe, until, waitState } from "../../../e2e/lib/util.mjs";
import { percentile } from "./stats.mjs";

const SECOND = 1000;

/** A probe app in `browser`, connected, allowed `spaces`. */
async function app(browser, sites, spaces) {
  // The heartbeat waits behind queued writes while A fills 100,000 objects: a busy engine, not a lost one.
  const page = await openProbe(browser.context, sites.probeA, { options: { heartbeatTimeoutMs: 120 * SECOND, callTimeoutMs: 600 * SECOND }, state: ["not_authorized", "connected"] });
  if ((await page.evaluate(() => window.probe.vault.state)) !== "connected") {
    await allowInPopup(browser.context, page, { spaces });
    await waitState(page, "connected");
  }
  return page;
}

/** A vault page of `browser` that leads its WebRTC connections. */
async function leader(browser, sites) {
  const page = await browser.context.newPage();
  await page.goto(`${sites.vault}/manage.html`);
  await page.waitForFunction(() => document.documentElement.dataset.net === "driving", null, { timeout: 15 * SECOND });
  return page;
}

/** Fills `space` with `n` objects of type `item` (batches of 1,000, all acknowledged = durable on A). */
const fill = (page, space, n) =>
  page.evaluate(
    async ({ space, n }) => {
      const { vault, echo } = window.probe;
      const s = vault.space(space);
      const pending = [];
      for (let i = 0; i < n; i += 1000) {
        const batch = [];
        for (let k = i; k < Math.min(n, i + 1000); k++) {
          batch.push(echo.mutation.create("item", { title: `item ${k}`, done: k % 3 === 0, priority: k % 5, tags: ["bench", `t${k % 7}`] }));
        }
        pending.push(s.batch(batch));
        if (pending.length >= 8) await pending.shift();
      }
      await Promise.all(pending);
    },
    { space, n },
  );

/**
 * In B's app: resolves with the wall-clock time (ms) at which a live query of `type` in `space` first holds
 * `n` objects, or null after `timeoutMs`.
 */
const whenCount = (page, space, type, n, timeoutMs) =>
  page.evaluate(
    async ({ space, type, n, timeoutMs }) => {
      const { vault, echo } = window.probe;
      const now = () => performance.timeOrigin + performance.now();
      return new Promise((resolve) => {
        let sub = null;
        const timer = setTimeout(() => finish(null), timeoutMs);
        const finish = (t) => {
          clearTimeout(timer);
          sub?.unsubscribe().catch(() => {});
          resolve(t);
        };
        vault
          .space(space)
          .subscribe(echo.query(echo.where.type(type)), (_diff, s) => {
            if (s.ids.length >= n) finish(now());
          })
          .then((s) => {
            sub = s;
            if (s.ids.length >= n) finish(now());
          }, () => finish(null));
      });
    },
    { space, type, n, timeoutMs },
  );

/**
 * One run, on two fresh profiles.
 * @param {object} o
 * @param {() => Promise<{context: import('playwright-core').BrowserContext, close: () => Promise<void>}>} o.newBrowser
 * @param {{vault: string, probeA: string}} o.sites  the vault site and the probe app (e2e/lib/sites.mjs)
 * @param {{startContent: string, patches: [number, number, string][], expected: string} | null} o.trace
 * @param {number[]} o.sizes  object counts for the sync figures, ascending
 * @param {number} o.edits
 * @param {(s: string) => void} o.log
 * @returns {Promise<{ syncMs: Record<number, number|null>, editP50Ms: number|null, editP99Ms: number|null, editSamples: number[], traceLagMs: number|null, notes: string[] }>}
 */
export async function runEchoOnce({ newBrowser, sites, trace, sizes, edits, log }) {
  const out = { syncMs: {}, editP50Ms: null, editP99Ms: null, editSamples: [], traceLagMs: null, notes: [] };
  const A = await newBrowser();
  const B = await newBrowser();
  if (process.env.ECHO_BENCH_DEBUG) {
    // The vault pages' network log (echo-net: …), stamped, for finding where time goes.
    for (const [name, br] of [["A", A], ["B", B]]) {
      br.context.on("page", (page) =>
        page.on("console", (m) => {
          if (/echo-net/.test(m.text())) log(`${Date.now() % 100000} ${name} ${page.url().split("?")[0].split("#")[0].replace(/^.*\//, "")}: ${m.text()}`);
        }),
      );
    }
  }
  try {
    // When a vault page of B's starts driving WebRTC (its <html data-net="driving">), on B's wall clock.
    await B.context.addInitScript(() => {
      const mark = () => {
        if (!window.__drivingAt && document.documentElement?.dataset.net === "driving") window.__drivingAt = performance.timeOrigin + performance.now();
      };
      new MutationObserver(mark).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-net"] });
    });
    const leadA = await leader(A, sites);
    const a = await app(A, sites, []);
    const spaces = {};
    for (const n of sizes) spaces[n] = await a.evaluate(async (name) => (await window.probe.vault.spaces.create({ name })).id, `bench ${n}`);
    // B joins every space while it is empty; its invitation pages lead B's network host meanwhile.
    const guests = [];
    for (const n of sizes) guests.push(await admit(A.context, B.context, sites.vault, spaces[n], { keepGuest: true }));
    const b = await app(B, sites, Object.values(spaces));
    // B goes quiet: no top-level vault page of B's is open (its app's iframe cannot reach A on loopback).
    for (const g of guests) await g.close();
    log(`echo: B joined ${sizes.length} space(s); leader A ready (${leadA.url()})`);

    let first = true;
    for (const n of sizes) {
      const t0 = Date.now();
      await fill(a, spaces[n], n);
      log(`echo: A wrote ${n} objects in ${Date.now() - t0} ms`);
      const seen = whenCount(b, spaces[n], "item", n, 120 * SECOND);
      const start = Date.now();
      const leadB = await leader(B, sites);
      const at = await seen;
      if (at === null) out.notes.push(`echo sync ${n}: B did not see ${n} objects within 120 s`);
      // From the moment B's page started driving WebRTC (as y-webrtc's figure starts at `new
      // WebrtcProvider`); the page's own load before that is reported apart.
      const driving = await leadB.evaluate(() => window.__drivingAt ?? null);
      out.syncMs[n] = at === null || driving === null ? null : at - driving;
      out.pageLoadMs ??= {};
      out.pageLoadMs[n] = driving === null ? null : driving - start;
      log(`echo: sync ${n}: ${out.syncMs[n]} ms after B's network host started (${out.pageLoadMs[n]} ms of vault page load before it)`);

      if (first) {
        first = false;
        await edit(a, b, spaces[n], edits, out);
        if (trace) await typeTrace(a, b, spaces[n], trace, out);
        else out.notes.push("echo trace: no trace file");
      }
      await leadB.close();
    }
  } finally {
    await A.close();
    await B.close();
  }
  return out;
}

/** The edit → visible figures: `edits` single-field updates on A, 20 ms apart, observed on B. */
async function edit(a, b, space, edits, out) {
  const id = await a.evaluate(async (space) => window.probe.vault.space(space).create("probe-edit", { title: "v0" }), space);
  // B watches the object; every diff's title is stamped with B's wall clock.
  const ready = await b.evaluate(
    async ({ space, id }) => {
      const { vault, echo } = window.probe;
      const seen = (window.__seen = new Map());
      const now = () => performance.timeOrigin + performance.now();
      window.__editSub = await vault.space(space).subscribe(
        echo.query(echo.where.type("probe-edit")),
        (diff) => {
          const t = now();
          for (const o of diff.objects) if (o.id === id && !seen.has(o.fields.title)) seen.set(o.fields.title, t);
        },
        { resolve: true },
      );
      for (const o of window.__editSub.list()) if (o.id === id) seen.set(o.fields.title, now());
      return true;
    },
    { space, id },
  );
  if (!ready) return;
  await until(() => b.evaluate(() => window.__seen.has("v0")), { timeoutMs: 20 * SECOND, what: "B sees the edited object" });
  const { times: sent, acks } = await a.evaluate(
    async ({ space, id, edits }) => {
      const s = window.probe.vault.space(space);
      const times = [];
      const acks = [];
      for (let k = 1; k <= edits; k++) {
        const t = performance.timeOrigin + performance.now();
        times.push(t);
        await s.update(id, { title: `v${k}` });
        acks.push(performance.timeOrigin + performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
      return { times, acks };
    },
    { space, id, edits },
  );
  await until(() => b.evaluate((last) => window.__seen.has(last), `v${edits}`), { timeoutMs: 20 * SECOND, what: "B sees the last edit" }).catch(() => {});
  const seen = new Map(await b.evaluate(() => [...window.__seen]));
  await b.evaluate(() => window.__editSub.unsubscribe());
  const samples = [];
  for (let k = 1; k <= edits; k++) {
    const t = seen.get(`v${k}`);
    if (t !== undefined) samples.push(t - sent[k - 1]);
  }
  if (samples.length < edits) out.notes.push(`echo edit: B saw ${samples.length} of ${edits} edits (the others were merged into later diffs or lost)`);
  // Where the time goes: A's own write is answered once IndexedDB committed it, and a change is offered to
  // peers only after that (ADR 0004, decision 3).
  out.notes.push(`echo edit: A's write acknowledged (durable in A's IndexedDB) after p50 ${percentile(acks, 50)?.toFixed(1)} ms, p99 ${percentile(acks, 99)?.toFixed(1)} ms`);
  out.editSamples = samples;
  out.editP50Ms = percentile(samples, 50);
  out.editP99Ms = percentile(samples, 99);
}

/** The trace lag: A replays the trace into one text field; how long after A's last call B's text equals it. */
async function typeTrace(a, b, space, trace, out) {
  const id = await a.evaluate(async ({ space, start }) => {
    const { vault, echo } = window.probe;
    return vault.space(space).create("bench-doc", { body: echo.text(start) });
  }, { space, start: trace.startContent });
  await until(() => b.evaluate(async ({ space, id }) => (await window.probe.vault.space(space).get(id)) !== null, { space, id }), { timeoutMs: 20 * SECOND, what: "B sees the text object" });
  const equal = b.evaluate(
    async ({ space, expected }) => {
      const { vault, echo } = window.probe;
      const now = () => performance.timeOrigin + performance.now();
      return new Promise((resolve) => {
        let sub = null;
        const timer = setTimeout(() => finish(null), 120_000);
        const finish = (t) => {
          clearTimeout(timer);
          sub?.unsubscribe().catch(() => {});
          resolve(t);
        };
        const check = (objects) => {
          for (const o of objects) if (String(o.fields.body) === expected) finish(now());
        };
        vault
          .space(space)
          .subscribe(echo.query(echo.where.type("bench-doc")), (diff) => check(diff.objects), { resolve: true })
          .then((s) => {
            sub = s;
            check(s.list());
          }, () => finish(null));
      });
    },
    { space, expected: trace.expected },
  );
  const last = await a.evaluate(
    async ({ space, id, patches }) => {
      const s = window.probe.vault.space(space);
      const pending = [];
      for (const [pos, del, ins] of patches) pending.push(s.splice(id, "body", pos, del, ins));
      const last = performance.timeOrigin + performance.now();
      await Promise.all(pending);
      return last;
    },
    { space, id, patches: trace.patches },
  );
  const at = await equal;
  if (at === null) out.notes.push("echo trace: B's text did not equal the trace's within 120 s");
  out.traceLagMs = at === null ? null : at - last;
}
