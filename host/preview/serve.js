#!/usr/bin/env node
// A tiny static file server for the preview page, for tests and local use.
//
//   node host/preview/serve.js [PORT]      (or PORT=8080; 0 or nothing = a free port)
//
// Bound to 127.0.0.1 only. Serves, read-only:
//   /preview/    host/preview/   (the page: /preview/index.html)
//   /pkg/        the core package's browser build (pkg/web/ here; ./scripts/setup.sh makes it)
//   /fixtures/   fixtures/       (the bundled sample snapshot)
// and redirects / to /preview/. Prints the page's URL as its first line on stdout.
import { createServer } from 'node:http';
import { createReadStream, existsSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** URL prefix -> directory of the repo. */
export const MOUNTS = {
  '/preview/': join(REPO, 'host/preview'),
  // Resolved as a dependency, so the page also works from an installed host package.
  '/pkg/': dirname(fileURLToPath(import.meta.resolve('proxbox-planner/web'))),
  '/fixtures/': join(REPO, 'fixtures'),
};

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

function send(res, status, text, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Maps a request path to a file inside one of the mounts, or null. */
async function resolveFile(pathname, mounts) {
  const prefix = Object.keys(mounts).find((p) => pathname.startsWith(p));
  if (!prefix) return null;
  const base = mounts[prefix];
  let rest;
  try {
    rest = decodeURIComponent(pathname.slice(prefix.length));
  } catch {
    return null;
  }
  if (rest.includes('\0') || rest.split(/[\\/]/).includes('..')) return null;
  let file = resolve(base, `.${sep}${rest}`);
  try {
    const realBase = await realpath(base);
    file = await realpath(file);
    if (file !== realBase && !file.startsWith(realBase + sep)) return null;
    const info = await stat(file);
    if (info.isDirectory()) {
      file = join(file, 'index.html');
      if (!(await stat(file)).isFile()) return null;
    } else if (!info.isFile()) {
      return null;
    }
    return file;
  } catch {
    return null;
  }
}

/**
 * `mounts`: URL prefix -> directory (default: the preview's own).
 * @param {Record<string, string>} [mounts]
 */
export function createPreviewServer(mounts = MOUNTS) {
  return createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    if (mounts === MOUNTS && (url.pathname === '/' || url.pathname === '/preview')) {
      send(res, 302, 'see /preview/\n', { location: '/preview/' });
      return;
    }
    const file = await resolveFile(url.pathname, mounts);
    if (!file) {
      send(res, 404, 'not found\n');
      return;
    }
    const info = await stat(file);
    res.writeHead(200, {
      'content-type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': info.size,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  });
}

/** Listens on 127.0.0.1:`port` (0 = any free port); resolves to { server, url }. */
export function startPreviewServer(port = 0) {
  const server = createPreviewServer();
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: actual } = /** @type {import('node:net').AddressInfo} */ (server.address());
      resolvePromise({ server, url: `http://127.0.0.1:${actual}/preview/` });
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const arg = process.argv[2] ?? process.env.PORT ?? '0';
  const port = Number(arg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`usage: node host/preview/serve.js [PORT]   (PORT=${JSON.stringify(arg)} is not a port)\n`);
    process.exit(2);
  }
  if (!existsSync(join(MOUNTS['/pkg/'], 'proxbox_planner_bg.wasm'))) {
    process.stderr.write('warning: pkg/web/ is not built yet: run ./scripts/setup.sh first\n');
  }
  const { server, url } = await startPreviewServer(port);
  process.stdout.write(`${url}\n`);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
