// Errors as apps see them: one class, a stable `code`, a sentence for a
// person, and string details (the wire's RpcError, plus the client's own
// rpc.timeout / rpc.cancelled / rpc.disconnected).

import type { RpcError } from "./protocol.js";

/**
 * The error codes the client itself produces (see core/src/rpc/mod.rs), all
 * among the protocol's `RPC_ERROR_CODES`. Refusing a value before sending
 * it (values.ts): `rpc.bad_request` with `details.path` (where, e.g.
 * `fields.tags[3]`) and `details.reason` (`unsupported_type` with
 * `details.type`, `cycle`, `out_of_range`, `lone_surrogate`, `malformed`),
 * or `rpc.too_deep` with `details.path` and `details.limit`
 * (`LIMITS.maxValueDepth`); a message over `LIMITS.maxMessageBytes`:
 * `rpc.too_large` with `details.limit`.
 */
export const CLIENT_ERROR_CODES = {
  timeout: "rpc.timeout",
  cancelled: "rpc.cancelled",
  disconnected: "rpc.disconnected",
  notAuthorized: "rpc.not_authorized",
  storagePartitioned: "rpc.storage_partitioned",
  storageBlocked: "rpc.storage_blocked",
  storageLost: "rpc.storage_lost",
  badRequest: "rpc.bad_request",
  tooDeep: "rpc.too_deep",
  tooLarge: "rpc.too_large",
} as const;

/**
 * A failed call. `code` is machine-readable (`rpc.timeout`,
 * `model.not_found`, …; match on it), `message` is for people, `details`
 * carries string context (e.g. `details.reason` of `rpc.not_authorized`:
 * `"consent_required" | "denied" | "revoked"`).
 */
export class EchoError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, string>>;

  constructor(code: string, message: string, details?: Record<string, string>) {
    super(message);
    this.name = "EchoError";
    this.code = code;
    this.details = Object.freeze({ ...(details ?? {}) });
  }

  /** The error a vault sent (`RpcError` on the wire). */
  static fromWire(error: RpcError): EchoError {
    const code = typeof error?.code === "string" ? error.code : "rpc.internal";
    const message =
      typeof error?.message === "string" ? error.message : "the vault answered with a malformed error";
    const details: Record<string, string> = {};
    if (error?.details && typeof error.details === "object") {
      for (const [k, v] of Object.entries(error.details)) {
        if (typeof v === "string") details[k] = v;
      }
    }
    return new EchoError(code, message, details);
  }

  /** The wire form (`RpcError`). */
  toWire(): RpcError {
    const wire: RpcError = { code: this.code, message: this.message };
    if (Object.keys(this.details).length > 0) wire.details = { ...this.details };
    return wire;
  }
}

/** Whether `e` is an [`EchoError`], optionally of one code. */
export function isEchoError(e: unknown, code?: string): e is EchoError {
  return e instanceof EchoError && (code === undefined || e.code === code);
}
