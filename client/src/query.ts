// Builders of wire filters and queries from plain values:
//   where.and(where.type("task"), where.eq("done", false))
// The result is the wire form (protocol.ts `Filter` / `Query`) and can be
// mixed with hand-written wire filters.

import type { Compare, Direction, Filter, Order, Query } from "./protocol.js";
import { toWire, type PlainValue } from "./values.js";

/** How a filter's value is named in errors: `where.eq("due")`. */
function valuePath(builder: string, name: string): string {
  return `where.${builder}(${JSON.stringify(name)})`;
}

function field(name: string, op: Compare, value: PlainValue): Filter {
  return { field: { field: name, op, value: toWire(value, valuePath(op, name)) } };
}

/** Filter builders (semantics: echo_core::query). */
export const where = {
  /** Every object. */
  all(): Filter {
    return "all";
  },
  /** Objects of type `type`. */
  type(type: string): Filter {
    return { type };
  },
  field,
  eq: (name: string, value: PlainValue): Filter => field(name, "eq", value),
  ne: (name: string, value: PlainValue): Filter => field(name, "ne", value),
  lt: (name: string, value: PlainValue): Filter => field(name, "lt", value),
  le: (name: string, value: PlainValue): Filter => field(name, "le", value),
  gt: (name: string, value: PlainValue): Filter => field(name, "gt", value),
  ge: (name: string, value: PlainValue): Filter => field(name, "ge", value),
  /** `field` is one of `values`. */
  in(name: string, values: readonly PlainValue[]): Filter {
    return { in: { field: name, values: values.map((v, i) => toWire(v, `${valuePath("in", name)}[${i}]`)) } };
  },
  /** The object has field `name`. */
  exists(name: string): Filter {
    return { exists: name };
  },
  /** Text / string field `name` contains `needle`. */
  textContains(name: string, needle: string): Filter {
    return { text_contains: { field: name, needle } };
  },
  /** List field `name` contains `value`. */
  listContains(name: string, value: PlainValue): Filter {
    return { list_contains: { field: name, value: toWire(value, valuePath("listContains", name)) } };
  },
  /** Objects with a reference to object `id` (in any field). */
  references(id: string): Filter {
    return { references: id };
  },
  /** Objects whose reference field `name` points at an object matching `target`. */
  refersTo(name: string, target: Filter): Filter {
    return { refers_to: { field: name, target } };
  },
  /** Objects reachable from `root` along reference field `name`. */
  reachable(root: string, name: string, direction: Direction, maxDepth: number): Filter {
    return { reachable: { root, field: name, direction, max_depth: maxDepth } };
  },
  and(...filters: Filter[]): Filter {
    return { and: filters };
  },
  or(...filters: Filter[]): Filter {
    return { or: filters };
  },
  not(filter: Filter): Filter {
    return { not: filter };
  },
} as const;

/** Options of a query besides its filter. */
export interface QueryOptions {
  /** Sort keys: `"field"`, `"-field"` (descending), or wire `Order`s. */
  order?: ReadonlyArray<string | Order>;
  limit?: number;
  offset?: number;
  includeDeleted?: boolean;
}

/** A wire query: `query(where.type("task"), { order: ["order"] })`. */
export function query(filter: Filter, options: QueryOptions = {}): Query {
  const q: Query = { filter };
  if (options.order && options.order.length > 0) {
    q.order = options.order.map((o) =>
      typeof o === "string"
        ? o.startsWith("-")
          ? { field: o.slice(1), descending: true }
          : { field: o }
        : o,
    );
  }
  if (options.limit !== undefined) q.limit = options.limit;
  if (options.offset !== undefined && options.offset !== 0) q.offset = options.offset;
  if (options.includeDeleted) q.include_deleted = true;
  return q;
}
