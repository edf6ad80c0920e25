// 9. Quota exhaustion: the probe app (storage-access regime, allowed) writes objects; the vault origin's quota
// is then lowered below what it uses (CDP Storage.overrideQuotaForOrigin: the first-party storage key, which is
// where the vault's IndexedDB lives — Storage.getUsageAndQuota shows the vault's writes in its indexedDB usage)
// and the app keeps writing ~256 KiB objects until a call fails. That call must fail with store.quota_exceeded
// and a message a person can act on; later calls (ping, reads, writes, several at once) are still answered; a
// write after the quota is lifted again succeeds. Then Chromium restarts on the same profile: every
// acknowledged object is there and whole, and no object whose call failed is.
//
// Chromium's IndexedDB caches the space the quota manager granted and lets it decay over 30 s
// (content/browser/indexed_db BucketContext, kBucketSpaceCacheTimeLimit), so a lowered override only bites once
// that grant is used up. The test therefore sets a finite quota (8 MiB) before the vault first opens its
// database, so the first grant is a few MiB and is used up within a few writes after the quota is lowered.
// navigator.storage.estimate() does not show the override (Chromium reports a static quota: usage + ~10 GiB).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchRegime, writeProfile } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowInPopup, openProbe, timing, waitState } from "./lib/util.mjs";

const sites = await getSites();
const FIRST_QUOTA = 8 * 1024 * 1024;
const BIG = 256 * 1024;
const MAX_BIG_WRITES = 60; // ~15 MiB of payload: far past the first grant

const userDataDir = await mkdtemp(join(tmpdir(), "echo-e2e-quota-"));
await writeProfile(userDataDir, "storage-access");
let browser = null;
after(async () => {
  await browser?.close();
  await rm(userDataDir, { recursive: true, force: true });
});

/** One create with an app-chosen id; `size` > 0 adds an incompressible string field of that many characters. */
const write = (page, S, type, n, size = 0) => page.evaluate(async ({ S, type, n, size }) => {
  const { vault, echo, settle } = window.probe;
  const id = echo.newId();
  let pad = "";
  while (pad.length < size) pad += Math.random().toString(36).slice(2);
  const fields = { n, label: `object ${n}`, ...(size ? { pad: pad.slice(0, size) } : {}) };
  return { id, n, size, ...(await settle(vault.space(S).create(type, fields, { id }))) };
}, { S, type, n, size });

/** The objects with `ids` as the page's SDK connection reads them: [id, n, pad length] or null. */
const read = (page, S, ids) => page.evaluate(async ({ S, ids }) => {
  const objs = await window.probe.vault.space(S).getMany(ids);
  return objs.map((o) => (o ? [o.id, o.fields.n, o.fields.label, typeof o.fields.pad === "string" ? o.fields.pad.length : 0] : null));
}, { S, ids });

const allIds = (page, S) => page.evaluate(async (S) => {
  const { vault, echo } = window.probe;
  return (await vault.space(S).query(echo.query(echo.where.all()))).ids;
}, S);

