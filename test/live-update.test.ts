// Scenario: the endpoint set is replaced with mesh.update under steady load: no request fails and
// new requests only reach the new servers. An invalid update throws and changes nothing.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMesh, MeshConfigError, MeshError } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, totalCount } from './helpers/servers.ts';
import { call, describeFailures, runConcurrent, type Mesh, type Outcome } from './helpers/load.ts';

/** Returns what `fn` threw or rejected with, or undefined. */
async function thrownBy(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('live update', () => {
  const servers = new ServerSet();
  const meshes: Mesh[] = [];

  after(async () => {
    for (const m of meshes) await m.close();
    await servers.closeAll();
  });

  it('an invalid update throws MeshConfigError and keeps the old config', async () => {
    const old = await servers.startMany('keep-', 2);
    const next = await servers.start('never');
    const mesh = createMesh({ services: { svc: { endpoints: old.map((s) => s.address) } } });
    meshes.push(mesh);
    const fetch = createMeshFetch(mesh);

    const warm = await runConcurrent(20, 4, (i) => call(fetch, `http://svc/a/${i}`));
    assert.ok(
      warm.every((o) => o.ok && o.status === 200),
      describeFailures(warm),
    );

    // Valid endpoints, one invalid field: applying any part of it would move traffic to `next`.
    const err = await thrownBy(() =>
      mesh.update({ services: { svc: { endpoints: [next.address], retry: { maxAttempts: -1 } } } }),
    );
    assert.ok(err instanceof MeshConfigError, `expected MeshConfigError, got ${String(err)}`);
    assert.ok(err instanceof MeshError);
    assert.equal(err.code, 'MESHLET_ERR_CONFIG');
    assert.equal(err.path, 'services.svc.retry.maxAttempts');
    assert.match(err.message, /services\.svc\.retry\.maxAttempts/);
    assert.match(err.message, /-1/);

    const afterBad = await runConcurrent(50, 8, (i) => call(fetch, `http://svc/b/${i}`));
    assert.ok(
      afterBad.every((o) => o.ok && o.status === 200),
      describeFailures(afterBad),
    );
    for (const o of afterBad) assert.match(o.ok ? o.body : '', /^keep-\d$/);
    assert.equal(next.count, 0, 'the rejected config was partly applied');
    // Still one service with the old endpoints.
    const stats = mesh.stats().services.svc;
    assert.deepEqual(stats.endpoints.map((e) => e.address).sort(), old.map((s) => s.address).sort());
  });

  it('replacing every endpoint under load fails no request; new requests only hit the new servers', async () => {
    const old = await servers.startMany('old-', 2, { latencyMs: 5 });
    const fresh = await servers.startMany('new-', 2, { latencyMs: 5 });
    const mesh = createMesh({ services: { svc: { endpoints: old.map((s) => s.address) } } });
    meshes.push(mesh);
    const fetch = createMeshFetch(mesh);

    const results: Array<{ afterUpdate: boolean; outcome: Outcome }> = [];
    let updated = false;
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const afterUpdate = updated;
        results.push({ afterUpdate, outcome: await call(fetch, `http://svc/w${w}/${i}`) });
      }
    };
    const load = Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));

    await sleep(1000);
    const oldCountBeforeUpdate = totalCount(old);
    await mesh.update({ services: { svc: { endpoints: fresh.map((s) => s.address) } } });
    updated = true;
    // Old servers stay up until the update is done, then close gracefully (in-flight requests finish).
    await Promise.all(old.map((s) => s.close({ graceful: true })));
    await sleep(1500);
    stop = true;
    await load;

    const outcomes = results.map((r) => r.outcome);
    const failed = outcomes.filter((o) => !o.ok || o.status !== 200);
    assert.equal(
      failed.length,
      0,
      `${failed.length} of ${outcomes.length} requests failed; e.g. ${describeFailures(failed)}`,
    );
    assert.ok(oldCountBeforeUpdate > 0, 'the old servers got no traffic before the update');

    const afterUpdate = results.filter((r) => r.afterUpdate).map((r) => r.outcome);
    assert.ok(afterUpdate.length >= 50, `only ${afterUpdate.length} requests started after the update`);
    const strays = afterUpdate.filter((o) => !(o.ok && o.body.startsWith('new-')));
    const served = strays.slice(0, 5).map((o) => (o.ok ? o.body : String(o.code)));
    assert.equal(strays.length, 0, `${strays.length} requests started after the update went to: ${served.join(', ')}`);
    for (const s of fresh) assert.ok(s.count > 0, `${s.id} got no traffic`);

    const stats = mesh.stats().services.svc;
    assert.deepEqual(stats.endpoints.map((e) => e.address).sort(), fresh.map((s) => s.address).sort());
    assert.equal(stats.failures, 0);
  });
});
