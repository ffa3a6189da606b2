// The control-plane client against a hand-made test server on 127.0.0.1: subscription, ACK and
// NACK per resource with last-good kept, cross-resource rejection through the mesh's validation,
// state-of-the-world removal, reconnect with resubscription, hostile responses.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateMeshConfig } from '@meshlet/core';
import {
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  encodeEndpointSet,
  encodeService,
  type DiscoveryRequest,
} from '../../src/protocol/index.js';
import { controlPlane } from '../../src/index.js';
import { ControlPlaneError } from '../../src/errors.js';
import { ControlPlaneSource } from '../../src/control-plane/client.js';
import { resolveControlPlaneOptions } from '../../src/control-plane/options.js';
import { FakeControlServer, FakeSink, type FakeStream } from './fake-server.js';

const fast = { initialMs: 20, multiplier: 1.6, maxMs: 200, jitter: 0.2 };
const isAck = (type: string, nonce: string) => (r: DiscoveryRequest) => r.typeUrl === type && r.responseNonce === nonce;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(sinkValidates = true) {
  const server = await new FakeControlServer().start();
  cleanups.push(() => server.stop());
  const sink = new FakeSink();
  if (sinkValidates) sink.validate = (services) => void validateMeshConfig({ services });
  const source = controlPlane({
    address: server.address,
    backoff: fast,
    node: { id: 'test-node', zone: 'z1', metadata: { v: '1' } },
  });
  cleanups.push(() => source.close());
  source.start(sink, { service: 'orders' });
  const stream = await server.stream(0);
  return { server, sink, source, stream };
}

async function push(
  stream: FakeStream,
  type: string,
  version: string,
  nonce: string,
  resources: ReturnType<typeof encodeService>[],
) {
  stream.send({ typeUrl: type, versionInfo: version, nonce, resources });
  return stream.next(isAck(type, nonce));
}

