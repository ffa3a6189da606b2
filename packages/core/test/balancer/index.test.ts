import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildPicker,
  defaultBalancerOptions,
  hashString,
  pickerFactories,
  type LoadBalancerName,
} from '../../src/balancer/index.js';
import { makeEndpoints } from '../helpers/endpoints.js';

const NAMES: LoadBalancerName[] = ['p2c-ewma', 'least-request', 'round-robin', 'random', 'ring-hash'];

test('every load balancer name has a factory', () => {
  assert.deepEqual(Object.keys(pickerFactories).sort(), [...NAMES].sort());
  assert.equal(defaultBalancerOptions.ewmaDecayMs, 10_000);
  assert.equal(defaultBalancerOptions.random, Math.random);
});

test('buildPicker builds each balancer with default options', () => {
  const eps = makeEndpoints([1, 2, 3]);
  for (const name of NAMES) {
    const picker = buildPicker(name, eps);
    for (let i = 0; i < 100; i++) {
      const e = picker.pick({ now: 0, avoid: eps[0], hash: hashString(`key-${i}`) });
      assert.ok(e !== undefined && eps.includes(e) && e !== eps[0], name);
    }
    assert.equal(buildPicker(name, []).pick({ now: 0, avoid: undefined, hash: undefined }), undefined, name);
  }
});

test('buildPicker passes the given options through', () => {
  const eps = makeEndpoints([1, 1, 1, 1]);
  let draws = 0;
  const random = () => {
    draws++;
    return 0.99;
  };
  const picker = buildPicker('round-robin', eps, { random });
  assert.equal(picker.pick({ now: 0, avoid: undefined, hash: undefined }), eps[3]);
  assert.equal(draws, 1);
});

test('buildPicker rejects an unknown name, listing the known ones', () => {
  assert.throws(
    () => buildPicker('fastest' as LoadBalancerName, []),
    (err: Error) => err instanceof TypeError && err.message.includes('"fastest"') && err.message.includes('ring-hash'),
  );
  assert.throws(() => buildPicker('toString' as LoadBalancerName, []), TypeError);
});
