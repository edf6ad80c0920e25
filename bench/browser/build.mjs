// Bundles the benchmark pages: src/<page>.js -> dist/<page>.js + dist/<page>.html,
// and copies automerge's wasm next to them (the page loads it explicitly).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const PAGES = ['automerge', 'yjs', 'echo', 'idb'];

export async function buildPages({ quiet = false, dist = join(here, 'dist'), define = {} } = {}) {
  mkdirSync(dist, { recursive: true });
  const result = await build({
    entryPoints: PAGES.map((p) => join(here, 'src', `${p}.js`)),
    outdir: dist,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['source'], // @echo/client from client/src
    target: 'es2022',
    minify: true,
    sourcemap: true,
    logLevel: quiet ? 'warning' : 'info',
    metafile: true,
    define,
  });
  // Only the /slim entries may be bundled (the fullfat ones embed the wasm; we load it explicitly).
  const fat = Object.keys(result.metafile.inputs).filter((f) => /automerge\/dist\/.*fullfat/.test(f));
  if (fat.length) throw new Error(`fullfat automerge entry bundled: ${fat.join(', ')}`);
  // Wherever npm put @automerge/automerge (the workspaces hoist it to the repository's node_modules).
  copyFileSync(createRequire(join(here, 'package.json')).resolve('@automerge/automerge/automerge.wasm'), join(dist, 'automerge.wasm'));
  for (const p of PAGES) {
    writeFileSync(
      join(dist, `${p}.html`),
      `<!doctype html><meta charset="utf-8"><title>bench: ${p}</title><script type="module" src="./${p}.js"></script>\n`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await buildPages();
