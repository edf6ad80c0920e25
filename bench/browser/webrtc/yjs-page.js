// The page of the Yjs + y-webrtc anchor of the WebRTC benchmark (driven by webrtc/yjs.mjs).
// yjs 13.6.33 + y-webrtc 10.3.0, in memory (no persistence): one Y.Doc per page with a top-level
// Y.Map 'objects' (id -> Y.Map of the 6 fields, as src/yjs.js) and a Y.Text 'text'.
// The page is opened as yjs.html?signaling=ws://127.0.0.1:PORT&room=NAME and exposes `window.bench`.
// Every time is a wall-clock time in ms (performance.timeOrigin + performance.now()), comparable
// between the two browsers because both run on this machine.
import * as Y from 'yjs';
import { WebrtcProvider } from 'y-webrtc';
import Peer from 'simple-peer/simplepeer.min.js'; // the very module y-webrtc creates its peers from
import { makeObject } from '../src/data.js';

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const params = new URLSearchParams(location.search);
const SIGNALING = params.get('signaling');
const ROOM = params.get('room');

// ---------------------------------------------------------------------------------------------------
// BENCH-ONLY HARNESS CODE — a chunking shim, not part of y-webrtc.
//
// y-webrtc sends each sync message as one data-channel message. A full-state sync step 2 is ~1.8 MB
// for 10,000 objects, over Chromium's data-channel message limit (256 KiB); `send` then fails and
// y-webrtc swallows the error, so the peer never syncs (yjs/y-webrtc#20, #61). Without this shim stock
// y-webrtc cannot take the sync figures at all.
//
// The shim patches simple-peer's prototype (the module y-webrtc imports). A message of at most 16 KiB
// goes to the data channel untouched, as stock (so the edit and trace figures run stock y-webrtc's path).
// A bigger one goes out as 16 KiB pieces, each behind a 1-byte header, MORE (0xFE) or LAST (0xFF): bytes
// that never begin a y-webrtc message (its first byte is the message type, a varuint in 0..4). The
// receiving side collects pieces until LAST and hands the whole message to simple-peer as if it had
// arrived in one piece. The channel is ordered and reliable (simple-peer's default), so pieces arrive in
// order. Sending goes through a per-peer queue that stops feeding the channel while more than HIGH_WATER
// bytes are buffered in it (Chromium's send throws once 16 MiB are queued, and a 100,000-object sync step
// is bigger than that) and resumes on `bufferedamountlow`; when nothing is queued a message is passed to
// the channel synchronously, as stock, and messages never overtake each other.
// It also counts messages and bytes (y-webrtc messages, before framing) for the notes.
const CHUNK = 16 * 1024;
const HIGH_WATER = 4 * 1024 * 1024;
const MORE = 0xfe;
const LAST = 0xff;
// firstSentAt: this page's first message (y-webrtc's sync step 1, sent once the data channel opened);
// lastChunked: when the pieces of the last chunked message received arrived (first, last), and its size.
const net = (window.__net = { sentMsgs: 0, sentBytes: 0, sentFrames: 0, recvMsgs: 0, recvBytes: 0, lastAt: 0, firstSentAt: 0, lastChunked: null });

const stockSend = Peer.prototype.send;
const stockOnChannelMessage = Peer.prototype._onChannelMessage;

/** Feeds `peer`'s queued data-channel messages to its channel while little is buffered in it. */
const pump = (peer) => {
  const q = peer.__queue;
  const ch = peer._channel;
  if (peer.destroyed || !ch || ch.readyState !== 'open') {
    q.length = 0; // as stock: nothing goes out on a closed peer
    return;
  }
  let i = 0;
  while (i < q.length && ch.bufferedAmount < HIGH_WATER) {
    stockSend.call(peer, q[i++]);
    net.sentFrames++;
  }
  q.splice(0, i);
  if (q.length && !peer.__waiting) {
    peer.__waiting = true;
    ch.addEventListener('bufferedamountlow', () => {
      peer.__waiting = false;
      pump(peer);
    }, { once: true });
  }
};

