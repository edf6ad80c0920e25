// 15. The browser deletes the vault's storage. Chromium deletes a site's whole IndexedDB when it finds it
// damaged on open ("recovering from a corrupted (and deleted) database" in its log) — 07's repeated SIGKILLs
// meet it about once in 130 kills. The deletion is done here as Chromium does it: the vault's databases of the
// default storage bucket are deleted while no engine runs.
//   - The vault keeps a second copy in a storage bucket of its own (worker/mirror.ts), written with every
//     write before it is answered: it restores from it — the same identity, every object, the app's grant.
//   - Both copies gone: it must not start as a new, empty vault with a new identity behind the person's back.
//     It refuses with rpc.storage_lost (it knows its identity from a marker outside IndexedDB,
//     vault-wasm/src/marker.rs), apps are told, and the manage page lets the person start a new vault.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { nestedSessions } from "./lib/cdp.mjs";
import { allowInPopup, engineDiagnosis, openProbe, timing, until, waitState } from "./lib/util.mjs";

const sites = await getSites();
let browser;

before(async () => {
  browser = await launchRegime("storage-access");
});
after(async () => browser?.close());

const identityOf = (page) =>
  page.waitForFunction(() => document.querySelector("#identity code.key")?.textContent, null, { timeout: 15000 }).then((h) => h.jsonValue());

/** A vault with an identity, a granted app and `n` objects: its identity key and the objects' ids. */
async function vaultWithData(context, n) {
  const app = await openProbe(context, sites.probeA, { state: ["not_authorized", "connected"] });
  if ((await app.evaluate(() => window.probe.vault.state)) !== "connected") await allowInPopup(context, app);
  await waitState(app, "connected");
  const made = await app.evaluate(async (n) => {
    const { vault } = window.probe;
    const S = (await vault.spaces.create({ name: "Soon gone" })).id;
    const ids = [];
    for (let i = 0; i < n; i++) ids.push(await vault.space(S).create("item", { n: i }));
    return { S, ids };
  }, n);
  const manage = await context.newPage();
  await manage.goto(`${sites.vault}/manage.html`);
  const identity = (await identityOf(manage)).trim();
  await app.close();
  await manage.close();
  return { identity, ...made };
}

/**
 * Every vault page gone (the engine's worker ends), the browser deletes the vault's databases of the default
 * bucket, as Chromium does — and with `mirror`, the second copy's bucket too.
 */
async function deleteStorage(context, { mirror, only = null }) {
  const holder = await context.newPage();
  await holder.goto(`${sites.vault}/index.html`);
  await until(
    () => holder.evaluate(() => navigator.locks.query().then((q) => q.held.length === 0 && q.pending.length === 0)),
    { timeoutMs: 10000, what: "the engine's lock to go" },
  );
  const deleted = await holder.evaluate(async ({ mirror, only }) => {
    const names = only ?? (await indexedDB.databases()).map((d) => d.name);
    for (const name of names) {
      await new Promise((done, fail) => {
        const r = indexedDB.deleteDatabase(name);
        r.onsuccess = done;
        r.onerror = () => fail(r.error);
        r.onblocked = () => fail(new Error(`deleting ${name} is blocked: an engine still has it open`));
      });
    }
    const buckets = await navigator.storageBuckets.keys();
    if (mirror) await navigator.storageBuckets.delete("echo-mirror");
    const markers = await caches.open("echo-marker").then((c) => c.keys());
    return { names, buckets, markers: markers.length };
  }, { mirror, only });
  await holder.close();
  return deleted;
}

