// The vault window (src/window.ts) and the switch between ways (src/switch.ts)
// in a fake page: window.open of <vault>/window.html only while a click is
// handled, `connect` posted to the vault origin until the window answers
// with a port, only the window's own messages from the vault origin count,
// a blocked window, the window closed (dropped for good: no window opens by
// itself), a reloading window, close(). Then Vault.openWindow() end to end
// over a real MessageChannel: disconnected when the window closes, one
// reconnect() (a click) opens it again; and the vault iframe's button
// (src/iframe.ts: refused with ask, the browser's answer, again()).
import { test, mock, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";

const ORIGIN = "http://vault.test";

/** A fake page: window.open, window's message listeners, navigator.userActivation. */
function fakePage() {
  const page = { opened: [], listeners: new Set(), active: true, block: false };
  globalThis.window = {
    addEventListener: (type, l) => type === "message" && page.listeners.add(l),
    removeEventListener: (type, l) => type === "message" && page.listeners.delete(l),
    open(url, name, features) {
      if (page.block) return null;
      const popup = {
        url,
        name,
        features,
        closed: false,
        posted: [],
        focused: 0,
        postMessage(data, origin) {
          this.posted.push({ data, origin });
        },
        close() {
          this.closed = true;
        },
        focus() {
          this.focused++;
        },
      };
      page.opened.push(popup);
      return popup;
    },
  };
  Object.defineProperty(globalThis, "navigator", { value: { userActivation: { get isActive() { return page.active; } } }, configurable: true });
  /** The popup posts to the app. */
  page.from = (popup, data, { origin = ORIGIN, ports = [] } = {}) => {
    for (const l of [...page.listeners]) l({ source: popup, origin, data, ports });
  };
  return page;
}

function sinkLog() {
  const log = [];
  return {
    log,
    reached: () => log.push(["reached"]),
    link: (link) => log.push(["link", link]),
    refused: (state, error) => log.push(["refused", state, error.code]),
    dropped: (error, retry) => log.push(["dropped", error.code, error.details.reason, retry]),
    again: () => log.push(["again"]),
  };
}

const fakePort = () => ({ closed: false, close() { this.closed = true; }, postMessage() {}, start() {} });

let WindowTransport, SwitchTransport, IframeTransport, connect, page;
const originalNavigator = Object.getOwnPropertyDescriptor(globalThis, "navigator");
beforeEach(async () => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  page = fakePage();
  ({ WindowTransport, SwitchTransport, IframeTransport, connect } = await import("../dist/index.js"));
});
afterEach(() => {
  mock.timers.reset();
  delete globalThis.window;
  delete globalThis.document;
  if (originalNavigator) Object.defineProperty(globalThis, "navigator", originalNavigator);
});

test("in a click: opens <vault>/window.html once, posts connect to the vault origin until the window answers with a port", () => {
  const t = new WindowTransport({ baseUrl: `${ORIGIN}/v`, origin: ORIGIN });
  const sink = sinkLog();
  t.open(sink);
  t.connect(true);
  assert.equal(page.opened.length, 1);
  const popup = page.opened[0];
  // The window's URL carries a fresh token, and every connect names it: only that page answers.
  const url = new URL(popup.url);
  assert.equal(`${url.origin}${url.pathname}`, `${ORIGIN}/v/window.html`);
  const token = url.searchParams.get("n");
  assert.match(token, /^[0-9a-f]{32}$/);
  assert.equal(popup.name, "echo-vault");
  assert.match(popup.features, /popup/);
  assert.deepEqual(sink.log, [["reached"]]);
  assert.deepEqual(popup.posted, [{ data: { echo: "connect", n: token }, origin: ORIGIN }], "target: the vault's origin, never *");
  mock.timers.tick(500);
  mock.timers.tick(500);
  assert.equal(popup.posted.length, 3, "asked again every 500 ms while loading");

  // Not the window, or not the vault's origin: ignored (the extra port is not taken).
  const stray = fakePort();
  page.from({}, { echo: "connected" }, { ports: [stray] });
  page.from(popup, { echo: "connected" }, { origin: "http://evil.test", ports: [stray] });
  assert.equal(sink.log.length, 1);

  const port = fakePort();
  page.from(popup, { echo: "connected", storage: "persistent" }, { ports: [port] });
  assert.equal(sink.log[1][0], "link");
  mock.timers.tick(2000);
  assert.equal(popup.posted.length, 3, "no more connects once answered");
  // An answer to a retried connect: its port is closed.
  const extra = fakePort();
  page.from(popup, { echo: "connected" }, { ports: [extra] });
  assert.equal(extra.closed, true);
  assert.equal(sink.log.length, 2);

  // A second attempt with the window open asks it again, without opening another.
  t.connect(false);
  assert.equal(page.opened.length, 1);
  assert.equal(popup.posted.length, 4);
  t.close();
  assert.equal(popup.closed, true, "close() closes the vault window");
  assert.equal(page.listeners.size, 0);
});

