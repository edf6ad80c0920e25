// The consent popup (/consent.html; docs/browser-vault.md, section 3). The
// app's origin comes from the `event.origin` of its `consent_request` only.
//
// Against clickjacking (an app opening the popup under a double-click, so
// that the second click lands on Allow): Allow and Deny are enabled only
// once the popup has been visible and focused for ARM_MS and the person
// moved the pointer in it (or pressed Tab); they are disabled again when it
// loses focus or is hidden. An app the person denied must wait before it
// can be answered again — DENIED_WAIT_MS after one denial, doubling with
// each further denial within DENIALS_WINDOW_MS, up to MAX_DENIED_WAIT_MS —
// so a page cannot reopen the popup in a loop until a click lands.
//
// What the popup shows checked is exactly what the app will get: the spaces
// it has now and those it created, and nothing it is not shown.
import type { AppGrant, VaultSpace } from "@echo/client/protocol";
import { describeError, type AdminClient } from "./admin-client";
import { byId, h, replace } from "./dom";
import { errorText, openAdmin, refuseFraming, spaceName } from "./page";

const READY_RETRY_MS = 1000;
const READY_GIVE_UP_MS = 15_000;
/** How long the popup must be visible and focused before its buttons work. */
export const ARM_MS = 800;
/** How long after a denial the same app must wait; it doubles with each further denial. */
export const DENIED_WAIT_MS = 5_000;
const MAX_DENIED_WAIT_MS = 5 * 60_000;
const DENIALS_WINDOW_MS = 10 * 60_000;
/** Recent denials per origin, in the vault origin's localStorage (popups share it; not their sessionStorage). */
const DENIALS_KEY = "echo-consent-denials";

function recentDenials(): Record<string, number[]> {
  try {
    const all = JSON.parse(localStorage.getItem(DENIALS_KEY) ?? "{}") as Record<string, unknown>;
    const now = Date.now();
    const out: Record<string, number[]> = {};
    for (const [origin, times] of Object.entries(all)) {
      const kept = Array.isArray(times) ? times.filter((t): t is number => typeof t === "number" && now - t < DENIALS_WINDOW_MS) : [];
      if (kept.length) out[origin] = kept;
    }
    return out;
  } catch {
    return {};
  }
}

function noteDenial(origin: string): void {
  try {
    const all = recentDenials();
    all[origin] = [...(all[origin] ?? []), Date.now()];
    localStorage.setItem(DENIALS_KEY, JSON.stringify(all));
  } catch {
    // Without storage the wait after one denial still holds.
  }
}

/** Until when `origin`, last denied at `deniedAt`, must wait. */
function deniedUntil(origin: string, deniedAt: number): number {
  const times = recentDenials()[origin] ?? [];
  const count = Math.max(1, times.length);
  const last = Math.max(deniedAt, ...times);
  return last + Math.min(MAX_DENIED_WAIT_MS, DENIED_WAIT_MS * 2 ** (count - 1));
}

const originEl = byId("origin");
const appNameEl = byId("app-name");
const spacesEl = byId("spaces");
const noticeEl = byId("notice");
const allowBtn = byId<HTMLButtonElement>("allow");
const denyBtn = byId<HTMLButtonElement>("deny");
const formEl = byId<HTMLFormElement>("consent-form");

let requester: { origin: string; window: Window } | null = null;
let client: AdminClient | null = null;
let deciding = false;
/** The spaces listed, and the requester's standing (for what is checked). */
let listed: VaultSpace[] | null = null;
let standing: AppGrant | null | undefined;
/** Arming: since when the popup is visible and focused, and whether a person moved in it. */
let shownSince: number | null = null;
let personHere = false;
let armTimer: ReturnType<typeof setTimeout> | undefined;
/** Until when a recently denied app must wait. */
let waitUntil = 0;

