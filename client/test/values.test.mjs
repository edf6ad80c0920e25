// Value converters: plain JS ⇄ wire forms of core/src/rpc/values.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  toWire, fromWire, fieldsToWire, fieldsFromWire, ref, text, float, raw, Ref, CollabText, FloatValue, EchoError, LIMITS, RPC_ERROR_CODES, CLIENT_ERROR_CODES,
  bytesToBase64, base64ToBytes, newId, isId, idFromBytes, mutation, where, query, objectFromWire, str, num, bool, refOf, textOf, strings,
} from "../dist/index.js";
import { checkMessageText } from "../dist/values.js";

/** An assert.throws matcher: an EchoError of `code` whose details match `details`. */
function echoError(code, details = {}) {
  return (e) => {
    assert.ok(e instanceof EchoError, `not an EchoError: ${e}`);
    assert.equal(e.code, code, e.message);
    for (const [k, v] of Object.entries(details)) assert.equal(e.details[k], v, `details.${k} of: ${e.message}`);
    if (details.path) assert.ok(e.message.startsWith(`${details.path}: `), e.message);
    return true;
  };
}

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
  assert.deepEqual(toWire(-0), { float: "-0" });
  assert.equal(JSON.stringify(toWire(-0)), '{"float":"-0"}', "-0 survives JSON.stringify");
  assert.deepEqual(toWire(float(-0)), { float: "-0" });
  assert.deepEqual(toWire(0), { int: 0 });
  assert.deepEqual(toWire(float(0)), { float: 0 });
});

test("-0 round-trips both ways: read as -0, written as a float -0", () => {
  for (const wire of [{ float: "-0" }, { float: -0 }, JSON.parse('{"float": -0.0}')]) {
    const x = fromWire(wire);
    assert.equal(typeof x, "number");
    assert.ok(Object.is(x, -0), JSON.stringify(wire));
    assert.deepEqual(toWire(x), { float: "-0" });
  }
  // Through JSON text, as the port carries it, in a whole object.
  const o = objectFromWire(JSON.parse('{"id":"x","type":"t","deleted":false,"fields":{"z":{"float":"-0"},"l":{"list":[{"float":"-0"}]}}}'));
  assert.ok(Object.is(o.fields.z, -0));
  assert.ok(Object.is(o.fields.l[0], -0));
  const sent = JSON.parse(JSON.stringify(fieldsToWire(o.fields)));
  assert.deepEqual(sent, o.wire.fields);
  assert.ok(Object.is(fromWire(sent.z), -0));
});

test("integral floats read back as float(n) and are written back as floats; ints stay ints", () => {
  const x = fromWire({ float: 2 });
  assert.ok(x instanceof FloatValue);
  assert.deepEqual(x, float(2));
  assert.equal(x.value, 2);
  assert.equal(+x, 2);
  assert.equal(x + 1, 3);
  assert.ok(x < 2.5 && x > 1);
  assert.equal(x.toFixed(1), "2.0");
  assert.equal(String(x), "2");
  assert.equal(`${x}`, "2");
  assert.equal(JSON.stringify({ x }), '{"x":2}');
  assert.deepEqual(toWire(x), { float: 2 });
  // A structured clone turns a FloatValue into a Number object: still a float.
  assert.deepEqual(toWire(structuredClone(x)), { float: 2 });
  assert.deepEqual(toWire(new Number(7)), { float: 7 });
  for (const n of [0, -7, 9007199254740991]) {
    assert.ok(fromWire({ float: n }) instanceof FloatValue, String(n));
    assert.deepEqual(toWire(fromWire({ float: n })), { float: n });
  }
  // Floats that a plain number already writes back as floats stay numbers.
  for (const n of [2.5, -0.1, 2 ** 53, 1e300]) {
    assert.equal(fromWire({ float: n }), n);
    assert.deepEqual(toWire(fromWire({ float: n })), { float: n });
  }
  // Ints stay ints, as plain numbers (or bigint beyond 2^53 - 1).
  for (const n of [0, 2, -7, 9007199254740991]) {
    assert.equal(fromWire({ int: n }), n);
    assert.deepEqual(toWire(fromWire({ int: n })), { int: n });
  }
  assert.deepEqual(toWire(fromWire({ int: "9223372036854775807" })), { int: "9223372036854775807" });
  // num() gives the primitive whatever the kind.
  const fields = fieldsFromWire({ f: { float: 2 }, i: { int: 2 }, h: { float: 2.5 } });
  assert.equal(num(fields, "f"), 2);
  assert.equal(num(fields, "i"), 2);
  assert.equal(num(fields, "h"), 2.5);
});

