// Scenario: every backend answers 503 for the whole test. The retry budget must keep the load the
// mesh adds during an outage small: attempts / requests <= 1.3 with the default budget.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, totalCount, type TestServer } from './helpers/servers.ts';
import { call, outageBar, runPaced, tally, type Mesh, type Outcome } from './helpers/load.ts';

// 200 requests per second for 3 s, paced by a timer.
const RATE = 200;
const TOTAL = 600;
const PLANNED_MS = (TOTAL / RATE) * 1000;

function outcomeKind(o: Outcome): string {
  return o.ok ? `status ${o.status}` : `error ${o.code ?? String(o.error)}`;
}

describe('outage amplification: all backends answer 503', () => {
  const servers = new ServerSet();
  let backends: TestServer[];
  let mesh: Mesh;

  before(async () => {
    backends = await servers.startMany('down-', 3, { status: 503, body: 'down' });
    const endpoints = backends.map((s) => s.address);
    mesh = createMesh({
      services: {
        // Everything default.
        api: { endpoints },
        // Only the budget stands between an outage and 3x the load: no breaker, no ejection.
        // One endpoint whose breaker opens on the first failure: the retry finds nothing to pick.
        'api-one-strike': {
          endpoints: [backends[0].address],
          circuitBreaker: { consecutiveFailures: 1 },
          outlierDetection: { enabled: false },
        },
        'api-budget-only': {
          endpoints,
          circuitBreaker: { enabled: false },
          outlierDetection: { enabled: false },
        },
      },
    });
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it('default config: attempts / requests <= 1.3, callers get 503 or NO_HEALTHY_ENDPOINTS', async () => {
    const fetch = createMeshFetch(mesh);
    for (const s of backends) s.reset();
    const started = performance.now();
    const outcomes = await runPaced(TOTAL, RATE, (i) => call(fetch, `http://api/item/${i}`));
    const bar = outageBar(1.3, TOTAL, PLANNED_MS, performance.now() - started);
    const attempts = totalCount(backends);

    const kinds = tally(outcomes.map(outcomeKind));
    for (const kind of kinds.keys()) {
      assert.ok(
        kind === 'status 503' || kind === 'error MESHLET_ERR_NO_HEALTHY_ENDPOINTS',
        `unexpected outcome "${kind}" (all: ${JSON.stringify([...kinds])})`,
      );
    }
    assert.ok(attempts >= 3, `the backends saw only ${attempts} attempts`);
    const ratio = attempts / TOTAL;
    assert.ok(
      ratio <= bar,
      `attempts / requests = ${attempts} / ${TOTAL} = ${ratio.toFixed(3)} (want <= ${bar.toFixed(3)}: 1.3 for a run on time)`,
    );

    const stats = mesh.stats().services.api;
    assert.ok(stats.retries < attempts, `stats.retries ${stats.retries} vs ${attempts} attempts`);
    assert.equal(stats.requests, TOTAL);
    assert.equal(stats.successes, 0);
    assert.equal(stats.failures, TOTAL);
  });

  it('budget only (no breaker, no ejection): attempts / requests <= 1.3 and retries are skipped', async () => {
    const fetch = createMeshFetch(mesh);
    for (const s of backends) s.reset();
    const started = performance.now();
    const outcomes = await runPaced(TOTAL, RATE, (i) => call(fetch, `http://api-budget-only/item/${i}`));
    const bar = outageBar(1.3, TOTAL, PLANNED_MS, performance.now() - started);
    const attempts = totalCount(backends);

    const kinds = tally(outcomes.map(outcomeKind));
    assert.deepEqual([...kinds], [['status 503', TOTAL]], 'every caller should get the 503 response');
    const ratio = attempts / TOTAL;
    assert.ok(
      ratio <= bar,
      `attempts / requests = ${attempts} / ${TOTAL} = ${ratio.toFixed(3)} (want <= ${bar.toFixed(3)}: 1.3 for a run on time)`,
    );
    assert.ok(attempts > TOTAL, 'some 503s should have been retried');

    const stats = mesh.stats().services['api-budget-only'];
    assert.equal(stats.requests, TOTAL);
    assert.equal(stats.retries, attempts - TOTAL, 'stats.retries should equal the attempts after the first');
    assert.ok(stats.retriesSkippedByBudget > 0, `retriesSkippedByBudget = ${stats.retriesSkippedByBudget}`);
  });

  it('a call that got a 503 and whose retry finds every breaker open returns that 503, not an error', async () => {
    const fetch = createMeshFetch(mesh);
    for (const s of backends) s.reset();
    const o = await call(fetch, 'http://api-one-strike/item');
    assert.equal(backends[0].count, 1);
    // architecture.md: a response that is a failure is returned to the caller as a response, not thrown.
    assert.ok(o.ok, `the upstream's 503 was replaced by ${o.ok ? '' : `${o.code}: ${String(o.error)}`}`);
    assert.equal(o.status, 503);
    assert.equal(o.body, 'down');
  });
});
