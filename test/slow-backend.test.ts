// Scenario: one of three endpoints answers 100 ms slower than the others. The default balancer
// (P2C over peak EWMA) must send it only a small share of the traffic.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { call, describeFailures, runConcurrent, type Mesh } from './helpers/load.ts';

const TOTAL = 1000;

describe('slow backend: p2c-ewma avoids the slow endpoint', () => {
  const servers = new ServerSet();
  let fast: TestServer[];
  let slow: TestServer;
  let mesh: Mesh;

  before(async () => {
    fast = await servers.startMany('fast-', 2, { latencyMs: 2 });
    slow = await servers.start('slow', { latencyMs: 102 });
    // loadBalancer left to its default ('p2c-ewma').
    mesh = createMesh({ services: { search: { endpoints: [slow.address, ...fast.map((s) => s.address)] } } });
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it(`the slow endpoint receives < 10% of ${TOTAL} requests`, async () => {
    const fetch = createMeshFetch(mesh);
    const outcomes = await runConcurrent(TOTAL, 8, (i) => call(fetch, `http://search/q?i=${i}`));
    assert.ok(
      outcomes.every((o) => o.ok && o.status === 200),
      `every request should succeed; e.g. ${describeFailures(outcomes)}`,
    );
    const total = slow.count + fast[0].count + fast[1].count;
    assert.equal(total, TOTAL, 'no retries expected: every backend answers 200');
    assert.ok(slow.count >= 1, 'the slow endpoint was never tried');
    const share = slow.count / TOTAL;
    assert.ok(share < 0.1, `slow endpoint got ${slow.count} of ${TOTAL} (${(share * 100).toFixed(1)}%, want < 10%)`);
    // Both fast endpoints share the rest.
    for (const f of fast) assert.ok(f.count > TOTAL * 0.2, `${f.id} got only ${f.count}`);

    const stats = mesh.stats().services.search;
    const slowStats = stats.endpoints.find((e) => e.address === slow.address);
    const fastStats = stats.endpoints.find((e) => e.address === fast[0].address);
    assert.ok(slowStats && fastStats);
    assert.equal(slowStats.requests, slow.count, 'stats endpoint requests should match what the server saw');
    assert.ok(slowStats.ewmaMs > fastStats.ewmaMs, `ewma slow ${slowStats.ewmaMs} <= fast ${fastStats.ewmaMs}`);
  });
});
