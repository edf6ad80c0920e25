// A page without an origin of its own (a sandboxed frame: self.origin === "null") gets a typed refusal at
// once — state not_authorized, calls and requestAccess fail with rpc.not_authorized (reason opaque_origin) —
// instead of waiting out the connect timeout; no vault frame is made.
import { test } from "node:test";
import assert from "node:assert/strict";

test("an opaque origin is refused at once, without a vault frame", async () => {
  const made = [];
  globalThis.self = { origin: "null" };
  globalThis.window = { addEventListener() {}, removeEventListener() {} };
  globalThis.document = { createElement: (tag) => made.push(tag) };
  const { connect } = await import("../dist/index.js");
  const vault = connect({ vaultUrl: "http://vault.localhost:8600" });
  const states = [];
  vault.onStateChange((s) => states.push(s));
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(vault.state, "not_authorized");
  assert.deepEqual(made, [], "no iframe is made");
  await assert.rejects(vault.ping(), (e) => e.code === "rpc.not_authorized" && e.details.reason === "opaque_origin" && /sandboxed frame/.test(e.message));
  await assert.rejects(vault.requestAccess(), (e) => e.code === "rpc.not_authorized" && e.details.reason === "opaque_origin");
  vault.close();
});
