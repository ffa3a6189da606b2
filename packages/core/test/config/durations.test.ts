/**
 * Every duration the config accepts is one a Node timer honours: setTimeout and setInterval turn a
 * delay above 2^31 − 1 ms into 1 ms, so a config asking for a 30-day ejection would eject for 1 ms.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMesh } from '../../src/mesh.js';
import { jitteredExponential } from '../../src/policy/backoff.js';
import { MAX_BREAKER_BACKOFF_MS, MAX_DURATION_MS, validateMeshConfig } from '../../src/config/validate.js';
import { assertIssue, configError } from './config-error.js';

/** Each ms-valued key capped by the timer limit (timeout.requestMs has its own cap of one hour, below). */
const DURATIONS: Array<{ key: string; min: number; max?: number; at: (v: number) => Record<string, unknown> }> = [
  { key: 'ewmaDecayMs', min: 1, at: (v) => ({ ewmaDecayMs: v }) },
  { key: 'retry.backoff.baseMs', min: 0, at: (v) => ({ retry: { backoff: { baseMs: v } } }) },
  { key: 'retry.backoff.maxMs', min: 0, at: (v) => ({ retry: { backoff: { maxMs: v } } }) },
  { key: 'circuitBreaker.windowMs', min: 100, at: (v) => ({ circuitBreaker: { windowMs: v } }) },
  {
    key: 'circuitBreaker.backoff.baseMs',
    min: 1,
    max: MAX_BREAKER_BACKOFF_MS,
    at: (v) => ({ circuitBreaker: { backoff: { baseMs: v } } }),
  },
  {
    key: 'circuitBreaker.backoff.maxMs',
    min: 1,
    max: MAX_BREAKER_BACKOFF_MS,
    at: (v) => ({ circuitBreaker: { backoff: { maxMs: v } } }),
  },
  { key: 'outlierDetection.intervalMs', min: 10, at: (v) => ({ outlierDetection: { intervalMs: v } }) },
  { key: 'outlierDetection.baseEjectionMs', min: 1, at: (v) => ({ outlierDetection: { baseEjectionMs: v } }) },
  { key: 'outlierDetection.maxEjectionMs', min: 1, at: (v) => ({ outlierDetection: { maxEjectionMs: v } }) },
];

const users = (extra: Record<string, unknown>) => ({ services: { users: { endpoints: ['10.0.0.1:80'], ...extra } } });

function get(obj: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], obj);
}

describe('durations', () => {
  it('caps at the largest delay a Node timer honours', () => {
    assert.equal(MAX_DURATION_MS, 2 ** 31 - 1);
  });

  for (const d of DURATIONS) {
    it(`${d.key}: rejects values a timer cannot honour, naming the path and the value`, () => {
      const path = `services.users.${d.key}`;
      const why =
        d.max === undefined
          ? ''
          : ' (2147483647 / 1.2: the open time gets up to +20% jitter and must fit a Node timer)';
      assertIssue(
        () => validateMeshConfig(users(d.at(3_000_000_000))),
        path,
        `expected an integer from ${d.min} to ${d.max ?? 2147483647}${why}, got 3000000000`,
      );
      configError(() => validateMeshConfig(users(d.at(2 ** 31))));
      configError(() => validateMeshConfig(users(d.at(Infinity))));
      configError(() => validateMeshConfig(users(d.at(Number.MAX_VALUE))));
      configError(() => validateMeshConfig(users(d.at(1.5))));
      configError(() => validateMeshConfig(users(d.at(d.min - 1))));
    });

    it(`${d.key}: accepts the largest honoured value`, () => {
      const max = d.max ?? MAX_DURATION_MS;
      const s = validateMeshConfig(users(d.at(max))).services.get('users')!;
      assert.equal(get(s, d.key), max);
      configError(() => validateMeshConfig(users(d.at(max + 1))));
    });
  }

  it('names the exact message of the issue for a 35-day ejection cap', () => {
    assertIssue(
      () => validateMeshConfig(users({ outlierDetection: { maxEjectionMs: 3_000_000_000 } })),
      'services.users.outlierDetection.maxEjectionMs',
      'expected an integer from 1 to 2147483647, got 3000000000',
    );
  });

  it('keeps the cross-key bounds (maxMs >= baseMs) and the request cap of one hour', () => {
    assertIssue(
      () => validateMeshConfig(users({ circuitBreaker: { backoff: { baseMs: 5000, maxMs: 4000 } } })),
      'services.users.circuitBreaker.backoff.maxMs',
      'expected an integer >= baseMs (5000), got 4000',
    );
    assertIssue(
      () => validateMeshConfig(users({ timeout: { requestMs: 2 ** 31 } })),
      'services.users.timeout.requestMs',
      'expected an integer from 1 to 3600000, got 2147483648',
    );
    assertIssue(
      () => validateMeshConfig(users({ retry: { budget: { ttlMs: 2 ** 31 } } })),
      'services.users.retry.budget.ttlMs',
      'expected an integer from 1000 to 60000, got 2147483648',
    );
  });

  it('keeps the breaker open time, jitter included, within the timer limit', () => {
    // The breaker hands opossum jitteredExponential(...) as a setTimeout delay: its top must fit.
    const top = jitteredExponential(60, MAX_BREAKER_BACKOFF_MS, MAX_BREAKER_BACKOFF_MS, () => 1 - Number.EPSILON);
    assert.ok(top <= MAX_DURATION_MS, `${top} > ${MAX_DURATION_MS}`);
    assert.ok(top > MAX_DURATION_MS - 10, 'the cap should not waste the range');
  });

  it('lets a base at the cap lift the default maximum to the cap, not past it', () => {
    const s = validateMeshConfig(
      users({ outlierDetection: { baseEjectionMs: MAX_DURATION_MS }, retry: { backoff: { baseMs: MAX_DURATION_MS } } }),
    ).services.get('users')!;
    assert.equal(s.outlierDetection.maxEjectionMs, MAX_DURATION_MS);
    assert.equal(s.retry.backoff.maxMs, MAX_DURATION_MS);
  });

  it('statsWindowMs: an integer from 100 to 2147483647', async () => {
    assertIssue(
      () => createMesh({ services: {}, statsWindowMs: 3_000_000_000 }),
      'statsWindowMs',
      'expected an integer from 100 to 2147483647, got 3000000000',
    );
    assertIssue(
      () => createMesh({ services: {}, statsWindowMs: 99 }),
      'statsWindowMs',
      'expected an integer >= 100, got 99',
    );
    assertIssue(
      () => createMesh({ services: {}, statsWindowMs: 150.5 }),
      'statsWindowMs',
      'expected an integer from 100 to 2147483647, got 150.5',
    );
    const mesh = createMesh({ services: {}, statsWindowMs: MAX_DURATION_MS });
    await mesh.close();
  });

  it('normalises -0 to 0 where 0 is allowed', () => {
    const s = validateMeshConfig(users({ retry: { backoff: { baseMs: -0 } } })).services.get('users')!;
    assert.ok(Object.is(s.retry.backoff.baseMs, 0));
  });
});
