// Plain JavaScript values ⇄ wire values (protocol.ts `Value`), so apps
// write `{ title: "Buy milk", done: false }` instead of
// `{ title: { string: "Buy milk" }, done: { bool: false } }`.
//
// JS → wire:
//   null / undefined        → "null"
//   boolean                 → { bool }
//   number, integral, safe  → { int }   (use float(n) to store 2 as a float)
//   number, otherwise       → { float } (-0, NaN, ±Infinity as "-0", "NaN", …)
//   FloatValue (float(n))   → { float }  (so is any Number object, e.g. what
//                                         a structured clone makes of one)
//   bigint                  → { int }   (a decimal string beyond 2^53 - 1)
//   string                  → { string }
//   Uint8Array / ArrayBuffer→ { bytes } (standard base64 with padding)
//   Array                   → { list }  (holes → "null")
//   Ref (ref(id, space?))   → { ref }
//   CollabText (text(s))    → { text }  (a collaborative text field)
//   WireRaw (raw(v))        → v as is
//   plain object            → { map }
//
// wire → JS is the exact inverse: reading a value and writing it back
// changes nothing (toWire(fromWire(w)) is w, kind and sign included).
// Ints are numbers (bigint beyond 2^53 - 1); floats are numbers, except an
// integral float within 2^53 - 1 (2.0, 0.0), which comes back as
// `float(2)` (a FloatValue: a Number object, so arithmetic, comparisons,
// toFixed and JSON.stringify work; `typeof` is "object", `===` compares
// objects — use `num(fields, name)` or `+x` for the primitive). -0.0 comes
// back as -0 (Object.is(x, -0)) and goes out as "-0" (JSON.stringify(-0)
// is "0"). Bytes are Uint8Array, refs Ref, text CollabText, maps plain
// objects (own properties only; no prototype pollution).
//
// Refusals are EchoErrors, before anything is sent, naming the value's path
// (`details.path`, e.g. `fields.tags[3]`):
//   rpc.too_deep     nested deeper than LIMITS.maxValueDepth (the engine's
//                    limit: an item at most that many levels below the field)
//   rpc.bad_request  details.reason: "unsupported_type" (a symbol, function,
//                    Date, Map, Set, class instance …; details.type),
//                    "cycle", "out_of_range" (a bigint beyond i64),
//                    "lone_surrogate" (a string or key that is not valid
//                    UTF-16, which no JSON parser accepts), "malformed" (a
//                    wire value or base64 that does not decode).

import { EchoError } from "./errors.js";
import { LIMITS, type Float, type Int, type Mutation, type ObjectState, type Reference, type Value } from "./protocol.js";

/** Largest integer a JavaScript number holds exactly. */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A reference to an object: same space (`space` absent) or another one. */
export class Ref {
  readonly object: string;
  readonly space: string | undefined;
  constructor(object: string, space?: string) {
    this.object = object;
    this.space = space;
  }
  toWire(): Reference {
    return this.space === undefined ? { object: this.object } : { space: this.space, object: this.object };
  }
  equals(other: unknown): boolean {
    return other instanceof Ref && other.object === this.object && other.space === this.space;
  }
  toString(): string {
    return this.space === undefined ? this.object : `${this.space}/${this.object}`;
  }
}

/** A collaborative text field's content (edit it with `text.splice`). */
export class CollabText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

/**
 * A number stored as a float even when it is integral: what `float(n)`
 * writes, and what an integral float (2.0) reads back as, so that writing
 * it back keeps it a float. A Number object: `x + 1`, `x < y`,
 * `x.toFixed(2)`, `String(x)` and `JSON.stringify(x)` work as with the
 * number; `x.value` (or `+x`) is the primitive.
 */
export class FloatValue extends Number {
  constructor(value: number) {
    super(value);
  }
  /** The number. */
  get value(): number {
    return this.valueOf();
  }
}

/** A wire value passed through unchanged. */
export class WireRaw {
  readonly wire: Value;
  constructor(wire: Value) {
    this.wire = wire;
  }
}

/** A plain JavaScript value the converters understand. */
export type PlainValue =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | ArrayBuffer
  | Ref
  | CollabText
  | FloatValue
  | WireRaw
  | readonly PlainValue[]
  | { readonly [key: string]: PlainValue };

