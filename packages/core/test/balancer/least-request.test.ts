import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/endpoint.js';
import { createLeastRequestPicker, leastRequestPickerFactory } from '../../src/balancer/least-request.js';
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

/** Closed loop with `concurrency` requests out, each finishing after `concurrency` more picks. */
function sharesUnderLoad(picker: Picker, endpoints: readonly Endpoint[], picks: number, concurrency: number): number[] {
  const counts = endpoints.map(() => 0);
  const out: Endpoint[] = [];
  for (let i = 0; i < picks; i++) {
    const e = picker.pick(ctx)!;
    counts[endpoints.indexOf(e)]++;
    e.inFlight++;
    out.push(e);
    if (out.length > concurrency) out.shift()!.inFlight--;
  }
  return counts.map((c) => c / picks);
}

function assertShares(actual: number[], expected: number[], tolerance: number): void {
  actual.forEach((s, i) =>
    assert.ok(Math.abs(s - expected[i]) <= tolerance, `endpoint ${i}: share ${s.toFixed(4)}, expected ${expected[i]}`),
  );
}

test('empty endpoint set picks undefined', () => {
  assert.equal(createLeastRequestPicker([], options(Math.random)).pick(ctx), undefined);
  assert.equal(leastRequestPickerFactory, createLeastRequestPicker);
});

test('prefers the endpoint with fewer requests in flight', () => {
  const eps = makeEndpoints([1, 1]);
  eps[0].inFlight = 5;
  assert.deepEqual(shares(createLeastRequestPicker(eps, options(seeded(1))), eps, 1_000), [0, 1]);

  // With ten endpoints, the busiest loses every comparison and the idlest wins every one it is in.
  const ten = makeEndpoints(Array(10).fill(1));
  ten.forEach((e, i) => (e.inFlight = i));
  const s = shares(createLeastRequestPicker(ten, options(seeded(2))), ten, 20_000);
  assert.equal(s[9], 0);
  assert.ok(Math.abs(s[0] - 0.2) <= 0.02, `idlest share ${s[0]}`); // in 2 of every 10 pairs
});

test('in-flight is compared per unit of weight', () => {
  const eps = makeEndpoints([1, 4]);
  eps[0].inFlight = 1;
  eps[1].inFlight = 3; // 3/4 < 1/1
  assert.deepEqual(shares(createLeastRequestPicker(eps, options(seeded(3))), eps, 500), [0, 1]);
  eps[1].inFlight = 5; // 5/4 > 1/1
  assert.deepEqual(shares(createLeastRequestPicker(eps, options(seeded(3))), eps, 500), [1, 0]);
});

test('idle endpoints split traffic by weight: 1:3 gives 25% / 75% (±3%)', () => {
  const eps = makeEndpoints([1, 3]);
  assertShares(shares(createLeastRequestPicker(eps, options(seeded(4))), eps, 20_000), [0.25, 0.75], 0.03);
  const even = makeEndpoints([1, 1, 1, 1]);
  assertShares(
    shares(createLeastRequestPicker(even, options(seeded(5))), even, 20_000),
    [0.25, 0.25, 0.25, 0.25],
    0.02,
  );
});

test('under load, weights 1:3 still give about 25% / 75%', () => {
  const eps = makeEndpoints([1, 3]);
  assertShares(sharesUnderLoad(createLeastRequestPicker(eps, options(seeded(6))), eps, 20_000, 40), [0.25, 0.75], 0.03);
  const mixed = makeEndpoints([1, 1, 2, 4]);
  assertShares(
    sharesUnderLoad(createLeastRequestPicker(mixed, options(seeded(7))), mixed, 40_000, 64),
    [0.125, 0.125, 0.25, 0.5],
    0.03,
  );
});

test('avoid: the other candidate is taken', () => {
  const eps = makeEndpoints([1, 1]);
  eps[1].inFlight = 10;
  const picker = createLeastRequestPicker(eps, options(seeded(8)));
  assert.deepEqual(shares(picker, eps, 200, { now: 0, avoid: eps[0], hash: undefined }), [0, 1]);

  const many = makeEndpoints([1, 5, 1, 1]);
  const s = shares(createLeastRequestPicker(many, options(seeded(9))), many, 5_000, {
    now: 0,
    avoid: many[1],
    hash: undefined,
  });
  assert.equal(s[1], 0);

  const [only] = makeEndpoints([1]);
  assert.equal(
    createLeastRequestPicker([only], options(seeded(10))).pick({ now: 0, avoid: only, hash: undefined }),
    only,
  );
});