/** @param {Uint8Array} data  y-webrtc only ever sends Uint8Arrays */
Peer.prototype.send = function (data) {
  net.sentMsgs++;
  net.sentBytes += data.byteLength;
  net.lastAt = now();
  net.firstSentAt ||= net.lastAt;
  const q = (this.__queue ??= []);
  if (data.byteLength <= CHUNK && !q.length) {
    stockSend.call(this, data); // stock, synchronously (and it throws as stock does)
    net.sentFrames++;
    return;
  }
  if (this.destroyed) return stockSend.call(this, data); // throws as stock does
  if (data.byteLength <= CHUNK) q.push(data);
  else {
    for (let off = 0; off < data.byteLength; off += CHUNK) {
      const piece = data.subarray(off, off + CHUNK);
      const f = new Uint8Array(piece.length + 1);
      f[0] = off + CHUNK >= data.byteLength ? LAST : MORE;
      f.set(piece, 1);
      q.push(f);
    }
  }
  pump(this);
};

/** @param {MessageEvent<ArrayBuffer>} event  simple-peer sets binaryType = 'arraybuffer' */
Peer.prototype._onChannelMessage = function (event) {
  const f = new Uint8Array(event.data);
  net.lastAt = now();
  if (f[0] !== MORE && f[0] !== LAST) {
    net.recvMsgs++;
    net.recvBytes += f.length;
    return stockOnChannelMessage.call(this, event); // a whole y-webrtc message: stock
  }
  if (!this.__parts?.length) this.__partsFrom = net.lastAt;
  (this.__parts ??= []).push(f.subarray(1));
  if (f[0] === MORE) return;
  const whole = new Uint8Array(this.__parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of this.__parts) {
    whole.set(p, off);
    off += p.length;
  }
  this.__parts = [];
  net.recvMsgs++;
  net.recvBytes += whole.length;
  net.lastChunked = { firstFrameAt: this.__partsFrom, lastFrameAt: now(), bytes: whole.length };
  // An exactly sized ArrayBuffer, as the channel delivers: simple-peer wraps it in a Buffer without copying.
  stockOnChannelMessage.call(this, { data: whole.buffer });
};
// ------------------------------------------------------------------------ end of the chunking shim

const doc = new Y.Doc();
const objects = doc.getMap('objects');
const text = doc.getText('text');
const FIELDS = ['type', 'title', 'done', 'priority', 'tags', 'ref'];
let provider = null;

/** Resolves with `check()`'s first truthy value, or null after `timeoutMs`; `check` runs on `subscribe`'s events. */
const when = (subscribe, check, timeoutMs) =>
  new Promise((resolve) => {
    let unsubscribe = () => {};
    const finish = (v) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    unsubscribe = subscribe(() => {
      const v = check();
      if (v) finish(v);
    });
    const v = check();
    if (v) finish(v);
  });

const trace = async (edits) => {
  const res = await fetch(`/trace/automerge-paper?edits=${edits}`);
  if (!res.ok) throw new Error(`trace: ${res.status} ${await res.text()}`);
  return res.json();
};