/** Field values by name, plain. */
export type PlainFields = { [key: string]: PlainValue };

/** A value read back from the vault (an integral float is a FloatValue). */
export type JsValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Ref
  | CollabText
  | FloatValue
  | JsValue[]
  | { [key: string]: JsValue };

/** Fields read back from the vault. */
export type JsFields = { [key: string]: JsValue };

/** `{ ref }`: a reference to `object` (in `space`, or the same space). */
export function ref(object: string, space?: string): Ref {
  return new Ref(object, space);
}

/** `{ text }`: a collaborative text field with initial content. */
export function text(content = ""): CollabText {
  return new CollabText(content);
}

/** `{ float }`: `n` as a float even when integral. */
export function float(n: number): FloatValue {
  return new FloatValue(n);
}

/** A wire value passed through as is. */
export function raw(wire: Value): WireRaw {
  return new WireRaw(wire);
}

// ----------------------------------------------------------------- errors

/** `path.key`, or `path["odd key"]` when the key is not an identifier. */
export function childPath(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** An unconvertible value: rpc.bad_request naming where it is and why. */
function badValue(path: string, reason: string, message: string, details: Record<string, string> = {}): EchoError {
  return new EchoError("rpc.bad_request", `${path}: ${message}`, { path, reason, ...details });
}

/** Index of the first unpaired surrogate of `s`, or -1 when `s` is well-formed UTF-16. */
export function loneSurrogateAt(s: string): number {
  if (!/[\uD800-\uDFFF]/.test(s)) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    return i;
  }
  return -1;
}

function checkString(s: string, path: string, what: string): void {
  const at = loneSurrogateAt(s);
  if (at >= 0) {
    const unit = s.charCodeAt(at).toString(16);
    throw badValue(
      path,
      "lone_surrogate",
      `the ${what} holds a lone surrogate (UTF-16 unit 0x${unit} at index ${at}), which is not text and which the vault cannot read; fix the string (e.g. s.toWellFormed())`,
    );
  }
}

/**
 * Where in `value` (any JSON-like data, e.g. a whole message) a string or
 * key has a lone surrogate, as a path from `path`; undefined when none.
 */
export function findLoneSurrogate(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === "string") return loneSurrogateAt(value) >= 0 ? path : undefined;
  if (typeof value !== "object" || value === null || depth > 256) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findLoneSurrogate(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const here = childPath(path, k);
    if (loneSurrogateAt(k) >= 0) return here;
    const found = findLoneSurrogate(v, here, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Refuses a message whose JSON text (`json`, of `message`) carries a lone
 * surrogate: JSON.stringify writes one as an escape ("\ud800") that no
 * JSON parser accepts, so the vault could only answer that the message does
 * not parse. The EchoError names the string instead (`details.path`, from
 * the method: `object.create.type`). Values were checked by toWire; this
 * catches the rest (type and field names, text inserts, raw values …).
 */
export function checkMessageText(json: string, message: unknown): void {
  // Cheap first: escapes of surrogates appear only for lone ones (a literal
  // backslash-u in a string matches too; the walk below then finds nothing).
  if (!/\\ud[89a-f][0-9a-f]{2}/i.test(json)) return;
  const method = isRecord(message) && isRecord(message["request"]) ? message["request"]["method"] : undefined;
  const name = isRecord(method) ? Object.keys(method)[0] : undefined;
  const path = isRecord(method) && name !== undefined ? findLoneSurrogate(method[name], name) : findLoneSurrogate(message, "message");
  if (path !== undefined) {
    throw badValue(path, "lone_surrogate", "the string holds a lone surrogate, which is not text and which the vault cannot read; fix the string (e.g. s.toWellFormed())");
  }
}

// ----------------------------------------------------------------- base64

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX: Record<string, number> = Object.fromEntries([...B64].map((c, i) => [c, i]));

/** Standard base64 with padding (RFC 4648 §4). */
export function bytesToBase64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + "==";
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + "=";
  }
  return out;
}

/**
 * Strict decoding of standard base64 with padding; anything else is an
 * EchoError `rpc.bad_request` (`details.reason` "malformed") naming `path`.
 */