describe('controlPlane client', () => {
  after(() => {});

  it('subscribes to both types with its node, ACKs with version and nonce, and delivers once both arrived', async () => {
    const { sink, stream, source } = await setup();
    const sub1 = await stream.next((r) => r.typeUrl === SERVICE_TYPE_URL);
    assert.equal(sub1.node?.id, 'test-node');
    assert.equal(sub1.node?.cluster, 'orders');
    assert.equal(sub1.node?.zone, 'z1');
    assert.equal(sub1.node?.userAgentName, 'meshlet-node');
    assert.deepEqual({ ...sub1.node?.metadata }, { v: '1' });
    assert.equal(sub1.versionInfo, '');
    assert.equal(sub1.responseNonce, '');
    const sub2 = await stream.next((r) => r.typeUrl === ENDPOINT_SET_TYPE_URL);
    assert.deepEqual(sub2.resourceNames, []);

    const ack1 = await push(stream, SERVICE_TYPE_URL, '1', 'n1', [
      encodeService('users', { retry: { maxAttempts: 2 } }),
    ]);
    assert.equal(ack1.versionInfo, '1');
    assert.equal(ack1.errorDetail, null);
    assert.equal(sink.updates.length, 0, 'nothing delivered before the endpoints arrived');

    const ack2 = await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'n2', [
      encodeEndpointSet('users', ['127.0.0.1:4001']),
      encodeEndpointSet('registered-only', [{ address: '127.0.0.1:4002', zone: 'a' }]),
    ]);
    assert.equal(ack2.versionInfo, '1');
    assert.equal(ack2.errorDetail, null);
    assert.deepEqual(sink.last, {
      users: { retry: { maxAttempts: 2 }, endpoints: [{ address: '127.0.0.1:4001' }] },
      'registered-only': { endpoints: [{ address: '127.0.0.1:4002', zone: 'a' }] },
    });
    assert.match(source.describe(), /connected; Service version "1", EndpointSet version "1"/);
  });

  it('NACKs only the invalid resource, applies the valid ones and keeps the last good version of the invalid one', async () => {
    const { sink, stream, source } = await setup();
    await push(stream, SERVICE_TYPE_URL, '1', 'a', [
      encodeService('users', { retry: { maxAttempts: 2 } }),
      encodeService('billing', {}),
    ]);
    await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'b', [
      encodeEndpointSet('users', ['127.0.0.1:1']),
      encodeEndpointSet('billing', ['127.0.0.1:2']),
    ]);

    const nack = await push(stream, SERVICE_TYPE_URL, '2', 'c', [
      encodeService('users', { retry: { maxAttempts: -1 } }),
      encodeService('billing', { timeout: { requestMs: 500 } }),
      encodeService('new-one', { protocol: 'grpc' }),
    ]);
    assert.equal(nack.versionInfo, '1', 'a NACK carries the last accepted version');
    assert.equal(nack.responseNonce, 'c');
    assert.equal(nack.errorDetail?.code, 3);
    assert.equal(nack.errorDetail?.details.length, 1);
    assert.equal(nack.errorDetail?.details[0].name, 'users');
    assert.match(nack.errorDetail?.details[0].reason ?? '', /services\.users\.retry\.maxAttempts/);
    assert.match(nack.errorDetail?.message ?? '', /^users: .*maxAttempts/);

    const view = sink.last!;
    assert.deepEqual(
      view.users,
      { retry: { maxAttempts: 2 }, endpoints: [{ address: '127.0.0.1:1' }] },
      'last good kept',
    );
    assert.deepEqual(
      view.billing,
      { timeout: { requestMs: 500 }, endpoints: [{ address: '127.0.0.1:2' }] },
      'valid one applied',
    );
    assert.equal(view['new-one'], undefined, 'a new service waits for its EndpointSet');
    assert.match(source.describe(), /waiting for the endpoints of new services "new-one"/);
    assert.match(source.describe(), /last NACK of type\.meshlet\.dev\/meshlet\.v1\.Service version "2"/);
    const reported = sink.errors.find((e) => e instanceof ControlPlaneError && /NACK/.test(e.message));
    assert.ok(reported, 'the NACK is reported to the mesh');

    // The next good version is ACKed, and the fixed resource applies.
    const ack = await push(stream, SERVICE_TYPE_URL, '3', 'd', [
      encodeService('users', { retry: { maxAttempts: 4 } }),
      encodeService('billing', {}),
    ]);
    assert.equal(ack.versionInfo, '3');
    assert.equal(ack.errorDetail, null);
    assert.deepEqual(sink.last!.users, { retry: { maxAttempts: 4 }, endpoints: [{ address: '127.0.0.1:1' }] });
    assert.equal(sink.last!['new-one'], undefined, 'absent from the state of the world: removed');
  });

  it('a new service and the routes to it wait for its EndpointSet (make before break), then apply together', async () => {
    const { sink, stream, source } = await setup();
    await push(stream, SERVICE_TYPE_URL, '1', 'a', [encodeService('users', { retry: { maxAttempts: 2 } })]);
    await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'b', [encodeEndpointSet('users', ['127.0.0.1:1'])]);
    const canary = {
      routes: [
        {
          backends: [
            { service: 'users', weight: 90 },
            { service: 'users-v2', weight: 10 },
          ],
        },
      ],
    };
    const ack = await push(stream, SERVICE_TYPE_URL, '2', 'c', [
      encodeService('users', canary),
      encodeService('users-v2', {}),
    ]);
    assert.equal(ack.errorDetail, null, 'nothing is wrong: ACKed');
    assert.deepEqual(
      sink.last,
      { users: { retry: { maxAttempts: 2 }, endpoints: [{ address: '127.0.0.1:1' }] } },
      'users keeps its old routes',
    );
    assert.match(source.describe(), /waiting for the endpoints of new services "users-v2"$/);
    await push(stream, ENDPOINT_SET_TYPE_URL, '2', 'd', [
      encodeEndpointSet('users', ['127.0.0.1:1']),
      encodeEndpointSet('users-v2', ['127.0.0.1:2']),
    ]);
    assert.deepEqual(sink.last, {
      users: { ...canary, endpoints: [{ address: '127.0.0.1:1' }] },
      'users-v2': { endpoints: [{ address: '127.0.0.1:2' }] },
    });
    assert.doesNotMatch(source.describe(), /waiting for the endpoints/);
  });

  it('a new service whose EndpointSet never comes applies without endpoints after the warming wait', async () => {
    const server = await new FakeControlServer().start();
    cleanups.push(() => server.stop());
    const sink = new FakeSink();
    sink.validate = (services) => void validateMeshConfig({ services });
    const source = new ControlPlaneSource(
      resolveControlPlaneOptions({ address: server.address, backoff: fast }),
      Math.random,
      { warmingMs: 50 },
    );
    cleanups.push(() => source.close());
    source.start(sink, { service: undefined });
    const stream = await server.stream(0);
    await push(stream, SERVICE_TYPE_URL, '1', 'a', [encodeService('users', {})]);
    await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'b', [encodeEndpointSet('users', ['127.0.0.1:1'])]);
    await push(stream, SERVICE_TYPE_URL, '2', 'c', [
      encodeService('users', { routes: [{ backends: [{ service: 'router-only' }] }] }),
      encodeService('router-only', {}),
    ]);
    const n = sink.updates.length;
    assert.equal(sink.last!['router-only'], undefined);
    await sink.updated(n + 1);
    assert.deepEqual(sink.last, {
      users: { routes: [{ backends: [{ service: 'router-only' }] }], endpoints: [{ address: '127.0.0.1:1' }] },
      'router-only': {},
    });
  });

  it('repeated Service pushes do not extend the wait of a held-back service', async () => {
    const server = await new FakeControlServer().start();
    cleanups.push(() => server.stop());
    const sink = new FakeSink();
    const source = new ControlPlaneSource(
      resolveControlPlaneOptions({ address: server.address, backoff: fast }),
      Math.random,
      {
        warmingMs: 150,
      },
    );
    cleanups.push(() => source.close());
    source.start(sink, { service: undefined });
    const stream = await server.stream(0);
    await push(stream, SERVICE_TYPE_URL, '1', 'a', [encodeService('users', {})]);
    await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'b', [encodeEndpointSet('users', ['127.0.0.1:1'])]);
    // Up to 10 s (a bound for a loaded machine; the loop ends once the resource is applied).
    const until = Date.now() + 10_000;
    let v = 2;
    while (Date.now() < until && sink.last!['only-routes'] === undefined) {
      await push(stream, SERVICE_TYPE_URL, String(v), `s${v++}`, [
        encodeService('users', {}),
        encodeService('only-routes', {}),
      ]);
      await new Promise((r) => setTimeout(r, 40));
    }
    assert.deepEqual(sink.last!['only-routes'], {}, 'applied after its wait although Service pushes kept coming');
  });

  it('an invalid resource that never had a good version stays absent', async () => {
    const { sink, stream } = await setup();
    await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'a', [
      encodeEndpointSet('users', ['not an address']),
      encodeEndpointSet('ok', ['127.0.0.1:1']),
    ]);
    const nack = await push(stream, SERVICE_TYPE_URL, '1', 'b', []);
    assert.equal(nack.errorDetail, null);
    assert.deepEqual(Object.keys(sink.last!), ['ok']);
  });

  it('a route to a missing service (caught by the mesh on merge) rejects that service, not the response', async () => {
    const { sink, stream } = await setup();
    await push(stream, SERVICE_TYPE_URL, '1', 'a', [encodeService('front', {}), encodeService('users', {})]);
    await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'b', [
      encodeEndpointSet('users', ['127.0.0.1:1']),
      encodeEndpointSet('front', ['127.0.0.1:2']),
    ]);
    const nack = await push(stream, SERVICE_TYPE_URL, '2', 'c', [
      encodeService('front', { routes: [{ backends: [{ service: 'missing' }] }] }),
      encodeService('users', { timeout: { requestMs: 100 } }),
    ]);
    assert.equal(nack.errorDetail?.details.length, 1);
    assert.equal(nack.errorDetail?.details[0].name, 'front');
    assert.match(nack.errorDetail?.details[0].reason ?? '', /services\.front\.routes\[0\]\.backends\[0\]\.service/);
    assert.deepEqual(sink.last!.front, { endpoints: [{ address: '127.0.0.1:2' }] }, 'front keeps its last good');
    assert.deepEqual(
      sink.last!.users,
      { timeout: { requestMs: 100 }, endpoints: [{ address: '127.0.0.1:1' }] },
      'users applies',
    );
  });

  it('hostile responses are NACKed with a reason and never crash the client', async () => {
    const { sink, stream } = await setup(false);
    await push(stream, SERVICE_TYPE_URL, '1', 'a', [encodeService('users', {})]);
    await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'b', [encodeEndpointSet('users', ['127.0.0.1:1'])]);

    // Unknown type.
    stream.send({ typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', versionInfo: '1', nonce: 'u' });
    const n1 = await stream.next(isAck('type.googleapis.com/envoy.config.cluster.v3.Cluster', 'u'));
    assert.match(n1.errorDetail?.message ?? '', /unknown resource type/);

    // A resource of the wrong type inside a response, undecodable bytes, duplicate names.
    const nack = await push(stream, SERVICE_TYPE_URL, '2', 'w', [
      encodeEndpointSet('users', ['127.0.0.1:9']),
      { typeUrl: SERVICE_TYPE_URL, value: Uint8Array.from([0x0a, 0xff, 0xff]) },
      encodeService('dup', {}),
      encodeService('dup', { protocol: 'grpc' }),
    ]);
    const reasons = nack.errorDetail?.message ?? '';
    assert.match(
      reasons,
      /\*: resource #0: a resource of type "type\.meshlet\.dev\/meshlet\.v1\.EndpointSet" in a response of type/,
    );
    assert.match(reasons, /\*: resource #1: undecodable Service bytes/);
    assert.match(reasons, /dup: the response holds this resource more than once/);
    assert.deepEqual(Object.keys(sink.last!), ['users'], 'unnamed failures remove nothing; duplicates are not applied');

    // An empty version is still a version.
    const ack = await push(stream, SERVICE_TYPE_URL, '', 'e', [encodeService('users', {})]);
    assert.equal(ack.errorDetail, null);
    assert.equal(ack.versionInfo, '');
  });

  it('a response that is not a DiscoveryResponse at all breaks only the stream: reported, reconnected, last good kept', async () => {
    const { server, sink, stream, source } = await setup();
    await push(stream, SERVICE_TYPE_URL, '1', 'a', [encodeService('users', {})]);
    await push(stream, ENDPOINT_SET_TYPE_URL, '1', 'b', [encodeEndpointSet('users', ['127.0.0.1:1'])]);
    const before = sink.updates.length;
    stream.send(Buffer.from([0x12, 0xff, 0xff, 0xff, 0x0f])); // a length far past the end
    const err = await sink.erred((e) => e instanceof ControlPlaneError && /stream failed/.test(e.message));
    assert.match(err.message, /INTERNAL/);
    const s2 = await server.stream(1);
    const sub = await s2.next((r) => r.typeUrl === SERVICE_TYPE_URL);
    assert.equal(sub.versionInfo, '1');
    assert.equal(sink.updates.length, before);
    assert.match(source.describe(), /last error at .*stream failed/);
  });

  it('reconnects with backoff after the server restarts, serves the last good config meanwhile and resubscribes with its versions', async () => {
    const { server, sink, stream, source } = await setup();
    await push(stream, SERVICE_TYPE_URL, '7', 'a', [encodeService('users', {})]);
    await push(stream, ENDPOINT_SET_TYPE_URL, '8', 'b', [encodeEndpointSet('users', ['127.0.0.1:1'])]);
    const updates = sink.updates.length;

    const port = server.port;
    server.stop();
    await sink.erred((e) => e instanceof ControlPlaneError && /reconnecting in/.test(e.message));
    assert.equal(sink.updates.length, updates, 'no update on disconnect: the last good config keeps serving');
    assert.match(source.describe(), /not connected|connecting/);

    const again = await new FakeControlServer().start(port);
    cleanups.push(() => again.stop());
    const s2 = await again.stream(0, 10_000);
    const sub = await s2.next((r) => r.typeUrl === SERVICE_TYPE_URL);
    assert.equal(sub.versionInfo, '7');
    assert.equal(sub.node?.id, 'test-node', 'node again on the first request of the new stream');
    const sub2 = await s2.next((r) => r.typeUrl === ENDPOINT_SET_TYPE_URL);
    assert.equal(sub2.versionInfo, '8');
    // A later push reaches the client.
    await push(s2, ENDPOINT_SET_TYPE_URL, '9', 'c', [encodeEndpointSet('users', ['127.0.0.1:2'])]);
    assert.deepEqual(sink.last!.users, { endpoints: [{ address: '127.0.0.1:2' }] });
  });

  it('retries with growing delays while the server is down, and reports each failure', async () => {
    const server = await new FakeControlServer().start();
    const address = server.address;
    server.stop();
    const sink = new FakeSink();
    const source = controlPlane({ address, backoff: { initialMs: 10, multiplier: 2, maxMs: 40, jitter: 0 } });
    cleanups.push(() => source.close());
    source.start(sink, { service: undefined });
    await sink.erred((e) => /reconnecting in 40 ms/.test(e.message) && sink.errors.length >= 4);
    const delays = sink.errors.map((e) => Number(/reconnecting in (\d+) ms/.exec(e.message)?.[1]));
    assert.deepEqual(delays.slice(0, 4), [10, 20, 40, 40]);
    assert.equal((sink.errors[0] as ControlPlaneError).code, 'MESHLET_ERR_CONTROL_PLANE');
    assert.match(sink.errors[0].message, new RegExp(`control plane ${address.replace(/\./g, '\\.')}: stream failed`));
    assert.equal(sink.updates.length, 0);
    assert.match(source.describe(), /Service not received, EndpointSet not received; last error at/);
  });

  it('rejects invalid options with a config error naming the option', () => {
    assert.throws(() => controlPlane({ address: 'nope' }), /controlPlane\.address: expected "host:port"/);
    assert.throws(
      () => controlPlane({ address: '127.0.0.1:1', backoff: { initialMs: 10, maxMs: 5 } }),
      /controlPlane\.backoff\.maxMs: expected >= backoff\.initialMs/,
    );
    assert.throws(
      () => controlPlane({ address: '127.0.0.1:1', registrationTimeoutMs: 0 }),
      /controlPlane\.registrationTimeoutMs/,
    );
    assert.doesNotThrow(() => controlPlane({ address: '[::1]:15010' }));
  });
});
