// PoolSet over a fake mesh: one pool per (authority, endpoint), retired once the endpoint leaves
// its service (one sweep per burst of removals), or once its authority is no longer a service;
// close() does not wait on busy pools past its grace.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint, Mesh, MeshListener } from '@meshlet/core';
import { PoolSet } from '../src/pools.js';

function fakeMesh(services: string[], addresses: string[]) {
  const svc = new Set(services);
  const addr = new Set(addresses);
  const listeners: MeshListener[] = [];
  const mesh = {
    hasService: (n: string) => svc.has(n),
    hasEndpoint: (a: string) => addr.has(a),
    subscribe(l: MeshListener) {
      listeners.push(l);
      return () => listeners.splice(listeners.indexOf(l), 1);
    },
  } as unknown as Mesh;
  return { mesh, svc, addr, listeners };
}

const ep = (address: string): Endpoint => {
  const [host, port] = address.split(':');
  return { address, host, port: Number(port), active: true } as Endpoint;
};

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('PoolSet', () => {
  it('keeps one pool per (authority, endpoint)', async () => {
    const f = fakeMesh(['a', 'b'], ['10.0.0.1:80']);
    const pools = new PoolSet(f.mesh, { pool: {}, drainGraceMs: 1000, closeGraceMs: 100 });
    const e = ep('10.0.0.1:80');
    const p1 = pools.get(e, 'a');
    assert.equal(pools.get(e, 'a'), p1);
    assert.notEqual(pools.get(e, 'b'), p1);
    assert.notEqual(pools.get(ep('10.0.0.1:80'), 'a'), p1, 'another Endpoint object (another service) has its own');
    assert.equal(pools.poolCount, 3);
    await pools.close();
    assert.equal(pools.poolCount, 0);
  });

  it('retires the pools of endpoints that left their service, once per burst of removals', async () => {
    const f = fakeMesh(['a'], ['10.0.0.1:80', '10.0.0.2:80']);
    const pools = new PoolSet(f.mesh, { pool: {}, drainGraceMs: 1000, closeGraceMs: 100 });
    const gone = ep('10.0.0.1:80');
    const kept = ep('10.0.0.2:80');
    pools.get(gone, 'a');
    const keptPool = pools.get(kept, 'a');
    f.addr.delete(gone.address);
    (gone as { active: boolean }).active = false;
    f.listeners[0].endpointRemoved!('a', gone);
    f.listeners[0].endpointRemoved!('a', gone);
    await tick();
    assert.equal(pools.poolCount, 1);
    assert.equal(pools.get(kept, 'a'), keptPool);
    await pools.close();
  });

  it('retires pools whose authority is no longer a service', async () => {
    const f = fakeMesh(['a', 'b'], ['10.0.0.1:80']);
    const pools = new PoolSet(f.mesh, { pool: {}, drainGraceMs: 1000, closeGraceMs: 100 });
    const e = ep('10.0.0.1:80');
    const pa = pools.get(e, 'a');
    pools.get(e, 'b');
    f.svc.delete('b');
    f.listeners[0].endpointRemoved!('x', ep('10.9.9.9:1'));
    await tick();
    assert.equal(pools.poolCount, 1);
    assert.equal(pools.get(e, 'a'), pa);
    f.svc.delete('a');
    f.svc.add('b');
    f.listeners[0].endpointRemoved!('x', ep('10.9.9.9:1'));
    await tick();
    assert.equal(pools.poolCount, 0);
    await pools.close();
  });

  it('a pool for an endpoint already removed serves its request, then goes', async () => {
    const f = fakeMesh(['a'], []);
    const pools = new PoolSet(f.mesh, { pool: {}, drainGraceMs: 1000, closeGraceMs: 100 });
    const e = ep('10.0.0.1:80');
    (e as { active: boolean }).active = false;
    pools.get(e, 'a');
    assert.equal(pools.poolCount, 1);
    await tick();
    assert.equal(pools.poolCount, 0);
    await pools.close();
  });

  it('refuses new pools once closed', async () => {
    const f = fakeMesh(['a'], ['10.0.0.1:80']);
    const pools = new PoolSet(f.mesh, { pool: {}, drainGraceMs: 1000, closeGraceMs: 100 });
    await pools.close();
    assert.throws(
      () => pools.get(ep('10.0.0.1:80'), 'a'),
      (err: { code?: string }) => err.code === 'MESHLET_ERR_CLOSED',
    );
  });
});
