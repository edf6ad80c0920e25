// 5. Hostile input on raw ports (the iframe handshake done by hand in the probe page; app ports carry JSON text,
// docs/browser-vault.md): an ungranted origin gets nothing; forged origin fields give no access;
// malformed JSON, wrong types, unknown methods, too deep nesting and messages over 4 MiB get their typed
// errors; a connection whose first message is not a hello is refused and closed; a flood of 20,000 calls is answered (or rate-limited) and the vault still answers a ping within 1 s
// with the stored data unchanged.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowInPopup, openProbe, timing, waitState } from "./lib/util.mjs";

const sites = await getSites();
const ITEMS = 30;
let browser, a, b, S, S2;

/** Everything in space S as the granted SDK connection of the first app sees it. */
const snapshot = () => a.evaluate(async (S) => {
  const { vault, echo } = window.probe;
  const all = await vault.space(S).query(echo.query(echo.where.all(), { includeDeleted: true }), { resolve: true });
  return { count: all.ids.length, objects: all.objects.map((o) => JSON.stringify([o.id, o.type, o.fields, o.deleted])).sort() };
}, S);

before(async () => {
  browser = await launchRegime("storage-access");
  const { context } = browser;
  a = await openProbe(context, sites.probeA, { state: "not_authorized" });
  await allowInPopup(context, a);
  await waitState(a, "connected");
  ({ S, S2 } = await a.evaluate(async (n) => {
    const { vault } = window.probe;
    const S = (await vault.spaces.create({ name: "Hostile target" })).id;
    const S2 = (await vault.spaces.create({ name: "Scratch" })).id;
    for (let i = 0; i < n; i++) await vault.space(S).create("item", { n: i });
    return { S, S2 };
  }, ITEMS));
  b = await openProbe(context, sites.probeB, { state: "not_authorized" });
});
after(async () => browser?.close());

/** Runs `fn(conn, args)` in a page on a fresh raw connection (connect with `extra` fields, then hello unless `hello` is false). */
async function onRaw(page, fn, args = {}, { extra = {}, hello = true } = {}) {
  const conn = await page.evaluateHandle(async ({ extra, hello }) => {
    const conn = await window.probe.raw();
    await conn.connect(extra);
    conn.welcome = hello ? await conn.hello() : null;
    return conn;
  }, { extra, hello });
  const { answer, welcome } = await conn.evaluate((c) => ({ answer: c.answer, welcome: c.welcome }));
  const out = await conn.evaluate(fn, args);
  await conn.dispose();
  return { answer, welcome, out };
}

const errOf = (r) => r?.response?.result?.Err ?? r?.rejected?.error ?? null;

test("an ungranted origin gets rpc.not_authorized on every call, and nothing changes", async () => {
  const before = await snapshot();
  const { answer, welcome, out } = await onRaw(b, async (conn, { S }) => {
    const id = "o3ear54v7fi8gp3j7p6mfagp4k";
    const methods = [
      { "spaces.list": {} },
      { "spaces.create": {} },
      { "identity.info": {} },
      { "space.properties": { space: S } },
      { "space.heads": { space: S } },
      { "object.create": { space: S, type: "item", fields: { n: { int: -1 } } } },
      { "object.update": { space: S, id, set: { n: { int: -2 } } } },
      { "object.delete": { space: S, id } },
      { "object.get": { space: S, ids: [id] } },
      { "object.batch": { space: S, mutations: [{ create: { type: "item" } }] } },
      { "query.run": { space: S, query: { filter: "all" } } },
      { "query.subscribe": { space: S, query: { filter: "all" } } },
      { "text.read": { space: S, id, field: "note" } },
    ];
    const results = [];
    for (let i = 0; i < methods.length; i++) results.push([Object.keys(methods[i])[0], await conn.call(i + 1, methods[i])]);
    return { results, ping: await conn.call(100, { ping: {} }) };
  }, { S });
  assert.equal(answer.echo, "connected");
  assert.equal(welcome?.welcome?.vault?.consent, "required");
  for (const [name, r] of out.results) {
    assert.equal(r?.Err?.code, "rpc.not_authorized", `${name}: ${JSON.stringify(r)}`);
    assert.equal(r.Err.details?.reason, "consent_required", `${name}: ${JSON.stringify(r.Err.details)}`);
  }
  assert.deepEqual(out.ping, { Ok: { done: {} } });
  assert.deepEqual(await snapshot(), before);
});

