// The workloads, written once against the BenchAdapter interface (adapter.d.ts).
// The harness (run.mjs) drives them through window.__bench.run(step, params).
import { idbIdle, idbStats, wasmMemoryBytes } from './instrument.js';
import { makeObject, matchesQuery, updateTarget, spotCheckIndices, sameObject, normalise, objectId } from './data.js';

const WHERE = { type: 'task', done: false };

function objects(n) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = makeObject(i, n);
  return out;
}

async function fetchTrace(name, edits) {
  const res = await fetch(`/trace/${encodeURIComponent(name)}?edits=${edits ?? ''}`);
  if (!res.ok) throw new Error(`trace ${name}: HTTP ${res.status} ${await res.text()}`);
  return res.json(); // { startContent, patches: [[pos, del, ins], ...], expected }
}

export function installDriver(adapter) {
  const steps = {
    info: async () => ({ name: adapter.name, available: adapter.available, variants: adapter.variants ?? [] }),

    // Workload 1 (and the setup of 2 and 3): create n objects, batch = 1 means one change each.
    async create({ n, batch = 1, variant }) {
      const objs = objects(n);
      await adapter.open({ variant });
      const t0 = performance.now();
      if (batch <= 1) {
        for (let i = 0; i < n; i++) adapter.create(objs[i]);
      } else {
        for (let i = 0; i < n; i += batch) adapter.createBatch(objs.slice(i, i + batch));
      }
      const tIssued = performance.now();
      await adapter.durable();
      const t1 = performance.now();
      return { ms: t1 - t0, issuedMs: tIssued - t0, handoff: adapter.handoff(), idb: idbStats(), diag: adapter.diagnostics?.() };
    },

    // Workload 3: `count` single-field updates, each awaited until durable.
    async updates({ n, count }) {
      const t0 = performance.now();
      for (let k = 0; k < count; k++) {
        const { id, field, value } = updateTarget(k, n);
        adapter.update(id, field, value);
        await adapter.durable();
      }
      const t1 = performance.now();
      return { ms: t1 - t0, handoff: adapter.handoff(), idb: idbStats(), diag: adapter.diagnostics?.() };
    },

    // After a reload: is everything there?
    async verifyObjects({ n, handoff, variant, updates = 0 }) {
      await adapter.open({ handoff, variant });
      const problems = [];
      const count = await adapter.count();
      if (count !== n) problems.push(`count ${count}, expected ${n}`);
      const expectPriority = new Map();
      for (let k = 0; k < updates; k++) {
        const u = updateTarget(k, n);
        expectPriority.set(u.id, u.value);
      }
      const check = new Set(spotCheckIndices(n).map(objectId));
      for (const id of expectPriority.keys()) check.add(id);
      let checked = 0;
      for (const id of check) {
        const i = Number(id.slice(4));
        const want = makeObject(i, n);
        if (expectPriority.has(id)) want.priority = expectPriority.get(id);
        const got = await adapter.get(id);
        checked++;
        if (!sameObject(got, want)) {
          problems.push(`${id}: got ${JSON.stringify(normalise(got))}, want ${JSON.stringify(want)}`);
          if (problems.length > 5) break;
        }
      }
      return { ok: problems.length === 0, count, checked, problems };
    },

    // Workload 2 verification (same page as the timed load): query results are complete and right.
    async verifyQuery({ n }) {
      const problems = [];
      const count = await adapter.count();
      if (count !== n) problems.push(`count ${count}, expected ${n}`);
      let expected = 0;
      for (let i = 0; i < n; i++) if (matchesQuery(makeObject(i, n))) expected++;
      const got = await adapter.queryAll(WHERE);
      if (got.length !== expected) problems.push(`query returned ${got.length}, expected ${expected}`);
      for (const o of got.slice(0, 20)) {
        const want = makeObject(Number(String(o.id).slice(4)), n);
        if (!sameObject(o, want) || !matchesQuery(want)) problems.push(`${o.id}: got ${JSON.stringify(normalise(o))}`);
      }
      return { ok: problems.length === 0, count, matches: got.length, problems };
    },

    // Workload 4: replay an editing trace, one change per edit, until durable.
    async text({ trace, edits }) {
      const t = await fetchTrace(trace, edits);
      await adapter.open({});
      adapter.textInit(t.startContent);
      await adapter.durable();
      const p = t.patches;
      const t0 = performance.now();
      for (let k = 0; k < p.length; k++) adapter.textSplice(p[k][0], p[k][1], p[k][2]);
      const tIssued = performance.now();
      await adapter.durable();
      const t1 = performance.now();
      const final = await adapter.textGet();
      return { ms: t1 - t0, issuedMs: tIssued - t0, edits: p.length, textOk: final === t.expected, handoff: adapter.handoff(), idb: idbStats(), diag: adapter.diagnostics?.() };
    },

    async verifyText({ trace, edits, handoff }) {
      const t = await fetchTrace(trace, edits);
      await adapter.open({ handoff });
      const final = await adapter.textGet();
      const ok = final === t.expected;
      return { ok, length: final.length, expectedLength: t.expected.length, problems: ok ? [] : ['final text differs from the trace\'s end content'] };
    },

    async memory() {
      const extra = adapter.extraMemory ? await adapter.extraMemory() : {};
      return { wasmBytes: wasmMemoryBytes() + (extra.wasmBytes ?? 0), extraJsHeapBytes: extra.jsHeapBytes ?? 0 };
    },

    idb: async () => idbStats(),
    idle: async () => { await idbIdle(); return idbStats(); },
  };

  const bench = {
    run: async (step, params = {}) => {
      if (!steps[step]) throw new Error(`unknown step ${step}`);
      return steps[step](params);
    },
    auto: null,
  };

  // Workload 2: on a page opened with ?auto=query the timed load starts right away;
  // the figure is performance.now() (ms since navigation start) at the first result.
  const q = new URLSearchParams(location.search);
  if (q.get('auto') === 'query') {
    bench.auto = (async () => {
      const handoff = q.has('handoff') ? JSON.parse(q.get('handoff')) : undefined;
      await adapter.open({ handoff });
      const openMs = performance.now();
      const first = await adapter.firstMatch(WHERE);
      const ms = performance.now();
      return { ms, openMs, first: normalise(first), handoff: adapter.handoff() };
    })();
    bench.auto.catch(() => {});
  }
  window.__bench = bench;
}
