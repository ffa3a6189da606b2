import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, WindowedHistogram } from '../../src/stats/histogram.js';
import { seeded } from '../helpers/random.js';

/** Nearest-rank percentile of sorted samples. */
function exact(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

function assertClose(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance * expected,
    `${what}: expected ${expected} within ${tolerance * 100}%, got ${actual}`,
  );
}

const QS = [0.5, 0.9, 0.99, 0.999];

describe('Histogram', () => {
  it('returns 0 when empty', () => {
    const h = new Histogram();
    assert.equal(h.percentile(0.5), 0);
    assert.equal(h.count(), 0);
  });

  it('is within bucket precision of exact percentiles for a uniform distribution', () => {
    const h = new Histogram();
    const samples: number[] = [];
    for (let i = 1; i <= 10_000; i++) {
      const ms = i / 10; // 0.1 … 1000 ms
      samples.push(ms);
      h.record(ms);
    }
    assert.equal(h.count(), 10_000);
    for (const q of QS) assertClose(h.percentile(q), exact(samples, q), 0.05, `p${q * 100}`);
  });

  it('is within bucket precision for a long-tailed (log-normal) distribution', () => {
    const h = new Histogram();
    const random = seeded(42);
    const samples: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      // Box-Muller normal → log-normal around 5 ms with a long tail.
      const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      const ms = Math.exp(Math.log(5) + 1.2 * z);
      samples.push(ms);
      h.record(ms);
    }
    samples.sort((a, b) => a - b);
    for (const q of [0.01, ...QS]) assertClose(h.percentile(q), exact(samples, q), 0.05, `p${q * 100}`);
  });

  it('keeps sub-millisecond values', () => {
    const h = new Histogram();
    h.record(0.004); // 4 µs: exact region
    h.record(0.25);
    assertClose(h.percentile(0), 0.004, 0.2, 'min');
    assertClose(h.percentile(1), 0.25, 0.05, 'max');
  });

  it('clamps values beyond the range and treats negative and NaN as 0', () => {
    const h = new Histogram();
    h.record(10 * 60_000); // 10 minutes
    assert.ok(h.percentile(1) > 120_000 && h.percentile(1) < 140_000, String(h.percentile(1)));
    h.reset();
    h.record(-5);
    h.record(Number.NaN);
    assert.ok(h.percentile(1) < 0.001);
    assert.equal(h.count(), 2);
  });

  it('reset drops every sample', () => {
    const h = new Histogram();
    h.record(10);
    h.reset();
    assert.equal(h.count(), 0);
    assert.equal(h.percentile(0.99), 0);
  });
});

describe('WindowedHistogram', () => {
  it('keeps samples for one to two windows, then drops them', () => {
    let t = 1_000;
    const h = new WindowedHistogram({ now: () => t }, 10_000);
    for (let i = 0; i < 100; i++) h.record(100);
    assertClose(h.percentile(0.5), 100, 0.05, 'p50');

    t += 9_999; // same half
    assert.equal(h.count(), 100);
    t += 1; // rotated: now the previous half, still covered
    assert.equal(h.count(), 100);
    for (let i = 0; i < 100; i++) h.record(1);
    assert.equal(h.count(), 200);
    assertClose(h.percentile(0.25), 1, 0.05, 'p25');
    assertClose(h.percentile(0.75), 100, 0.05, 'p75');

    t += 10_000; // the 100 ms samples leave; the 1 ms ones become previous
    assert.equal(h.count(), 100);
    assertClose(h.percentile(0.99), 1, 0.05, 'p99 after rotation');

    t += 10_000;
    assert.equal(h.count(), 0);
    assert.equal(h.percentile(0.5), 0);
  });

  it('drops everything after an idle gap of two windows or more', () => {
    let t = 0;
    const h = new WindowedHistogram({ now: () => t }, 1_000);
    h.record(5);
    t = 5_500;
    assert.equal(h.count(), 0);
    h.record(7);
    assert.equal(h.count(), 1);
    assertClose(h.percentile(0.5), 7, 0.05, 'p50');
  });

  it('keeps window boundaries aligned, so a late rotation does not stretch the window', () => {
    let t = 0;
    const h = new WindowedHistogram({ now: () => t }, 1_000);
    h.record(5); // half [0, 1000)
    t = 1_900; // rotation: previous = [0, 1000), current = [1000, 2000)
    assert.equal(h.count(), 1);
    t = 2_500; // [0, 1000) is now more than two windows old
    assert.equal(h.count(), 0);
  });

  it('reset drops every sample', () => {
    let t = 0;
    const h = new WindowedHistogram({ now: () => t }, 1_000);
    h.record(5);
    t = 1_200;
    h.record(6);
    h.reset();
    assert.equal(h.count(), 0);
    assert.equal(h.percentile(0.5), 0);
  });
});
