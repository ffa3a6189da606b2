// Incremental responses (discovery.proto `incremental`) at the control-plane client: applied on top
// of what it holds (add, change, remove), each resource still checked on its own (a rejected one is
// NACKed by name and keeps its last good version), removals of unknown names ignored, never applied
// before a state-of-the-world response on the same stream; unchanged services reach the mesh as the
// same objects. Plus fast-check fuzzing of hostile incremental responses.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validateMeshConfig, type DiscoverySink, type ServiceConfig } from '@meshlet/core';
import {
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  encodeEndpointSet,
  encodeService,
  decodeResource,
  type AnyMessage,
  type DiscoveryRequest,
} from '../../src/protocol/index.js';
import { controlPlane } from '../../src/index.js';
import { evaluateIncremental, type ResourceMap, type ResourceMemo } from '../../src/control-plane/state.js';
import { FakeControlServer, FakeSink, type FakeStream } from './fake-server.js';

const fast = { initialMs: 20, multiplier: 1.6, maxMs: 200, jitter: 0.2 };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A sink that keeps the very objects it is handed (FakeSink clones them), validating like the mesh. */
class RefSink implements DiscoverySink {
  readonly updates: Array<Record<string, ServiceConfig>> = [];
  readonly errors: Error[] = [];
  update(snapshot: { services: Record<string, ServiceConfig> }): void {
    validateMeshConfig({ services: snapshot.services });
    this.updates.push({ ...snapshot.services });
  }
  error(err: Error): void {
    this.errors.push(err);
  }
  get last(): Record<string, ServiceConfig> {
    return this.updates[this.updates.length - 1]!;
  }
}

async function setup<S extends DiscoverySink>(sink: S) {
  const server = await new FakeControlServer().start();
  cleanups.push(() => server.stop());
  const source = controlPlane({ address: server.address, backoff: fast, node: { id: 'inc-node' } });
  cleanups.push(() => source.close());
  source.start(sink, { service: 'orders' });
  const stream = await server.stream(0);
  return { server, sink, source, stream };
}

let nonces = 0;
async function send(
  stream: FakeStream,
  type: string,
  version: string,
  resources: AnyMessage[],
  incremental = false,
  removedResources: string[] = [],
): Promise<DiscoveryRequest> {
  const nonce = `n${++nonces}`;
  stream.send({ typeUrl: type, versionInfo: version, nonce, resources, incremental, removedResources });
  return stream.next((r) => r.typeUrl === type && r.responseNonce === nonce);
}

/** The base every test starts from: users and billing, each with a Service and an EndpointSet. */
async function base(stream: FakeStream): Promise<void> {
  await send(stream, SERVICE_TYPE_URL, '1', [
    encodeService('users', { retry: { maxAttempts: 2 } }),
    encodeService('billing', {}),
  ]);
  const ack = await send(stream, ENDPOINT_SET_TYPE_URL, '1', [
    encodeEndpointSet('users', ['127.0.0.1:4001']),
    encodeEndpointSet('billing', ['127.0.0.1:6001']),
  ]);
  assert.equal(ack.errorDetail, null);
}

const addressesOf = (cfg: ServiceConfig | undefined) =>
  ((cfg?.endpoints ?? []) as Array<{ address: string }>).map((e) => e.address);

