// The task board's page: connection banner, lists, tasks, notes. Plain
// DOM; every element tests use has a data-testid (see demo-app/README.md).

import { connect, EchoError, type ConnectionState, type Space, type SpaceStatus } from "@echo/client";
import { Board } from "./board.js";
import { vaultUrl } from "./config.js";
import { byTestId, h } from "./dom.js";
import { allTags, cleanName, formatTags, isDate, isOverdue, parseTags, today, visibleTasks, type Task } from "./model.js";
import { NoteSync } from "./note.js";

const VAULT_URL = vaultUrl();
// The slot where the vault shows its own "Connect to your vault" button when the browser needs a click in it.
const vaultSlot = byTestId("vault-slot");
const vault = connect({ vaultUrl: VAULT_URL, clientName: "echo-taskboard 0.1", accessSlot: vaultSlot });
const board = new Board(vault);

const LIST_KEY = "echo-taskboard.selected-list";

const ui = {
  status: byTestId("state"),
  statusText: byTestId("state-text"),
  connect: byTestId<HTMLButtonElement>("connect"),
  retry: byTestId<HTMLButtonElement>("retry"),
  slot: vaultSlot,
  openWindow: byTestId<HTMLButtonElement>("open-window"),
  help: byTestId<HTMLAnchorElement>("help"),
  share: document.getElementById("share") as HTMLElement,
  busy: byTestId("busy"),
  busyText: document.getElementById("busy-text") as HTMLElement,
  board: byTestId("board"),
  lists: byTestId<HTMLUListElement>("lists"),
  newListForm: byTestId<HTMLFormElement>("new-list-form"),
  newListName: byTestId<HTMLInputElement>("new-list-name"),
  addList: byTestId<HTMLButtonElement>("add-list"),
  noList: byTestId("no-list"),
  noListText: document.getElementById("no-list-text") as HTMLElement,
  listView: byTestId("list-view"),
  listName: byTestId("current-list-name"),
  renameForm: byTestId<HTMLFormElement>("rename-list-form"),
  renameInput: byTestId<HTMLInputElement>("rename-list-input"),
  renameCancel: byTestId<HTMLButtonElement>("rename-list-cancel"),
  listActions: document.getElementById("list-actions") as HTMLElement,
  renameList: byTestId<HTMLButtonElement>("rename-list"),
  deleteList: byTestId<HTMLButtonElement>("delete-list"),
  deleteListConfirm: byTestId<HTMLButtonElement>("delete-list-confirm"),
  newTaskForm: byTestId<HTMLFormElement>("new-task-form"),
  newTaskTitle: byTestId<HTMLInputElement>("new-task-title"),
  newTaskDue: byTestId<HTMLInputElement>("new-task-due"),
  newTaskTags: byTestId<HTMLInputElement>("new-task-tags"),
  addTask: byTestId<HTMLButtonElement>("add-task"),
  tagFilter: byTestId<HTMLSelectElement>("tag-filter"),
  overdueFilter: byTestId<HTMLInputElement>("overdue-filter"),
  overdueCount: byTestId("overdue-count"),
  tasks: byTestId<HTMLUListElement>("tasks"),
  noTasks: byTestId("no-tasks"),
  toast: byTestId("error"),
  toastText: document.getElementById("toast-text") as HTMLElement,
  toastClose: document.getElementById("toast-close") as HTMLButtonElement,
};

let selectedList: string | null = localStorage.getItem(LIST_KEY);

// ------------------------------------------------------------ feedback

let busyCount = 0;
let busyTimer: ReturnType<typeof setTimeout> | undefined;

