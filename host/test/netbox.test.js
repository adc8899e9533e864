// NetBoxClient: auth, pagination, batching, retries and back-off, errors
// without the token. NetBox's REST semantics come from an in-process fake
// transport (host/test-support/fake-netbox.js); e2e.test.js uses a real NetBox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { NetBoxClient, NetBoxError, authorization } from '../netbox.js';
import { AdaptiveLimit, backoffDelay, redact } from '../http.js';
import { delayedTransport, FakeNetBox, FAKE_URL } from '../test-support/fake-netbox.js';
import { listenLoopback } from '../test-support/listen.js';

const V1 = '0123456789abcdef0123456789abcdef01234567';
const V2 = 'nbt_proxboxplan2.ProxboxPlannerE2eV2TokenSecret0123456789';

function client(fake, extra = {}) {
  const sleeps = [];
  const c = new NetBoxClient({ url: FAKE_URL, token: V1, transport: fake.transport, sleep: async (ms) => sleeps.push(ms), random: () => 0.5, ...extra });
  return Object.assign(c, { sleeps });
}

test('auth: v1 tokens as Token, v2 (nbt_) as Bearer; optional branch header', async () => {
  assert.equal(authorization(V1), `Token ${V1}`);
  assert.equal(authorization(V2), `Bearer ${V2}`);
  assert.throws(() => authorization(''), /token is required/);
  const fake = new FakeNetBox();
  fake.objects('/api/dcim/sites/');
  await client(fake, { token: V2, branch: 'br_abc' }).list('/api/dcim/sites/');
  assert.equal(fake.log[0].auth, `Bearer ${V2}`);
  assert.equal(fake.log[0].branch, 'br_abc');
  await client(fake).list('/api/dcim/sites/');
  assert.equal(fake.log[1].auth, `Token ${V1}`);
  assert.equal(fake.log[1].branch, undefined);
});

test('list: the first page gives the count, the others are asked for at once (bounded); a trailing next is followed; every object once', async () => {
  const fake = new FakeNetBox({ pageSize: 7 });
  for (let i = 0; i < 30; i++) fake.seed('/api/ipam/vlans/', { vid: i + 1, name: `v${i}` });
  const transport = delayedTransport(fake);
  const c = client(fake, { transport, concurrency: 3 });
  const rows = await c.list('/api/ipam/vlans/');
  assert.deepEqual(rows.map((r) => r.vid), Array.from({ length: 30 }, (_, i) => i + 1));
  assert.equal(fake.log.length, 5, '30 objects in pages of 7 (NetBox answers fewer than the 1000 asked for)');
  assert.match(fake.log[0].query, /limit=1000/);
  assert.deepEqual(fake.log.slice(1).map((e) => new URLSearchParams(e.query).get('offset')).sort(), ['14', '21', '28', '7']);
  assert.equal(transport.max, 3, 'pages in parallel, at most the client\'s concurrency');
  // Objects added while the pages are read: the last page's `next` (another host's URL) is followed on our own.
  fake.log.length = 0;
  let added = false;
  fake.fault = () => {
    if (fake.log.length === 2 && !added) {
      added = true;
      for (let i = 30; i < 40; i++) fake.seed('/api/ipam/vlans/', { vid: i + 1, name: `v${i}` });
    }
  };
  const grown = await c.list('/api/ipam/vlans/');
  assert.deepEqual(grown.map((r) => r.vid), Array.from({ length: 40 }, (_, i) => i + 1));
  assert.ok(fake.log.every((e) => e.path === '/api/ipam/vlans/'));
  assert.equal(fake.log.at(-1).query.includes('offset=35'), true, fake.log.map((e) => e.query).join(' '));
});