describe('controlPlane client: incremental responses', () => {
  it('applies added, changed and removed EndpointSets on top of what it holds, and ACKs', async () => {
    const { sink, stream } = await setup(new FakeSink());
    await base(stream);
    const ack = await send(
      stream,
      ENDPOINT_SET_TYPE_URL,
      '2',
      [
        encodeEndpointSet('users', ['127.0.0.1:4001', '127.0.0.1:4002']),
        encodeEndpointSet('extra', ['127.0.0.1:7001']),
      ],
      true,
    );
    assert.equal(ack.errorDetail, null);
    assert.equal(ack.versionInfo, '2');
    assert.deepEqual(sink.last, {
      users: { retry: { maxAttempts: 2 }, endpoints: [{ address: '127.0.0.1:4001' }, { address: '127.0.0.1:4002' }] },
      billing: { endpoints: [{ address: '127.0.0.1:6001' }] },
      extra: { endpoints: [{ address: '127.0.0.1:7001' }] },
    });
    // A removal alone: billing's endpoints go, its Service stays.
    assert.equal((await send(stream, ENDPOINT_SET_TYPE_URL, '3', [], true, ['billing'])).errorDetail, null);
    assert.deepEqual(sink.last!.billing, {});
    assert.deepEqual(addressesOf(sink.last!.extra), ['127.0.0.1:7001']);
    // A Service change alone, and a Service removal.
    const ack2 = await send(
      stream,
      SERVICE_TYPE_URL,
      '4',
      [encodeService('users', { retry: { maxAttempts: 3 } })],
      true,
      ['billing'],
    );
    assert.equal(ack2.errorDetail, null);
    assert.deepEqual(Object.keys(sink.last!).sort(), ['extra', 'users']);
    assert.deepEqual((sink.last!.users as { retry: unknown }).retry, { maxAttempts: 3 });
    assert.deepEqual(addressesOf(sink.last!.users), ['127.0.0.1:4001', '127.0.0.1:4002'], 'endpoints kept');
  });

  it('NACKs an invalid changed set by name, keeps its last good version and applies the rest', async () => {
    const { sink, stream, source } = await setup(new FakeSink());
    await base(stream);
    const nack = await send(
      stream,
      ENDPOINT_SET_TYPE_URL,
      '2',
      [encodeEndpointSet('users', ['not an address']), encodeEndpointSet('billing', ['127.0.0.1:6002'])],
      true,
    );
    assert.notEqual(nack.errorDetail, null);
    assert.equal(nack.versionInfo, '1', 'a NACK carries the last version accepted');
    assert.deepEqual(
      nack.errorDetail!.details.map((d) => d.name),
      ['users'],
    );
    assert.match(nack.errorDetail!.details[0]!.reason, /endpoints/);
    assert.deepEqual(addressesOf(sink.last!.users), ['127.0.0.1:4001'], 'last good kept');
    assert.deepEqual(addressesOf(sink.last!.billing), ['127.0.0.1:6002'], 'the valid change applied');
    assert.match(source.describe(), /last NACK of type\.meshlet\.dev\/meshlet\.v1\.EndpointSet version "2"/);

    // A later change on top of that still works, and the rejected one keeps serving.
    const ack = await send(
      stream,
      ENDPOINT_SET_TYPE_URL,
      '3',
      [encodeEndpointSet('billing', ['127.0.0.1:6003'])],
      true,
    );
    assert.equal(ack.errorDetail, null);
    assert.deepEqual(addressesOf(sink.last!.users), ['127.0.0.1:4001']);
    assert.deepEqual(addressesOf(sink.last!.billing), ['127.0.0.1:6003']);
    assert.match(source.describe(), /EndpointSet version "3"/);
  });

  it('ignores the removal of a name it does not hold, and rejects a name both changed and removed', async () => {
    const { sink, stream } = await setup(new FakeSink());
    await base(stream);
    const before = sink.updates.length;
    const ack = await send(stream, ENDPOINT_SET_TYPE_URL, '2', [], true, ['ghost']);
    assert.equal(ack.errorDetail, null);
    assert.equal(ack.versionInfo, '2');
    assert.deepEqual(Object.keys(sink.last!).sort(), ['billing', 'users']);
    assert.ok(sink.updates.length >= before);

    const nack = await send(
      stream,
      ENDPOINT_SET_TYPE_URL,
      '3',
      [encodeEndpointSet('users', ['127.0.0.1:4009'])],
      true,
      ['users'],
    );
    assert.deepEqual(
      nack.errorDetail!.details.map((d) => d.name),
      ['users'],
    );
    assert.deepEqual(addressesOf(sink.last!.users), ['127.0.0.1:4001']);
  });

  it('NACKs an incremental response before any state of the world on the stream, also after a reconnect', async () => {
    const { server, sink, stream } = await setup(new FakeSink());
    const early = await send(stream, ENDPOINT_SET_TYPE_URL, '1', [encodeEndpointSet('users', ['127.0.0.1:1'])], true);
    assert.notEqual(early.errorDetail, null);
    assert.match(early.errorDetail!.message, /before any state-of-the-world/);
    await base(stream);
    const held = sink.last;

    // Reconnect: the new stream resubscribes (no nonce) and must start from a state of the world.
    const port = server.port;
    server.stop();
    const again = await new FakeControlServer().start(port);
    cleanups.push(() => again.stop());
    const s2 = await again.stream(0, 10_000);
    const sub = await s2.next((r) => r.typeUrl === ENDPOINT_SET_TYPE_URL);
    assert.equal(sub.responseNonce, '', 'a resubscription');
    assert.equal(sub.versionInfo, '1');
    const nack = await send(s2, ENDPOINT_SET_TYPE_URL, '2', [], true, ['users']);
    assert.notEqual(nack.errorDetail, null);
    assert.deepEqual(sink.last, held, 'nothing of it applied');
    // The state of the world brings it back in step; increments apply again after it.
    assert.equal((await send(s2, SERVICE_TYPE_URL, '5', [encodeService('users', {})])).errorDetail, null);
    assert.equal(
      (await send(s2, ENDPOINT_SET_TYPE_URL, '5', [encodeEndpointSet('users', ['127.0.0.1:5'])])).errorDetail,
      null,
    );
    assert.equal((await send(s2, ENDPOINT_SET_TYPE_URL, '6', [], true, ['users'])).errorDetail, null);
    assert.deepEqual(sink.last, { users: {} });
  });

  it('hands the mesh the same objects for services whose resources did not change', async () => {
    const { sink, stream } = await setup(new RefSink());
    await base(stream);
    const first = sink.last;
    await send(stream, ENDPOINT_SET_TYPE_URL, '2', [encodeEndpointSet('users', ['127.0.0.1:4002'])], true);
    const second = sink.last;
    assert.notEqual(second, first);
    assert.equal(second.billing, first.billing, 'billing unchanged: same object');
    assert.notEqual(second.users, first.users);
    // A state-of-the-world push where only billing's Service changed keeps users' object.
    await send(stream, SERVICE_TYPE_URL, '3', [
      encodeService('users', { retry: { maxAttempts: 2 } }),
      encodeService('billing', { retry: { maxAttempts: 4 } }),
    ]);
    const third = sink.last;
    assert.equal(third.users, second.users, 'users unchanged in a SotW push: same object');
    assert.notEqual(third.billing, second.billing);
  });
});

