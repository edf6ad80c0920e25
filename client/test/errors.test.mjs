// EchoError: the one error class apps see.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EchoError, isEchoError } from "../dist/index.js";

test("an EchoError is an Error with code, message and frozen string details", () => {
  const e = EchoError.fromWire({ code: "model.not_found", message: "no object x", details: { field: "id" } });
  assert.ok(e instanceof Error);
  assert.ok(e instanceof EchoError);
  assert.equal(e.name, "EchoError");
  assert.equal(e.code, "model.not_found");
  assert.equal(e.message, "no object x");
  assert.deepEqual({ ...e.details }, { field: "id" });
  assert.ok(Object.isFrozen(e.details));
  assert.ok(typeof e.stack === "string");
  assert.deepEqual(e.toWire(), { code: "model.not_found", message: "no object x", details: { field: "id" } });
  assert.deepEqual(new EchoError("rpc.timeout", "t").toWire(), { code: "rpc.timeout", message: "t" });
});

test("a malformed wire error still gives a usable EchoError", () => {
  const e = EchoError.fromWire({ code: 5, details: { a: 1, b: "x" } });
  assert.equal(e.code, "rpc.internal");
  assert.match(e.message, /malformed/);
  assert.deepEqual({ ...e.details }, { b: "x" });
});

test("isEchoError matches class and code", () => {
  const e = new EchoError("rpc.cancelled", "c");
  assert.ok(isEchoError(e));
  assert.ok(isEchoError(e, "rpc.cancelled"));
  assert.ok(!isEchoError(e, "rpc.timeout"));
  assert.ok(!isEchoError(new Error("x")));
});
