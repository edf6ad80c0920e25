// The board's rules: objects → lists/tasks, due dates, overdue, tags, order, the board's space.
import { test } from "node:test";
import assert from "node:assert/strict";
import { objectFromWire } from "@echo/client";
import {
  listFromObject, taskFromObject, isDate, today, isOverdue, byOrder, nextOrder, parseTags, formatTags, allTags, visibleTasks, cleanName, findBoardSpace,
} from "../.test-build/demo-app/src/model.js";

const LIST = "0123456789abcdefghijklmnop";
const task = (id, fields, deleted = false) =>
  objectFromWire({ id, type: "task", deleted, fields: { list: { ref: { object: LIST } }, title: { string: id }, order: { int: 1 }, ...fields } });

test("a task object reads into a Task", () => {
  const t = taskFromObject(objectFromWire({
    id: "t1", type: "task", deleted: false,
    fields: {
      list: { ref: { object: LIST } }, title: { string: "Buy milk" }, done: { bool: true }, due: { string: "2026-12-24" },
      tags: { list: [{ string: "home" }, { string: "shop" }] }, order: { float: 2.5 }, note: { text: "2 litres" },
    },
  }));
  assert.deepEqual(t, { id: "t1", list: LIST, title: "Buy milk", done: true, due: "2026-12-24", tags: ["home", "shop"], order: 2.5, note: "2 litres", hasNote: true });
});

test("tasks missing optional fields get defaults; broken ones are skipped", () => {
  const t = taskFromObject(task("t2", {}));
  assert.equal(t.done, false);
  assert.equal(t.due, undefined);
  assert.deepEqual(t.tags, []);
  assert.equal(t.note, "");
  assert.equal(t.hasNote, false);
  assert.equal(taskFromObject(task("t3", { due: { string: "2026-02-30" } })).due, undefined);
  assert.equal(taskFromObject(task("t4", {}, true)), null);
  assert.equal(taskFromObject(objectFromWire({ id: "t5", type: "task", deleted: false, fields: { title: { string: "no list" } } })), null);
  assert.equal(taskFromObject(objectFromWire({ id: "l", type: "list", deleted: false, fields: {} })), null);
});

test("a list object reads into a List", () => {
  assert.deepEqual(listFromObject(objectFromWire({ id: "l1", type: "list", deleted: false, fields: { name: { string: "Home" }, order: { int: 3 } } })), { id: "l1", name: "Home", order: 3 });
  assert.equal(listFromObject(objectFromWire({ id: "l1", type: "list", deleted: true, fields: {} })), null);
  assert.equal(listFromObject(objectFromWire({ id: "l2", type: "list", deleted: false, fields: {} })).name, "Untitled");
});

test("dates: real calendar dates only; today in local time", () => {
  for (const ok of ["2026-01-01", "2024-02-29", "2026-12-31"]) assert.ok(isDate(ok), ok);
  for (const bad of ["2026-02-29", "2026-13-01", "2026-1-01", "26-01-01", "2026-01-01T00:00", "", "2026-00-10"]) assert.ok(!isDate(bad), bad);
  assert.equal(today(new Date(2026, 0, 5, 23, 59)), "2026-01-05");
});

test("overdue: not done and due before today", () => {
  assert.ok(isOverdue({ done: false, due: "2026-11-30" }, "2026-12-01"));
  assert.ok(!isOverdue({ done: false, due: "2026-12-01" }, "2026-12-01"));
  assert.ok(!isOverdue({ done: true, due: "2026-11-30" }, "2026-12-01"));
  assert.ok(!isOverdue({ done: false, due: undefined }, "2026-12-01"));
});

test("order: by order then id; new items go last", () => {
  const items = [{ id: "b", order: 2 }, { id: "a", order: 2 }, { id: "c", order: 1 }];
  assert.deepEqual([...items].sort(byOrder).map((i) => i.id), ["c", "a", "b"]);
  assert.equal(nextOrder(items), 3);
  assert.equal(nextOrder([]), 1);
  assert.equal(nextOrder([{ order: 2.5 }, { order: NaN }]), 3);
});

test("tags: typed loosely, stored clean", () => {
  assert.deepEqual(parseTags(" Home, #shop  urgent,,home "), ["home", "shop", "urgent"]);
  assert.deepEqual(parseTags(""), []);
  assert.equal(formatTags(["a", "b"]), "a, b");
  assert.deepEqual(allTags([{ tags: ["b", "a"] }, { tags: ["a", "c"] }]), ["a", "b", "c"]);
});

test("visible tasks: one list, tag and overdue filters, board order", () => {
  const mk = (id, list, order, tags, due, done = false) => ({ id, list, order, tags, due, done, title: id, note: "", hasNote: true });
  const tasks = [
    mk("t1", "L", 2, ["home"], "2026-01-01"),
    mk("t2", "L", 1, ["work"], undefined),
    mk("t3", "M", 0, ["home"], "2026-01-01"),
    mk("t4", "L", 3, ["home"], "2026-01-01", true),
  ];
  const now = "2026-06-01";
  assert.deepEqual(visibleTasks(tasks, "L", {}, now).map((t) => t.id), ["t2", "t1", "t4"]);
  assert.deepEqual(visibleTasks(tasks, "L", { tag: "home" }, now).map((t) => t.id), ["t1", "t4"]);
  assert.deepEqual(visibleTasks(tasks, "L", { overdueOnly: true }, now).map((t) => t.id), ["t1"]);
  assert.deepEqual(visibleTasks(tasks, "L", { tag: "work", overdueOnly: true }, now), []);
});

test("names are trimmed; empty ones refused", () => {
  assert.equal(cleanName("  Groceries   list "), "Groceries list");
  assert.equal(cleanName("   "), null);
  assert.equal(cleanName("x".repeat(300)).length, 200);
});

test("the board's space is found by app = echo-taskboard, the same one in every tab", () => {
  const spaces = [
    { id: "s3", properties: { app: "echo-taskboard" } },
    { id: "s1", properties: { app: "other" } },
    { id: "s2", properties: { app: "echo-taskboard", name: "Task board" } },
  ];
  assert.equal(findBoardSpace(spaces).id, "s2");
  assert.equal(findBoardSpace([{ id: "s1", properties: {} }]), undefined);
});