test("forged origin fields (connect, hello, request) and a forged control message give no access", async () => {
  const before = await snapshot();
  // A connect naming another origin: the shell takes the origin from the browser, not the message.
  const forgedConnect = await onRaw(b, async (conn, { S }) => conn.call(1, { "space.properties": { space: S } }), { S }, { extra: { origin: sites.probeA } });
  assert.equal(forgedConnect.answer.echo, "connected");
  assert.equal(forgedConnect.welcome?.welcome?.vault?.consent, "required", "a connect with an origin field is still the real origin");
  assert.equal(forgedConnect.out?.Err?.code, "rpc.not_authorized");

  // A hello with an origin field is malformed: as a first message that is not a hello, it ends the
  // connection (core/src/vault/guard.rs: hello first).
  const forgedHello = await onRaw(b, async (conn, { A }) => conn.hello({ origin: A }), { A: sites.probeA }, { hello: false });
  assert.equal(forgedHello.out?.refused?.error?.code, "rpc.not_connected", `hello with an origin field: ${JSON.stringify(forgedHello.out)}`);
  const { out } = await onRaw(b, async (conn, { S, A }) => {
    const r = {};
    r.welcome = await conn.hello();
    r.request = await conn.exchange({ request: { id: 2, method: { "spaces.list": {} } }, origin: A }, 2);
    r.inMethod = await conn.exchange({ request: { id: 3, method: { "space.properties": { space: S, origin: A } } } }, 3);
    r.create = await conn.exchange({ request: { id: 4, method: { "object.create": { space: S, type: "item" } } }, origin: A }, 4);
    r.after = await conn.call(5, { "space.properties": { space: S } });
    return r;
  }, { S, A: sites.probeA }, { hello: false });
  assert.equal(out.welcome?.welcome?.vault?.consent, "required");
  // Messages refuse unknown fields (core/src/rpc): an `origin` anywhere makes the message malformed.
  for (const k of ["request", "inMethod", "create"]) {
    assert.equal(errOf(out[k])?.code, "rpc.bad_request", `${k}: ${JSON.stringify(out[k])?.slice(0, 300)}`);
  }
  assert.equal(out.after?.Err?.code, "rpc.not_authorized");

  // An `attach` control message posted to the shell's window by the app: the shell ignores it.
  const attach = await b.evaluate(async (A) => {
    const conn = await window.probe.raw();
    const channel = new MessageChannel();
    const got = [];
    channel.port1.onmessage = (e) => got.push(e.data);
    conn.frame.contentWindow.postMessage({ attach: { origin: A, port: channel.port2 } }, new URL(window.probe.vaultUrl).origin, [channel.port2]);
    channel.port1.postMessage(JSON.stringify({ hello: { versions: [1], client: "forged attach" } }));
    channel.port1.postMessage(JSON.stringify({ request: { id: 1, method: { "spaces.list": {} } } }));
    await new Promise((r) => setTimeout(r, 1500));
    return got;
  }, sites.probeA);
  assert.deepEqual(attach, [], "no answer on a port smuggled in with a forged attach");
  assert.deepEqual(await snapshot(), before);
});

test("malformed JSON, wrong types, unknown methods, too deep, too large: typed errors; usable until the oversized one", async () => {
  const before = await snapshot();
  const { welcome, out } = await onRaw(a, async (conn, { S }) => {
    const r = {};
    r.malformed = await conn.exchange('{"request": {"id": 5, ', 5);
    r.notJson = await conn.exchange("hello vault", null);
    r.notObject = await conn.exchange("42", null);
    r.wrongTypes = await conn.exchange({ request: { id: 6, method: { "object.get": { space: 123, ids: "x" } } } }, 6);
    r.idType = await conn.exchange({ request: { id: "seven", method: { ping: {} } } }, null);
    r.negativeId = await conn.exchange({ request: { id: -1, method: { ping: {} } } }, null);
    r.unknownField = await conn.exchange({ request: { id: 7, method: { ping: {} }, extra: true } }, 7);
    r.unknown = await conn.exchange({ request: { id: 8, method: { "object.explode": {} } } }, 8);
    r.unknownEnvelope = await conn.exchange({ launch: { id: 9 } }, null);
    let f = "all";
    for (let i = 0; i < 100; i++) f = { not: f };
    r.deepFilter = await conn.exchange({ request: { id: 10, method: { "query.run": { space: S, query: { filter: f } } } } }, 10);
    r.ping = await conn.call(12, { ping: {} });
    // Over the size limit: its typed answer, then the connection ends (core/src/vault/guard.rs).
    const big = "x".repeat(4 * 1024 * 1024 + 16);
    const from = conn.messages.length;
    r.tooLarge = await conn.exchange(JSON.stringify({ request: { id: 11, method: { "object.create": { space: S, type: "item", fields: { big: { string: big } } } } } }), 11, { timeoutMs: 20000 });
    r.closed = await conn.waitFor(from, (m) => m?.refused !== undefined);
    return r;
  }, { S });
  assert.equal(welcome?.welcome?.vault?.consent, "granted");
  const expect = {
    malformed: "rpc.bad_request", notJson: "rpc.bad_request", notObject: "rpc.bad_request", wrongTypes: "rpc.bad_request",
    idType: "rpc.bad_request", negativeId: "rpc.bad_request", unknownField: "rpc.bad_request", unknown: "rpc.unknown_method",
    unknownEnvelope: "rpc.bad_request", deepFilter: "rpc.too_deep", tooLarge: "rpc.too_large",
  };
  for (const [k, code] of Object.entries(expect)) {
    assert.equal(errOf(out[k])?.code, code, `${k}: ${JSON.stringify(out[k])?.slice(0, 300)}`);
  }
  // Errors that name a call go to that call.
  for (const [k, id] of [["wrongTypes", 6], ["unknown", 8], ["deepFilter", 10], ["tooLarge", 11]]) assert.equal(out[k].response?.id, id, `${k} answered for its call`);
  assert.equal(errOf(out.unknown).details?.method, "object.explode");
  assert.equal(errOf(out.tooLarge).details?.limit, "4194304");
  assert.equal(errOf(out.deepFilter).details?.limit, "72");
  assert.deepEqual(out.ping, { Ok: { done: {} } }, "the connection still answers after the bad messages");
  assert.equal(out.closed?.refused?.error?.code, "rpc.too_large", `closed after the oversized message: ${JSON.stringify(out.closed)}`);
  assert.deepEqual(await snapshot(), before, "nothing was written");
});