window.bench = {
  /** A: writes objects 0..n-1 (1,000 per transaction). */
  fill(n) {
    for (let i = 0; i < n; i += 1000) {
      doc.transact(() => {
        for (let k = i; k < Math.min(n, i + 1000); k++) {
          const o = makeObject(k, n);
          objects.set(o.id, new Y.Map(FIELDS.map((f) => [f, o[f]])));
        }
      });
    }
    return objects.size;
  },

  /** Starts the provider; resolves once the signaling server connection is up (false after 10 s). */
  async connect() {
    provider = new WebrtcProvider(ROOM, doc, { signaling: [SIGNALING] });
    for (const t0 = Date.now(); Date.now() - t0 < 10_000; await sleep(10)) {
      if (provider.signalingConns.every((c) => c.connected)) return true;
    }
    return false;
  },

  /**
   * B: the sync figure. Watches `objects`, then starts the provider; resolves with
   * { start: just before `new WebrtcProvider`, end: when objects.size first equals n (null on timeout) }.
   */
  async syncFrom(n, timeoutMs) {
    const end = when(
      (f) => (objects.observe(f), () => objects.unobserve(f)),
      () => objects.size === n && now(),
      timeoutMs,
    );
    const start = now();
    provider = new WebrtcProvider(ROOM, doc, { signaling: [SIGNALING] });
    return { start, end: await end };
  },

  /** Whom this page talks to: WebRTC peers (and their state), BroadcastChannel peers, traffic so far. */
  peers() {
    const room = provider?.room;
    const conns = room ? [...room.webrtcConns.values()] : [];
    return {
      webrtc: conns.length,
      connected: conns.filter((c) => c.connected).length,
      synced: conns.filter((c) => c.synced).length,
      bc: room ? room.bcConns.size : 0,
      queued: conns.reduce((s, c) => s + (c.peer.__queue?.length ?? 0) + (c.peer._channel?.bufferedAmount ?? 0), 0),
      net: { ...net },
    };
  },

  /** Resolves true once nothing was sent or received for `quietMs` and nothing is queued (false after timeoutMs). */
  async quiet(quietMs, timeoutMs) {
    for (const t0 = Date.now(); Date.now() - t0 < timeoutMs; await sleep(20)) {
      if (now() - net.lastAt >= quietMs && this.peers().queued === 0) return true;
    }
    return false;
  },

  /** B: records, for each title that object `id` takes, when B's observeDeep on `objects` first saw it. */
  watchEdits(id) {
    const target = objects.get(id);
    const seen = (window.__seen = new Map());
    objects.observeDeep((events) => {
      const t = now();
      for (const e of events) {
        if (e.target === target && e.keysChanged.has('title')) {
          const v = target.get('title');
          if (!seen.has(v)) seen.set(v, t);
        }
      }
    });
    return !!target;
  },
  seenEdits() {
    return [...window.__seen];
  },

  /** A: `count` single-field updates of object `id`, each its own transaction, `gapMs` apart; their times. */
  async edit(id, count, gapMs) {
    const target = objects.get(id);
    const times = [];
    for (let k = 1; k <= count; k++) {
      const t = now();
      doc.transact(() => target.set('title', 'v' + k));
      times.push(t);
      await sleep(gapMs);
    }
    return times;
  },

  /** A and B: fetch the first `edits` edits of the trace from the page's server; how many there are. */
  async traceLoad(edits) {
    window.__trace = await trace(edits);
    return window.__trace.patches.length;
  },
  /** A: writes the trace's start content (one transaction). */
  traceStart() {
    if (window.__trace.startContent) doc.transact(() => text.insert(0, window.__trace.startContent));
  },
  /**
   * B: starts watching for B's text (checked on each of its observe events) to equal `which` ('start' |
   * 'expected'); `textDone()` then resolves with when it first did (null after `timeoutMs`).
   */
  watchText(which, timeoutMs) {
    const want = which === 'start' ? window.__trace.startContent : window.__trace.expected;
    window.__textDone = when(
      (f) => (text.observe(f), () => text.unobserve(f)),
      () => text.length === want.length && text.toString() === want && now(),
      timeoutMs,
    );
  },
  textDone() {
    return window.__textDone;
  },
  /** A: applies the trace's edits to the text as fast as possible, one transaction each (delete, then insert). */
  type() {
    const start = now();
    for (const [pos, del, ins] of window.__trace.patches) {
      doc.transact(() => {
        if (del) text.delete(pos, del);
        if (ins) text.insert(pos, ins);
      });
    }
    const last = now();
    return { start, last, correct: text.toString() === window.__trace.expected };
  },
};