/** Runs a vault operation with progress shown (after 150 ms) and errors in the toast. */
async function run<T>(label: string, fn: () => Promise<T>, ...controls: Array<HTMLButtonElement | HTMLInputElement | null>): Promise<T | undefined> {
  busyCount++;
  ui.busyText.textContent = label;
  document.body.classList.add("working");
  if (busyTimer === undefined) busyTimer = setTimeout(() => (ui.busy.hidden = busyCount === 0), 150);
  for (const c of controls) if (c) c.disabled = true;
  try {
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    for (const c of controls) if (c) c.disabled = false;
    busyCount--;
    if (busyCount === 0) {
      clearTimeout(busyTimer);
      busyTimer = undefined;
      ui.busy.hidden = true;
      document.body.classList.remove("working");
    }
  }
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;

function showError(e: unknown): void {
  const message =
    e instanceof EchoError
      ? e.code === "rpc.not_authorized"
        ? "The vault did not allow this: connect the app to your vault first."
        : e.code === "rpc.disconnected" || e.code === "rpc.timeout"
          ? `The vault did not answer (${e.code}). Your change may not be saved; try again once connected.`
          : `${e.message} (${e.code})`
      : e instanceof Error
        ? e.message
        : String(e);
  ui.toastText.textContent = message;
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (ui.toast.hidden = true), 8000);
  console.warn("taskboard:", e);
}

ui.toastClose.addEventListener("click", () => (ui.toast.hidden = true));

// ------------------------------------------------------------ connection

const STATE_TEXT: Record<ConnectionState, string> = {
  connecting: "Connecting to your vault…",
  connected: "Connected to your vault",
  not_authorized: "This app needs your permission to use your vault.",
  storage_partitioned:
    "Your browser keeps the vault's storage separate on this site, so tasks would not reach your vault. Open the vault site once in a tab, then try again.",
  storage_blocked: "Your browser blocks the vault's storage (private browsing, or site data blocked). Allow site data for the vault, then try again.",
  storage_lost: "Your browser deleted your vault's storage (it does so when it finds it damaged after a crash). Open your vault's page to start a new vault, then try again.",
  disconnected: "Disconnected from your vault — reconnecting…",
};

/** What the banner says where the browser keeps the vault's storage from this site (docs/browser-vault.md section 8). */
function storageText(state: "storage_partitioned" | "storage_blocked"): string {
  const apart =
    state === "storage_blocked"
      ? "Your browser blocks your vault's data on other sites, so the board cannot reach it from here."
      : "Your browser keeps your vault's data apart from this site, so the board cannot reach it from here.";
  const setting = vault.lastError?.details["setting"];
  switch (vault.storageAccess) {
    case "ask":
      return `${apart} Click “Connect to your vault”: your browser may ask whether the vault may use its data here. Or open your vault in its own window.`;
    case "asking":
      return "Your browser is asking whether your vault may use its cookies and site data on this site: choose “Allow”.";
    case "refused":
      return `Your browser did not allow it. Open your vault in its own window: the board works while that window is open.${setting ? ` To connect without it: ${setting}` : ""}`;
    case "cookies_only":
      return "Your browser let the vault use its cookies here, but not its data. Open your vault in its own window: the board works while that window is open.";
    default:
      return `${apart} Open your vault in its own window: the board works while that window is open.${setting ? ` Or: ${setting}` : ""}`;
  }
}

/** The vault's help page for this browser, when the vault named one on its own site. */
function helpLink(): string | null {
  const help = vault.lastError?.details["help"];
  if (!help) return null;
  try {
    return new URL(help).origin === new URL(VAULT_URL).origin ? help : null;
  } catch {
    return null;
  }
}

