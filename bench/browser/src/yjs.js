// yjs 13.6.33 + y-indexeddb 9.0.12: one Y.Doc persisted by IndexeddbPersistence.
// Objects: a top-level Y.Map 'objects' of id -> Y.Map of the 6 fields. Text: Y.Text 'text'.
import './instrument.js';
import { idbIdle } from './instrument.js';
import * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import { installDriver } from './driver.js';

const FIELDS = ['type', 'title', 'done', 'priority', 'tags', 'ref'];

let doc = null;
let provider = null;
let objects = null;
let text = null;

const toObj = (id, m) => {
  if (!m) return undefined;
  const o = { id };
  for (const f of FIELDS) o[f] = m.get(f);
  o.tags = [...(o.tags ?? [])];
  return o;
};
const newMap = (o) => new Y.Map(FIELDS.map((f) => [f, o[f]]));

const adapter = {
  name: 'Yjs',
  available: true,

  async open() {
    doc = new Y.Doc();
    provider = new IndexeddbPersistence('echo-bench', doc);
    // Updates are only written once the provider has its database: wait for it
    // (and, after a reload, for the stored updates to be applied).
    await provider.whenSynced;
    objects = doc.getMap('objects');
    text = doc.getText('text');
  },
  handoff() {
    return {};
  },

  create(o) {
    doc.transact(() => objects.set(o.id, newMap(o)));
  },
  createBatch(objs) {
    doc.transact(() => {
      for (const o of objs) objects.set(o.id, newMap(o));
    });
  },
  update(id, field, value) {
    doc.transact(() => objects.get(id).set(field, value));
  },
  async durable() {
    // y-indexeddb writes each update in its own readwrite transaction, opened
    // synchronously from the doc's 'update' event (i.e. before transact() returns).
    // So once every readwrite transaction opened so far has fired `complete`,
    // every update issued so far is committed. instrument.js counts them.
    await idbIdle();
  },

  async firstMatch(where) {
    for (const [id, m] of objects) {
      if (m.get('type') === where.type && m.get('done') === where.done) return toObj(id, m);
    }
    return undefined;
  },
  async queryAll(where) {
    const out = [];
    for (const [id, m] of objects) {
      if (m.get('type') === where.type && m.get('done') === where.done) out.push(toObj(id, m));
    }
    return out;
  },
  async count() {
    return objects.size;
  },
  async get(id) {
    return toObj(id, objects.get(id));
  },

  textInit(initial) {
    if (initial) doc.transact(() => text.insert(0, initial));
  },
  textSplice(pos, del, ins) {
    doc.transact(() => {
      if (del) text.delete(pos, del);
      if (ins) text.insert(pos, ins);
    });
  },
  async textGet() {
    return text.toString();
  },
};

installDriver(adapter);
