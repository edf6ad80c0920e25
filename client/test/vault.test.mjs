// The typed API (src/vault.ts: Vault, Space, Subscription) over a fake
// transport and a fake vault: what each call sends and how its answer is
// read, live queries across a reconnect (re-opened, one resync diff), one
// space's revocation, status watches, events, the consent window.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { connect, EchoError, query, where, Ref } from "../dist/index.js";
import { FakeTransport, outcome, settle } from "./fakes.mjs";

const S = "0123456789abcdefghijklmnop"; // a space id
const obj = (id, title) => ({ id, type: "task", fields: { title: { string: title } }, deleted: false });

const open = [];
afterEach(() => {
  for (const v of open.splice(0)) v.close();
  delete globalThis.window;
});

/** A Vault on a fake transport whose vault answers with `server` (see FakeLink.serve), connected. */
async function connected(server, options = {}) {
  const transport = new FakeTransport();
  const vault = connect({ vaultUrl: "http://vault.test/v/", transport, heartbeatMs: 60_000, ...options });
  open.push(vault);
  const link = transport.answer().serve(server);
  link.welcome("granted");
  await settle();
  assert.equal(vault.state, "connected");
  return { vault, transport, link };
}

/** The vault page reloaded: a new link, served by `server`, welcomed. */
async function crashAndReconnect(transport, server) {
  transport.sink.dropped(new EchoError("rpc.disconnected", "the vault page reloaded; reconnecting"), true);
  const link = transport.answer().serve(server);
  link.welcome("granted");
  await settle();
  await settle();
  return link;
}

test("connect: the vault's origin and base URL; the client name in hello is cut to 128 bytes", async () => {
  const transport = new FakeTransport();
  const vault = connect({ vaultUrl: "http://vault.test/v/", transport, clientName: "é".repeat(100) });
  open.push(vault);
  assert.equal(vault.origin, "http://vault.test");
  assert.equal(vault.baseUrl, "http://vault.test/v");
  const link = transport.answer();
  const name = link.sent[0].hello.client;
  assert.equal(name, "é".repeat(64));
  assert.throws(() => connect({ vaultUrl: "", transport }), (e) => e.code === "rpc.bad_request");
});

test("typed calls: each sends its method's wire form and reads its own response kind", async () => {
  const seen = [];
  const { vault, link } = await connected((name, params) => {
    seen.push([name, params]);
    switch (name) {
      case "object.create":
        return { written: { created: [params.id ?? "new-id"] } };
      case "object.update":
      case "object.delete":
      case "text.splice":
        return { written: { created: [] } };
      case "object.get":
        return { objects: { objects: [obj("a", "A"), null] } };
      case "object.batch":
        return { written: { created: ["x", "y"] } };
      case "query.run":
        return { result: { ids: ["a"], objects: [obj("a", "A")] } };
      case "text.read":
        return { text: { text: "hello" } };
      case "space.heads":
        return { heads: { heads: ["h1"] } };
      case "space.properties":
        return { properties: { properties: { name: { string: "Home" } } } };
      case "space.set_property":
      case "ping":
        return { done: {} };
      case "spaces.list":
        return { spaces: { spaces: [{ space: S, role: "owner", properties: { app: { string: "t" } } }] } };
      case "spaces.create":
        return { space: { space: S, role: "owner", properties: params.properties } };
      case "identity.info":
        return { identity: { user: "u".repeat(26), display_name: "Ann" } };
    }
    return { Err: { code: "rpc.unknown_method", message: name } };
  });
  const space = vault.space(S);
  assert.equal(await space.create("task", { title: "Buy milk", n: 1, list: new Ref("b") }), "new-id");
  assert.deepEqual(seen.at(-1), ["object.create", { space: S, type: "task", fields: { title: { string: "Buy milk" }, n: { int: 1 }, list: { ref: { object: "b" } } } }]);
  assert.equal(await space.create("task", {}, { id: "chosen" }), "chosen");
  await space.update("a", { done: true }, ["due"]);
  assert.deepEqual(seen.at(-1), ["object.update", { space: S, id: "a", set: { done: { bool: true } }, remove: ["due"] }]);
  await space.delete("a");
  assert.deepEqual(seen.at(-1), ["object.delete", { space: S, id: "a" }]);
  const [a, missing] = await space.getMany(["a", "b"], { at: ["h0"] });
  assert.deepEqual(seen.at(-1), ["object.get", { space: S, ids: ["a", "b"], at: ["h0"] }]);
  assert.equal(a.fields.title, "A");
  assert.equal(missing, null);
  assert.deepEqual(await space.batch([]), ["x", "y"]);
  const q = query(where.type("task"));
  const r = await space.query(q, { resolve: true });
  assert.deepEqual(seen.at(-1), ["query.run", { space: S, query: q, resolve: true }]);
  assert.deepEqual(r.ids, ["a"]);
  assert.equal(r.objects[0].fields.title, "A");
  assert.equal(await space.readText("a", "note"), "hello");
  await space.splice("a", "note", 1, 0, "x", { context: "h" });
  assert.deepEqual(seen.at(-1), ["text.splice", { space: S, id: "a", field: "note", pos: 1, delete: 0, insert: "x", context: "h" }]);
  assert.deepEqual(await space.heads(), ["h1"]);
  assert.deepEqual(await space.properties(), { name: "Home" });
  await space.setProperty("name", "Work");
  assert.deepEqual(seen.at(-1), ["space.set_property", { space: S, name: "name", value: { string: "Work" } }]);
  const [listed] = await vault.spaces.list();
  assert.deepEqual([listed.id, listed.role, listed.properties], [S, "owner", { app: "t" }]);
  const made = await vault.spaces.create({ app: "t" });
  assert.deepEqual(seen.at(-1), ["spaces.create", { properties: { app: { string: "t" } } }]);
  assert.equal(made.id, S);
  assert.deepEqual(await vault.identity(), { user: "u".repeat(26), display_name: "Ann" });
  await vault.ping();
  // The raw request resolves with the wire response as is.
  assert.deepEqual(await vault.request({ "text.read": { space: S, id: "a", field: "f" } }), { text: { text: "hello" } });
  assert.equal(link.requests.length, 17, "one request per call");
});

