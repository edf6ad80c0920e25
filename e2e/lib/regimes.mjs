// Headless Chromium in the three storage regimes a cross-site iframe can meet
// (see /work/shared/TOOLCHAIN.md, "Distinct sites on one machine"):
//   'storage-access'  third-party cookies allowed: requestStorageAccess() resolves without a gesture and its
//                     handle is the vault's first-party storage (plain iframe storage stays partitioned)
//   'partitioned'     third-party cookies blocked: iframe storage works but is keyed by the top-level site;
//                     requestStorageAccess() rejects
//   'blocked'         third-party cookies blocked and partitioning off: iframe IndexedDB/SharedWorker/locks fail
//
// launchRegime() gives a Playwright persistent context on a fresh profile; chromiumArgs() and writeProfile()
// are the same settings for tests that start the Chromium binary themselves (the kill test).
import { createRequire } from "node:module";
import { mkdtemp, mkdir, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOOLS = resolve(process.env.ECHO_TOOLS_DIR ?? join(ROOT, ".tools"), "npm");
export const { chromium } = createRequire(join(TOOLS, "package.json"))("playwright-core");

export const EXECUTABLE = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ROOT_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// Playwright passes its own --disable-features list, which includes ThirdPartyStoragePartitioning; Chromium
// honours only the last --disable-features switch, so this one (Playwright's entries minus that feature, unless
// the regime wants partitioning off) replaces it.
const PW_DISABLED = ["AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "HttpsUpgrades",
  "HttpsFirstBalancedModeAutoEnable", "LensOverlay", "MediaRouter", "PaintHolding",
  "AvoidCorsURLLoaderRestartOnRedirect", "OptimizationHints", "NetworkTimeServiceQuerying", "AimEnabled",
  "PreconnectToSearch"];

// profile.cookie_controls_mode: 0 = allow third-party cookies, 1 = block them.
const REGIMES = {
  "storage-access": { cookieControlsMode: 0, partitioning: true },
  partitioned: { cookieControlsMode: 1, partitioning: true },
  blocked: { cookieControlsMode: 1, partitioning: false },
};
export const REGIME_NAMES = Object.keys(REGIMES);

function regimeOf(name) {
  const r = REGIMES[name];
  if (!r) throw new Error(`unknown regime ${name}; use ${REGIME_NAMES.join(" | ")}`);
  return r;
}

/** Chromium switches for a regime (headless not included). */
export function chromiumArgs(regime) {
  const r = regimeOf(regime);
  return [...ROOT_ARGS, "--disable-features=" + [...PW_DISABLED, ...(r.partitioning ? [] : ["ThirdPartyStoragePartitioning"])].join(",")];
}

/** Writes the regime's preferences into a (new) user-data-dir. */
export async function writeProfile(userDataDir, regime) {
  const r = regimeOf(regime);
  await mkdir(join(userDataDir, "Default"), { recursive: true });
  await writeFile(join(userDataDir, "Default", "Preferences"), JSON.stringify({ profile: { cookie_controls_mode: r.cookieControlsMode } }));
}

/**
 * A persistent context on a fresh profile in `regime`; `contextOptions`: more of Playwright's options for it (e.g.
 * `serviceWorkers: "block"`).
 * @returns {Promise<{context: import('playwright-core').BrowserContext, close: () => Promise<void>, userDataDir: string}>}
 */
export async function launchRegime(regime, { userDataDir, extraArgs = [], contextOptions = {} } = {}) {
  const dir = userDataDir ?? (await mkdtemp(join(tmpdir(), `echo-e2e-${regime}-`)));
  if (!userDataDir) await writeProfile(dir, regime);
  let context;
  try {
    context = await chromium.launchPersistentContext(dir, { ...contextOptions, executablePath: EXECUTABLE, headless: true, args: [...chromiumArgs(regime), ...extraArgs] });
  } catch (e) {
    if (!userDataDir) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const close = async () => {
    await context.close().catch(() => {});
    if (!userDataDir) await rm(dir, { recursive: true, force: true });
  };
  return { context, close, userDataDir: dir };
}
