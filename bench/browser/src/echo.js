// ===================== ECHO ADAPTER SLOT (to be filled in) =====================
//
// Implement the BenchAdapter interface (adapter.d.ts) on top of the client SDK
// (client/src/index.ts), then set `available: true`. Nothing else in the harness
// needs to change: run.mjs picks the store up as the "ECHO" column and adds the
// ECHO/competitor ratio columns.
//
// Notes for whoever fills this in:
//  - The page is http://app.localhost:PORT/echo.html. The server (server.mjs) serves
//    any other *.localhost host from the directory given by env
//    ECHO_BENCH_SITE_<HOST> (e.g. ECHO_BENCH_SITE_VAULT=/path/to/vault/dist for
//    http://vault.localhost:PORT), so the vault's SharedWorker can live on its own site.
//  - durable(): resolve only when the vault has committed every write issued so far
//    to IndexedDB (its transaction `complete`), not when the worker received it.
//  - firstMatch(where): use the engine's query, {type:'task', done:false}; resolve on the
//    first result (the figure is ms since navigation start, so a streaming query counts).
//  - extraMemory(): the engine runs in the vault SharedWorker, which the page's CDP heap
//    figure does not include; report the worker's JS heap (performance.memory or a
//    measurement message) and its wasm memory (engine export) here.
//  - Import the SDK with a relative path, e.g. `import { ... } from '../../../client/src/index.ts'`
//    (esbuild bundles TypeScript directly).
//
// A likely mapping onto @echo/client as of client/README.md (untested here; the vault
// stack was not runnable when this harness was written):
//   open({handoff})      vault = connect({ vaultUrl: 'http://vault.localhost:PORT' }); await vault.whenConnected();
//                        consent: vault.requestAccess() must run in a click handler -> the harness
//                        would need to click in the page and then "Allow" in the consent popup
//                        (playwright: context.waitForEvent('page')); do it once per fresh profile.
//                        fresh: space = vault.space((await vault.spaces.create({ app: 'bench' })).id);
//                        after reload: space = vault.space(handoff.spaceId)
//   handoff()            { spaceId }
//   create(o)            space.create(o.type, { title, done, priority, tags, ref: ref(id of o.ref) }, { id })
//                        (not awaited; keep the promise in a pending set that durable() awaits)
//   createBatch(objs)    space.batch(objs.map(o => mutation ...)) — one mutation batch
//   update(id, f, v)     space.update(id, { [f]: v })
//   durable()            await all pending call promises, IF the vault answers a write only after
//                        its IndexedDB commit; otherwise a vault "flush"/heads-persisted call is needed
//   firstMatch(where)    space.query(query(where.and(where.type('task'), where.eq('done', false))), { resolve: true })
//                        — or a subscribe() whose first diff is the first result
//   queryAll / count / get   space.query(...) / space.query(query(...all)) / space.get(id)
//   textInit/Splice/Get  a 'doc' object with a text('') field; space.splice(id, 'text', pos, del, ins)
//                        (positions are code points in the SDK — the traces here are BMP-only, so
//                        UTF-16 == code points); space.readText(id, 'text')
//   the benchmark's object ids ('obj-<i>') are not ECHO ids: keep a Map from bench id to newId().
import './instrument.js';
import { installDriver } from './driver.js';

const notYet = () => {
  throw new Error('ECHO adapter not implemented yet (bench/browser/src/echo.js)');
};

const adapter = {
  name: 'ECHO',
  available: false,
  open: notYet,
  handoff: () => ({}),
  create: notYet,
  createBatch: notYet,
  update: notYet,
  durable: notYet,
  firstMatch: notYet,
  queryAll: notYet,
  count: notYet,
  get: notYet,
  textInit: notYet,
  textSplice: notYet,
  textGet: notYet,
};

installDriver(adapter);