test("no window without a click, a blocked window, a window closed: dropped for good (no retry)", () => {
  const t = new WindowTransport({ baseUrl: ORIGIN, origin: ORIGIN });
  const sink = sinkLog();
  t.open(sink);
  page.active = false;
  t.connect(false);
  assert.equal(page.opened.length, 0, "an automatic attempt never opens a window");
  assert.deepEqual(sink.log, [["dropped", "rpc.disconnected", "window_closed", false]]);

  page.active = true;
  page.block = true;
  t.connect(true);
  assert.deepEqual(sink.log[1], ["dropped", "rpc.cancelled", "popup_blocked", false]);

  page.block = false;
  t.connect(true);
  const popup = page.opened[0];
  page.from(popup, { echo: "connected" }, { ports: [fakePort()] });
  popup.closed = true;
  mock.timers.tick(300);
  assert.deepEqual(sink.log.slice(-1)[0], ["dropped", "rpc.disconnected", "window_closed", false]);
  const n = sink.log.length;
  mock.timers.tick(3000);
  assert.equal(sink.log.length, n, "reported once");
  assert.equal(t.window, null);
  page.active = false;
  t.connect(false);
  assert.equal(page.opened.length, 1, "still no window by itself");
  page.active = true;
  t.connect(true);
  assert.equal(page.opened.length, 2, "reopened from a click");
  t.close();
});

test("the window going away: reloading → dropped with retry; closed → dropped for good; its refusal → refused", () => {
  const t = new WindowTransport({ baseUrl: ORIGIN, origin: ORIGIN });
  const sink = sinkLog();
  t.open(sink);
  t.connect(true);
  const popup = page.opened[0];
  page.from(popup, { echo: "connected" }, { ports: [fakePort()] });
  page.from(popup, { echo: "window_closed" });
  assert.deepEqual(sink.log.slice(-1)[0], ["dropped", "rpc.disconnected", undefined, true], "a reload: ask again");
  t.connect(false);
  assert.equal(page.opened.length, 1);
  page.from(popup, { echo: "connected" }, { ports: [fakePort()] });
  popup.closed = true;
  page.from(popup, { echo: "window_closed" });
  assert.deepEqual(sink.log.slice(-1)[0], ["dropped", "rpc.disconnected", "window_closed", false]);

  t.connect(true);
  const second = page.opened[1];
  const tokenOf = (w) => new URL(w.url).searchParams.get("n");
  assert.notEqual(tokenOf(second), tokenOf(popup), "a window opened again gets a new token");
  assert.deepEqual(second.posted[0].data, { echo: "connect", n: tokenOf(second) });
  page.from(second, { echo: "refused", state: "storage_blocked", error: { code: "rpc.storage_blocked", message: "no storage" } });
  assert.deepEqual(sink.log.slice(-1)[0], ["refused", "storage_blocked", "rpc.storage_blocked"]);
  t.close();
});