function renderState(): void {
  const state = vault.state;
  ui.status.dataset["state"] = state;
  ui.status.dataset["via"] = vault.via;
  let textValue = STATE_TEXT[state];
  const reason = vault.lastError?.details["reason"];
  if (state === "not_authorized") {
    if (reason === "revoked") textValue = "Access to your vault was revoked. Connect again to keep using the board.";
    else if (vault.consent === "denied") textValue = "You denied this app access to your vault. You can change your mind:";
  } else if (state === "storage_partitioned" || state === "storage_blocked") {
    textValue = storageText(state);
  } else if (state === "disconnected" && reason === "window_closed") {
    textValue = "Your vault's window was closed, so the board is disconnected.";
  } else if (state === "disconnected" && reason === "popup_blocked") {
    textValue = "Your browser blocked your vault's window. Allow pop-ups for this site, then click again.";
  } else if (state === "connected" && vault.via === "window") {
    textValue = "Connected to your vault through its window — keep that window open.";
  }
  ui.statusText.textContent = textValue;
  ui.connect.hidden = state !== "not_authorized";
  const storageState = state === "storage_partitioned" || state === "storage_blocked";
  const needsWindow = state === "disconnected" && (reason === "window_closed" || reason === "popup_blocked");
  // The vault's own button shows (in its frame) while a click there may get the vault its storage.
  ui.slot.hidden = !(storageState && (vault.storageAccess === "ask" || vault.storageAccess === "asking"));
  ui.openWindow.hidden = !(storageState || needsWindow);
  ui.openWindow.textContent = needsWindow ? "Open your vault again" : "Open your vault";
  // Next to the vault's own button, the window is the other way: a quieter button.
  ui.openWindow.classList.toggle("secondary-action", !ui.slot.hidden);
  const help = storageState ? helpLink() : null;
  ui.help.hidden = help === null;
  if (help !== null) ui.help.href = help;
  ui.retry.hidden = !(state === "storage_partitioned" || state === "storage_blocked" || state === "storage_lost" || (state === "disconnected" && vault.lastError?.code === "rpc.unsupported_version"));
  ui.board.classList.toggle("offline", state !== "connected");
  ui.share.hidden = state !== "connected";
  if (!board.isOpen) {
    ui.noListText.textContent = state === "connected" ? "Loading your board…" : "Your board appears here once the app is connected to your vault.";
  }
}

vault.onStateChange((state) => {
  // Revoked: what was shown is no longer ours to show; a new grant opens the board afresh.
  if (state === "not_authorized" && board.isOpen) {
    board.close();
    ui.board.dataset["ready"] = "false";
  }
  renderState();
  if (state === "connected" && !board.isOpen) void openBoard();
});

// The board's space is no longer granted (e.g. allowed again without it): find or create it again.
board.onLost = (error) => {
  ui.board.dataset["ready"] = "false";
  showError(error);
  if (vault.state === "connected") void openBoard();
};

ui.connect.addEventListener("click", () => {
  // requestAccess opens a popup: it must run in the click, before any await.
  const pending = vault.requestAccess({ appName: "Task board" });
  ui.connect.disabled = true;
  pending
    .then((r) => {
      if (!r.allowed) showError(new Error("You denied access. The board stays empty until you allow it."));
    })
    .catch((e: unknown) => {
      if (e instanceof EchoError && e.details["reason"] === "popup_closed") showError(new Error("The vault's window was closed before you decided."));
      else if (e instanceof EchoError && e.details["reason"] === "popup_blocked") showError(new Error("Your browser blocked the vault's window. Allow pop-ups for this site and try again."));
      else showError(e);
    })
    .finally(() => {
      ui.connect.disabled = false;
      renderState();
    });
});

ui.retry.addEventListener("click", () => vault.reconnect());

// The first-party vault window: opened in the click (the browser wants the gesture); reopened the same way.
ui.openWindow.addEventListener("click", () => {
  if (vault.via === "window") vault.reconnect();
  else vault.openWindow();
});
vault.onStorageAccess(() => renderState());

// ------------------------------------------------------------ sharing

const shareButton = byTestId<HTMLButtonElement>("share-board");
const joinButton = byTestId<HTMLButtonElement>("join-board");