test("an error answer rejects with the vault's EchoError", async () => {
  const { vault } = await connected(() => ({ Err: { code: "rpc.no_such_space", message: "no such space", details: { space: S } } }));
  await assert.rejects(vault.space(S).heads(), (e) => e instanceof EchoError && e.code === "rpc.no_such_space" && e.details.space === S);
});

/** A vault with live queries: results per query, subscription ids counting up. */
function liveServer(state) {
  return (name, params) => {
    if (name === "query.subscribe") {
      state.subscribes.push(params);
      const id = state.next++;
      return { subscribed: { subscription: id, ids: [...state.ids], objects: params.resolve ? state.ids.map((i) => obj(i, state.titles[i])) : undefined } };
    }
    if (name === "query.unsubscribe") {
      state.unsubscribes.push(params.subscription);
      return { done: {} };
    }
    if (name === "space.status") {
      state.statusCalls.push(params.space);
      return { space_status: { peers: state.peers, online: true, can_connect: true } };
    }
    return { done: {} };
  };
}

function newLive() {
  return { next: 7, ids: ["a", "b"], titles: { a: "A", b: "B", c: "C" }, subscribes: [], unsubscribes: [], statusCalls: [], peers: 0 };
}

test("a live query: initial result, diffs from the vault, unsubscribe", async () => {
  const state = newLive();
  const { vault, link } = await connected(liveServer(state));
  const diffs = [];
  const q = query(where.type("task"));
  const sub = await vault.space(S).subscribe(q, (diff, s) => diffs.push({ diff, ids: [...s.ids] }), { resolve: true });
  assert.deepEqual(state.subscribes, [{ space: S, query: q, resolve: true }]);
  assert.deepEqual(sub.initial.ids, ["a", "b"]);
  assert.deepEqual(sub.list().map((o) => o.fields.title), ["A", "B"]);
  link.event({ query_diff: { added: ["c"], removed: ["a"], changed: [], objects: [obj("c", "C")] } }, 7);
  link.event({ query_diff: { added: ["z"], removed: [], changed: [] } }, 99); // another subscription: not ours
  assert.equal(diffs.length, 1);
  assert.deepEqual(diffs[0].ids, ["b", "c"]);
  assert.equal(diffs[0].diff.resync, false);
  await sub.unsubscribe();
  assert.deepEqual(state.unsubscribes, [7]);
  assert.equal(sub.closed, true);
  link.event({ query_diff: { added: ["d"], removed: [], changed: [] } }, 7);
  assert.equal(diffs.length, 1, "no callback after unsubscribe");
});