test("an object read and written back unchanged sends exactly what was read", () => {
  const wireText =
    '{"id":"x","type":"t","deleted":false,"fields":{' +
    '"f":{"float":2},"z":{"float":"-0"},"i":{"int":2},"h":{"float":2.5},"n":{"float":"NaN"},"big":{"int":"-9223372036854775808"},' +
    '"s":{"string":"x"},"b":{"bool":false},"nil":"null","by":{"bytes":"AQI="},"r":{"ref":{"object":"o"}},"t":{"text":"t"},' +
    '"m":{"map":{"f":{"float":3},"l":{"list":[{"float":0},{"int":0},{"float":"-0"},{"map":{}}]}}}}}';
  const o = objectFromWire(JSON.parse(wireText));
  const back = JSON.parse(JSON.stringify(fieldsToWire(o.fields)));
  assert.deepEqual(back, JSON.parse(wireText).fields);
  // …also after copying the way apps do (spread, array methods).
  const copy = { ...o.fields, m: { ...o.fields.m, l: o.fields.m.l.map((v) => v) } };
  assert.deepEqual(JSON.parse(JSON.stringify(fieldsToWire(copy))), JSON.parse(wireText).fields);
  // Builders that take values keep the kind too.
  assert.deepEqual(mutation.set("x", "f", o.fields.f), { set: { id: "x", field: "f", value: { float: 2 } } });
  assert.deepEqual(where.eq("z", o.fields.z), { field: { field: "z", op: "eq", value: { float: "-0" } } });
});