// Both open a window of the vault (the codes never pass through this app):
// they must run in the click, before any await.
shareButton.addEventListener("click", () => {
  if (!board.space) return;
  board.space
    .invite({ role: "editor" })
    .then((r) => {
      if (r.state !== "success") showError(new Error(`The invitation ended: ${r.state}.`));
    })
    .catch((e: unknown) => {
      if (!(e instanceof EchoError && e.details["reason"] === "popup_closed")) showError(e);
    });
});
joinButton.addEventListener("click", () => {
  vault
    .acceptInvitation()
    .then(async (r) => {
      if (r.state === "success" && r.space) await run("Opening the shared board…", () => board.switchTo(r.space as string));
      else showError(new Error(`Joining did not work: ${r.state}.`));
    })
    .then(() => render())
    .catch((e: unknown) => {
      if (!(e instanceof EchoError && e.details["reason"] === "popup_closed")) showError(e);
    });
});

// ------------------------------------------------------------ who is here

const peersEl = byTestId<HTMLElement>("peers");
let stopStatus: (() => void) | null = null;
let watchedSpace: Space | null = null;

/** What the board's connection status says to a person (and data attributes for tests). */
function renderPeers(status: SpaceStatus): void {
  peersEl.dataset["peers"] = String(status.peers);
  peersEl.dataset["online"] = String(status.online);
  const last = status.synced_at ? ` · last synced ${new Date(status.synced_at).toLocaleTimeString()}` : "";
  if (!status.online) {
    peersEl.textContent = `Offline: your changes are kept and sync when you are back online${last}`;
  } else if (!status.can_connect) {
    peersEl.textContent = "Not syncing: open your vault to connect to the others on this board";
  } else if (status.peers === 0) {
    peersEl.textContent = `No one else is here right now${last}`;
  } else {
    const who = status.peers === 1 ? "1 collaborator is" : `${status.peers} collaborators are`;
    peersEl.textContent = `${who} here, changes appear live${last}`;
  }
}

/** Follows the status of the board's space (again after switching boards). */
function watchPeers(): void {
  if (board.space === watchedSpace) return;
  stopStatus?.();
  stopStatus = null;
  watchedSpace = board.space;
  peersEl.textContent = "";
  if (board.space) stopStatus = board.space.onStatus(renderPeers);
}

async function openBoard(): Promise<void> {
  await run("Loading your board…", () => board.open());
  if (board.isOpen) {
    ui.board.dataset["ready"] = "true";
    render();
  }
}

board.onChange(() => render());

// ------------------------------------------------------------ lists

function render(): void {
  watchPeers();
  renderLists();
  renderListView();
}

function currentList() {
  if (selectedList && board.lists.has(selectedList)) return board.lists.get(selectedList) ?? null;
  const first = board.sortedLists()[0] ?? null;
  return first;
}

function selectList(id: string): void {
  selectedList = id;
  localStorage.setItem(LIST_KEY, id);
  resetListHeader();
  ui.tagFilter.value = "";
  render();
}

function renderLists(): void {
  const current = currentList();
  const now = today();
  const items = board.sortedLists().map((list) => {
    const tasks = [...board.tasks.values()].filter((t) => t.list === list.id);
    const open = tasks.filter((t) => !t.done).length;
    const overdue = tasks.filter((t) => isOverdue(t, now)).length;
    const button = h(
      "button",
      { type: "button", class: "list-button", testid: `list-${list.name}`, dataset: { listId: list.id } },
      h("span", { class: "list-button-name" }, list.name),
      overdue > 0 ? h("span", { class: "badge overdue", title: `${overdue} overdue` }, String(overdue)) : null,
      h("span", { class: "badge", title: `${open} open` }, String(open)),
    );
    if (current?.id === list.id) {
      button.classList.add("selected");
      button.setAttribute("aria-current", "true");
    }
    button.addEventListener("click", () => selectList(list.id));
    return h("li", {}, button);
  });
  ui.lists.replaceChildren(...items);
}

ui.newListForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const name = cleanName(ui.newListName.value);
  if (!name || !board.isOpen) return;
  void run("Adding the list…", async () => {
    const typed = ui.newListName.value;
    const id = await board.addList(name);
    if (ui.newListName.value === typed) ui.newListName.value = "";
    selectList(id);
  }, ui.addList);
});

