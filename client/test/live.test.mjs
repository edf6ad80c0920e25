// Live query results kept from query_diff events, and resync diffs after a reconnect.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LiveResult } from "../dist/index.js";

const obj = (id, title) => ({ id, type: "task", fields: { title: { string: title } }, deleted: false });

test("unordered results: removed go, added join, ids stay ascending", () => {
  const r = new LiveResult(false);
  r.reset(["b", "d"], [obj("b", "B"), obj("d", "D")]);
  const diff = r.apply({ added: ["a", "c"], removed: ["d"], changed: ["b"], objects: [obj("a", "A"), obj("c", "C"), obj("b", "B2")] });
  assert.deepEqual(r.ids, ["a", "b", "c"]);
  assert.deepEqual([...r.objects.keys()].sort(), ["a", "b", "c"]);
  assert.equal(r.objects.get("b").fields.title, "B2");
  assert.deepEqual(diff.added, ["a", "c"]);
  assert.equal(diff.objects.length, 3);
  assert.equal(diff.resync, false);
});

test("ordered results follow the window", () => {
  const r = new LiveResult(true);
  r.reset(["x", "y"], [obj("x", "X"), obj("y", "Y")]);
  r.apply({ added: ["z"], removed: [], changed: [], window: ["z", "x"], objects: [obj("z", "Z")] });
  assert.deepEqual(r.ids, ["z", "x"]);
  assert.deepEqual([...r.objects.keys()].sort(), ["x", "z"]); // y left the window
});

test("resync after a reconnect reports what changed meanwhile", () => {
  const r = new LiveResult(false);
  r.reset(["a", "b", "c"], [obj("a", "A"), obj("b", "B"), obj("c", "C")]);
  const diff = r.resync(["a", "c", "d"], [obj("a", "A"), obj("c", "C2"), obj("d", "D")]);
  assert.deepEqual(diff.added, ["d"]);
  assert.deepEqual(diff.removed, ["b"]);
  assert.deepEqual(diff.changed, ["c"]);
  assert.deepEqual(diff.objects.map((o) => o.id).sort(), ["c", "d"]);
  assert.equal(diff.resync, true);
  assert.deepEqual(r.ids, ["a", "c", "d"]);
  assert.equal(r.resync(["a", "c", "d"], [obj("a", "A"), obj("c", "C2"), obj("d", "D")]), null);
});

test("resync without objects counts kept ids as changed", () => {
  const r = new LiveResult(false);
  r.reset(["a", "b"]);
  const diff = r.resync(["a", "b"]);
  assert.deepEqual(diff.changed, ["a", "b"]);
});
