#!/usr/bin/env node
// Builds the two web sites with esbuild's JS API:
//
//   shell/dist/     the vault site: shell/*.html with their scripts and CSS,
//                   engine-worker.js (worker/engine-worker.ts), sw.js
//                   (worker/sw.ts), the echo-vault wasm-bindgen output
//                   (pkg/echo-vault/, built by `scripts/wasm-build.sh echo-vault`)
//                   and the WebRTC driver the vault pages load (pkg/echo-vault-net/)
//   demo-app/dist/  the demo app: demo-app/*.html with their scripts (which
//                   may import client/ sources) and CSS, and its own sw.js
//
//   node scripts/web-build.mjs [--no-wasm] [--no-demo] [--no-check] [--dev]
//
//   --no-wasm   build the vault without pkg/echo-vault (its engine then reports
//               "failed"); by default a missing pkg/echo-vault is an error
//   --no-demo   skip demo-app/ (by default a missing demo-app/index.html is an error)
//   --no-check  skip the type check (tsc --noEmit --strict of shell/, worker/
//               and demo-app/ when it has a tsconfig.json)
//   --dev       no minification
//
// Environment: ECHO_VAULT_URL (default http://vault.localhost:8600) and
// ECHO_APP_URL (default http://app.localhost:8601) are the sites' origins; the
// demo app gets them as the constants __ECHO_VAULT_URL__ / __ECHO_APP_URL__
// (also as process.env.ECHO_VAULT_URL / process.env.ECHO_APP_URL).
// ECHO_VAULT_PKG overrides pkg/echo-vault (the wasm-bindgen output).
// ECHO_ICE_SERVERS: the vault's RTCConfiguration.iceServers as JSON (default []).
// ECHO_TOOLS_DIR as in scripts/lib.sh (esbuild and typescript come from
// $ECHO_TOOLS_DIR/npm, installed by scripts/setup.sh).
//
// Names: every asset but HTML, engine-worker.js and sw.js is content-hashed as
// `name.<8 lower-case hex>.ext`, the first 8 hex digits of the SHA-256 of its
// bytes (echo-signal caches such names forever; in the rare case that those 8
// hold no digit, the prefix grows to the first digit, as echo-signal's rule
// wants one), and the references to it are rewritten. HTML must reference local scripts, styles and images by path
// (`<script type="module" src="src/main.ts">`, `<link rel="stylesheet"
// href="styles/x.css">`); inline scripts, inline handlers and style attributes
// are refused (the sites' CSP forbids them).
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TOOLS = resolve(process.env.ECHO_TOOLS_DIR ?? join(ROOT, ".tools"), "npm");
const FLAGS = new Set(process.argv.slice(2));
const KNOWN = new Set(["--no-wasm", "--no-demo", "--no-check", "--dev", "--help", "-h"]);

function die(message) {
  console.error(`[web-build] error: ${message}`);
  process.exit(1);
}
function log(message) {
  console.log(`[web-build] ${message}`);
}

for (const flag of FLAGS) if (!KNOWN.has(flag)) die(`unknown option ${flag} (see the head of scripts/web-build.mjs)`);
if (FLAGS.has("--help") || FLAGS.has("-h")) {
  console.log("usage: node scripts/web-build.mjs [--no-wasm] [--no-demo] [--no-check] [--dev]");
  process.exit(0);
}
const MINIFY = !FLAGS.has("--dev");

const require = createRequire(join(TOOLS, "package.json"));
let esbuild;
try {
  esbuild = require("esbuild");
} catch {
  die(`esbuild is not installed in ${TOOLS}: run scripts/setup.sh`);
}