test("integers beyond 2^53 - 1 travel as decimal strings, never as rounded numbers", () => {
  assert.deepEqual(toWire(2 ** 53), { float: 2 ** 53 }); // an unsafe number is not claimed as an exact int
  assert.deepEqual(toWire(9007199254740991n), { int: 9007199254740991 });
  assert.deepEqual(toWire(9007199254740993n), { int: "9007199254740993" });
  assert.deepEqual(toWire(-(2n ** 63n)), { int: "-9223372036854775808" });
  assert.throws(() => toWire(2n ** 63n), echoError("rpc.bad_request", { reason: "out_of_range", path: "value" }));
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
    assert.throws(() => base64ToBytes(bad), echoError("rpc.bad_request", { reason: "malformed", path: "bytes" }), bad);
  }
  assert.throws(() => fromWire({ map: { b: { bytes: "Zg" } } }, "fields.m"), echoError("rpc.bad_request", { reason: "malformed", path: "fields.m.b" }));
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

test("unsupported values are refused with an EchoError naming the field, not silently mangled", () => {
  class Point {
    constructor() {
      this.x = 1;
    }
  }
  const kinds = [
    [new Date(0), "Date", /getTime|toISOString/],
    [new Map([["a", 1]]), "Map", /Object\.fromEntries/],
    [new Set([1]), "Set", /\[\.\.\.set\]/],
    [new WeakMap(), "WeakMap", /plain object/],
    [/x/, "RegExp", /plain object/],
    [new Int16Array(2), "Int16Array", /Uint8Array/],
    [new DataView(new ArrayBuffer(2)), "DataView", /Uint8Array/],
    [new Point(), "Point", /plain object/],
    [Promise.resolve(1), "Promise", /plain object/],
    [new String("s"), "String", /plain object/],
    [() => 1, "function", /cannot be stored/],
    [Symbol("x"), "symbol", /cannot be stored/],
  ];
  for (const [value, type, hint] of kinds) {
    for (const [make, path] of [
      [(v) => toWire(v), "value"],
      [(v) => fieldsToWire({ tags: ["a", "b", "c", v] }), "fields.tags[3]"],
      [(v) => fieldsToWire({ meta: { "the when": v } }), 'fields.meta["the when"]'],
      [(v) => mutation.set("i", "due", v), "fields.due"],
      [(v) => where.eq("due", v), 'where.eq("due")'],
      [(v) => where.in("due", [1, v]), 'where.in("due")[1]'],
      [(v) => where.listContains("due", v), 'where.listContains("due")'],
      [(v) => mutation.create("t", { a: { b: [v] } }), "fields.a.b[0]"],
    ]) {
      assert.throws(() => make(value), echoError("rpc.bad_request", { reason: "unsupported_type", type, path }), `${type} at ${path}`);
      assert.throws(() => make(value), (e) => hint.test(e.message), `hint for ${type}: ${hint}`);
    }
  }
  // bigint beyond i64, on both sides.
  for (const big of [2n ** 63n, -(2n ** 63n) - 1n]) {
    assert.throws(() => fieldsToWire({ n: [big] }), echoError("rpc.bad_request", { reason: "out_of_range", path: "fields.n[0]" }));
  }
  // Cycles: named where the value comes back to itself.
  const cyclic = { a: [1] };
  cyclic.a.push(cyclic);
  assert.throws(() => fieldsToWire({ c: cyclic }), echoError("rpc.bad_request", { reason: "cycle", path: "fields.c.a[1]" }));
  const list = [];
  list.push(list);
  assert.throws(() => toWire(list), echoError("rpc.bad_request", { reason: "cycle", path: "value[0]" }));
  // The same object twice (not a cycle) is fine.
  const shared = { k: 1 };
  assert.deepEqual(toWire([shared, shared]), { list: [{ map: { k: { int: 1 } } }, { map: { k: { int: 1 } } }] });
  // Holes in arrays are nulls, not JSON's bare null (which the vault refuses).
  assert.deepEqual(JSON.parse(JSON.stringify(toWire([1, , 3]))), { list: [{ int: 1 }, "null", { int: 3 }] });
  // Malformed wire values.
  assert.throws(() => fromWire({ nope: 1 }), echoError("rpc.bad_request", { reason: "malformed", path: "value" }));
  assert.throws(() => fromWire({ int: 1, float: 2 }), echoError("rpc.bad_request", { reason: "malformed" }));
  assert.throws(() => fromWire(null), echoError("rpc.bad_request", { reason: "malformed" }));
  assert.throws(() => fromWire({ int: "x" }), echoError("rpc.bad_request", { reason: "malformed" }));
  assert.throws(() => fromWire({ float: "-0.0" }), echoError("rpc.bad_request", { reason: "malformed" }));
  assert.throws(() => fieldsFromWire({ l: { list: [{ bool: 1 }] } }), echoError("rpc.bad_request", { reason: "malformed", path: "fields.l[0]" }));
  assert.throws(() => idFromBytes(new Uint8Array(3)), echoError("rpc.bad_request", { reason: "malformed" }));
  // Every code the converters use is one of the protocol's, and listed as a client code.
  for (const code of ["rpc.bad_request", "rpc.too_deep"]) {
    assert.ok(RPC_ERROR_CODES.includes(code), code);
    assert.ok(Object.values(CLIENT_ERROR_CODES).includes(code), code);
  }
});

test("lone surrogates are refused naming the string, before any JSON parser sees them", () => {
  for (const bad of ["\uD800", "a\uDC00b", "x\uDBFFy", "end\uD83D"]) {
    assert.throws(() => fieldsToWire({ tags: ["ok", bad] }), echoError("rpc.bad_request", { reason: "lone_surrogate", path: "fields.tags[1]" }), JSON.stringify(bad));
    assert.throws(() => toWire({ [bad]: 1 }, "fields.m"), echoError("rpc.bad_request", { reason: "lone_surrogate" }));
    assert.throws(() => fieldsToWire({ [`k${bad}`]: 1 }), echoError("rpc.bad_request", { reason: "lone_surrogate" }));
    assert.throws(() => fieldsToWire({ note: text(bad) }), echoError("rpc.bad_request", { reason: "lone_surrogate", path: "fields.note" }));
    assert.throws(() => where.eq("title", bad), echoError("rpc.bad_request", { reason: "lone_surrogate", path: 'where.eq("title")' }));
  }
  // Pairs are text: emoji and astral characters pass.
  assert.deepEqual(toWire("a😀\uD83D\uDE00"), { string: "a😀😀" });
  // Strings that are not values (a type name, a text insert, a raw value):
  // the message check names them from the method.
  const create = { request: { id: 1, method: { "object.create": { space: "s", type: "t\uD800", fields: {} } } } };
  assert.throws(() => checkMessageText(JSON.stringify(create), create), echoError("rpc.bad_request", { reason: "lone_surrogate", path: "object.create.type" }));
  const splice = { request: { id: 2, method: { "text.splice": { space: "s", id: "i", field: "n", pos: 0, delete: 0, insert: "\uDFFF" } } } };
  assert.throws(() => checkMessageText(JSON.stringify(splice), splice), echoError("rpc.bad_request", { path: "text.splice.insert" }));
  const rawValue = { request: { id: 3, method: { "object.create": { space: "s", type: "t", fields: toWireFields({ x: raw({ string: "\uD800" }) }) } } } };
  assert.throws(() => checkMessageText(JSON.stringify(rawValue), rawValue), echoError("rpc.bad_request", { path: "object.create.fields.x.string" }));
  // A literal backslash-u in the text is not a surrogate.
  const literal = { request: { id: 4, method: { "object.create": { space: "s", type: "t", fields: fieldsToWire({ s: "\\ud800" }) } } } };
  checkMessageText(JSON.stringify(literal), literal);
});

function toWireFields(fields) {
  return fieldsToWire(fields);
}

test("the value depth limit is the protocol's LIMITS.maxValueDepth, the engine's", () => {
  assert.equal(LIMITS.maxValueDepth, 32);
  assert.equal(LIMITS.maxFilterDepth, 32);
  assert.equal(LIMITS.maxNesting, undefined, "the decoder's guard is not an app limit");
  const nest = (levels, leaf) => {
    let v = leaf;
    for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v };
    return v;
  };
  // The deepest item LIMITS.maxValueDepth levels below the field: accepted.
  for (const leaf of [1, "s", [], {}, float(-0)]) {
    const wire = toWire(nest(LIMITS.maxValueDepth, leaf));
    // …and read back to the same value.
    assert.deepEqual(toWire(fromWire(JSON.parse(JSON.stringify(wire)))), JSON.parse(JSON.stringify(wire)));
    fieldsToWire({ f: nest(LIMITS.maxValueDepth, leaf) });
    where.eq("f", nest(LIMITS.maxValueDepth, leaf));
  }
  // One more level: rpc.too_deep naming where, with the limit.
  const deep = nest(LIMITS.maxValueDepth + 1, 1);
  assert.throws(() => toWire(deep), echoError("rpc.too_deep", { limit: String(LIMITS.maxValueDepth) }));
  assert.throws(() => fieldsToWire({ f: deep }), (e) => e.code === "rpc.too_deep" && e.details.path.startsWith("fields.f.k[0].k") && e.message.includes("LIMITS.maxValueDepth"));
  assert.throws(() => where.eq("f", deep), echoError("rpc.too_deep"));
  assert.throws(() => toWire(nest(LIMITS.maxValueDepth + 1, [])), echoError("rpc.too_deep"));
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
  const fields = { s: "x", n: 3, f: 2.5, f2: float(2), z: -0, b: false, nil: null, l: ["a", "b"], m: { k: 1 }, r: ref("o"), t: text("t"), big: 2n ** 60n, bytes: new Uint8Array([9]) };
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
