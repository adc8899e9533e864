// Fault injection: a loopback HTTP proxy in front of the REAL NetBox that
// answers some requests with 503 (without forwarding), drops some before
// forwarding (connection reset, nothing reached NetBox), and drops some
// answers after NetBox has processed the request (the client never learns
// that its write happened). The only hand-written server the tests use.
import http from 'node:http';
import { listenLoopback } from './listen.js';

/** @typedef {'pass'|'503'|'drop-before'|'drop-after'} Action */

/**
 * @param {string} target  NetBox base URL
 * @param {(req: {method: string, path: string, n: number, write: boolean}) => Action|void|Promise<Action|void>} decide
 *   nothing: 'pass'
 */
export async function startFaultProxy(target, decide) {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const stats = { requests: 0, pass: 0, '503': 0, 'drop-before': 0, 'drop-after': 0, byMethod: {} };
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      n += 1;
      stats.requests += 1;
      // `decide` may answer later (a promise): that holds the request, e.g. to keep a run busy.
      const action = (await decide({ method: req.method, path: req.url, n, write: req.method !== 'GET' })) ?? 'pass';
      stats[action] += 1;
      stats.byMethod[`${req.method} ${action}`] = (stats.byMethod[`${req.method} ${action}`] ?? 0) + 1;
      if (action === '503') {
        res.writeHead(503, { 'Content-Type': 'application/json', Connection: 'close' });
        res.end(JSON.stringify({ detail: 'injected: service unavailable' }));
        return;
      }
      if (action === 'drop-before') {
        req.socket.destroy();
        return;
      }
      const body = Buffer.concat(chunks);
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, agent, headers: { ...req.headers, host: upstream.host } },
        (up) => {
          const parts = [];
          up.on('data', (c) => parts.push(c));
          up.on('end', () => {
            if (action === 'drop-after') {
              // NetBox has done the work; its answer never arrives.
              req.socket.destroy();
              return;
            }
            /** @type {import('node:http').OutgoingHttpHeaders} */
            const headers = { ...up.headers };
            delete headers['transfer-encoding'];
            headers['content-length'] = Buffer.concat(parts).length;
            res.writeHead(up.statusCode, headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      forward.on('error', () => req.socket.destroy());
      forward.end(body);
    });
  });
  const url = await listenLoopback(server);
  return {
    url,
    stats,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };
}
