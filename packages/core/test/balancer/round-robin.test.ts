import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/endpoint.js';
import { createRoundRobinPicker, roundRobinPickerFactory } from '../../src/balancer/round-robin.js';
import type { PickContext, Picker } from '../../src/balancer/types.js';
import { makeEndpoints } from '../helpers/endpoints.js';

function options(random: () => number) {
  return { ewmaDecayMs: 10_000, random };
}

const ctx: PickContext = { now: 0, avoid: undefined, hash: undefined };

function pickMany(picker: Picker, count: number, context: PickContext = ctx): Endpoint[] {
  const out: Endpoint[] = [];
  for (let i = 0; i < count; i++) out.push(picker.pick(context)!);
  return out;
}

function counts(endpoints: readonly Endpoint[], picks: readonly Endpoint[]): number[] {
  return endpoints.map((e) => picks.filter((p) => p === e).length);
}

function longestRun(picks: readonly Endpoint[], target: Endpoint): number {
  let longest = 0;
  let run = 0;
  for (const p of picks) {
    run = p === target ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

test('empty endpoint set picks undefined', () => {
  assert.equal(createRoundRobinPicker([], options(Math.random)).pick(ctx), undefined);
  assert.equal(roundRobinPickerFactory, createRoundRobinPicker);
});

test('equal weights cycle in order from a random offset', () => {
  const eps = makeEndpoints([1, 1, 1, 1]);
  const picks = pickMany(
    createRoundRobinPicker(
      eps,
      options(() => 0.5),
    ),
    12,
  );
  assert.deepEqual(
    picks.map((p) => eps.indexOf(p)),
    [2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1],
  );
  assert.equal(
    createRoundRobinPicker(
      eps,
      options(() => 0),
    ).pick(ctx),
    eps[0],
  );
  assert.equal(
    createRoundRobinPicker(
      eps,
      options(() => 0.99),
    ).pick(ctx),
    eps[3],
  );
});

test('weights sharing a common factor behave as equal weights', () => {
  const eps = makeEndpoints([2, 2, 2]);
  const picks = pickMany(
    createRoundRobinPicker(
      eps,
      options(() => 0),
    ),
    6,
  );
  assert.deepEqual(
    picks.map((p) => eps.indexOf(p)),
    [0, 1, 2, 0, 1, 2],
  );
});

test('the picker is a snapshot: later changes to the input array do not matter', () => {
  const eps = makeEndpoints([1, 1]);
  const input = [...eps];
  const picker = createRoundRobinPicker(
    input,
    options(() => 0),
  );
  input.length = 0;
  assert.deepEqual(pickMany(picker, 4), [eps[0], eps[1], eps[0], eps[1]]);
});

test('weights 1:3 give exactly 25% / 75% over whole cycles, whatever the offset', () => {
  const eps = makeEndpoints([1, 3]);
  for (const r of [0, 0.3, 0.77]) {
    const [a, b] = counts(
      eps,
      pickMany(
        createRoundRobinPicker(
          eps,
          options(() => r),
        ),
        20_000,
      ),
    );
    assert.equal(a, 5_000);
    assert.equal(b, 15_000);
  }
});

test('weights 2:3:5 are honoured per cycle', () => {
  const eps = makeEndpoints([2, 3, 5]);
  const picks = pickMany(
    createRoundRobinPicker(
      eps,
      options(() => 0.4),
    ),
    10,
  );
  assert.deepEqual(counts(eps, picks), [2, 3, 5]);
});

test('a heavy endpoint is interleaved with the light ones, not bunched', () => {
  const eps = makeEndpoints([1, 1, 1, 1, 4]);
  const heavy = eps[4];
  for (const r of [0, 0.5, 0.9]) {
    const picks = pickMany(
      createRoundRobinPicker(
        eps,
        options(() => r),
      ),
      80,
    );
    assert.ok(longestRun(picks, heavy) <= 2, `longest run of the heavy endpoint ${longestRun(picks, heavy)}`);
    for (let i = 0; i + 4 <= picks.length; i++) {
      const inWindow = picks.slice(i, i + 4).filter((p) => p === heavy).length;
      assert.ok(inWindow >= 1 && inWindow <= 3, `window at ${i} holds ${inWindow} heavy picks`);
    }
  }
});

test('huge weight sums use live EDF: exact per cycle and still interleaved', () => {
  const eps = makeEndpoints([3000, 2000, 1]);
  const cycle = 5001;
  // Phase 0 starts on a cycle boundary, so each cycle is exact.
  const picks = pickMany(
    createRoundRobinPicker(
      eps,
      options(() => 0),
    ),
    2 * cycle,
  );
  assert.deepEqual(counts(eps, picks.slice(0, cycle)), [3000, 2000, 1]);
  assert.deepEqual(counts(eps, picks.slice(cycle)), [3000, 2000, 1]);
  assert.ok(longestRun(picks, eps[0]) <= 2);
  assert.ok(longestRun(picks, eps[1]) <= 1);

  // A random phase shifts the cycle but keeps the long-run shares.
  const shifted = pickMany(
    createRoundRobinPicker(
      eps,
      options(() => 0.63),
    ),
    10 * cycle,
  );
  const [a, b] = counts(eps, shifted);
  assert.ok(Math.abs(a - 30_000) <= 3, `a=${a}`);
  assert.ok(Math.abs(b - 20_000) <= 3, `b=${b}`);
  // The light endpoint is due 5/6 into a cycle: a phase of 0.63 brings it ~0.63 cycles earlier.
  const lightAt = picks.indexOf(eps[2]);
  const shiftedLightAt = shifted.indexOf(eps[2]);
  assert.ok(Math.abs(lightAt - shiftedLightAt - 0.63 * cycle) < 10, `${lightAt} vs ${shiftedLightAt}`);
});

test('avoid: the next endpoint in the cycle is returned instead', () => {
  const eps = makeEndpoints([1, 1, 1]);
  const picker = createRoundRobinPicker(
    eps,
    options(() => 0),
  );
  assert.equal(picker.pick({ now: 0, avoid: eps[0], hash: undefined }), eps[1]);
  assert.equal(picker.pick(ctx), eps[2]);

  const weighted = makeEndpoints([1, 4]);
  for (const r of [0, 0.5]) {
    const p = createRoundRobinPicker(
      weighted,
      options(() => r),
    );
    const avoidHeavy: PickContext = { now: 0, avoid: weighted[1], hash: undefined };
    assert.ok(pickMany(p, 50, avoidHeavy).every((e) => e === weighted[0]));
    const avoidLight: PickContext = { now: 0, avoid: weighted[0], hash: undefined };
    assert.ok(pickMany(p, 50, avoidLight).every((e) => e === weighted[1]));
  }

  const huge = makeEndpoints([3000, 2000, 1]);
  const p = createRoundRobinPicker(
    huge,
    options(() => 0.2),
  );
  const avoidFirst: PickContext = { now: 0, avoid: huge[0], hash: undefined };
  assert.ok(pickMany(p, 1000, avoidFirst).every((e) => e !== huge[0]));
});

test('avoid is ignored when only one endpoint is left', () => {
  const [only] = makeEndpoints([3]);
  const picker = createRoundRobinPicker(
    [only],
    options(() => 0.5),
  );
  assert.equal(picker.pick({ now: 0, avoid: only, hash: undefined }), only);
});