test("quota exhausted: store.quota_exceeded, the vault keeps answering, nothing acknowledged is lost", async (t) => {
  const t0 = Date.now();
  browser = await launchRegime("storage-access", { userDataDir });
  let { context } = browser;
  // The override lives as long as this CDP session; set before any vault page opens its database.
  const blank = context.pages()[0] ?? (await context.newPage());
  const cdp = await context.newCDPSession(blank);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: sites.vault, quotaSize: FIRST_QUOTA });
  const usage = async () => {
    const u = await cdp.send("Storage.getUsageAndQuota", { origin: sites.vault });
    return { ...u, indexeddb: u.usageBreakdown.find((b) => b.storageType === "indexeddb")?.usage ?? 0 };
  };

  let page = await openProbe(context, sites.probeA, { state: "not_authorized" });
  await allowInPopup(context, page);
  await waitState(page, "connected");
  const S = await page.evaluate(async () => (await window.probe.vault.spaces.create({ name: "Quota test" })).id);

  const acked = new Map(); // id → [n, size]
  const failed = [];
  const record = (r) => {
    if (r.ok) {
      assert.equal(r.value, r.id);
      acked.set(r.id, [r.n, r.size]);
    } else failed.push(r);
  };
  for (let n = 0; n < 20; n++) {
    const r = await write(page, S, "item", n);
    assert.equal(r.ok, true, `a write before the quota was lowered failed: ${JSON.stringify(r)}`);
    record(r);
  }
  // The manage page shows what the app's spaces take, of the share one site may keep (half the vault's quota as
  // navigator.storage.estimate() tells it: core/src/vault/quota.rs).
  const manage = await context.newPage();
  await manage.goto(`${sites.vault}/manage.html`);
  const shown = await manage.waitForFunction(() => document.querySelector("#apps .app-storage")?.textContent, null, { timeout: 10000 }).then((h) => h.jsonValue()).catch(async (e) => { throw new Error(`${e.message}; apps: ${await manage.locator("#apps").textContent()}`); });
  assert.match(shown, /^Its spaces take [\d.]+ (B|KB|MB) of the [\d.]+ (MB|GB|TB) one site may keep\.$/, shown);
  console.log(`  [probe] manage page: "${shown}"`);
  await manage.close();

  const before = await usage();
  assert.equal(before.overrideActive, true);
  assert.equal(before.quota, FIRST_QUOTA);
  assert.ok(before.indexeddb > 0, `the vault's IndexedDB is counted for ${sites.vault}: ${JSON.stringify(before)}`);

  // Lower the quota to just above what the origin uses now: large objects cannot fit.
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: sites.vault, quotaSize: before.usage + 16 * 1024 });
  const t1 = Date.now();
  let failure = null;
  for (let n = 100; n < 100 + MAX_BIG_WRITES && !failure; n++) {
    const r = await write(page, S, "big", n, BIG);
    record(r);
    if (!r.ok) failure = r;
  }
  const grown = await usage();
  timing(t, `writes of ${BIG / 1024} KiB until the first failure (${[...acked.values()].filter(([, s]) => s).length} acknowledged)`, Date.now() - t1);
  console.log(`  vault origin usage: ${before.usage} → ${grown.usage} bytes (indexedDB ${before.indexeddb} → ${grown.indexeddb}), quota ${grown.quota}`);
  assert.ok(failure, `no write failed after ${MAX_BIG_WRITES} writes of ${BIG} characters over a lowered quota (usage ${grown.usage}, quota ${grown.quota})`);
  assert.ok(grown.indexeddb > before.indexeddb, "the acknowledged large writes show in the limited origin's indexedDB usage");
  assert.equal(failure.code, "store.quota_exceeded", JSON.stringify(failure));
  console.log(`  the failed call said: ${JSON.stringify(failure.message)}`);
  // A sentence a person can act on: says what happened and what to do, no internals leaking as placeholders.
  assert.match(failure.message, /quota/i);
  assert.match(failure.message, /free up space/i);
  assert.doesNotMatch(failure.message, /undefined|\[object|null|NaN|panicked|RuntimeError/);
  assert.ok(failure.message.length >= 20 && failure.message.length <= 300, failure.message);
  assert.ok(failure.ms < 5000, `the failure was answered after ${failure.ms} ms`);

  // The vault stays responsive: ping, reads, writes (answered: ok or quota_exceeded), five at once.
  const after1 = await page.evaluate(async () => {
    const { vault, settle } = window.probe;
    return { ping: await settle(vault.ping({ timeoutMs: 2000 })), state: vault.state };
  });
  assert.equal(after1.ping.ok, true, JSON.stringify(after1.ping));
  assert.equal(after1.state, "connected");
  const memIds = new Set(await allIds(page, S));
  assert.deepEqual([...acked.keys()].filter((id) => !memIds.has(id)), [], "every acknowledged object is readable after the failure");
  assert.deepEqual(failed.filter((f) => memIds.has(f.id)).map((f) => f.id), [], "the failed object is gone from memory too (reverted)");
  record(await write(page, S, "small", 500));
  const burst = await page.evaluate(async (S) => {
    const { vault, echo, settle } = window.probe;
    const ids = Array.from({ length: 5 }, () => echo.newId());
    const rs = await Promise.all(ids.map((id, i) => settle(vault.space(S).create("burst", { n: 600 + i, label: `object ${600 + i}` }, { id, timeoutMs: 10000 }))));
    return rs.map((r, i) => ({ id: ids[i], n: 600 + i, size: 0, ...r }));
  }, S);
  for (const r of burst) {
    assert.ok(r.ok || r.code === "store.quota_exceeded", `a call after the failure: ${JSON.stringify(r)}`);
    record(r);
  }
  console.log(`  after the first failure: ${burst.filter((r) => r.ok).length}/5 concurrent writes acknowledged, the rest store.quota_exceeded`);

  // Space is freed (the override lifted): writing works again.
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: sites.vault });
  const recovered = await write(page, S, "small", 700, 1024);
  assert.equal(recovered.ok, true, `a write after the quota was lifted: ${JSON.stringify(recovered)}`);
  record(recovered);
  timing(t, "quota phase", Date.now() - t0);

  // Restart Chromium on the same profile and look.
  await browser.close();
  browser = null;
  const t2 = Date.now();
  browser = await launchRegime("storage-access", { userDataDir });
  ({ context } = browser);
  page = await openProbe(context, sites.probeA, { state: ["connected", "not_authorized"], timeoutMs: 20000 });
  assert.equal(await page.evaluate(() => window.probe.vault.state), "connected", "the grant survived");
  const present = new Set(await allIds(page, S));
  const ackedIds = [...acked.keys()];
  const missing = ackedIds.filter((id) => !present.has(id));
  const resurrected = failed.filter((f) => present.has(f.id)).map((f) => `${f.id} (n ${f.n})`);
  console.log(`  after restart: ${acked.size} acknowledged, ${failed.length} failed, ${present.size} present, ${missing.length} missing`);
  assert.deepEqual(missing, [], "acknowledged objects lost");
  assert.deepEqual(resurrected, [], "objects whose call failed are there");
  assert.equal(present.size, acked.size, "nothing but the acknowledged objects");
  const objs = await read(page, S, ackedIds);
  for (let i = 0; i < ackedIds.length; i++) {
    const [n, size] = acked.get(ackedIds[i]);
    assert.deepEqual(objs[i], [ackedIds[i], n, `object ${n}`, size], "an acknowledged object is whole");
  }
  assert.deepEqual(await read(page, S, failed.map((f) => f.id)), failed.map(() => null));
  timing(t, "restart and check", Date.now() - t2);
});