function notice(text: string, kind: "info" | "error" = "info"): void {
  noticeEl.textContent = text;
  noticeEl.className = `notice ${kind}`;
  noticeEl.hidden = text === "";
}

function armed(): boolean {
  return personHere && shownSince !== null && Date.now() - shownSince >= ARM_MS;
}

function updateButtons(): void {
  const ready = requester !== null && client !== null && !deciding && armed() && Date.now() >= waitUntil;
  allowBtn.disabled = !ready;
  denyBtn.disabled = !ready;
  if (armTimer !== undefined) clearTimeout(armTimer);
  armTimer = undefined;
  // Check again when the arming time or a denial's wait is over.
  const next = Math.max(shownSince === null ? 0 : shownSince + ARM_MS, waitUntil) - Date.now();
  if (!ready && next > 0 && shownSince !== null) armTimer = setTimeout(updateButtons, next + 10);
}

/** Visible and focused now: the arming time starts; hidden or blurred: disarmed. */
function watchPresence(): void {
  const check = (): void => {
    const shown = document.visibilityState === "visible" && document.hasFocus();
    if (shown && shownSince === null) shownSince = Date.now();
    if (!shown) {
      shownSince = null;
      personHere = false;
    }
    updateButtons();
  };
  const here = (): void => {
    if (personHere || shownSince === null) return;
    personHere = true;
    updateButtons();
  };
  addEventListener("focus", check);
  addEventListener("blur", check);
  document.addEventListener("visibilitychange", check);
  addEventListener("pointermove", here);
  addEventListener("keydown", (event: KeyboardEvent) => {
    if (event.key === "Tab") here();
  });
  check();
}

async function loadSpaces(admin: AdminClient): Promise<void> {
  replace(spacesEl, h("p", { class: "muted" }, "Loading your spaces…"));
  try {
    listed = await admin.spaces();
    showSpaces();
  } catch (error) {
    replace(spacesEl, h("p", { class: "error-text" }, `Cannot list your spaces: ${describeError(error)}`));
  }
}

/** Lists the spaces, checking those the requester has now or created (once both are known). */
function showSpaces(): void {
  if (listed === null) return;
  const origin = requester?.origin ?? null;
  if (listed.length === 0) {
    replace(spacesEl, h("p", { class: "empty" }, "You have no spaces yet. The app can still create its own."));
    return;
  }
  const list = h("ul", { class: "checklist" });
  for (const space of listed) {
    const id = `space-${space.space}`;
    const has = origin !== null && standing?.allowed === true && standing.spaces.includes(space.space);
    const created = origin !== null && space.created_by === origin;
    const input = h("input", { type: "checkbox", id, name: "space", value: space.space });
    input.checked = has || created;
    list.appendChild(
      h(
        "li",
        {},
        input,
        h(
          "label",
          { for: id },
          h("span", { class: "space-name" }, spaceName(space)),
          h("span", { class: "space-meta" }, describeSpace(space, origin)),
        ),
      ),
    );
  }
  replace(spacesEl, list);
}

function describeSpace(space: VaultSpace, origin: string | null): string {
  const others = space.apps.filter((app) => app !== origin).length;
  const parts: string[] = [];
  if (origin !== null && space.created_by === origin) parts.push("created by this app");
  if (origin !== null && space.apps.includes(origin)) parts.push("this app has it");
  parts.push(others === 0 ? "no other app has it" : others === 1 ? "shared with 1 other app" : `shared with ${others} other apps`);
  if (space.objects !== undefined) parts.push(space.objects === 1 ? "1 object" : `${space.objects} objects`);
  return parts.join(" · ");
}

