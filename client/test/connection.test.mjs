// The connection state machine (src/connection.ts) over a fake transport:
// the handshake and its refusals, the connect timeout, heartbeat, back-off,
// a vault page that reloads (the engine crashed), calls across a reconnect,
// frames, revocation, consent and close. Timers and Date are mocked.
import { test, mock, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Connection, backoffMs } from "../dist/connection.js";
import { EchoError } from "../dist/index.js";
import { FakeTransport, outcome, settle } from "./fakes.mjs";

const OPTIONS = { origin: "http://vault.test", clientName: "conn-test", connectTimeoutMs: 1000, callTimeoutMs: 5000, heartbeatMs: 100, heartbeatTimeoutMs: 250 };

beforeEach(() => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 });
  // The back-off's jitter: the shortest delay (half the base).
  mock.method(Math, "random", () => 0);
});
afterEach(() => {
  mock.timers.reset();
  mock.restoreAll();
});

/** A connection on a fake transport, with what it told the layer above. */
function setup(options = {}) {
  const transport = new FakeTransport();
  const told = { events: [], connected: 0, linkLost: 0, states: [] };
  const conn = new Connection(transport, { ...OPTIONS, ...options }, {
    event: (event, subscription) => told.events.push({ event, subscription }),
    connected: () => told.connected++,
    linkLost: () => told.linkLost++,
  });
  conn.onStateChange((s) => told.states.push(s));
  conn.start();
  return { transport, conn, told };
}

/** Started, answered and welcomed: a connected connection and its link. */
async function connected(options) {
  const s = setup(options);
  const link = s.transport.answer();
  link.welcome("granted");
  await settle();
  assert.equal(s.conn.state, "connected");
  return { ...s, link };
}

test("the handshake: hello on the link, welcome → connected; calls made before go out after it", async () => {
  const { transport, conn, told } = setup();
  assert.deepEqual(transport.log, ["open", "connect fresh"]);
  assert.equal(conn.state, "connecting");
  const early = outcome(conn.call({ "spaces.list": {} }));
  const link = transport.answer();
  assert.deepEqual(link.sent, [{ hello: { versions: [1], client: "conn-test" } }]);
  await settle();
  assert.equal(link.requests.length, 0, "no call goes out before the welcome");
  link.welcome("granted");
  assert.equal(conn.state, "connected");
  assert.equal(conn.consent, "granted");
  assert.equal(conn.info.storage, "persistent");
  assert.equal(told.connected, 1);
  await settle();
  const req = link.last("spaces.list");
  assert.ok(req, "the held call went out");
  link.respond(req.id, { spaces: { spaces: [] } });
  await settle();
  assert.deepEqual(early, { settled: true, ok: true, value: { spaces: { spaces: [] } } });
});

test("durability: hello asks for relaxed writes only when the app chose them (strict is the vault's default)", () => {
  for (const [durability, hello] of [
    [undefined, { versions: [1], client: "conn-test" }],
    ["strict", { versions: [1], client: "conn-test" }],
    ["relaxed", { versions: [1], client: "conn-test", durability: "relaxed" }],
  ]) {
    const { transport, conn } = setup(durability ? { durability } : {});
    const link = transport.answer();
    assert.deepEqual(link.sent, [{ hello }], String(durability));
    conn.close();
  }
});

test("the transport's refusal: that state, calls fail at once, no retry until reconnect()", async () => {
  const { transport, conn, told } = setup();
  transport.sink.reached();
  const held = outcome(conn.call({ ping: {} }));
  transport.sink.refused("storage_partitioned", new EchoError("rpc.storage_partitioned", "partitioned"));
  await settle();
  assert.equal(conn.state, "storage_partitioned");
  assert.equal(conn.lastError.code, "rpc.storage_partitioned");
  assert.equal(held.error.code, "rpc.storage_partitioned", "a held call fails with the refusal");
  await assert.rejects(conn.call({ ping: {} }), (e) => e.code === "rpc.storage_partitioned");
  mock.timers.tick(60_000);
  assert.deepEqual(transport.attempts, ["connect fresh"], "a refusal is not retried");
  conn.reconnect();
  assert.equal(conn.state, "connecting");
  assert.deepEqual(transport.attempts, ["connect fresh", "connect fresh"]);
  const again = outcome(conn.call({ ping: {} }));
  const link = transport.answer();
  link.welcome();
  await settle();
  link.respond(link.last("ping").id, { done: {} });
  await settle();
  assert.equal(again.ok, true, "after reconnect() calls go through");
  assert.deepEqual(told.states, ["storage_partitioned", "connecting", "connected"]);
});

