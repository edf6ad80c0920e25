// Plain JavaScript values ⇄ wire values (protocol.ts `Value`), so apps
// write `{ title: "Buy milk", done: false }` instead of
// `{ title: { string: "Buy milk" }, done: { bool: false } }`.
//
// JS → wire:
//   null / undefined        → "null"
//   boolean                 → { bool }
//   number, integral, safe  → { int }   (use float(n) to store 2 as a float)
//   number, otherwise       → { float } (NaN / ±Infinity as their strings)
//   bigint                  → { int }   (a decimal string beyond 2^53 - 1)
//   string                  → { string }
//   Uint8Array / ArrayBuffer→ { bytes } (standard base64 with padding)
//   Array                   → { list }
//   Ref (ref(id, space?))   → { ref }
//   CollabText (text(s))    → { text }  (a collaborative text field)
//   FloatValue (float(n))   → { float }
//   WireRaw (raw(v))        → v as is
//   plain object            → { map }
// wire → JS is the inverse: ints are numbers (bigint when sent as a
// string), floats numbers, bytes Uint8Array, refs Ref, text CollabText,
// maps plain objects (own properties only; no prototype pollution).

import type { Float, Int, Mutation, ObjectState, Reference, Value } from "./protocol.js";

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

/** A number stored as a float even when it is integral. */
export class FloatValue {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
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

/** A value read back from the vault. */
export type JsValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Ref
  | CollabText
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

/** Strict decoding of standard base64 with padding; throws a TypeError on anything else. */
export function base64ToBytes(text: string): Uint8Array {
  if (text.length % 4 !== 0) throw new TypeError("base64: length is not a multiple of 4");
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text[i + j]!;
      if (c === "=") {
        if (!last || j < 4 - pad) throw new TypeError("base64: misplaced padding");
        n <<= 6;
        continue;
      }
      const v = B64_INDEX[c];
      if (v === undefined) throw new TypeError(`base64: invalid character ${JSON.stringify(c)}`);
      n = (n << 6) | v;
    }
    if (last && pad === 2 && (n & 0xffff) !== 0) throw new TypeError("base64: non-canonical padding bits");
    if (last && pad === 1 && (n & 0xff) !== 0) throw new TypeError("base64: non-canonical padding bits");
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
  return n;
}

/** A plain JavaScript value as a wire value (see the table at the top of values.ts). */
export function toWire(value: PlainValue, depth = 0): Value {
  if (depth > 64) throw new TypeError("toWire: value nested more than 64 levels (or cyclic)");
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "boolean":
      return { bool: value };
    case "number":
      if (Number.isInteger(value) && Math.abs(value) <= MAX_SAFE && !Object.is(value, -0)) return { int: value };
      return { float: floatToWire(value) };
    case "bigint":
      if (value < -(2n ** 63n) || value >= 2n ** 63n) throw new RangeError(`toWire: ${value} does not fit an i64`);
      return { int: intToWire(value) };
    case "string":
      return { string: value };
    case "object":
      break;
    default:
      throw new TypeError(`toWire: cannot store a ${typeof value}`);
  }
  if (value instanceof Ref) return { ref: value.toWire() };
  if (value instanceof CollabText) return { text: value.text };
  if (value instanceof FloatValue) return { float: floatToWire(value.value) };
  if (value instanceof WireRaw) return value.wire;
  if (value instanceof Uint8Array) return { bytes: bytesToBase64(value) };
  if (value instanceof ArrayBuffer) return { bytes: bytesToBase64(new Uint8Array(value)) };
  if (Array.isArray(value)) return { list: value.map((v: PlainValue) => toWire(v, depth + 1)) };
  if (isPlainObject(value)) {
    const map: { [key: string]: Value } = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(map, k, { value: toWire(v, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return { map };
  }
  throw new TypeError(`toWire: cannot store a ${Object.prototype.toString.call(value)} (use a plain object, array, or raw())`);
}

/** Plain fields as wire fields (`undefined` values are left out). */
export function fieldsToWire(fields: PlainFields): { [key: string]: Value } {
  const out: { [key: string]: Value } = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    Object.defineProperty(out, k, { value: toWire(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function wireInt(n: Int): number | bigint {
  if (typeof n === "number") return n;
  const big = BigInt(n);
  return big >= BigInt(-MAX_SAFE) && big <= BigInt(MAX_SAFE) ? Number(big) : big;
}

function wireFloat(n: Float): number {
  if (n === "NaN") return NaN;
  if (n === "Infinity") return Infinity;
  if (n === "-Infinity") return -Infinity;
  return n;
}

/** A wire value as a plain JavaScript value. Throws a TypeError on a malformed one. */
export function fromWire(value: Value): JsValue {
  if (value === "null") return null;
  if (typeof value !== "object" || value === null) throw new TypeError(`fromWire: not a wire value: ${JSON.stringify(value)}`);
  const keys = Object.keys(value);
  if (keys.length !== 1) throw new TypeError(`fromWire: a wire value has exactly one tag, got ${JSON.stringify(keys)}`);
  const v = value as Record<string, unknown>;
  switch (keys[0]) {
    case "bool":
      return v["bool"] as boolean;
    case "int":
      return wireInt(v["int"] as Int);
    case "float":
      return wireFloat(v["float"] as Float);
    case "string":
      return v["string"] as string;
    case "bytes":
      return base64ToBytes(v["bytes"] as string);
    case "list":
      return (v["list"] as Value[]).map(fromWire);
    case "map":
      return fieldsFromWire(v["map"] as { [key: string]: Value });
    case "ref": {
      const r = v["ref"] as Reference;
      return new Ref(r.object, r.space ?? undefined);
    }
    case "text":
      return new CollabText(v["text"] as string);
    default:
      throw new TypeError(`fromWire: unknown tag ${JSON.stringify(keys[0])}`);
  }
}

/** Wire fields as plain fields. */
export function fieldsFromWire(fields: { [key: string]: Value }): JsFields {
  const out: JsFields = {};
  for (const [k, v] of Object.entries(fields)) {
    Object.defineProperty(out, k, { value: fromWire(v), enumerable: true, writable: true, configurable: true });
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
/** `fields[name]` when it is a number (int or float; a bigint is converted). */
export function num(fields: JsFields, name: string): number | undefined {
  const v = fields[name];
  return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
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
  if (bytes.length !== 16) throw new RangeError("an id is 16 bytes");
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
    return { set: { id, field, value: toWire(value) } };
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