describe('evaluateIncremental', () => {
  it('keeps a duplicated name at its last good version and never touches names it does not carry', () => {
    const current: ResourceMap = new Map([
      ['a', [{ address: '127.0.0.1:1' }]],
      ['b', [{ address: '127.0.0.1:2' }]],
    ]);
    const memo: ResourceMemo = new Map();
    const { next, rejected } = evaluateIncremental(
      'endpointSet',
      [encodeEndpointSet('a', ['127.0.0.1:3']), encodeEndpointSet('a', ['127.0.0.1:4'])],
      [],
      current,
      memo,
    );
    assert.deepEqual(
      rejected.map((r) => r.name),
      ['a'],
    );
    assert.equal(next.get('a'), current.get('a'));
    assert.equal(next.get('b'), current.get('b'));
    assert.equal(current.size, 2, 'the input map is not changed');
  });
});

// --- fuzzing ------------------------------------------------------------------------------------

const name = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('users', 'billing', 'orders', 'a.b') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', '', 'a/b') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 300, maxLength: 2000 }) },
);
const serviceRes: fc.Arbitrary<AnyMessage> = fc
  .tuple(
    name,
    fc.oneof(
      fc.record({ retry: fc.record({ maxAttempts: fc.integer({ min: -2, max: 5 }) }) }),
      fc.record({
        routes: fc.array(fc.record({ backends: fc.array(fc.record({ service: name }), { maxLength: 2 }) }), {
          maxLength: 2,
        }),
      }),
      fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'retry', 'endpoints'), fc.jsonValue({ maxDepth: 3 })),
    ),
  )
  .map(([n, c]) => encodeService(n, c as never));