test("the switch passes on only what the way in use says, and closes the way it leaves", () => {
  const log = [];
  const make = (name) => ({
    sink: null,
    open(sink) {
      this.sink = sink;
      log.push(`${name} open`);
    },
    connect: (fresh) => log.push(`${name} connect ${fresh}`),
    stop: () => log.push(`${name} stop`),
    close: () => log.push(`${name} close`),
  });
  const a = make("a");
  const b = make("b");
  const s = new SwitchTransport(a);
  const sink = sinkLog();
  s.open(sink);
  s.connect(true);
  a.sink.reached();
  s.use(b);
  assert.equal(s.current, b);
  assert.deepEqual(log, ["a open", "a connect true", "a stop", "a close", "b open"]);
  const stale = fakePort();
  a.sink.link({ close: () => (stale.closed = true) });
  a.sink.dropped({ code: "x", details: {} }, true);
  a.sink.again();
  assert.equal(stale.closed, true, "a link from the way left behind is closed");
  assert.deepEqual(sink.log, [["reached"]], "nothing else from a");
  s.connect(false);
  b.sink.reached();
  b.sink.again();
  assert.deepEqual(sink.log, [["reached"], ["reached"], ["again"]]);
  s.close();
  assert.deepEqual(log.slice(-2), ["b connect false", "b close"]);
});

/** The vault's end of the port the window hands over: answers hello with a welcome. */
function vaultEnd(consent = "granted") {
  const { port1, port2 } = new MessageChannel();
  const end = { hellos: 0, port: port2 };
  port2.onmessage = (event) => {
    const messages = [JSON.parse(event.data)].flat();
    for (const m of messages) {
      if (m.hello) {
        end.hellos++;
        port2.postMessage(JSON.stringify({ welcome: { version: 1, vault: { consent, storage: "persistent" } } }));
      }
      if (m.request) port2.postMessage(JSON.stringify({ response: { id: m.request.id, result: { Ok: { pong: {} } } } }));
    }
  };
  return { end, port: port1 };
}

const turn = () => new Promise((r) => setImmediate(r));

test("Vault.openWindow(): connected while the window is open; closed → disconnected, stays; reconnect() in a click reopens it", async () => {
  const refusing = {
    sink: null,
    closed: false,
    open(sink) {
      this.sink = sink;
    },
    connect() {
      queueMicrotask(() => this.sink?.refused("storage_partitioned", { code: "rpc.storage_partitioned", message: "partitioned", details: {} }));
    },
    stop() {},
    close() {
      this.closed = true;
    },
  };
  const vault = connect({ vaultUrl: `${ORIGIN}/`, transport: refusing, heartbeatMs: 60_000 });
  const states = [];
  vault.onStateChange((s) => states.push(s));
  await turn();
  assert.equal(vault.state, "storage_partitioned");
  assert.equal(vault.via, "custom");

  vault.openWindow();
  assert.equal(refusing.closed, true, "the way it left is closed");
  assert.equal(vault.via, "window");
  assert.equal(page.opened.length, 1);
  const popup = page.opened[0];
  const first = vaultEnd();
  page.from(popup, { echo: "connected", storage: "persistent" }, { ports: [first.port] });
  await vault.whenConnected();
  assert.equal(first.end.hellos, 1);
  vault.openWindow();
  assert.equal(popup.focused, 1, "while open and connected, openWindow() brings it to the front");
  assert.equal(page.opened.length, 1);

  // The person closes the window.
  popup.closed = true;
  mock.timers.tick(300);
  assert.equal(vault.state, "disconnected");
  assert.equal(vault.lastError.details.reason, "window_closed");
  page.active = false;
  mock.timers.tick(60_000);
  await turn();
  assert.equal(vault.state, "disconnected", "no attempt by itself");
  assert.equal(page.opened.length, 1, "no window by itself");
  const failed = await vault.ping().then(() => "ok", (e) => e.details.reason);
  assert.equal(failed, "window_closed", "calls fail at once while no window is open");

  // One click: reconnect() opens it again.
  page.active = true;
  vault.reconnect();
  assert.equal(page.opened.length, 2);
  const second = vaultEnd();
  page.from(page.opened[1], { echo: "connected" }, { ports: [second.port] });
  await vault.whenConnected();
  await vault.ping();
  assert.deepEqual(states, ["storage_partitioned", "connecting", "connected", "disconnected", "connecting", "connected"]);
  vault.close();
  assert.equal(page.opened[1].closed, true, "close() closes the window");
  first.end.port.close();
  second.end.port.close();
});

