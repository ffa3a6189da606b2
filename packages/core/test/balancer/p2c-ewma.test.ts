import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/endpoint.js';
import { createP2cEwmaPicker, p2cEwmaPickerFactory } from '../../src/balancer/p2c-ewma.js';
import type { PickContext, Picker } from '../../src/balancer/types.js';
import { makeEndpoints } from '../helpers/endpoints.js';
import { seeded } from '../helpers/random.js';

const DECAY_MS = 10_000;

function options(random: () => number) {
  return { ewmaDecayMs: DECAY_MS, random };
}

function at(now: number, avoid?: Endpoint): PickContext {
  return { now, avoid, hash: undefined };
}

function shares(picker: Picker, endpoints: readonly Endpoint[], picks: number, context: PickContext): number[] {
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
  assert.equal(createP2cEwmaPicker([], options(Math.random)).pick(at(0)), undefined);
  assert.equal(p2cEwmaPickerFactory, createP2cEwmaPicker);
});

test('prefers the low-latency endpoint', () => {
  const eps = makeEndpoints([1, 1]);
  eps[0].observeLatency(5, 0, DECAY_MS);
  eps[1].observeLatency(50, 0, DECAY_MS);
  assert.deepEqual(shares(createP2cEwmaPicker(eps, options(seeded(1))), eps, 1_000, at(0)), [1, 0]);

  // Of three, the fast one wins every pair it is in (2 of 3 pairs).
  const three = makeEndpoints([1, 1, 1]);
  three[0].observeLatency(5, 0, DECAY_MS);
  three[1].observeLatency(50, 0, DECAY_MS);
  three[2].observeLatency(80, 0, DECAY_MS);
  const s = shares(createP2cEwmaPicker(three, options(seeded(2))), three, 20_000, at(0));
  assert.ok(Math.abs(s[0] - 2 / 3) <= 0.02, `fast share ${s[0]}`);
  assert.equal(s[2], 0);
});

test('an idle slow endpoint decays and is picked again', () => {
  const eps = makeEndpoints([1, 1]);
  const [fast, slow] = eps;
  fast.observeLatency(5, 0, DECAY_MS);
  slow.observeLatency(50, 0, DECAY_MS);
  const picker = createP2cEwmaPicker(eps, options(seeded(3)));
  // The fast one keeps answering in 5 ms; the slow one gets nothing and its estimate decays.
  fast.observeLatency(5, 10_000, DECAY_MS);
  assert.equal(picker.pick(at(10_000)), fast); // slow ≈ 18.4 ms
  fast.observeLatency(5, 30_000, DECAY_MS);
  assert.equal(picker.pick(at(30_000)), slow); // slow ≈ 2.5 ms
});

test('a sample above the estimate counts in full at once (peak)', () => {
  const eps = makeEndpoints([1, 1]);
  eps[0].observeLatency(10, 0, DECAY_MS);
  eps[1].observeLatency(20, 0, DECAY_MS);
  const picker = createP2cEwmaPicker(eps, options(seeded(4)));
  assert.equal(picker.pick(at(1)), eps[0]);
  eps[0].observeLatency(100, 2, DECAY_MS);
  assert.equal(picker.pick(at(3)), eps[1]);
});

test('requests in flight raise the cost, per unit of weight', () => {
  const eps = makeEndpoints([1, 1]);
  eps.forEach((e) => e.observeLatency(10, 0, DECAY_MS));
  eps[0].inFlight = 3;
  assert.deepEqual(shares(createP2cEwmaPicker(eps, options(seeded(5))), eps, 500, at(0)), [0, 1]);

  const weighted = makeEndpoints([1, 4]);
  weighted.forEach((e) => e.observeLatency(10, 0, DECAY_MS));
  weighted[0].inFlight = 2; // 10 × (2/1 + 1) = 30
  weighted[1].inFlight = 4; // 10 × (4/4 + 1) = 20
  assert.deepEqual(shares(createP2cEwmaPicker(weighted, options(seeded(6))), weighted, 500, at(0)), [0, 1]);
  weighted[1].inFlight = 12; // 10 × (12/4 + 1) = 40
  assert.deepEqual(shares(createP2cEwmaPicker(weighted, options(seeded(6))), weighted, 500, at(0)), [1, 0]);
});

test('equal costs split traffic by weight: 1:3 gives 25% / 75% (±3%)', () => {
  const fresh = makeEndpoints([1, 3]);
  assertShares(shares(createP2cEwmaPicker(fresh, options(seeded(7))), fresh, 20_000, at(0)), [0.25, 0.75], 0.03);

  const even = makeEndpoints([1, 1, 1, 1]);
  even.forEach((e) => e.observeLatency(7, 0, DECAY_MS));
  assertShares(
    shares(createP2cEwmaPicker(even, options(seeded(8))), even, 20_000, at(5)),
    [0.25, 0.25, 0.25, 0.25],
    0.02,
  );
});

test('under load with equal latency, weights 1:3 give about 25% / 75%', () => {
  const eps = makeEndpoints([1, 3]);
  eps.forEach((e) => e.observeLatency(10, 0, DECAY_MS));
  const picker = createP2cEwmaPicker(eps, options(seeded(9)));
  const counts = [0, 0];
  const out: Endpoint[] = [];
  for (let i = 0; i < 20_000; i++) {
    const e = picker.pick(at(0))!;
    counts[eps.indexOf(e)]++;
    e.inFlight++;
    out.push(e);
    if (out.length > 40) out.shift()!.inFlight--;
  }
  assertShares([counts[0] / 20_000, counts[1] / 20_000], [0.25, 0.75], 0.03);
});

test('a new endpoint attracts traffic until its first sample, one probe at a time', () => {
  const eps = makeEndpoints([1, 1]);
  const [known, fresh] = eps;
  known.observeLatency(10, 0, DECAY_MS);
  const picker = createP2cEwmaPicker(eps, options(seeded(10)));
  assert.equal(picker.pick(at(1)), fresh);
  fresh.inFlight = 1; // its first request is out: not flooded meanwhile
  assert.equal(picker.pick(at(1)), known);
  known.inFlight = 50;
  assert.equal(picker.pick(at(1)), known);
  fresh.inFlight = 0;
  known.inFlight = 0;
  fresh.observeLatency(20, 2, DECAY_MS);
  assert.equal(picker.pick(at(2)), known);
});

test('avoid: the other candidate is taken', () => {
  const eps = makeEndpoints([1, 1]);
  eps[0].observeLatency(1, 0, DECAY_MS);
  eps[1].observeLatency(100, 0, DECAY_MS);
  const picker = createP2cEwmaPicker(eps, options(seeded(11)));
  assert.deepEqual(shares(picker, eps, 200, at(0, eps[0])), [0, 1]);

  const many = makeEndpoints([1, 6, 1, 1]);
  const s = shares(createP2cEwmaPicker(many, options(seeded(12))), many, 5_000, at(0, many[1]));
  assert.equal(s[1], 0);

  const [only] = makeEndpoints([1]);
  assert.equal(createP2cEwmaPicker([only], options(seeded(13))).pick(at(0, only)), only);
});
