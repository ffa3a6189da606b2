// Scenario: three identical backends, one caller sending requests one after another
// (concurrency 1, where in-flight counts tell the balancer nothing). The default balancer must
// spread the load fairly even though whichever endpoint answered first paid the cold connection.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { createMesh } from '@meshlet/core';
import { createMeshDispatcher, createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import type { Mesh } from './helpers/load.ts';

const TOTAL = 600;

describe('p2c-ewma fairness at concurrency 1', () => {
  const servers = new ServerSet();
  const meshes: Mesh[] = [];

  after(async () => {
    await Promise.all(meshes.map((m) => m.close()));
    await servers.closeAll();
  });

  async function fresh(prefix: string): Promise<{ mesh: Mesh; backends: TestServer[] }> {
    const backends = await servers.startMany(prefix, 3);
    const mesh = createMesh({ services: { users: { endpoints: backends.map((s) => s.address) } } });
    meshes.push(mesh);
    return { mesh, backends };
  }

  function assertFair(backends: TestServer[]): void {
    const counts = backends.map((b) => b.count);
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      TOTAL,
    );
    for (const c of counts) assert.ok(c >= TOTAL * 0.2, `counts ${counts.join(' / ')}: one backend got < 20%`);
  }

  it(`${TOTAL} sequential fetches spread over 3 identical backends, none below 20%`, async () => {
    const { mesh, backends } = await fresh('fetch-');
    const fetch = createMeshFetch(mesh);
    for (let i = 0; i < TOTAL; i++) {
      const res = await fetch(`http://users/item/${i}`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    assertFair(backends);
  });

  it(`${TOTAL} sequential undici.request calls through the dispatcher, none below 20%`, async () => {
    const { mesh, backends } = await fresh('request-');
    const dispatcher = createMeshDispatcher(mesh);
    for (let i = 0; i < TOTAL; i++) {
      const res = await request(`http://users/item/${i}`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.arrayBuffer();
    }
    assertFair(backends);
  });
});