function resetListHeader(): void {
  ui.renameForm.hidden = true;
  ui.listActions.hidden = false;
  ui.listName.hidden = false;
  ui.deleteList.hidden = false;
  ui.deleteListConfirm.hidden = true;
}

ui.renameList.addEventListener("click", () => {
  const list = currentList();
  if (!list) return;
  ui.renameInput.value = list.name;
  ui.renameForm.hidden = false;
  ui.listActions.hidden = true;
  ui.listName.hidden = true;
  ui.renameInput.focus();
  ui.renameInput.select();
});

ui.renameCancel.addEventListener("click", () => resetListHeader());

ui.renameForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const list = currentList();
  const name = cleanName(ui.renameInput.value);
  if (!list || !name) return;
  void run("Renaming the list…", async () => {
    await board.renameList(list.id, name);
    resetListHeader();
  });
});

ui.deleteList.addEventListener("click", () => {
  ui.deleteList.hidden = true;
  ui.deleteListConfirm.hidden = false;
  ui.deleteListConfirm.focus();
});

ui.deleteListConfirm.addEventListener("blur", () => setTimeout(resetListHeader, 200));

ui.deleteListConfirm.addEventListener("click", () => {
  const list = currentList();
  if (!list) return;
  void run("Deleting the list…", async () => {
    await board.deleteList(list.id);
    selectedList = null;
    localStorage.removeItem(LIST_KEY);
    resetListHeader();
  }, ui.deleteListConfirm);
});

// ------------------------------------------------------------ tasks

interface TaskRow {
  task: Task;
  li: HTMLLIElement;
  done: HTMLInputElement;
  title: HTMLElement;
  due: HTMLElement;
  overdue: HTMLElement;
  tags: HTMLElement;
  edit: HTMLButtonElement;
  details: HTMLFormElement;
  titleInput: HTMLInputElement;
  dueInput: HTMLInputElement;
  tagsInput: HTMLInputElement;
  note: HTMLTextAreaElement;
  noteSync: NoteSync;
  noteStatus: HTMLElement;
}

const rows = new Map<string, TaskRow>();

function renderListView(): void {
  const list = currentList();
  if (!list) {
    ui.listView.hidden = true;
    ui.noList.hidden = false;
    if (board.isOpen) ui.noListText.textContent = "No lists yet. Create one on the left to start.";
    for (const id of [...rows.keys()]) dropRow(id);
    return;
  }
  ui.noList.hidden = true;
  ui.listView.hidden = false;
  ui.listName.textContent = list.name;
  ui.listView.dataset["listId"] = list.id;

  const now = today();
  const listTasks = [...board.tasks.values()].filter((t) => t.list === list.id);
  renderTagOptions(allTags(listTasks));
  const overdue = listTasks.filter((t) => isOverdue(t, now)).length;
  ui.overdueCount.textContent = overdue === 0 ? "" : overdue === 1 ? "1 task overdue" : `${overdue} tasks overdue`;

  const shown = visibleTasks(board.tasks.values(), list.id, { tag: ui.tagFilter.value, overdueOnly: ui.overdueFilter.checked }, now);
  const keep = new Set(shown.map((t) => t.id));
  for (const id of [...rows.keys()]) if (!keep.has(id)) dropRow(id);
  let prev: Element | null = null;
  for (const task of shown) {
    const row = rows.get(task.id) ?? createRow(task);
    updateRow(row, task, now);
    const expected: Element | null = prev ? prev.nextElementSibling : ui.tasks.firstElementChild;
    if (expected !== row.li) ui.tasks.insertBefore(row.li, expected);
    prev = row.li;
  }
  ui.noTasks.hidden = shown.length > 0;
  ui.noTasks.textContent = listTasks.length === 0 ? "No tasks yet. Add one above." : "No tasks match the filter.";
}

