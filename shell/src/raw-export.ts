// A way out when the vault cannot open: everything the vault stored, read straight from its IndexedDB
// database (no engine needed) and saved as one file, so that nothing is lost whatever went wrong.
//
// The file is JSON: {format: "echo-vault-raw-1", database, store, exported_at, entries: [{key, bytes}]}, each
// value as standard base64. It holds the vault's records, its space chunks (the data) and its sealed keys;
// the key that unseals them stays in the browser (a non-extractable key in `echo-vault-keys`).
import { bytesToBase64 } from "@echo/client/values";

/** The engine's database and object store (vault-wasm/src/engine.rs DATABASE, src/idb.rs CHUNKS). */
export const VAULT_DATABASE = "echo-vault";
const CHUNKS = "chunks";
export const RAW_FORMAT = "echo-vault-raw-1";

export interface RawExport {
  format: typeof RAW_FORMAT;
  database: string;
  store: string;
  exported_at: string;
  entries: Array<{ key: string; bytes: string }>;
}

/** A stored value as bytes (the engine stores Uint8Array; anything else is kept as its JSON text). */
function asBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new TextEncoder().encode(JSON.stringify(value));
}

/**
 * Reads every entry of the vault's database. Never creates it: a database that does not exist (an upgrade
 * would be needed) is left alone and reported as an error.
 */
export function readRawVault(database = VAULT_DATABASE): Promise<RawExport> {
  return new Promise((resolve, reject) => {
    let created = false;
    const open = indexedDB.open(database);
    open.onupgradeneeded = () => {
      created = true;
      open.transaction?.abort();
    };
    open.onerror = () =>
      reject(new Error(created ? "this browser holds no vault data for this site" : `cannot open the vault's storage: ${open.error?.message ?? "unknown error"}`));
    open.onblocked = () => reject(new Error("the vault's storage is busy; close other vault tabs and try again"));
    open.onsuccess = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains(CHUNKS)) {
        db.close();
        reject(new Error("the vault's storage holds no data"));
        return;
      }
      const entries: RawExport["entries"] = [];
      const tx = db.transaction(CHUNKS, "readonly");
      const cursor = tx.objectStore(CHUNKS).openCursor();
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (!c) return;
        entries.push({ key: String(c.key), bytes: bytesToBase64(asBytes(c.value)) });
        c.continue();
      };
      tx.oncomplete = () => {
        db.close();
        resolve({ format: RAW_FORMAT, database, store: CHUNKS, exported_at: new Date().toISOString(), entries });
      };
      tx.onerror = () => {
        db.close();
        reject(new Error(`cannot read the vault's storage: ${tx.error?.message ?? "unknown error"}`));
      };
    };
  });
}

/** Saves the export as a file the person keeps (a download). */
export function downloadRaw(raw: RawExport): void {
  const blob = new Blob([JSON.stringify(raw)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `echo-vault-raw-${raw.exported_at.slice(0, 10)}.json`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
