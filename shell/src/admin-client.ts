// The client of an admin port (docs/browser-vault.md, section 5), shared by
// the consent popup and the manage page: request ids, one promise per call,
// a timeout, and errors with the engine's code and message.
import type {
  AdminReply,
  AdminRequest,
  AdminResponse,
  AppGrant,
  IdentityInfo,
  InvitationInfo,
  Member,
  Role,
  RpcError,
  VaultSpace,
} from "@echo/client/protocol";

/** A failed admin call. `code` is the engine's (`rpc.*`, …) or `admin.*` of this client. */
export class AdminError extends Error {
  readonly code: string;
  readonly details: { [key: string]: string } | undefined;

  constructor(error: RpcError) {
    super(error.message);
    this.name = "AdminError";
    this.code = error.code;
    this.details = error.details;
  }
}

export type VaultStatus = Extract<AdminResponse, { status: unknown }>["status"];

interface Pending {
  resolve: (response: AdminResponse) => void;
  reject: (error: AdminError) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class AdminClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly changedCallbacks: Array<() => void> = [];
  private closedWith: RpcError | null = null;

  /** `port`: this page's end of the channel attached with `{attach_admin}`. */
  constructor(
    private readonly port: MessagePort,
    private readonly timeoutMs = 10_000,
  ) {
    // Admin ports carry JSON text (docs/browser-vault.md).
    port.onmessage = (event: MessageEvent) => {
      if (typeof event.data !== "string") return;
      let reply: AdminReply;
      try {
        reply = JSON.parse(event.data) as AdminReply;
      } catch {
        return;
      }
      this.onReply(reply);
    };
  }

  /** One admin call. */
  call(method: AdminRequest): Promise<AdminResponse> {
    if (this.closedWith) return Promise.reject(new AdminError(this.closedWith));
    const id = this.nextId++;
    return new Promise<AdminResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new AdminError({
            code: "rpc.timeout",
            message: `The vault did not answer within ${Math.round(this.timeoutMs / 1000)} s.`,
          }),
        );
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.port.postMessage(JSON.stringify({ request: { id, method } }));
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new AdminError({ code: "rpc.internal", message: String(error) }));
      }
    });
  }

  /** Called on every `{changed: {}}` the engine pushes. */
  onChanged(callback: () => void): void {
    this.changedCallbacks.push(callback);
  }

  /** Fails every pending and later call with `error`. */
  close(error: RpcError = { code: "rpc.disconnected", message: "The vault connection closed." }): void {
    if (this.closedWith) return;
    this.closedWith = error;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new AdminError(error));
      this.pending.delete(id);
    }
    this.port.close();
  }

  async status(): Promise<VaultStatus> {
    return expect(await this.call({ "vault.status": {} }), "status");
  }

  async apps(): Promise<AppGrant[]> {
    return expect(await this.call({ "apps.list": {} }), "apps").apps;
  }

  async spaces(): Promise<VaultSpace[]> {
    return expect(await this.call({ "spaces.list": {} }), "spaces").spaces;
  }

  async decide(origin: string, allow: boolean, spaces: string[]): Promise<void> {
    expect(await this.call({ "consent.decide": { origin, allow, spaces } }), "done");
  }

  async revoke(origin: string): Promise<void> {
    expect(await this.call({ "apps.revoke": { origin } }), "done");
  }

  async setName(name: string): Promise<void> {
    expect(await this.call({ "identity.set_name": { name } }), "done");
  }

  async members(space: string): Promise<Member[]> {
    return expect(await this.call({ "members.list": { space } }), "members").members;
  }

  async setRole(space: string, identity: string, role: Role): Promise<void> {
    expect(await this.call({ "members.set_role": { space, identity, role } }), "done");
  }

  async removeMember(space: string, identity: string): Promise<void> {
    expect(await this.call({ "members.remove": { space, identity } }), "done");
  }

  /**
   * `ttlMinutes`: how long the code is valid (the vault's default when absent); `multiUse`: several
   * people may join with it, one after another, until it expires or is cancelled.
   */
  async createInvitation(space: string, role: Role, ttlMinutes?: number, multiUse = false): Promise<InvitationInfo> {
    const request: { space: string; role: Role; ttl_minutes?: number; multi_use?: boolean } = { space, role };
    if (ttlMinutes !== undefined) request.ttl_minutes = ttlMinutes;
    if (multiUse) request.multi_use = true;
    return expect(await this.call({ "invitations.create": request }), "invitation").invitation;
  }

  async invitations(): Promise<InvitationInfo[]> {
    return expect(await this.call({ "invitations.list": {} }), "invitations").invitations;
  }

  async cancelInvitation(invitation: string): Promise<void> {
    expect(await this.call({ "invitations.cancel": { invitation } }), "done");
  }

  async acceptInvitation(code: string): Promise<InvitationInfo> {
    return expect(await this.call({ "invitations.accept": { code } }), "invitation").invitation;
  }

  async enterCode(invitation: string, code: string): Promise<void> {
    expect(await this.call({ "invitations.enter_code": { invitation, code } }), "done");
  }

  private onReply(reply: AdminReply): void {
    if (typeof reply !== "object" || reply === null) return;
    if ("changed" in reply) {
      for (const callback of this.changedCallbacks) callback();
      return;
    }
    if (!("response" in reply)) return;
    const { id, result } = reply.response;
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ("Ok" in result) pending.resolve(result.Ok);
    else pending.reject(new AdminError(result.Err));
  }
}

type Kind = "done" | "status" | "apps" | "spaces" | "members" | "invitation" | "invitations";
type Of<K extends Kind> = Extract<AdminResponse, { [P in K]: unknown }>;

/** The response's payload when it is of the expected kind, else an AdminError. */
function expect<K extends Kind>(response: AdminResponse, kind: K): Of<K>[K] {
  if (typeof response === "object" && response !== null && kind in response) {
    return (response as Of<K>)[kind];
  }
  throw new AdminError({
    code: "rpc.internal",
    message: `The vault answered with something other than ${kind}.`,
  });
}

/** An error as a person reads it. */
export function describeError(error: unknown): string {
  if (error instanceof AdminError) return `${error.message} (${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}

export type { AppGrant, IdentityInfo, InvitationInfo, Member, Role, VaultSpace };
