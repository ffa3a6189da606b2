// Scenario: a GET whose connection is reset before any byte of the response reached the caller is
// retried on another endpoint, and the caller gets the full body.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { call, type Mesh } from './helpers/load.ts';

// 48 KiB, so a truncated body cannot pass for the full one.
const FULL_BODY = 'meshlet-'.repeat(6 * 1024);

describe('reset: connection reset before the response is retried', () => {
  const servers = new ServerSet();
  let resetNoBytes: TestServer;
  let resetPartialHeaders: TestServer;
  let resetMidBody: TestServer;
  let good: TestServer;
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;

  before(async () => {
    resetNoBytes = await servers.start('reset-no-bytes', { mode: 'reset-before-response' });
    resetPartialHeaders = await servers.start('reset-partial-headers', { mode: 'reset-partial-headers' });
    resetMidBody = await servers.start('reset-mid-body', { mode: 'reset-mid-body', body: FULL_BODY });
    good = await servers.start('good', { body: FULL_BODY });
    // round-robin: each resetting endpoint is certain to get first attempts.
    mesh = createMesh({
      services: {
        'no-bytes': { endpoints: [resetNoBytes.address, good.address], loadBalancer: 'round-robin' },
        'partial-headers': { endpoints: [resetPartialHeaders.address, good.address], loadBalancer: 'round-robin' },
        'mid-body': { endpoints: [resetMidBody.address] },
      },
    });
    fetch = createMeshFetch(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  for (const [service, name] of [
    ['no-bytes', 'socket destroyed before any byte'],
    ['partial-headers', 'socket destroyed after part of the headers'],
  ] as const) {
    it(`${name}: the GET is retried on the other endpoint and gets the full body`, async () => {
      const resetter = service === 'no-bytes' ? resetNoBytes : resetPartialHeaders;
      const goodBefore = good.count;
      for (let i = 0; i < 4; i++) {
        const o = await call(fetch, `http://${service}/data/${i}`);
        assert.ok(o.ok, `GET ${i} failed: ${o.ok ? '' : `${o.code ?? ''} ${String(o.error)}`}`);
        assert.equal(o.status, 200);
        assert.equal(o.server, 'good', 'the second server should have served it');
        assert.equal(o.body.length, FULL_BODY.length);
        assert.equal(o.body, FULL_BODY);
      }
      assert.ok(resetter.count >= 1, `${resetter.id} got no attempt: the retry path was not exercised`);
      assert.equal(good.count - goodBefore, 4, 'the good server serves each GET exactly once');
      for (const r of resetter.requests) assert.equal(r.method, 'GET');
      const stats = mesh.stats().services[service];
      assert.equal(stats.requests, 4);
      assert.equal(stats.successes, 4);
      assert.ok(stats.retries >= 1, `stats.retries = ${stats.retries}`);
    });
  }

  it('a reset after part of the body was delivered is surfaced to the caller, not a silently short body', async () => {
    let outcome: string;
    try {
      const res = await fetch('http://mid-body/data');
      const text = await res.text();
      outcome = `resolved with ${text.length} of ${FULL_BODY.length} chars`;
    } catch {
      outcome = 'rejected';
    }
    assert.equal(outcome, 'rejected', 'reading a body cut by a reset should reject');
  });
});
