// The invitation page (/invite.html): a top-level vault page, so that codes
// are only ever shown and typed in the vault's own window, never in an app.
//
//   invite.html?space=<id>&role=<role>   host: makes an invitation, shows its
//     [&ttl=<minutes>][&multi=1]         code, link and QR, then the 6-digit
//                                        code when the guest arrives (multi:
//                                        several people may join with it)
//   invite.html#echo-invite-…            guest: answers the code (or paste one)
//
// The state of each side comes from the engine (`invitations.list`, again on
// every `changed`): waiting, connecting, ready_for_code, authenticating,
// success, cancelled, expired, failed.
//
// Opened by an app (the SDK's `space.invite()` / `vault.acceptInvitation()`,
// a popup): the page says `{echo: "invite_ready"}` to its opener until the
// app answers `{echo: "invite_request", space?, role?, code?}`; the app's
// origin is the message's. The page checks the app may see the space it
// asks to share, and when the invitation ends it tells the app the outcome
// (`{echo: "invite_result", state, space?}`) — never a code. A guest that
// joins from an app lets that app open the joined space.
import type { InvitationInfo, InvitationState, Role } from "@echo/client/protocol";
import { describeError, type AdminClient } from "./admin-client";
import { byId } from "./dom";
import { loadNetModule } from "./net";
import { errorText, openAdmin, spaceName } from "./page";

const bannerEl = byId("banner");
const hostEl = byId("host");
const guestEl = byId("guest");

let client: AdminClient | null = null;
let invitation: string | null = null;
let started = false;
/** The app that opened this page, once it said what it wants. */
let requester: { origin: string; window: Window } | null = null;
let reported = false;
const TERMINAL: InvitationState[] = ["success", "cancelled", "expired", "failed"];

function banner(text: string): void {
  bannerEl.textContent = text;
  bannerEl.hidden = text === "";
}

const params = new URLSearchParams(location.search);
const hostSpace = params.get("space");
const hostRole = (params.get("role") ?? "editor") as Role;
/** How long the code stays valid, in minutes (the vault checks the range; absent: its default). */
const hostTtl = params.has("ttl") ? Number(params.get("ttl")) : undefined;
/** Several people may join with the code, one after another (only from the vault's own pages). */
const hostMulti = params.get("multi") === "1";
const pastedCode = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : "";

// ------------------------------------------------------------------- host

const HOST_TEXT: Record<InvitationState, string> = {
  waiting: "Waiting for them to open the invitation…",
  connecting: "Connecting…",
  ready_for_code: "They are connected. They now type the code below.",
  authenticating: "Checking the code they typed…",
  success: "Done: they are a member of the space.",
  cancelled: "The invitation was cancelled.",
  expired: "The invitation expired.",
  failed: "The invitation ended.",
};

/** Tells the app that opened this page how the invitation ended (once). */
function report(info: InvitationInfo): void {
  if (!requester || reported || !TERMINAL.includes(info.state)) return;
  reported = true;
  const result: { echo: "invite_result"; state: InvitationState; space?: string } = { echo: "invite_result", state: info.state };
  if (info.space) result.space = info.space;
  requester.window.postMessage(result, requester.origin);
}

/** The guest joined from an app: that app may open the space it joined. */
async function grantJoined(admin: AdminClient, origin: string, space: string): Promise<void> {
  const apps = await admin.apps();
  const app = apps.find((a) => a.origin === origin && a.allowed);
  if (!app || app.spaces.includes(space)) return;
  await admin.decide(origin, true, [...app.spaces, space]);
}

function renderHost(info: InvitationInfo): void {
  const stateEl = byId("host-state");
  stateEl.dataset["state"] = info.state;
  let text = HOST_TEXT[info.state];
  if (info.state === "waiting" && info.attempts_left < 3) {
    text += ` (${info.attempts_left} wrong ${info.attempts_left === 1 ? "code" : "codes"} left before it ends)`;
  }
  if (info.error) text += ` ${errorText(info.error)}`;
  if (info.multi_use) {
    const n = info.admitted.length;
    text += ` Several people can join with this code, one at a time; ${n} ${n === 1 ? "has" : "have"} joined so far.`;
  }
  stateEl.textContent = text;
  stateEl.dataset["admitted"] = String(info.admitted.length);
  const code = info.code ?? "";
  const codeEl = byId<HTMLTextAreaElement>("invite-code");
  if (codeEl.value !== code) {
    codeEl.value = code;
    void renderQr(`${location.origin}/invite.html#${code}`);
  }
  const authBox = byId("auth-box");
  authBox.hidden = !info.auth_code;
  byId("auth-code").textContent = info.auth_code ?? "";
  const open = info.state === "waiting" || info.state === "ready_for_code" || info.state === "authenticating";
  byId<HTMLButtonElement>("cancel-host").disabled = !open;
  report(info);
}