test('concurrency: a gate bounds the requests in flight; 429 and 503 halve it, successes grow it back', async () => {
  const gate = new AdaptiveLimit(4);
  const held = [];
  for (let i = 0; i < 6; i++) held.push(gate.acquire());
  let admitted = 0;
  held.forEach((p) => p.then(() => (admitted += 1)));
  await new Promise((r) => setImmediate(r));
  assert.equal(admitted, 4);
  gate.throttled();
  assert.equal(gate.limit, 2);
  gate.release();
  gate.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(admitted, 4, 'nothing more while more than the lowered limit hold slots');
  gate.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(admitted, 5);
  gate.throttled();
  gate.throttled();
  assert.deepEqual([gate.limit, gate.stats], [1, { throttled: 3, lowest: 1 }]);
  for (let i = 0; i < 10; i++) gate.succeeded();
  assert.equal(gate.limit, 2, 'one more after ten successes in a row');
  for (let i = 0; i < 100; i++) gate.succeeded();
  assert.equal(gate.limit, 4, 'never above the maximum');
  assert.throws(() => new AdaptiveLimit(0), /positive integer/);
  // The client: a NetBox that takes one request at a time answers 503 to the others.
  const fake = new FakeNetBox();
  for (let i = 0; i < 50; i++) fake.seed('/api/ipam/vlans/', { vid: i + 1 });
  const transport = delayedTransport(fake);
  fake.maxPage = 5;
  fake.fault = (req) => (req.inFlight > 1 ? { status: 503, body: { detail: 'busy' } } : undefined);
  const c = client(fake, { transport, concurrency: 4 });
  const rows = await c.list('/api/ipam/vlans/');
  assert.equal(rows.length, 50);
  assert.equal(c.gate.stats.lowest, 1, 'lowered to what NetBox takes');
  assert.ok(c.gate.stats.throttled >= 2);
});

test('list: cursor mode (?start=) pages by id', async () => {
  const fake = new FakeNetBox({ pageSize: 4 });
  for (let i = 0; i < 10; i++) fake.seed('/api/ipam/vlans/', { vid: i + 1 });
  fake.collections.set('/api/ipam/vlans/', fake.objects('/api/ipam/vlans/').filter((v) => v.id !== 3));
  const rows = await client(fake, { cursor: true }).list('/api/ipam/vlans/');
  assert.deepEqual(rows.map((r) => r.id), [1, 2, 4, 5, 6, 7, 8, 9, 10]);
  assert.match(fake.log[0].query, /start=0/);
  assert.deepEqual(fake.log.map((e) => new URLSearchParams(e.query).get('start')), ['0', '6', '10']);
});

test('list: query filters, repeated values (OR), and getMany by id with fields', async () => {
  const fake = new FakeNetBox();
  for (let i = 1; i <= 5; i++) fake.seed('/api/dcim/sites/', { name: `s${i}`, slug: `s${i}` });
  const c = client(fake);
  assert.deepEqual((await c.list('/api/dcim/sites/', { query: { slug: ['s2', 's4'] } })).map((s) => s.id), [2, 4]);
  const some = await c.getMany('/api/dcim/sites/', [1, 3], { fields: ['id', 'last_updated'] });
  assert.deepEqual(some.map((s) => Object.keys(s).sort()), [['id', 'last_updated'], ['id', 'last_updated']]);
  assert.match(fake.log.at(-1).query, /id=1&id=3/);
  assert.match(fake.log.at(-1).query, /fields=id%2Clast_updated/);
});

test('url: a base path prefix is kept', () => {
  const c = new NetBoxClient({ url: 'https://example.org/netbox/', token: V1, transport: /** @type {any} */ ({ request() {} }) }); // never called: url() only builds
  assert.equal(c.url('/api/dcim/sites/', { limit: 5 }), 'https://example.org/netbox/api/dcim/sites/?limit=5');
  assert.equal(c.url('http://other:8000/netbox/api/dcim/sites/?limit=5&offset=5'), 'https://example.org/netbox/api/dcim/sites/?limit=5&offset=5');
});

