// Scenario: the undici dispatcher and the fetch wrapper send mesh services through the mesh and
// everything else straight through; a service without endpoints fails with a clear error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { createMesh, MeshError } from '@meshlet/core';
import { createMeshDispatcher, createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import type { Mesh } from './helpers/load.ts';

function totalRequests(mesh: Mesh): number {
  return Object.values(mesh.stats().services).reduce((sum, s) => sum + s.requests, 0);
}

describe('dispatcher and pass-through', () => {
  const servers = new ServerSet();
  let meshed: TestServer;
  let plain: TestServer;
  let mesh: Mesh;
  let dispatcher: ReturnType<typeof createMeshDispatcher>;
  let fetch: ReturnType<typeof createMeshFetch>;

  before(async () => {
    meshed = await servers.start('meshed');
    plain = await servers.start('plain', { status: 201, body: 'plain body', headers: { 'x-plain': 'yes' } });
    mesh = createMesh({ services: { svc: { endpoints: [meshed.address] } } });
    dispatcher = createMeshDispatcher(mesh);
    fetch = createMeshFetch(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it('undici.request to http://svc/path goes through the mesh', async () => {
    const res = await request('http://svc/path?q=1', { dispatcher, headers: { 'x-probe': 'mesh' } });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'meshed');
    assert.equal(meshed.count, 1);
    assert.equal(meshed.requests[0].url, '/path?q=1');
    assert.equal(meshed.requests[0].method, 'GET');
    assert.equal(meshed.requests[0].headers['x-probe'], 'mesh');
    const svc = mesh.stats().services.svc;
    assert.equal(svc.requests, 1);
    assert.equal(svc.successes, 1);
    assert.equal(svc.endpoints[0].requests, 1);
  });

  it('undici.request to a non-mesh URL through the same dispatcher passes through untouched', async () => {
    const before = totalRequests(mesh);
    const res = await request(`${plain.url}/plain/x?y=2`, {
      dispatcher,
      method: 'POST',
      headers: { 'x-probe': 'plain', 'content-type': 'text/plain' },
      body: 'hello plain',
    });
    assert.equal(res.statusCode, 201);
    assert.equal(res.headers['x-plain'], 'yes');
    assert.equal(await res.body.text(), 'plain body');
    assert.equal(plain.count, 1);
    const r = plain.requests[0];
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/plain/x?y=2');
    assert.equal(r.headers.host, plain.address);
    assert.equal(r.headers['x-probe'], 'plain');
    assert.equal(r.body.toString(), 'hello plain');
    assert.equal(totalRequests(mesh), before, 'a non-mesh request was counted as a mesh call');
  });

  it('createMeshFetch with a non-mesh URL passes through', async () => {
    const before = totalRequests(mesh);
    plain.reset();
    const res = await fetch(`${plain.url}/via-fetch`, { headers: { 'x-probe': 'fetch' } });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-plain'), 'yes');
    assert.equal(await res.text(), 'plain body');
    assert.equal(plain.count, 1);
    assert.equal(plain.requests[0].url, '/via-fetch');
    assert.equal(plain.requests[0].headers['x-probe'], 'fetch');
    assert.equal(totalRequests(mesh), before, 'a non-mesh request was counted as a mesh call');

    // And a mesh URL through the same fetch goes through the mesh.
    const meshRes = await fetch('http://svc/via-fetch');
    assert.equal(meshRes.status, 200);
    assert.equal(await meshRes.text(), 'meshed');
    assert.equal(mesh.stats().services.svc.requests, 2);
  });
});

describe('service without endpoints', () => {
  it('a mesh service with no endpoints rejects with MESHLET_ERR_NO_ENDPOINTS naming the service', async () => {
    // Its own mesh, so the pass-through tests above do not depend on this one.
    const mesh = createMesh({ services: { 'ghost-svc': { endpoints: [] } } });
    try {
      await expectNoEndpoints(mesh);
    } finally {
      await mesh.close();
    }
  });
});

async function expectNoEndpoints(mesh: Mesh): Promise<void> {
  const fetch = createMeshFetch(mesh);
  const dispatcher = createMeshDispatcher(mesh);
  const viaFetch = await fetch('http://ghost-svc/x').then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(viaFetch instanceof MeshError, `expected a MeshError, got ${String(viaFetch)}`);
  assert.equal(viaFetch.code, 'MESHLET_ERR_NO_ENDPOINTS');
  assert.match(viaFetch.message, /ghost-svc/);

  const viaDispatcher = await request('http://ghost-svc/x', { dispatcher }).then(
    async (res) => {
      await res.body.text();
      return undefined;
    },
    (err: unknown) => err,
  );
  assert.ok(viaDispatcher instanceof MeshError, `expected a MeshError, got ${String(viaDispatcher)}`);
  assert.equal(viaDispatcher.code, 'MESHLET_ERR_NO_ENDPOINTS');
  assert.match(viaDispatcher.message, /ghost-svc/);
}

describe('a closed mesh', () => {
  it('rejects dispatcher and fetch calls with MESHLET_ERR_CLOSED naming what is closed', async () => {
    const servers = new ServerSet();
    const backend = await servers.start('closed-');
    const mesh = createMesh({ services: { svc: { endpoints: [backend.address] } } });
    const dispatcher = createMeshDispatcher(mesh);
    const fetch = createMeshFetch(mesh);
    await mesh.close();
    try {
      const viaDispatcher = await request('http://svc/x', { dispatcher }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(viaDispatcher instanceof MeshError, `got ${String(viaDispatcher)}`);
      assert.equal(viaDispatcher.code, 'MESHLET_ERR_CLOSED');
      const viaFetch = await fetch('http://svc/x').then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(viaFetch instanceof MeshError, `got ${String(viaFetch)}`);
      assert.equal(viaFetch.code, 'MESHLET_ERR_CLOSED');
      assert.match(viaFetch.message, /closed/);
      assert.equal(backend.count, 0);
    } finally {
      await servers.closeAll();
    }
  });
});
