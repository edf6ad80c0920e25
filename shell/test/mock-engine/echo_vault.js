// A stand-in for the echo-vault wasm-bindgen module (docs/browser-vault.md,
// section 6), for trying the vault's pages before the engine exists:
//   ECHO_VAULT_PKG=shell/test/mock-engine node scripts/web-build.mjs
// In memory, nothing persists; it speaks enough of the app protocol (hello,
// ping, spaces.create, spaces.list) and all of the admin protocol.
const admins = new Set();
const apps = new Map(); // origin → { allowed, spaces: Set, decided_at }
const spaces = new Map(); // id → { properties, created_by, objects }
const conns = new Map(); // port → origin
let displayName;
const key = (n) => Array.from({ length: 52 }, (_, i) => "0123456789abcdefghijklmnopqrstuv"[(i * 7 + n) % 32]).join("");

function changed() {
  for (const port of admins) port.postMessage({ changed: {} });
}
function consentOf(origin) {
  const app = apps.get(origin);
  return !app ? "required" : app.allowed ? "granted" : "denied";
}
function spaceInfo(id) {
  return { space: id, role: "owner", properties: spaces.get(id).properties };
}
const err = (code, message, details) => ({ Err: details ? { code, message, details } : { code, message } });

export default async function init() {
  return {};
}

export class VaultEngine {
  static async start() {
    return new VaultEngine();
  }

  attach_app(port, origin) {
    conns.set(port, origin);
    changed();
    port.onmessage = (event) => {
      const m = event.data;
      if (m.hello) {
        port.postMessage({ welcome: { version: 1, vault: { vault: "echo-vault mock", storage: "persistent", consent: consentOf(origin) } } });
        return;
      }
      if (!m.request) return;
      const { id, method } = m.request;
      const name = Object.keys(method)[0];
      const args = method[name];
      const app = apps.get(origin);
      let result;
      if (name === "ping") result = { Ok: { done: {} } };
      else if (!app || !app.allowed) {
        result = err("rpc.not_authorized", "The user has not allowed this app.", { reason: app ? "denied" : "consent_required" });
      } else if (name === "spaces.create") {
        const space = crypto.randomUUID();
        spaces.set(space, { properties: args.properties ?? {}, created_by: origin, objects: 0 });
        app.spaces.add(space);
        changed();
        result = { Ok: { space: spaceInfo(space) } };
      } else if (name === "spaces.list") {
        result = { Ok: { spaces: { spaces: [...app.spaces].map(spaceInfo) } } };
      } else result = err("rpc.unknown_method", `The mock engine does not do ${name}.`);
      port.postMessage({ response: { id, result } });
    };
  }

  attach_admin(port) {
    admins.add(port);
    port.onmessage = (event) => {
      const { id, method } = event.data.request ?? {};
      if (id === undefined) return;
      const name = Object.keys(method)[0];
      const args = method[name];
      let result;
      if (name === "vault.status") {
        result = { Ok: { status: { identity: { identity_key: key(1), device_key: key(5), display_name: displayName }, spaces: spaces.size, apps: apps.size, connections: conns.size } } };
      } else if (name === "apps.list") {
        result = { Ok: { apps: { apps: [...apps].map(([origin, a]) => ({ origin, allowed: a.allowed, spaces: [...a.spaces], connections: [...conns.values()].filter((o) => o === origin).length, decided_at: a.decided_at })) } } };
      } else if (name === "spaces.list") {
        result = { Ok: { spaces: { spaces: [...spaces].map(([space, s]) => ({ space, properties: s.properties, objects: s.objects, apps: [...apps].filter(([, a]) => a.spaces.has(space)).map(([o]) => o), created_by: s.created_by })) } } };
      } else if (name === "consent.decide") {
        apps.set(args.origin, { allowed: args.allow, spaces: new Set(args.allow ? args.spaces ?? [] : []), decided_at: Date.now() });
        for (const [p, o] of conns) if (o === args.origin && args.allow) p.postMessage({ event: { event: { access_granted: {} } } });
        changed();
        result = { Ok: { done: {} } };
      } else if (name === "apps.revoke") {
        apps.delete(args.origin);
        for (const [p, o] of conns) {
          if (o !== args.origin) continue;
          p.postMessage({ event: { event: { access_revoked: {} } } });
          p.close();
          conns.delete(p);
        }
        changed();
        result = { Ok: { done: {} } };
      } else if (name === "identity.set_name") {
        displayName = args.name;
        changed();
        result = { Ok: { done: {} } };
      } else result = err("rpc.unknown_method", `Unknown admin method ${name}.`);
      port.postMessage({ response: { id, result } });
    };
  }
}
