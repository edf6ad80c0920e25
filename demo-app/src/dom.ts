// A small element builder: h("button", { class: "x", dataset: { testid: "add" } }, "Add").

type Attrs = {
  class?: string;
  id?: string;
  testid?: string;
  type?: string;
  title?: string;
  placeholder?: string;
  hidden?: boolean;
  disabled?: boolean;
  for?: string;
  role?: string;
  ariaLabel?: string;
  ariaLive?: string;
  dataset?: Record<string, string>;
};

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Array<Node | string | null | undefined | false>
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs.class) el.className = attrs.class;
  if (attrs.id) el.id = attrs.id;
  if (attrs.testid) el.dataset["testid"] = attrs.testid;
  if (attrs.type) el.setAttribute("type", attrs.type);
  if (attrs.title) el.title = attrs.title;
  if (attrs.placeholder) el.setAttribute("placeholder", attrs.placeholder);
  if (attrs.hidden) el.hidden = true;
  if (attrs.disabled) el.setAttribute("disabled", "");
  if (attrs.for) el.setAttribute("for", attrs.for);
  if (attrs.role) el.setAttribute("role", attrs.role);
  if (attrs.ariaLabel) el.setAttribute("aria-label", attrs.ariaLabel);
  if (attrs.ariaLive) el.setAttribute("aria-live", attrs.ariaLive);
  for (const [k, v] of Object.entries(attrs.dataset ?? {})) el.dataset[k] = v;
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** The element with `data-testid` = `id` (it must exist). */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(`[data-testid="${CSS.escape(id)}"]`);
  if (!el) throw new Error(`missing element [data-testid="${id}"]`);
  return el;
}
