// Seeded, deterministic workload data shared by every adapter (and the harness).
// Object i is a pure function of (seed, i, n), so any page can regenerate any
// object for spot checks without generating all of them.

export const DEFAULT_SEED = 0xec40;

export const TYPES = ['task', 'note', 'event', 'contact'];
const WORDS = [
  'alpha', 'budget', 'review', 'launch', 'draft', 'meeting', 'garden', 'invoice',
  'design', 'report', 'travel', 'kitchen', 'sprint', 'backlog', 'release', 'call',
  'letter', 'plan', 'notes', 'idea', 'ticket', 'order', 'lunch', 'migration',
];
const TAGS = ['work', 'home', 'urgent', 'later', 'p1', 'p2', 'p3', 'errand', 'reading', 'health'];

/** mulberry32: tiny, fast, good-enough PRNG. */
export function mulberry32(a) {
  return function () {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function objectId(i) {
  return 'obj-' + i;
}

/**
 * The i-th of n objects: 6 fields besides its id.
 * { id, type: string, title: string, done: boolean, priority: number, tags: string[], ref: string (id of another object) }
 */
export function makeObject(i, n, seed = DEFAULT_SEED) {
  const r = mulberry32((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const words = 2 + Math.floor(r() * 4);
  let title = pick(WORDS);
  for (let k = 1; k < words; k++) title += ' ' + pick(WORDS);
  const ntags = Math.floor(r() * 4);
  const tags = [];
  for (let k = 0; k < ntags; k++) tags.push(pick(TAGS));
  return {
    id: objectId(i),
    type: pick(TYPES),
    title: title + ' #' + i,
    done: r() < 0.5,
    priority: Math.floor(r() * 1000) / 10,
    tags,
    ref: objectId(Math.floor(r() * n)),
  };
}

/** The query of workload 2. */
export function matchesQuery(o) {
  return o.type === 'task' && o.done === false;
}

/** Workload 3: which object the k-th update touches, and the value it writes. */
export function updateTarget(k, n) {
  // 7919 is prime and coprime with every n used here, so targets are distinct while k < n.
  return { id: objectId((k * 7919) % n), field: 'priority', value: 100000 + k };
}

/** Indices checked field-by-field after a reload (first, last, and a seeded sample). */
export function spotCheckIndices(n, count = 50, seed = DEFAULT_SEED) {
  const r = mulberry32(seed + 17);
  const out = new Set([0, n - 1]);
  while (out.size < Math.min(count, n)) out.add(Math.floor(r() * n));
  return [...out];
}

/** Normalise what a store hands back to a plain object with the 7 fields. */
export function normalise(o) {
  if (!o) return o;
  return {
    id: String(o.id),
    type: String(o.type),
    title: String(o.title),
    done: o.done,
    priority: o.priority,
    tags: Array.from(o.tags ?? [], String),
    ref: String(o.ref),
  };
}

export function sameObject(a, b) {
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}