test("a refusal on the link (unsupported version): disconnected for good, the link closed", async () => {
  const { transport, conn } = setup();
  const link = transport.answer();
  link.push({ refused: { error: { code: "rpc.unsupported_version", message: "no common version" } } });
  assert.equal(conn.state, "disconnected");
  assert.equal(conn.lastError.code, "rpc.unsupported_version");
  assert.equal(link.closed, true);
  await assert.rejects(conn.call({ ping: {} }), (e) => e.code === "rpc.unsupported_version");
  mock.timers.tick(60_000);
  assert.deepEqual(transport.attempts, ["connect fresh"]);
});

test("refusals on the link name their state: storage blocked, storage lost (the browser deleted the vault's storage)", () => {
  for (const [code, state] of [["rpc.storage_blocked", "storage_blocked"], ["rpc.storage_lost", "storage_lost"], ["rpc.not_authorized", "not_authorized"]]) {
    const { transport, conn } = setup();
    const link = transport.answer();
    link.push({ refused: { error: { code, message: "why" } } });
    assert.equal(conn.state, state, code);
    assert.equal(conn.lastError.code, code);
    assert.equal(link.closed, true);
    mock.timers.tick(60_000);
    assert.deepEqual(transport.attempts, ["connect fresh"], `${code}: no retry until reconnect()`);
    conn.close();
  }
});

test("consent: required → not_authorized; access_granted → connected (the layer above re-opens)", async () => {
  const { transport, conn, told } = setup();
  const link = transport.answer();
  link.welcome("required");
  assert.equal(conn.state, "not_authorized");
  assert.equal(conn.consent, "required");
  assert.equal(told.connected, 0);
  link.event({ access_granted: {} });
  assert.equal(conn.state, "connected");
  assert.equal(conn.consent, "granted");
  assert.equal(told.connected, 1);
  assert.deepEqual(told.events.map((e) => e.event), [{ access_granted: {} }], "the event reaches the layer above too");
});

test("partitioned storage in the welcome → storage_partitioned", () => {
  const { transport, conn } = setup();
  transport.answer().welcome("granted", "partitioned");
  assert.equal(conn.state, "storage_partitioned");
});

test("connect timeout: counted from reached; disconnected, then back-off; the page is reloaded after two failures", async () => {
  const { transport, conn } = setup();
  mock.timers.tick(5_000);
  assert.equal(conn.state, "connecting", "no timeout before the vault was reached (the page still loads)");
  transport.sink.reached();
  const call = outcome(conn.call({ ping: {} }, { timeoutMs: 60_000 }));
  mock.timers.tick(999);
  assert.equal(conn.state, "connecting");
  mock.timers.tick(1);
  await settle();
  assert.equal(conn.state, "disconnected");
  assert.equal(conn.lastError.code, "rpc.disconnected");
  assert.match(conn.lastError.message, /vault\.test did not answer within 1000 ms/);
  assert.equal(call.error.code, "rpc.disconnected", "held calls fail with the lost attempt");
  assert.equal(transport.asking, false, "the attempt was stopped");
  // First failure: 1 s base, jitter 0 → 500 ms.
  mock.timers.tick(499);
  assert.deepEqual(transport.attempts, ["connect fresh"]);
  mock.timers.tick(1);
  assert.deepEqual(transport.attempts, ["connect fresh", "connect"]);
  // Second failure: 2 s base → 1 000 ms, and then a fresh page.
  transport.sink.reached();
  mock.timers.tick(1000);
  mock.timers.tick(999);
  assert.equal(transport.attempts.length, 2);
  mock.timers.tick(1);
  assert.deepEqual(transport.attempts, ["connect fresh", "connect", "connect fresh"]);
  // A success resets the back-off.
  transport.answer().welcome();
  assert.equal(conn.state, "connected");
});

test("the back-off: 0.5 s doubling to 30 s, jittered between half and all of it", () => {
  assert.equal(backoffMs(0, 0), 250);
  assert.equal(backoffMs(0, 1), 500);
  assert.equal(backoffMs(1, 0), 500);
  assert.equal(backoffMs(3, 1), 4000);
  assert.equal(backoffMs(6, 1), 30_000);
  assert.equal(backoffMs(20, 0.5), 22_500);
});

test("heartbeat: pings unanswered and nothing heard → disconnected, pending calls fail, reconnect with back-off", async () => {
  const { transport, conn, link, told } = await connected();
  const pending = outcome(conn.call({ "spaces.list": {} }));
  mock.timers.tick(100);
  await settle();
  assert.ok(link.last("ping"), "a heartbeat ping went out");
  mock.timers.tick(249);
  await settle();
  assert.equal(conn.state, "connected");
  mock.timers.tick(1);
  await settle();
  assert.equal(conn.state, "disconnected");
  assert.match(conn.lastError.message, /heartbeat/);
  assert.equal(pending.error.code, "rpc.disconnected");
  assert.equal(link.closed, true);
  assert.equal(told.linkLost, 1);
  mock.timers.tick(499);
  assert.equal(transport.attempts.length, 1);
  mock.timers.tick(1);
  assert.deepEqual(transport.attempts, ["connect fresh", "connect"]);
  const next = transport.answer();
  next.welcome();
  assert.equal(conn.state, "connected");
  assert.equal(told.connected, 2);
});

