// NoteSync: local input → splices (code points), remote text → textarea without losing the caret,
// remote states held back while local splices are unacknowledged.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applySplice } from "@echo/client";
import { NoteSync } from "../.test-build/demo-app/src/note.js";

/** A textarea's value and selection, as an input event leaves them. */
class Field {
  value = "";
  selectionStart = 0;
  selectionEnd = 0;
  setSelectionRange(s, e) {
    this.selectionStart = s;
    this.selectionEnd = e;
  }
  type(at, insert, deleteCount = 0) {
    this.value = this.value.slice(0, at) + insert + this.value.slice(at + deleteCount);
    this.setSelectionRange(at + insert.length, at + insert.length);
  }
}

/** The vault's copy of the field, with splices acknowledged when the test says so. */
function vaultText(initial) {
  const state = { text: initial, inflight: [], reads: [] };
  const hooks = {
    splice: (s, context) => new Promise((resolve, reject) => state.inflight.push({ s, context, resolve, reject })),
    read: () => new Promise((resolve) => state.reads.push(resolve)),
    focused: () => true,
  };
  const ackAll = async () => {
    while (state.inflight.length) {
      const { s, resolve } = state.inflight.shift();
      state.text = applySplice(state.text, s);
      resolve();
    }
    await new Promise((r) => setImmediate(r));
  };
  const answerReads = async () => {
    while (state.reads.length) state.reads.shift()(state.text);
    await new Promise((r) => setImmediate(r));
  };
  return { state, hooks, ackAll, answerReads };
}

test("each input event sends the splice of that edit", async () => {
  const v = vaultText("hello");
  const f = new Field();
  const sync = new NoteSync(f, "hello", v.hooks);
  assert.equal(f.value, "hello");
  f.type(5, " world");
  sync.input();
  f.type(0, "Oh, ");
  sync.input();
  assert.deepEqual(v.state.inflight.map((i) => i.s), [{ pos: 5, delete: 0, insert: " world" }, { pos: 0, delete: 0, insert: "Oh, " }]);
  assert.equal(sync.pendingCount, 2);
  await v.ackAll();
  assert.equal(v.state.text, "Oh, hello world");
  assert.equal(sync.pendingCount, 0);
  // an input event without a change sends nothing
  sync.input();
  assert.equal(v.state.inflight.length, 0);
});

test("splice positions are code points even after emoji", async () => {
  const v = vaultText("😀😀");
  const f = new Field();
  const sync = new NoteSync(f, "😀😀", v.hooks);
  f.type(2, "x"); // UTF-16 offset 2 = after the first emoji
  sync.input();
  assert.deepEqual(v.state.inflight[0].s, { pos: 1, delete: 0, insert: "x" });
  await v.ackAll();
  assert.equal(v.state.text, "😀x😀");
});

test("a remote change lands with the caret kept by its text", () => {
  const v = vaultText("hello world");
  const f = new Field();
  const sync = new NoteSync(f, "hello world", v.hooks);
  f.setSelectionRange(6, 6); // before "world"
  sync.remote("well, hello world");
  assert.equal(f.value, "well, hello world");
  assert.deepEqual([f.selectionStart, f.selectionEnd], [12, 12]);
  sync.remote("well, hello world!");
  assert.deepEqual([f.selectionStart, f.selectionEnd], [12, 12]);
});

test("remote states are held back while own splices are in flight, then the note is read afresh", async () => {
  const v = vaultText("ab");
  const f = new Field();
  const sync = new NoteSync(f, "ab", v.hooks);
  f.setSelectionRange(2, 2);
  f.type(2, "c");
  sync.input();
  f.type(3, "d");
  sync.input();
  // The vault applies both splices, then someone else inserts "X" at the start; the diffs
  // (each a whole state) reach us before our acknowledgements.
  for (const { s } of v.state.inflight) v.state.text = applySplice(v.state.text, s);
  const acks = v.state.inflight.splice(0);
  sync.remote("abc"); // stale: lacks our "d"
  assert.equal(f.value, "abcd", "a stale remote state must not clobber local typing");
  v.state.text = "X" + v.state.text;
  sync.remote("Xabcd");
  assert.equal(f.value, "abcd", "held back while splices are unacknowledged");
  for (const a of acks) a.resolve();
  await new Promise((r) => setImmediate(r));
  assert.equal(v.state.reads.length, 1, "one read once all splices landed");
  await v.answerReads();
  assert.equal(f.value, "Xabcd");
  assert.deepEqual([f.selectionStart, f.selectionEnd], [5, 5], "the caret stays after the typed text");
});

test("edits concurrent with a remote edit converge on the vault's text", async () => {
  const v = vaultText("ab");
  const f = new Field();
  const sync = new NoteSync(f, "ab", v.hooks);
  f.type(2, "c");
  sync.input();
  // someone else's splice lands in the vault before ours (positions are the vault's, not ours)
  v.state.text = "X" + v.state.text;
  sync.remote("Xab");
  await v.ackAll();
  await v.answerReads();
  assert.equal(f.value, v.state.text);
  assert.equal([...f.value].sort().join(""), "Xabc", "no character is lost");
});

test("a read answered after more typing is dropped and repeated", async () => {
  const v = vaultText("");
  const f = new Field();
  const sync = new NoteSync(f, "", v.hooks);
  f.type(0, "a");
  sync.input();
  sync.remote("");
  await v.ackAll(); // → read #1 issued
  assert.equal(v.state.reads.length, 1);
  f.type(1, "b");
  sync.input(); // typed while the read is out
  await v.answerReads(); // read #1 answers "a": older than the textarea, dropped
  assert.equal(f.value, "ab");
  await v.ackAll(); // "b" lands → read #2
  await v.answerReads();
  assert.equal(f.value, "ab");
  assert.equal(v.state.text, "ab");
});

test("a failed splice re-reads the note from the vault", async () => {
  const v = vaultText("abc");
  const f = new Field();
  const errors = [];
  const sync = new NoteSync(f, "abc", { ...v.hooks, onError: (e) => errors.push(e) });
  f.type(3, "!");
  sync.input();
  v.state.inflight.shift().reject(new Error("model.text_range"));
  await new Promise((r) => setImmediate(r));
  assert.equal(errors.length, 1);
  assert.equal(v.state.reads.length, 1);
  await v.answerReads();
  assert.equal(f.value, "abc");
});

test("IME composition: nothing is sent until it ends", () => {
  const v = vaultText("");
  const f = new Field();
  const sync = new NoteSync(f, "", v.hooks);
  sync.compositionStart();
  f.type(0, "ｎ");
  sync.input();
  f.value = "に";
  sync.input();
  assert.equal(v.state.inflight.length, 0);
  sync.remote("zzz");
  assert.equal(f.value, "に", "no remote text during composition");
  f.setSelectionRange(1, 1);
  sync.compositionEnd();
  assert.deepEqual(v.state.inflight.map((i) => i.s), [{ pos: 0, delete: 0, insert: "に" }]);
});

test("each splice carries the characters before it as this field showed them", async () => {
  const field = new Field();
  const v = vaultText("2 litres");
  const sync = new NoteSync(field, "2 litres", v.hooks);
  field.setSelectionRange(8, 8);
  field.type(8, ",");
  sync.input();
  field.type(0, "O");
  sync.input();
  assert.deepEqual(
    v.state.inflight.map((i) => [i.s.pos, i.context]),
    [
      [8, "2 litres"],
      [0, ""],
    ],
  );
  await v.ackAll();
  assert.equal(v.state.text, "O2 litres,");
});

