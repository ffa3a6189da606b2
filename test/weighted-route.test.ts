// Scenario: a service that only routes: a header match sends canaries to api-v2, everything else
// is split 80/20 between api-v1 and api-v2.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, totalCount, type TestServer } from './helpers/servers.ts';
import { call, describeFailures, runConcurrent, type Mesh } from './helpers/load.ts';

const TOTAL = 2000;

describe('weighted route: 80/20 split and a header match', () => {
  const servers = new ServerSet();
  let v1: TestServer[];
  let v2: TestServer[];
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;

  before(async () => {
    v1 = await servers.startMany('v1-', 2);
    v2 = await servers.startMany('v2-', 2);
    mesh = createMesh({
      services: {
        api: {
          routes: [
            { match: { headers: { 'x-canary': 'true' } }, backends: [{ service: 'api-v2' }] },
            {
              backends: [
                { service: 'api-v1', weight: 80 },
                { service: 'api-v2', weight: 20 },
              ],
            },
          ],
        },
        'api-v1': { endpoints: v1.map((s) => s.address) },
        'api-v2': { endpoints: v2.map((s) => s.address) },
      },
    });
    fetch = createMeshFetch(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it(`splits ${TOTAL} requests 80/20 within 5 points`, async () => {
    const outcomes = await runConcurrent(TOTAL, 16, (i) => call(fetch, `http://api/items/${i}`));
    assert.ok(
      outcomes.every((o) => o.ok && o.status === 200),
      `e.g. ${describeFailures(outcomes)}`,
    );
    const toV1 = outcomes.filter((o) => o.ok && o.body.startsWith('v1-')).length;
    const toV2 = outcomes.filter((o) => o.ok && o.body.startsWith('v2-')).length;
    assert.equal(toV1 + toV2, TOTAL);
    assert.equal(totalCount(v1), toV1, 'v1 servers saw a different count than the callers');
    assert.equal(totalCount(v2), toV2, 'v2 servers saw a different count than the callers');
    const share = (toV1 / TOTAL) * 100;
    assert.ok(share >= 75 && share <= 85, `api-v1 got ${share.toFixed(1)}% (want 80 ± 5)`);
    // The path reaches the backend unchanged.
    assert.ok([...v1, ...v2].every((s) => s.requests.every((r) => r.url.startsWith('/items/'))));

    const stats = mesh.stats().services;
    const attempts = (name: string) => stats[name].endpoints.reduce((sum, e) => sum + e.requests, 0);
    assert.equal(attempts('api-v1'), toV1, 'api-v1 endpoint stats');
    assert.equal(attempts('api-v2'), toV2, 'api-v2 endpoint stats');
  });

  it('requests with x-canary: true go only to api-v2', async () => {
    const v1Before = totalCount(v1);
    const outcomes = await runConcurrent(200, 16, (i) =>
      call(fetch, `http://api/items/${i}`, { headers: { 'x-canary': 'true' } }),
    );
    assert.ok(
      outcomes.every((o) => o.ok && o.status === 200),
      `e.g. ${describeFailures(outcomes)}`,
    );
    for (const o of outcomes) assert.match(o.ok ? o.body : '', /^v2-\d$/);
    assert.equal(totalCount(v1), v1Before, 'a canary request reached api-v1');

    // A different header value does not match: the weighted route applies again.
    const other = await runConcurrent(100, 16, (i) =>
      call(fetch, `http://api/items/${i}`, { headers: { 'x-canary': 'false' } }),
    );
    assert.ok(
      other.some((o) => o.ok && o.body.startsWith('v1-')),
      'x-canary: false should not match the canary route',
    );
  });
});
