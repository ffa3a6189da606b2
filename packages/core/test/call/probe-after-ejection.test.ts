// An endpoint whose breaker goes half-open while outlier detection has it ejected must still
// get its probe once the ejection ends; otherwise it stays half-open with no traffic forever
// (seen in the demo: a recovered backend got 0 of 200 calls).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../../src/mesh.js';
import { fakeProtocol, get, ok, refused } from '../helpers/fake-protocol.js';

describe('half-open probe and ejection', () => {
  const mesh = createMesh({
    services: {
      s: {
        endpoints: ['a:1', 'b:1'],
        loadBalancer: 'round-robin',
        retry: { maxAttempts: 1 },
        circuitBreaker: { consecutiveFailures: 2, errorRatePercent: 0, backoff: { baseMs: 100, maxMs: 100 } },
        outlierDetection: {
          consecutiveFailures: 2,
          intervalMs: 100,
          baseEjectionMs: 400,
          maxEjectionMs: 400,
          successRate: false,
        },
      },
    },
  });
  after(() => mesh.close({ graceMs: 0 }));

  it('probes the endpoint once its ejection ends, and closes the breaker when the probe succeeds', async () => {
    let aHealthy = false;
    const proto = fakeProtocol((ep) => (ep.address === 'a:1' && !aHealthy ? refused() : ok(ep)));
    // Fail a twice: its breaker opens and the outlier detector ejects it.
    for (let i = 0; i < 6; i++) await mesh.call('s', get(), proto).catch(() => {});
    const a = () => mesh.stats().services.s.endpoints.find((e) => e.address === 'a:1')!;
    assert.equal(a().ejections, 1, 'a was ejected');
    aHealthy = true;
    // The breaker goes half-open (~100 ms) while a is still ejected (400 ms); keep traffic going
    // (for up to 10 s: a bound for a loaded machine, the loop ends once a is healthy).
    const until = Date.now() + 10_000;
    let reachedA = 0;
    while (Date.now() < until && a().state !== 'healthy') {
      const res = await mesh.call('s', get(), proto);
      if (res.endpoint === 'a:1') reachedA++;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(a().state, 'healthy', `a stayed ${a().state}`);
    assert.ok(reachedA >= 1, 'the probe reached a');
  });
});
