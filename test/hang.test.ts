// Scenario: a backend accepts connections and never answers. The request deadline must end every
// call in time, and mesh.close() must leave no socket or timer behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { createMesh, MeshError } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { call, describeFailures, runConcurrent, tally, type Mesh, type Outcome } from './helpers/load.ts';

const REQUEST_MS = 300;
// The bar from the issue: every call ends within the deadline plus 50 ms.
const LIMIT_MS = REQUEST_MS + 50;

function slowest(outcomes: readonly Outcome[]): number {
  return Math.max(...outcomes.map((o) => o.ms));
}

/** Counts of the resource types that keep the process alive. */
function resources(): Map<string, number> {
  return tally(process.getActiveResourcesInfo());
}

describe('hang: a backend that accepts and never answers', () => {
  const servers = new ServerSet();
  let hanging: TestServer[];
  let healthy: TestServer;
  let mesh: Mesh;

  before(async () => {
    hanging = await servers.startMany('hang-', 2, { mode: 'hang' });
    healthy = await servers.start('healthy');
    mesh = createMesh({
      services: {
        // round-robin so the hanging endpoint is certain to get traffic before it is taken out.
        half: {
          endpoints: [hanging[0].address, healthy.address],
          loadBalancer: 'round-robin',
          timeout: { requestMs: REQUEST_MS },
        },
        all: { endpoints: hanging.map((s) => s.address), timeout: { requestMs: REQUEST_MS } },
      },
    });
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it('one of two hangs: each call succeeds on the other endpoint or fails with MESHLET_ERR_DEADLINE in time', async () => {
    const fetch = createMeshFetch(mesh);
    const outcomes = await runConcurrent(30, 4, (i) => call(fetch, `http://half/x/${i}`));
    const deadline = outcomes.filter((o) => !o.ok);
    const served = outcomes.filter((o) => o.ok);

    for (const o of deadline) {
      assert.ok(o.error instanceof MeshError, `expected a MeshError, got ${String(o.error)}`);
      assert.equal(o.code, 'MESHLET_ERR_DEADLINE', String(o.error));
    }
    for (const o of served) {
      assert.equal(o.status, 200);
      assert.equal(o.body, 'healthy');
    }
    assert.ok(served.length > 0, 'no call succeeded on the healthy endpoint');
    assert.ok(deadline.length > 0, `no call hit the deadline (hanging endpoint got ${hanging[0].count} requests)`);
    assert.ok(hanging[0].count > 0, 'the hanging endpoint got no request');
    assert.ok(slowest(outcomes) <= LIMIT_MS, `slowest call took ${slowest(outcomes).toFixed(1)} ms (limit ${LIMIT_MS})`);
  });

  it('all hang: every call rejects with MESHLET_ERR_DEADLINE in time', async () => {
    const fetch = createMeshFetch(mesh);
    const outcomes = await runConcurrent(12, 4, (i) => call(fetch, `http://all/x/${i}`));
    for (const o of outcomes) {
      assert.equal(o.ok, false, `a call to hanging backends succeeded: ${describeFailures([o])}`);
      assert.equal(o.ok ? undefined : o.code, 'MESHLET_ERR_DEADLINE', o.ok ? '' : String(o.error));
    }
    assert.ok(slowest(outcomes) <= LIMIT_MS, `slowest call took ${slowest(outcomes).toFixed(1)} ms (limit ${LIMIT_MS})`);
    assert.ok(hanging[0].count + hanging[1].count > 0);
  });
});

describe('hang: mesh.close() leaves no socket or timer behind', () => {
  it('no extra TCPSocketWrap or Timeout after close', async () => {
    const baseline = resources();
    const servers = new ServerSet();
    let mesh: Mesh | undefined;
    try {
      const hang = await servers.start('hang', { mode: 'hang' });
      const ok = await servers.start('ok', { latencyMs: 5 });
      mesh = createMesh({
        services: {
          // Default 15 s deadline: a deadline timer not cleared after success would still be pending.
          ok: { endpoints: [ok.address] },
          hang: { endpoints: [hang.address], timeout: { requestMs: REQUEST_MS } },
          mixed: { endpoints: [hang.address, ok.address], loadBalancer: 'round-robin', timeout: { requestMs: REQUEST_MS } },
        },
      });
      const fetch = createMeshFetch(mesh);
      const okOutcomes = await runConcurrent(20, 4, (i) => call(fetch, `http://ok/${i}`));
      assert.ok(okOutcomes.every((o) => o.ok && o.status === 200), describeFailures(okOutcomes));
      const hangOutcomes = await runConcurrent(4, 4, (i) => call(fetch, `http://hang/${i}`));
      assert.ok(hangOutcomes.every((o) => !o.ok && o.code === 'MESHLET_ERR_DEADLINE'));
      await runConcurrent(6, 3, (i) => call(fetch, `http://mixed/${i}`));
      // Open keep-alive connections exist now (the ok pool): close must release them.
      await mesh.close();
      mesh = undefined;
    } finally {
      await mesh?.close();
      await servers.closeAll();
    }

    // Let socket close callbacks run; poll briefly (shared machines).
    let extra: string[] = [];
    for (let i = 0; i < 50; i++) {
      await tick();
      const now = resources();
      extra = ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'].flatMap((type) => {
        const n = (now.get(type) ?? 0) - (baseline.get(type) ?? 0);
        return n > 0 ? [`${type} +${n}`] : [];
      });
      if (extra.length === 0) break;
      await sleep(10);
    }
    assert.deepEqual(extra, [], `resources left after mesh.close(): ${process.getActiveResourcesInfo().join(', ')}`);
  });
});
