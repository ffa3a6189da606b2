// Scenario: backends that never answer while the mesh changes under the call — its service is
// removed by update(), or the mesh is closed. Every call still ends on time with a clear code, and
// close() resolves within its grace period, sockets released.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { createMesh, MeshError } from '@meshlet/core';
import { createMeshDispatcher, createMeshFetch } from '@meshlet/http';
import { ServerSet } from './helpers/servers.ts';
import { withLag } from './helpers/lag.ts';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof MeshError ? err.code : `non-mesh: ${String(err)}`;
  }
}

describe('lifecycle: deadlines hold through update() and close()', () => {
  const servers = new ServerSet();
  after(() => servers.closeAll());

  it('close() resolves within its grace period while a backend never answers; the call fails with MESHLET_ERR_CLOSED', async () => {
    const hung = await servers.start('hung-close', { mode: 'hang' });
    const mesh = createMesh({ services: { users: { endpoints: [hung.address], timeout: { requestMs: 60_000 } } } });
    const fetch = createMeshFetch(mesh);
    const dispatcher = createMeshDispatcher(mesh);
    const viaFetch = codeOf(fetch('http://users/a'));
    const viaRequest = codeOf(request('http://users/b', { dispatcher }));
    while (hung.inFlight < 2) await new Promise((r) => setTimeout(r, 5));
    const started = performance.now();
    await mesh.close({ graceMs: 200 });
    const took = performance.now() - started;
    assert.ok(took < 3000, `close() took ${took.toFixed(0)} ms with a 200 ms grace period`);
    assert.equal(await viaFetch, 'MESHLET_ERR_CLOSED');
    assert.equal(await viaRequest, 'MESHLET_ERR_CLOSED');
    // The hung requests' sockets were released.
    const deadline = performance.now() + 2000;
    while (hung.inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(hung.inFlight, 0, 'the backend still holds the hung requests: their sockets were not closed');
    assert.equal(await codeOf(fetch('http://users/c')), 'MESHLET_ERR_CLOSED');
  });

  it('close() without a grace period waits for a call that is about to finish', async () => {
    const slowish = await servers.start('slowish', { latencyMs: 100 });
    const mesh = createMesh({ services: { users: { endpoints: [slowish.address] } } });
    const fetch = createMeshFetch(mesh);
    const pending = fetch('http://users/x');
    while (slowish.inFlight < 1) await new Promise((r) => setTimeout(r, 5));
    const closing = mesh.close();
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'slowish');
    await closing;
  });

  it('a call in flight when update() removes its service still ends at its deadline', async () => {
    const hung = await servers.start('hung-update', { mode: 'hang' });
    const other = await servers.start('other');
    const mesh = createMesh({
      services: {
        users: { endpoints: [hung.address], timeout: { requestMs: 300 } },
        orders: { endpoints: [other.address] },
      },
    });
    const fetch = createMeshFetch(mesh);
    const started = performance.now();
    const { value: code, lagMs } = await withLag(async () => {
      const pending = codeOf(fetch('http://users/a'));
      while (hung.inFlight < 1) await new Promise((r) => setTimeout(r, 5));
      mesh.update({ services: { orders: { endpoints: [other.address] } } });
      return pending;
    });
    assert.equal(code, 'MESHLET_ERR_DEADLINE');
    const took = performance.now() - started;
    assert.ok(
      took >= 280 && took < 1500 + lagMs,
      `ended after ${took.toFixed(0)} ms, deadline 300 ms (event-loop lag ${lagMs.toFixed(0)} ms)`,
    );
    // The removed service is unknown now; strictness aside, the URL no longer means a mesh service.
    assert.equal(mesh.hasService('users'), false);
    await mesh.close();
  });
});
