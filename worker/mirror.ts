// The vault's second copy: a mirror of its IndexedDB databases in a storage bucket of their own
// (docs/browser-vault.md, section 2, "Storage deleted under the vault").
//
// Chromium deletes an origin's IndexedDB backing store when it finds it damaged on open ("recovering from a
// corrupted (and deleted) database" in its log) — e2e 07 meets it about once in 130 SIGKILLs of the browser
// during writes. A storage bucket (navigator.storageBuckets) has a backing store of its own, so the engine
// writes every batch to both — the default bucket's `echo-vault` and the bucket `echo-mirror`'s — and answers
// a write only once both hold it. At start, under the engine's lock, `prepare` restores the default databases
// from the mirror when they lost the vault (its wrapping key included: a non-extractable CryptoKey can only
// live in IndexedDB), or seeds the mirror from them when the mirror is the one that lost it (or is new).
// Where the browser has no storage buckets (Firefox, WebKit today) there is no mirror: prepare says so and
// the engine writes one copy, as before.

/** The bucket, and the databases and stores in it and in the default bucket (the engine's: vault-wasm idb.rs, keyring.rs). */
const BUCKET = "echo-mirror";
const CHUNKS = { db: "echo-vault", store: "chunks" };
const KEYS = { db: "echo-vault-keys", store: "keys" };
const IDENTITY_KEY = "vault/identity";

interface StorageBucket {
  indexedDB: IDBFactory;
}
interface StorageBucketManager {
  open(name: string, options?: { durability?: "strict" | "relaxed"; persisted?: boolean }): Promise<StorageBucket>;
}

/**
 * The mirror is behind the default databases (a write it missed, or one it did not commit in time): said in the
 * Cache API (storage apart from IndexedDB, like the engine's marker, vault-wasm marker.rs), so that a mirror
 * stuck mid-write is never restored from; `prepare` seeds it again and forgets the flag.
 */
const BEHIND_CACHE = "echo-marker";
const BEHIND_KEY = `echo-mirror-behind/${CHUNKS.db}`;

/**
 * How long a batch may take in the mirror after the default database committed it, before the engine answers
 * without it (the mirror then counts as behind).
 */
const MIRROR_WRITE_TIMEOUT_MS = 5_000;

async function setBehind(behind: boolean): Promise<void> {
  const cache = await caches.open(BEHIND_CACHE);
  if (behind) await cache.put(BEHIND_KEY, new Response("behind"));
  else await cache.delete(BEHIND_KEY);
}

async function isBehind(): Promise<boolean> {
  try {
    return (await (await caches.open(BEHIND_CACHE)).match(BEHIND_KEY)) !== undefined;
  } catch {
    // No Cache API here: a mirror that fell behind also deletes its identity record where it can.
    return false;
  }
}

/** One batch as the engine hands it over: [key, bytes] puts and [key] deletes, in order. */
export type MirrorOps = Array<[string, Uint8Array] | [string]>;

/** What `prepare` did, for the console and the diagnosis. */
export type MirrorState = "none" | "in_sync" | "seeded" | "restored" | "both_lost";

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Opens `name` with one object store `store` (schema version 1, as the engine makes it). */
function openDb(factory: IDBFactory, name: string, store: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = factory.open(name, 1);
    r.onupgradeneeded = () => {
      if (!r.result.objectStoreNames.contains(store)) r.result.createObjectStore(store);
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => reject(new Error(`opening ${name} is blocked by another connection`));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("the transaction was aborted"));
  });
}

/** Every entry of `store` in `db`, keys and values. */
async function readAll(db: IDBDatabase, store: string): Promise<Array<[IDBValidKey, unknown]>> {
  const tx = db.transaction(store, "readonly");
  const s = tx.objectStore(store);
  const [keys, values] = await Promise.all([request(s.getAllKeys()), request(s.getAll())]);
  return keys.map((k, i) => [k, values[i]]);
}

/** Replaces everything in `store` of `db` with `entries`, in one strict transaction. */
async function replaceAll(db: IDBDatabase, store: string, entries: Array<[IDBValidKey, unknown]>): Promise<void> {
  const tx = db.transaction(store, "readwrite", { durability: "strict" });
  const s = tx.objectStore(store);
  s.clear();
  for (const [k, v] of entries) s.put(v, k);
  await done(tx);
}

