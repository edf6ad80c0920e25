// Value converters: plain JS ⇄ wire forms of core/src/rpc/values.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  toWire, fromWire, fieldsToWire, fieldsFromWire, ref, text, float, raw, Ref, CollabText,
  bytesToBase64, base64ToBytes, newId, isId, idFromBytes, mutation, where, query, objectFromWire, str, num, bool, refOf, textOf, strings,
} from "../dist/index.js";

test("scalars take their wire tags", () => {
  assert.equal(toWire(null), "null");
  assert.equal(toWire(undefined), "null");
  assert.deepEqual(toWire(true), { bool: true });
  assert.deepEqual(toWire("hi"), { string: "hi" });
  assert.deepEqual(toWire(5), { int: 5 });
  assert.deepEqual(toWire(-7), { int: -7 });
  assert.deepEqual(toWire(1.5), { float: 1.5 });
  assert.deepEqual(toWire(float(2)), { float: 2 });
  assert.deepEqual(toWire(NaN), { float: "NaN" });
  assert.deepEqual(toWire(Infinity), { float: "Infinity" });
  assert.deepEqual(toWire(-Infinity), { float: "-Infinity" });
  assert.deepEqual(toWire(-0), { float: -0 });
});

test("integers beyond 2^53 - 1 travel as decimal strings, never as rounded numbers", () => {
  assert.deepEqual(toWire(2 ** 53), { float: 2 ** 53 }); // an unsafe number is not claimed as an exact int
  assert.deepEqual(toWire(9007199254740991n), { int: 9007199254740991 });
  assert.deepEqual(toWire(9007199254740993n), { int: "9007199254740993" });
  assert.deepEqual(toWire(-(2n ** 63n)), { int: "-9223372036854775808" });
  assert.throws(() => toWire(2n ** 63n), RangeError);
  assert.equal(fromWire({ int: "9007199254740993" }), 9007199254740993n);
  assert.equal(fromWire({ int: "42" }), 42);
  assert.equal(fromWire({ int: 42 }), 42);
});

test("floats' string forms decode to the special numbers", () => {
  assert.ok(Number.isNaN(fromWire({ float: "NaN" })));
  assert.equal(fromWire({ float: "Infinity" }), Infinity);
  assert.equal(fromWire({ float: "-Infinity" }), -Infinity);
  assert.equal(fromWire({ float: 0.1 }), 0.1);
});

test("bytes are standard padded base64, strictly decoded", () => {
  const cases = [[[], ""], [[0x66], "Zg=="], [[0x66, 0x6f], "Zm8="], [[0x66, 0x6f, 0x6f], "Zm9v"], [[0xff, 0xfe, 0xfd, 0xfc], "//79/A=="]];
  for (const [bytes, b64] of cases) {
    assert.equal(bytesToBase64(new Uint8Array(bytes)), b64);
    assert.deepEqual([...base64ToBytes(b64)], bytes);
  }
  assert.deepEqual(toWire(new Uint8Array([1, 2, 3])), { bytes: "AQID" });
  assert.deepEqual(toWire(new Uint8Array([1, 2, 3]).buffer), { bytes: "AQID" });
  assert.deepEqual(fromWire({ bytes: "AQID" }), new Uint8Array([1, 2, 3]));
  for (const bad of ["Zg", "Zg=", "Z===", "Zh==", "Zm9v!A==", "Zg==Zg==", "Zm9=", "=Zm9"]) {
    assert.throws(() => base64ToBytes(bad), TypeError, bad);
  }
  // every length round-trips
  for (let n = 0; n < 40; n++) {
    const b = new Uint8Array(n).map((_, i) => (i * 37 + n) & 255);
    assert.deepEqual(base64ToBytes(bytesToBase64(b)), b);
    assert.equal(bytesToBase64(b), Buffer.from(b).toString("base64"));
  }
});

test("references, collaborative text, lists and maps", () => {
  assert.deepEqual(toWire(ref("0123456789abcdefghijklmnop")), { ref: { object: "0123456789abcdefghijklmnop" } });
  assert.deepEqual(toWire(ref("o", "s")), { ref: { space: "s", object: "o" } });
  assert.deepEqual(toWire(text("note")), { text: "note" });
  assert.deepEqual(toWire(["a", 1, [true]]), { list: [{ string: "a" }, { int: 1 }, { list: [{ bool: true }] }] });
  assert.deepEqual(toWire({ a: 1, b: { c: null } }), { map: { a: { int: 1 }, b: { map: { c: "null" } } } });
  const r = fromWire({ ref: { object: "o" } });
  assert.ok(r instanceof Ref);
  assert.equal(r.object, "o");
  assert.equal(r.space, undefined);
  assert.ok(r.equals(ref("o")));
  assert.ok(!r.equals(ref("o", "s")));
  const t = fromWire({ text: "hello" });
  assert.ok(t instanceof CollabText);
  assert.equal(String(t), "hello");
  assert.deepEqual(fromWire({ list: [{ string: "x" }, "null"] }), ["x", null]);
});

test("raw() passes a wire value through", () => {
  assert.deepEqual(toWire(raw({ float: 3 })), { float: 3 });
  assert.deepEqual(toWire({ x: raw({ int: "12345678901234567890".slice(0, 19) }) }), { map: { x: { int: "1234567890123456789" } } });
});