function renderTagOptions(tags: string[]): void {
  const current = ui.tagFilter.value;
  const options = [h("option", {}, "All tags"), ...tags.map((t) => h("option", {}, t))];
  (options[0] as HTMLOptionElement).value = "";
  for (const o of options.slice(1)) (o as HTMLOptionElement).value = o.textContent ?? "";
  const same = ui.tagFilter.options.length === options.length && [...ui.tagFilter.options].every((o, i) => o.value === (options[i] as HTMLOptionElement).value);
  if (!same) {
    ui.tagFilter.replaceChildren(...options);
    ui.tagFilter.value = tags.includes(current) ? current : "";
  }
}

ui.tagFilter.addEventListener("change", () => renderListView());
ui.overdueFilter.addEventListener("change", () => renderListView());

function dropRow(id: string): void {
  const row = rows.get(id);
  if (!row) return;
  row.li.remove();
  rows.delete(id);
}

function createRow(task: Task): TaskRow {
  const done = h("input", { type: "checkbox", class: "task-done", testid: "task-done", ariaLabel: "Done" });
  const title = h("span", { class: "task-title", testid: "task-title" });
  const due = h("span", { class: "task-due", testid: "task-due" });
  const overdue = h("span", { class: "badge overdue", testid: "task-overdue", hidden: true }, "Overdue");
  const tags = h("span", { class: "task-tags", testid: "task-tags" });
  const edit = h("button", { type: "button", class: "secondary small", testid: "task-edit" }, "Edit");
  const del = h("button", { type: "button", class: "danger small", testid: "task-delete", ariaLabel: "Delete task" }, "Delete");

  const titleInput = h("input", { type: "text", testid: "task-title-input", ariaLabel: "Title" });
  titleInput.maxLength = 500;
  const dueInput = h("input", { type: "date", testid: "task-due-input", ariaLabel: "Due date" });
  const tagsInput = h("input", { type: "text", testid: "task-tags-input", ariaLabel: "Tags", placeholder: "tags, comma separated" });
  const save = h("button", { type: "submit", class: "primary small", testid: "task-save" }, "Save");
  const noteId = `note-${task.id}`;
  const note = h("textarea", { class: "task-note", testid: "task-note", id: noteId, placeholder: "Notes — shared live with everyone on this board" });
  note.rows = 4;
  const noteStatus = h("span", { class: "note-status", testid: "task-note-status" });
  const details = h(
    "form",
    { class: "task-details", testid: "task-details", hidden: true },
    h("div", { class: "detail-fields" },
      h("label", {}, "Title", titleInput),
      h("label", {}, "Due", dueInput),
      h("label", {}, "Tags", tagsInput),
      save,
    ),
    h("label", { class: "note-label", for: noteId }, "Note ", noteStatus),
    note,
  );

  const li = h(
    "li",
    { class: "task", testid: "task", dataset: { taskId: task.id } },
    h("div", { class: "task-main" }, done, h("div", { class: "task-text" }, title, h("div", { class: "task-meta" }, due, overdue, tags)), edit, del),
    details,
  );

  const id = task.id;
  const noteSync = new NoteSync(note, task.note, {
    splice: (s, context) => board.spliceNote(id, s.pos, s.delete, s.insert, context),
    read: () => board.readNote(id),
    focused: () => document.activeElement === note,
    onError: (e) => showError(e),
  });
  const row: TaskRow = { task, li, done, title, due, overdue, tags, edit, details, titleInput, dueInput, tagsInput, note, noteSync, noteStatus };

  let noteTimer: ReturnType<typeof setTimeout> | undefined;
  const showNoteState = () => {
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => {
      row.noteStatus.textContent = row.noteSync.pendingCount > 0 ? "saving…" : "saved";
      if (row.noteSync.pendingCount > 0) showNoteState();
    }, 300);
  };
  note.addEventListener("input", () => {
    noteSync.input();
    row.noteStatus.textContent = "saving…";
    showNoteState();
  });
  note.addEventListener("compositionstart", () => noteSync.compositionStart());
  note.addEventListener("compositionend", () => noteSync.compositionEnd());

  done.addEventListener("change", () => {
    const value = done.checked;
    void run(value ? "Completing the task…" : "Reopening the task…", async () => {
      try {
        await board.updateTask(id, { done: value });
      } catch (e) {
        done.checked = row.task.done;
        throw e;
      }
    });
  });
  del.addEventListener("click", () => void run("Deleting the task…", () => board.deleteTask(id), del));
  edit.addEventListener("click", () => {
    const open = details.hidden;
    details.hidden = !open;
    edit.textContent = open ? "Close" : "Edit";
    li.classList.toggle("open", open);
    if (open) {
      fillEditor(row);
      titleInput.focus();
    }
  });
  details.addEventListener("submit", (e) => {
    e.preventDefault();
    const newTitle = titleInput.value.trim();
    if (newTitle === "") {
      showError(new Error("A task needs a title."));
      return;
    }
    const newDue = dueInput.value;
    if (newDue !== "" && !isDate(newDue)) {
      showError(new Error("The due date must be a date (YYYY-MM-DD)."));
      return;
    }
    void run("Saving the task…", () => board.updateTask(id, { title: newTitle, due: newDue === "" ? null : newDue, tags: parseTags(tagsInput.value) }), save);
  });
  rows.set(task.id, row);
  return row;
}

