// What a person does when their browser keeps the vault's storage from an
// app (docs/browser-vault.md, section 8): the refusal's message names the
// setting in the browser they use, in that browser's own words, and links
// the vault's help page (/help.html), which explains each browser at length.
import type { RpcError } from "@echo/client/protocol";

/** The browsers the help page has a section for (its anchors). */
export type Browser = "chrome" | "edge" | "firefox" | "safari" | "other";

/** The browser this page runs in, as well as a page can tell. */
export function detectBrowser(userAgent: string = navigator.userAgent): Browser {
  if (/\bEdg(e|A|iOS)?\//.test(userAgent)) return "edge";
  if (/\bFirefox\/|\bFxiOS\//.test(userAgent)) return "firefox";
  if (/Chrom(e|ium)\/|\bCriOS\//.test(userAgent)) return "chrome";
  if (/\bSafari\//.test(userAgent) && /\bVersion\//.test(userAgent)) return "safari";
  return "other";
}

/** The one setting to change, in the browser's own words, for the vault at `vaultHost`. */
export function settingFor(browser: Browser, vaultHost: string): string {
  switch (browser) {
    case "chrome":
      return `In Chrome: ⋮ → Settings → Privacy and security → Third-party cookies → under “Allowed to use third-party cookies”, Add → [*.]${vaultHost}.`;
    case "edge":
      return `In Edge: … → Settings → Cookies and site permissions → Manage and delete cookies and site data → under “Allow”, Add → [*.]${vaultHost} (check “Include third-party cookies on this site”).`;
    case "firefox":
      return "In Firefox: click the shield in the address bar of the app's page and turn off “Enhanced Tracking Protection” for that site (or Settings → Privacy & Security → Enhanced Tracking Protection → Manage Exceptions…).";
    case "safari":
      return "In Safari: Safari → Settings → Privacy → uncheck “Prevent cross-site tracking”. (In a Private window Safari always keeps it separate.)";
    default:
      return `In your browser's privacy settings, allow third-party cookies and site data for ${vaultHost}.`;
  }
}

/**
 * The refusal of a frame that cannot reach the vault's storage: `lead` says
 * what the browser does, then the way that always works (the vault's own
 * window, one click) and the setting that lets the app reach the vault
 * without it. `details`: `browser`, `setting`, `help` (the help page's
 * section for this browser, on the vault's origin).
 */
export function blockedAdvice(code: "rpc.storage_partitioned" | "rpc.storage_blocked", lead: string): RpcError {
  const browser = detectBrowser();
  const setting = settingFor(browser, location.hostname);
  const help = `${location.origin}/help.html#${browser}`;
  return {
    code,
    message: `${lead} Open your vault in its own window (one click), or let the vault in: ${setting}`,
    details: { reason: "third_party_storage", browser, setting, help },
  };
}