const endpointRes: fc.Arbitrary<AnyMessage> = fc
  .tuple(name, fc.array(fc.constantFrom('127.0.0.1:1', '[::1]:3', 'host:0', 'nope', ''), { maxLength: 3 }))
  .map(([n, eps]) => encodeEndpointSet(n, eps));
const garbage: fc.Arbitrary<AnyMessage> = fc.record({
  typeUrl: fc.oneof(fc.constantFrom(SERVICE_TYPE_URL, ENDPOINT_SET_TYPE_URL), fc.string({ maxLength: 20 })),
  value: fc.uint8Array({ maxLength: 48 }),
});
const incrementalResponse = fc.record({
  typeUrl: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(SERVICE_TYPE_URL, ENDPOINT_SET_TYPE_URL) },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  ),
  versionInfo: fc.string({ maxLength: 8 }),
  resources: fc.array(fc.oneof(serviceRes, endpointRes, garbage), { maxLength: 6 }),
  removedResources: fc.array(fc.oneof(name, fc.string({ minLength: 5000, maxLength: 6000 })), { maxLength: 6 }),
});

describe('controlPlane client fuzzing: incremental responses', () => {
  it('never crash the client: each is ACKed or NACKed with a reason per rejected resource, and the mesh side only sees valid configs', async () => {
    const sink = new FakeSink();
    sink.validate = (services) => void validateMeshConfig({ services });
    const { server, stream } = await setup(sink);
    await base(stream);
    let n = 0;
    let acks = 0;
    let nacks = 0;
    await fc.assert(
      fc.asyncProperty(incrementalResponse, async (res) => {
        const nonce = `z${++n}`;
        const before = sink.last ?? {};
        stream.send({ ...res, nonce, incremental: true });
        const reply = await stream.next((r) => r.responseNonce === nonce, 5000);
        if (reply.errorDetail === null) {
          assert.equal(reply.versionInfo, res.versionInfo);
          acks++;
          // Accepted whole: what it did not name is exactly as before (nothing is removed implicitly).
          const named = new Set<string>(res.removedResources);
          for (const r of res.resources) {
            const d = decodeResource(r);
            if (d.ok) named.add(d.name);
          }
          const after = sink.last ?? {};
          for (const name of Object.keys(before)) {
            if (named.has(name)) continue;
            assert.ok(Object.hasOwn(after, name), `${name} is still there`);
            const pick = (cfg: ServiceConfig) => {
              const { endpoints, ...rest } = cfg as ServiceConfig & Record<string, unknown>;
              return res.typeUrl === ENDPOINT_SET_TYPE_URL ? endpoints : rest;
            };
            assert.deepEqual(pick(after[name]!), pick(before[name]!), `${name} is unchanged`);
          }
        } else {
          nacks++;
          assert.equal(reply.errorDetail.code, 3);
          assert.ok(reply.errorDetail.details.length > 0);
          for (const d of reply.errorDetail.details) {
            assert.ok(d.name.length > 0 && d.name.length < 1100);
            assert.ok(d.reason.length > 0);
          }
        }
      }),
      { numRuns: 200 },
    );
    assert.ok(acks > 10 && nacks > 10, `both outcomes exercised (${acks} ACKs, ${nacks} NACKs)`);
    assert.equal(server.streams.length, 1, 'the stream survived every response');
    for (const view of sink.updates) assert.doesNotThrow(() => validateMeshConfig({ services: view }));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // A clean state of the world applies afterwards, whatever the increments left.
    assert.equal((await send(stream, SERVICE_TYPE_URL, 'ok', [encodeService('users', {})])).errorDetail, null);
    assert.equal(
      (await send(stream, ENDPOINT_SET_TYPE_URL, 'ok', [encodeEndpointSet('users', ['127.0.0.1:9'])])).errorDetail,
      null,
    );
    assert.deepEqual(sink.last, { users: { endpoints: [{ address: '127.0.0.1:9' }] } });
  });
});