test("heartbeat: a busy vault that answers late but talks is not lost", async () => {
  const { conn, link } = await connected();
  for (let t = 0; t < 20; t++) {
    mock.timers.tick(100);
    await settle();
    // Something from the vault (an event) every 100 ms; pings stay unanswered.
    link.event({ space_changed: { space: "s" } });
  }
  assert.equal(conn.state, "connected");
  assert.ok(link.requests.filter((r) => r.method.ping).length >= 10);
});

test("heartbeat: answered pings keep the connection", async () => {
  const { conn, link } = await connected();
  for (let t = 0; t < 20; t++) {
    mock.timers.tick(100);
    await settle();
    const ping = link.last("ping");
    link.respond(ping.id, { done: {} });
  }
  assert.equal(conn.state, "connected");
});

test("the vault page reloaded (the engine crashed): calls fail with rpc.disconnected, it asks again at once", async () => {
  const { transport, conn, link, told } = await connected();
  const pending = outcome(conn.call({ "object.get": { space: "s", ids: [] } }));
  await settle();
  assert.ok(link.last("object.get"));
  transport.sink.dropped(new EchoError("rpc.disconnected", "the vault page reloaded; reconnecting"), true);
  await settle();
  assert.equal(pending.error.code, "rpc.disconnected");
  assert.equal(conn.state, "disconnected");
  assert.equal(link.closed, true);
  assert.deepEqual(transport.attempts, ["connect fresh", "connect"], "no back-off for a reload");
  // A call made while down waits for the new link, and goes out on it only.
  const later = outcome(conn.call({ ping: {} }));
  const next = transport.answer();
  next.welcome();
  await settle();
  assert.equal(link.last("ping"), undefined);
  const id = next.last("ping").id;
  // A message still in flight on the old link is not heard.
  link.respond(id, { text: { text: "stale" } });
  await settle();
  assert.equal(later.settled, false);
  next.respond(id, { done: {} });
  await settle();
  assert.deepEqual(later.value, { done: {} });
  assert.deepEqual(told.states, ["connected", "disconnected", "connected"]);
  assert.equal(told.connected, 2);
});

test("a drop the transport cannot retry by itself (a closed vault window) stays disconnected until reconnect()", async () => {
  const { transport, conn } = await connected();
  transport.sink.dropped(new EchoError("rpc.disconnected", "the vault window was closed"), false);
  mock.timers.tick(60_000);
  assert.equal(conn.state, "disconnected");
  assert.equal(transport.attempts.length, 1);
  conn.reconnect();
  assert.deepEqual(transport.attempts, ["connect fresh", "connect fresh"]);
});

test("the vault ends a working connection for now (refused rpc.disconnected): it reconnects by itself", async () => {
  const { transport, conn, link } = await connected();
  link.push({ refused: { error: { code: "rpc.disconnected", message: "idle too long" } } });
  assert.equal(conn.state, "disconnected");
  assert.equal(conn.lastError.message, "idle too long");
  mock.timers.tick(500);
  assert.deepEqual(transport.attempts, ["connect fresh", "connect"]);
  // Not refused for good: calls are held, not failed at once.
  const held = outcome(conn.call({ ping: {} }));
  await settle();
  assert.equal(held.settled, false);
});

test("frames: the calls of one turn go out as one port message; a frame of answers resolves each", async () => {
  const { conn, link } = await connected();
  const posts = link.posts.length;
  const a = outcome(conn.call({ "space.heads": { space: "a" } }));
  const b = outcome(conn.call({ "space.heads": { space: "b" } }));
  const c = outcome(conn.call({ "space.heads": { space: "c" } }));
  await settle();
  assert.equal(link.posts.length, posts + 1, "one post for three calls");
  assert.ok(link.posts[posts].startsWith("["));
  const ids = link.requests.slice(-3).map((r) => r.id);
  link.push(ids.map((id, i) => ({ response: { id, result: { Ok: { heads: { heads: [String(i)] } } } } })));
  await settle();
  assert.deepEqual([a.value, b.value, c.value], [0, 1, 2].map((i) => ({ heads: { heads: [String(i)] } })));
});

test("a message over the size limit fails at once with rpc.too_large; nothing is sent", async () => {
  const { conn, link } = await connected();
  const before = link.sent.length;
  await assert.rejects(conn.call({ "text.read": { space: "x".repeat(5 * 1024 * 1024), id: "i", field: "f" } }), (e) => e.code === "rpc.too_large");
  await settle();
  assert.equal(link.sent.length, before);
});