test('bulk writes go in batches of batchSize, as JSON lists', async () => {
  const fake = new FakeNetBox();
  fake.objects('/api/ipam/vlans/');
  const c = client(fake, { batchSize: 4 });
  const created = await c.create('/api/ipam/vlans/', Array.from({ length: 10 }, (_, i) => ({ vid: i + 1, name: `v${i + 1}` })));
  assert.deepEqual(created.map((v) => v.id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const posts = fake.log.filter((e) => e.method === 'POST');
  assert.deepEqual(posts.map((p) => p.body.length), [4, 4, 2]);
  await c.update('/api/ipam/vlans/', created.map((v) => ({ id: v.id, name: `x${v.id}` })));
  assert.deepEqual(fake.log.filter((e) => e.method === 'PATCH').map((p) => p.body.length), [4, 4, 2]);
  await c.delete('/api/ipam/vlans/', [1, 2, 3, 4, 5]);
  assert.deepEqual(fake.log.filter((e) => e.method === 'DELETE').map((p) => p.body), [[{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }], [{ id: 5 }]]);
  assert.equal(fake.objects('/api/ipam/vlans/').length, 5);
});

test('retries: 503s and resets on GET back off exponentially, then succeed', async () => {
  const fake = new FakeNetBox();
  fake.objects('/api/dcim/sites/');
  let n = 0;
  fake.fault = () => (++n <= 2 ? { status: 503, body: { detail: 'busy' } } : n === 3 ? 'drop-before' : undefined);
  const c = client(fake, { backoff: 100 });
  assert.deepEqual(await c.list('/api/dcim/sites/'), []);
  assert.equal(fake.log.length, 4);
  assert.deepEqual(c.sleeps, [75, 150, 300], 'base 100 doubling, half fixed + half jitter (random 0.5)');
  assert.equal(c.stats.retries, 3);
  assert.equal(c.stats.requests, 4);
});

test('retries: 429 honours Retry-After; giving up reports the last status and body', async () => {
  const fake = new FakeNetBox();
  fake.objects('/api/dcim/sites/');
  const transport = {
    async request(req) {
      fake.log.push(req);
      return { status: 429, headers: { 'retry-after': '2' }, text: JSON.stringify({ detail: 'Request was throttled.' }) };
    },
  };
  const c = client(fake, { transport, retries: 2, backoff: 10 });
  await assert.rejects(c.list('/api/dcim/sites/'), (error) => {
    assert.ok(error instanceof NetBoxError);
    assert.equal(error.status, 429);
    assert.deepEqual(error.body, { detail: 'Request was throttled.' });
    assert.equal(error.attempts, 3);
    return true;
  });
  assert.deepEqual(c.sleeps, [2000, 2000]);
});

test('retries: a POST is not re-sent after a lost answer (ambiguous), but is after 503', async () => {
  const fake = new FakeNetBox();
  fake.objects('/api/ipam/vlans/');
  fake.fault = (req) => (req.method === 'POST' ? 'drop-after' : undefined);
  const c = client(fake);
  await assert.rejects(c.createBatch('/api/ipam/vlans/', [{ vid: 1, name: 'a' }]), { ambiguous: true, code: 'ECONNRESET' });
  assert.equal(fake.objects('/api/ipam/vlans/').length, 1, 'NetBox did create it');
  assert.equal(fake.log.filter((e) => e.method === 'POST').length, 1, 'sent once');
  let n = 0;
  fake.fault = (req) => (req.method === 'POST' && ++n === 1 ? { status: 503, body: { detail: 'maintenance' } } : undefined);
  await c.createBatch('/api/ipam/vlans/', [{ vid: 2, name: 'b' }]);
  assert.equal(fake.objects('/api/ipam/vlans/').length, 2);
  // A PATCH (idempotent) is retried after a reset.
  let m = 0;
  fake.fault = (req) => (req.method === 'PATCH' && ++m === 1 ? 'drop-after' : undefined);
  await c.updateBatch('/api/ipam/vlans/', [{ id: 1, name: 'a2' }]);
  assert.equal(fake.find('/api/ipam/vlans/', 1).name, 'a2');
  // When the retries run out after an unanswered attempt, the error says the write may have happened.
  let k = 0;
  fake.fault = (req) => (req.method === 'PATCH' ? (++k === 1 ? 'drop-after' : { status: 503, body: { detail: 'busy' } }) : undefined);
  await assert.rejects(
    c.updateBatch('/api/ipam/vlans/', [{ id: 1, name: 'a3' }]), /→ 503: busy \(an earlier attempt got no answer and may have been applied\)/
  );
  assert.equal(fake.find('/api/ipam/vlans/', 1).name, 'a3');
});

test('retries: a write PostgreSQL rolled back (deadlock, serialization failure) is re-sent, a POST too, and lowers the concurrency', async () => {
  const fake = new FakeNetBox();
  fake.objects('/api/virtualization/virtual-disks/');
  // NetBox's own 500 page for an OperationalError, as NetBox 4.7 answers a deadlocked bulk create.
  const rolledBack = (error, exception = 'OperationalError') => ({
    status: 500, body: { error, exception, netbox_version: '4.7.3', python_version: '3.12.1' },
  });
  const deadlock = rolledBack('deadlock detected\nDETAIL:  Process 10814 waits for ShareLock on transaction 2564; blocked by process 10830.');
  let n = 0;
  fake.fault = (req) => (req.method === 'POST' && ++n === 1 ? deadlock : undefined);
  const c = client(fake, { concurrency: 4 });
  const created = await c.createBatch('/api/virtualization/virtual-disks/', [{ name: 'scsi0', size: 1 }]);
  assert.equal(created.length, 1);
  assert.equal(fake.objects('/api/virtualization/virtual-disks/').length, 1, 'created once');
  assert.equal(fake.log.filter((e) => e.method === 'POST').length, 2, 'sent twice: the first was rolled back');
  assert.equal(c.gate.stats.throttled, 1);
  assert.ok(c.gate.limit < 4, `concurrency lowered (limit ${c.gate.limit})`);
  let m = 0;
  fake.fault = (req) => (req.method === 'PATCH' && ++m === 1 ? rolledBack('could not serialize access due to concurrent update') : undefined);
  await c.updateBatch('/api/virtualization/virtual-disks/', [{ id: created[0].id, size: 2 }]);
  assert.equal(fake.find('/api/virtualization/virtual-disks/', created[0].id).size, 2);
  // Any other error NetBox reports is final for a POST: not re-sent, and not ambiguous (NetBox rolled it back).
  fake.fault = (req) => (req.method === 'POST' ? rolledBack('duplicate key value violates unique constraint', 'IntegrityError') : undefined);
  const before = fake.log.length;
  await assert.rejects(c.createBatch('/api/virtualization/virtual-disks/', [{ name: 'scsi1', size: 1 }]), { status: 500, ambiguous: false });
  assert.equal(fake.log.length - before, 1, 'sent once');
});

test('timeouts: a slow answer fails the attempt and is retried (fault injection: a socket that never answers)', async () => {
  let calls = 0;
  const { createTransport } = await import('../http.js');
  const http = await import('node:http');
  // A real socket here: the timeout is the transport's own.
  const server = http.createServer((req, res) => {
    calls += 1;
    if (calls === 1) return; // never answers
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ count: 0, next: null, previous: null, results: [] }));
  });
  const url = await listenLoopback(server);
  const transport = createTransport();
  try {
    const c = new NetBoxClient({ url, token: V1, transport, timeout: 200, sleep: async () => {} });
    assert.deepEqual(await c.list('/api/dcim/sites/'), []);
    assert.equal(calls, 2);
  } finally {
    transport.close();
    server.closeAllConnections();
    server.close();
  }
});

