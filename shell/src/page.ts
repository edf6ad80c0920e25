// What the top-level vault pages (consent popup, manage page) share: joining
// the engine as a first party and an admin connection to it.
import type { RpcError, Value, VaultSpace } from "../../client/src/protocol";
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
