// p2c-ewma through the whole engine at concurrency 1, on a fake clock: identical backends share
// traffic fairly even when one paid a cold start, and a slow backend still gets little.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../../src/mesh.js';
import type { Endpoint } from '../../src/endpoint.js';
import { fakeProtocol, get, type FakeRes } from '../helpers/fake-protocol.js';
import { seeded } from '../helpers/random.js';

/** Sends `n` sequential calls; `latency(ep, nth)` is how long the fake clock says each took. */
async function sequential(n: number, latency: (ep: Endpoint, nth: number) => number, seed: number) {
  let now = 0;
  const random = seeded(seed);
  const mesh = createMesh({
    services: { s: { endpoints: ['a:1', 'b:1', 'c:1'] } },
    clock: { now: () => now },
    random,
  });
  const seen = new Map<string, number>();
  const p = fakeProtocol((ep): Promise<FakeRes> => {
    const nth = seen.get(ep.address) ?? 0;
    seen.set(ep.address, nth + 1);
    now += latency(ep, nth);
    return Promise.resolve({ status: 200, endpoint: ep.address });
  });
  for (let i = 0; i < n; i++) {
    await mesh.call('s', get(), p);
    now += 0.05; // the caller's own work between calls
  }
  await mesh.close();
  return ['a:1', 'b:1', 'c:1'].map((a) => (seen.get(a) ?? 0) / n);
}

test('identical backends share 600 sequential calls fairly although the first call paid a cold start', async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const jitter = seeded(seed * 7);
    let first = true;
    const shares = await sequential(
      600,
      () => {
        const cold = first;
        first = false;
        // A cold connection and JIT on the very first call: 30x a normal one.
        return cold ? 15 : 0.4 + jitter() * 0.2;
      },
      seed,
    );
    for (const s of shares) assert.ok(s >= 0.2, `seed ${seed}: shares ${shares.map((x) => x.toFixed(3)).join(' ')}`);
  }
});

test('a backend 100 ms slower than its peers gets under 10% of sequential calls', async () => {
  for (const seed of [1, 2, 3]) {
    const jitter = seeded(seed * 11);
    const shares = await sequential(600, (ep) => (ep.address === 'c:1' ? 100 : 1) + jitter() * 0.5, seed);
    assert.ok(shares[2] < 0.1, `seed ${seed}: slow share ${shares[2].toFixed(3)}`);
    assert.ok(shares[2] > 0, 'the slow one is still probed now and then');
  }
});
