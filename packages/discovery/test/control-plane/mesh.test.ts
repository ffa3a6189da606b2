// The control-plane client inside a real mesh (createMesh from core): ready after the first
// config, NOT_READY naming the control plane before, a NACKed resource keeps serving its last
// good version, cross-resource problems found by the mesh's merge are NACKed by name,
// registration through mesh.register(), and close() withdrawing it.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh, type Mesh } from '@meshlet/core';
import {
  ENDPOINT_SET_TYPE_URL,
  REGISTRATION_TYPE_URL,
  SERVICE_TYPE_URL,
  encodeEndpointSet,
  encodeService,
  type DiscoveryRequest,
} from '../../src/protocol/index.js';
import { controlPlane } from '../../src/index.js';
import { FakeControlServer } from './fake-server.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ackOf = (nonce: string) => (r: DiscoveryRequest) => r.responseNonce === nonce;
const endpointsOf = (mesh: Mesh, service: string) => mesh.stats().services[service]?.endpoints.map((e) => e.address);

async function setup() {
  const server = await new FakeControlServer().start();
  cleanups.push(() => server.stop());
  const mesh = createMesh({
    service: 'orders',
    discovery: [controlPlane({ address: server.address, backoff: { initialMs: 20, maxMs: 100 } })],
  });
  cleanups.push(() => mesh.close());
  const stream = await server.stream(0);
  return { server, mesh, stream };
}

describe('controlPlane in a real mesh', () => {
  it('is not ready (NOT_READY names the control plane) until both types arrived, then serves them', async () => {
    const { server, mesh, stream } = await setup();
    await assert.rejects(
      mesh.ready({ timeoutMs: 50 }),
      (e: Error & { code?: string }) =>
        e.code === 'MESHLET_ERR_NOT_READY' && e.message.includes(`control plane ${server.address}`),
    );
    stream.send({
      typeUrl: SERVICE_TYPE_URL,
      versionInfo: '1',
      nonce: 'a',
      resources: [encodeService('users', { retry: { maxAttempts: 2 } })],
    });
    await stream.next(ackOf('a'));
    assert.equal(mesh.isReady, false);
    stream.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '1',
      nonce: 'b',
      resources: [encodeEndpointSet('users', ['127.0.0.1:4001', '127.0.0.1:4002'])],
    });
    await mesh.ready({ timeoutMs: 2000 });
    assert.ok(mesh.hasService('users'));
    assert.deepEqual(endpointsOf(mesh, 'users'), ['127.0.0.1:4001', '127.0.0.1:4002']);
  });

  it('a NACKed EndpointSet keeps its last good endpoints in the mesh; a route to a missing service is NACKed by name', async () => {
    const { mesh, stream } = await setup();
    stream.send({
      typeUrl: SERVICE_TYPE_URL,
      versionInfo: '1',
      nonce: 'a',
      resources: [encodeService('users', {}), encodeService('front', {})],
    });
    stream.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '1',
      nonce: 'b',
      resources: [encodeEndpointSet('users', ['127.0.0.1:4001']), encodeEndpointSet('front', ['127.0.0.1:5001'])],
    });
    await mesh.ready({ timeoutMs: 2000 });

    stream.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '2',
      nonce: 'c',
      resources: [encodeEndpointSet('users', ['127.0.0.1:99999']), encodeEndpointSet('front', ['127.0.0.1:5002'])],
    });
    const nack = await stream.next(ackOf('c'));
    assert.equal(nack.errorDetail?.details[0].name, 'users');
    assert.deepEqual(endpointsOf(mesh, 'users'), ['127.0.0.1:4001'], 'last good kept');
    assert.deepEqual(endpointsOf(mesh, 'front'), ['127.0.0.1:5002'], 'valid one applied');

    stream.send({
      typeUrl: SERVICE_TYPE_URL,
      versionInfo: '2',
      nonce: 'd',
      resources: [
        encodeService('users', {}),
        encodeService('front', { routes: [{ backends: [{ service: 'nowhere' }] }] }),
      ],
    });
    const nack2 = await stream.next(ackOf('d'));
    assert.equal(nack2.errorDetail?.details[0].name, 'front');
    assert.match(nack2.errorDetail?.details[0].reason ?? '', /nowhere/);
    assert.deepEqual(endpointsOf(mesh, 'front'), ['127.0.0.1:5002']);
    const status = mesh.discoveryStatus()[0];
    assert.match(status.description, /last NACK of type\.meshlet\.dev\/meshlet\.v1\.Service version "2"/);
  });

  it('mesh.register() goes over the stream; mesh.close() withdraws it before the stream ends', async () => {
    const { mesh, stream } = await setup();
    const pending = mesh.register({ service: 'orders', address: '127.0.0.1:7001', zone: 'a' });
    const req = await stream.next((r) => r.typeUrl === REGISTRATION_TYPE_URL);
    assert.equal(req.registrations[0].endpoint?.address, '127.0.0.1:7001');
    stream.send({ typeUrl: REGISTRATION_TYPE_URL, versionInfo: String(req.registrationRevision), nonce: 'r1' });
    const handle = await pending;
    assert.equal(handle.registration.service, 'orders');

    const closing = mesh.close();
    const last = await stream.next((r) => r.typeUrl === REGISTRATION_TYPE_URL);
    assert.equal(last.registrations.length, 0);
    stream.send({ typeUrl: REGISTRATION_TYPE_URL, versionInfo: String(last.registrationRevision), nonce: 'r2' });
    await closing;
  });
});
