// Scenario: one of three backends answers 503 to everything. Retries hide it from callers, the
// outlier detector (or breaker) takes it out, and it gets almost no traffic afterwards.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { call, describeFailures, runConcurrent, type Mesh, type Outcome } from './helpers/load.ts';

describe('bad apple: one backend answers 503 to everything', () => {
  const servers = new ServerSet();
  let good: TestServer[];
  let bad: TestServer;
  let mesh: Mesh;

  before(async () => {
    good = await servers.startMany('good-', 2);
    bad = await servers.start('bad', { status: 503, body: 'unavailable' });
    mesh = createMesh({ services: { users: { endpoints: [good[0].address, bad.address, good[1].address] } } });
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it('serves >= 99.9% of 2000 GETs, ejects the bad one and starves it', async () => {
    const fetch = createMeshFetch(mesh);
    const run = (n: number, offset: number): Promise<Outcome[]> =>
      runConcurrent(n, 16, (i) => call(fetch, `http://users/profile/${offset + i}`));

    const first = await run(1000, 0);
    const badBefore = bad.count;
    const second = await run(1000, 1000);
    const badLast1000 = bad.count - badBefore;

    const all = [...first, ...second];
    const ok = all.filter((o) => o.ok && o.status === 200).length;
    assert.ok(ok >= 1998, `expected >= 1998 of 2000 to succeed, got ${ok}; e.g. ${describeFailures(all)}`);
    for (const o of all) if (o.ok && o.status === 200) assert.match(o.body, /^good-\d$/);

    assert.ok(bad.count >= 1, 'the bad backend never got a request: the test exercised nothing');
    assert.ok(badLast1000 < 20, `bad backend got ${badLast1000} of the last 1000 requests (want < 2%)`);

    const svc = mesh.stats().services.users;
    assert.equal(svc.requests, 2000);
    assert.ok(svc.retries >= 1, 'the 503s should have been retried');
    const ep = svc.endpoints.find((e) => e.address === bad.address);
    assert.ok(ep, `no stats entry for ${bad.address}`);
    assert.ok(ep.state === 'ejected' || ep.state === 'open', `bad endpoint state is ${ep.state}`);
    assert.ok(ep.ejections >= 1 || ep.state === 'open', `bad endpoint: ejections ${ep.ejections}, state ${ep.state}`);
    for (const g of good) {
      const e = svc.endpoints.find((x) => x.address === g.address);
      assert.equal(e?.state, 'healthy', `${g.address} should stay healthy`);
    }
  });
});
