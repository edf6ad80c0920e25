// The service worker of the vault site and of the demo app site (/sw.js, a
// fixed name). scripts/web-build.mjs injects the site's built assets and a
// version; this worker precaches them on install, serves them cache-first
// (so the site loads offline) and deletes other versions' caches on activate.

/** Set by scripts/web-build.mjs. */
declare const __SW_SITE__: string;
declare const __SW_VERSION__: string;
declare const __SW_ASSETS__: string[];

const sw = self as unknown as ServiceWorkerGlobalScope;
const PREFIX = `echo-${__SW_SITE__}-`;
const CACHE = `${PREFIX}${__SW_VERSION__}`;
const ASSETS = new Set(__SW_ASSETS__);

sw.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // Bypass the HTTP cache: the assets must be the ones of this version.
      await cache.addAll(__SW_ASSETS__.map((path) => new Request(path, { cache: "reload" })));
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await sw.clients.claim();
    })(),
  );
});

/** The precached path a request stands for, if any. */
function assetPath(request: Request): string | null {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== sw.location.origin) return null;
  let path = url.pathname;
  if (path.endsWith("/")) path += "index.html";
  return ASSETS.has(path) ? path : null;
}

sw.addEventListener("fetch", (event) => {
  const path = assetPath(event.request);
  if (!path) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const hit = await cache.match(path);
      if (hit) return hit;
      const response = await fetch(event.request);
      if (response.ok && response.type === "basic" && !response.redirected) {
        await cache.put(path, response.clone());
      }
      return response;
    })(),
  );
});

export {};
