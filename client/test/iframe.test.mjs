// The iframe transport (src/iframe.ts) in a fake page: the hidden frame,
// `connect` posted on load and every second until the shell answers, only
// the frame's own messages from the vault origin count, extra ports are
// closed, a refusal, a reload of the vault page, close().
import { test, mock, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";

const ORIGIN = "http://vault.test";

/** A fake page: document.createElement("iframe") and window's message listeners. */
function fakePage() {
  const page = { frames: [], listeners: new Set(), body: { children: [], appendChild: (el) => page.body.children.push(el) } };
  globalThis.window = {
    addEventListener: (type, l) => type === "message" && page.listeners.add(l),
    removeEventListener: (type, l) => type === "message" && page.listeners.delete(l),
  };
  globalThis.document = {
    body: page.body,
    documentElement: page.body,
    addEventListener() {},
    createElement(tag) {
      assert.equal(tag, "iframe");
      const frame = {
        style: {},
        attributes: {},
        loadListeners: [],
        removed: false,
        posted: [],
        setAttribute(k, v) {
          this.attributes[k] = v;
        },
        addEventListener(type, l) {
          if (type === "load") this.loadListeners.push(l);
        },
        remove() {
          this.removed = true;
        },
        load() {
          for (const l of this.loadListeners) l();
        },
      };
      frame.contentWindow = { postMessage: (data, origin) => frame.posted.push({ data, origin }) };
      page.frames.push(frame);
      return frame;
    },
  };
  /** The frame's window posts to the app. */
  page.fromFrame = (frame, data, { origin = ORIGIN, ports = [] } = {}) => {
    for (const l of [...page.listeners]) l({ source: frame.contentWindow, origin, data, ports });
  };
  return page;
}

function sinkLog() {
  const log = [];
  return {
    log,
    reached: () => log.push(["reached"]),
    link: (link) => log.push(["link", link]),
    refused: (state, error) => log.push(["refused", state, error]),
    dropped: (error, retry) => log.push(["dropped", error.code, retry]),
  };
}

let IframeTransport;
beforeEach(async () => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  ({ IframeTransport } = await import("../dist/iframe.js"));
});
afterEach(() => {
  mock.timers.reset();
  delete globalThis.window;
  delete globalThis.document;
});

test("without a page it refuses to start (not_a_browser)", () => {
  assert.throws(() => new IframeTransport({ baseUrl: ORIGIN, origin: ORIGIN }), (e) => e.code === "rpc.bad_request" && e.details.reason === "not_a_browser");
});

test("a hidden frame of vault.html; connect posted on load, then every second until answered with a port", async () => {
  const page = fakePage();
  const t = new IframeTransport({ baseUrl: `${ORIGIN}/base`, origin: ORIGIN });
  const sink = sinkLog();
  t.open(sink);
  t.connect(true);
  assert.equal(page.frames.length, 1);
  const frame = page.frames[0];
  assert.equal(frame.src, `${ORIGIN}/base/vault.html`);
  assert.equal(frame.style.display, "none");
  assert.equal(frame.attributes["aria-hidden"], "true");
  assert.deepEqual(page.body.children, [frame]);
  assert.equal(frame.posted.length, 0, "nothing is posted before the page loaded");
  assert.deepEqual(sink.log, []);
  frame.load();
  assert.deepEqual(sink.log, [["reached"]]);
  assert.deepEqual(frame.posted, [{ data: { echo: "connect" }, origin: ORIGIN }]);
  mock.timers.tick(2000);
  assert.equal(frame.posted.length, 3, "retried every second");
  const { port1, port2 } = new MessageChannel();
  page.fromFrame(frame, { echo: "connected", storage: "persistent" }, { ports: [port1] });
  assert.equal(sink.log.length, 2);
  assert.equal(sink.log[1][0], "link");
  mock.timers.tick(5000);
  assert.equal(frame.posted.length, 3, "no more connects once answered");
  // The link is the port: text both ways.
  const link = sink.log[1][1];
  const got = new Promise((resolve) => link.onMessage(resolve));
  port2.postMessage("from the engine");
  assert.equal(await got, "from the engine");
  const back = new Promise((resolve) => (port2.onmessage = (e) => resolve(e.data)));
  link.send("from the app");
  assert.equal(await back, "from the app");
  link.close();
  port2.close();
  t.close();
});

