// automerge-repo 2.5.6 + IndexedDB storage, with @automerge/automerge 3.5.0 through
// the /slim entries and the wasm loaded explicitly (automerge.wasm is copied into dist/).
import './instrument.js';
import { idbIdle, idbStats } from './instrument.js';
import * as A from '@automerge/automerge/slim';
import { Repo, initializeWasm } from '@automerge/automerge-repo/slim';
import { IndexedDBStorageAdapter } from '@automerge/automerge-repo-storage-indexeddb';
import { installDriver } from './driver.js';

await initializeWasm(new URL('./automerge.wasm', location.href));

const FIELDS = ['type', 'title', 'done', 'priority', 'tags', 'ref'];
const fieldsOf = (o) => {
  const out = {};
  for (const f of FIELDS) out[f] = o[f];
  return out;
};
const toObj = (id, v) => (v ? { id, ...v, tags: [...(v.tags ?? [])] } : undefined);

let repo = null;
let variant = 'one-doc';
let handle = null; // one-doc, and the text workload
let urls = []; // doc-per-object: one url per object, in creation order
let byId = new Map(); // doc-per-object: id -> handle
const diag = { pendingAfterFlush: 0 }; // how often flush() resolved while an IDB write was still in flight

const adapter = {
  name: 'automerge-repo',
  available: true,
  variants: ['one-doc', 'doc-per-object'],

  async open({ handoff, variant: v } = {}) {
    variant = v ?? handoff?.variant ?? 'one-doc';
    repo = new Repo({ storage: new IndexedDBStorageAdapter('echo-bench'), network: [] });
    if (!handoff) {
      if (variant === 'one-doc') handle = repo.create({ objects: {}, text: '' });
      urls = [];
      byId = new Map();
      return;
    }
    if (variant === 'one-doc') {
      handle = await repo.find(handoff.url);
    } else {
      urls = handoff.urls;
      const handles = await Promise.all(urls.map((u) => repo.find(u)));
      byId = new Map(handles.map((h) => [h.doc().id, h]));
    }
  },
  handoff() {
    return variant === 'one-doc' ? { variant, url: handle?.url } : { variant, urls };
  },

  create(o) {
    if (variant === 'one-doc') {
      handle.change((d) => {
        d.objects[o.id] = fieldsOf(o);
      });
    } else {
      const h = repo.create({ id: o.id, ...fieldsOf(o) });
      urls.push(h.url);
      byId.set(o.id, h);
    }
  },
  createBatch(objs) {
    if (variant !== 'one-doc') throw new Error('batches only in one-doc');
    handle.change((d) => {
      for (const o of objs) d.objects[o.id] = fieldsOf(o);
    });
  },
  update(id, field, value) {
    if (variant === 'one-doc') handle.change((d) => { d.objects[id][field] = value; });
    else byId.get(id).change((d) => { d[field] = value; });
  },
  async durable() {
    // repo.flush() saves every document handle's pending changes and resolves when the
    // storage adapter's writes resolved (the IndexedDB adapter resolves on transaction
    // `complete`). Belt and braces: also wait until no readwrite IDB transaction of this
    // page is outstanding (catches a throttled background save that is still in flight).
    await repo.flush();
    if (idbStats().pending > 0) diag.pendingAfterFlush++;
    await idbIdle();
  },

  diagnostics() {
    return { ...diag };
  },

  async firstMatch(where) {
    const objs = handle.doc().objects;
    for (const id in objs) {
      const v = objs[id];
      if (v.type === where.type && v.done === where.done) return toObj(id, v);
    }
    return undefined;
  },
  async queryAll(where) {
    const objs = handle.doc().objects;
    const out = [];
    for (const id in objs) {
      const v = objs[id];
      if (v.type === where.type && v.done === where.done) out.push(toObj(id, v));
    }
    return out;
  },
  async count() {
    if (variant === 'one-doc') return Object.keys(handle.doc().objects).length;
    return byId.size;
  },
  async get(id) {
    if (variant === 'one-doc') return toObj(id, handle.doc().objects[id]);
    const h = byId.get(id);
    return h ? toObj(id, h.doc()) : undefined;
  },

  textInit(initial) {
    handle.change((d) => { d.text = initial; });
  },
  textSplice(pos, del, ins) {
    handle.change((d) => { A.splice(d, ['text'], pos, del, ins); });
  },
  async textGet() {
    return String(handle.doc().text);
  },
};

installDriver(adapter);