async function renderQr(link: string): Promise<void> {
  const qr = byId("qr");
  const module = loadNetModule();
  if (!module) return;
  try {
    const svg = (await module).qrSvg(link);
    // The SVG is the driver's own output for our own link.
    qr.innerHTML = svg;
  } catch (error) {
    console.warn("echo: no QR code", error);
  }
}

async function startHost(admin: AdminClient, space: string, role: Role = hostRole): Promise<void> {
  hostEl.hidden = false;
  try {
    if (requester) {
      // An app may share only a space it can see.
      const apps = await admin.apps();
      if (!apps.some((a) => a.origin === requester?.origin && a.allowed && a.spaces.includes(space))) {
        throw new Error(`${requester.origin} has no access to that space`);
      }
    }
    const spaces = await admin.spaces();
    const found = spaces.find((s) => s.space === space);
    byId("host-space").textContent = found
      ? `To “${spaceName(found)}”, as ${role}.`
      : `To space ${space.slice(0, 8)}…, as ${role}.`;
    const info = await admin.createInvitation(space, role, hostTtl, hostMulti && !requester);
    invitation = info.invitation;
    history.replaceState(null, "", `invite.html?invitation=${info.invitation}`);
    renderHost(info);
  } catch (error) {
    const stateEl = byId("host-state");
    stateEl.dataset["state"] = "failed";
    stateEl.textContent = `Could not make the invitation: ${describeError(error)}`;
  }
}

byId("copy-code").addEventListener("click", () => {
  void navigator.clipboard?.writeText(byId<HTMLTextAreaElement>("invite-code").value);
});
byId("copy-link").addEventListener("click", () => {
  const code = byId<HTMLTextAreaElement>("invite-code").value;
  void navigator.clipboard?.writeText(`${location.origin}/invite.html#${code}`);
});
byId("cancel-host").addEventListener("click", () => {
  if (!client || !invitation) return;
  client.cancelInvitation(invitation).catch((error: unknown) => banner(`Could not cancel: ${describeError(error)}`));
});

// ------------------------------------------------------------------ guest

const GUEST_TEXT: Record<InvitationState, string> = {
  waiting: "Waiting…",
  connecting: "Looking for the vault that invited you… (it must be open)",
  ready_for_code: "Connected to the vault that invited you. Type the code it shows.",
  authenticating: "Checking the code…",
  success: "You joined the space. Apps you allow can now open it.",
  cancelled: "The invitation was cancelled.",
  expired: "The invitation has expired. Ask for a new one.",
  failed: "Joining failed.",
};

function renderGuest(info: InvitationInfo): void {
  const stateEl = byId("guest-state");
  stateEl.dataset["state"] = info.state;
  let text = GUEST_TEXT[info.state];
  if (info.error) text += ` ${errorText(info.error)}`;
  if (info.multi_use) {
    const n = info.admitted.length;
    text += ` Several people can join with this code, one at a time; ${n} ${n === 1 ? "has" : "have"} joined so far.`;
  }
  stateEl.textContent = text;
  stateEl.dataset["admitted"] = String(info.admitted.length);
  const codeForm = byId<HTMLFormElement>("code-form");
  const wasHidden = codeForm.hidden;
  codeForm.hidden = info.state !== "ready_for_code";
  if (wasHidden && !codeForm.hidden) byId<HTMLInputElement>("code-input").focus();
  byId<HTMLButtonElement>("code-button").disabled = info.state !== "ready_for_code";
  const live = info.state === "connecting" || info.state === "ready_for_code" || info.state === "authenticating";
  byId("cancel-guest").hidden = !live;
  byId<HTMLFormElement>("accept-form").hidden = live || info.state === "success";
  if (info.state === "success" && info.space && requester && client && !reported) {
    const space = info.space;
    void grantJoined(client, requester.origin, space)
      .then(() => {
        stateEl.textContent = `${GUEST_TEXT.success} ${requester ? new URL(requester.origin).host : "The app"} can open it now.`;
      })
      .catch((error: unknown) => banner(`Could not let the app open the space: ${describeError(error)}`))
      .finally(() => report(info));
    return;
  }
  report(info);
}