test("only the frame's own messages from the vault origin count; a second port is closed", () => {
  const page = fakePage();
  const t = new IframeTransport({ baseUrl: ORIGIN, origin: ORIGIN });
  const sink = sinkLog();
  t.open(sink);
  t.connect(true);
  const frame = page.frames[0];
  frame.load();
  const stray = new MessageChannel();
  page.fromFrame(frame, { echo: "connected" }, { origin: "http://evil.test", ports: [stray.port1] });
  for (const l of [...page.listeners]) l({ source: {}, origin: ORIGIN, data: { echo: "connected" }, ports: [stray.port1] });
  page.fromFrame(frame, { echo: "refused", state: "storage_blocked" }, { origin: "http://evil.test" });
  assert.deepEqual(sink.log, [["reached"]]);
  const first = new MessageChannel();
  page.fromFrame(frame, { echo: "connected" }, { ports: [first.port1] });
  let closed = false;
  page.fromFrame(frame, { echo: "connected" }, { ports: [{ close: () => (closed = true) }] });
  assert.equal(closed, true, "the second port is closed");
  assert.equal(sink.log.filter((e) => e[0] === "link").length, 1, "one link per attempt");
  first.port2.close();
  stray.port2.close();
  t.close();
});

test("a refusal: the state and error, and no more connects", () => {
  const page = fakePage();
  const t = new IframeTransport({ baseUrl: ORIGIN, origin: ORIGIN });
  const sink = sinkLog();
  t.open(sink);
  t.connect(true);
  const frame = page.frames[0];
  frame.load();
  page.fromFrame(frame, { echo: "refused", state: "storage_partitioned", error: { code: "rpc.storage_partitioned", message: "partitioned here" } });
  const [kind, state, error] = sink.log[1];
  assert.deepEqual([kind, state, error.code, error.message], ["refused", "storage_partitioned", "rpc.storage_partitioned", "partitioned here"]);
  page.fromFrame(frame, { echo: "refused", state: "storage_blocked" });
  assert.equal(sink.log.length, 2, "a second refusal for the same attempt is not heard");
  mock.timers.tick(5000);
  assert.equal(frame.posted.length, 1);
  // Without an error: one made from the state.
  t.connect(false);
  page.fromFrame(frame, { echo: "refused", state: "not_authorized" });
  assert.equal(sink.log.at(-1)[2].code, "rpc.not_authorized");
  t.close();
});

test("the vault page reloads: dropped (retry now); connect(false) asks the loaded page without a new frame", () => {
  const page = fakePage();
  const t = new IframeTransport({ baseUrl: ORIGIN, origin: ORIGIN });
  const sink = sinkLog();
  t.open(sink);
  t.connect(true);
  const frame = page.frames[0];
  frame.load();
  const { port1, port2 } = new MessageChannel();
  page.fromFrame(frame, { echo: "connected" }, { ports: [port1] });
  frame.load();
  assert.deepEqual(sink.log.at(-1), ["dropped", "rpc.disconnected", true]);
  t.connect(false);
  assert.equal(page.frames.length, 1, "the same frame");
  assert.deepEqual(sink.log.at(-1), ["reached"]);
  assert.equal(frame.posted.length, 2, "asked at once");
  // fresh: a new frame, the old one removed; its late loads are not heard.
  t.connect(true);
  assert.equal(page.frames.length, 2);
  assert.equal(frame.removed, true);
  const before = sink.log.length;
  frame.load();
  assert.equal(sink.log.length, before);
  port1.close();
  port2.close();
  t.close();
});

test("stop() ends the retries; a late answer's port is closed", () => {
  const page = fakePage();
  const t = new IframeTransport({ baseUrl: ORIGIN, origin: ORIGIN });
  const sink = sinkLog();
  t.open(sink);
  t.connect(true);
  const frame = page.frames[0];
  frame.load();
  t.stop();
  mock.timers.tick(5000);
  assert.equal(frame.posted.length, 1);
  let closed = false;
  const port = { close: () => (closed = true) };
  page.fromFrame(frame, { echo: "connected" }, { ports: [port] });
  assert.equal(closed, true);
  assert.deepEqual(sink.log, [["reached"]]);
  t.close();
});

test("close(): the frame and the window listener go", () => {
  const page = fakePage();
  const t = new IframeTransport({ baseUrl: ORIGIN, origin: ORIGIN });
  t.open(sinkLog());
  t.connect(true);
  assert.equal(page.listeners.size, 1);
  t.close();
  assert.equal(page.frames[0].removed, true);
  assert.equal(page.listeners.size, 0);
  t.connect(true);
  assert.equal(page.frames.length, 1, "a closed transport makes no frame");
});
