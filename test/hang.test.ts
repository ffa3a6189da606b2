// Scenario: a backend accepts connections and never answers. The request deadline must end every
// call in time, and mesh.close() must leave no socket or timer behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { createMesh, MeshError } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { withLag } from './helpers/lag.ts';
import { call, describeFailures, runConcurrent, tally, type Mesh, type Outcome } from './helpers/load.ts';

const REQUEST_MS = 300;
// The bar from the issue: every call ends within the deadline plus 50 ms.
const LIMIT_MS = REQUEST_MS + 50;
const PER_TRY_MS = 1000;
const PER_TRY_REQUEST_MS = 3000;

/**
 * Runs the calls and asserts each ended within `limitMs`. A deadline is a timer: when the event
 * loop itself is late (another test process on a shared 2-core box), every timer fires that much
 * later and no library can do better, so the loop's measured stalls during the run are added to
 * the limit (their sum: one call can be held up by more than one, see helpers/lag.ts).
 */
async function timed(run: () => Promise<Outcome[]>, limitMs = LIMIT_MS): Promise<Outcome[]> {
  const { value: outcomes, lagMs } = await withLag(run);
  let worst = 0;
  for (let i = 1; i < outcomes.length; i++) if (outcomes[i].ms > outcomes[worst].ms) worst = i;
  const o = outcomes[worst];
  const kind = o.ok ? `status ${o.status}` : (o.code ?? String(o.error));
  assert.ok(
    o.ms <= limitMs + lagMs,
    `call #${worst} (${kind}) took ${o.ms.toFixed(1)} ms (limit ${limitMs} + event-loop stalls ${lagMs.toFixed(1)})`,
  );
  return outcomes;
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
        // A per-try timeout that a healthy answer outlasts only on a stalled machine (a loaded run
        // saw the healthy endpoint's answer take more than 100 ms), and a deadline with room for
        // the retry after it.
        'per-try': {
          endpoints: [hanging[1].address, healthy.address],
          loadBalancer: 'round-robin',
          timeout: { requestMs: PER_TRY_REQUEST_MS, perTryMs: PER_TRY_MS },
        },
      },
    });
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it('one of two hangs: each call succeeds on the other endpoint or fails with MESHLET_ERR_DEADLINE in time', async () => {
    const fetch = createMeshFetch(mesh);
    const outcomes = await timed(() => runConcurrent(30, 4, (i) => call(fetch, `http://half/x/${i}`)));
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
  });

  it('with perTryMs, an attempt on the hanging endpoint is cut and retried on the other one', async () => {
    const fetch = createMeshFetch(mesh);
    const before = hanging[1].count;
    const outcomes = await timed(
      () => runConcurrent(12, 4, (i) => call(fetch, `http://per-try/x/${i}`)),
      PER_TRY_REQUEST_MS + 50,
    );
    for (const o of outcomes) {
      assert.ok(o.ok, `call failed: ${describeFailures([o])}`);
      assert.equal(o.status, 200);
      assert.equal(o.body, 'healthy');
    }
    assert.ok(hanging[1].count > before, 'the hanging endpoint got no attempt: the retry path was not exercised');
    assert.ok(mesh.stats().services['per-try'].retries >= 1);
  });

  it('all hang: every call rejects with MESHLET_ERR_DEADLINE in time', async () => {
    const fetch = createMeshFetch(mesh);
    // 12 calls: fewer failures than it takes to eject one endpoint and open the other's breaker.
    const outcomes = await timed(() => runConcurrent(12, 4, (i) => call(fetch, `http://all/x/${i}`)));
    for (const o of outcomes) {
      assert.equal(o.ok, false, `a call to hanging backends succeeded: ${describeFailures([o])}`);
      assert.equal(o.ok ? undefined : o.code, 'MESHLET_ERR_DEADLINE', o.ok ? '' : String(o.error));
    }
    assert.ok(hanging[0].count + hanging[1].count > 0);
  });
});

describe('hang: mesh.close() leaves no socket or timer behind', () => {
  /** Polls (briefly, shared machines) until `check` returns no complaint; returns the last complaint. */
  async function settle(check: () => string[]): Promise<string[]> {
    let complaints = check();
    for (let i = 0; i < 50 && complaints.length > 0; i++) {
      await tick();
      await sleep(10);
      complaints = check();
    }
    return complaints;
  }

  function extraResources(baseline: Map<string, number>, types: readonly string[]): string[] {
    const now = resources();
    return types.flatMap((type) => {
      const n = (now.get(type) ?? 0) - (baseline.get(type) ?? 0);
      return n > 0 ? [`${type} +${n}`] : [];
    });
  }

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
          mixed: {
            endpoints: [hang.address, ok.address],
            loadBalancer: 'round-robin',
            timeout: { requestMs: REQUEST_MS },
          },
        },
      });
      const fetch = createMeshFetch(mesh);
      const okOutcomes = await runConcurrent(20, 4, (i) => call(fetch, `http://ok/${i}`));
      assert.ok(
        okOutcomes.every((o) => o.ok && o.status === 200),
        describeFailures(okOutcomes),
      );
      const hangOutcomes = await runConcurrent(4, 4, (i) => call(fetch, `http://hang/${i}`));
      assert.ok(hangOutcomes.every((o) => !o.ok && o.code === 'MESHLET_ERR_DEADLINE'));
      const mixed = await runConcurrent(6, 3, (i) => call(fetch, `http://mixed/${i}`));
      assert.ok(mixed.every((o) => (o.ok && o.status === 200) || (!o.ok && o.code === 'MESHLET_ERR_DEADLINE')));
      assert.ok(ok.openSockets > 0, 'expected keep-alive connections before close');

      await mesh.close();
      mesh = undefined;

      // Servers still up: every connection the mesh opened must be closed from its side.
      const open = await settle(() =>
        servers.servers.flatMap((s) => (s.openSockets > 0 ? [`${s.id}: ${s.openSockets} open connections`] : [])),
      );
      assert.deepEqual(open, [], 'connections left open by the mesh after close()');
      const timers = await settle(() => extraResources(baseline, ['Timeout']));
      assert.deepEqual(timers, [], `timers left after mesh.close(): ${process.getActiveResourcesInfo().join(', ')}`);
    } finally {
      await mesh?.close();
      await servers.closeAll();
    }

    const extra = await settle(() => extraResources(baseline, ['TCPSocketWrap', 'TCPServerWrap', 'Timeout']));
    assert.deepEqual(extra, [], `resources left after mesh.close(): ${process.getActiveResourcesInfo().join(', ')}`);
  });
});
