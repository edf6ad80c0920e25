// The contract between the benchmark driver (driver.js, identical for every store)
// and one store under test. One adapter per page: automerge.js, yjs.js, echo.js.
//
// Every method is called on the benchmark page (http://app.localhost:PORT/<name>.html).
// The driver never touches a store directly; it only calls these methods and times them.

/** A workload object: an id plus 6 fields (see data.js makeObject). */
export interface BenchObject {
  id: string;
  type: string; // 'task' | 'note' | 'event' | 'contact'
  title: string;
  done: boolean;
  priority: number;
  tags: string[];
  ref: string; // id of another object
}

/** Workload 2's query: "type = task and done = false". */
export interface Where {
  type: string;
  done: boolean;
}

export interface OpenOptions {
  /** What handoff() returned before the reload; undefined on a fresh (empty) profile. */
  handoff?: unknown;
  /** Storage layout variant, if the store has several (automerge-repo: 'one-doc' | 'doc-per-object'). */
  variant?: string;
}

export interface BenchAdapter {
  /** Column name in the table. */
  readonly name: string;
  /** false = the slot is not filled in yet; the harness reports "n/a" and skips the store. */
  readonly available: boolean;
  /** Variants this store supports for workload 1 (one-by-one); the first is the default. */
  readonly variants?: string[];

  /** Open (or, after a reload, reopen) the store; resolve when it can be read and written. */
  open(opts: OpenOptions): Promise<void>;
  /** JSON-serialisable state needed to find the same data after a reload (e.g. document URLs). */
  handoff(): unknown;

  /** One object in its own change/transaction. NOT awaited by the driver. */
  create(obj: BenchObject): void;
  /** Many objects in ONE change/transaction. NOT awaited by the driver. */
  createBatch(objs: BenchObject[]): void;
  /** Set one field of one object, in its own change/transaction. */
  update(id: string, field: keyof BenchObject, value: unknown): void;
  /** Resolve once everything issued so far is durable (would survive a reload/crash). */
  durable(): Promise<void>;

  /** First object matching `where`, as soon as the store can produce one (workload 2 timing ends here). */
  firstMatch(where: Where): Promise<BenchObject | undefined>;
  /** All objects matching `where` (verification only; untimed). */
  queryAll(where: Where): Promise<BenchObject[]>;
  /** Number of objects stored (verification only). */
  count(): Promise<number>;
  /** One object by id (verification only). */
  get(id: string): Promise<BenchObject | undefined>;

  /** Text workload: create the text field with `initial` content. */
  textInit(initial: string): void;
  /** One edit = one change: delete `del` chars at `pos`, then insert `ins` at `pos`. Positions are UTF-16 units. */
  textSplice(pos: number, del: number, ins: string): void;
  /** Current content of the text field. */
  textGet(): Promise<string>;

  /** Optional store-specific counters, copied into results.json. */
  diagnostics?(): Record<string, unknown>;

  /**
   * Memory this page cannot see itself (e.g. the vault SharedWorker's JS heap and wasm memory).
   * The harness adds it to the page's own JS heap (CDP, after GC) and wasm memories (instrument.js).
   */
  extraMemory?(): Promise<{ jsHeapBytes?: number; wasmBytes?: number }>;
}
