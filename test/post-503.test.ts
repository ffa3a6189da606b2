// Scenario: which requests with a body are replayed after a 503. POST is not retried by default;
// it is with `retry.nonIdempotent` or an Idempotency-Key; an idempotent PUT is replayed with the
// identical body bytes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, requestsOf, totalCount, type TestServer } from './helpers/servers.ts';
import type { Mesh } from './helpers/load.ts';

const JSON_BODY = JSON.stringify({ order: 42, items: ['a', 'b'], note: 'crème brûlée ☕' });

describe('post-503: replay of requests with a body', () => {
  const servers = new ServerSet();
  let down: TestServer[];
  let failing: TestServer;
  let ok: TestServer;
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;

  before(async () => {
    down = await servers.startMany('down-', 3, { status: 503, body: 'down' });
    failing = await servers.start('failing', { status: 503, body: 'down' });
    ok = await servers.start('ok');
    const endpoints = down.map((s) => s.address);
    mesh = createMesh({
      services: {
        orders: { endpoints },
        'orders-retry-all': { endpoints, retry: { nonIdempotent: true } },
        // round-robin: the 503 endpoint is certain to get first attempts.
        files: { endpoints: [failing.address, ok.address], loadBalancer: 'round-robin' },
      },
    });
    fetch = createMeshFetch(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  const post = (service: string, headers: Record<string, string> = {}) =>
    fetch(`http://${service}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON_BODY,
    });

  function resetDown(): void {
    for (const s of down) s.reset();
  }

  function assertReplays(min: number, max: number): void {
    const seen = requestsOf(down);
    assert.ok(seen.length >= min && seen.length <= max, `servers saw ${seen.length} attempts (want ${min}..${max})`);
    for (const r of seen) {
      assert.equal(r.method, 'POST');
      assert.equal(r.body.toString('utf8'), JSON_BODY, 'every attempt must carry the full body');
    }
    // A retry avoids the endpoint the previous attempt failed on.
    for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i].server, seen[i - 1].server);
  }

  it('default config: a POST answered 503 is sent exactly once and the 503 is returned', async () => {
    resetDown();
    const res = await post('orders');
    assert.equal(res.status, 503);
    assert.equal(await res.text(), 'down');
    assert.equal(totalCount(down), 1);
    assert.equal(requestsOf(down)[0].body.toString('utf8'), JSON_BODY);
    assert.equal(mesh.stats().services.orders.retries, 0);
  });

  it('retry.nonIdempotent: true: the POST is retried up to maxAttempts (3) across servers', async () => {
    resetDown();
    const res = await post('orders-retry-all');
    assert.equal(res.status, 503);
    await res.text();
    assertReplays(2, 3);
  });

  it('an Idempotency-Key header makes a POST retryable', async () => {
    resetDown();
    const res = await post('orders', { 'idempotency-key': 'f1c6a7a2-0b7e-4d7e-9a53-0d2b8c1e9f00' });
    assert.equal(res.status, 503);
    await res.text();
    assertReplays(2, 3);
    for (const r of requestsOf(down)) {
      assert.equal(r.headers['idempotency-key'], 'f1c6a7a2-0b7e-4d7e-9a53-0d2b8c1e9f00');
    }
  });

  it('a PUT answered 503 is retried on the other endpoint, which receives the identical body bytes', async () => {
    const bodies: Buffer[] = [];
    for (let i = 0; i < 6; i++) {
      // Not all ASCII and not tiny (~16 KiB), still under the 64 KiB replay buffer.
      const body = Buffer.from(`${i}:${'é☕x'.repeat(1500)}`.slice(0, 8192), 'utf8');
      bodies.push(body);
      const res = await fetch(`http://files/doc/${i}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body,
      });
      assert.equal(res.status, 200, `PUT ${i}`);
      assert.equal(await res.text(), 'ok');
    }
    assert.ok(failing.count >= 1, 'the 503 endpoint got no attempt: the retry path was not exercised');
    assert.equal(ok.count, bodies.length, 'the healthy endpoint serves every PUT exactly once');
    for (const r of failing.requests) {
      assert.equal(r.method, 'PUT');
      const i = Number(r.url.split('/').pop());
      assert.ok(bodies[i].equals(r.body), `first attempt of PUT ${i} carried a different body`);
    }
    for (const r of ok.requests) {
      assert.equal(r.method, 'PUT');
      const i = Number(r.url.split('/').pop());
      assert.ok(bodies[i].equals(r.body), `PUT ${i}: the 200 server received different bytes than were sent`);
      assert.equal(r.headers['content-type'], 'application/octet-stream');
    }
    assert.ok(mesh.stats().services.files.retries >= 1);
  });
});
