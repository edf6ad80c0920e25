// Browser check of echo-signal's headers in Chromium (manual for now; e2e/ will own such tests):
//   cargo build -p echo-signal && node signal/tests/browser/opener.mjs
// Needs /usr/bin/chromium and playwright-core in .tools/npm (scripts/setup.sh installs both).
// Checks, across two real sites (app.localhost embeds vault.localhost):
//  1. the app's CSP (frame-src) and the vault's (frame-ancestors *) let the app embed the vault;
//  2. a popup the vault iframe opens keeps window.opener on an opener page (/consent.html, no COOP)
//     and loses it on a page with COOP same-origin-allow-popups — why opener pages exist;
//  3. the vault may compile WebAssembly ('wasm-unsafe-eval') and may not run inline script.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const { chromium } = await import(join(repo, '.tools/npm/node_modules/playwright-core/index.mjs'));
const bin = process.env.ECHO_SIGNAL_BIN || join(repo, 'target/debug/echo-signal');

const dir = await mkdtemp(join(tmpdir(), 'echo-signal-browser-'));
const files = {
  'vault/vault.html': '<!doctype html><title>shell</title><button id=a>a</button><button id=b>b</button>' +
    '<script>document.title = "inline ran"</script><script src="/vault.js"></script>',
  'vault/vault.js': `
    const open = (path) => { window.popup = window.open(path, path, 'popup'); };
    document.getElementById('a').onclick = () => open('/consent.html');
    document.getElementById('b').onclick = () => open('/other.html');
    window.wasm = WebAssembly.instantiate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])).then(() => 'ok', (e) => String(e));`,
  'vault/consent.html': '<!doctype html><title>popup</title><script src="/popup.js"></script>',
  'vault/other.html': '<!doctype html><title>popup</title><script src="/popup.js"></script>',
  'vault/popup.js': 'document.title = "opener:" + (window.opener !== null);',
  'app/index.html': '<!doctype html><title>app</title><iframe id=v></iframe><script src="/app.js"></script>',
  'app/app.js': 'document.getElementById("v").src = new URLSearchParams(location.search).get("vault") + "/vault.html";',
};
for (const [name, text] of Object.entries(files)) {
  await mkdir(dirname(join(dir, name)), { recursive: true });
  await writeFile(join(dir, name), text);
}

const server = spawn(bin, ['--vault-dir', join(dir, 'vault'), '--vault-addr', '127.0.0.1:0',
  '--app-dir', join(dir, 'app'), '--app-addr', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
const ports = {};
for await (const line of createInterface({ input: server.stderr })) {
  const m = line.match(/^echo-signal: (\w+) site on http:\/\/\w+\.localhost:(\d+)/);
  if (m) ports[m[1]] = m[2];
  if (ports.vault && ports.app) break;
}

let failed = 0;
const check = (what, ok, detail) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${ok ? '' : ': ' + detail}`); if (!ok) failed++; };
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'] });
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`http://app.localhost:${ports.app}/?vault=http://vault.localhost:${ports.vault}`);
  let frame;
  for (let i = 0; i < 100 && !frame; i++) {
    frame = page.frames().find((f) => f.url().endsWith('/vault.html'));
    if (!frame) await page.waitForTimeout(50);
  }
  await frame?.waitForLoadState();
  check('the app embeds the vault (whose inline script stays blocked)', frame && (await frame.title()) === 'shell', frame && await frame.title());
  check('the vault compiles wasm', (await frame.evaluate(() => window.wasm)) === 'ok', await frame.evaluate(() => window.wasm));
  for (const [button, path, expected] of [['a', '/consent.html', 'opener:true'], ['b', '/other.html', 'opener:false']]) {
    const next = context.waitForEvent('page');
    await frame.click('#' + button);
    const popup = await next;
    await popup.waitForLoadState();
    const title = await popup.title();
    check(`popup ${path} → ${expected}`, title === expected, title);
    await popup.close();
  }
} finally {
  await browser.close();
  server.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
}
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);
