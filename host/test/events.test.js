// Event stream: SSE framing, keepalives, NDJSON, the final `complete`, and
// secrets scrubbed from every payload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStream, parseSSE, runWithEvents, sseFrame, SSE_KEEPALIVE } from '../events.js';
import { UsageError } from '../outcome.js';

test('sseFrame: event line, one data line of JSON, blank line', () => {
  assert.equal(
    sseFrame('step', { step: 'apply', status: 'started', message: 'a\nb' }),
    'event: step\ndata: {"step":"apply","status":"started","message":"a\\nb"}\n\n'
  );
  assert.equal(SSE_KEEPALIVE, ': keepalive\n\n');
  const text = sseFrame('a', { x: 1 }) + SSE_KEEPALIVE + sseFrame('complete', { ok: true });
  assert.deepEqual(parseSSE(text), [{ event: 'a', data: { x: 1 } }, { event: 'complete', data: { ok: true } }]);
});

test('EventStream: in order as an async iterator; SSE with keepalives while idle', async () => {
  const stream = new EventStream();
  stream.emit('step', { n: 1 });
  setTimeout(() => stream.emit('step', { n: 2 }), 80);
  setTimeout(() => {
    stream.emit('complete', { ok: true });
    stream.end();
  }, 120);
  const chunks = [];
  for await (const chunk of stream.sse({ keepaliveMs: 25 })) chunks.push(chunk);
  assert.equal(chunks[0], sseFrame('step', { n: 1 }));
  assert.ok(chunks.includes(SSE_KEEPALIVE), 'a keepalive comment while nothing happened');
  assert.deepEqual(parseSSE(chunks.join('')), [
    { event: 'step', data: { n: 1 } },
    { event: 'step', data: { n: 2 } },
    { event: 'complete', data: { ok: true } },
  ]);
  stream.emit('late', {});
  const again = [];
  for await (const item of stream) again.push(item);
  assert.deepEqual(again, [], 'nothing after end');
});

test('runWithEvents: success ends with complete {ok, outcome, message, result}', async () => {
  const stream = runWithEvents(async (emit) => {
    emit('step', { step: 'plan', status: 'started' });
    return { ok: true, summary: { create: 1 } };
  });
  const items = [];
  for await (const item of stream) items.push(item);
  assert.deepEqual(items.map((i) => i.event), ['step', 'complete']);
  assert.deepEqual(items[1].data, { ok: true, outcome: 'ok', message: 'Sync completed', result: { ok: true, summary: { create: 1 } } });
  const lines = [];
  const partial = runWithEvents(async () => ({ ok: false }));
  for await (const line of partial.ndjson()) lines.push(JSON.parse(line));
  assert.deepEqual(lines, [{ event: 'complete', data: { ok: false, outcome: 'partial', message: 'Sync finished with errors', result: { ok: false } } }]);
  // A result's own outcome wins, and `ok` follows it: false for partial and failed, true with warnings.
  for (const [outcome, ok] of [['failed', false], ['partial', false], ['ok-with-warnings', true], ['ok', true]]) {
    const [{ data }] = await collect(runWithEvents(async () => ({ outcome, message: `m ${outcome}` })));
    assert.deepEqual([data.ok, data.outcome, data.message], [ok, outcome, `m ${outcome}`]);
  }
});

test('runWithEvents: a throw gives error then complete {ok: false, errors}', async () => {
  const stream = runWithEvents(async (emit) => {
    emit('discovery', { round: 1 });
    throw Object.assign(new Error('GET /api/status/ → 403: Invalid v1 token'), { status: 403 });
  });
  const items = [];
  for await (const item of stream) items.push(item);
  assert.deepEqual(items.map((i) => i.event), ['discovery', 'error', 'complete']);
  assert.equal(items[2].data.ok, false);
  assert.equal(items[2].data.outcome, 'failed');
  assert.deepEqual(items[2].data.errors, [{ message: 'GET /api/status/ → 403: Invalid v1 token', status: 403 }]);
  assert.equal(await stream.done, null);
  const [, usage] = await collect(runWithEvents(async () => {
    throw new UsageError('no Proxmox URL: set PVE_URL');
  }));
  assert.deepEqual(usage.data, {
    ok: false, outcome: 'usage', message: 'Sync failed: no Proxmox URL: set PVE_URL', errors: [{ message: 'no Proxmox URL: set PVE_URL' }],
  });
});

async function collect(stream) {
  const items = [];
  for await (const item of stream) items.push(item);
  return items;
}

test('secrets never reach an event', async () => {
  const token = 'nbt_abcdefghijkl.SuperSecretPartOfTheToken0123';
  const stream = runWithEvents(async (emit) => {
    emit('error_detail', { message: `bad ${token}`, detail: { header: `Bearer ${token}`, list: ['SuperSecretPartOfTheToken0123'] } });
    throw new Error(`failed with ${token}`);
  }, { secrets: [token] });
  let text = '';
  for await (const chunk of stream.sse({ keepaliveMs: 1000 })) text += chunk;
  assert.ok(!text.includes('SuperSecretPartOfTheToken0123'), text);
  assert.match(text, /bad \*\*\*/);
  assert.match(text, /event: complete/);
});