test("unsupported values are refused, not silently mangled", () => {
  assert.throws(() => toWire(new Date()), TypeError);
  assert.throws(() => toWire(new Map()), TypeError);
  assert.throws(() => toWire(() => 1), TypeError);
  assert.throws(() => toWire(Symbol("x")), TypeError);
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => toWire(cyclic), TypeError);
  assert.throws(() => fromWire({ nope: 1 }), TypeError);
  assert.throws(() => fromWire({ int: 1, float: 2 }), TypeError);
  assert.throws(() => fromWire(null), TypeError);
});

test("map keys such as __proto__ stay data, never a prototype", () => {
  const wire = JSON.parse('{"map": {"__proto__": {"string": "x"}, "a": {"int": 1}}}');
  const js = fromWire(wire);
  assert.equal(Object.getPrototypeOf(js), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(js, "__proto__").value, "x");
  assert.equal(js.a, 1);
  const fields = fieldsFromWire(JSON.parse('{"__proto__": {"bool": true}}'));
  assert.equal(Object.getOwnPropertyDescriptor(fields, "__proto__").value, true);
  const back = toWire(js);
  assert.deepEqual(Object.getOwnPropertyDescriptor(back.map, "__proto__").value, { string: "x" });
});

test("fields: undefined entries are left out; every value survives a round trip", () => {
  assert.deepEqual(fieldsToWire({ a: 1, b: undefined, c: "x" }), { a: { int: 1 }, c: { string: "x" } });
  const fields = { s: "x", n: 3, f: 2.5, b: false, nil: null, l: ["a", "b"], m: { k: 1 }, r: ref("o"), t: text("t"), big: 2n ** 60n, bytes: new Uint8Array([9]) };
  const back = fieldsFromWire(JSON.parse(JSON.stringify(fieldsToWire(fields))));
  assert.deepEqual(back, { ...fields, big: 2n ** 60n });
});

test("typed field readers", () => {
  const o = objectFromWire({ id: "x", type: "task", deleted: false, fields: { title: { string: "T" }, done: { bool: true }, order: { float: 1.5 }, list: { ref: { object: "l" } }, note: { text: "n" }, tags: { list: [{ string: "a" }, { int: 1 }] } } });
  assert.equal(o.type, "task");
  assert.equal(str(o.fields, "title"), "T");
  assert.equal(str(o.fields, "done"), undefined);
  assert.equal(bool(o.fields, "done"), true);
  assert.equal(num(o.fields, "order"), 1.5);
  assert.equal(refOf(o.fields, "list").object, "l");
  assert.equal(textOf(o.fields, "note"), "n");
  assert.deepEqual(strings(o.fields, "tags"), ["a"]);
  assert.equal(o.wire.fields.title.string, "T");
});

test("ids: 26 lower-case base32hex characters of 16 bytes, canonical", () => {
  assert.equal(idFromBytes(new Uint8Array(16)), "00000000000000000000000000");
  assert.equal(idFromBytes(new Uint8Array(16).fill(255)), "vvvvvvvvvvvvvvvvvvvvvvvvvs");
  for (let i = 0; i < 200; i++) {
    const id = newId();
    assert.match(id, /^[0-9a-v]{26}$/);
    assert.ok(isId(id), id);
  }
  assert.ok(!isId("vvvvvvvvvvvvvvvvvvvvvvvvvv")); // padding bits set: not canonical
  assert.ok(!isId("0000000000000000000000000")); // 25 characters
  assert.ok(!isId("0000000000000000000000000W"));
});

test("mutation and query builders give the wire shapes", () => {
  assert.deepEqual(mutation.create("task", { title: "x" }, "id1"), { create: { id: "id1", type: "task", fields: { title: { string: "x" } } } });
  assert.deepEqual(mutation.create("list"), { create: { type: "list", fields: {} } });
  assert.deepEqual(mutation.set("i", "done", true), { set: { id: "i", field: "done", value: { bool: true } } });
  assert.deepEqual(mutation.remove("i", "due"), { remove: { id: "i", field: "due" } });
  assert.deepEqual(mutation.delete("i"), { delete: { id: "i" } });
  assert.deepEqual(mutation.spliceText("i", "note", 1, 2, "ab"), { splice_text: { id: "i", field: "note", pos: 1, delete: 2, insert: "ab" } });
  assert.deepEqual(
    query(where.and(where.type("task"), where.eq("done", false), where.listContains("tags", "x")), { order: ["order", "-due"], limit: 5 }),
    {
      filter: { and: [{ type: "task" }, { field: { field: "done", op: "eq", value: { bool: false } } }, { list_contains: { field: "tags", value: { string: "x" } } }] },
      order: [{ field: "order" }, { field: "due", descending: true }],
      limit: 5,
    },
  );
  assert.deepEqual(query(where.all()), { filter: "all" });
  assert.deepEqual(where.refersTo("list", where.type("list")), { refers_to: { field: "list", target: { type: "list" } } });
  assert.deepEqual(where.not(where.exists("due")), { not: { exists: "due" } });
  assert.deepEqual(where.in("n", [1, "a"]), { in: { field: "n", values: [{ int: 1 }, { string: "a" }] } });
  assert.deepEqual(where.reachable("r", "parent", "incoming", 3), { reachable: { root: "r", field: "parent", direction: "incoming", max_depth: 3 } });
});
