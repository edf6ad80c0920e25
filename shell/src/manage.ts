// The manage page (/manage.html): the vault's identity, the apps and what
// they were granted (with Revoke), the spaces, and storage use. Lists again
// on every admin `changed` event.
import {
  describeError,
  type AdminClient,
  type AppGrant,
  type Member,
  type Role,
  type VaultSpace,
} from "./admin-client";
import { byId, formatBytes, h, replace } from "./dom";
import { errorText, openAdmin, spaceName } from "./page";
import { downloadRaw, readRawVault } from "./raw-export";

const bannerEl = byId("banner");
const identityEl = byId("identity");
const countsEl = byId("counts");
const appsEl = byId("apps");
const spacesEl = byId("spaces");
const storageEl = byId("storage");
const updatedEl = byId("updated");
const nameForm = byId<HTMLFormElement>("name-form");
const nameInput = byId<HTMLInputElement>("name-input");
const nameButton = byId<HTMLButtonElement>("name-save");

let client: AdminClient | null = null;
let refreshing = false;
let again = false;
let spacesById = new Map<string, VaultSpace>();

function banner(text: string): void {
  bannerEl.textContent = text;
  bannerEl.hidden = text === "";
}

function loading(el: HTMLElement, what: string): void {
  if (!el.firstChild || el.dataset["loaded"] !== "yes") {
    replace(el, h("p", { class: "muted loading" }, `Loading ${what}…`));
  }
}

async function refresh(): Promise<void> {
  if (!client) return;
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  const admin = client;
  loading(identityEl, "identity");
  loading(appsEl, "apps");
  loading(spacesEl, "spaces");
  try {
    const [status, apps, spaces] = await Promise.all([admin.status(), admin.apps(), admin.spaces()]);
    spacesById = new Map(spaces.map((space) => [space.space, space]));
    renderIdentity(status.identity.identity_key, status.identity.device_key, status.identity.display_name);
    renderCounts(status.spaces, status.apps, status.connections);
    renderApps(apps);
    renderSpaces(spaces);
    banner("");
    updatedEl.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    banner(`Cannot read the vault: ${describeError(error)}`);
    for (const el of [identityEl, appsEl, spacesEl]) {
      if (el.dataset["loaded"] !== "yes") replace(el, h("p", { class: "error-text" }, "Not available."));
    }
  } finally {
    refreshing = false;
    if (again) {
      again = false;
      void refresh();
    }
  }
}

function loaded(el: HTMLElement): void {
  el.dataset["loaded"] = "yes";
}

function keyRow(label: string, value: string): HTMLElement {
  return h("div", { class: "kv" }, h("dt", {}, label), h("dd", {}, h("code", { class: "key" }, value)));
}

function renderIdentity(identityKey: string, deviceKey: string, displayName: string | undefined): void {
  replace(
    identityEl,
    h(
      "dl",
      { class: "kvs" },
      h("div", { class: "kv" }, h("dt", {}, "Name"), h("dd", {}, displayName ?? h("span", { class: "muted" }, "not set"))),
      keyRow("Identity key", identityKey),
      keyRow("This device", deviceKey),
    ),
  );
  if (document.activeElement !== nameInput) nameInput.value = displayName ?? "";
  loaded(identityEl);
}

function renderCounts(spaces: number, apps: number, connections: number): void {
  const stat = (n: number, one: string, many: string): HTMLElement =>
    h("div", { class: "stat" }, h("span", { class: "stat-n" }, String(n)), h("span", { class: "stat-l" }, n === 1 ? one : many));
  replace(
    countsEl,
    stat(spaces, "space", "spaces"),
    stat(apps, "app", "apps"),
    stat(connections, "open connection", "open connections"),
  );
}