test("the browser deletes the vault's databases: restored from the second copy — same identity, every object, the grant", async (t) => {
  const { context } = browser;
  const made = await vaultWithData(context, 20);
  const deleted = await deleteStorage(context, { mirror: false });
  assert.ok(deleted.names.includes("echo-vault") && deleted.names.includes("echo-vault-keys"), `the vault's databases: ${deleted.names}`);
  assert.ok(deleted.buckets.includes("echo-mirror"), `the second copy's bucket: ${deleted.buckets}`);

  const t0 = Date.now();
  const app = await openProbe(context, sites.probeA, { state: ["connected", "not_authorized", "storage_lost", "storage_blocked"], timeoutMs: 20000 });
  timing(t, "storage deleted → the app connected to the restored vault", Date.now() - t0);
  assert.equal(await app.evaluate(() => window.probe.vault.state), "connected", "the grant came back with the vault");
  const ids = await app.evaluate(async (S) => {
    const { vault, echo } = window.probe;
    return (await vault.space(S).query(echo.query(echo.where.type("item")))).ids;
  }, made.S);
  assert.deepEqual(new Set(ids), new Set(made.ids), "every object is back");
  const manage = await context.newPage();
  await manage.goto(`${sites.vault}/manage.html`);
  assert.equal((await identityOf(manage)).trim(), made.identity, "the same identity (its keys came back too)");
  const diagnosis = await engineDiagnosis(manage);
  assert.equal(diagnosis.mirror, "restored");
  console.log(`  [probe] deleted databases ${deleted.names.join(", ")}: restored from the mirror, ${ids.length}/${made.ids.length} objects, identity kept`);
  await manage.close();
  await app.close();
});

test("only the key database deleted: its wrapping key comes back from the second copy, the same vault opens", async () => {
  const { context } = browser;
  const made = await vaultWithData(context, 3);
  await deleteStorage(context, { mirror: false, only: ["echo-vault-keys"] });
  const app = await openProbe(context, sites.probeA, { state: ["connected", "not_authorized", "storage_lost", "storage_blocked"], timeoutMs: 20000 });
  assert.equal(await app.evaluate(() => window.probe.vault.state), "connected", JSON.stringify(await app.evaluate(() => window.probe.vault.lastError)));
  const ids = await app.evaluate(async (S) => {
    const { vault, echo } = window.probe;
    return (await vault.space(S).query(echo.query(echo.where.type("item")))).ids;
  }, made.S);
  assert.deepEqual(new Set(ids), new Set(made.ids));
  const manage = await context.newPage();
  await manage.goto(`${sites.vault}/manage.html`);
  assert.equal((await identityOf(manage)).trim(), made.identity);
  await manage.close();
  await app.close();
});

