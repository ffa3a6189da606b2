import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fullJitterBackoff, jitteredExponential } from '../../src/policy/backoff.js';

const one = (): number => 0.999_999;
const half = (): number => 0.5;
const zero = (): number => 0;

describe('fullJitterBackoff', () => {
  it('is random × min(max, base × 2^(retry-1))', () => {
    assert.equal(fullJitterBackoff(1, 25, 250, half), 12.5);
    assert.equal(fullJitterBackoff(2, 25, 250, half), 25);
    assert.equal(fullJitterBackoff(3, 25, 250, half), 50);
    assert.equal(fullJitterBackoff(4, 25, 250, half), 100);
    assert.equal(fullJitterBackoff(5, 25, 250, half), 125, 'capped at 250');
    assert.equal(fullJitterBackoff(5, 25, 250, zero), 0);
    assert.ok(fullJitterBackoff(5, 25, 250, one) < 250);
  });

  it('stays finite for huge retry numbers and a zero base', () => {
    assert.equal(fullJitterBackoff(10_000, 25, 250, half), 125);
    assert.equal(fullJitterBackoff(10_000, 0, 250, half), 0);
    assert.equal(fullJitterBackoff(0, 25, 250, half), 12.5, 'retry < 1 counts as 1');
  });
});

describe('jitteredExponential', () => {
  it('is min(max, base × 2^(n-1)) × (1 ± jitter)', () => {
    assert.equal(jitteredExponential(1, 1000, 60_000, half), 1000);
    assert.equal(jitteredExponential(3, 1000, 60_000, half), 4000);
    assert.equal(jitteredExponential(10, 1000, 60_000, half), 60_000);
    assert.equal(jitteredExponential(1, 1000, 60_000, zero), 800);
    assert.ok(Math.abs(jitteredExponential(1, 1000, 60_000, one) - 1200) < 0.01);
    assert.equal(jitteredExponential(2, 1000, 60_000, zero, 0.5), 1000);
  });
});
