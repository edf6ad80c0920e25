// The e2e tests' probe app: the SDK (client/src) plus raw access to the vault's
// shell, exposed as window.probe for page.evaluate. Served as an app site
// (app.localhost / other.localhost) by echo-signal --app-dir.
import * as echo from "@echo/client";
import type { Vault } from "@echo/client";

declare const __VAULT_URL__: string;
const VAULT_URL = __VAULT_URL__;
const VAULT_ORIGIN = new URL(VAULT_URL).origin;

const stateEl = document.getElementById("state") as HTMLElement;
const askBtn = document.getElementById("ask") as HTMLButtonElement;
const slotEl = document.getElementById("slot") as HTMLElement;

type Settled = { ok: true; value: unknown; ms: number } | { ok: false; code: string; reason?: string; message: string; ms: number };

function settle(p: Promise<unknown>): Promise<Settled> {
  const t0 = performance.now();
  return p.then(
    (value) => ({ ok: true as const, value, ms: performance.now() - t0 }),
    (e: unknown) => {
      const err = e as { code?: string; details?: Record<string, string>; message?: string };
      return { ok: false as const, code: String(err?.code ?? "not-an-echo-error"), reason: err?.details?.["reason"], message: String(err?.message ?? e), ms: performance.now() - t0 };
    },
  );
}

/** A raw connection: the iframe handshake done by hand, the port kept. */
class RawConn {
  readonly frame: HTMLIFrameElement;
  port: MessagePort | null = null;
  messages: unknown[] = [];
  /** When the iframe was created (performance.now()). */
  readonly created = performance.now();
  answer: { echo?: string; state?: string; error?: unknown; storage?: string; ports: number; ms: number; sinceCreated: number } | null = null;
  private waiters: Array<() => void> = [];

  constructor(frame: HTMLIFrameElement) {
    this.frame = frame;
  }

  /** Posts `connect` (plus any extra fields) and waits for the shell's answer. */
  connect(extra: Record<string, unknown> = {}, timeoutMs = 8000): Promise<RawConn["answer"]> {
    const started = performance.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        removeEventListener("message", onMessage);
        resolve(null);
      }, timeoutMs);
      const onMessage = (event: MessageEvent) => {
        if (event.origin !== VAULT_ORIGIN || event.source !== this.frame.contentWindow) return;
        const data = event.data as { echo?: string; state?: string; error?: unknown; storage?: string };
        if (data?.echo !== "connected" && data?.echo !== "refused") return;
        clearTimeout(timer);
        removeEventListener("message", onMessage);
        this.answer = { echo: data.echo, state: data.state, error: data.error, storage: data.storage, ports: event.ports.length, ms: performance.now() - started, sinceCreated: performance.now() - this.created };
        const port = event.ports[0];
        if (port) {
          this.port = port;
          port.onmessage = (m: MessageEvent) => {
            let data: unknown = m.data;
            if (typeof data === "string") {
              try {
                data = JSON.parse(data);
              } catch {
                data = { unparsable: data };
              }
            }
            // The engine may answer in frames (JSON arrays of messages).
            if (Array.isArray(data)) this.messages.push(...data);
            else this.messages.push(data);
            const waiters = this.waiters;
            this.waiters = [];
            for (const w of waiters) w();
          };
        }
        resolve(this.answer);
      };
      addEventListener("message", onMessage);
      this.frame.contentWindow!.postMessage({ echo: "connect", ...extra }, VAULT_ORIGIN);
    });
  }

  /** Sends one message: a string as is, anything else as JSON text (unless `clone`). */
  send(data: unknown, clone = false): void {
    if (!this.port) throw new Error("raw connection has no port");
    this.port.postMessage(typeof data === "string" || clone ? data : JSON.stringify(data));
  }

  /** Waits until a message after index `from` matches. */
  async waitFor(from: number, match: (m: any) => boolean, timeoutMs = 5000): Promise<any> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.messages.length; i++) if (match(this.messages[i])) return this.messages[i];
      const left = deadline - performance.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends a message and waits for the answer to call `id` (a response), or a `rejected`. */
  async exchange(data: unknown, id: number | null, { clone = false, timeoutMs = 5000 } = {}): Promise<any> {
    const from = this.messages.length;
    const t0 = performance.now();
    this.send(data, clone);
    const reply = await this.waitFor(from, (m) => (id !== null && m?.response?.id === id) || m?.rejected !== undefined || m?.refused !== undefined, timeoutMs);
    return reply === null ? null : { ...reply, ms: performance.now() - t0 };
  }

  /** The handshake on the port: hello → welcome (or refused). */
  hello(extra: Record<string, unknown> = {}): Promise<any> {
    const from = this.messages.length;
    this.send({ hello: { versions: [1], client: "echo-e2e raw", ...extra } });
    return this.waitFor(from, (m) => m?.welcome !== undefined || m?.refused !== undefined || m?.rejected !== undefined);
  }

  /** One call: {request: {id, method}} → the response's result ({Ok} / {Err}). */
  async call(id: number, method: unknown, timeoutMs = 5000): Promise<any> {
    const reply = await this.exchange({ request: { id, method } }, id, { timeoutMs });
    return reply?.response?.result ?? reply;
  }
}

