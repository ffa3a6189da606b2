// Reconnect delays: initial × multiplier^n capped at maxMs, spread ± jitter, reset to the start.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../src/control-plane/backoff.js';
import { CONTROL_PLANE_DEFAULTS } from '../../src/control-plane/options.js';

describe('Backoff', () => {
  it('grows by the multiplier up to the cap (DESIGN defaults: 1 s × 1.6 up to 120 s)', () => {
    const b = new Backoff({ ...CONTROL_PLANE_DEFAULTS.backoff }, () => 0.5); // 0.5 = no jitter
    const delays = Array.from({ length: 13 }, () => b.next());
    assert.deepEqual(delays.slice(0, 5), [1000, 1600, 2560, 4096, 6554]);
    assert.equal(delays[11], 120_000);
    assert.equal(delays[12], 120_000);
  });

  it('spreads each delay by ±jitter', () => {
    const low = new Backoff({ initialMs: 1000, multiplier: 2, maxMs: 10_000, jitter: 0.2 }, () => 0);
    const high = new Backoff({ initialMs: 1000, multiplier: 2, maxMs: 10_000, jitter: 0.2 }, () => 0.999999);
    assert.equal(low.next(), 800);
    assert.equal(high.next(), 1200);
    assert.equal(low.next(), 1600);
    assert.equal(high.next(), 2400);
  });

  it('reset() starts over', () => {
    const b = new Backoff({ initialMs: 100, multiplier: 3, maxMs: 1000, jitter: 0 });
    b.next();
    b.next();
    b.reset();
    assert.equal(b.next(), 100);
  });
});