async function showStanding(admin: AdminClient, origin: string): Promise<void> {
  try {
    standing = (await admin.apps()).find((app) => app.origin === origin) ?? null;
  } catch {
    standing = null;
  }
  showSpaces();
  if (!standing) return;
  if (standing.allowed) {
    notice("You allowed this app before; what is checked is what it has now. Choosing again replaces that decision.");
    return;
  }
  waitUntil = deniedUntil(origin, standing.decided_at);
  const tick = (): void => {
    const left = Math.ceil((waitUntil - Date.now()) / 1000);
    if (left > 0) {
      notice(`You denied this app ${Math.round((Date.now() - standing!.decided_at) / 1000)} s ago. It can ask again in ${left} s.`);
      setTimeout(tick, 1000);
    } else {
      notice("You denied this app before. Choosing again replaces that decision.");
    }
    updateButtons();
  };
  tick();
}

function checkedSpaces(): string[] {
  return Array.from(spacesEl.querySelectorAll<HTMLInputElement>("input[name=space]:checked")).map(
    (input) => input.value,
  );
}

async function decide(allow: boolean): Promise<void> {
  if (!requester || !client || deciding) return;
  deciding = true;
  updateButtons();
  notice(allow ? "Allowing…" : "Denying…");
  try {
    await client.decide(requester.origin, allow, allow ? checkedSpaces() : []);
    if (!allow) noteDenial(requester.origin);
    requester.window.postMessage({ echo: "consent_result", allowed: allow }, requester.origin);
    notice(allow ? "Allowed. You can close this window." : "Denied. You can close this window.");
    window.close();
  } catch (error) {
    notice(`Could not save your decision: ${describeError(error)}`, "error");
    deciding = false;
    updateButtons();
  }
}

function start(): void {
  refuseFraming();
  watchPresence();
  const opener = window.opener as Window | null;
  if (!opener) {
    originEl.textContent = "No app";
    notice("This window asks for your consent when an app requests access to your vault. Open it from an app.", "error");
    replace(spacesEl);
    updateButtons();
    return;
  }

  addEventListener("message", (event: MessageEvent) => {
    if (event.source !== opener || requester) return;
    const data: unknown = event.data;
    if (typeof data !== "object" || data === null) return;
    const message = data as { echo?: unknown; app_name?: unknown };
    if (message.echo !== "consent_request") return;
    if (!event.origin || event.origin === "null") {
      originEl.textContent = "An app without an address";
      notice(
        "This app runs in a sandboxed frame that has no address of its own (its origin is “null”), so the vault cannot tell which site it is and cannot give it access. Its developer must load it without the sandbox (or with allow-same-origin). You can close this window.",
        "error",
      );
      return;
    }
    requester = { origin: event.origin, window: opener };
    originEl.textContent = event.origin;
    document.title = `Allow ${new URL(event.origin).host}? — ECHO vault`;
    if (typeof message.app_name === "string" && message.app_name.trim() !== "") {
      appNameEl.textContent = `It calls itself “${message.app_name.trim().slice(0, 128)}”.`;
      appNameEl.hidden = false;
    }
    if (client) void showStanding(client, event.origin);
    showSpaces();
    updateButtons();
  });

  // Tell the opener we are here until it asks (it may still be setting up).
  const began = Date.now();
  const ping = (): void => {
    if (requester) return;
    try {
      opener.postMessage({ echo: "consent_ready" }, "*");
    } catch {
      return;
    }
    if (Date.now() - began < READY_GIVE_UP_MS) setTimeout(ping, READY_RETRY_MS);
    else notice("The app did not say who it is. Close this window and try again from the app.", "error");
  };
  ping();

  openAdmin(
    (admin) => {
      client = admin;
      void loadSpaces(admin);
      if (requester) void showStanding(admin, requester.origin);
      updateButtons();
    },
    (status) => {
      if (status.engine === "failed") notice(`The vault cannot start: ${errorText(status.error)}`, "error");
    },
    // A popup closes in seconds: it does not drive the vault's connections.
    { net: false },
  );
}

formEl.addEventListener("submit", (event) => event.preventDefault());
allowBtn.addEventListener("click", () => void decide(true));
denyBtn.addEventListener("click", () => void decide(false));
updateButtons();
start();
