// What the top-level vault pages (consent popup, manage page) share: joining
// the engine as a first party and an admin connection to it.
import type { RpcError, Value, VaultSpace } from "@echo/client/protocol";
import { AdminClient } from "./admin-client";
import { globalScope, type EngineStatus } from "./control";
import { joinEngine, type EngineLink } from "./engine";
import { joinNetElection } from "./net";
import { registerServiceWorker } from "./sw-register";

export interface AdminSession {
  link: EngineLink;
  /** The current admin client (a new one after a lost connection). */
  client(): AdminClient;
}

/**
 * Joins the engine and opens an admin port. `onClient` runs with the first
 * client and again with each new one after a lost connection (fallback
 * relays); `onStatus` with each engine status. `options.net: false` keeps
 * the page out of the election of the page that drives WebRTC.
 */
export function openAdmin(
  onClient: (client: AdminClient) => void,
  onStatus: (status: EngineStatus) => void,
  options: { net?: boolean } = {},
): AdminSession {
  refuseFraming();
  registerServiceWorker();
  const scope = globalScope();
  const link = joinEngine(scope);
  // A page that stays open may drive WebRTC (not a short-lived popup).
  if (options.net !== false) joinNetElection(link, scope, () => {});
  let current = attach(link);
  link.onStatus(onStatus);
  link.onDisconnect(() => {
    current.close();
    current = attach(link);
    onClient(current);
  });
  onClient(current);
  return { link, client: () => current };
}

/**
 * A vault page other than the shell runs only at the top: framed by another
 * site it could be clickjacked, and would run a second, empty vault in that
 * site's storage partition. The server forbids framing (frame-ancestors
 * 'none'); this holds where a browser or a proxy does not.
 */
export function refuseFraming(): void {
  if (window.top === window) return;
  document.body.replaceChildren();
  const p = document.createElement("p");
  p.textContent = "This page of your vault cannot be shown inside another site. Open it in a tab of its own.";
  document.body.appendChild(p);
  throw new Error("echo: a vault page framed by another page refuses to run");
}

function attach(link: EngineLink): AdminClient {
  const channel = new MessageChannel();
  link.attachAdmin(channel.port2);
  return new AdminClient(channel.port1);
}

/** A string field value, if it is one. */
export function stringValue(value: Value | undefined): string | null {
  if (value && typeof value === "object" && "string" in value) return value.string;
  if (value && typeof value === "object" && "text" in value) return value.text;
  return null;
}

/** The name a person knows a space by. */
export function spaceName(space: Pick<VaultSpace, "space" | "properties">): string {
  const props = space.properties;
  return (
    stringValue(props["name"]) ??
    stringValue(props["title"]) ??
    stringValue(props["label"]) ??
    `Space ${space.space.slice(0, 8)}`
  );
}

export function errorText(error: RpcError): string {
  return `${error.message} (${error.code})`;
}