export function base64ToBytes(text: string, path = "bytes"): Uint8Array {
  const bad = (why: string) => badValue(path, "malformed", `not standard base64 with padding: ${why}`);
  if (typeof text !== "string") throw bad("not a string");
  if (text.length % 4 !== 0) throw bad("its length is not a multiple of 4");
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text[i + j]!;
      if (c === "=") {
        if (!last || j < 4 - pad) throw bad("misplaced padding");
        n <<= 6;
        continue;
      }
      const v = B64_INDEX[c];
      if (v === undefined) throw bad(`invalid character ${JSON.stringify(c)}`);
      n = (n << 6) | v;
    }
    if (last && pad === 2 && (n & 0xffff) !== 0) throw bad("non-canonical padding bits");
    if (last && pad === 1 && (n & 0xff) !== 0) throw bad("non-canonical padding bits");
    out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

// ------------------------------------------------------------- converters

function isPlainObject(v: object): v is { [key: string]: PlainValue } {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function intToWire(n: bigint): Int {
  return n >= BigInt(-MAX_SAFE) && n <= BigInt(MAX_SAFE) ? Number(n) : n.toString();
}

function floatToWire(n: number): Float {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  // JSON.stringify(-0) is "0": -0 travels as a string.
  if (Object.is(n, -0)) return "-0";
  return n;
}

/** Whether a number goes out as `{ int }` (and so a float of that value reads back as a FloatValue). */
function isWireInt(n: number): boolean {
  return Number.isInteger(n) && Math.abs(n) <= MAX_SAFE && !Object.is(n, -0);
}

/** What to call a value that cannot be stored, and how to store it instead. */
function unsupported(value: unknown, path: string): EchoError {
  if (typeof value !== "object" || value === null) {
    return badValue(path, "unsupported_type", `a ${typeof value} cannot be stored`, { type: typeof value });
  }
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
  const type = typeof ctor === "string" && ctor !== "" && ctor !== "Object" ? ctor : tag;
  const hint =
    value instanceof Date
      ? "store date.getTime() (a number) or date.toISOString() (a string)"
      : value instanceof Map
        ? "store a plain object (Object.fromEntries(map)) or a list of pairs"
        : value instanceof Set
          ? "store a list ([...set])"
          : ArrayBuffer.isView(value)
            ? "store a Uint8Array of its bytes, or a list of numbers"
            : "store a plain object, an array, or raw(wireValue)";
  return badValue(path, "unsupported_type", `a ${type} cannot be stored: ${hint}`, { type });
}

function convert(value: unknown, path: string, depth: number, parents: object[]): Value {
  if (depth > LIMITS.maxValueDepth) {
    throw new EchoError(
      "rpc.too_deep",
      `${path}: the value nests lists and maps more than ${LIMITS.maxValueDepth} levels deep (LIMITS.maxValueDepth); flatten it`,
      { path, limit: String(LIMITS.maxValueDepth) },
    );
  }
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "boolean":
      return { bool: value };
    case "number":
      return isWireInt(value) ? { int: value } : { float: floatToWire(value) };
    case "bigint":
      if (value < -(2n ** 63n) || value >= 2n ** 63n) {
        throw badValue(path, "out_of_range", `${value} does not fit a 64-bit signed integer (-2^63 to 2^63 - 1)`);
      }
      return { int: intToWire(value) };
    case "string":
      checkString(value, path, "string");
      return { string: value };
    case "object":
      break;
    default:
      throw unsupported(value, path);
  }
  if (value instanceof Ref) return { ref: value.toWire() };
  if (value instanceof CollabText) {
    checkString(value.text, path, "text");
    return { text: value.text };
  }
  // A FloatValue, or a Number object (what a structured clone makes of one).
  if (value instanceof Number) return { float: floatToWire(value.valueOf()) };
  if (value instanceof WireRaw) return value.wire;
  if (value instanceof Uint8Array) return { bytes: bytesToBase64(value) };
  if (value instanceof ArrayBuffer) return { bytes: bytesToBase64(new Uint8Array(value)) };
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) throw unsupported(value, path);
  if (parents.includes(value)) {
    throw badValue(path, "cycle", "the value contains itself (a cycle); only trees of values can be stored");
  }
  parents.push(value);
  try {
    if (isArray) {
      const items = value as readonly unknown[];
      const list: Value[] = [];
      // An index loop: holes become "null" (map() would keep them as holes).
      for (let i = 0; i < items.length; i++) list.push(convert(items[i], `${path}[${i}]`, depth + 1, parents));
      return { list };
    }
    const map: { [key: string]: Value } = {};
    for (const [k, v] of Object.entries(value)) {
      const here = childPath(path, k);
      checkString(k, here, "key");
      Object.defineProperty(map, k, { value: convert(v, here, depth + 1, parents), enumerable: true, writable: true, configurable: true });
    }
    return { map };
  } finally {
    parents.pop();
  }
}

