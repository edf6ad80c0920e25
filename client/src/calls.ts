// The client's side of calls, independent of the transport: call ids,
// one promise per call, timeouts, cancellation, late answers, and calls
// made while no connection is up (held until one is, or they time out).

import { EchoError } from "./errors.js";
import type { ClientMessage, Request, Response, RpcError } from "./protocol.js";

/** Options of one call. */
export interface CallOptions {
  /** Fails the call with `rpc.timeout` after this many ms (default: the connection's `callTimeoutMs`). */
  timeoutMs?: number;
  /** Aborting fails the call with `rpc.cancelled` and tells the vault to stop it. */
  signal?: AbortSignal;
}

interface Call {
  method: Request;
  name: string;
  resolve: (r: Response) => void;
  reject: (e: EchoError) => void;
  /** When it times out (Date.now() ms), or Infinity. */
  deadline: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The id it was sent under; undefined while held. */
  id: number | undefined;
  /** Sent over the connection of this generation. */
  generation: number;
  /** Not held: fails at once when no connection is up (the heartbeat). */

}

/** The method name of a request (its single tag). */
export function methodName(method: Request): string {
  return Object.keys(method)[0] ?? "?";
}

const U32 = 0x1_0000_0000;

/**
 * Pending calls of one client. The transport gives it a `send` function
 * while a connection is up (`attach`), takes it away on a disconnect
 * (`detach`, failing what was sent), and hands it every `response`.
 */
export class CallTable {
  private readonly sent = new Map<number, Call>();
  private held: Call[] = [];
  private nextId = 1;
  private send: ((m: ClientMessage) => void) | null = null;
  private generation = 0;
  private refusal: EchoError | null = null;
  /**
   * Calls with a deadline. One timer serves them all, armed for the
   * earliest deadline (a timer per call cost the page more than the calls
   * themselves when an app issued a few hundred thousand).
   */
  private readonly timed = new Set<Call>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;
  readonly defaultTimeoutMs: number;

  constructor(defaultTimeoutMs = 30_000) {
    this.defaultTimeoutMs = defaultTimeoutMs;
  }

  /** Calls sent and not answered yet. */
  get pendingCount(): number {
    return this.sent.size;
  }

  /** Calls waiting for a connection. */
  get heldCount(): number {
    return this.held.length;
  }