function fillEditor(row: TaskRow): void {
  row.titleInput.value = row.task.title;
  row.dueInput.value = row.task.due ?? "";
  row.tagsInput.value = formatTags(row.task.tags);
}

function updateRow(row: TaskRow, task: Task, now: string): void {
  const old = row.task;
  row.task = task;
  row.done.checked = task.done;
  row.title.textContent = task.title;
  row.li.classList.toggle("done", task.done);
  row.li.dataset["done"] = String(task.done);
  const late = isOverdue(task, now);
  row.li.classList.toggle("is-overdue", late);
  row.li.dataset["overdue"] = String(late);
  row.overdue.hidden = !late;
  row.due.textContent = task.due ? `Due ${task.due}` : "";
  row.due.hidden = !task.due;
  row.tags.replaceChildren(
    ...task.tags.map((tag) => {
      const chip = h("button", { type: "button", class: "tag", testid: "task-tag", title: `Show tasks tagged ${tag}` }, `#${tag}`);
      chip.addEventListener("click", () => {
        ui.tagFilter.value = tag;
        renderListView();
      });
      return chip;
    }),
  );
  // Editor fields follow remote changes unless the user is editing them.
  if (!row.details.hidden) {
    const active = document.activeElement;
    if (active !== row.titleInput && row.titleInput.value === old.title) row.titleInput.value = task.title;
    if (active !== row.dueInput && row.dueInput.value === (old.due ?? "")) row.dueInput.value = task.due ?? "";
    if (active !== row.tagsInput && row.tagsInput.value === formatTags(old.tags)) row.tagsInput.value = formatTags(task.tags);
  }
  if (task.note !== old.note) row.noteSync.remote(task.note);
}

ui.newTaskForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const list = currentList();
  const title = ui.newTaskTitle.value.trim();
  if (!list || title === "") return;
  const due = ui.newTaskDue.value;
  if (due !== "" && !isDate(due)) {
    showError(new Error("The due date must be a date (YYYY-MM-DD)."));
    return;
  }
  void run("Adding the task…", async () => {
    const tagsText = ui.newTaskTags.value;
    const typedTitle = ui.newTaskTitle.value;
    await board.addTask(list.id, { title, due: due || undefined, tags: parseTags(tagsText) });
    // Clear what was submitted, not what the user typed meanwhile.
    if (ui.newTaskTitle.value === typedTitle) ui.newTaskTitle.value = "";
    if (ui.newTaskDue.value === due) ui.newTaskDue.value = "";
    if (ui.newTaskTags.value === tagsText) ui.newTaskTags.value = "";
    if (document.activeElement === document.body || document.activeElement === ui.addTask) ui.newTaskTitle.focus();
  }, ui.addTask);
});

// Overdue marks follow the calendar.
setInterval(() => {
  if (board.isOpen) render();
}, 60_000);

renderState();
render();
