// The board's data layer on the vault: finds (or creates) the space,
// keeps lists and tasks live through two resolving subscriptions, and
// writes changes. The UI listens with `onChange`.

import {
  type EchoError,
  mutation,
  query,
  ref,
  text,
  where,
  type EchoObject,
  type Space,
  type Subscription,
  type Vault,
} from "@echo/client";
import {
  APP_ID,
  APP_PROPERTY,
  SPACE_NAME,
  byOrder,
  findBoardSpace,
  listFromObject,
  nextOrder,
  taskFromObject,
  type List,
  type Task,
} from "./model.js";

export interface NewTask {
  title: string;
  due?: string | undefined;
  tags?: string[];
}

export interface TaskPatch {
  title?: string;
  done?: boolean;
  /** null removes the due date. */
  due?: string | null;
  tags?: string[];
}

type ChangeKind = "lists" | "tasks";

export class Board {
  readonly vault: Vault;
  space: Space | null = null;
  readonly lists = new Map<string, List>();
  readonly tasks = new Map<string, Task>();
  private listSub: Subscription | null = null;
  private taskSub: Subscription | null = null;
  private readonly listeners = new Set<(kind: ChangeKind, changedIds: readonly string[]) => void>();
  private opening: Promise<void> | null = null;

  constructor(vault: Vault) {
    this.vault = vault;
  }

  get isOpen(): boolean {
    return this.space !== null && this.listSub !== null && this.taskSub !== null;
  }

  onChange(listener: (kind: ChangeKind, changedIds: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(kind: ChangeKind, ids: readonly string[]): void {
    for (const l of [...this.listeners]) l(kind, ids);
  }

  /** Lists in board order. */
  sortedLists(): List[] {
    return [...this.lists.values()].sort(byOrder);
  }

  /** Finds or creates the board's space and opens the live queries (once; later calls wait for the first). */
  open(): Promise<void> {
    if (!this.opening) {
      this.opening = this.doOpen().catch((e: unknown) => {
        this.opening = null;
        throw e;
      });
    }
    return this.opening;
  }

  private async doOpen(): Promise<void> {
    const spaceId = await this.findOrCreateSpace();
    this.space = this.vault.space(spaceId);
    const lists = await this.space.subscribe(query(where.type("list"), { order: ["order"] }), (diff, sub) => {
      this.setLists(sub.list());
      this.emit("lists", [...diff.added, ...diff.removed, ...diff.changed]);
    }, { resolve: true, onError: (e) => this.lost(e) });
    this.listSub = lists;
    this.setLists(lists.list());
    const tasks = await this.space.subscribe(query(where.type("task")), (diff, sub) => {
      this.setTasks(sub.list());
      this.emit("tasks", [...diff.added, ...diff.removed, ...diff.changed]);
    }, { resolve: true, onError: (e) => this.lost(e) });
    this.taskSub = tasks;
    this.setTasks(tasks.list());
    this.emit("lists", []);
    this.emit("tasks", []);
  }

  /** Forgets the space and its live queries (access revoked, or the space is no longer granted); `open()` starts afresh. */
  close(): void {
    const subs = [this.listSub, this.taskSub];
    this.listSub = null;
    this.taskSub = null;
    this.space = null;
    this.opening = null;
    this.lists.clear();
    this.tasks.clear();
    for (const sub of subs) sub?.unsubscribe().catch(() => undefined);
    this.emit("lists", []);
    this.emit("tasks", []);
  }

  /** Called when a live query could not be re-opened after a reconnect. */
  onLost: ((error: EchoError) => void) | null = null;

  private lost(error: EchoError): void {
    if (!this.isOpen) return;
    this.close();
    this.onLost?.(error);
  }

  /** The board this browser shows: one chosen (a board joined), if still there. */
  static readonly CHOSEN_KEY = "echo-taskboard.board";

  /** Shows board `space` (one just joined) from now on. */
  async switchTo(space: string): Promise<void> {
    localStorage.setItem(Board.CHOSEN_KEY, space);
    this.close();
    await this.open();
  }

  /**
   * The board's space: the one chosen here (a board someone shared), else
   * the user's own for this app, found by its `app` property. Tabs opening
   * at once agree through a Web Lock.
   */
  private async findOrCreateSpace(): Promise<string> {
    const find = async (): Promise<string> => {
      const spaces = await this.vault.spaces.list();
      const chosen = localStorage.getItem(Board.CHOSEN_KEY);
      if (chosen && spaces.some((s) => s.id === chosen)) return chosen;
      const found = findBoardSpace(spaces);
      if (found) return found.id;
      const created = await this.vault.spaces.create({ [APP_PROPERTY]: APP_ID, name: SPACE_NAME });
      return created.id;
    };
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    if (locks?.request) return locks.request("echo-taskboard-space", find);
    return find();
  }

  private setLists(objects: EchoObject[]): void {
    this.lists.clear();
    for (const o of objects) {
      const l = listFromObject(o);
      if (l) this.lists.set(l.id, l);
    }
  }

  private setTasks(objects: EchoObject[]): void {
    this.tasks.clear();
    for (const o of objects) {
      const t = taskFromObject(o);
      if (t) this.tasks.set(t.id, t);
    }
  }

  private requireSpace(): Space {
    if (!this.space) throw new Error("the board is not open yet");
    return this.space;
  }

  // --------------------------------------------------------------- writes

  async addList(name: string): Promise<string> {
    return this.requireSpace().create("list", { name, order: nextOrder(this.lists.values()) });
  }

  async renameList(id: string, name: string): Promise<void> {
    await this.requireSpace().update(id, { name });
  }

  /** Deletes a list and its tasks in one batch. */
  async deleteList(id: string): Promise<void> {
    const mutations = [...this.tasks.values()].filter((t) => t.list === id).map((t) => mutation.delete(t.id));
    mutations.push(mutation.delete(id));
    await this.requireSpace().batch(mutations);
  }

  async addTask(listId: string, task: NewTask): Promise<string> {
    const siblings = [...this.tasks.values()].filter((t) => t.list === listId);
    return this.requireSpace().create("task", {
      list: ref(listId),
      title: task.title,
      done: false,
      due: task.due || undefined,
      tags: task.tags ?? [],
      order: nextOrder(siblings),
      note: text(""),
    });
  }

  async updateTask(id: string, patch: TaskPatch): Promise<void> {
    const set: { [key: string]: string | boolean | string[] } = {};
    const remove: string[] = [];
    if (patch.title !== undefined) set["title"] = patch.title;
    if (patch.done !== undefined) set["done"] = patch.done;
    if (patch.tags !== undefined) set["tags"] = patch.tags;
    if (patch.due === null || patch.due === "") remove.push("due");
    else if (patch.due !== undefined) set["due"] = patch.due;
    await this.requireSpace().update(id, set, remove);
  }

  async deleteTask(id: string): Promise<void> {
    await this.requireSpace().delete(id);
  }

  /**
   * One edit of a task's note (positions in code points; `context`: the characters before `pos` as
   * shown, see `Space.splice`). A task without a note field gets one first.
   */
  async spliceNote(id: string, pos: number, del: number, insert: string, context = ""): Promise<void> {
    const space = this.requireSpace();
    const task = this.tasks.get(id);
    if (task && !task.hasNote) {
      await space.update(id, { note: text("") });
      task.hasNote = true;
    }
    await space.splice(id, "note", pos, del, insert, { context });
  }

  async readNote(id: string): Promise<string> {
    return this.requireSpace().readText(id, "note");
  }
}