  /** A fresh u32 id, not among the pending calls' ids. */
  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) % U32;
      if (!this.sent.has(id)) return id;
    }
  }

  /**
   * Makes a call. Held while no connection is up (until `attach`, its
   * timeout, or its cancellation); fails at once while `refuse` is set.
   */
  call(method: Request, options: CallOptions = {}, immediate = false): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const name = methodName(method);
      if (this.refusal) {
        reject(this.refusal);
        return;
      }
      if (options.signal?.aborted) {
        reject(new EchoError("rpc.cancelled", `${name} was cancelled before it was sent`));
        return;
      }
      if (immediate && !this.send) {
        reject(new EchoError("rpc.disconnected", `${name}: the vault is not connected`));
        return;
      }
      const call: Call = {
        method,
        name,
        resolve,
        reject,
        deadline: Infinity,
        timeoutMs: 0,
        signal: options.signal,
        onAbort: undefined,
        id: undefined,
        generation: 0,

      };
      const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
      if (Number.isFinite(timeoutMs) && timeoutMs >= 0) {
        call.timeoutMs = timeoutMs;
        call.deadline = Date.now() + timeoutMs;
        this.timed.add(call);
        if (call.deadline < this.timerAt) this.armTimer(call.deadline);
      }
      if (options.signal) {
        call.onAbort = () => this.giveUp(call, new EchoError("rpc.cancelled", `${name} was cancelled`));
        options.signal.addEventListener("abort", call.onAbort, { once: true });
      }
      if (this.send) this.transmit(call);
      else this.held.push(call);
    });
  }

  private transmit(call: Call): void {
    const send = this.send;
    if (!send) {
      this.held.push(call);
      return;
    }
    const id = this.allocateId();
    call.id = id;
    call.generation = this.generation;
    this.sent.set(id, call);
    try {
      send({ request: { id, method: call.method } });
    } catch (e) {
      // Too large, a value that cannot be serialized, a closed port, …: the call fails, nothing was sent.
      this.sent.delete(id);
      call.id = undefined;
      this.settle(call);
      call.reject(e instanceof EchoError ? e : new EchoError("rpc.bad_request", `${call.name} could not be sent: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  /** Timeout or cancellation: fail at once, tell the vault, ignore a late answer. */
  private giveUp(call: Call, error: EchoError): void {
    if (call.id !== undefined) {
      if (this.sent.get(call.id) !== call) return; // already answered
      this.sent.delete(call.id);
      if (this.send && call.generation === this.generation) {
        try {
          this.send({ cancel: { id: call.id } });
        } catch {
          // The connection is going away; its disconnect fails the rest.
        }
      }
    } else {
      const i = this.held.indexOf(call);
      if (i < 0) return;
      this.held.splice(i, 1);
    }
    this.settle(call);
    call.reject(error);
  }

  private armTimer(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - Date.now()));
  }

  /** The timer fired: fail the calls past their deadline, re-arm for the next one. */
  private expire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const call of [...this.timed]) {
      if (call.deadline <= now) {
        this.giveUp(call, new EchoError("rpc.timeout", `${call.name} got no answer within ${call.timeoutMs} ms; the vault may be busy, retry or raise the timeout`));
      } else if (call.deadline < next) {
        next = call.deadline;
      }
    }
    if (next !== Infinity) this.armTimer(next);
  }

  private settle(call: Call): void {
    this.timed.delete(call);
    call.deadline = Infinity;
    if (this.timed.size === 0 && this.timer !== undefined) {
      // Nothing left to time out: no timer keeps the event loop busy.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
    }
    if (call.signal && call.onAbort) call.signal.removeEventListener("abort", call.onAbort);
    call.onAbort = undefined;
  }

  /** A `response` from the vault. Returns false when no pending call has `id` (a late answer: ignored). */
  handleResponse(id: number, result: { Ok: Response } | { Err: RpcError }): boolean {
    const call = this.sent.get(id);
    if (!call) return false;
    this.sent.delete(id);
    this.settle(call);
    if (result && typeof result === "object" && "Ok" in result) call.resolve(result.Ok);
    else if (result && typeof result === "object" && "Err" in result) call.reject(EchoError.fromWire(result.Err));
    else call.reject(new EchoError("rpc.internal", `${call.name}: the vault sent a malformed response`));
    return true;
  }

  /** A connection is up: send held calls, and new ones at once. */
  attach(send: (m: ClientMessage) => void): void {
    this.generation++;
    this.send = send;
    const held = this.held;
    this.held = [];
    for (const call of held) this.transmit(call);
  }

  /**
   * The connection went away: every sent call fails with `error`
   * (`rpc.disconnected`, or `rpc.not_authorized` on a revocation); held
   * calls too when `includeHeld`. New calls are held again.
   */
  detach(error: EchoError, includeHeld = true): void {
    this.send = null;
    this.generation++;
    const sent = [...this.sent.values()];
    this.sent.clear();
    const held = includeHeld ? this.held : [];
    if (includeHeld) this.held = [];
    for (const call of [...sent, ...held]) {
      this.settle(call);
      call.reject(error);
    }
  }

  /** While set, every call fails at once with `error` (storage blocked, …); held calls fail now. */
  refuse(error: EchoError | null): void {
    this.refusal = error;
    if (error) {
      const held = this.held;
      this.held = [];
      for (const call of held) {
        this.settle(call);
        call.reject(error);
      }
    }
  }

  /** Whether a connection is attached. */
  get attached(): boolean {
    return this.send !== null;
  }
}
