// Fakes for the connection and API tests: a transport the test drives by
// hand, and the engine's end of a link (what the app sent, what the vault
// answers). No tests here.

/** The engine's end of one link: records what the app posts, pushes what the vault says. */
export class FakeLink {
  constructor() {
    /** Port messages as posted (JSON text: one message or a frame). */
    this.posts = [];
    /** Every message the app sent, frames unpacked, parsed. */
    this.sent = [];
    this.receive = null;
    this.closed = false;
    this.server = null;
  }
  // --- the Link interface (the app's side)
  send(text) {
    if (this.closed) throw new Error("send on a closed link");
    this.posts.push(text);
    const data = JSON.parse(text);
    const messages = Array.isArray(data) ? data : [data];
    this.sent.push(...messages);
    if (this.server) {
      for (const m of messages) {
        if (!m.request) continue;
        const [name, params] = Object.entries(m.request.method)[0];
        const answer = this.server(name, params);
        if (answer === undefined) continue; // left unanswered
        queueMicrotask(() => {
          if (this.closed) return;
          if (answer.Err) this.push({ response: { id: m.request.id, result: answer } });
          else this.respond(m.request.id, answer);
        });
      }
    }
  }
  /**
   * Answers every request from now on with `server(method, params)`: a
   * response (`{written: …}`), `{Err: RpcError}`, or undefined (no answer).
   */
  serve(server) {
    this.server = server;
    return this;
  }
  onMessage(receive) {
    this.receive = receive;
  }
  close() {
    this.closed = true;
  }
  // --- the vault's side
  /** Sends one message (or a frame, an array) to the app, as JSON text. */
  push(message) {
    if (!this.receive) throw new Error("the app did not listen on this link");
    this.receive(JSON.stringify(message));
  }
  welcome(consent = "granted", storage = "persistent") {
    this.push({ welcome: { version: 1, vault: { consent, storage } } });
  }
  /** The app's requests so far, `{id, method}`. */
  get requests() {
    return this.sent.filter((m) => m.request).map((m) => m.request);
  }
  /** The last request of `method` (its name). */
  last(method) {
    const all = this.requests.filter((r) => Object.keys(r.method)[0] === method);
    return all[all.length - 1];
  }
  respond(id, ok) {
    this.push({ response: { id, result: { Ok: ok } } });
  }
  fail(id, code, message = code, details) {
    this.push({ response: { id, result: { Err: details ? { code, message, details } : { code, message } } } });
  }
  event(event, subscription) {
    this.push({ event: subscription === undefined ? { event } : { subscription, event } });
  }
}

/** A transport the test drives: it records the connection's calls and hands over links on request. */
export class FakeTransport {
  constructor() {
    this.sink = null;
    /** "open", "connect", "connect fresh", "stop", "close", in order. */
    this.log = [];
    this.asking = false;
    this.links = [];
  }
  open(sink) {
    this.sink = sink;
    this.log.push("open");
  }
  connect(fresh) {
    this.log.push(fresh ? "connect fresh" : "connect");
    this.asking = true;
  }
  stop() {
    this.asking = false;
    this.log.push("stop");
  }
  close() {
    this.log.push("close");
    this.asking = false;
  }
  /** The attempts the connection started. */
  get attempts() {
    return this.log.filter((l) => l.startsWith("connect"));
  }
  /** The vault answers the current attempt with a new link (reached, then link). */
  answer() {
    const link = new FakeLink();
    this.links.push(link);
    this.sink.reached();
    this.asking = false;
    this.sink.link(link);
    return link;
  }
}

/** Lets queued microtasks and promise callbacks run (the outbox posts at the end of a turn). */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A promise's outcome without an unhandled rejection: `{ok, value}` or `{ok: false, error}`, once it settles. */
export function outcome(promise) {
  const o = { settled: false };
  promise.then(
    (value) => Object.assign(o, { settled: true, ok: true, value }),
    (error) => Object.assign(o, { settled: true, ok: false, error }),
  );
  return o;
}