function rawFrame(): RawConn {
  const frame = document.createElement("iframe");
  frame.src = `${VAULT_URL}/vault.html`;
  frame.className = "raw";
  document.body.appendChild(frame);
  return new RawConn(frame);
}

const probe = {
  echo,
  vaultUrl: VAULT_URL,
  vault: null as Vault | null,
  states: [] as Array<{ state: string; at: number }>,
  access: null as Settled | null,
  acked: [] as string[],
  /** Every change of vault.storageAccess, with its time. */
  accessStates: [] as Array<{ access: string | null; at: number }>,
  writeError: null as Settled | null,

  /** Starts the SDK connection (once). */
  start(options: Partial<echo.ConnectOptions> & { slot?: boolean } = {}): void {
    if (probe.vault) return;
    const { slot, ...rest } = options;
    const vault = echo.connect({ vaultUrl: VAULT_URL, clientName: "echo-e2e probe", ...rest, ...(slot ? { accessSlot: slotEl } : {}) });
    vault.onStorageAccess((access) => probe.accessStates.push({ access, at: performance.now() }));
    probe.vault = vault;
    probe.states.push({ state: vault.state, at: performance.now() });
    vault.onStateChange((state) => {
      probe.states.push({ state, at: performance.now() });
      stateEl.textContent = state;
      stateEl.dataset["state"] = state;
    });
  },
  settle,

  /** Opens a raw connection: a new iframe of the shell, loaded. */
  async raw(): Promise<RawConn> {
    const conn = rawFrame();
    await new Promise<void>((resolve) => conn.frame.addEventListener("load", () => resolve(), { once: true }));
    return conn;
  },

  /** Ports opened by `many`, with the messages each received (JSON-parsed, frames unpacked). */
  held: [] as Array<{ port: MessagePort; messages: unknown[] }>,

  /**
   * `n` connections through one shell iframe (one `connect` each, answered with a port), each greeted with a
   * hello unless `hello` is false; kept in `held`. Resolves with how many ports came.
   */
  async many(n: number, hello = true, timeoutMs = 60_000): Promise<number> {
    const frame = rawFrame().frame;
    await new Promise<void>((resolve) => frame.addEventListener("load", () => resolve(), { once: true }));
    let got = 0;
    const all = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      addEventListener("message", (event: MessageEvent) => {
        if (event.source !== frame.contentWindow || (event.data as { echo?: string })?.echo !== "connected") return;
        const port = event.ports[0];
        if (!port) return;
        const entry = { port, messages: [] as unknown[] };
        port.onmessage = (m) => {
          const data = typeof m.data === "string" ? JSON.parse(m.data) : m.data;
          if (Array.isArray(data)) entry.messages.push(...data);
          else entry.messages.push(data);
        };
        probe.held.push(entry);
        if (hello) port.postMessage(JSON.stringify({ hello: { versions: [1], client: "echo-e2e many" } }));
        if (++got === n) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    for (let i = 0; i < n; i++) frame.contentWindow!.postMessage({ echo: "connect" }, VAULT_ORIGIN);
    await all;
    return got;
  },

  /** Closes every held port. */
  dropHeld(): void {
    for (const { port } of probe.held) port.close();
    probe.held = [];
  },

  /** Writes `n` objects of `type` one by one, each awaited; acknowledged ids go to `acked` and the console. */
  async writeMany(space: string, type: string, n: number, start = 0, early = false): Promise<number> {
    const s = probe.vault!.space(space);
    for (let i = start; i < start + n; i++) {
      if (early) {
        // Negative control: "acknowledge" an app-chosen id before the vault has it.
        const id = echo.newId();
        console.log(`ACK ${i} ${id}`);
        void s.create(type, { n: i, label: `object ${i}` }, { id });
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      const r = await settle(s.create(type, { n: i, label: `object ${i}` }));
      if (!r.ok) {
        probe.writeError = r;
        console.log(`WRITE-ERROR ${r.code} ${r.message}`);
        return i - start;
      }
      probe.acked.push(r.value as string);
      console.log(`ACK ${i} ${r.value as string}`);
    }
    return n;
  },
};

askBtn.addEventListener("click", () => {
  // Inside the click, before any await: the consent popup needs the gesture.
  void settle(probe.vault!.requestAccess({ appName: "E2E probe" })).then((r) => {
    probe.access = r;
  });
});

// From a click (the vault window needs the gesture): the first-party vault window, and reconnect (reopens it).
(document.getElementById("open-window") as HTMLButtonElement).addEventListener("click", () => probe.vault!.openWindow());
(document.getElementById("reconnect") as HTMLButtonElement).addEventListener("click", () => probe.vault!.reconnect());

(window as unknown as { probe: typeof probe }).probe = probe;
stateEl.textContent = "ready";
stateEl.dataset["state"] = "ready";
