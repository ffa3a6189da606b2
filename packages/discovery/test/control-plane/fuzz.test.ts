// Property-based fuzzing of the client over a real stream: random and malformed
// DiscoveryResponses (bad Any bytes, hostile Struct shapes, huge names, wrong types, random
// versions) never crash it; each is ACKed (all valid) or NACKed with a reason per rejected
// resource; the mesh side only ever sees configs that validate; a good push still applies after.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { createMesh, validateMeshConfig } from '@meshlet/core';
import {
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  encodeEndpointSet,
  encodeService,
  type AnyMessage,
  type DiscoveryRequest,
} from '../../src/protocol/index.js';
import { controlPlane } from '../../src/index.js';
import { FakeControlServer, FakeSink, type FakeStream } from './fake-server.js';

const name = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('users', 'billing', 'orders', 'a.b', 'x-1') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', '', 'UPPER', 'a..b', '123', 'a/b') },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 300, maxLength: 3000 }) },
);

const configValue = fc.oneof(
  fc.record({ retry: fc.record({ maxAttempts: fc.integer({ min: -2, max: 5 }) }) }),
  fc.record({ timeout: fc.record({ requestMs: fc.oneof(fc.integer({ min: -1, max: 5000 }), fc.constant(2 ** 40)) }) }),
  fc.record({
    routes: fc.array(fc.record({ backends: fc.array(fc.record({ service: name }), { maxLength: 2 }) }), {
      maxLength: 2,
    }),
  }),
  fc.record({ protocol: fc.constantFrom('http', 'grpc', 'smtp') }),
  fc.jsonValue({ maxDepth: 4 }).filter((v) => typeof v === 'object' && v !== null && !Array.isArray(v)),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'retry'), fc.jsonValue({ maxDepth: 3 })),
);

const serviceRes: fc.Arbitrary<AnyMessage> = fc.tuple(name, configValue).map(([n, c]) => encodeService(n, c as never));
const endpointRes: fc.Arbitrary<AnyMessage> = fc
  .tuple(
    name,
    fc.array(
      fc.record({
        address: fc.oneof(fc.constantFrom('127.0.0.1:1', '127.0.0.1:2', '[::1]:3', 'host:0', 'nope'), fc.string()),
        weight: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 2_000_000 })),
        zone: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 5 })),
      }),
      { maxLength: 4 },
    ),
  )
  .map(([n, eps]) =>
    encodeEndpointSet(
      n,
      eps.map((e) => JSON.parse(JSON.stringify(e))),
    ),
  );
const garbage: fc.Arbitrary<AnyMessage> = fc.record({
  typeUrl: fc.oneof(fc.constantFrom(SERVICE_TYPE_URL, ENDPOINT_SET_TYPE_URL), fc.string()),
  value: fc.uint8Array({ maxLength: 64 }),
});
const deep: fc.Arbitrary<AnyMessage> = fc.integer({ min: 30, max: 200 }).map((depth) => {
  let inner: Uint8Array = new Uint8Array();
  for (let i = 0; i < depth; i++) {
    const w = protobuf.Writer.create();
    w.uint32(10).fork().uint32(10).string('retry').uint32(18).fork().uint32(42).bytes(inner).ldelim().ldelim();
    inner = w.finish();
  }
  return {
    typeUrl: SERVICE_TYPE_URL,
    value: protobuf.Writer.create().uint32(10).string('deep').uint32(18).bytes(inner).finish(),
  };
});

const response = fc.record({
  typeUrl: fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(SERVICE_TYPE_URL, ENDPOINT_SET_TYPE_URL) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  ),
  versionInfo: fc.oneof(fc.constant(''), fc.string({ maxLength: 10 }), fc.string({ minLength: 2000, maxLength: 4000 })),
  resources: fc.array(fc.oneof(serviceRes, endpointRes, garbage, deep), { maxLength: 8 }),
});

