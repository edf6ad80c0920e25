// IndexedDB's own floor: the same workloads written straight to IndexedDB on the page, no CRDT, no engine,
// no worker. Each object is one record (keyPath id) of one object store, also held in a Map on the page (as every
// store here holds its state in memory); a create or an update is one readwrite transaction of one put (an update
// changes the page's copy and puts it), committed with the durability the page asks for (?durability=relaxed, else 'strict', as ECHO's default). What a store of this page costs per
// awaited write is the least any IndexedDB-backed store can cost (issue 13: "one transaction should cost no more
// than IndexedDB's own floor, measured in the same run").
import './instrument.js';
import { idbIdle } from './instrument.js';
import { installDriver } from './driver.js';

const DB = 'echo-bench-floor';
const durability = new URLSearchParams(location.search).get('durability') === 'relaxed' ? 'relaxed' : 'strict';

let db = null;
/** The page's copy of what this session wrote, by id (an update puts the whole record again). */
const objects = new Map();
let textValue = '';

const request = (r) =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

function write(fn) {
  const tx = db.transaction('objects', 'readwrite', { durability });
  fn(tx.objectStore('objects'));
  tx.commit();
}

const adapter = {
  name: 'IndexedDB floor',
  available: true,

  async open() {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => {
      r.result.createObjectStore('objects', { keyPath: 'id' });
      r.result.createObjectStore('text');
    };
    db = await request(r);
  },
  handoff() {
    return {};
  },

  create(o) {
    objects.set(o.id, o);
    write((s) => s.put(o));
  },
  createBatch(objs) {
    for (const o of objs) objects.set(o.id, o);
    write((s) => {
      for (const o of objs) s.put(o);
    });
  },
  update(id, field, value) {
    const o = objects.get(id);
    if (!o) throw new Error(`update of ${id}: not created in this session`);
    o[field] = value;
    write((s) => s.put(o));
  },
  async durable() {
    // instrument.js counts every readwrite transaction of the page until its `complete`.
    await idbIdle();
  },

  async firstMatch(where) {
    const tx = db.transaction('objects', 'readonly');
    return new Promise((resolve, reject) => {
      const cursor = tx.objectStore('objects').openCursor();
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (!c) return resolve(undefined);
        if (c.value.type === where.type && c.value.done === where.done) return resolve(c.value);
        c.continue();
      };
      cursor.onerror = () => reject(cursor.error);
    });
  },
  async queryAll(where) {
    const all = await request(db.transaction('objects', 'readonly').objectStore('objects').getAll());
    return all.filter((o) => o.type === where.type && o.done === where.done);
  },
  async count() {
    return request(db.transaction('objects', 'readonly').objectStore('objects').count());
  },
  async get(id) {
    return request(db.transaction('objects', 'readonly').objectStore('objects').get(id));
  },

  // Text: the whole string in one record per edit (IndexedDB has no text type); the floor of an edit's write.
  textInit(initial) {
    textValue = initial;
    const tx = db.transaction('text', 'readwrite', { durability });
    tx.objectStore('text').put(textValue, 'text');
  },
  textSplice(pos, del, ins) {
    textValue = textValue.slice(0, pos) + ins + textValue.slice(pos + del);
    const tx = db.transaction('text', 'readwrite', { durability });
    tx.objectStore('text').put(textValue, 'text');
  },
  async textGet() {
    return (await request(db.transaction('text', 'readonly').objectStore('text').get('text'))) ?? textValue;
  },

  diagnostics() {
    return { durability };
  },
};

installDriver(adapter);