async function accept(admin: AdminClient, code: string): Promise<void> {
  const stateEl = byId("guest-state");
  try {
    const info = await admin.acceptInvitation(code);
    invitation = info.invitation;
    renderGuest(info);
  } catch (error) {
    stateEl.dataset["state"] = "failed";
    stateEl.textContent = describeError(error);
  }
}

byId<HTMLFormElement>("accept-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const code = byId<HTMLInputElement>("accept-input").value.trim();
  if (client && code) void accept(client, code);
});
byId<HTMLFormElement>("code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>("code-input");
  if (!client || !invitation) return;
  const button = byId<HTMLButtonElement>("code-button");
  button.disabled = true;
  client
    .enterCode(invitation, input.value)
    .then(() => {
      input.value = "";
    })
    .catch((error: unknown) => {
      const stateEl = byId("guest-state");
      stateEl.textContent = describeError(error);
      button.disabled = false;
    });
});
byId("cancel-guest").addEventListener("click", () => {
  if (!client || !invitation) return;
  client.cancelInvitation(invitation).catch((error: unknown) => banner(describeError(error)));
});

// ------------------------------------------------------------------- both

async function refresh(): Promise<void> {
  if (!client || !invitation) return;
  try {
    const all = await client.invitations();
    const info = all.find((i) => i.invitation === invitation);
    if (!info) return;
    if (info.side === "host") renderHost(info);
    else renderGuest(info);
  } catch (error) {
    banner(`Cannot read the invitation: ${describeError(error)}`);
  }
}

function start(admin: AdminClient): void {
  client = admin;
  admin.onChanged(() => void refresh());
  if (started) {
    void refresh();
    return;
  }
  started = true;
  const resumed = params.get("invitation");
  if (window.opener && !resumed && !hostSpace && !pastedCode) {
    waitForApp(admin, window.opener as Window);
    return;
  }
  if (resumed) {
    // A host page reloaded: show the invitation it made.
    invitation = resumed;
    hostEl.hidden = false;
    void refresh();
  } else if (hostSpace) {
    void startHost(admin, hostSpace);
  } else {
    guestEl.hidden = false;
    if (pastedCode) {
      byId<HTMLInputElement>("accept-input").value = pastedCode;
      void accept(admin, pastedCode);
    }
  }
}

/** Opened by an app: say we are here until it says what it wants. */
function waitForApp(admin: AdminClient, opener: Window): void {
  addEventListener("message", (event: MessageEvent) => {
    if (event.source !== opener || requester) return;
    const data: unknown = event.data;
    if (typeof data !== "object" || data === null) return;
    const message = data as { echo?: unknown; space?: unknown; role?: unknown; code?: unknown };
    if (message.echo !== "invite_request" || !event.origin || event.origin === "null") return;
    requester = { origin: event.origin, window: opener };
    if (typeof message.space === "string") {
      const role = message.role === "reader" || message.role === "admin" ? message.role : "editor";
      void startHost(admin, message.space, role);
    } else {
      guestEl.hidden = false;
      if (typeof message.code === "string" && message.code) {
        byId<HTMLInputElement>("accept-input").value = message.code;
        void accept(admin, message.code);
      }
    }
  });
  const began = Date.now();
  const ping = (): void => {
    if (requester || Date.now() - began > 15_000) return;
    try {
      opener.postMessage({ echo: "invite_ready" }, "*");
    } catch {
      return;
    }
    setTimeout(ping, 200);
  };
  ping();
}

openAdmin(start, (status) => {
  if (status.engine === "failed") banner(`The vault cannot start: ${errorText(status.error)}`);
});
