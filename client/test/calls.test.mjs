// The call table: ids, one answer per call, timeouts, cancellation,
// late answers, held calls, disconnects. Drives the real CallTable with
// the messages it sends and the responses it would get.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CallTable, EchoError, methodName } from "../dist/index.js";

function wire() {
  const sent = [];
  return { sent, send: (m) => sent.push(m) };
}

test("calls get distinct ids and resolve with their own answer", async () => {
  const t = new CallTable(1000);
  const w = wire();
  t.attach(w.send);
  const a = t.call({ ping: {} });
  const b = t.call({ "spaces.list": {} });
  assert.equal(w.sent.length, 2);
  const [ia, ib] = w.sent.map((m) => m.request.id);
  assert.notEqual(ia, ib);
  assert.deepEqual(w.sent[1].request.method, { "spaces.list": {} });
  assert.equal(t.pendingCount, 2);
  assert.ok(t.handleResponse(ib, { Ok: { spaces: { spaces: [] } } }));
  assert.ok(t.handleResponse(ia, { Ok: { done: {} } }));
  assert.deepEqual(await a, { done: {} });
  assert.deepEqual(await b, { spaces: { spaces: [] } });
  assert.equal(t.pendingCount, 0);
  // a second answer for an answered id is ignored
  assert.equal(t.handleResponse(ia, { Ok: { done: {} } }), false);
});

test("an error response rejects with an EchoError carrying code, message, details", async () => {
  const t = new CallTable(1000);
  const w = wire();
  t.attach(w.send);
  const p = t.call({ "space.heads": { space: "s" } });
  t.handleResponse(w.sent[0].request.id, { Err: { code: "rpc.no_such_space", message: "no", details: { field: "space" } } });
  await assert.rejects(p, (e) => e instanceof EchoError && e instanceof Error && e.code === "rpc.no_such_space" && e.message === "no" && e.details.field === "space");
});

test("a timeout fails the call with rpc.timeout, sends cancel, and ignores the late answer", async () => {
  const t = new CallTable(1000);
  const w = wire();
  t.attach(w.send);
  const p = t.call({ ping: {} }, { timeoutMs: 20 });
  const id = w.sent[0].request.id;
  await assert.rejects(p, (e) => e.code === "rpc.timeout");
  assert.deepEqual(w.sent[1], { cancel: { id } });
  assert.equal(t.handleResponse(id, { Ok: { done: {} } }), false);
  assert.equal(t.pendingCount, 0);
});

test("aborting fails with rpc.cancelled and sends cancel; an aborted signal never sends", async () => {
  const t = new CallTable(1000);
  const w = wire();
  t.attach(w.send);
  const ac = new AbortController();
  const p = t.call({ "object.get": { space: "s", ids: [] } }, { signal: ac.signal });
  const id = w.sent[0].request.id;
  ac.abort();
  await assert.rejects(p, (e) => e.code === "rpc.cancelled");
  assert.deepEqual(w.sent[1], { cancel: { id } });
  await assert.rejects(t.call({ ping: {} }, { signal: ac.signal }), (e) => e.code === "rpc.cancelled");
  assert.equal(w.sent.length, 2);
});

test("calls made with no connection are held, then sent on attach", async () => {
  const t = new CallTable(1000);
  const p = t.call({ "identity.info": {} });
  assert.equal(t.heldCount, 1);
  const w = wire();
  t.attach(w.send);
  assert.equal(t.heldCount, 0);
  assert.equal(w.sent.length, 1);
  t.handleResponse(w.sent[0].request.id, { Ok: { identity: { user: "u" } } });
  assert.equal((await p).identity.user, "u");
});

test("held calls time out and cancel without sending anything", async () => {
  const t = new CallTable(1000);
  await assert.rejects(t.call({ ping: {} }, { timeoutMs: 10 }), (e) => e.code === "rpc.timeout");
  const ac = new AbortController();
  const p = t.call({ ping: {} }, { signal: ac.signal });
  ac.abort();
  await assert.rejects(p, (e) => e.code === "rpc.cancelled");
  const w = wire();
  t.attach(w.send);
  assert.equal(w.sent.length, 0);
});

test("immediate calls (the heartbeat) fail at once without a connection", async () => {
  const t = new CallTable(1000);
  await assert.rejects(t.call({ ping: {} }, {}, true), (e) => e.code === "rpc.disconnected");
  assert.equal(t.heldCount, 0);
});

