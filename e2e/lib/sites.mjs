// The sites the e2e tests run against, started once per run:
//   vault   http://vault.localhost:V   the vault site (shell/, worker/, pkg/echo-vault), built per run
//   demo    http://app.localhost:D     the demo app, built per run for vault V                — same echo-signal
//   probeA  http://app.localhost:A     e2e/probe bundled with esbuild                         — own echo-signal
//   probeB  http://other.localhost:B   the same probe files                                    — own echo-signal
//   evil    http://evil.localhost:E    the same probe files, as the hostile site of e2e/13     — own echo-signal
//
// e2e/run.mjs starts them and passes them to the test files in E2E_SITES (JSON). A test file run on its own
// (node --test e2e/x.test.mjs) starts its own set through the same code, stopped when the process exits.
// E2E_VAULT_PKG: an engine build (wasm-bindgen output dir) to use instead of pkg/echo-vault.
// Ports: E2E_VAULT_PORT / E2E_DEMO_PORT / E2E_PROBE_A_PORT / E2E_PROBE_B_PORT / E2E_EVIL_PORT, else free ones.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { cp, mkdtemp, mkdir, rm, symlink, copyFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOOLS_ROOT = resolve(process.env.ECHO_TOOLS_DIR ?? join(ROOT, ".tools"));
const TOOLS = join(TOOLS_ROOT, "npm");
const SERVER = join(ROOT, "target", "debug", "echo-signal");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Builds what is missing and cannot be built per run: echo-signal (cargo). The engine wasm must be there. */
export function buildMissing(log = console.log) {
  if (!existsSync(SERVER)) {
    log("[e2e] target/debug/echo-signal missing: cargo build -p echo-signal");
    const r = spawnSync("cargo", ["build", "-p", "echo-signal"], { cwd: ROOT, stdio: "inherit" });
    if (r.status !== 0) throw new Error("cargo build -p echo-signal failed");
  }
  if (!existsSync(join(process.env.E2E_VAULT_PKG ?? join(ROOT, "pkg", "echo-vault"), "echo_vault_bg.wasm"))) {
    throw new Error("pkg/echo-vault is not built: scripts/wasm-build.sh echo-vault");
  }
}

/**
 * Builds both web sites from the working tree into `dir` with scripts/web-build.mjs, on a private copy of its
 * inputs (shell/dist and demo-app/dist are shared with whoever else builds them; the copy also lets the
 * demo app get this run's vault URL baked in). ~0.5 s.
 */
export async function buildSites(dir, { vaultUrl, appUrl }) {
  for (const d of ["scripts", "shell", "worker", "client", "demo-app", "pkg"]) {
    await cp(join(ROOT, d), join(dir, d), {
      recursive: true,
      filter: (src) => !/[/\\](dist|node_modules|\.test-build|target)([/\\]|$)/.test(src.slice(ROOT.length)),
    });
  }
  if (process.env.E2E_VAULT_PKG) {
    // A given engine build instead of pkg/echo-vault (e.g. while someone rebuilds it).
    await rm(join(dir, "pkg", "echo-vault"), { recursive: true, force: true });
    await cp(resolve(process.env.E2E_VAULT_PKG), join(dir, "pkg", "echo-vault"), { recursive: true });
  }
  await symlink(TOOLS_ROOT, join(dir, ".tools"));
  // The copy's own workspace link: its pages import the SDK by name (@echo/client → its client/).
  await mkdir(join(dir, "node_modules", "@echo"), { recursive: true });
  await symlink(join(dir, "client"), join(dir, "node_modules", "@echo", "client"));
  const r = spawnSync(process.execPath, [join(dir, "scripts", "web-build.mjs"), "--no-check"], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, ECHO_VAULT_URL: vaultUrl, ECHO_APP_URL: appUrl, ECHO_VAULT_PKG: "", ECHO_TOOLS_DIR: TOOLS_ROOT },
  });
  if (r.status !== 0) throw new Error(`web-build.mjs failed:\n${r.stdout}\n${r.stderr}`);
  const vaultDir = join(dir, "shell", "dist");
  if (!readdirSync(vaultDir).some((f) => /^echo_vault_bg\.[0-9a-f]+\.wasm$/.test(f))) throw new Error("the vault site has no engine wasm");
  return { vaultDir, demoDir: join(dir, "demo-app", "dist") };
}