/**
 * A plain JavaScript value as a wire value (see the table at the top of
 * values.ts). `path` names the value in errors (e.g. `fields.tags`).
 * Throws an EchoError (`rpc.bad_request` / `rpc.too_deep`) for a value
 * that cannot be stored.
 */
export function toWire(value: PlainValue, path = "value"): Value {
  return convert(value, path, 0, []);
}

/** Plain fields as wire fields (`undefined` values are left out); errors name `path.field`. */
export function fieldsToWire(fields: PlainFields, path = "fields"): { [key: string]: Value } {
  const out: { [key: string]: Value } = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const here = childPath(path, k);
    checkString(k, here, "field name");
    Object.defineProperty(out, k, { value: convert(v, here, 0, []), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function wireInt(n: unknown, path: string): number | bigint {
  if (typeof n === "number" && Number.isInteger(n)) return n;
  if (typeof n === "string" && /^-?(0|[1-9][0-9]*)$/.test(n)) {
    const big = BigInt(n);
    return big >= BigInt(-MAX_SAFE) && big <= BigInt(MAX_SAFE) ? Number(big) : big;
  }
  throw badValue(path, "malformed", `not an int on the wire: ${JSON.stringify(n)}`);
}

function wireFloat(n: unknown, path: string): number | FloatValue {
  if (typeof n === "number") return isWireInt(n) ? new FloatValue(n) : n;
  if (n === "NaN") return NaN;
  if (n === "Infinity") return Infinity;
  if (n === "-Infinity") return -Infinity;
  if (n === "-0") return -0;
  throw badValue(path, "malformed", `not a float on the wire: ${JSON.stringify(n)}`);
}

function wireString(s: unknown, path: string, tag: string): string {
  if (typeof s !== "string") throw badValue(path, "malformed", `{${tag}} holds a ${typeof s}, not a string`);
  return s;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A wire value as a plain JavaScript value (the inverse of `toWire`: an
 * integral float comes back as a FloatValue, -0.0 as -0). A malformed one
 * is an EchoError `rpc.bad_request` (`details.reason` "malformed") naming
 * `path`.
 */
export function fromWire(value: Value, path = "value"): JsValue {
  if (value === "null") return null;
  if (!isRecord(value)) throw badValue(path, "malformed", `not a wire value: ${String(JSON.stringify(value)).slice(0, 64)}`);
  const keys = Object.keys(value);
  if (keys.length !== 1) throw badValue(path, "malformed", `a wire value has exactly one tag, got ${JSON.stringify(keys)}`);
  const v = value as Record<string, unknown>;
  const tag = keys[0]!;
  const content = v[tag];
  switch (tag) {
    case "bool":
      if (typeof content !== "boolean") throw badValue(path, "malformed", `{bool} holds a ${typeof content}`);
      return content;
    case "int":
      return wireInt(content, path);
    case "float":
      return wireFloat(content, path);
    case "string":
      return wireString(content, path, tag);
    case "bytes":
      return base64ToBytes(wireString(content, path, tag), path);
    case "list": {
      if (!Array.isArray(content)) throw badValue(path, "malformed", "{list} does not hold an array");
      return content.map((item: Value, i) => fromWire(item, `${path}[${i}]`));
    }
    case "map":
      if (!isRecord(content)) throw badValue(path, "malformed", "{map} does not hold an object");
      return fieldsFromWire(content as { [key: string]: Value }, path);
    case "ref": {
      if (!isRecord(content)) throw badValue(path, "malformed", "{ref} does not hold an object");
      const r = content as Partial<Reference>;
      const space = r.space ?? undefined;
      return new Ref(wireString(r.object, `${path}.object`, "ref"), space === undefined ? undefined : wireString(space, `${path}.space`, "ref"));
    }
    case "text":
      return new CollabText(wireString(content, path, tag));
    default:
      throw badValue(path, "malformed", `unknown tag ${JSON.stringify(tag)}`);
  }
}

/** Wire fields as plain fields. */
export function fieldsFromWire(fields: { [key: string]: Value }, path = "fields"): JsFields {
  const out: JsFields = {};
  for (const [k, v] of Object.entries(fields)) {
    Object.defineProperty(out, k, { value: fromWire(v, childPath(path, k)), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

// ---------------------------------------------------------------- objects

/** An object as the client hands it to apps: plain fields, and the wire form. */
export interface EchoObject {
  readonly id: string;
  readonly type: string;
  readonly fields: JsFields;
  readonly deleted: boolean;
  /** The object exactly as the vault sent it. */
  readonly wire: ObjectState;
}

/** Wraps a wire object (fields decoded to plain values). */
export function objectFromWire(wire: ObjectState): EchoObject {
  return { id: wire.id, type: wire.type, fields: fieldsFromWire(wire.fields), deleted: wire.deleted, wire };
}

// Typed readers for fields of objects read back (undefined when absent or of another type).

/** `fields[name]` when it is a string. */
export function str(fields: JsFields, name: string): string | undefined {
  const v = fields[name];
  return typeof v === "string" ? v : undefined;
}
/** `fields[name]` when it is a number (int or float, a FloatValue included; a bigint is converted). */
export function num(fields: JsFields, name: string): number | undefined {
  const v = fields[name];
  return typeof v === "number" ? v : v instanceof FloatValue ? v.value : typeof v === "bigint" ? Number(v) : undefined;
}
/** `fields[name]` when it is a boolean. */
export function bool(fields: JsFields, name: string): boolean | undefined {
  const v = fields[name];
  return typeof v === "boolean" ? v : undefined;
}
/** `fields[name]` when it is a reference. */
export function refOf(fields: JsFields, name: string): Ref | undefined {
  const v = fields[name];
  return v instanceof Ref ? v : undefined;
}
/** `fields[name]`'s content when it is collaborative text (or a plain string). */
export function textOf(fields: JsFields, name: string): string | undefined {
  const v = fields[name];
  return v instanceof CollabText ? v.text : typeof v === "string" ? v : undefined;
}
/** `fields[name]` when it is a list, with only its string items. */
export function strings(fields: JsFields, name: string): string[] | undefined {
  const v = fields[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined;
}

// -------------------------------------------------------------------- ids

const B32HEX = "0123456789abcdefghijklmnopqrstuv";

/** Lower-case base32hex without padding of 16 bytes: an object / space id's text form. */
export function idFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw badValue("id", "malformed", `an id is 16 bytes, not ${bytes.length}`);
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32HEX[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32HEX[(acc << (5 - bits)) & 31];
  return out;
}

/** Whether `text` is a canonical id (26 lower-case base32hex characters encoding 16 bytes). */
export function isId(text: string): boolean {
  if (!/^[0-9a-v]{26}$/.test(text)) return false;
  // The last character carries 3 bits and 2 zero padding bits.
  return (B32HEX.indexOf(text[25]!) & 3) === 0;
}

/** A fresh random object id (for `create` with an id chosen by the app, e.g. in one batch with references to it). */
export function newId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return idFromBytes(bytes);
}

// -------------------------------------------------------------- mutations

/** Builders of `object.batch` mutations from plain values. */
export const mutation = {
  create(type: string, fields: PlainFields = {}, id?: string): Mutation {
    const create: { id?: string; type: string; fields?: { [key: string]: Value } } = { type, fields: fieldsToWire(fields) };
    if (id !== undefined) create.id = id;
    return { create };
  },
  set(id: string, field: string, value: PlainValue): Mutation {
    return { set: { id, field, value: toWire(value, childPath("fields", field)) } };
  },
  remove(id: string, field: string): Mutation {
    return { remove: { id, field } };
  },
  delete(id: string): Mutation {
    return { delete: { id } };
  },
  /** Positions and lengths in Unicode code points. */
  spliceText(id: string, field: string, pos: number, del: number, insert: string): Mutation {
    return { splice_text: { id, field, pos, delete: del, insert } };
  },
} as const;