describe('controlPlane client fuzzing', () => {
  let server: FakeControlServer;
  let sink: FakeSink;
  let source: ReturnType<typeof controlPlane>;
  let stream: FakeStream;
  before(async () => {
    server = await new FakeControlServer().start();
    sink = new FakeSink();
    // The mesh refuses what does not validate: the client must cope (reject, keep last good).
    sink.validate = (services) => void validateMeshConfig({ services });
    source = controlPlane({ address: server.address, backoff: { initialMs: 20, maxMs: 100 } });
    source.start(sink, { service: 'fuzz' });
    stream = await server.stream(0);
  });
  after(async () => {
    await source.close();
    server.stop();
  });

  it('every random response is answered with an ACK or a NACK with reasons, on the same stream', async () => {
    let nonce = 0;
    let acks = 0;
    let nacks = 0;
    await fc.assert(
      fc.asyncProperty(response, async (res) => {
        const n = `f${++nonce}`;
        stream.send({ ...res, nonce: n });
        const reply: DiscoveryRequest = await stream.next((r) => r.responseNonce === n, 5000);
        assert.equal(reply.typeUrl, res.typeUrl);
        if (reply.errorDetail === null) {
          assert.equal(reply.versionInfo, res.versionInfo, 'an ACK carries the response version');
          acks++;
        } else {
          assert.equal(reply.errorDetail.code, 3);
          assert.ok(reply.errorDetail.message.length > 0);
          assert.ok(reply.errorDetail.details.length > 0);
          nacks++;
          for (const d of reply.errorDetail.details) {
            assert.ok(d.name.length > 0 && d.name.length < 1100, 'names are present and cut');
            assert.ok(d.reason.length > 0);
          }
        }
      }),
      { numRuns: 250 },
    );
    assert.ok(acks > 10 && nacks > 10, `both outcomes exercised (${acks} ACKs, ${nacks} NACKs)`);
    assert.ok(sink.updates.length > 5, 'valid parts were delivered');
    assert.equal(server.streams.length, 1, 'never reconnected: the stream survived every response');
    for (const view of sink.updates) assert.doesNotThrow(() => validateMeshConfig({ services: view }));

    // A good push still applies afterwards.
    stream.send({
      typeUrl: SERVICE_TYPE_URL,
      versionInfo: 'good',
      nonce: 'g1',
      resources: [encodeService('users', {})],
    });
    stream.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: 'good',
      nonce: 'g2',
      resources: [encodeEndpointSet('users', ['127.0.0.1:1'])],
    });
    const ack = await stream.next((r) => r.responseNonce === 'g2');
    assert.equal(ack.errorDetail, null);
    assert.deepEqual(sink.last, { users: { endpoints: [{ address: '127.0.0.1:1' }] } });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('controlPlane client fuzzing inside a real mesh', () => {
  it('random responses never crash the client or the mesh, and a clean push applies after them', async () => {
    const server = await new FakeControlServer().start();
    const mesh = createMesh({
      service: 'fuzz',
      discovery: [controlPlane({ address: server.address, backoff: { initialMs: 20, maxMs: 100 } })],
    });
    try {
      const stream = await server.stream(0);
      stream.send({
        typeUrl: SERVICE_TYPE_URL,
        versionInfo: '0',
        nonce: 's0',
        resources: [encodeService('users', {})],
      });
      stream.send({
        typeUrl: ENDPOINT_SET_TYPE_URL,
        versionInfo: '0',
        nonce: 'e0',
        resources: [encodeEndpointSet('users', ['127.0.0.1:1'])],
      });
      await mesh.ready({ timeoutMs: 5000 });
      let nonce = 0;
      await fc.assert(
        fc.asyncProperty(response, async (res) => {
          const n = `m${++nonce}`;
          stream.send({ ...res, nonce: n });
          const reply = await stream.next((r) => r.responseNonce === n, 5000);
          if (reply.errorDetail !== null) assert.ok(reply.errorDetail.details.every((d) => d.reason.length > 0));
          // The mesh still answers for what it serves.
          for (const svc of Object.values(mesh.stats().services)) assert.ok(Array.isArray(svc.endpoints));
        }),
        { numRuns: 120 },
      );
      assert.equal(server.streams.length, 1, 'the stream survived every response');
      // A clean state of the world, both types, applies whatever the fuzz left behind.
      stream.send({
        typeUrl: SERVICE_TYPE_URL,
        versionInfo: 'last',
        nonce: 'last-s',
        resources: [encodeService('users', {})],
      });
      assert.equal((await stream.next((r) => r.responseNonce === 'last-s')).errorDetail, null);
      stream.send({
        typeUrl: ENDPOINT_SET_TYPE_URL,
        versionInfo: 'last',
        nonce: 'last-e',
        resources: [encodeEndpointSet('users', ['127.0.0.1:7'])],
      });
      assert.equal((await stream.next((r) => r.responseNonce === 'last-e')).errorDetail, null);
      assert.deepEqual(mesh.serviceNames(), ['users']);
      assert.deepEqual(
        mesh.stats().services.users.endpoints.map((e) => e.address),
        ['127.0.0.1:7'],
      );
    } finally {
      await mesh.close();
      server.stop();
    }
  });
});
