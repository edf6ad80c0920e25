// An exclusive lock over IndexedDB, for the browsers without Web Locks
// (Safari before 15.4, Firefox before 96): the dedicated-worker fallback
// elects the one page that runs the engine with it (docs/browser-vault.md,
// section 4), so that two tabs never run two engines on one database.
//
// The lock is a database of its own, `echo-lock-<name>`. Whoever opened it
// through a version change (`upgradeneeded`) holds the lock as long as that
// connection stays open, and keeps it open — it ignores `versionchange` — for
// the life of the page. Anyone else asks for the next version: that open is
// blocked (the browser queues it) until the holder's connection closes, which
// happens when its page goes away (closed, reloaded, navigated), and then its
// own upgrade makes it the holder. An open that finds the database already at
// the version it asked for, or past it (`VersionError`), lost a race to another
// waiter: it reads the version again and asks for the next one. No timing is
// involved: the browser's queue of opens on one database decides.

/** Held connections: referenced for the life of the page. */
const held: IDBDatabase[] = [];

/** One open of the lock's database: held, or the version to ask for next (null: read it again). */
function attempt(factory: IDBFactory, name: string, version: number | null): Promise<{ held: true } | { next: number | null }> {
  return new Promise((resolve, reject) => {
    let upgraded = false;
    const request = version === null ? factory.open(name) : factory.open(name, version);
    request.onupgradeneeded = () => {
      upgraded = true;
    };
    request.onsuccess = () => {
      const db = request.result;
      if (upgraded) {
        // Never closed for another page's upgrade: that page waits until this one is gone.
        db.onversionchange = () => {};
        held.push(db);
        resolve({ held: true });
        return;
      }
      const current = db.version;
      db.close();
      resolve({ next: current + 1 });
    };
    request.onerror = (event) => {
      if (request.error?.name === "VersionError") {
        // Another waiter took that version first: read the current one again.
        event.preventDefault();
        resolve({ next: null });
        return;
      }
      reject(request.error ?? new Error(`cannot open ${name}`));
    };
    // onblocked: the holder's connection is open; the browser keeps this open queued until it closes.
  });
}

/**
 * Resolves once this page holds the exclusive lock `name`; it holds it until the page goes away. Rejects when
 * IndexedDB refuses (storage blocked).
 */
export async function holdIdbLock(factory: IDBFactory, name: string): Promise<void> {
  const dbName = `echo-lock-${name}`;
  // The first open creates the database when there is none, and then holds it.
  let result = await attempt(factory, dbName, null);
  while ("next" in result) result = await attempt(factory, dbName, result.next);
}
