// Registers the vault site's service worker (worker/sw.ts, built as /sw.js),
// which keeps the site's assets for offline use. Best effort: partitioned or
// blocked contexts may refuse it, and the vault works without it.
export function registerServiceWorker(): void {
  if (!("serviceWorker" in navigator)) return;
  const register = (): void => {
    navigator.serviceWorker
      .register("/sw.js", { scope: "/", type: "classic" })
      .catch((error: unknown) => console.info("echo: no service worker here", error));
  };
  if (document.readyState === "complete") register();
  else addEventListener("load", register, { once: true });
}