test("the vault iframe's button: shown in the slot on a refusal with ask, hidden once the browser answered; granted → asked again", () => {
  const frames = [];
  const slot = { children: [], appendChild: (el) => slot.children.push(el) };
  globalThis.document = {
    body: { appendChild() {} },
    documentElement: {},
    addEventListener() {},
    createElement() {
      const frame = {
        style: {},
        attributes: {},
        loadListeners: [],
        posted: [],
        setAttribute(k, v) {
          this.attributes[k] = v;
        },
        removeAttribute(k) {
          delete this.attributes[k];
        },
        addEventListener(type, l) {
          if (type === "load") this.loadListeners.push(l);
        },
        remove() {},
      };
      frame.contentWindow = { postMessage: (data, origin) => frame.posted.push({ data, origin }) };
      frames.push(frame);
      return frame;
    },
  };
  const access = [];
  const t = new IframeTransport({ baseUrl: ORIGIN, origin: ORIGIN, accessSlot: slot, onAccess: (a) => access.push(a) });
  const sink = sinkLog();
  t.open(sink);
  t.connect(true);
  const frame = frames[0];
  assert.equal(slot.children[0], frame, "the frame lives in the slot from the start (moving it would reload it)");
  assert.equal(frame.style.display, "none");
  for (const l of frame.loadListeners) l();
  const refuse = (ask) =>
    page.from(frame.contentWindow, { echo: "refused", state: "storage_partitioned", ask, error: { code: "rpc.storage_partitioned", message: "apart", details: { help: `${ORIGIN}/help.html#chrome` } } });
  refuse(true);
  assert.equal(frame.style.display, "block", "the vault's button shows");
  assert.equal(frame.attributes["aria-hidden"], undefined);
  assert.equal(t.access, "ask");
  assert.deepEqual(sink.log.slice(-1)[0], ["refused", "storage_partitioned", "rpc.storage_partitioned"]);

  // Only the frame's own messages from the vault origin count.
  page.from(frame.contentWindow, { echo: "access", result: "granted" }, { origin: "http://evil.test" });
  assert.equal(t.access, "ask");
  page.from(frame.contentWindow, { echo: "access", result: "asking" });
  page.from(frame.contentWindow, { echo: "access", result: "refused" });
  assert.equal(frame.style.display, "none", "hidden once the browser said no: the app offers the window");
  assert.deepEqual(access, ["ask", "asking", "refused"]);
  assert.equal(sink.log.filter((e) => e[0] === "again").length, 0);

  // Asked again (reconnect): the button shows again; this time the browser grants it.
  t.connect(false);
  refuse(true);
  page.from(frame.contentWindow, { echo: "access", result: "granted" });
  assert.equal(frame.style.display, "none");
  assert.deepEqual(sink.log.slice(-1)[0], ["again"], "the connection asks again");
  assert.equal(t.access, "granted");

  // Without ask (the browser has nothing to ask): the frame stays hidden.
  t.connect(false);
  refuse(false);
  assert.equal(frame.style.display, "none");
  assert.equal(t.access, null);
  t.close();
});