test("a disconnect fails every pending call with the given error; cancels are not sent on the dead connection", async () => {
  const t = new CallTable(1000);
  const w = wire();
  t.attach(w.send);
  const a = t.call({ ping: {} });
  const b = t.call({ ping: {} }, { timeoutMs: 5 });
  t.detach(new EchoError("rpc.disconnected", "gone"));
  await assert.rejects(a, (e) => e.code === "rpc.disconnected");
  await assert.rejects(b, (e) => e.code === "rpc.disconnected");
  await new Promise((r) => setTimeout(r, 15));
  assert.equal(w.sent.length, 2); // no cancel after the disconnect
  // answers from the old connection are ignored
  assert.equal(t.handleResponse(w.sent[0].request.id, { Ok: { done: {} } }), false);
  // new calls are held until the next connection
  const c = t.call({ ping: {} });
  assert.equal(t.heldCount, 1);
  const w2 = wire();
  t.attach(w2.send);
  t.handleResponse(w2.sent[0].request.id, { Ok: { done: {} } });
  await c;
});

test("refuse fails held and new calls at once until lifted", async () => {
  const t = new CallTable(1000);
  const held = t.call({ ping: {} });
  const err = new EchoError("rpc.storage_blocked", "blocked");
  t.refuse(err);
  await assert.rejects(held, (e) => e === err);
  await assert.rejects(t.call({ ping: {} }), (e) => e.code === "rpc.storage_blocked");
  t.refuse(null);
  const p = t.call({ ping: {} });
  assert.equal(t.heldCount, 1);
  t.detach(new EchoError("rpc.disconnected", "x"));
  await assert.rejects(p, (e) => e.code === "rpc.disconnected");
});

test("ids stay u32 and skip ids still pending", async () => {
  const t = new CallTable(1000);
  const w = wire();
  t.attach(w.send);
  const keep = t.call({ ping: {} }); // id 1 stays pending
  const first = w.sent[0].request.id;
  // walk the counter around 2^32 without sending 4 billion calls
  t["nextId"] = 0xffff_ffff;
  const p1 = t.call({ ping: {} });
  const p2 = t.call({ ping: {} });
  const p3 = t.call({ ping: {} });
  const ids = w.sent.slice(1).map((m) => m.request.id);
  assert.deepEqual(ids, [0xffff_ffff, 0, first + 1]);
  for (const id of [first, ...ids]) t.handleResponse(id, { Ok: { done: {} } });
  await Promise.all([keep, p1, p2, p3]);
});

test("a send that throws fails that call only", async () => {
  const t = new CallTable(1000);
  t.attach(() => {
    throw new Error("DataCloneError");
  });
  await assert.rejects(t.call({ ping: {} }), (e) => e.code === "rpc.bad_request" && /DataCloneError/.test(e.message));
  assert.equal(t.pendingCount, 0);
});

test("methodName reads the request's tag", () => {
  assert.equal(methodName({ "object.batch": { space: "s", mutations: [] } }), "object.batch");
});

test("a send that throws an EchoError (e.g. rpc.too_large) fails the call with that error", async () => {
  const t = new CallTable(1000);
  t.attach(() => {
    throw new EchoError("rpc.too_large", "big", { limit: "4194304" });
  });
  await assert.rejects(t.call({ ping: {} }), (e) => e.code === "rpc.too_large" && e.details.limit === "4194304");
});

test("one timer serves every deadline: a later call with a shorter timeout fails first, the others keep theirs", async () => {
  const t = new CallTable(1000);
  const w = wire();
  t.attach(w.send);
  const slow = t.call({ ping: {} }, { timeoutMs: 300 });
  const fast = t.call({ ping: {} }, { timeoutMs: 10 });
  const fast2 = t.call({ ping: {} }, { timeoutMs: 40 });
  const started = Date.now();
  await assert.rejects(fast, (e) => e.code === "rpc.timeout" && /10 ms/.test(e.message));
  await assert.rejects(fast2, (e) => e.code === "rpc.timeout" && /40 ms/.test(e.message));
  assert.ok(Date.now() - started < 250, "the short deadlines did not wait for the long one");
  assert.equal(t.pendingCount, 1);
  const id = w.sent[0].request.id;
  assert.ok(t.handleResponse(id, { Ok: { done: {} } }));
  assert.deepEqual(await slow, { done: {} });
});
