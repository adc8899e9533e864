// ProxmoxClient with an in-process transport: token header, `data`
// unwrapping, failed paths recorded (not thrown), bounded concurrency,
// retries only on transient statuses, no secret in errors. TLS with a CA file
// against the real simulator is in e2e.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxmoxClient, pveAuthorization } from '../proxmox.js';

const TOKEN = 'root@pam!proxbox=fdc8ae52-a1db-412d-9624-cf5c69784549';

function transport(handler) {
  const log = [];
  let inFlight = 0;
  const t = {
    log,
    maxInFlight: 0,
    async request(req) {
      log.push(req);
      inFlight += 1;
      t.maxInFlight = Math.max(t.maxInFlight, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 5));
        return await handler(req);
      } finally {
        inFlight -= 1;
      }
    },
    close() {},
  };
  return t;
}

const ok = (data) => ({ status: 200, headers: {}, text: JSON.stringify({ data }) });

test('the token header and the /api2/json base', async () => {
  assert.equal(pveAuthorization(TOKEN), `PVEAPIToken=${TOKEN}`);
  assert.equal(pveAuthorization(`PVEAPIToken=${TOKEN}`), `PVEAPIToken=${TOKEN}`);
  assert.throws(() => pveAuthorization('root@pam:secret'), /user@realm!tokenid=secret/);
  const t = transport(() => ok({ version: '9.0.10' }));
  const c = new ProxmoxClient({ url: 'https://pve.example.org:8006/', token: TOKEN, transport: t });
  assert.deepEqual(await c.get('/version'), { version: '9.0.10' });
  assert.equal(t.log[0].url, 'https://pve.example.org:8006/api2/json/version');
  assert.equal(t.log[0].headers.Authorization, `PVEAPIToken=${TOKEN}`);
  const d = new ProxmoxClient({ url: 'https://pve:8006/api2/json', token: TOKEN, transport: t });
  assert.equal(d.base, 'https://pve:8006/api2/json');
});

test('fetchAll: failed paths become {error: {status, message}}; at most `concurrency` in flight', async () => {
  const paths = Array.from({ length: 20 }, (_, i) => `/nodes/pve1/qemu/${100 + i}/config`);
  paths.push('/nodes/pve3/qemu/104/agent/network-get-interfaces');
  const t = transport((req) => {
    if (req.url.endsWith('network-get-interfaces')) return {
      status: 500, headers: {}, text: JSON.stringify({ data: null, message: 'QEMU guest agent is not running\n' }),
    };
    if (req.url.includes('/119/')) return { status: 403, headers: {}, text: JSON.stringify({ data: null, message: `Permission check failed (${TOKEN})` }) };
    return ok({ name: req.url.split('/').at(-2) });
  });
  const c = new ProxmoxClient({ url: 'https://pve:8006', token: TOKEN, transport: t, concurrency: 3, sleep: async () => {} });
  const out = await c.fetchAll(paths);
  assert.deepEqual(Object.keys(out), paths, 'in the order asked');
  assert.deepEqual(out['/nodes/pve1/qemu/100/config'], { name: '100' });
  assert.deepEqual(out['/nodes/pve3/qemu/104/agent/network-get-interfaces'], { error: { status: 500, message: 'QEMU guest agent is not running' } });
  assert.equal(out['/nodes/pve1/qemu/119/config'].error.status, 403);
  assert.ok(!JSON.stringify(out).includes('fdc8ae52-a1db-412d-9624-cf5c69784549'), 'the secret is redacted');
  assert.equal(t.maxInFlight, 3);
  assert.equal(t.log.length, paths.length, 'a 500 is a real PVE answer: not retried');
  assert.equal(c.stats.failed, 2);
});

test('transient failures (503, resets, timeouts) are retried, then recorded', async () => {
  let n = 0;
  const t = transport(() => {
    n += 1;
    if (n === 1) return { status: 503, headers: {}, text: '' };
    if (n === 2) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    return ok([{ type: 'cluster', name: 'lab' }]);
  });
  const c = new ProxmoxClient({ url: 'https://pve:8006', token: TOKEN, transport: t, retries: 2, sleep: async () => {} });
  assert.deepEqual(await c.get('/cluster/status'), [{ type: 'cluster', name: 'lab' }]);
  const down = transport(() => {
    throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  });
  const d = new ProxmoxClient({ url: 'https://pve:8006', token: TOKEN, transport: down, retries: 1, sleep: async () => {} });
  const out = await d.fetchAll(['/version']);
  assert.deepEqual(out, {
    '/version': {
      error: { status: 0, message: 'GET /version: cannot reach Proxmox at https://pve:8006 (connection refused, ECONNREFUSED): check PVE_URL (--pve-url)' },
    },
  });
  assert.equal(down.log.length, 2);
});

test('errors: one line naming the setting to fix; an untrusted certificate is not retried; an HTML page is never shown', async () => {
  const untrusted = transport(() => {
    throw Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });
  const c = new ProxmoxClient({ url: 'https://pve:8006/', token: TOKEN, transport: untrusted, retries: 2, sleep: async () => {}, hints: { url: '--pve-url' } });
  await assert.rejects(c.get('/version'), (/** @type {import('../proxmox.js').ProxmoxError} */ error) => {
    assert.equal(
      error.message,
      "GET /version: cannot verify the TLS certificate of Proxmox at https://pve:8006 (self-signed certificate): set PVE_CA_FILE (--pve-ca-file) to the " +
        "cluster's CA (/etc/pve/pve-root-ca.pem), or PVE_INSECURE=1 (--pve-insecure) to skip verification"
    );
    return true;
  });
  assert.equal(untrusted.log.length, 1, 'no retry');
  const proxy = transport(() => ({ status: 502, headers: {}, text: '<html><body><h1>502 Bad Gateway</h1></body></html>' }));
  const p = new ProxmoxClient({ url: 'https://pve:8006', token: TOKEN, transport: proxy, retries: 0, sleep: async () => {} });
  await assert.rejects(p.get('/version'), { status: 502, message: 'HTTP 502' });
});
