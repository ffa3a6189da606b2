import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/endpoint.js';
import { AliasTable, createRandomPicker, endpointWeight, randomPickerFactory } from '../../src/balancer/random.js';
import type { PickContext, Picker } from '../../src/balancer/types.js';
import { makeEndpoints } from '../helpers/endpoints.js';
import { seeded } from '../helpers/random.js';

function options(random: () => number) {
  return { ewmaDecayMs: 10_000, random };
}

const ctx: PickContext = { now: 0, avoid: undefined, hash: undefined };

function shares(picker: Picker, endpoints: readonly Endpoint[], picks: number, context: PickContext = ctx): number[] {
  const counts = endpoints.map(() => 0);
  for (let i = 0; i < picks; i++) counts[endpoints.indexOf(picker.pick(context)!)]++;
  return counts.map((c) => c / picks);
}

function assertShares(actual: number[], expected: number[], tolerance: number): void {
  actual.forEach((s, i) =>
    assert.ok(Math.abs(s - expected[i]) <= tolerance, `endpoint ${i}: share ${s.toFixed(4)}, expected ${expected[i]}`),
  );
}

test('empty endpoint set picks undefined', () => {
  assert.equal(createRandomPicker([], options(Math.random)).pick(ctx), undefined);
  assert.equal(randomPickerFactory, createRandomPicker);
});

test('equal weights are uniform', () => {
  const eps = makeEndpoints([1, 1, 1, 1]);
  assertShares(shares(createRandomPicker(eps, options(seeded(1))), eps, 20_000), [0.25, 0.25, 0.25, 0.25], 0.02);
});

test('weights 1:3 give 25% / 75% (±3%)', () => {
  const eps = makeEndpoints([1, 3]);
  assertShares(shares(createRandomPicker(eps, options(seeded(2))), eps, 20_000), [0.25, 0.75], 0.03);
});

test('weights 1:2:3:4 are honoured (±2%)', () => {
  const eps = makeEndpoints([1, 2, 3, 4]);
  assertShares(shares(createRandomPicker(eps, options(seeded(3))), eps, 40_000), [0.1, 0.2, 0.3, 0.4], 0.02);
});

test('the alias table is exact: an even grid of draws lands in proportion to weight', () => {
  const weights = [5, 1, 7, 3, 1, 13];
  const total = weights.reduce((a, b) => a + b, 0);
  const table = new AliasTable(weights);
  const draws = 30_000 * total;
  let k = 0;
  const grid = () => (k++ + 0.5) / draws;
  const counts = weights.map(() => 0);
  for (let i = 0; i < draws; i++) counts[table.sample(grid)]++;
  counts.forEach((c, i) => assert.ok(Math.abs(c - 30_000 * weights[i]) <= weights.length, `index ${i}: ${c}`));
});

test('sampleOther never returns the first index, even for skewed weights', () => {
  const random = seeded(4);
  for (const weights of [
    [1, 1],
    [1000, 1],
    [1, 1000, 1],
    [3, 1, 2, 5],
  ]) {
    const table = new AliasTable(weights);
    for (let i = 0; i < 2_000; i++) {
      const a = table.sample(random);
      const b = table.sampleOther(a, random);
      assert.notEqual(a, b);
      assert.ok(b >= 0 && b < weights.length);
    }
  }
});

test('a random() that returns its maximum stays in range', () => {
  const table = new AliasTable([1, 2, 3]);
  const top = () => 1 - Number.EPSILON / 2;
  assert.ok(table.sample(top) < 3);
  assert.ok(table.sampleOther(0, top) < 3);
});

test('avoid: the avoided endpoint is never returned while another exists', () => {
  const eps = makeEndpoints([1, 9, 1]);
  const picker = createRandomPicker(eps, options(seeded(5)));
  const avoidHeavy: PickContext = { now: 0, avoid: eps[1], hash: undefined };
  const s = shares(picker, eps, 5_000, avoidHeavy);
  assert.equal(s[1], 0);
  assert.ok(s[0] > 0 && s[2] > 0);

  const [only] = makeEndpoints([1]);
  assert.equal(createRandomPicker([only], options(seeded(6))).pick({ now: 0, avoid: only, hash: undefined }), only);
});

test('endpointWeight treats non-integer or invalid weights as integers >= 1', () => {
  const [e] = makeEndpoints([1]);
  for (const [w, expected] of [
    [3, 3],
    [2.7, 2],
    [0, 1],
    [-4, 1],
    [NaN, 1],
    [Infinity, 1],
  ]) {
    e.weight = w;
    assert.equal(endpointWeight(e), expected);
  }
});
