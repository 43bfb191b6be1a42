#!/usr/bin/env node
/**
 * Static file server for the browser app (`npm run serve` builds it first):
 *
 *   node scripts/serve.mjs [--port 8080] [--root web/dist]
 *
 * Listens on 127.0.0.1 only (a secure context for WebGPU without TLS: browsers treat localhost
 * as secure). The port comes from --port, else $PORT, else 8080; `--port 0` takes a free port.
 * Prints one line `webvlsm app: http://127.0.0.1:<port>/` once listening (the browser tests read
 * the port from it).
 *
 * Files are served as bytes with a MIME type from their extension. `.gz` files (the CLIP vocabulary)
 * are sent as application/gzip WITHOUT Content-Encoding: the page gunzips them itself, and a
 * Content-Encoding header would make the browser decompress them first. Paths that leave the root
 * (`..`, encoded or not) get 404, like missing files.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.gz': 'application/gzip',
  '.zip': 'application/zip',
  '.safetensors': 'application/octet-stream',
  '.pth': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};

function parseArgs(argv) {
  const out = { port: process.env.PORT ?? '8080', root: fileURLToPath(new URL('../web/dist/', import.meta.url)) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`serve: ${flag} needs a value`);
      return v;
    };
    if (flag === '--port') out.port = value();
    else if (flag === '--root') out.root = resolve(value());
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: node scripts/serve.mjs [--port N (default $PORT or 8080; 0 = any free port)] [--root web/dist]');
      process.exit(0);
    } else throw new Error(`serve: unknown argument '${arg}' (use --port N, --root DIR)`);
  }
  const port = Number(out.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`serve: port must be an integer in 0..65535, got '${out.port}'`);
  return { port, root: out.root };
}

/** The file under `root` that a URL path names, or null when it would leave the root. */
function fileFor(root, urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath.split('?')[0].split('#')[0]);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  if (path.endsWith('/')) path += 'index.html';
  const full = resolve(join(root, path));
  return full === root || full.startsWith(root.endsWith(sep) ? root : root + sep) ? full : null;
}

export function startServer({ port, root }) {
  const server = createServer(async (req, res) => {
    const notFound = () => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`not found: ${req.url}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const file = fileFor(root, req.url ?? '/');
    if (file === null) return notFound();
    let info;
    try {
      info = await stat(file);
    } catch {
      return notFound();
    }
    if (!info.isFile()) return notFound();
    res.writeHead(200, {
      'content-type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': info.size,
      // The app is rebuilt often while developing: never serve a stale bundle.
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolvePromise(server));
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { port, root } = parseArgs(process.argv.slice(2));
    try {
      if (!(await stat(join(root, 'index.html'))).isFile()) throw new Error();
    } catch {
      throw new Error(`serve: ${join(root, 'index.html')} not found: build the app first (npm run build:web)`);
    }
    const server = await startServer({ port, root: resolve(root) });
    console.log(`webvlsm app: http://127.0.0.1:${server.address().port}/`);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