/** An origin from the environment, checked. */
function originOf(name, fallback) {
  const text = process.env[name] || fallback;
  let url;
  try {
    url = new URL(text);
  } catch {
    die(`${name}=${text} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") die(`${name}=${text} must be http(s)`);
  if (url.pathname !== "/" || url.search || url.hash) die(`${name}=${text} must be an origin (no path)`);
  return url.origin;
}
const VAULT_URL = originOf("ECHO_VAULT_URL", "http://vault.localhost:8600");
const APP_URL = originOf("ECHO_APP_URL", "http://app.localhost:8601");

const SHELL = join(ROOT, "shell");
const WORKER = join(ROOT, "worker");
const DEMO = join(ROOT, "demo-app");
const PKG = process.env.ECHO_VAULT_PKG ? resolve(process.env.ECHO_VAULT_PKG) : join(ROOT, "pkg", "echo-vault");
const NET_PKG = join(ROOT, "pkg", "echo-vault-net");
// The vault's ICE servers (RTCConfiguration.iceServers, JSON): STUN/TURN for
// real deployments (README, "Self-hosting"); none by default.
const ICE_SERVERS = (() => {
  const text = process.env.ECHO_ICE_SERVERS ?? "[]";
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    die(`ECHO_ICE_SERVERS is not JSON: ${error.message}`);
  }
  if (!Array.isArray(parsed)) die("ECHO_ICE_SERVERS must be a JSON array of RTCIceServer objects");
  return text;
})();

// --- helpers -----------------------------------------------------------------

/**
 * The hash part of a name: the first 8 hex digits of the SHA-256 of the bytes,
 * longer only when those 8 hold no digit 0-9 (echo-signal wants one, so that
 * words are not taken for hashes): the shortest such prefix.
 */
function sha8(bytes) {
  const hex = createHash("sha256").update(bytes).digest("hex");
  const firstDigit = hex.search(/[0-9]/);
  return hex.slice(0, Math.max(8, firstDigit + 1));
}

/** `name.<hash>.ext` of `file` (a base name) for these bytes. */
function hashedName(file, bytes) {
  const ext = extname(file);
  return `${basename(file, ext)}.${sha8(bytes)}${ext}`;
}

const rel = (path) => relative(ROOT, path) || ".";

/** One site's output: files by name (relative to its dist) → bytes. */
class Site {
  constructor(name, srcDir, outDir) {
    this.name = name;
    this.srcDir = srcDir;
    this.outDir = outDir;
    this.files = new Map();
    this.bundles = new Map(); // source path → { js, css } output names
  }
  add(name, bytes) {
    if (this.files.has(name) && !Buffer.from(this.files.get(name)).equals(Buffer.from(bytes))) {
      die(`${this.name}: two different outputs named ${name}`);
    }
    this.files.set(name, bytes);
    return name;
  }
  addHashed(file, bytes) {
    return this.add(hashedName(file, bytes), bytes);
  }
  async write() {
    await rm(this.outDir, { recursive: true, force: true });
    for (const [name, bytes] of this.files) {
      const path = join(this.outDir, name);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, bytes);
    }
  }
}

const escapeRe = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Runs esbuild on one entry (write: false) and names its outputs: assets it
 * emitted (CSS url() files) and the CSS of a script entry get hashed names
 * and the references to them are rewritten. Returns { main, css } names.
 */
async function bundle(site, entry, { define = {}, fixedName = null, format = "esm" } = {}) {
  const key = `${entry}|${fixedName ?? ""}`;
  if (site.bundles.has(key)) return site.bundles.get(key);
  const outdir = join(site.outDir, "__esbuild");
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      format,
      platform: "browser",
      // @echo/client's "source" export: its TypeScript, bundled from client/src.
      conditions: ["source"],
      target: ["es2022"],
      minify: MINIFY,
      sourcemap: false,
      legalComments: "none",
      charset: "utf8",
      write: false,
      outdir,
      entryNames: "[name]",
      assetNames: "[name]-[hash]",
      loader: {
        ".png": "file",
        ".svg": "file",
        ".jpg": "file",
        ".webp": "file",
        ".ico": "file",
        ".woff2": "file",
      },
      define,
      logLevel: "silent",
    });
  } catch (error) {
    const messages = (error.errors ?? []).map((e) =>
      e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text,
    );
    die(`esbuild failed on ${rel(entry)}:\n  ${messages.join("\n  ") || error.message}`);
  }
  for (const warning of result.warnings) {
    const where = warning.location ? `${warning.location.file}:${warning.location.line}: ` : "";
    console.warn(`[web-build] warning: ${where}${warning.text}`);
  }
  const entryBase = basename(entry, extname(entry));
  const outputs = result.outputFiles.map((f) => ({ name: relative(outdir, f.path), bytes: f.contents }));
  const isMain = (o) => o.name === `${entryBase}.js` || o.name === `${entryBase}.css`;
  // Assets first: their hashed names go into the JS and CSS that use them.
  const renames = new Map();
  for (const o of outputs.filter((o) => !isMain(o))) {
    const clean = o.name.replace(/-[A-Z0-9]{8}(\.[^.]+)$/, "$1");
    renames.set(o.name, site.addHashed(basename(clean), o.bytes));
  }
  const rewrite = (bytes) => {
    let text = Buffer.from(bytes).toString("utf8");
    for (const [from, to] of renames) text = text.replace(new RegExp(escapeRe(from), "g"), to);
    return Buffer.from(text, "utf8");
  };
  const named = { main: null, css: null };
  for (const o of outputs.filter(isMain)) {
    const bytes = rewrite(o.bytes);
    const name = fixedName && o.name.endsWith(".js") ? site.add(fixedName, bytes) : site.addHashed(o.name, bytes);
    if (o.name.endsWith(".css") && extname(entry) !== ".css") named.css = name;
    else named.main = name;
  }
  site.bundles.set(key, named);
  return named;
}

// --- HTML ----------------------------------------------------------------------

const SCRIPT_EXT = new Set([".ts", ".tsx", ".js", ".mjs", ".jsx"]);

/** Refuses what the CSP would block: inline scripts, inline handlers, style attributes. */
function checkCsp(file, html, strict) {
  const problems = [];
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    if (!/\bsrc\s*=/.test(m[1]) && m[2].trim() !== "") problems.push("an inline <script>");
  }
  if (/<[a-z][^>]*\son[a-z]+\s*=/i.test(html)) problems.push("an inline event handler (on…=)");
  if (/<[a-z][^>]*\sstyle\s*=/i.test(html)) problems.push('a style="" attribute');
  if (/<style\b/i.test(html)) problems.push("a <style> element");
  if (problems.length) {
    const message = `${rel(file)} has ${[...new Set(problems)].join(", ")}, which the site's CSP blocks`;
    if (strict) die(message);
    console.warn(`[web-build] warning: ${message}`);
  }
}

/** Where a reference in an HTML file points in the sources, or null (not local). */
function localSource(site, htmlFile, ref) {
  if (/^([a-z][a-z0-9+.-]*:|\/\/|#)/i.test(ref) || ref === "") return null;
  const clean = ref.split(/[?#]/)[0];
  const path = clean.startsWith("/") ? join(site.srcDir, clean) : resolve(dirname(htmlFile), clean);
  if (!path.startsWith(site.srcDir + sep) && !path.startsWith(ROOT + sep)) die(`${rel(htmlFile)}: ${ref} is outside the project`);
  return path;
}

/**
 * Builds one HTML page: each local script src, stylesheet/icon href and img
 * src is bundled or copied under a hashed name and the reference rewritten.
 */
async function buildHtml(site, htmlFile, { define, strict, inject = [] }) {
  let html = await readFile(htmlFile, "utf8");
  checkCsp(htmlFile, html, strict);
  const extraCss = [];
  const replaceAsync = async (re, fn) => {
    const parts = [];
    let last = 0;
    for (const m of html.matchAll(re)) {
      parts.push(html.slice(last, m.index), await fn(m));
      last = m.index + m[0].length;
    }
    parts.push(html.slice(last));
    html = parts.join("");
  };
  const missing = (ref) => die(`${rel(htmlFile)} references ${ref}, which does not exist`);

  await replaceAsync(/<(script|link|img)\b[^>]*>/gi, async (m) => {
    const tag = m[0];
    const kind = m[1].toLowerCase();
    const attr = kind === "link" ? "href" : "src";
    const am = tag.match(new RegExp(`\\s${attr}\\s*=\\s*("([^"]*)"|'([^']*)')`, "i"));
    if (!am) return tag;
    const ref = am[2] ?? am[3];
    const source = localSource(site, htmlFile, ref);
    if (!source) return tag;
    if (!existsSync(source) || !statSync(source).isFile()) missing(ref);
    let name;
    if (kind === "script") {
      if (!SCRIPT_EXT.has(extname(source))) die(`${rel(htmlFile)}: ${ref} is not a script source`);
      const out = await bundle(site, source, { define });
      name = out.main;
      if (out.css) extraCss.push(out.css);
    } else if (kind === "link" && /\brel\s*=\s*["']?stylesheet/i.test(tag)) {
      name = (await bundle(site, source, { define })).main;
    } else {
      name = site.addHashed(basename(source), await readFile(source));
    }
    return tag.replace(am[0], ` ${attr}="/${name}"`);
  });

  const headEnd = html.search(/<\/head>/i);
  const extra = [
    ...extraCss.map((css) => `  <link rel="stylesheet" href="/${css}">\n`),
    ...inject.map((js) => `  <script type="module" src="/${js}"></script>\n`),
  ].join("");
  if (extra) {
    if (headEnd < 0) die(`${rel(htmlFile)} has no </head>`);
    html = html.slice(0, headEnd) + extra + html.slice(headEnd);
  }
  return site.add(relative(site.srcDir, htmlFile), Buffer.from(html, "utf8"));
}

/** Copies `dir/public/` as it is (fixed names), if present. */
async function copyPublic(site) {
  const dir = join(site.srcDir, "public");
  if (!existsSync(dir)) return;
  const walk = async (d) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else site.add(relative(dir, path), await readFile(path));
    }
  };
  await walk(dir);
}

/** The service worker, with the site's assets and a version over all of them. */
async function buildServiceWorker(site) {
  const assets = [...site.files.keys()].filter((n) => n !== "sw.js").sort().map((n) => `/${n.split(sep).join("/")}`);
  const version = sha8(assets.map((a) => `${a}:${sha8(site.files.get(a.slice(1)))}`).join("\n"));
  await bundle(site, join(WORKER, "sw.ts"), {
    fixedName: "sw.js",
    format: "iife",
    define: {
      __SW_SITE__: JSON.stringify(site.name),
      __SW_VERSION__: JSON.stringify(version),
      __SW_ASSETS__: JSON.stringify(assets),
    },
  });
  return version;
}

function htmlFiles(dir) {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".html"))
    .sort()
    .map((f) => join(dir, f));
}

// --- type check ------------------------------------------------------------------

function typeCheck() {
  const tsc = join(TOOLS, "node_modules", "typescript", "bin", "tsc");
  if (!existsSync(tsc)) die(`typescript is not installed in ${TOOLS}: run scripts/setup.sh`);
  const projects = [join(SHELL, "tsconfig.json"), join(WORKER, "tsconfig.json")];
  if (!FLAGS.has("--no-demo") && existsSync(join(DEMO, "tsconfig.json"))) projects.push(join(DEMO, "tsconfig.json"));
  for (const project of projects) {
    const run = spawnSync(process.execPath, [tsc, "-p", project, "--noEmit", "--strict"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    if (run.status !== 0) {
      process.stderr.write(run.stdout + run.stderr);
      die(`type errors in ${rel(dirname(project))} (tsc -p ${rel(project)} --noEmit --strict)`);
    }
    log(`types ok: ${rel(dirname(project))}`);
  }
}

// --- the sites -----------------------------------------------------------------------

/**
 * Adds one wasm-bindgen package (`<stem>.js` + `<stem>_bg.wasm` in `dir`) to
 * the site under content-hashed names; returns their names.
 */
async function addWasmPkg(site, dir, stem, crate) {
  const js = join(dir, `${stem}.js`);
  const bg = join(dir, `${stem}_bg.wasm`);
  for (const f of [js, bg]) {
    if (!existsSync(f)) {
      die(
        `${rel(f)} is missing: build it first with 'scripts/wasm-build.sh ${crate}' ` +
          `(or pass --no-wasm to build the pages without it)`,
      );
    }
  }
  const wasmBg = site.addHashed(`${stem}_bg.wasm`, await readFile(bg));
  // wasm-bindgen's default input is new URL('<stem>_bg.wasm', import.meta.url).
  const text = (await readFile(js, "utf8")).replaceAll(`${stem}_bg.wasm`, wasmBg);
  const wasmJs = site.addHashed(`${stem}.js`, Buffer.from(text, "utf8"));
  return { js: wasmJs, bg: wasmBg };
}

async function buildVault() {
  const site = new Site("vault", SHELL, join(SHELL, "dist"));
  let wasmJs = null;
  let wasmBg = null;
  let net = null;
  if (process.env.ECHO_VAULT_PKG && !FLAGS.has("--no-wasm")) log(`engine from ${rel(PKG)} (ECHO_VAULT_PKG)`);
  if (FLAGS.has("--no-wasm")) {
    log("--no-wasm: the vault is built without its engine (pkg/echo-vault) and its WebRTC driver");
  } else {
    ({ js: wasmJs, bg: wasmBg } = await addWasmPkg(site, PKG, "echo_vault", "echo-vault"));
    net = await addWasmPkg(site, NET_PKG, "echo_vault_net", "echo-vault-net");
  }
  await bundle(site, join(WORKER, "engine-worker.ts"), {
    fixedName: "engine-worker.js",
    define: {
      __ECHO_WASM_JS__: JSON.stringify(wasmJs ? `./${wasmJs}` : null),
      __ECHO_WASM_BG__: JSON.stringify(wasmBg ? `./${wasmBg}` : null),
    },
  });
  for (const page of ["vault.html", "consent.html", "manage.html"]) {
    if (!existsSync(join(SHELL, page))) die(`shell/${page} is missing`);
  }
  // The vault pages: one of them drives WebRTC for the engine (shell/src/net.ts).
  const pageDefine = {
    __ECHO_NET_JS__: JSON.stringify(net ? `./${net.js}` : null),
    __ECHO_NET_BG__: JSON.stringify(net ? `./${net.bg}` : null),
    __ECHO_ICE_SERVERS__: JSON.stringify(ICE_SERVERS),
  };
  for (const html of htmlFiles(SHELL)) await buildHtml(site, html, { define: pageDefine, strict: true });
  await copyPublic(site);
  const version = await buildServiceWorker(site);
  await site.write();
  return { site, version };
}

async function buildDemo() {
  if (FLAGS.has("--no-demo")) {
    log("--no-demo: demo-app/ not built");
    return null;
  }
  if (!existsSync(join(DEMO, "index.html"))) {
    die("demo-app/index.html is missing (pass --no-demo to build the vault site only)");
  }
  const site = new Site("app", DEMO, join(DEMO, "dist"));
  const define = {
    __ECHO_VAULT_URL__: JSON.stringify(VAULT_URL),
    __ECHO_APP_URL__: JSON.stringify(APP_URL),
    "process.env.ECHO_VAULT_URL": JSON.stringify(VAULT_URL),
    "process.env.ECHO_APP_URL": JSON.stringify(APP_URL),
  };
  // The app's service worker is registered by a small script the build adds.
  const register = await bundle(site, join(SHELL, "src", "sw-register-entry.ts"), { define });
  const mainTs = join(DEMO, "src", "main.ts");
  for (const html of htmlFiles(DEMO)) {
    await buildHtml(site, html, { define, strict: false, inject: [register.main] });
  }
  if (existsSync(mainTs) && ![...site.bundles.keys()].some((k) => k.startsWith(`${mainTs}|`))) {
    console.warn("[web-build] warning: no demo-app page references src/main.ts");
  }
  await copyPublic(site);
  const version = await buildServiceWorker(site);
  await site.write();
  return { site, version };
}

function report({ site, version }) {
  const rows = [...site.files].sort(([a], [b]) => a.localeCompare(b));
  let total = 0;
  let totalGz = 0;
  console.log(`\n${rel(site.outDir)}/  (${site.name} site, service worker version ${version})`);
  for (const [name, bytes] of rows) {
    const gz = gzipSync(bytes, { level: 9 }).length;
    total += bytes.length;
    totalGz += gz;
    console.log(`  ${name.padEnd(36)} ${fmt(bytes.length).padStart(10)}  ${fmt(gz).padStart(9)} gz`);
  }
  console.log(`  ${"total".padEnd(36)} ${fmt(total).padStart(10)}  ${fmt(totalGz).padStart(9)} gz`);
}

function fmt(n) {
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KB`;
}

// --- main ----------------------------------------------------------------------------

const started = Date.now();
if (!FLAGS.has("--no-check")) typeCheck();
const vault = await buildVault();
const demo = await buildDemo();
report(vault);
if (demo) report(demo);
log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s (vault ${VAULT_URL}, app ${APP_URL})`);