test('errors carry status and NetBox body, never the token', async () => {
  const fake = new FakeNetBox();
  const echo = {
    async request(req) {
      // A hostile or buggy server echoing the credentials back.
      const token = req.headers.Authorization.split(' ')[1];
      return {
        status: 400, headers: {},
        text: JSON.stringify({ detail: `bad header ${req.headers.Authorization}`, token, nested: [{ secret: token.split('.').at(-1) }] }),
      };
    },
  };
  for (const token of [V1, V2]) {
    const c = client(fake, { token, transport: echo });
    await assert.rejects(c.request('GET', '/api/dcim/sites/', { query: { q: token } }), (/** @type {import('../netbox.js').NetBoxError} */ error) => {
      const text = JSON.stringify({ message: error.message, body: error.body, path: error.path, json: error });
      assert.ok(!text.includes(V1) && !text.includes(V2) && !text.includes('ProxboxPlannerE2eV2TokenSecret0123456789'), text);
      assert.equal(error.status, 400);
      assert.match(error.message, /→ 400: bad header Token \*\*\*|→ 400: bad header Bearer \*\*\*/);
      return true;
    });
  }
  const c = client(fake);
  assert.ok(!JSON.stringify(c).includes(V1), 'the client itself does not serialise its token');
  assert.ok(!inspect(c, { depth: 5 }).includes(V1), 'nor does console.log');
});