test("messages that are not JSON text (structured clones) are rejected with rpc.bad_request and do nothing", async () => {
  const before = await snapshot();
  // As a first message, a clone is not a hello: the connection ends.
  const first = await onRaw(a, async (conn) => conn.exchange({ hello: { versions: [1], client: "clone" } }, null, { clone: true }), {}, { hello: false });
  assert.equal(first.out?.refused?.error?.code, "rpc.not_connected", `a cloned hello: ${JSON.stringify(first.out)}`);
  const { welcome, out } = await onRaw(a, async (conn, { S }) => {
    const r = {};
    r.create = await conn.exchange({ request: { id: 1, method: { "object.create": { space: S, type: "item", fields: { n: { int: -1 } } } } } }, 1, { clone: true });
    r.big = await conn.exchange({ request: { id: 2, method: { "object.create": { space: S, type: "item", fields: { big: { string: "y".repeat(5 * 1024 * 1024) } } } } } }, 2, { clone: true, timeoutMs: 20000 });
    r.number = await conn.exchange(42, null, { clone: true });
    r.buffer = await conn.exchange(new Uint8Array(16).buffer, null, { clone: true });
    r.ping = await conn.call(3, { ping: {} });
    return r;
  }, { S });
  for (const k of ["create", "big", "number", "buffer"]) assert.equal(errOf(out[k])?.code, "rpc.bad_request", `${k}: ${JSON.stringify(out[k])?.slice(0, 300)}`);
  assert.equal(welcome?.welcome?.vault?.consent, "granted");
  assert.deepEqual(out.ping, { Ok: { done: {} } });
  assert.deepEqual(await snapshot(), before, "nothing was written");
});

test("a value nested 40 or 60 levels deep: a typed too_deep error", async () => {
  const { out } = await onRaw(a, async (conn, { S2 }) => {
    const r = [];
    for (const d of [40, 60]) {
      let deep = { string: "x" };
      for (let i = 0; i < d; i++) deep = { list: [deep] };
      r.push([d, await conn.call(d, { "object.create": { space: S2, type: "deep", fields: { d: deep } } })]);
    }
    return r;
  }, { S2 });
  for (const [d, r] of out) assert.ok(["model.too_deep", "rpc.too_deep"].includes(r?.Err?.code), `depth ${d}: ${JSON.stringify(r)?.slice(0, 200)}`);
});

test("a value nested deeper than 60 levels is rpc.too_deep (JSON text)", async () => {
  const { out } = await onRaw(a, async (conn, { S2 }) => {
    let deep = { string: "x" };
    for (let i = 0; i < 100; i++) deep = { list: [deep] };
    return conn.exchange({ request: { id: 1, method: { "object.create": { space: S2, type: "deep", fields: { d: deep } } } } }, 1);
  }, { S2 });
  assert.equal(errOf(out)?.code, "rpc.too_deep", JSON.stringify(out)?.slice(0, 300));
});

