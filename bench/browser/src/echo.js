// ECHO through its client SDK (client/src): the page (http://app.localhost:PORT/echo.html)
// embeds the vault's iframe (http://vault.localhost:PORT/vault.html, baked in at build time as
// __ECHO_VAULT_URL__); the engine (Rust -> wasm) runs in the vault's SharedWorker and keeps its
// data in the vault site's IndexedDB. One space per run (created on the fresh profile).
//
// - The connection starts as soon as the page loads (so w2's figure includes connecting). When the
//   vault says consent is required (fresh profile), the page shows a button #ask whose click handler
//   calls vault.requestAccess() synchronously and sets window.__echo.state = 'consent-needed'; the
//   harness (run.mjs, openPage) clicks it and then "Allow" in the vault's consent popup.
// - Objects: space.create(type, {bid, title, done, priority, tags, ref}); `bid` is the bench id
//   ('obj-17'), so get(id) after a reload is a query on `bid`. `ref` stays a plain string (a bench id).
// - durable(): the vault answers a write only after its IndexedDB transaction committed, so
//   awaiting every write's answer is the durability signal (writes are never awaited one by one
//   by the driver; they are kept in `pending`).
import './instrument.js';
import { installDriver } from './driver.js';
import { connect, query, where, mutation, text } from '@echo/client';

const VAULT_URL = typeof __ECHO_VAULT_URL__ === 'string' ? __ECHO_VAULT_URL__ : `http://vault.localhost:${location.port}`;

const status = { state: 'connecting', error: null, access: null, vaultState: null };
window.__echo = status;

// heartbeatTimeoutMs: with the default (3 s) the client declared the vault gone and failed every
// pending call (rpc.disconnected) while the engine worked through w2's setup (100 batches of 1,000
// creates in flight): the heartbeat ping waits behind the queued writes. Not a crash, a busy engine.
// ?durability=relaxed: the connection asks for relaxed writes (w3r; ConnectOptions.durability).
const durability = new URLSearchParams(location.search).get('durability') === 'relaxed' ? 'relaxed' : 'strict';
const vault = connect({ vaultUrl: VAULT_URL, clientName: 'echo-bench', durability, callTimeoutMs: 900_000, connectTimeoutMs: 60_000, heartbeatTimeoutMs: 120_000 });
vault.onStateChange((s) => {
  status.vaultState = s;
  if (s === 'connected') status.state = 'connected';
  else if (s === 'not_authorized') showAsk();
  else if (s === 'storage_partitioned' || s === 'storage_blocked') { status.state = 'failed'; status.error = `${s}: ${vault.lastError?.message ?? ''}`; }
});

function showAsk() {
  if (document.getElementById('ask')) { status.state = 'consent-needed'; return; }
  const b = document.createElement('button');
  b.id = 'ask';
  b.textContent = 'Allow ECHO bench';
  b.addEventListener('click', () => {
    // Must run synchronously in the click handler (the popup needs the user activation).
    vault.requestAccess({ appName: 'ECHO bench' }).then(
      (r) => { status.access = r; },
      (e) => { status.access = { error: String(e?.code ?? '') + ' ' + String(e?.message ?? e) }; },
    );
  });
  const add = () => document.body.append(b);
  document.body ? add() : addEventListener('DOMContentLoaded', add);
  status.state = 'consent-needed';
}

let space = null;
let spaceId = null;
let textId = null;
const ids = new Map(); // bench id -> ECHO object id (from create/batch answers)
let pending = [];
let writes = 0;

