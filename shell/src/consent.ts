// The consent popup (/consent.html; docs/browser-vault.md, section 3). The
// app's origin comes from the `event.origin` of its `consent_request` only.
import { describeError, type AdminClient } from "./admin-client";
import { byId, h, replace } from "./dom";
import { errorText, openAdmin, spaceName } from "./page";

const READY_RETRY_MS = 1000;
const READY_GIVE_UP_MS = 15_000;

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

function notice(text: string, kind: "info" | "error" = "info"): void {
  noticeEl.textContent = text;
  noticeEl.className = `notice ${kind}`;
  noticeEl.hidden = text === "";
}

function updateButtons(): void {
  const ready = requester !== null && client !== null && !deciding;
  allowBtn.disabled = !ready;
  denyBtn.disabled = !ready;
}

async function loadSpaces(admin: AdminClient): Promise<void> {
  replace(spacesEl, h("p", { class: "muted" }, "Loading your spaces…"));
  try {
    const spaces = await admin.spaces();
    if (spaces.length === 0) {
      replace(
        spacesEl,
        h("p", { class: "empty" }, "You have no spaces yet. The app can still create its own."),
      );
      return;
    }
    const list = h("ul", { class: "checklist" });
    for (const space of spaces) {
      const id = `space-${space.space}`;
      list.appendChild(
        h(
          "li",
          {},
          h("input", { type: "checkbox", id, name: "space", value: space.space }),
          h(
            "label",
            { for: id },
            h("span", { class: "space-name" }, spaceName(space)),
            h("span", { class: "space-meta" }, describeSpace(space.apps.length, space.objects)),
          ),
        ),
      );
    }
    replace(spacesEl, list);
  } catch (error) {
    replace(spacesEl, h("p", { class: "error-text" }, `Cannot list your spaces: ${describeError(error)}`));
  }
}

function describeSpace(apps: number, objects: number | undefined): string {
  const parts = [apps === 0 ? "no app has it" : apps === 1 ? "shared with 1 app" : `shared with ${apps} apps`];
  if (objects !== undefined) parts.push(objects === 1 ? "1 object" : `${objects} objects`);
  return parts.join(" · ");
}

async function showStanding(admin: AdminClient, origin: string): Promise<void> {
  try {
    const grant = (await admin.apps()).find((app) => app.origin === origin);
    if (grant) {
      notice(
        grant.allowed
          ? "You allowed this app before. Choosing again replaces that decision."
          : "You denied this app before. Choosing again replaces that decision.",
      );
    }
  } catch {
    // Only a hint.
  }
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
      notice("The requesting page has no origin the vault can remember.", "error");
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
