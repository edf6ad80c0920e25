// 3. A second site (the probe app on other.localhost): before consent every call fails with rpc.not_authorized
// (details.reason consent_required); denied, with reason denied; then allowed in the popup with ONE of two existing spaces checked, it lists
// only that one and the other answers rpc.no_such_space; revoked on the manage page, its next calls fail at
// once with rpc.not_authorized and its state becomes not_authorized. The first app is not affected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowInPopup, clickInPopup, openProbe, timing, until, waitState, watchErrors } from "./lib/util.mjs";

const sites = await getSites();
let browser;
before(async () => {
  browser = await launchRegime("storage-access");
});
after(async () => browser?.close());

test("second site: consent required, one of two spaces granted, revoke cuts it off", async (t) => {
  const { context } = browser;
  // The first app makes two spaces with an object each.
  const a = await openProbe(context, sites.probeA, { state: "not_authorized" });
  await allowInPopup(context, a);
  await waitState(a, "connected");
  const made = await a.evaluate(async () => {
    const v = window.probe.vault;
    const s1 = await v.spaces.create({ name: "Alpha" });
    const s2 = await v.spaces.create({ name: "Beta" });
    const o1 = await v.space(s1.id).create("note", { title: "in alpha" });
    const o2 = await v.space(s2.id).create("note", { title: "in beta" });
    return { s1: s1.id, s2: s2.id, o1, o2 };
  });

  // The second site, before consent.
  const b = await openProbe(context, sites.probeB, { state: ["not_authorized", "connected"] });
  const errorsB = watchErrors(b);
  assert.equal(await b.evaluate(() => window.probe.vault.state), "not_authorized");
  assert.equal(await b.evaluate(() => window.probe.vault.consent), "required");
  const before = await b.evaluate(async ({ s1, s2, o1, o2 }) => {
    const { vault, settle, echo } = window.probe;
    const q = echo.query(echo.where.type("note"));
    const calls = {
      "spaces.list": vault.spaces.list(),
      "spaces.create": vault.spaces.create({ name: "sneaky" }),
      "identity.info": vault.identity(),
      "space.properties": vault.space(s1).properties(),
      "object.get": vault.space(s1).get(o1),
      "object.create": vault.space(s2).create("note", { title: "forged" }),
      "object.update": vault.space(s2).update(o2, { title: "changed" }),
      "query.run": vault.space(s1).query(q),
      "query.subscribe": vault.space(s1).subscribe(q, () => {}),
      "text.read": vault.space(s1).readText(o1, "title"),
    };
    const out = {};
    for (const [name, p] of Object.entries(calls)) out[name] = await settle(p);
    out.ping = await settle(vault.ping());
    return out;
  }, made);
  for (const [name, r] of Object.entries(before)) {
    if (name === "ping") continue;
    assert.equal(r.ok, false, `${name} before consent succeeded: ${JSON.stringify(r)}`);
    assert.equal(r.code, "rpc.not_authorized", `${name}: ${r.code} ${r.message}`);
    assert.equal(r.reason, "consent_required", `${name}: reason ${r.reason}`);
  }
  assert.equal(before.ping.ok, true, "ping answers before consent");

  // The user first denies it: calls say so (reason denied), the state stays not_authorized.
  {
    const popupP = context.waitForEvent("page");
    await b.click("#ask");
    const popup = await popupP;
    assert.ok(await clickInPopup(popup, "#deny"), "the consent popup closed after Deny");
    const access = await (await b.waitForFunction(() => window.probe.access, null, { timeout: 10000 })).jsonValue();
    assert.deepEqual(access.value, { allowed: false }, `requestAccess after Deny: ${JSON.stringify(access)}`);
    await b.evaluate(() => { window.probe.access = null; });
    const denied = await b.evaluate(async ({ s1 }) => {
      const { vault, settle } = window.probe;
      const raw = await window.probe.raw();
      await raw.connect();
      const welcome = await raw.hello();
      return { state: vault.state, consent: vault.consent, list: await settle(vault.spaces.list()), props: await settle(vault.space(s1).properties()), welcome };
    }, made);
    assert.equal(denied.state, "not_authorized");
    assert.equal(denied.consent, "denied");
    assert.equal(denied.welcome?.welcome?.vault?.consent, "denied", "a new connection is told it was denied");
    for (const r of [denied.list, denied.props]) {
      assert.equal(r.code, "rpc.not_authorized");
      assert.equal(r.reason, "denied");
    }
  }

  // Asked again, the user allows it with Alpha only.
  const offered = await allowInPopup(context, b, { spaces: [made.s1] });
  assert.ok(offered.includes(made.s1) && offered.includes(made.s2), `the popup offers both spaces: ${offered}`);
  await waitState(b, "connected");
  const granted = await b.evaluate(async ({ s1, s2, o1, o2 }) => {
    const { vault, settle, echo } = window.probe;
    const list = await vault.spaces.list();
    const q = echo.query(echo.where.type("note"));
    const inAlpha = await vault.space(s1).query(q, { resolve: true });
    const beta = {
      query: await settle(vault.space(s2).query(q)),
      get: await settle(vault.space(s2).get(o2)),
      create: await settle(vault.space(s2).create("note", { title: "forged" })),
      properties: await settle(vault.space(s2).properties()),
      subscribe: await settle(vault.space(s2).subscribe(q, () => {})),
    };
    return { list: list.map((s) => s.id), alpha: inAlpha.objects.map((o) => [o.id, o.fields.title]), beta, o1 };
  }, made);
  assert.deepEqual(granted.list, [made.s1], "spaces.list shows only the granted space (and nothing made before consent)");
  assert.deepEqual(granted.alpha, [[made.o1, "in alpha"]]);
  for (const [name, r] of Object.entries(granted.beta)) {
    assert.equal(r.ok, false, `${name} on the ungranted space succeeded`);
    assert.equal(r.code, "rpc.no_such_space", `${name} on the ungranted space: ${r.code}`);
  }
  // Nothing the refused calls tried reached the vault (seen from the first app, which sees both spaces).
  const stillA = await a.evaluate(async ({ s2, o2 }) => {
    const { vault, echo } = window.probe;
    const r = await vault.space(s2).query(echo.query(echo.where.type("note")), { resolve: true });
    return { spaces: (await vault.spaces.list()).length, beta: r.objects.map((o) => [o.id, o.fields.title]) };
  }, made);
  assert.deepEqual(stillA, { spaces: 2, beta: [[made.o2, "in beta"]] });

  // Revoke on the manage page.
  const manage = await context.newPage();
  manage.on("dialog", (d) => d.accept());
  await manage.goto(`${sites.vault}/manage.html`);
  const card = manage.locator(".card", { hasText: sites.probeB });
  await card.waitFor({ timeout: 10000 });
  // Calls keep going while the user revokes: those in flight then fail with rpc.not_authorized.
  await b.evaluate(({ s1 }) => {
    const { vault, settle } = window.probe;
    window.pumped = [];
    window.pumping = true;
    (async () => {
      while (window.pumping) {
        const batch = await Promise.all(Array.from({ length: 20 }, () => settle(vault.space(s1).properties())));
        window.pumped.push(...batch);
        if (batch.some((r) => !r.ok)) window.pumping = false;
      }
    })();
  }, made);
  await b.waitForFunction(() => window.pumped.length > 100);
  const t0 = Date.now();
  await card.locator("button", { hasText: "Revoke" }).click();
  await waitState(b, "not_authorized", 5000);
  timing(t, "Revoke click → state not_authorized", Date.now() - t0);
  const pumped = await (await b.waitForFunction(() => !window.pumping && window.pumped)).jsonValue();
  const failedInFlight = pumped.filter((r) => !r.ok);
  const reasons = {};
  for (const r of failedInFlight) reasons[`${r.code}/${r.reason}`] = (reasons[`${r.code}/${r.reason}`] ?? 0) + 1;
  console.log(`  calls in flight at the revoke: ${pumped.length} made, failures ${JSON.stringify(reasons)}`);
  assert.ok(failedInFlight.length > 0);
  for (const r of failedInFlight) {
    assert.equal(r.code, "rpc.not_authorized", `an in-flight call failed with ${r.code}`);
    assert.equal(r.reason, "revoked", "calls pending at the revoke say why (docs/browser-vault.md §3)");
  }
  const afterRevoke = await b.evaluate(async ({ s1 }) => {
    const { vault, settle } = window.probe;
    return { list: await settle(vault.spaces.list()), query: await settle(vault.space(s1).properties()), state: vault.state };
  }, made);
  for (const r of [afterRevoke.list, afterRevoke.query]) {
    assert.equal(r.ok, false, "a call after revoke succeeded");
    assert.equal(r.code, "rpc.not_authorized");
    assert.ok(r.ms < 1000, `a call after revoke took ${r.ms} ms to fail`);
  }
  timing(t, "first call after revoke failed after", afterRevoke.list.ms);
  await until(() => manage.locator(".card", { hasText: sites.probeB }).count().then((n) => n === 0), { timeoutMs: 5000, what: "the manage page to drop the revoked app" });
  // The engine itself refuses it too: a fresh raw connection of that origin.
  const raw = await b.evaluate(async ({ s1 }) => {
    const conn = await window.probe.raw();
    await conn.connect();
    const welcome = await conn.hello();
    return { welcome, list: await conn.call(1, { "spaces.list": {} }), props: await conn.call(2, { "space.properties": { space: s1 } }) };
  }, made);
  assert.notEqual(raw.welcome?.welcome?.vault?.consent, "granted", `welcome after revoke: ${JSON.stringify(raw.welcome)}`);
  for (const r of [raw.list, raw.props]) {
    assert.equal(r?.Err?.code, "rpc.not_authorized", `raw call after revoke: ${JSON.stringify(r)}`);
    assert.ok(["revoked", "consent_required"].includes(r.Err.details?.reason), `reason: ${JSON.stringify(r.Err.details)}`);
  }
  console.log(`  after revoke: SDK call reason=${afterRevoke.list.reason}; raw welcome consent=${raw.welcome.welcome.vault.consent}, reason=${raw.list.Err.details?.reason}`);
  // It stays cut off (no reconnect brings access back), and the first app still works.
  await b.waitForTimeout(1000);
  assert.equal(await b.evaluate(() => window.probe.vault.state), "not_authorized");
  const aOk = await a.evaluate(async () => (await window.probe.vault.spaces.list()).length);
  assert.equal(aOk, 2, "the first app keeps its access");
  assert.deepEqual(errorsB, []);
});