test("live queries survive a reconnect: re-opened on the new link, one resync diff, old ids no longer route", async () => {
  const state = newLive();
  const { vault, transport, link } = await connected(liveServer(state));
  const diffs = [];
  const sub = await vault.space(S).subscribe(query(where.type("task")), (diff) => diffs.push(diff), { resolve: true });
  // While the app was away, "a" went and "c" came.
  state.ids = ["b", "c"];
  const next = await crashAndReconnect(transport, liveServer(state));
  assert.equal(state.subscribes.length, 2, "re-subscribed once");
  assert.deepEqual(state.subscribes[1], state.subscribes[0]);
  assert.equal(diffs.length, 1);
  assert.equal(diffs[0].resync, true);
  assert.deepEqual([diffs[0].added, diffs[0].removed], [["c"], ["a"]]);
  assert.deepEqual([...sub.ids], ["b", "c"]);
  // The new subscription id routes; the old link's id does not.
  link.event({ query_diff: { added: ["x"], removed: [], changed: [] } }, 7);
  next.event({ query_diff: { added: [], removed: ["b"], changed: [] } }, 8);
  assert.equal(diffs.length, 2);
  assert.deepEqual([...sub.ids], ["c"]);
  // Nothing changed over a second reconnect: no diff.
  state.ids = ["c"];
  await crashAndReconnect(transport, liveServer(state));
  assert.equal(state.subscribes.length, 3);
  assert.equal(diffs.length, 2);
});

test("unsubscribing while disconnected sends nothing and the subscription is not re-opened", async () => {
  const state = newLive();
  const { vault, transport } = await connected(liveServer(state));
  const sub = await vault.space(S).subscribe(query(where.all()), () => {});
  transport.sink.dropped(new EchoError("rpc.disconnected", "reloaded"), true);
  await sub.unsubscribe();
  assert.deepEqual(state.unsubscribes, []);
  const link = transport.answer().serve(liveServer(state));
  link.welcome();
  await settle();
  await settle();
  assert.equal(state.subscribes.length, 1, "not re-opened");
});

test("re-opening fails (the space is no longer granted): onError gets the vault's error", async () => {
  const state = newLive();
  const { vault, transport } = await connected(liveServer(state));
  const errors = [];
  await vault.space(S).subscribe(query(where.all()), () => {}, { onError: (e) => errors.push(e) });
  await crashAndReconnect(transport, () => ({ Err: { code: "rpc.no_such_space", message: "gone" } }));
  assert.deepEqual(errors.map((e) => e.code), ["rpc.no_such_space"]);
});

test("one space's revocation ends its live queries (onError: revoked); others go on", async () => {
  const state = newLive();
  const { vault, link } = await connected(liveServer(state));
  const errors = [];
  const diffs = [];
  const revoked = await vault.space(S).subscribe(query(where.all()), () => diffs.push("S"), { onError: (e) => errors.push(e) });
  const other = await vault.space("other").subscribe(query(where.all()), () => diffs.push("other"));
  link.event({ access_revoked: { space: S } });
  assert.equal(revoked.closed, true);
  assert.equal(other.closed, false);
  assert.equal(errors.length, 1);
  assert.deepEqual([errors[0].code, errors[0].details.reason, errors[0].details.space], ["rpc.not_authorized", "revoked", S]);
  link.event({ query_diff: { added: ["q"], removed: [], changed: [] } }, 7);
  link.event({ query_diff: { added: ["q"], removed: [], changed: [] } }, 8);
  assert.deepEqual(diffs, ["other"]);
  assert.equal(vault.state, "connected");
});

test("status: onStatus asks space.status, hears its events, and is watched again after a reconnect", async () => {
  const state = newLive();
  const { vault, transport, link } = await connected(liveServer(state));
  const heard = [];
  const stop = vault.space(S).onStatus((s) => heard.push(s.peers));
  await settle();
  await settle();
  assert.deepEqual(state.statusCalls, [S]);
  assert.deepEqual(heard, [0]);
  link.event({ space_status: { space: S, status: { peers: 2, online: true, can_connect: true } } });
  link.event({ space_status: { space: "other", status: { peers: 5, online: true, can_connect: true } } });
  assert.deepEqual(heard, [0, 2]);
  state.peers = 1;
  await crashAndReconnect(transport, liveServer(state));
  assert.deepEqual(state.statusCalls, [S, S]);
  assert.deepEqual(heard, [0, 2, 1]);
  stop();
  await crashAndReconnect(transport, liveServer(state));
  assert.deepEqual(state.statusCalls, [S, S], "not watched once stopped");
  assert.equal((await vault.space(S).status()).peers, 1);
});

test("onEvent hears every pushed event, with its subscription", async () => {
  const { vault, link } = await connected(() => ({ done: {} }));
  const heard = [];
  const off = vault.onEvent((event, sub) => heard.push([Object.keys(event)[0], sub]));
  link.event({ space_changed: { space: S } });
  link.event({ query_diff: { added: [], removed: [], changed: [] } }, 3);
  off();
  link.event({ space_changed: { space: S } });
  assert.deepEqual(heard, [["space_changed", undefined], ["query_diff", 3]]);
});