function renderApps(apps: AppGrant[]): void {
  loaded(appsEl);
  if (apps.length === 0) {
    replace(
      appsEl,
      h("p", { class: "empty" }, "No app has asked for your vault yet. Apps you allow or deny show up here."),
    );
    return;
  }
  const sorted = [...apps].sort((a, b) => b.decided_at - a.decided_at);
  const list = h("ul", { class: "cards" });
  for (const app of sorted) {
    const revoke = h("button", { type: "button", class: "danger" }, app.allowed ? "Revoke" : "Forget");
    revoke.addEventListener("click", () => void revokeApp(app.origin, app.allowed, revoke));
    const spaceNames = app.spaces.map((id) => {
      const space = spacesById.get(id);
      return space ? spaceName(space) : `Space ${id.slice(0, 8)}`;
    });
    list.appendChild(
      h(
        "li",
        { class: "card" },
        h(
          "div",
          { class: "card-head" },
          h("span", { class: "origin" }, app.origin),
          h("span", { class: app.allowed ? "badge ok" : "badge no" }, app.allowed ? "Allowed" : "Denied"),
          app.connections > 0 &&
            h("span", { class: "badge live" }, app.connections === 1 ? "1 open" : `${app.connections} open`),
        ),
        h(
          "p",
          { class: "card-body" },
          app.allowed
            ? spaceNames.length
              ? `Can see: ${spaceNames.join(", ")}`
              : "Can see no space yet (it may create its own)."
            : "Cannot see anything.",
        ),
        app.stored_bytes > 0 &&
          h(
            "p",
            { class: "card-body app-storage" },
            app.share_bytes === undefined
              ? `Its spaces take ${formatBytes(app.stored_bytes)}.`
              : `Its spaces take ${formatBytes(app.stored_bytes)} of the ${formatBytes(app.share_bytes)} one site may keep${app.stored_bytes >= app.share_bytes ? " — full: they cannot grow." : "."}`,
          ),
        h(
          "div",
          { class: "card-foot" },
          h("span", { class: "muted" }, `Decided ${formatDate(app.decided_at)}`),
          revoke,
        ),
      ),
    );
  }
  replace(appsEl, list);
}

function renderSpaces(spaces: VaultSpace[]): void {
  loaded(spacesEl);
  if (spaces.length === 0) {
    replace(spacesEl, h("p", { class: "empty" }, "No spaces yet. Spaces that apps create appear here."));
    return;
  }
  const table = h(
    "table",
    { class: "table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "Space"),
        h("th", {}, "Objects"),
        h("th", {}, "Apps"),
        h("th", {}, "Created by"),
        h("th", {}, "Peers"),
        h("th", {}, "Members"),
      ),
    ),
  );
  const body = h("tbody");
  for (const space of spaces) {
    body.appendChild(
      h(
        "tr",
        {},
        h("td", {}, h("div", {}, spaceName(space)), h("code", { class: "muted small" }, space.space)),
        h("td", { class: "num" }, space.objects === undefined ? "—" : String(space.objects)),
        h("td", {}, space.apps.length ? space.apps.join(", ") : h("span", { class: "muted" }, "none")),
        h("td", {}, space.created_by ?? h("span", { class: "muted" }, "you")),
        h("td", { class: "peers", "data-peers": String(space.peers) }, peerText(space)),
        membersCell(space.space),
      ),
    );
  }
  table.appendChild(body);
  replace(spacesEl, table);
}

/** Who the space syncs with, honestly: no silent stall. */
function peerText(space: VaultSpace): string {
  const last = space.synced_at === undefined ? "" : `, last heard ${new Date(space.synced_at).toLocaleTimeString()}`;
  if (space.peers > 0) return `${space.peers} online${last}`;
  if (!space.online) return `offline: cannot reach signaling${last}`;
  return `no peer online${last}`;
}

const ROLES: Role[] = ["reader", "editor", "admin"];