/** The vault's identity record in `db` (its bytes), if it has one. */
async function identityRecord(db: IDBDatabase): Promise<Uint8Array | undefined> {
  const tx = db.transaction(CHUNKS.store, "readonly");
  const value: unknown = await request(tx.objectStore(CHUNKS.store).get(IDENTITY_KEY));
  return value instanceof Uint8Array ? value : undefined;
}

async function count(db: IDBDatabase, store: string): Promise<number> {
  return request(db.transaction(store, "readonly").objectStore(store).count());
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

export class Mirror {
  private constructor(
    private readonly chunks: IDBDatabase,
    private readonly keys: IDBDatabase,
    /**
     * The StorageBucket the two databases were opened from, held for as long as they are used (never read).
     * Chromium (156) breaks a bucket's connections once its StorageBucket object is garbage-collected: every
     * later transaction on them never ends — no complete, error or abort, no `close` event — while a new
     * `storageBuckets.open` works again. Held by a local of `prepare` only, the bucket went with the first
     * major GC after the start: the 100,000-object fill of bench w2 left the mirror behind at its 6th–7th batch
     * in 3 runs of 3, in none once the bucket was kept (ADR 0006, "the stuck transaction").
     */
    private readonly bucket: StorageBucket,
  ) {}

  /**
   * Opens the mirror and brings the two copies together; null where the browser has no storage buckets, or
   * refuses this one (then the engine keeps one copy). Runs under the engine's lock, before it opens storage.
   */
  static async prepare(): Promise<{ mirror: Mirror | null; state: MirrorState }> {
    const buckets = (navigator as unknown as { storageBuckets?: StorageBucketManager }).storageBuckets;
    if (!buckets) return { mirror: null, state: "none" };
    let bucket: StorageBucket;
    try {
      bucket = await buckets.open(BUCKET, { durability: "strict", persisted: true });
    } catch (error) {
      console.warn("echo-engine: no mirror bucket", error);
      return { mirror: null, state: "none" };
    }
    const [mirrorChunks, mirrorKeys, chunks, keys] = await Promise.all([
      openDb(bucket.indexedDB, CHUNKS.db, CHUNKS.store),
      openDb(bucket.indexedDB, KEYS.db, KEYS.store),
      openDb(indexedDB, CHUNKS.db, CHUNKS.store),
      openDb(indexedDB, KEYS.db, KEYS.store),
    ]);
    const [mine, theirs, mirrorKeyCount, keyCount] = await Promise.all([
      identityRecord(chunks),
      identityRecord(mirrorChunks),
      count(mirrorKeys, KEYS.store),
      count(keys, KEYS.store),
    ]);
    const here = mine !== undefined;
    // A mirror restores only with its wrapping key (copied once the engine made it), and never one that fell
    // behind (a write it missed or did not commit in time).
    const behind = await isBehind();
    const there = theirs !== undefined && mirrorKeyCount > 0 && !behind;
    let state: MirrorState;
    if (here && there && sameBytes(mine, theirs)) {
      state = "in_sync";
      // The default key database alone lost its key: the mirror's, back.
      if (keyCount === 0) await replaceAll(keys, KEYS.store, await readAll(mirrorKeys, KEYS.store));
    } else if (there) {
      // The default databases lost the vault (the browser deleted them): the mirror holds every write the
      // engine answered. Keys first: a vault whose records are back but whose wrapping key is not cannot open.
      await replaceAll(keys, KEYS.store, await readAll(mirrorKeys, KEYS.store));
      await replaceAll(chunks, CHUNKS.store, await readAll(mirrorChunks, CHUNKS.store));
      state = "restored";
    } else if (here) {
      // A new mirror, or the mirror lost it, never got the key, or holds another vault (the default databases'
      // one wins): a copy of the default databases as they are.
      await replaceAll(mirrorKeys, KEYS.store, await readAll(keys, KEYS.store));
      await replaceAll(mirrorChunks, CHUNKS.store, await readAll(chunks, CHUNKS.store));
      if (behind) await setBehind(false).catch(() => {});
      state = "seeded";
    } else {
      // Neither holds a vault: a first run (or both lost, which the engine's marker tells).
      await replaceAll(mirrorKeys, KEYS.store, []);
      await replaceAll(mirrorChunks, CHUNKS.store, []);
      state = "both_lost";
    }
    chunks.close();
    keys.close();
    return { mirror: new Mirror(mirrorChunks, mirrorKeys, bucket), state };
  }

  /**
   * After the engine started: the wrapping key in the mirror too (a first run makes it after `prepare`; it
   * never changes after). Resolves with how many keys the mirror holds.
   */
  async copyKeys(): Promise<number> {
    const there = await count(this.keys, KEYS.store);
    if (there > 0) return there;
    const keys = await openDb(indexedDB, KEYS.db, KEYS.store);
    try {
      const entries = await readAll(keys, KEYS.store);
      await replaceAll(this.keys, KEYS.store, entries);
      return entries.length;
    } finally {
      keys.close();
    }
  }

  /** Set once a batch was not written in time or failed: this copy is behind and no longer one to restore from. */
  private broken = false;
  /** Batches written, and the last one's shape (for the diagnosis of a mirror that fell behind). */
  private batches = 0;
  private lastShape = "";
  /** Why it fell behind (the diagnosis). */
  whyBehind: string | null = null;

  /**
   * Starts writing one batch of the engine (the same it writes to the default bucket, as durably): resolves
   * with whether the mirror committed it (or true, once behind: it is no longer written). Never rejects; the
   * engine bounds the wait with `settle` once the default database committed the same batch.
   */
  apply(ops: MirrorOps, relaxed = false): Promise<true | Error> {
    if (this.broken) return Promise.resolve(true);
    this.batches += 1;
    const sizes = ops.map((o) => (o.length === 2 ? o[1].length : 0));
    this.lastShape = `batch ${this.batches}: ${ops.length} ops, ${sizes.reduce((a, b) => a + b, 0)} bytes, largest ${Math.max(0, ...sizes)}`;
    return (async () => {
      const tx = this.chunks.transaction(CHUNKS.store, "readwrite", { durability: relaxed ? "relaxed" : "strict" });
      const s = tx.objectStore(CHUNKS.store);
      for (const op of ops) {
        if (op.length === 2) s.put(op[1], op[0]);
        else s.delete(op[0]);
      }
      await done(tx);
      return true as const;
    })().catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
  }

  /**
   * Waits for a batch `apply` started, at most MIRROR_WRITE_TIMEOUT_MS from now — called once the default
   * database committed the same batch, so a batch as large as the whole vault gets as long as the default
   * database took, and more. Never rejects: a batch the mirror failed (say, over its quota) or did not commit
   * in time (seen: a transaction of the bucket that never ended, in Chromium, after a hostile page opened
   * 10,000 connections — most likely the collected StorageBucket, see `bucket`) leaves it behind the default
   * databases — it is flagged as behind outside IndexedDB and no longer written, so it is never restored from,
   * and `prepare` seeds it again at the next start.
   */
  async settle(write: Promise<true | Error>): Promise<void> {
    if (this.broken) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<Error>((resolve) => {
      timer = setTimeout(
        () => resolve(new Error(`the mirror did not commit within ${MIRROR_WRITE_TIMEOUT_MS} ms of the default database`)),
        MIRROR_WRITE_TIMEOUT_MS,
      );
    });
    const outcome = await Promise.race([write, late]);
    clearTimeout(timer);
    if (outcome === true || this.broken) return;
    this.broken = true;
    this.whyBehind = `${String(outcome)} (${this.lastShape})`;
    console.error("echo-engine: the mirror fell behind; it is seeded again at the next start", outcome);
    await setBehind(true).catch((again: unknown) => console.error("echo-engine: cannot flag the mirror as behind", again));
    // And where the transaction store still works, its vault record goes too (not awaited: it may wait behind
    // the stuck transaction).
    try {
      this.chunks.transaction(CHUNKS.store, "readwrite").objectStore(CHUNKS.store).delete(IDENTITY_KEY);
    } catch {
      // The connection is gone: the flag says it.
    }
  }

  /** Whether the mirror fell behind in this run (the diagnosis). */
  get behind(): boolean {
    return this.broken;
  }

  /** The person starts a new vault: the mirror forgets the old one too. */
  async clear(): Promise<void> {
    await replaceAll(this.keys, KEYS.store, []);
    await replaceAll(this.chunks, CHUNKS.store, []);
    await setBehind(false).catch(() => {});
  }

}
