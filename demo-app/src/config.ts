// Where the vault lives. The build (scripts/web-build.mjs) injects the
// vault's origin; it defines __ECHO_VAULT_URL__ (and
// process.env.ECHO_VAULT_URL); ECHO_VAULT_URL is accepted too. `typeof`
// keeps an undefined constant from throwing.

declare const ECHO_VAULT_URL: string;
declare const __ECHO_VAULT_URL__: string;

/** The default when no build constant is set (local development). */
export const DEFAULT_VAULT_URL = "http://vault.localhost:8600";

export function vaultUrl(): string {
  if (typeof __ECHO_VAULT_URL__ === "string" && __ECHO_VAULT_URL__ !== "") return __ECHO_VAULT_URL__;
  if (typeof ECHO_VAULT_URL === "string" && ECHO_VAULT_URL !== "") return ECHO_VAULT_URL;
  return DEFAULT_VAULT_URL;
}
