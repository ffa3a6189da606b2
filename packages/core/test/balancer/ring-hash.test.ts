import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/endpoint.js';
import { hashString } from '../../src/balancer/hash.js';
import { createRingHashPicker, ringHashPickerFactory } from '../../src/balancer/ring-hash.js';
import type { PickContext, Picker } from '../../src/balancer/types.js';
import { makeEndpoints } from '../helpers/endpoints.js';
import { seeded } from '../helpers/random.js';

function options(random: () => number = seeded(1)) {
  return { ewmaDecayMs: 10_000, random };
}

const KEYS = Array.from({ length: 10_000 }, (_, i) => hashString(`user-${i}`));

function route(picker: Picker, avoid?: Endpoint): Endpoint[] {
  return KEYS.map((hash) => picker.pick({ now: 0, avoid, hash })!);
}

function shares(endpoints: readonly Endpoint[], picks: readonly Endpoint[]): number[] {
  return endpoints.map((e) => picks.filter((p) => p === e).length / picks.length);
}

function assertShares(actual: number[], expected: number[], tolerance: number): void {
  actual.forEach((s, i) =>
    assert.ok(Math.abs(s - expected[i]) <= tolerance, `endpoint ${i}: share ${s.toFixed(4)}, expected ${expected[i]}`),
  );
}

test('empty endpoint set picks undefined', () => {
  assert.equal(createRingHashPicker([], options()).pick({ now: 0, avoid: undefined, hash: 123 }), undefined);
  assert.equal(ringHashPickerFactory, createRingHashPicker);
});

test('the same key always reaches the same endpoint, whatever the input order', () => {
  const eps = makeEndpoints(Array(10).fill(1));
  const first = route(createRingHashPicker(eps, options(seeded(1))));
  assert.deepEqual(route(createRingHashPicker(eps, options(seeded(2)))), first);
  assert.deepEqual(route(createRingHashPicker([...eps].reverse(), options(seeded(3)))), first);
});

test('keys spread evenly over equal endpoints', () => {
  const eps = makeEndpoints(Array(10).fill(1));
  assertShares(shares(eps, route(createRingHashPicker(eps, options()))), Array(10).fill(0.1), 0.04);
});

test('removing 1 of 10 endpoints remaps only its own keys (≤ 20%)', () => {
  const eps = makeEndpoints(Array(10).fill(1));
  const before = route(createRingHashPicker(eps, options()));
  for (const removed of [0, 4, 9]) {
    const after = route(
      createRingHashPicker(
        eps.filter((_, i) => i !== removed),
        options(),
      ),
    );
    let moved = 0;
    for (let k = 0; k < KEYS.length; k++) {
      if (before[k] !== after[k]) {
        moved++;
        assert.equal(before[k], eps[removed], `key ${k} moved off a surviving endpoint`);
      }
    }
    assert.ok(moved / KEYS.length <= 0.2, `remapped ${moved} of ${KEYS.length}`);
    assert.ok(moved > 0);
  }
});

test('adding an 11th endpoint moves keys only onto it', () => {
  const eps = makeEndpoints(Array(11).fill(1));
  const before = route(createRingHashPicker(eps.slice(0, 10), options()));
  const after = route(createRingHashPicker(eps, options()));
  let moved = 0;
  for (let k = 0; k < KEYS.length; k++) {
    if (before[k] !== after[k]) {
      moved++;
      assert.equal(after[k], eps[10]);
    }
  }
  assert.ok(moved / KEYS.length <= 0.2, `remapped ${moved}`);
});

test('weights set the ring share', () => {
  const pair = makeEndpoints([1, 3]);
  assertShares(shares(pair, route(createRingHashPicker(pair, options()))), [0.25, 0.75], 0.05);
  const five = makeEndpoints([1, 1, 1, 1, 4]);
  assertShares(shares(five, route(createRingHashPicker(five, options()))), [0.125, 0.125, 0.125, 0.125, 0.5], 0.05);
});

test('a very light endpoint still gets its ~100+ nodes and its share of keys', () => {
  const eps = makeEndpoints([1, 1000]);
  const picker = createRingHashPicker(eps, options());
  let light = 0;
  for (let i = 0; i < 200_000; i++) {
    if (picker.pick({ now: 0, avoid: undefined, hash: hashString(`k${i}`) }) === eps[0]) light++;
  }
  // Expected 200 (1/1001 of the keys); with ~100 nodes the arc length varies by ~10%.
  assert.ok(light >= 100 && light <= 400, `light endpoint got ${light}`);
});

test('without a hash, a random endpoint is picked, following weights', () => {
  const eps = makeEndpoints([1, 1, 1, 1]);
  const picker = createRingHashPicker(eps, options(seeded(5)));
  const picks = Array.from({ length: 20_000 }, () => picker.pick({ now: 0, avoid: undefined, hash: undefined })!);
  assertShares(shares(eps, picks), [0.25, 0.25, 0.25, 0.25], 0.02);

  const weighted = makeEndpoints([1, 3]);
  const wp = createRingHashPicker(weighted, options(seeded(6)));
  const wpicks = Array.from({ length: 20_000 }, () => wp.pick({ now: 0, avoid: undefined, hash: undefined })!);
  assertShares(shares(weighted, wpicks), [0.25, 0.75], 0.03);
});

test('hashes beyond the last node wrap to the first', () => {
  const eps = makeEndpoints([1, 1, 1]);
  const picker = createRingHashPicker(eps, options());
  const top = picker.pick({ now: 0, avoid: undefined, hash: 0xffffffff });
  const bottom = picker.pick({ now: 0, avoid: undefined, hash: 0 });
  assert.equal(top, bottom);
  const alt = picker.pick({ now: 0, avoid: top, hash: 0xffffffff });
  assert.ok(alt !== undefined && alt !== top);
});

test('avoid: walks clockwise to the next distinct endpoint, deterministically', () => {
  const eps = makeEndpoints([1, 1, 1, 1, 1]);
  const picker = createRingHashPicker(eps, options());
  const natural = route(picker);
  for (let k = 0; k < 2_000; k++) {
    const ctx: PickContext = { now: 0, avoid: natural[k], hash: KEYS[k] };
    const alt = picker.pick(ctx);
    assert.ok(alt !== undefined && alt !== natural[k]);
    assert.equal(picker.pick(ctx), alt);
  }
  // Avoiding an endpoint the key does not map to changes nothing.
  const other = eps.find((e) => e !== natural[0])!;
  assert.equal(picker.pick({ now: 0, avoid: other, hash: KEYS[0] }), natural[0]);

  const [only] = makeEndpoints([1]);
  assert.equal(createRingHashPicker([only], options()).pick({ now: 0, avoid: only, hash: 42 }), only);
});
