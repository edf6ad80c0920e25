// The vault page that drives WebRTC for the engine (docs/browser-vault.md,
// section 7). Every vault page with an engine (the iframe inside an app, the
// manage page, the invitation page) asks for the Web Lock "echo-net-host";
// the one holding it loads the WebRTC driver (vault-net/, Rust + web-sys),
// hands the engine a port to it, and keeps the lock until the page goes —
// then the next page in line takes over and the engine dials again.
import { NET_LOCK, type StorageScope } from "./control";
import type { EngineLink } from "./engine";

/** Set by scripts/web-build.mjs: the driver's wasm-bindgen JS and wasm (null: built without). */
declare const __ECHO_NET_JS__: string | null;
declare const __ECHO_NET_BG__: string | null;
/** RTCConfiguration.iceServers as JSON (ECHO_ICE_SERVERS at build time). */
declare const __ECHO_ICE_SERVERS__: string;

interface NetHost {
  close(): void;
  links(): number;
}

interface NetModule {
  default(input?: { module_or_path: URL | string }): Promise<unknown>;
  NetHost: new (engine: MessagePort, iceServers: string) => NetHost;
  qrSvg(text: string): string;
}

let loading: Promise<NetModule> | null = null;

/** The driver's module (also the invitation page's QR codes); null: not in this build. */
export function loadNetModule(): Promise<NetModule> | null {
  if (__ECHO_NET_JS__ === null || __ECHO_NET_BG__ === null) return null;
  const jsPath = __ECHO_NET_JS__;
  const bgPath = __ECHO_NET_BG__;
  loading ??= (async () => {
    const module = (await import(new URL(jsPath, location.href).href)) as NetModule;
    await module.default({ module_or_path: new URL(bgPath, location.href) });
    return module;
  })();
  return loading;
}

/** What this page does for the network, for the page to show. */
export type NetRole = "driving" | "standby" | "unavailable";

/** Held by an app's iframe while it drives, so a top-level vault page knows to take over. */
const IFRAME_MARK = "echo-net-host-iframe";

/**
 * Takes part in the election of the page that drives WebRTC. Top-level
 * vault pages (manage, invitation) come first: one opening while an app's
 * iframe drives takes the lead from it (Web Locks `steal`), because a
 * cross-site iframe may not reach every network interface (Chromium hides
 * local addresses from it). `onRole` is told "standby" at once, "driving"
 * when this page leads, or "unavailable" (no Web Locks, no
 * RTCPeerConnection, no driver in the build).
 */
export function joinNetElection(link: EngineLink, scope: StorageScope, onRole: (role: NetRole) => void): void {
  const locks = scope.locks;
  const loaded = loadNetModule();
  if (!locks || typeof RTCPeerConnection === "undefined" || loaded === null) {
    onRole("unavailable");
    return;
  }
  const topLevel = window.top === window;
  let host: NetHost | null = null;
  let releaseMark: (() => void) | null = null;
  addEventListener("pagehide", () => host?.close());

  const drive = async (): Promise<void> => {
    try {
      const module = await loaded;
      const channel = new MessageChannel();
      if (!(await link.attachNet(channel.port2))) {
        onRole("unavailable");
        return;
      }
      host = new module.NetHost(channel.port1, __ECHO_ICE_SERVERS__);
      document.documentElement.dataset["net"] = "driving";
      onRole("driving");
      if (!topLevel) {
        void locks.request(IFRAME_MARK, () => new Promise<void>((resolve) => (releaseMark = resolve)));
      }
    } catch (error) {
      console.error("echo: the WebRTC driver failed to start", error);
      onRole("unavailable");
      return;
    }
    // Held for the life of the page (or until a top-level page takes over).
    await new Promise<never>(() => {});
  };

  let waiting: AbortController | null = null;
  const request = (steal: boolean): void => {
    const controller = new AbortController();
    waiting = steal ? null : controller;
    const options: LockOptions = steal ? { steal: true } : { signal: controller.signal };
    locks.request(NET_LOCK, options, async () => {
      waiting = null;
      await drive();
    }).catch((error: unknown) => {
      if (controller.signal.aborted) {
        // A top-level page stopped waiting behind an iframe: it takes over.
        request(true);
        return;
      }
      if (error instanceof DOMException && error.name === "AbortError") {
        // A top-level vault page took the lead: stop driving, wait in line.
        host?.close();
        host = null;
        releaseMark?.();
        releaseMark = null;
        delete document.documentElement.dataset["net"];
        onRole("standby");
        request(false);
        return;
      }
      console.error("echo: cannot take part in the WebRTC election", error);
      onRole("unavailable");
    });
  };

  onRole("standby");
  if (!topLevel) {
    request(false);
    return;
  }
  const iframeDrives = async (): Promise<boolean> => {
    const state = await locks.query().catch(() => null);
    return state?.held?.some((l) => l.name === IFRAME_MARK) ?? false;
  };
  void iframeDrives().then((iframe) => request(iframe));
  // Waiting in line while an app's iframe took the lead: take it over.
  setInterval(() => {
    if (!waiting) return;
    const pending = waiting;
    void iframeDrives().then((iframe) => {
      if (iframe && waiting === pending) pending.abort();
    });
  }, 1_000);
}
