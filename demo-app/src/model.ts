// The task board's data, read from vault objects, and the rules the UI
// applies to it (ordering, tags, due dates). No DOM, no vault calls.

import { bool, num, refOf, str, strings, textOf, type EchoObject } from "@echo/client";

/** The property that marks the board's space. */
export const APP_PROPERTY = "app";
export const APP_ID = "echo-taskboard";
export const SPACE_NAME = "Task board";

export interface List {
  id: string;
  name: string;
  order: number;
}

export interface Task {
  id: string;
  /** The id of its list. */
  list: string;
  title: string;
  done: boolean;
  /** YYYY-MM-DD, or undefined. */
  due: string | undefined;
  tags: string[];
  order: number;
  /** The collaborative note's content. */
  note: string;
  /** Whether the object has a `note` text field yet. */
  hasNote: boolean;
}

/** A `list` object as a List (null for another type, or a deleted one). */
export function listFromObject(o: EchoObject): List | null {
  if (o.type !== "list" || o.deleted) return null;
  return { id: o.id, name: str(o.fields, "name") ?? "Untitled", order: num(o.fields, "order") ?? 0 };
}

/** A `task` object as a Task (null for another type, a deleted one, or one without a list). */
export function taskFromObject(o: EchoObject): Task | null {
  if (o.type !== "task" || o.deleted) return null;
  const list = refOf(o.fields, "list");
  if (!list) return null;
  const due = str(o.fields, "due");
  const note = textOf(o.fields, "note");
  return {
    id: o.id,
    list: list.object,
    title: str(o.fields, "title") ?? "",
    done: bool(o.fields, "done") ?? false,
    due: due !== undefined && isDate(due) ? due : undefined,
    tags: strings(o.fields, "tags") ?? [],
    order: num(o.fields, "order") ?? 0,
    note: note ?? "",
    hasNote: note !== undefined,
  };
}

/** Whether `s` is a real calendar date written YYYY-MM-DD. */
export function isDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/** Today's date in the local time zone, YYYY-MM-DD. */
export function today(now: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`;
}

/** Not done and due before `todayDate` (YYYY-MM-DD strings compare as dates). */
export function isOverdue(task: Pick<Task, "done" | "due">, todayDate: string): boolean {
  return !task.done && task.due !== undefined && task.due < todayDate;
}

/** Orders by `order`, then by id (a stable order when two tabs picked the same number). */
export function byOrder<T extends { order: number; id: string }>(a: T, b: T): number {
  return a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The `order` for an item appended after `items`. */
export function nextOrder(items: Iterable<{ order: number }>): number {
  let max = 0;
  for (const i of items) if (Number.isFinite(i.order) && i.order > max) max = i.order;
  return Math.floor(max) + 1;
}

/** Tags typed as "a, b  c,,d" → ["a", "b", "c", "d"]: trimmed, lower-cased, no duplicates, in order. */
export function parseTags(input: string): string[] {
  const out: string[] = [];
  for (const raw of input.split(/[,\s]+/)) {
    const tag = raw.trim().replace(/^#/, "").toLowerCase();
    if (tag !== "" && !out.includes(tag)) out.push(tag);
  }
  return out;
}

/** Tags shown in an input: "a, b". */
export function formatTags(tags: readonly string[]): string {
  return tags.join(", ");
}

/** Every tag used by `tasks`, sorted. */
export function allTags(tasks: Iterable<Task>): string[] {
  const set = new Set<string>();
  for (const t of tasks) for (const tag of t.tags) set.add(tag);
  return [...set].sort();
}

/** What the task list shows. */
export interface TaskFilter {
  /** Only tasks with this tag ("" or undefined: all). */
  tag?: string;
  /** Only overdue tasks. */
  overdueOnly?: boolean;
}

/** The tasks of list `listId` that pass `filter`, in board order. */
export function visibleTasks(tasks: Iterable<Task>, listId: string, filter: TaskFilter, todayDate: string): Task[] {
  const out: Task[] = [];
  for (const t of tasks) {
    if (t.list !== listId) continue;
    if (filter.tag && !t.tags.includes(filter.tag)) continue;
    if (filter.overdueOnly && !isOverdue(t, todayDate)) continue;
    out.push(t);
  }
  return out.sort(byOrder);
}

/** A list name as typed: trimmed, inner whitespace collapsed; null when empty. */
export function cleanName(input: string): string | null {
  const name = input.trim().replace(/\s+/g, " ");
  return name === "" ? null : name.slice(0, 200);
}

/** The board's space among the spaces granted to the app: the oldest-looking (smallest id) one marked `app = "echo-taskboard"`. */
export function findBoardSpace<S extends { id: string; properties: Record<string, unknown> }>(spaces: readonly S[]): S | undefined {
  return spaces
    .filter((s) => s.properties[APP_PROPERTY] === APP_ID)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))[0];
}