test("a frame (JSON array of messages): each message is answered on its own, a bad one alone; a broken frame is rejected whole", async () => {
  const before = await snapshot();
  const { out } = await onRaw(a, async (conn, { S2 }) => {
    const from = conn.messages.length;
    conn.send([
      { request: { id: 11, method: { ping: {} } } },
      { request: { id: 12, method: { "no.such.method": {} } } },
      { request: { id: 13, method: { "object.create": { space: S2, type: "framed", fields: { n: { int: 1 } } } } } },
      5,
      { request: { id: 14, method: { "query.run": { space: S2, query: { filter: { type: "framed" } } } } } },
    ]);
    const answered = await conn.waitFor(from, () => [11, 12, 13, 14].every((id) => conn.messages.slice(from).some((m) => m?.response?.id === id)) && conn.messages.slice(from).some((m) => m?.rejected));
    const got = conn.messages.slice(from);
    const broken = await conn.exchange('[{"request":{"id":15,"method":{"ping":{}}}}', 15);
    return { answered: answered !== null, got, broken };
  }, { S2 });
  assert.ok(out.answered, JSON.stringify(out.got).slice(0, 600));
  const byId = (id) => out.got.find((m) => m?.response?.id === id)?.response?.result;
  assert.deepEqual(byId(11), { Ok: { done: {} } });
  assert.equal(byId(12)?.Err?.code, "rpc.unknown_method");
  assert.ok(byId(13)?.Ok?.written, JSON.stringify(byId(13)));
  // 14 comes after 13 in the frame, so it sees the created object.
  assert.equal(byId(14)?.Ok?.result?.ids?.length, 1, JSON.stringify(byId(14)));
  assert.equal(out.got.find((m) => m?.rejected)?.rejected?.error?.code, "rpc.bad_request");
  assert.equal(errOf(out.broken)?.code, "rpc.bad_request", JSON.stringify(out.broken));
  assert.deepEqual(await snapshot(), before, "space S untouched");
});

test("the SDK refuses a call over 4 MiB with rpc.too_large before sending it; the connection stays usable", async () => {
  const before = await snapshot();
  const r = await a.evaluate(async (S) => {
    const { vault, settle } = window.probe;
    const big = await settle(vault.space(S).create("item", { big: "z".repeat(4 * 1024 * 1024 + 1) }));
    const ping = await settle(vault.ping());
    return { big, ping, state: vault.state };
  }, S);
  assert.equal(r.big.code, "rpc.too_large", JSON.stringify(r.big));
  assert.equal(r.ping.ok, true);
  assert.equal(r.state, "connected");
  assert.deepEqual(await snapshot(), before);
});

test("a flood of 20,000 calls: answered or rate-limited; then a ping within 1 s, data unchanged", async (t) => {
  const before = await snapshot();
  assert.equal(before.count, ITEMS);
  const t0 = Date.now();
  const { out } = await onRaw(a, async (conn, { S, N }) => {
    const from = conn.messages.length;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const method = i % 4 === 0 ? { ping: {} }
        : i % 4 === 1 ? { "query.run": { space: S, query: { filter: { type: "item" } } } }
          : i % 4 === 2 ? { "object.get": { space: S, ids: ["o3ear54v7fi8gp3j7p6mfagp4k"] } }
            : { "object.update": { space: S, id: "not an id", set: { n: { int: 0 } } } };
      conn.send({ request: { id: 1000 + i, method } });
    }
    const sentMs = performance.now() - t0;
    await conn.waitFor(from, () => conn.messages.length - from >= N, 90000);
    const codes = {};
    const ids = new Set();
    for (const m of conn.messages.slice(from)) {
      const key = m.response ? (m.response.result.Ok ? "ok" : m.response.result.Err.code) : `message:${Object.keys(m)[0]}`;
      codes[key] = (codes[key] ?? 0) + 1;
      if (m.response) ids.add(m.response.id);
    }
    const answeredMs = performance.now() - t0;
    const p0 = performance.now();
    const ping = await conn.call(99999, { ping: {} }, 1000);
    return { sentMs, answeredMs, codes, answered: ids.size, ping, pingMs: performance.now() - p0 };
  }, { S, N: 20000 });
  timing(t, "flood: 20,000 sent", out.sentMs);
  timing(t, "flood: all answered", out.answeredMs);
  timing(t, "ping after the flood", out.pingMs);
  console.log(`  flood answers: ${JSON.stringify(out.codes)}`);
  assert.equal(out.answered, 20000, `every call answered once: ${JSON.stringify(out.codes)}`);
  for (const code of Object.keys(out.codes)) {
    assert.ok(["ok", "rpc.rate_limited", "model.invalid_id", "model.not_found"].includes(code), `unexpected answer ${code}`);
  }
  assert.deepEqual(out.ping, { Ok: { done: {} } });
  assert.ok(out.pingMs < 1000, `ping after the flood took ${out.pingMs} ms`);
  // The app's own SDK connection is fine too, and the data is as it was.
  const sdkPing = await a.evaluate(() => window.probe.settle(window.probe.vault.ping({ timeoutMs: 1000 })));
  assert.equal(sdkPing.ok, true, JSON.stringify(sdkPing));
  assert.deepEqual(await snapshot(), before);
  timing(t, "flood test", Date.now() - t0);
});