test("revocation of the whole vault: calls fail (revoked), not_authorized, a fresh handshake on the same page", async () => {
  const { transport, conn, link, told } = await connected();
  const pending = outcome(conn.call({ "spaces.list": {} }));
  await settle();
  link.event({ access_revoked: {} });
  await settle();
  assert.equal(pending.error.code, "rpc.not_authorized");
  assert.equal(pending.error.details.reason, "revoked");
  assert.equal(conn.state, "not_authorized");
  assert.equal(conn.consent, undefined);
  assert.equal(link.closed, true);
  assert.equal(told.linkLost, 1);
  assert.deepEqual(transport.attempts, ["connect fresh", "connect"]);
  const next = transport.answer();
  next.welcome("required");
  assert.equal(conn.state, "not_authorized");
  assert.equal(conn.consent, "required");
});

test("one space's revocation is the layer above's: the connection stays, the event is passed on", async () => {
  const { transport, conn, link, told } = await connected();
  link.event({ access_revoked: { space: "s1" } });
  await settle();
  assert.equal(conn.state, "connected");
  assert.equal(link.closed, false);
  assert.equal(transport.attempts.length, 1);
  assert.deepEqual(told.events, [{ event: { access_revoked: { space: "s1" } }, subscription: undefined }]);
});

test("consent decided in the vault's window: denied → denied; allowed without access_granted → a new handshake after 2 s", async () => {
  const { transport, conn, told } = setup();
  const link = transport.answer();
  link.welcome("required");
  conn.consentDecided(false);
  assert.equal(conn.consent, "denied");
  assert.equal(conn.state, "not_authorized");
  conn.consentDecided(true);
  mock.timers.tick(1999);
  assert.equal(transport.attempts.length, 1);
  mock.timers.tick(1);
  assert.deepEqual(transport.attempts, ["connect fresh", "connect"]);
  assert.equal(link.closed, true);
  assert.equal(told.linkLost, 1);
  transport.answer().welcome("granted");
  assert.equal(conn.state, "connected");
});

test("consent allowed and access_granted arrives: no new handshake", async () => {
  const { transport, conn } = setup();
  const link = transport.answer();
  link.welcome("required");
  conn.consentDecided(true);
  link.event({ access_granted: {} });
  mock.timers.tick(5000);
  assert.equal(transport.attempts.length, 1);
  assert.equal(link.closed, false);
  assert.equal(conn.state, "connected");
});

test("a link that arrives when no attempt runs is closed; a second link for one attempt too", async () => {
  const { transport, conn, link } = await connected();
  const { FakeLink } = await import("./fakes.mjs");
  const extra = new FakeLink();
  transport.sink.link(extra);
  assert.equal(extra.closed, true);
  assert.equal(link.closed, false);
  assert.equal(conn.state, "connected");
});

test("close(): calls fail, the transport closes, nothing reconnects", async () => {
  const { transport, conn, link } = await connected();
  const pending = outcome(conn.call({ ping: {} }));
  await settle();
  conn.close();
  await settle();
  assert.equal(pending.error.code, "rpc.disconnected");
  assert.equal(conn.state, "disconnected");
  assert.equal(link.closed, true);
  assert.equal(transport.log.at(-1), "close");
  await assert.rejects(conn.call({ ping: {} }), (e) => e.code === "rpc.disconnected");
  transport.sink.dropped(new EchoError("rpc.disconnected", "x"), true);
  mock.timers.tick(60_000);
  assert.equal(transport.attempts.length, 1);
});

test("again() after a refusal (the person granted storage access in the vault's frame): connecting, one more attempt, connected", async () => {
  const { transport, conn, told } = setup();
  transport.sink.reached();
  transport.sink.refused("storage_partitioned", new EchoError("rpc.storage_partitioned", "apart"));
  assert.equal(conn.state, "storage_partitioned");
  const failed = outcome(conn.call({ ping: {} }));
  await settle();
  assert.equal(failed.error.code, "rpc.storage_partitioned", "calls fail at once while refused");
  transport.sink.again();
  assert.equal(conn.state, "connecting");
  assert.equal(conn.lastError, undefined);
  assert.deepEqual(transport.attempts, ["connect fresh", "connect"]);
  const pending = outcome(conn.call({ ping: {} }));
  const link = transport.answer();
  link.welcome("granted");
  await settle();
  assert.equal(conn.state, "connected");
  assert.ok(link.last("ping"), "a call made after again() waits for the link and goes out");
  transport.sink.again();
  assert.deepEqual(transport.attempts, ["connect fresh", "connect"], "ignored while a link is up");
  assert.deepEqual(told.states, ["storage_partitioned", "connecting", "connected"]);
  link.respond(link.last("ping").id, { pong: {} });
  await settle();
  assert.equal(pending.ok, true);
  conn.close();
});
