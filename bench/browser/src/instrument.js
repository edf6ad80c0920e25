// Page instrumentation, imported first by every page bundle.
//
// 1. IndexedDB write tracker. Wraps IDBDatabase.prototype.transaction so every
//    readwrite/versionchange transaction opened by any library on this page is
//    counted until its `complete` (or `abort`) event. `idbIdle()` resolves when no
//    such transaction is outstanding. A transaction's `complete` event is the point
//    at which IndexedDB has committed it; that is the durability point every
//    IndexedDB-backed store on the web has.
// 2. WebAssembly memory capture. Wraps WebAssembly.instantiate(Streaming) and
//    WebAssembly.Instance so the page can report the size of every wasm linear
//    memory it created (these buffers live outside the V8 JS heap).

const tracker = {
  opened: 0,
  completed: 0,
  aborted: 0,
  pending: 0,
  lastError: null,
  waiters: [],
};

function settle() {
  if (tracker.pending !== 0) return;
  const w = tracker.waiters;
  tracker.waiters = [];
  for (const f of w) f();
}

const origTransaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (stores, mode, options) {
  const tx = origTransaction.call(this, stores, mode, options);
  if (mode === 'readwrite' || mode === 'versionchange') {
    tracker.opened++;
    tracker.pending++;
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      tracker.pending--;
      if (ok) tracker.completed++;
      else {
        tracker.aborted++;
        tracker.lastError = String(tx.error ?? 'aborted');
      }
      settle();
    };
    tx.addEventListener('complete', () => finish(true));
    tx.addEventListener('abort', () => finish(false));
  }
  return tx;
};

/** Resolves once no readwrite IndexedDB transaction of this page is outstanding. */
export function idbIdle() {
  if (tracker.pending === 0) return Promise.resolve();
  return new Promise((resolve) => tracker.waiters.push(resolve));
}

export function idbStats() {
  const { opened, completed, aborted, pending, lastError } = tracker;
  return { opened, completed, aborted, pending, lastError };
}

// ---- wasm memories ---------------------------------------------------------
const memories = new Set();
function collect(instance) {
  try {
    for (const v of Object.values(instance.exports)) {
      if (v instanceof WebAssembly.Memory) memories.add(v);
    }
  } catch {}
}
function collectImports(imports) {
  try {
    for (const ns of Object.values(imports ?? {})) {
      for (const v of Object.values(ns ?? {})) if (v instanceof WebAssembly.Memory) memories.add(v);
    }
  } catch {}
}
const W = WebAssembly;
const origInstantiate = W.instantiate;
W.instantiate = async function (src, imports) {
  collectImports(imports);
  const res = await origInstantiate.call(W, src, imports);
  collect(res instanceof W.Instance ? res : res.instance);
  return res;
};
if (W.instantiateStreaming) {
  const origStreaming = W.instantiateStreaming;
  W.instantiateStreaming = async function (src, imports) {
    collectImports(imports);
    const res = await origStreaming.call(W, src, imports);
    collect(res.instance);
    return res;
  };
}
const OrigInstance = W.Instance;
W.Instance = function (module, imports) {
  collectImports(imports);
  const inst = new OrigInstance(module, imports);
  collect(inst);
  return inst;
};
W.Instance.prototype = OrigInstance.prototype;

/** Total bytes of all wasm linear memories created on this page. */
export function wasmMemoryBytes() {
  let total = 0;
  for (const m of memories) total += m.buffer.byteLength;
  return total;
}
