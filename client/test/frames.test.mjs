// Frames: the outbox posts the messages of one turn together, in order,
// within the size budget; unframe reads frames and single messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Outbox, packFrames, unframe } from "../dist/frames.js";

test("messages of one turn are posted as one frame at the end of the turn, in order", async () => {
  const posted = [];
  const box = new Outbox((t) => posted.push(t), 4 * 1024 * 1024, 4096);
  for (let i = 0; i < 5; i++) box.push(JSON.stringify({ cancel: { id: i } }));
  assert.equal(posted.length, 0, "nothing is posted before the turn ends");
  await Promise.resolve();
  assert.equal(posted.length, 1);
  assert.deepEqual(JSON.parse(posted[0]).map((m) => m.cancel.id), [0, 1, 2, 3, 4]);
  // A lone message in a later turn travels bare.
  box.push(JSON.stringify({ cancel: { id: 9 } }));
  await Promise.resolve();
  assert.deepEqual(JSON.parse(posted[1]), { cancel: { id: 9 } });
});

test("frames stay within the byte budget (3 bytes per UTF-16 unit); a bigger message goes alone", () => {
  const msgs = Array.from({ length: 50 }, (_, i) => JSON.stringify({ request: { id: i, method: { ping: {} } } }));
  const frames = packFrames(msgs, 200, 4096);
  assert.ok(frames.length > 1);
  for (const f of frames) assert.ok(f.length <= 200 || !f.startsWith("["), `${f.length}`);
  assert.deepEqual(frames.flatMap((f) => unframe(JSON.parse(f))), msgs.map((m) => JSON.parse(m)));
  const big = "x".repeat(500);
  assert.deepEqual(packFrames([msgs[0], JSON.stringify(big), msgs[1]], 200, 4096), [msgs[0], JSON.stringify(big), msgs[1]]);
  const posted = [];
  const box = new Outbox((t) => posted.push(t), 600, 4096); // 200 UTF-16 units
  for (const m of msgs) box.push(m);
  box.flush();
  assert.deepEqual(posted, frames);
});

test("a frame carries at most maxMessages messages (the vault refuses more)", () => {
  const msgs = Array.from({ length: 10 }, (_, i) => JSON.stringify({ cancel: { id: i } }));
  const frames = packFrames(msgs, 1 << 20, 4);
  assert.deepEqual(frames.map((f) => unframe(JSON.parse(f)).length), [4, 4, 2]);
  assert.deepEqual(frames.flatMap((f) => unframe(JSON.parse(f))), msgs.map((m) => JSON.parse(m)));
});

test("clear drops what is queued (the port went away)", async () => {
  const posted = [];
  const box = new Outbox((t) => posted.push(t), 1024, 4096);
  box.push("{}");
  assert.equal(box.size, 1);
  box.clear();
  await Promise.resolve();
  assert.deepEqual(posted, []);
});

test("unframe: an array is a frame, anything else one message", () => {
  assert.deepEqual(unframe([{ a: 1 }, { b: 2 }]), [{ a: 1 }, { b: 2 }]);
  assert.deepEqual(unframe({ a: 1 }), [{ a: 1 }]);
});