/** Bundles the probe app (e2e/probe) for a vault URL into `dir`. */
export async function buildProbe(dir, vaultUrl) {
  const esbuild = createRequire(join(TOOLS, "package.json"))("esbuild");
  await esbuild.build({
    entryPoints: [join(ROOT, "e2e", "probe", "probe.ts")],
    outfile: join(dir, "probe.js"),
    bundle: true,
    format: "esm",
    target: "es2022",
    conditions: ["source"], // @echo/client from client/src
    define: { __VAULT_URL__: JSON.stringify(vaultUrl) },
    logLevel: "warning",
  });
  await copyFile(join(ROOT, "e2e", "probe", "index.html"), join(dir, "index.html"));
}

async function waitHealthy(url, proc) {
  for (let i = 0; i < 150; i++) {
    if (proc.exitCode !== null) throw new Error(`echo-signal exited with ${proc.exitCode} before ${url} came up`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

/**
 * Copies the built sites to a temp dir, builds the probe, starts the three echo-signal processes.
 * @returns {Promise<{sites: {vault: string, demo: string, probeA: string, probeB: string, evil: string}, stop: () => Promise<void>}>}
 */
export async function startSites({ log = console.log } = {}) {
  buildMissing(log);
  const port = async (name) => Number(process.env[name] ?? 0) || (await freePort());
  const V = await port("E2E_VAULT_PORT");
  const D = await port("E2E_DEMO_PORT");
  const A = await port("E2E_PROBE_A_PORT");
  const B = await port("E2E_PROBE_B_PORT");
  const E = await port("E2E_EVIL_PORT");
  const sites = {
    vault: `http://vault.localhost:${V}`,
    demo: `http://app.localhost:${D}`,
    probeA: `http://app.localhost:${A}`,
    probeB: `http://other.localhost:${B}`,
    evil: `http://evil.localhost:${E}`,
  };
  const tmp = await mkdtemp(join(tmpdir(), "echo-e2e-sites-"));
  const probeDir = join(tmp, "probe");
  const { vaultDir, demoDir } = await buildSites(join(tmp, "build"), { vaultUrl: sites.vault, appUrl: sites.demo });
  await mkdir(probeDir);
  await buildProbe(probeDir, sites.vault);

  const procs = [];
  const run = (args) => {
    const proc = spawn(SERVER, args, { stdio: ["ignore", "ignore", process.env.E2E_VERBOSE ? "inherit" : "ignore"] });
    procs.push(proc);
    return proc;
  };
  const stop = async () => {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => (p.exitCode === null ? new Promise((r) => p.once("exit", r)) : null)));
    await rm(tmp, { recursive: true, force: true });
  };
  try {
    const main = run(["--vault-dir", vaultDir, "--vault-addr", `127.0.0.1:${V}`, "--app-dir", demoDir, "--app-addr", `127.0.0.1:${D}`,
      "--vault-origin", sites.vault,
      // The relay can be made the attacker (POST /signal/test/tamper on|off), for the tampering test.
      "--signal-test-tamper"]);
    const pa = run(["--app-dir", probeDir, "--app-addr", `127.0.0.1:${A}`, "--vault-origin", sites.vault]);
    const pb = run(["--app-dir", probeDir, "--app-addr", `127.0.0.1:${B}`, "--vault-origin", sites.vault]);
    const pe = run(["--app-dir", probeDir, "--app-addr", `127.0.0.1:${E}`, "--vault-origin", sites.vault]);
    await waitHealthy(`http://127.0.0.1:${V}/healthz`, main);
    await waitHealthy(`http://127.0.0.1:${D}/healthz`, main);
    await waitHealthy(`http://127.0.0.1:${A}/healthz`, pa);
    await waitHealthy(`http://127.0.0.1:${B}/healthz`, pb);
    await waitHealthy(`http://127.0.0.1:${E}/healthz`, pe);
  } catch (e) {
    await stop();
    throw e;
  }
  return { sites, stop, procs };
}

let own = null;
/** The run's sites: from E2E_SITES (set by e2e/run.mjs), else started for this process. */
export async function getSites() {
  if (process.env.E2E_SITES) return JSON.parse(process.env.E2E_SITES);
  if (!own) {
    own = startSites({ log: (m) => console.error(m) });
    const { procs } = await own;
    process.once("exit", () => {
      for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
    });
    const { after } = await import("node:test");
    after(async () => (await own).stop());
  }
  return (await own).sites;
}