const fields = (o) => ({ bid: o.id, title: o.title, done: o.done, priority: o.priority, tags: o.tags, ref: o.ref });
// Flow control: the vault refuses a connection's writes beyond 65,536 waiting for storage
// ("wait for their answers before sending more"), and w4 issues 259,778 splices without waiting.
// So writes go out in issue order with at most WINDOW mutations in flight; the rest wait here
// (still counted in the timing: durable() resolves when the last one is answered).
const WINDOW = 16384;
let inflight = 0;
// A FIFO read by index: Array#shift on a queue of 259,778 writes copies the rest each time
// (quadratic; it kept the page busy for 33 of w4's 37 s while the engine idled).
let queue = [];
let head = 0;
function pump() {
  while (head < queue.length && (inflight === 0 || inflight + queue[head].units <= WINDOW)) {
    const q = queue[head];
    queue[head++] = undefined;
    inflight += q.units;
    q.fn().then(q.res, q.rej).finally(() => { inflight -= q.units; pump(); });
  }
  if (head === queue.length) {
    queue = [];
    head = 0;
  }
}
const write = (units, fn) => new Promise((res, rej) => { queue.push({ units, fn, res, rej }); pump(); });
const track = (p) => { writes++; pending.push(p); return p; };
const toBench = (e) => (e ? { id: e.fields.bid, type: e.type, title: e.fields.title, done: e.fields.done, priority: e.fields.priority, tags: e.fields.tags, ref: e.fields.ref } : undefined);
const taskWhere = (w) => where.and(where.type(w.type), where.eq('done', w.done));

async function echoId(bid) {
  const known = ids.get(bid);
  if (known) return known;
  const r = await space.query(query(where.eq('bid', bid), { limit: 1 }));
  if (r.ids[0]) ids.set(bid, r.ids[0]);
  return r.ids[0];
}

const adapter = {
  name: 'ECHO',
  available: true,

  async open({ handoff } = {}) {
    await vault.whenConnected();
    if (handoff?.spaceId) {
      spaceId = handoff.spaceId;
      textId = handoff.textId ?? null;
    } else {
      spaceId = (await vault.spaces.create({ app: 'echo-bench' })).id;
      textId = null;
    }
    space = vault.space(spaceId);
    ids.clear();
    pending = [];
  },
  handoff() {
    return { spaceId, textId };
  },

  create(o) {
    track(write(1, () => space.create(o.type, fields(o))).then((id) => { ids.set(o.id, id); }));
  },
  createBatch(objs) {
    const ms = objs.map((o) => mutation.create(o.type, fields(o)));
    track(write(objs.length, () => space.batch(ms)).then((got) => {
      for (let i = 0; i < objs.length; i++) ids.set(objs[i].id, got[i]);
    }));
  },
  update(id, field, value) {
    const known = ids.get(id);
    track(write(1, () => (known ? space.update(known, { [field]: value }) : echoId(id).then((eid) => space.update(eid, { [field]: value })))));
  },
  async durable() {
    while (pending.length) {
      const p = pending;
      pending = [];
      await Promise.all(p);
    }
  },

  async firstMatch(w) {
    const r = await space.query(query(taskWhere(w), { limit: 1 }), { resolve: true });
    return toBench(r.objects?.[0]);
  },
  async queryAll(w) {
    const r = await space.query(query(taskWhere(w)), { resolve: true });
    return (r.objects ?? []).map(toBench);
  },
  async count() {
    const r = await space.query(query(where.all()));
    return r.ids.length;
  },
  async get(bid) {
    const r = await space.query(query(where.eq('bid', bid), { limit: 1 }), { resolve: true });
    return toBench(r.objects?.[0]);
  },

  textInit(initial) {
    track(write(1, () => space.create('doc', { note: text(initial) })).then((id) => { textId = id; }));
  },
  textSplice(pos, del, ins) {
    // Positions are code points in the SDK; the trace is BMP-only (UTF-16 == code points).
    track(write(1, () => space.splice(textId, 'note', pos, del, ins)));
  },
  async textGet() {
    return space.readText(textId, 'note');
  },

  diagnostics() {
    return { writes, window: WINDOW, vaultState: vault.state };
  },
  // The engine's JS heap and wasm memory live in the vault's SharedWorker: run.mjs measures both
  // through CDP (worker heap via Runtime.getHeapUsage, wasm via the worker's wasm-bindgen `memory`).
  async extraMemory() {
    return {};
  },
};

installDriver(adapter);
