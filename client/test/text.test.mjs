// Text edits → splices in code points; caret transforms.
import { test } from "node:test";
import assert from "node:assert/strict";
import { diffToSplice, applySplice, transformOffset, rebaseSelection, codePointLength, utf16ToCodePoint, codePointToUtf16, spliceContext, SPLICE_CONTEXT } from "../dist/index.js";

test("typing, deleting and replacing give one splice", () => {
  assert.equal(diffToSplice("abc", "abc"), null);
  assert.deepEqual(diffToSplice("", "x"), { pos: 0, delete: 0, insert: "x" });
  assert.deepEqual(diffToSplice("hello", "hello!"), { pos: 5, delete: 0, insert: "!" });
  assert.deepEqual(diffToSplice("hello", "hllo"), { pos: 1, delete: 1, insert: "" });
  assert.deepEqual(diffToSplice("hello world", "hello there world"), { pos: 6, delete: 0, insert: "there " });
  assert.deepEqual(diffToSplice("the cat sat", "the dog sat"), { pos: 4, delete: 3, insert: "dog" });
  assert.deepEqual(diffToSplice("abc", ""), { pos: 0, delete: 3, insert: "" });
});

test("the caret settles ambiguous edits", () => {
  // typing "a" at the start of "aa": the caret is at 1 afterwards
  assert.deepEqual(diffToSplice("aa", "aaa", 1), { pos: 0, delete: 0, insert: "a" });
  assert.deepEqual(diffToSplice("aa", "aaa", 2), { pos: 1, delete: 0, insert: "a" });
  assert.deepEqual(diffToSplice("aa", "aaa"), { pos: 2, delete: 0, insert: "a" });
  // backspace of the first of "ll" in "hello"
  assert.deepEqual(diffToSplice("hello", "helo", 2), { pos: 2, delete: 1, insert: "" });
  // pasting "ab" inside "abab" after the first "ab"
  assert.deepEqual(diffToSplice("abab", "ababab", 4), { pos: 2, delete: 0, insert: "ab" });
  // a caret that does not fit the edit falls back to prefix / suffix
  assert.deepEqual(diffToSplice("abc", "abXc", 0), { pos: 2, delete: 0, insert: "X" });
});

test("positions count code points, not UTF-16 units", () => {
  assert.equal(codePointLength("a😀b"), 3);
  assert.equal("a😀b".length, 4);
  assert.deepEqual(diffToSplice("😀😀", "😀x😀"), { pos: 1, delete: 0, insert: "x" });
  assert.deepEqual(diffToSplice("a😀b", "ab"), { pos: 1, delete: 1, insert: "" });
  // two emoji sharing their high surrogate: the diff never splits a pair
  assert.deepEqual(diffToSplice("😀", "😁"), { pos: 0, delete: 1, insert: "😁" });
  assert.deepEqual(diffToSplice("x😀", "x😀y", 4), { pos: 2, delete: 0, insert: "y" });
  assert.equal(utf16ToCodePoint("a😀b", 3), 2);
  assert.equal(codePointToUtf16("a😀b", 2), 3);
  assert.equal(codePointToUtf16("a😀b", 99), 4);
});

test("applying the splice of a diff gives the new text (exhaustive over small edits)", () => {
  const alphabet = ["a", "b", "😀"];
  const strings = [""];
  for (let len = 1; len <= 3; len++) {
    const next = [];
    for (const s of strings.filter((s) => codePointLength(s) === len - 1)) for (const c of alphabet) next.push(s + c);
    strings.push(...next);
  }
  let n = 0;
  for (const before of strings) {
    for (const after of strings) {
      const s = diffToSplice(before, after);
      assert.equal(s === null ? before : applySplice(before, s), after, `${before} → ${after}`);
      for (let caret = 0; caret <= after.length; caret++) {
        const c = diffToSplice(before, after, caret);
        assert.equal(c === null ? before : applySplice(before, c), after, `${before} → ${after} caret ${caret}`);
        n++;
      }
    }
  }
  assert.ok(n > 1000);
});

test("applySplice refuses a splice outside the text", () => {
  assert.throws(() => applySplice("ab", { pos: 2, delete: 1, insert: "" }), (e) => e.name === "EchoError" && e.code === "rpc.bad_request" && e.details.reason === "out_of_range");
  assert.equal(applySplice("a😀b", { pos: 1, delete: 1, insert: "x" }), "axb");
});

test("a caret moves across someone else's splice", () => {
  const ins = { pos: 2, delete: 0, insert: "XY" };
  assert.equal(transformOffset(1, ins), 1);
  assert.equal(transformOffset(2, ins), 2);
  assert.equal(transformOffset(2, ins, true), 4);
  assert.equal(transformOffset(3, ins), 5);
  const del = { pos: 2, delete: 3, insert: "" };
  assert.equal(transformOffset(2, del), 2);
  assert.equal(transformOffset(4, del), 2);
  assert.equal(transformOffset(5, del), 2);
  assert.equal(transformOffset(7, del), 4);
  const rep = { pos: 1, delete: 2, insert: "😀" };
  assert.equal(transformOffset(2, rep), 2);
  assert.equal(transformOffset(4, rep), 3);
});

test("rebaseSelection keeps the caret by its text when a remote edit lands", () => {
  // someone typed before the caret
  assert.deepEqual(rebaseSelection("hello world", "oh hello world", 6, 6), { start: 9, end: 9 });
  // someone typed after the caret
  assert.deepEqual(rebaseSelection("hello world", "hello world!", 5, 5), { start: 5, end: 5 });
  // a selection around a remote insertion grows with it
  assert.deepEqual(rebaseSelection("abcdef", "abcXdef", 1, 5), { start: 1, end: 6 });
  // the selected text was deleted remotely
  assert.deepEqual(rebaseSelection("abcdef", "af", 2, 4), { start: 1, end: 1 });
  // UTF-16 offsets in and out, with astral characters before the caret
  assert.deepEqual(rebaseSelection("ab", "😀ab", 1, 1), { start: 3, end: 3 });
  assert.deepEqual(rebaseSelection("ab", "ab", 1, 2), { start: 1, end: 2 });
});

test("a splice's context is the characters just before it, at most SPLICE_CONTEXT code points", () => {
  assert.equal(spliceContext("2 litres", 8), "2 litres");
  assert.equal(spliceContext("2 litres", 0), "");
  assert.equal(spliceContext("h😀llo", 2), "h😀", "code points, not UTF-16 units");
  const long = "x".repeat(100) + "abc";
  assert.equal(spliceContext(long, 103), long.slice(103 - SPLICE_CONTEXT));
});