test('errors are one line: a refused token names its variable, a permission does not, an HTML page is never shown', async () => {
  const answers = {
    '/api/status/': { status: 403, text: JSON.stringify({ detail: 'Invalid v2 token' }) },
    '/api/dcim/sites/': { status: 403, text: JSON.stringify({ detail: 'You do not have permission to perform this action.' }) },
    '/api/dcim/devices/': {
      status: 404,
      text: `<!DOCTYPE html>\n<html lang="en">\n<head><title>Page Not Found</title></head>\n${'<div>x</div>\n'.repeat(40)}</html>`,
    },
    '/api/ipam/vlans/': { status: 502, text: 'Bad Gateway\nnginx' },
  };
  const transport = { request: async ({ url }) => ({ headers: {}, ...answers[new URL(url).pathname] }), close() {} };
  const c = client(new FakeNetBox(), { token: V2, transport, retries: 0, hints: { token: 'NETBOX_TOKEN_FILE' } });
  const message = async (path) => c.request('GET', path).then(() => 'no error', (error) => error.message);
  assert.equal(await message('/api/status/'), 'GET /api/status/ → 403: Invalid v2 token: check NETBOX_TOKEN_FILE');
  assert.equal(await message('/api/dcim/sites/'), 'GET /api/dcim/sites/ → 403: You do not have permission to perform this action.');
  assert.equal(await message('/api/dcim/devices/'), 'GET /api/dcim/devices/ → 404: (an HTML page)');
  assert.equal(await message('/api/ipam/vlans/'), 'GET /api/ipam/vlans/ → 502: Bad Gateway');
  const refused = new NetBoxClient({
    url: 'http://127.0.0.1:9/netbox/', token: V1,
    transport: { request: async () => { throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }); }, close() {} },
    retries: 0, hints: { url: '--netbox-url' },
  });
  await assert.rejects(refused.request('GET', '/api/status/'), (/** @type {import('../netbox.js').NetBoxError} */ error) => {
    assert.equal(
      error.message,
      'GET /netbox/api/status/: cannot reach NetBox at http://127.0.0.1:9/netbox (connection refused, ECONNREFUSED): check --netbox-url'
    );
    return true;
  });
  assert.equal(c.tokenKey, 'proxboxplan2', 'the public half of a v2 token names it');
  assert.equal(client(new FakeNetBox()).tokenKey, null);
});

test('404 on get resolves to null; other errors throw', async () => {
  const fake = new FakeNetBox();
  fake.seed('/api/dcim/sites/', { name: 'a' });
  const c = client(fake);
  assert.equal((await c.get('/api/dcim/sites/', 1)).name, 'a');
  assert.equal(await c.get('/api/dcim/sites/', 99), null);
  await assert.rejects(c.list('/api/nope/'), { status: 404 });
});

test('backoffDelay doubles up to the cap; redact hides whole tokens and their secret halves', () => {
  assert.deepEqual([0, 1, 2, 3, 10].map((a) => backoffDelay(a, { base: 100, max: 1000, random: () => 1 })), [100, 200, 400, 800, 1000]);
  assert.deepEqual([0, 1].map((a) => backoffDelay(a, { base: 100, max: 1000, random: () => 0 })), [50, 100]);
  assert.equal(redact(`x ${V2} y`, [V2]), 'x *** y');
  assert.equal(redact('secret ProxboxPlannerE2eV2TokenSecret0123456789 leaked', [V2]), 'secret *** leaked');
  assert.equal(
    redact('PVEAPIToken=root@pam!proxbox=fdc8ae52-a1db-412d-9624-cf5c69784549', ['root@pam!proxbox=fdc8ae52-a1db-412d-9624-cf5c69784549']),
    'PVEAPIToken=***'
  );
  assert.equal(redact('only fdc8ae52-a1db-412d-9624-cf5c69784549', ['root@pam!proxbox=fdc8ae52-a1db-412d-9624-cf5c69784549']), 'only ***');
});