test("state, consent, info, lastError and whenConnected come from the connection", async () => {
  const transport = new FakeTransport();
  const vault = connect({ vaultUrl: "http://vault.test", transport });
  open.push(vault);
  const states = [];
  vault.onStateChange((s) => states.push(s));
  const ready = outcome(vault.whenConnected());
  assert.equal(vault.state, "connecting");
  const link = transport.answer();
  link.welcome("required");
  await settle();
  assert.equal(vault.state, "not_authorized");
  assert.equal(vault.consent, "required");
  assert.equal(vault.info.storage, "persistent");
  assert.equal(ready.settled, false);
  link.event({ access_granted: {} });
  await settle();
  assert.equal(ready.ok, true);
  assert.deepEqual(states, ["not_authorized", "connected"]);
  const ac = new AbortController();
  transport.sink.dropped(new EchoError("rpc.disconnected", "gone"), false);
  assert.equal(vault.lastError.message, "gone");
  const waiting = vault.whenConnected(ac.signal);
  ac.abort();
  await assert.rejects(waiting, (e) => e.code === "rpc.cancelled");
  vault.close();
  assert.equal(transport.log.at(-1), "close");
  await assert.rejects(vault.ping(), (e) => e.code === "rpc.disconnected");
});

/** A fake page for the vault's windows: window.open and the message listeners. */
function fakeWindows({ blocked = false } = {}) {
  const page = { opened: [], listeners: new Set() };
  globalThis.window = {
    open(url, name, features) {
      if (blocked) return null;
      const popup = { url, name, features, closed: false, posted: [], focus() {}, postMessage: (data, origin) => popup.posted.push({ data, origin }) };
      page.opened.push(popup);
      return popup;
    },
    addEventListener: (type, l) => type === "message" && page.listeners.add(l),
    removeEventListener: (type, l) => type === "message" && page.listeners.delete(l),
  };
  page.from = (popup, data, origin = "http://vault.test") => {
    for (const l of [...page.listeners]) l({ source: popup, origin, data });
  };
  return page;
}

test("requestAccess: the consent window gets the request when ready; its result resolves (one window at a time)", async () => {
  const page = fakeWindows();
  const { vault } = await connected(() => ({ done: {} }));
  const p = vault.requestAccess({ appName: "Tasks" });
  assert.equal(vault.requestAccess(), p, "a second call while open gets the same decision");
  const [popup] = page.opened;
  assert.deepEqual([popup.url, popup.name], ["http://vault.test/v/consent.html", "echo-consent"]);
  page.from(popup, { echo: "consent_ready" }, "http://evil.test");
  assert.deepEqual(popup.posted, [], "only the vault origin counts");
  page.from(popup, { echo: "consent_ready" });
  assert.deepEqual(popup.posted, [{ data: { echo: "consent_request", app_name: "Tasks" }, origin: "http://vault.test" }]);
  page.from(popup, { echo: "consent_result", allowed: false });
  assert.deepEqual(await p, { allowed: false });
  assert.equal(vault.consent, "denied");
  assert.equal(vault.state, "not_authorized");
  assert.equal(page.listeners.size, 0, "the window's listener went");
});

test("requestAccess: a blocked window → rpc.cancelled popup_blocked; invitation windows alike", async () => {
  fakeWindows({ blocked: true });
  const { vault } = await connected(() => ({ done: {} }));
  await assert.rejects(vault.requestAccess(), (e) => e.code === "rpc.cancelled" && e.details.reason === "popup_blocked");
  await assert.rejects(vault.acceptInvitation("code"), (e) => e.code === "rpc.cancelled" && e.details.reason === "popup_blocked");
});

test("an invitation window: the request when ready, the result; closed first → popup_closed", async (t) => {
  t.mock.timers.enable({ apis: ["setInterval"] });
  const page = fakeWindows();
  const { vault } = await connected(() => ({ done: {} }));
  const p = vault.space(S).invite({ role: "reader" });
  const [popup] = page.opened;
  assert.equal(popup.url, "http://vault.test/v/invite.html");
  page.from(popup, { echo: "invite_ready" });
  assert.deepEqual(popup.posted[0].data, { echo: "invite_request", space: S, role: "reader" });
  page.from(popup, { echo: "invite_result", state: "success", space: S });
  assert.deepEqual(await p, { state: "success", space: S });
  const q = vault.acceptInvitation("abc");
  const second = page.opened[1];
  page.from(second, { echo: "invite_ready" });
  assert.deepEqual(second.posted[0].data, { echo: "invite_request", code: "abc" });
  second.closed = true;
  t.mock.timers.tick(400);
  await assert.rejects(q, (e) => e.code === "rpc.cancelled" && e.details.reason === "popup_closed");
});
