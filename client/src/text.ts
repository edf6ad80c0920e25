// Collaborative text helpers: turn an edit of a plain string (a textarea's
// value before and after an input event) into one `text.splice`, whose
// positions are Unicode code points (not the UTF-16 units of JS strings),
// and move a caret across a splice made by someone else.

import { EchoError } from "./errors.js";

/** One text edit: at `pos`, delete `delete` characters, insert `insert`. */
export interface Splice {
  pos: number;
  delete: number;
  insert: string;
}

/** How many characters of context `spliceContext` gives (the vault takes up to 64). */
export const SPLICE_CONTEXT = 32;

/**
 * The context of a splice at code point `pos` of `text`, as the app shows it: the (up to
 * `SPLICE_CONTEXT`) characters just before `pos`, for `Space.splice`'s `context` option.
 */
export function spliceContext(text: string, pos: number): string {
  const before = Array.from(text).slice(0, pos);
  return before.slice(Math.max(0, before.length - SPLICE_CONTEXT)).join("");
}

/** Number of code points in `s`. */
export function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** The code point offset of UTF-16 offset `utf16` in `s` (an offset inside a surrogate pair counts the pair as passed). */
export function utf16ToCodePoint(s: string, utf16: number): number {
  return codePointLength(s.slice(0, Math.max(0, Math.min(utf16, s.length))));
}

/** The UTF-16 offset of code point offset `cp` in `s` (clamped to the string). */
export function codePointToUtf16(s: string, cp: number): number {
  let i = 0;
  let n = 0;
  while (i < s.length && n < cp) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
    n++;
  }
  return i;
}

function commonPrefix(a: readonly string[], b: readonly string[]): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a[i] === b[i]) i++;
  return i;
}

function commonSuffix(a: readonly string[], b: readonly string[], max: number): number {
  let i = 0;
  while (i < max && a[a.length - 1 - i] === b[b.length - 1 - i]) i++;
  return i;
}

/**
 * The single splice (code point positions) that turns `before` into
 * `after`, or `null` when they are equal.
 *
 * `caret` (optional): the caret in `after` right after the edit, as a
 * UTF-16 offset (`textarea.selectionEnd` in an `input` event). It settles
 * where an ambiguous edit happened: typing "a" at the start of "aa" is an
 * insert at 0, not at 2.
 */
export function diffToSplice(before: string, after: string, caret?: number): Splice | null {
  if (before === after) return null;
  const a = Array.from(before);
  const b = Array.from(after);
  const prefix = commonPrefix(a, b);
  if (caret !== undefined) {
    const c = utf16ToCodePoint(after, caret);
    const suffixLen = b.length - c;
    const maxSuffix = commonSuffix(a, b, Math.min(a.length, b.length));
    if (suffixLen >= 0 && suffixLen <= maxSuffix) {
      const pos = Math.min(prefix, c, a.length - suffixLen);
      return { pos, delete: a.length - suffixLen - pos, insert: b.slice(pos, c).join("") };
    }
  }
  const suffix = commonSuffix(a, b, Math.min(a.length, b.length) - prefix);
  return {
    pos: prefix,
    delete: a.length - prefix - suffix,
    insert: b.slice(prefix, b.length - suffix).join(""),
  };
}

/** Applies a splice (code point positions) to `s`. Throws an EchoError (`rpc.bad_request`, reason `out_of_range`) when it does not fit. */
export function applySplice(s: string, splice: Splice): string {
  const cps = Array.from(s);
  if (splice.pos < 0 || splice.delete < 0 || splice.pos + splice.delete > cps.length) {
    throw new EchoError("rpc.bad_request", `splice ${splice.pos}+${splice.delete} outside a text of ${cps.length} code points`, {
      reason: "out_of_range",
    });
  }
  return cps.slice(0, splice.pos).join("") + splice.insert + cps.slice(splice.pos + splice.delete).join("");
}

/**
 * Where offset `offset` (code points) goes when `splice` is applied by
 * someone else: before the edit it stays, after it shifts, inside the
 * deleted range it moves to the end of the inserted text. An offset exactly
 * at `pos` stays there; for a pure insertion, `stickToEnd` moves it after
 * the inserted text instead.
 */
export function transformOffset(offset: number, splice: Splice, stickToEnd = false): number {
  const insertLen = codePointLength(splice.insert);
  if (offset < splice.pos) return offset;
  if (offset === splice.pos) return stickToEnd && splice.delete === 0 ? offset + insertLen : offset;
  if (offset >= splice.pos + splice.delete) return offset - splice.delete + insertLen;
  return splice.pos + insertLen;
}

/**
 * A remote change of a text field, applied to local content with its
 * selection (UTF-16 offsets, as in `textarea.selectionStart/End`): the new
 * selection keeps its place relative to the text around it.
 */
export function rebaseSelection(
  before: string,
  after: string,
  selectionStart: number,
  selectionEnd: number,
): { start: number; end: number } {
  const splice = diffToSplice(before, after);
  if (splice === null) return { start: selectionStart, end: selectionEnd };
  const start = transformOffset(utf16ToCodePoint(before, selectionStart), splice);
  const end = transformOffset(utf16ToCodePoint(before, selectionEnd), splice);
  return { start: codePointToUtf16(after, start), end: codePointToUtf16(after, Math.max(start, end)) };
}