test("both copies deleted: storage_lost for apps and pages, no silent new vault; the person starts a new one", async (t) => {
  const { context } = browser;
  const old = (await vaultWithData(context, 1)).identity;
  const deleted = await deleteStorage(context, { mirror: true });
  assert.ok(deleted.names.includes("echo-vault"), `the vault's databases: ${deleted.names}`);
  assert.equal(deleted.markers, 1, "the marker outside IndexedDB names the vault's identity");

  // An app is refused with the reason, in words a person can act on.
  const t0 = Date.now();
  const again = await openProbe(context, sites.probeA);
  await until(() => again.evaluate(() => window.probe.vault?.lastError?.code), { timeoutMs: 15000, what: "the app's refusal" });
  timing(t, "storage deleted → the app is told", Date.now() - t0);
  const refusal = await again.evaluate(() => ({ state: window.probe.vault.state, code: window.probe.vault.lastError.code, message: window.probe.vault.lastError.message }));
  assert.equal(refusal.code, "rpc.storage_lost", JSON.stringify(refusal));
  assert.match(refusal.message, /deleted this vault's storage/);
  assert.equal(refusal.state, "storage_lost", "the SDK names the state");

  // Nothing was created behind the person's back: no new identity is stored.
  const probe = await context.newPage();
  await probe.goto(`${sites.vault}/index.html`);
  const stored = await probe.evaluate(() => new Promise((done) => {
    const r = indexedDB.open("echo-vault");
    r.onsuccess = () => {
      const db = r.result;
      const names = [...db.objectStoreNames];
      if (names.length === 0) return done(0);
      const tx = db.transaction(names, "readonly");
      const counts = names.map((n) => tx.objectStore(n).count());
      tx.oncomplete = () => done(counts.reduce((sum, c) => sum + c.result, 0));
    };
    r.onerror = () => done(-1);
  }));
  assert.equal(stored, 0, "the empty vault's storage holds nothing: no new identity was made");
  await probe.close();

  // The manage page says what happened and offers to start a new vault.
  const page = await context.newPage();
  await page.goto(`${sites.vault}/manage.html`);
  await page.waitForSelector("#new-vault", { timeout: 15000 });
  assert.match(await page.locator("#banner").textContent(), /deleted this vault's storage/);
  assert.equal(await page.locator("#raw-export").count(), 0, "nothing to save: no 'download' offer");
  const t1 = Date.now();
  await page.click("#new-vault");
  // Every vault page reloads onto a new vault: a new identity.
  const after = (await identityOf(page)).trim();
  timing(t, "'Start a new vault' → the new vault's identity shown", Date.now() - t1);
  assert.notEqual(after, old, "a new identity");
  // The app's iframe reloaded too; the new vault has no grant for it: it asks for consent again.
  const state = await waitState(again, ["not_authorized", "connected"], 20000).catch(async () => {
    await again.evaluate(() => window.probe.vault.reconnect());
    return waitState(again, ["not_authorized", "connected"], 15000);
  });
  assert.equal(state, "not_authorized", "a new vault knows no app");
  await again.close();

  // The new vault keeps its identity over a restart (its marker names it now).
  await page.close();
  const m2 = await context.newPage();
  await m2.goto(`${sites.vault}/manage.html`);
  assert.equal((await identityOf(m2)).trim(), after);
  await m2.close();
});

/**
 * The engine's SharedWorker over DevTools — a session nested in `page`'s (as bench/browser/run.mjs does):
 * `send(method, params)` runs a CDP command in the worker.
 */
async function engineWorker(context, page) {
  const cdp = await context.newCDPSession(page);
  const attach = nestedSessions(cdp);
  const url = `${sites.vault}/engine-worker.js`;
  const target = await until(
    async () => (await cdp.send("Target.getTargets")).targetInfos.find((t) => t.type === "shared_worker" && t.url.startsWith(url)),
    { timeoutMs: 10000, what: "the engine's SharedWorker among the browser's targets" },
  );
  const { send } = await attach(target.targetId);
  return { send, detach: () => cdp.detach().catch(() => {}) };
}

// Chromium (156) hangs every later transaction on a storage bucket's IndexedDB connections once the
// StorageBucket object is garbage-collected (ADR 0006, "the stuck transaction"): the Mirror holds it. Without
// that, the first write after a major GC waits the mirror's 5 s bound, the mirror is flagged behind, and the
// next start seeds it again.
test("a major GC in the engine's worker: the mirror still commits every write and the next start finds it in sync (the StorageBucket is held)", async () => {
  const { context } = browser;
  const { S } = await vaultWithData(context, 1);
  // A new engine start (vaultWithData closed every page): prepare opens the bucket anew.
  const app = await openProbe(context, sites.probeA, { state: "connected", timeoutMs: 20000 });
  const worker = await engineWorker(context, app);
  const startup = async () =>
    (await worker.send("Runtime.evaluate", { expression: "globalThis.echoStartup", returnByValue: true })).result.value ?? null;
  const before = await until(startup, { timeoutMs: 10000, what: "the engine's mirror to be prepared" });
  await worker.send("HeapProfiler.enable");
  for (let i = 0; i < 2; i++) await worker.send("HeapProfiler.collectGarbage");

  const ms = await app.evaluate(async (S) => {
    const { vault } = window.probe;
    const out = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await vault.space(S).create("item", { afterGc: i });
      out.push(Math.round(performance.now() - t0));
    }
    return out;
  }, S);
  const after = await startup();
  console.log(`  [probe] start ${before.mirror}; 5 awaited writes after a forced GC in the engine's worker: ${ms.join(", ")} ms; mirror behind: ${after.mirrorBehind}`);
  assert.equal(after.mirrorBehind, null, "the mirror committed every write after the GC");
  assert.ok(Math.max(...ms) < 2500, `no write waited for the mirror's 5 s bound: ${ms} ms`);
  await worker.detach();
  await app.close();

  // The next start (once the engine's worker ended): the mirror holds every write, nothing to seed.
  const manage = await context.newPage();
  await manage.goto(`${sites.vault}/index.html`);
  await until(
    () => manage.evaluate(() => navigator.locks.query().then((q) => q.held.length === 0 && q.pending.length === 0)),
    { timeoutMs: 10000, what: "the engine's lock to go" },
  );
  await manage.goto(`${sites.vault}/manage.html`);
  await identityOf(manage);
  const diagnosis = await engineDiagnosis(manage);
  assert.equal(diagnosis.mirror, "in_sync", "the next start found the mirror in sync (not seeded)");
  await manage.close();
});
