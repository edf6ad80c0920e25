// Static server for the benchmark pages, on 127.0.0.1, reached as http://app.localhost:PORT
// (*.localhost resolves to loopback in Chromium and is a secure context).
//   app.localhost          -> dist/
//   <name>.localhost       -> directory in env ECHO_BENCH_SITE_<NAME> (e.g. the ECHO vault's pages)
//   /trace/<name>?edits=N  -> an editing trace, decompressed, as {startContent, patches, expected}
import { createServer } from 'node:http';
import { readFileSync, existsSync, statSync } from 'node:fs';
import { join, normalize, extname, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
};

/** Load a josephg editing trace and replay it (in Node) to get the expected text of its first `edits` edits. */
export function loadTrace(tracesDir, name, edits) {
  const file = join(tracesDir, name.endsWith('.json.gz') ? name : `${name}.json.gz`);
  if (!existsSync(file)) return null;
  const t = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8'));
  const patches = [];
  for (const tx of t.txns) for (const p of tx.patches) patches.push(p);
  const n = edits ? Math.min(edits, patches.length) : patches.length;
  const use = patches.slice(0, n);
  // Positions are code points; these traces are BMP-only (checked), so they equal UTF-16 indices.
  let s = t.startContent;
  for (const [pos, del, ins] of use) s = s.slice(0, pos) + ins + s.slice(pos + del);
  if (n === patches.length && s !== t.endContent) throw new Error(`trace ${name}: replay does not reach endContent`);
  return { startContent: t.startContent, patches: use, expected: s, totalEdits: patches.length };
}

export function startServer({ root, tracesDir, port = 0 }) {
  const traceCache = new Map();
  const sites = { app: resolve(root) };
  for (const [k, v] of Object.entries(process.env)) {
    const m = /^ECHO_BENCH_SITE_([A-Z0-9_]+)$/.exec(k);
    if (m) sites[m[1].toLowerCase().replace(/_/g, '-')] = resolve(v);
  }
  const server = createServer((req, res) => {
    try {
      const host = String(req.headers.host ?? '').split(':')[0];
      const site = host.endsWith('.localhost') ? host.slice(0, -'.localhost'.length) : host === 'localhost' || host === '127.0.0.1' ? 'app' : null;
      const url = new URL(req.url, 'http://x');
      if (site === 'app' && url.pathname.startsWith('/trace/')) {
        const name = decodeURIComponent(url.pathname.slice(7));
        const edits = Number(url.searchParams.get('edits')) || 0;
        const key = `${name}:${edits}`;
        if (!traceCache.has(key)) {
          const t = loadTrace(tracesDir, name, edits);
          traceCache.set(key, t && Buffer.from(JSON.stringify(t)));
        }
        const body = traceCache.get(key);
        if (!body) {
          res.writeHead(404).end(`no trace ${name} in ${tracesDir}`);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
        return;
      }
      const dir = site && sites[site];
      if (!dir) {
        res.writeHead(404).end(`unknown site ${host}`);
        return;
      }
      let p = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, '');
      if (p.endsWith('/')) p += 'index.html';
      const file = join(dir, p);
      if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(readFileSync(file));
    } catch (e) {
      res.writeHead(500).end(String(e?.stack ?? e));
    }
  });
  return new Promise((resolveP) => {
    server.listen(port, '127.0.0.1', () => resolveP({ server, port: server.address().port }));
  });
}
