// Scenario: ring-hash on a header keeps each key on one endpoint, and removing one of ten
// endpoints remaps only a small share of the keys.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { call, describeFailures, runConcurrent, type Mesh } from './helpers/load.ts';

const N = 10;

describe('ring-hash: sticky keys and minimal remapping', () => {
  const servers = new ServerSet();
  let backends: TestServer[];
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;

  const config = (list: readonly TestServer[]) => ({
    services: {
      profiles: {
        endpoints: list.map((s) => s.address),
        loadBalancer: 'ring-hash' as const,
        hashKey: { header: 'x-user' },
      },
    },
  });

  /** Which server answers each key (one request per key). */
  async function placement(keys: readonly string[]): Promise<string[]> {
    const outcomes = await runConcurrent(keys.length, 16, (i) =>
      call(fetch, `http://profiles/me?i=${i}`, { headers: { 'x-user': keys[i] } }),
    );
    assert.ok(
      outcomes.every((o) => o.ok && o.status === 200),
      `every request should succeed; e.g. ${describeFailures(outcomes)}`,
    );
    return outcomes.map((o) => (o.ok ? o.body : ''));
  }

  before(async () => {
    backends = await servers.startMany('node-', N);
    mesh = createMesh(config(backends));
    fetch = createMeshFetch(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it('the same key always reaches the same endpoint (200 keys x 3)', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const rounds = [await placement(keys), await placement(keys), await placement(keys)];
    for (let i = 0; i < keys.length; i++) {
      assert.equal(rounds[1][i], rounds[0][i], `${keys[i]} moved between rounds 1 and 2`);
      assert.equal(rounds[2][i], rounds[0][i], `${keys[i]} moved between rounds 1 and 3`);
    }
    // The keys are spread, not all on one or two endpoints.
    const used = new Set(rounds[0]);
    assert.ok(used.size >= 7, `200 keys landed on only ${used.size} of ${N} endpoints`);
  });

  it('removing 1 of 10 endpoints with mesh.update remaps at most 20% of 1000 keys', async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}-${(i * 2654435761) % 100000}`);
    const before = await placement(keys);
    const removed = backends[3];
    await mesh.update(config(backends.filter((s) => s !== removed)));
    const removedCountAtUpdate = removed.count;
    const afterUpdate = await placement(keys);

    assert.equal(removed.count, removedCountAtUpdate, 'the removed endpoint still got traffic after the update');
    assert.ok(!afterUpdate.includes(removed.id));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== removed.id && afterUpdate[i] !== before[i]) moved++;
    }
    const onRemoved = before.filter((s) => s === removed.id).length;
    const remapped = moved + onRemoved;
    assert.ok(onRemoved > 0, 'no key was on the removed endpoint: pick another one');
    assert.ok(
      remapped <= 200,
      `${remapped} of 1000 keys remapped (${onRemoved} from the removed endpoint), want <= 20%`,
    );
  });
});
