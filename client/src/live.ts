// The current result of a live query, kept up to date from `query_diff`
// events (pure: no transport), and the diff between two results (to
// catch an app up after a re-subscription on reconnect).

import type { ObjectState } from "./protocol.js";
import { objectFromWire, type EchoObject } from "./values.js";

/** A `query_diff` as subscription callbacks get it. */
export interface QueryDiff {
  added: string[];
  removed: string[];
  changed: string[];
  /** The whole new result, for ordered / limited queries. */
  window?: string[];
  /** New states of added and changed objects (resolving subscriptions). */
  objects: EchoObject[];
  /** True for the diff computed after a re-subscription (reconnect), not sent by the vault. */
  resync: boolean;
}

/** The wire `query_diff` event's content. */
export interface WireQueryDiff {
  added: string[];
  removed: string[];
  changed: string[];
  window?: string[];
  objects?: ObjectState[];
}

/** A live query's current result. */
export class LiveResult {
  /** Ids of the result, in the query's order (ascending ids when it has none). */
  ids: string[] = [];
  /** Current objects by id (resolving subscriptions only). */
  readonly objects = new Map<string, EchoObject>();
  private readonly ordered: boolean;

  /** `ordered`: the query has an order or a limit (the vault sends `window`). */
  constructor(ordered: boolean) {
    this.ordered = ordered;
  }

  /** Replaces the whole result (the initial answer). */
  reset(ids: readonly string[], objects?: readonly ObjectState[]): void {
    this.ids = [...ids];
    this.objects.clear();
    for (const o of objects ?? []) this.objects.set(o.id, objectFromWire(o));
  }

  /** Applies a `query_diff` from the vault; returns it as callbacks see it. */
  apply(diff: WireQueryDiff): QueryDiff {
    const removed = new Set(diff.removed);
    if (diff.window) {
      this.ids = [...diff.window];
    } else {
      const kept = this.ids.filter((id) => !removed.has(id));
      const present = new Set(kept);
      for (const id of diff.added) if (!present.has(id)) kept.push(id);
      if (!this.ordered) kept.sort();
      this.ids = kept;
    }
    for (const id of removed) this.objects.delete(id);
    const objects = (diff.objects ?? []).map(objectFromWire);
    for (const o of objects) this.objects.set(o.id, o);
    if (diff.window) {
      // Objects that left the window are no longer part of the result.
      const inWindow = new Set(this.ids);
      for (const id of [...this.objects.keys()]) if (!inWindow.has(id)) this.objects.delete(id);
    }
    const out: QueryDiff = { added: [...diff.added], removed: [...diff.removed], changed: [...diff.changed], objects, resync: false };
    if (diff.window) out.window = [...diff.window];
    return out;
  }

  /**
   * Replaces the result with a fresh one (after a re-subscription) and
   * returns the difference as a diff, `null` when nothing changed.
   * Without objects every kept id counts as changed (it may have).
   */
  resync(ids: readonly string[], objects?: readonly ObjectState[]): QueryDiff | null {
    const before = new Set(this.ids);
    const after = new Set(ids);
    const added = ids.filter((id) => !before.has(id));
    const removed = this.ids.filter((id) => !after.has(id));
    const fresh = new Map((objects ?? []).map((o) => [o.id, o] as const));
    const changed: string[] = [];
    for (const id of ids) {
      if (!before.has(id)) continue;
      const now = fresh.get(id);
      const old = this.objects.get(id);
      if (!now || !old || JSON.stringify(now) !== JSON.stringify(old.wire)) changed.push(id);
    }
    const orderChanged = this.ordered && (ids.length !== this.ids.length || ids.some((id, i) => this.ids[i] !== id));
    this.reset(ids, objects);
    if (added.length === 0 && removed.length === 0 && changed.length === 0 && !orderChanged) return null;
    const changedObjects = [...added, ...changed].map((id) => this.objects.get(id)).filter((o): o is EchoObject => o !== undefined);
    const out: QueryDiff = { added: added.sort(), removed: removed.sort(), changed: changed.sort(), objects: changedObjects, resync: true };
    if (this.ordered) out.window = [...ids];
    return out;
  }
}