/** A space's members with their roles (changeable by a manager), and Invite. */
function membersCell(space: string): HTMLElement {
  const cell = h("td", { class: "members-cell", "data-space": space }, h("span", { class: "muted" }, "…"));
  if (!client) return cell;
  const admin = client;
  void (async () => {
    try {
      const [members, status] = await Promise.all([admin.members(space), admin.status()]);
      const me = status.identity.identity_key;
      const myRole = members.find((m) => m.identity === me)?.role;
      const manager = myRole === "owner" || myRole === "admin";
      const list = h("ul", { class: "members" });
      for (const member of members) list.appendChild(memberRow(admin, space, member, me, manager));
      const invite = h(
        "a",
        { href: `invite.html?space=${encodeURIComponent(space)}`, class: "button", "data-invite": space },
        "Invite someone…",
      );
      const inviteMany = h(
        "a",
        { href: `invite.html?space=${encodeURIComponent(space)}&multi=1`, class: "small", "data-invite-many": space, title: "One code that several people can use, until it expires or you cancel it" },
        "Invite several people…",
      );
      replace(cell, list, ...(manager ? [invite, inviteMany] : [h("span", { class: "muted small" }, "Only the owner or an admin invites.")]));
    } catch (error) {
      replace(cell, h("span", { class: "error-text" }, describeError(error)));
    }
  })();
  return cell;
}

function memberRow(admin: AdminClient, space: string, member: Member, me: string, manager: boolean): HTMLElement {
  const who = member.identity === me ? "you" : `${member.identity.slice(0, 10)}…`;
  const row = h("li", { "data-member": member.identity }, h("code", { title: member.identity }, who));
  if (!manager || member.identity === me || member.role === "owner") {
    row.appendChild(h("span", { class: "badge" }, member.role));
    return row;
  }
  const select = h("select", { "aria-label": `Role of ${who}` }) as HTMLSelectElement;
  for (const role of ROLES) {
    const option = h("option", { value: role }, role) as HTMLOptionElement;
    option.selected = role === member.role;
    select.appendChild(option);
  }
  select.addEventListener("change", () => {
    admin
      .setRole(space, member.identity, select.value as Role)
      .catch((error: unknown) => banner(`Could not change the role: ${describeError(error)}`));
  });
  const remove = h("button", { type: "button", class: "danger small" }, "Remove");
  remove.addEventListener("click", () => {
    if (!confirm(`Remove ${who} from this space? Their vault stops receiving it.`)) return;
    admin
      .removeMember(space, member.identity)
      .catch((error: unknown) => banner(`Could not remove: ${describeError(error)}`));
  });
  row.append(select, remove);
  return row;
}

function formatDate(ms: number): string {
  const date = new Date(ms);
  return Number.isFinite(date.getTime()) ? date.toLocaleString() : "at an unknown time";
}

async function revokeApp(origin: string, allowed: boolean, button: HTMLButtonElement): Promise<void> {
  if (!client) return;
  const question = allowed
    ? `Revoke ${origin}? It loses access to your vault at once and has to ask again.`
    : `Forget that you denied ${origin}? It may then ask again.`;
  if (!confirm(question)) return;
  const label = button.textContent;
  button.disabled = true;
  button.textContent = "Revoking…";
  try {
    await client.revoke(origin);
    await refresh();
  } catch (error) {
    banner(`Could not revoke ${origin}: ${describeError(error)}`);
    button.disabled = false;
    button.textContent = label;
  }
}

async function renderStorage(): Promise<void> {
  const storage = navigator.storage as StorageManager | undefined;
  if (!storage || typeof storage.estimate !== "function") {
    replace(storageEl, h("p", { class: "muted" }, "This browser does not report storage use."));
    return;
  }
  try {
    const [estimate, persisted] = await Promise.all([
      storage.estimate(),
      typeof storage.persisted === "function" ? storage.persisted() : Promise.resolve(false),
    ]);
    const usage = estimate.usage ?? 0;
    const quota = estimate.quota ?? 0;
    const bar = h("progress", { max: String(quota || 1), value: String(usage) });
    const percent = quota ? ` (${((usage / quota) * 100).toFixed(usage / quota < 0.01 ? 2 : 0)} %)` : "";
    const children: Array<HTMLElement> = [
      h("p", {}, `${formatBytes(usage)} used of ${formatBytes(quota)} available${percent}`),
      bar,
    ];
    if (persisted) {
      children.push(h("p", { class: "muted" }, "Storage is persistent: the browser will not clear it on its own."));
    } else if (typeof storage.persist === "function") {
      const button = h("button", { type: "button" }, "Keep my vault's storage");
      button.addEventListener("click", () => {
        void storage.persist().then((granted) => {
          if (!granted) banner("The browser did not make the storage persistent.");
          void renderStorage();
        });
      });
      children.push(
        h("p", { class: "muted" }, "The browser may clear this storage when space runs low."),
        button,
      );
    }
    replace(storageEl, ...children);
  } catch (error) {
    replace(storageEl, h("p", { class: "error-text" }, `Cannot read storage use: ${describeError(error)}`));
  }
}

nameForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!client) return;
  const name = nameInput.value.trim();
  if (!name) return;
  nameButton.disabled = true;
  client
    .setName(name)
    .then(() => refresh())
    .catch((error: unknown) => banner(`Could not set the name: ${describeError(error)}`))
    .finally(() => {
      nameButton.disabled = false;
    });
});

let changedTimer: ReturnType<typeof setTimeout> | null = null;

const session = openAdmin(
  (admin) => {
    client = admin;
    admin.onChanged(() => {
      // Bursts of changes: list once.
      if (changedTimer) clearTimeout(changedTimer);
      changedTimer = setTimeout(() => {
        changedTimer = null;
        void refresh();
        void renderStorage();
      }, 100);
    });
    void refresh();
  },
  (status) => {
    if (status.engine === "failed") {
      banner(`The vault cannot start: ${errorText(status.error)}`);
      if (status.error.code === "rpc.storage_lost") offerNewVault(() => session.link.startNewVault());
      else offerRawExport();
    }
  },
);

/**
 * The browser deleted the vault's storage (`rpc.storage_lost`): nothing of the old vault is left to save here,
 * and the vault does not replace it behind the person's back — they choose to start a new one.
 */
function offerNewVault(start: () => void): void {
  if (document.getElementById("new-vault")) return;
  const button = h("button", { type: "button", id: "new-vault" }, "Start a new vault");
  const status = h("span", { class: "muted", id: "new-vault-status" });
  button.addEventListener("click", () => {
    button.disabled = true;
    status.textContent = " Starting a new vault…";
    start();
  });
  bannerEl.after(
    h(
      "p",
      { class: "notice", id: "new-vault-box" },
      "A new vault has a new identity and no data: apps you allowed ask again, and spaces you shared with your other devices or other people can be joined again from them. ",
      button,
      status,
    ),
  );
}

/**
 * When the vault cannot start, the way out that loses nothing: everything it stored, read straight from its
 * database into a file the person keeps (raw-export.ts).
 */
function offerRawExport(): void {
  if (document.getElementById("raw-export")) return;
  const status = h("span", { class: "muted", id: "raw-export-status" });
  const button = h("button", { type: "button", id: "raw-export" }, "Download everything your vault holds");
  button.addEventListener("click", () => {
    button.disabled = true;
    status.textContent = " Reading your vault's storage…";
    readRawVault()
      .then((raw) => {
        downloadRaw(raw);
        const bytes = raw.entries.reduce((n, e) => n + (e.bytes.length * 3) / 4, 0);
        status.textContent = ` Saved ${raw.entries.length} entries (${(bytes / 1024 / 1024).toFixed(1)} MB). Keep the file: it is everything this browser holds of your vault.`;
      })
      .catch((error: unknown) => {
        status.textContent = ` Could not read it: ${error instanceof Error ? error.message : String(error)}`;
      })
      .finally(() => {
        button.disabled = false;
      });
  });
  // Beside the banner (whose text other failures replace), not in it.
  bannerEl.after(h("p", { class: "notice", id: "raw-export-box" }, "Nothing is lost: you can keep a copy of everything your vault stored. ", button, status));
}
void renderStorage();
